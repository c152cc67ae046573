"""The fleet drivers: sync/asyncio/trio ``wait_all``, ``as_completed``, and the HTTP
batch waits, in virtual time against the pure JobBoard and over loopback against
JobServer with faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from jobwait import (
    Backoff,
    FleetFailedError,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
    JobWaitError,
)
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import ionq
from jobwait.adapters import sync as jw_sync
from jobwait.adapters import trio as jw_trio
from jobwait.adapters.httpx import jobs_by_id
from jobwait.adapters.server import JobServer
from jobwait.http import read_response
from jobwait.testing import Fault, JobBoard, VirtualClock

KEY = "fleet-test-key"


def board_with_jobs(n: int = 12, *, faults: tuple[Fault, ...] = ()) -> tuple[JobBoard, list[str]]:
    """Jobs finishing at 2..~40 s, one failing, one canceled, one that never ends."""
    board = JobBoard(api_key=KEY, faults=faults)
    ids = []
    for i in range(n):
        outcome = "failed" if i == 3 else "canceled" if i == 5 else "completed"
        ready = 10_000.0 if i == 7 else 1.0 + 3 * i
        ids.append(
            board.submit(
                now=0.0,
                durations={"submitted": 1.0, "ready": ready, "started": 2.0},
                outcome=outcome,
            )
        )
    return board, ids


def board_fetch_many(
    board: JobBoard, clock: Callable[[], float]
) -> Callable[[tuple[str, ...]], Any]:
    """A batch fetch through the board's HTTP surface, read as the HTTP adapters read it."""
    headers = [("authorization", f"apiKey {KEY}")]

    def fetch_many(ids: tuple[str, ...]) -> Any:
        target = "/jobs?" + "&".join(f"ids={i}" for i in ids)
        reply = board.handle("GET", target, headers, b"", now=clock())
        fetched = read_response(reply.status_code, reply.headers, reply.body, wall_now=0.0)
        return jobs_by_id(fetched.job)

    return fetch_many


OPTIONS: dict[str, Any] = {"timeout": 120.0, "batch_window": 1.0, "max_batch": 5}


def summary(results: dict[str, Any]) -> dict[str, str]:
    return {
        k: type(v).__name__ if isinstance(v, JobWaitError) else v["status"]
        for k, v in results.items()
    }


def run_sync(**extra: Any) -> tuple[dict[str, Any], int]:
    board, ids = board_with_jobs()
    vc = VirtualClock()
    results = jw_sync.wait_all(
        board_fetch_many(board, vc.now), ids, clock=vc.now, sleep=vc.sleep, **OPTIONS, **extra
    )
    return results, board.request_count


def run_asyncio(**extra: Any) -> tuple[dict[str, Any], int]:
    board, ids = board_with_jobs()
    vc = VirtualClock()
    fetch = board_fetch_many(board, vc.now)

    async def fetch_many(batch: tuple[str, ...]) -> Any:
        return fetch(batch)

    async def main() -> dict[str, Any]:
        return await jw_asyncio.wait_all(
            fetch_many, ids, clock=vc.now, sleep=vc.asleep, **OPTIONS, **extra
        )

    return asyncio.run(main()), board.request_count


def run_trio(**extra: Any) -> tuple[dict[str, Any], int]:
    board, ids = board_with_jobs()
    fetch = board_fetch_many(board, trio.current_time)

    async def fetch_many(batch: tuple[str, ...]) -> Any:
        await trio.lowlevel.checkpoint()
        return fetch(batch)

    async def main() -> dict[str, Any]:
        return await jw_trio.wait_all(fetch_many, ids, **OPTIONS, **extra)

    results = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return results, board.request_count


EXPECTED = {
    "job-0004": "JobFailedError",
    "job-0006": "canceled",
    "job-0008": "JobTimeoutError",
}


