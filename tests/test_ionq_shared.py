"""Concurrent ``async_wait_for_job`` calls on one client share one scheduler (issue 12, Part 2).

The property test drives many callers, each with its own options, start time and
(sometimes) cancellation, through the real shared scheduler on trio's ``MockClock``
against a simulated IonQ API (``JobBoard`` behind ``httpx.MockTransport``). It then
replays every caller's job through a lone ``JobWaiter`` fed the very answers the shared
batches carried, and checks: no poll was earlier than the lone waiter asked, and the
caller's result or error is exactly the lone waiter's. Cancelled callers' jobs are not
polled after they left. The loopback tests run real HTTP (``JobServer``) on asyncio and
trio. Cost: about 2 s.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import httpx
import ionq_core
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobwait
from jobwait import Backoff, Done, FetchFailed, JobWaiter, Observed, Poll, Raise, Sleep, Start, Woke
from jobwait._plumbing import JobMissingError
from jobwait.adapters import ionq
from jobwait.adapters._runtime import shared as _shared
from jobwait.adapters.server import JobServer
from jobwait.testing import JobBoard

realtime = pytest.mark.realtime
KEY = "sk-ionq-shared-0123456789"
BASE = "https://api.ionq.co/v0.4"


# --- the property: never earlier than a lone waiter, and the same outcome -------------


@dataclass
class Caller:
    start: float
    poll_interval: float
    timeout: float | None
    raise_on_failure: bool
    ready: float
    run: float
    outcome: str
    leave_after: float | None


callers = st.builds(
    Caller,
    start=st.floats(0, 5),
    poll_interval=st.sampled_from([0.05, 0.5, 1.0, 2.0, 7.0]),
    timeout=st.sampled_from([None, 0, 3.0, 20.0, 300.0]),
    raise_on_failure=st.booleans(),
    ready=st.floats(0, 30),
    run=st.floats(0, 30),
    outcome=st.sampled_from(["completed", "failed", "canceled"]),
    leave_after=st.one_of(st.none(), st.floats(0, 20)),
)


class Recorder:
    """A ``MockTransport`` handler serving a JobBoard at trio's (virtual) time, and
    recording each read, batch or single: its time and the views it answered."""

    def __init__(self) -> None:
        self.board = JobBoard(api_key=KEY)
        self.batches: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = trio.current_time()
        target = request.url.raw_path.decode().removeprefix("/v0.4")
        reply = self.board.handle(
            request.method, target, request.headers.items(), request.content, now=now
        )
        if request.method == "GET" and reply.status_code == 200:
            if target.startswith("/jobs?"):
                self.batches.append((now, {job["id"]: job for job in reply.json()["jobs"]}))
            else:  # a single read: GET /jobs/{id}, a lone wait's own request
                job = reply.json()
                self.batches.append((now, {job["id"]: job}))
        return httpx.Response(reply.status_code, headers=list(reply.headers), content=reply.body)


def lone_replay(caller: Caller, job_id: str, added: float, polls: list[tuple[float, Any]]) -> Any:
    """Feed a lone waiter with the caller's options the answers its job got; assert no
    poll came earlier than it asked; return its final action (or None if unfinished)."""
    p = caller.poll_interval
    backoff = Backoff(initial=1e-6, factor=1, max=1e-6) if p <= 0 else Backoff(initial=p, max=30)
    waiter = JobWaiter(
        job_id=job_id,
        timeout=caller.timeout,
        backoff=backoff,
        raise_on_failure=caller.raise_on_failure,
    )
    # The lone wait polls on its own schedule (the transport answers at once); a shared
    # poll may be held back to share a request, never earlier, and a hold does not push
    # the rest of the schedule back: the lone waiter is fed at its own poll times.
    action: Any = waiter.handle(Start(now=added))
    due = added
    for when, view in polls:
        if isinstance(action, Sleep):
            due += action.seconds
            action = waiter.handle(Woke(now=due))
        assert when >= due - 1e-9, f"{job_id} polled at {when}, a lone wait at {due}"
        assert isinstance(action, Poll), action
        if view is None:
            action = waiter.handle(
                FetchFailed(error=JobMissingError(job_id), now=due, retryable=True)
            )
        else:
            action = waiter.handle(Observed(job=view, now=due))
    return action


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(callers, min_size=1, max_size=6))
def test_shared_waits_never_poll_earlier_and_end_as_lone_waits(people: list[Caller]) -> None:
    recorder = Recorder()
    ids = [
        recorder.board.submit(
            now=0.0,
            durations={"ready": c.ready, "started": c.run},
            outcome=c.outcome,
            failure={"code": "SimulationError", "message": "m"} if c.outcome == "failed" else None,
        )
        for c in people
    ]
    added: dict[str, float] = {}
    left: dict[str, float] = {}
    results: dict[str, Any] = {}

    async def one(client: httpx.AsyncClient, caller: Caller, job_id: str) -> None:
        await trio.sleep(caller.start)
        added[job_id] = trio.current_time()
        with trio.move_on_after(math.inf if caller.leave_after is None else caller.leave_after):
            try:
                results[job_id] = await ionq.async_wait_for_job(
                    client,
                    job_id,
                    poll_interval=caller.poll_interval,
                    timeout=caller.timeout,
                    raise_on_failure=caller.raise_on_failure,
                )
            except jobwait.JobWaitError as error:
                results[job_id] = error
            return
        left[job_id] = trio.current_time()

    async def main() -> None:
        transport = httpx.MockTransport(recorder)
        async with (
            ionq.async_client(KEY, base_url=BASE, transport=transport) as client,
            trio.open_nursery() as nursery,
        ):
            for caller, job_id in zip(people, ids, strict=True):
                nursery.start_soon(one, client, caller, job_id)
        assert not _shared._SCHEDULERS  # the scheduler ended with its last caller
        assert recorder.board.request_count == len(recorder.batches)  # every read answered

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    for caller, job_id in zip(people, ids, strict=True):
        polls = [(when, views.get(job_id)) for when, views in recorder.batches if job_id in views]
        final = lone_replay(caller, job_id, added[job_id], polls)
        if job_id in left:
            assert job_id not in results
            assert all(when <= left[job_id] for when, _ in polls)
            continue
        outcome = results[job_id]
        if isinstance(final, Done):
            assert not isinstance(outcome, BaseException), outcome
            assert outcome.data == final.job
        else:
            assert isinstance(final, Raise), final
            assert isinstance(outcome, type(final.error)), (outcome, final.error)
            assert (outcome.last_status, outcome.polls) == (
                final.error.last_status,
                final.error.polls,
            )


# --- over loopback, asyncio and trio --------------------------------------------------


def run(runtime: str, fn: Any) -> Any:
    return asyncio.run(fn()) if runtime == "asyncio" else trio.run(fn)


async def gather(runtime: str, calls: list[Any]) -> list[Any]:
    async def settle(call: Any) -> Any:
        try:
            return await call
        except jobwait.JobWaitError as error:
            return error

    if runtime == "asyncio":
        return list(await asyncio.gather(*(settle(c) for c in calls)))
    out: list[Any] = [None] * len(calls)

    async def at(i: int, call: Any) -> None:
        out[i] = await settle(call)

    async with trio.open_nursery() as nursery:
        for i, call in enumerate(calls):
            nursery.start_soon(at, i, call)
    return out


@realtime
@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_a_gather_shares_batch_requests_each_with_its_own_options(
    server: JobServer, runtime: str
) -> None:
    done = [server.submit(durations={"ready": 0.02 * (i % 5), "started": 0.05}) for i in range(30)]
    failed = server.submit(
        durations={"ready": 0.0, "started": 0.03},
        outcome="failed",
        failure={"code": "SimulationError", "message": "boom"},
    )
    pending = server.submit(durations={"ready": 10_000.0})
    seen: list[str] = []

    async def main() -> list[Any]:
        async with ionq.async_client(KEY, base_url=server.url) as client:
            calls = [ionq.async_wait_for_job(client, i, poll_interval=0.01) for i in done]
            calls.append(
                ionq.async_wait_for_job(
                    client,
                    failed,
                    poll_interval=0.01,
                    raise_on_failure=False,
                    on_status=lambda job, status: seen.append(status),
                )
            )
            calls.append(
                ionq.async_wait_for_job(
                    client, pending, poll_interval=0.01, timeout=0.1, cancel_on_timeout=True
                )
            )
            return await gather(runtime, calls)

    results = run(runtime, main)
    assert [job.status for job in results[:30]] == ["completed"] * 30
    assert [job.id for job in results[:30]] == done
    assert (results[30].status, results[30].failure["code"]) == ("failed", "SimulationError")
    assert seen[-1] == "failed"
    assert isinstance(results[31], ionq.JobTimeoutError)
    assert results[31].timeout == 0.1
    gets = [r for r in server.requests if r.method == "GET"]
    assert any(r.path.startswith("/v0.4/jobs?ids=") for r in gets)  # due together: batches
    assert len(gets) < 32  # a lone wait each would send at least 32
    assert [r.method for r in server.requests_for(pending)][-1] == "PUT"
    assert not _shared._SCHEDULERS


@realtime
@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_cancelling_one_caller_affects_no_other(server: JobServer, runtime: str) -> None:
    slow = server.submit(durations={"ready": 0.0, "started": 0.6})
    leaving = server.submit(durations={"ready": 10_000.0})

    async def leave_soon(client: Any) -> str:
        if runtime == "asyncio":
            task = asyncio.ensure_future(ionq.async_wait_for_job(client, leaving))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            with trio.move_on_after(0.05):
                await ionq.async_wait_for_job(client, leaving, poll_interval=0.01)
        return "left"

    async def main() -> list[Any]:
        async with ionq.async_client(KEY, base_url=server.url) as client:
            return await gather(
                runtime,
                [ionq.async_wait_for_job(client, slow, poll_interval=0.01), leave_soon(client)],
            )

    job, note = run(runtime, main)
    assert (job.status, note) == ("completed", "left")
    left_at = max(r.time for r in server.requests if leaving in r.path)
    later = [r for r in server.requests if r.time > left_at + 0.005]
    assert later  # the other wait went on polling ...
    assert all(leaving not in r.path for r in later)  # ... without the job that left
    assert not _shared._SCHEDULERS


@realtime
def test_ionq_core_clients_share_too_and_get_their_models(server: JobServer) -> None:
    ids = [server.submit(durations={"ready": 0.0, "started": 0.02 * i}) for i in range(10)]

    async def main() -> list[Any]:
        client = ionq_core.AuthenticatedClient(base_url=server.url, token=KEY, prefix="apiKey")
        async with client:
            return await gather(
                "asyncio", [ionq.async_wait_for_job(client, i, poll_interval=0.01) for i in ids]
            )

    results = asyncio.run(main())
    assert {type(job).__name__ for job in results} == {"SingleCircuitJob"}
    assert server.requests[0].path.startswith("/v0.4/jobs?ids=")  # due together: one batch
    assert len(server.requests) < 10 * 2  # a lone wait each sends at least two


@realtime
def test_shared_false_and_unshareable_options_wait_alone(server: JobServer) -> None:
    ids = [server.submit(durations={"ready": 0.0, "started": 0.0}) for _ in range(4)]
    polls: list[int] = []

    async def main() -> list[Any]:
        async with ionq.async_client(KEY, base_url=server.url) as client:
            return await gather(
                "asyncio",
                [
                    ionq.async_wait_for_job(client, ids[0], shared=False),
                    ionq.async_wait_for_job(client, ids[1], max_body_size=10_000),
                    # on_poll shares: the two share one batch read.
                    ionq.async_wait_for_job(
                        client, ids[2], on_poll=lambda report: polls.append(report.polls)
                    ),
                    ionq.async_wait_for_job(client, ids[3]),
                ],
            )

    results = asyncio.run(main())
    assert [job.status for job in results] == ["completed"] * 4
    assert polls == [1]
    paths = sorted(r.path for r in server.requests)
    assert paths == sorted(
        [f"/v0.4/jobs/{ids[0]}", f"/v0.4/jobs/{ids[1]}", f"/v0.4/jobs?ids={ids[2]}&ids={ids[3]}"]
    )


@realtime
def test_a_lone_shared_wait_sends_the_seeds_request(server: JobServer) -> None:
    job = server.submit(durations={"ready": 0.0, "started": 0.05})

    async def main() -> Any:
        async with ionq.async_client(KEY, base_url=server.url) as client:
            return await ionq.async_wait_for_job(client, job, poll_interval=0.02)

    assert asyncio.run(main()).status == "completed"
    assert {r.path for r in server.requests} == {f"/v0.4/jobs/{job}"}


def test_shared_options_are_checked() -> None:
    async def main() -> None:
        async with ionq.async_client(KEY, base_url=BASE) as client:
            with pytest.raises(TypeError, match="max_batchez"):
                await ionq.async_wait_for_job(client, "j", shared={"max_batchez": 1})

    asyncio.run(main())


# --- httpx.async_wait_for_url: no batch endpoint, requests in flight bounded ------------


@pytest.mark.parametrize("shared", [{"max_concurrency": 2}, True, False])
def test_url_waits_share_a_bound_on_requests_in_flight(shared: Any) -> None:
    from jobwait.adapters.httpx import async_wait_for_url

    board = JobBoard(api_key=KEY)
    ids = [board.submit(now=0.0, durations={"ready": 1.0 * i, "started": 2.0}) for i in range(24)]
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await trio.sleep(0.01)  # virtual: lets other requests start meanwhile
        in_flight -= 1
        target = request.url.raw_path.decode().removeprefix("/v0.4")
        reply = board.handle("GET", target, request.headers.items(), now=trio.current_time())
        return httpx.Response(reply.status_code, headers=list(reply.headers), content=reply.body)

    results: dict[str, Any] = {}

    async def main() -> None:
        transport = httpx.MockTransport(answer)
        async with ionq.async_client(KEY, base_url=BASE, transport=transport) as client:

            async def one(job_id: str) -> None:
                results[job_id] = await async_wait_for_url(
                    client,
                    f"/jobs/{job_id}",
                    job_id=job_id,
                    backoff=Backoff(initial=0.5, max=2.0),
                    shared=shared,
                )

            async with trio.open_nursery() as nursery:
                for job_id in ids:
                    nursery.start_soon(one, job_id)
        assert not _shared._SCHEDULERS

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert {job_id: job["status"] for job_id, job in results.items()} == dict.fromkeys(
        ids, "completed"
    )
    expected = {"max_concurrency": 2}.get("max_concurrency") if isinstance(shared, dict) else None
    if shared is False:
        assert peak == len(ids)
    else:
        assert peak == (expected or 10)


# --- the two JobFleet additions the scheduler uses: add(options=) and discard() -------


def test_fleet_jobs_keep_their_own_options() -> None:
    fleet = jobwait.JobFleet(timeout=100.0, backoff=Backoff(initial=5.0), batch_window=0.0)
    fleet.add(["a"], now=0.0, options={"timeout": 1.0, "backoff": Backoff(initial=2.0)})
    fleet.add(["b"], now=0.0)
    action = fleet.next_action(0.0)
    assert isinstance(action, jobwait.PollBatch)
    assert action.ids == ("a", "b")
    fleet.handle(
        jobwait.BatchObserved(
            ids=action.ids, jobs={"a": {"status": "ready"}, "b": {"status": "ready"}}, now=0.0
        )
    )
    # a's own schedule (2 s) is clamped to its own deadline (1 s); b keeps the fleet's (5 s).
    assert fleet.next_action(0.0) == jobwait.FleetSleep(seconds=1.0)
    assert fleet.next_action(1.0) == jobwait.PollBatch(ids=("a",))


@pytest.mark.parametrize(
    ("options", "error"),
    [({"timeout": -1.0}, ValueError), ({"job_id": "x"}, TypeError), ({"nope": 1}, TypeError)],
)
def test_fleet_refuses_bad_per_job_options_and_adds_nothing(
    options: dict[str, Any], error: type
) -> None:
    fleet = jobwait.JobFleet()
    with pytest.raises(error):
        fleet.add(["a"], now=0.0, options=options)
    assert fleet.next_action(0.0) == jobwait.AllDone()


def test_fleet_discard_forgets_a_job_even_in_flight() -> None:
    fleet = jobwait.JobFleet(batch_window=0.0)
    fleet.add(["a", "b"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, jobwait.PollBatch)
    assert fleet.discard(["a", "unknown"], now=0.0) == ("a",)
    fleet.handle(jobwait.BatchObserved(ids=batch.ids, jobs={"b": {"status": "completed"}}, now=0.1))
    finished = fleet.next_action(0.1)
    assert isinstance(finished, jobwait.Finished)
    assert finished.job_id == "b"
    assert fleet.next_action(0.1) == jobwait.AllDone()  # a: no outcome, no poll
    assert "a" not in fleet.results
    assert fleet.discard(["b"], now=0.2) == ()  # finished: ignored


@realtime
def test_the_scheduler_leaves_no_task_behind(server: JobServer) -> None:
    ids = [server.submit(durations={"ready": 0.0, "started": 0.0}) for _ in range(20)]
    left: list[int] = []

    async def main() -> None:
        async with ionq.async_client(KEY, base_url=server.url) as client:
            for _ in range(3):
                await asyncio.gather(*(ionq.async_wait_for_job(client, i) for i in ids))
                await asyncio.sleep(0)  # the driver ends one loop step after its last caller
                left.append(len(asyncio.all_tasks()) - 1)
        assert not _shared._SCHEDULERS

    asyncio.run(main())
    assert left == [0, 0, 0]