@pytest.mark.parametrize("run", [run_sync, run_asyncio, run_trio], ids=["sync", "asyncio", "trio"])
def test_wait_all_gives_every_job_one_outcome_in_every_runtime(run: Any) -> None:
    results, requests = run()
    got = summary(results)
    assert len(got) == 12
    for job_id, outcome in got.items():
        assert outcome == EXPECTED.get(job_id, "completed"), job_id
    # Batching: far fewer requests than the 12 per-job loops would make.
    per_job_polls = sum(r.polls if isinstance(r, JobWaitError) else 0 for r in results.values())
    assert requests < 60
    assert per_job_polls >= 1


def test_runtimes_agree_on_outcomes_and_request_counts() -> None:
    # One request in flight at a time, as the sync driver does, makes the three
    # drivers perform exactly the same schedule.
    runs = [run(max_concurrency=1) for run in (run_sync, run_asyncio, run_trio)]
    assert summary(runs[0][0]) == summary(runs[1][0]) == summary(runs[2][0])
    assert runs[0][1] == runs[1][1] == runs[2][1]


def test_sync_fetch_one_polls_each_job_alone() -> None:
    board, ids = board_with_jobs(4)
    vc = VirtualClock()
    batches: list[tuple[str, ...]] = []
    fetch = board_fetch_many(board, vc.now)

    def fetch_one(job_id: str) -> Any:
        batches.append((job_id,))
        return fetch((job_id,))[job_id]

    results = jw_sync.wait_all(None, ids, fetch_one=fetch_one, clock=vc.now, sleep=vc.sleep)
    assert set(results) == set(ids)
    assert all(len(b) == 1 for b in batches)
    with pytest.raises(TypeError, match="max_batch must be 1"):
        jw_sync.wait_all(None, ids, fetch_one=fetch_one, max_batch=5)
    with pytest.raises(TypeError, match="not both"):
        jw_sync.wait_all(fetch, ids, fetch_one=fetch_one)
    with pytest.raises(TypeError, match="not both"):
        jw_sync.wait_all(None, ids)
    with pytest.raises(TypeError, match="unexpected keyword argument 'job_id'"):
        jw_sync.wait_all(fetch, ids, job_id="x")  # type: ignore[call-arg]


def test_sync_on_status_and_cancel_on_timeout() -> None:
    seen: list[tuple[str, str]] = []
    canceled: list[str] = []
    results, _ = run_sync(
        on_status=lambda job_id, job, status: seen.append((job_id, status)),
        cancel=canceled.append,
    )
    assert canceled == ["job-0008"]  # the one that timed out
    assert ("job-0001", "completed") in seen
    first = [s for j, s in seen if j == "job-0002"]
    assert first[0] in ("submitted", "ready")
    assert first[-1] == "completed"
    assert len(first) == len(set(first))  # once per change
    assert isinstance(results["job-0008"], JobTimeoutError)


def test_sync_fail_fast_raises_with_results_and_cancels_the_rest() -> None:
    canceled: list[str] = []
    with pytest.raises(FleetFailedError) as info:
        run_sync(fail_fast=True, cancel=canceled.append)
    error = info.value
    assert isinstance(error.__cause__, JobFailedError)
    assert error.job_id == "job-0004"
    assert isinstance(error.results["job-0004"], JobFailedError)
    assert set(canceled) == set(error.unfinished)
    assert "job-0008" in canceled


def test_a_fetch_returning_no_mapping_ends_its_jobs_with_a_typed_error() -> None:
    vc = VirtualClock()
    results = jw_sync.wait_all(
        lambda ids: ["not", "a", "mapping"], ["a", "b"], clock=vc.now, sleep=vc.sleep
    )
    for outcome in results.values():
        assert isinstance(outcome, JobFetchError)
        assert isinstance(outcome.__cause__, TypeError)


def test_sync_keyboard_interrupt_cancels_unfinished_jobs_and_propagates() -> None:
    board, ids = board_with_jobs(4)
    vc = VirtualClock()
    canceled: list[str] = []

    def sleep(seconds: float) -> None:
        if vc.now() > 5:
            raise KeyboardInterrupt
        vc.sleep(seconds)

    with pytest.raises(KeyboardInterrupt):
        jw_sync.wait_all(
            board_fetch_many(board, vc.now), ids, clock=vc.now, sleep=sleep, cancel=canceled.append
        )
    assert canceled
    assert set(canceled) <= set(ids)
    assert "job-0001" not in canceled  # finished at t=4 before the interrupt


# --- async specifics ---------------------------------------------------------------


def test_asyncio_as_completed_yields_in_finishing_order() -> None:
    async def main() -> list[str]:
        board, ids = board_with_jobs(6)
        vc = VirtualClock()
        fetch = board_fetch_many(board, vc.now)

        async def fetch_many(batch: tuple[str, ...]) -> Any:
            return fetch(batch)

        order = []
        async for job_id, outcome in jw_asyncio.as_completed(
            fetch_many, ids, clock=vc.now, sleep=vc.asleep, **OPTIONS
        ):
            order.append(job_id)
            assert outcome is not None
        return order

    order = asyncio.run(main())
    assert sorted(order) == [f"job-000{i}" for i in range(1, 7)]
    assert order.index("job-0001") < order.index("job-0006")


def test_asyncio_as_completed_early_exit_stops_the_fleet() -> None:
    async def main() -> int:
        board, ids = board_with_jobs(6)
        vc = VirtualClock()
        fetch = board_fetch_many(board, vc.now)

        async def fetch_many(batch: tuple[str, ...]) -> Any:
            await asyncio.sleep(0)
            return fetch(batch)

        async with jw_asyncio.as_completed(
            fetch_many, ids, clock=vc.now, sleep=vc.asleep, **OPTIONS
        ) as results:
            async for _job_id, _outcome in results:
                break
        before = board.request_count
        for _ in range(20):
            await asyncio.sleep(0)
        return board.request_count - before

    assert asyncio.run(main()) == 0


def test_asyncio_as_completed_raises_fail_fast_after_the_outcomes() -> None:
    async def main() -> list[str]:
        board, ids = board_with_jobs(6)
        vc = VirtualClock()
        fetch = board_fetch_many(board, vc.now)

        async def fetch_many(batch: tuple[str, ...]) -> Any:
            return fetch(batch)

        seen: list[str] = []

        async def consume() -> None:
            async for job_id, _ in jw_asyncio.as_completed(
                fetch_many, ids, clock=vc.now, sleep=vc.asleep, fail_fast=True, **OPTIONS
            ):
                seen.append(job_id)

        with pytest.raises(FleetFailedError):
            await consume()
        return seen

    seen = asyncio.run(main())
    assert "job-0004" in seen  # the failing job's own outcome came first


def test_trio_as_completed_streams_results_and_composes_with_cancel_scopes() -> None:
    async def main() -> tuple[list[str], list[str], float]:
        board, ids = board_with_jobs(8)
        fetch = board_fetch_many(board, trio.current_time)

        async def fetch_many(batch: tuple[str, ...]) -> Any:
            await trio.sleep(0.05)
            return fetch(batch)

        async def cancel(job_id: str) -> None:
            canceled.append(job_id)

        canceled: list[str] = []
        order: list[str] = []
        with trio.move_on_after(15):
            async with jw_trio.as_completed(fetch_many, ids, cancel=cancel, **OPTIONS) as results:
                async for job_id, _ in results:
                    order.append(job_id)
        return order, canceled, trio.current_time()

    order, canceled, now = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert now == pytest.approx(15)
    assert order[:2] == ["job-0001", "job-0002"]
    assert "job-0008" not in order  # it never finishes...
    assert "job-0008" in canceled  # ...so leaving the scope cancelled it remotely
    assert not set(order) & set(canceled)


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_cancellation_cancels_unfinished_jobs_remotely(runtime: str) -> None:
    canceled: list[str] = []

    async def cancel(job_id: str) -> None:
        canceled.append(job_id)

    async def fetch_many(ids: tuple[str, ...]) -> Any:
        return {i: {"status": "started"} for i in ids}

    if runtime == "trio":

        async def main_trio() -> None:
            with trio.move_on_after(30):
                await jw_trio.wait_all(fetch_many, ["a", "b"], cancel=cancel, timeout=None)

        trio.run(main_trio, clock=trio.testing.MockClock(autojump_threshold=0))
    else:

        async def main_asyncio() -> None:
            never = asyncio.Event()

            async def hang(ids: tuple[str, ...]) -> Any:
                await never.wait()

            task = asyncio.create_task(jw_asyncio.wait_all(hang, ["a", "b"], cancel=cancel))
            for _ in range(5):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main_asyncio())
    assert sorted(canceled) == ["a", "b"]


# --- over loopback, with faults ------------------------------------------------------

FAST = {"poll_interval": 0.02, "batch_window": 0.02, "max_batch": 4}


def serve(faults: tuple[Fault, ...]) -> tuple[JobServer, list[str]]:
    server = JobServer(api_key=KEY, time_scale=200, faults=faults)
    server.start()
    ids = [
        server.submit(durations={"submitted": 1.0, "ready": 2.0 + i, "started": 2.0})
        for i in range(8)
    ]
    return server, ids


FAULTS = {
    # The first requests fail, so every run meets every scripted fault.
    "429 storm": (
        Fault("429", request=1, count=3, retry_after="0.05"),
        Fault("429", request=4, retry_after="0"),
    ),
    "5xx burst": (Fault("503", request=1, count=2), Fault("502", request=3)),
    "missing ids": (),  # per-job drop faults, added below
}


def _drive(runtime: str, server: JobServer, ids: list[str]) -> dict[str, Any]:
    if runtime == "sync":
        with ionq.client(api_key=KEY, base_url=server.url) as client:
            return ionq.wait_for_jobs(client, ids, **FAST)

    async def main() -> dict[str, Any]:
        async with ionq.async_client(api_key=KEY, base_url=server.url) as client:
            return await ionq.async_wait_for_jobs(client, ids, max_concurrency=2, **FAST)

    if runtime == "asyncio":
        return asyncio.run(main())
    return trio.run(main)


@pytest.mark.realtime
@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fleet_over_loopback_survives_faults(runtime: str, fault: str) -> None:
    server, ids = serve(FAULTS[fault])
    try:
        if fault == "missing ids":
            dropped = server.submit(
                durations={"submitted": 1.0, "ready": 1.0, "started": 1.0},
                faults=[Fault("drop", poll=2, count=2)],
            )
            gone = server.submit(faults=[Fault("drop", poll=1, count=99)])
            ids += [dropped, gone]
        t0 = time.monotonic()
        results = _drive(runtime, server, ids)
        elapsed = time.monotonic() - t0
        requests = server.requests
    finally:
        server.close()
    assert set(results) == set(ids)
    assert elapsed < 5
    batch_requests = [r for r in requests if r.path.startswith("/v0.4/jobs?")]
    assert len(batch_requests) == len(requests)  # only batch reads, never one per job
    if fault == "missing ids":
        assert results[dropped].status == "completed"  # two misses, within its budget
        missing = results[gone]
        assert isinstance(missing, JobFetchError)  # its own max_fetch_errors (5) ran out
        assert missing.polls == 5
        others = [results[i] for i in ids if i not in (dropped, gone)]
    else:
        faulted = [r.status_code for r in requests if r.status_code in (429, 502, 503)]
        assert faulted == ([429] * 4 if fault == "429 storm" else [503, 503, 502])
        others = [results[i] for i in ids]
    assert all(not isinstance(o, Exception) and o.status == "completed" for o in others)


@pytest.mark.realtime
def test_httpx_batch_wait_with_a_url_builder() -> None:
    from jobwait.adapters.httpx import wait_for_batch

    server, ids = serve(())
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"apiKey {KEY}"}) as c:
            results = wait_for_batch(
                c,
                ids,
                url_for=lambda batch: httpx.URL("/jobs", params={"ids": ",".join(batch)}),
                backoff=Backoff(initial=0.02),
                batch_window=0.02,
            )
    finally:
        server.close()
    assert {r["status"] for r in results.values()} == {"completed"}
