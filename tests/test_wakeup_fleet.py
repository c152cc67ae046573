"""Pushes in a fleet: the ``Nudged`` rows of ``JobFleet``'s table, the fleet drivers'
``wakeup=``, and wakes from 8 threads while a fleet runs.

The core is driven with explicit ``now`` values; the drivers run in virtual time
(sync: injected clock and a sleep that delivers the push; asyncio: the virtual loop
of ``test_wakeup_adapters``; trio: ``MockClock``), except one bounded realtime test
with 8 threads (about a second).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait import (
    AllDone,
    BatchObserved,
    Finished,
    FleetSleep,
    JobFleet,
    PollBatch,
    Wakeup,
)
from jobwait._fleet import FleetState
from jobwait._plumbing import fleet_transitions
from jobwait._protocol import Nudged
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import sync as jw_sync
from jobwait.adapters import trio as jw_trio
from jobwait.testing import VirtualClock
from test_wakeup_adapters import (
    FIVE,
    Job,
    VirtualLoop,
    asleep,
    finisher,
    now,
    pushing_sleep,
)


def observe(fleet: JobFleet, batch: PollBatch, now: float, **status: str) -> None:
    jobs = {i: {"status": status.get(i, "ready")} for i in batch.ids}
    fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=now))


def drain(fleet: JobFleet, now: float) -> list[Any]:
    """Every action up to (and including) the first PollBatch, FleetSleep or AllDone."""
    actions = []
    while True:
        action = fleet.next_action(now)
        actions.append(action)
        if isinstance(action, PollBatch | FleetSleep | AllDone):
            return actions


def started(**options: Any) -> tuple[JobFleet, PollBatch]:
    fleet = JobFleet(backoff=FIVE, **options)
    fleet.add(["a", "b", "c"], now=0.0)
    batch = fleet.next_action(0.0)
    assert batch == PollBatch(ids=("a", "b", "c"))
    observe(fleet, batch, 0.0)
    assert fleet.next_action(0.0) == FleetSleep(seconds=5.0)
    return fleet, batch


# --- the table ----------------------------------------------------------------------


def test_the_fleet_table_has_the_push_rows() -> None:
    pushes = {(t[0], t[3]) for t in fleet_transitions() if t[1] == "Nudged"}
    assert pushes == {(state, state) for state in FleetState}


def test_a_pushed_job_goes_out_at_once_alone_and_keeps_its_schedule() -> None:
    fleet, _ = started()
    fleet.handle(Nudged(now=1.0, job_id="b"))
    batch = fleet.next_action(1.0)
    assert batch == PollBatch(ids=("b",))  # not held for batch_window, not with a, c
    observe(fleet, batch, 1.0)
    assert fleet.next_action(1.0) == FleetSleep(seconds=4.0)  # all due at 5 again
    assert set(fleet.next_action(5.0).ids) == {"a", "b", "c"}  # type: ignore[union-attr]
    assert fleet.polls("b") == 2
    assert fleet.requests == 3


def test_a_push_that_finds_the_job_done_finishes_it() -> None:
    fleet, _ = started()
    fleet.handle(Nudged(now=1.0, job_id="c"))
    batch = fleet.next_action(1.0)
    observe(fleet, batch, 1.05, c="completed")
    assert fleet.next_action(1.05) == Finished(job_id="c", outcome={"status": "completed"})


def test_pushes_respect_the_request_budget() -> None:
    fleet, _ = started(max_polls_per_second=1)
    fleet.handle(Nudged(now=0.5, job_id="a"))
    assert fleet.next_action(0.5) == FleetSleep(seconds=0.5)  # the budget's window
    assert fleet.next_action(1.0) == PollBatch(ids=("a",))


def test_pushes_respect_max_concurrency() -> None:
    fleet = JobFleet(backoff=FIVE, max_batch=1, max_concurrency=1)
    fleet.add(["a", "b"], now=0.0)
    first = fleet.next_action(0.0)
    assert first == PollBatch(ids=("a",))
    fleet.handle(Nudged(now=0.1, job_id="b"))  # b is due anyway: nothing changes
    # The one slot is busy: sleep until a report (or b's deadline), no request.
    assert isinstance(fleet.next_action(0.1), FleetSleep)
    observe(fleet, first, 0.2)
    assert fleet.next_action(0.2) == PollBatch(ids=("b",))


def test_a_push_while_in_flight_polls_once_more_after_the_report() -> None:
    fleet, _ = started()
    fleet.handle(Nudged(now=1.0, job_id="a"))
    batch = fleet.next_action(1.0)
    assert batch == PollBatch(ids=("a",))
    fleet.handle(Nudged(now=1.1, job_id="a"))
    fleet.handle(Nudged(now=1.1, job_id="a"))  # many before the next poll: one
    observe(fleet, batch, 1.2)
    again = fleet.next_action(1.2)
    assert again == PollBatch(ids=("a",))
    observe(fleet, again, 1.3)
    assert fleet.next_action(1.3) == FleetSleep(seconds=pytest.approx(3.7))  # type: ignore[arg-type]
    assert fleet.polls("a") == 3


def test_a_push_for_every_job_unknown_ids_and_late_pushes() -> None:
    fleet, _ = started()
    fleet.handle(Nudged(now=1.0, job_id="nobody"))  # ignored
    assert fleet.next_action(1.0) == FleetSleep(seconds=4.0)
    fleet.handle(Nudged(now=2.0))  # every job still waiting
    batch = fleet.next_action(2.0)
    assert set(batch.ids) == {"a", "b", "c"}  # type: ignore[union-attr]
    observe(fleet, batch, 2.0, a="completed", b="completed", c="completed")
    assert [type(a).__name__ for a in drain(fleet, 2.0)] == ["Finished"] * 3 + ["AllDone"]
    fleet.handle(Nudged(now=3.0, job_id="a"))  # after the end: ignored
    assert fleet.next_action(3.0) == AllDone()


def test_pushes_after_fail_fast_are_ignored() -> None:
    fleet, _ = started(fail_fast=True)
    fleet.handle(Nudged(now=1.0, job_id="a"))
    batch = fleet.next_action(1.0)
    observe(fleet, batch, 1.0, a="failed")
    drain_all = [fleet.next_action(1.0) for _ in range(3)]
    assert type(drain_all[-1]).__name__ == "Raise"
    fleet.handle(Nudged(now=2.0, job_id="b"))  # STOPPED: accepted and ignored


def test_repeated_pushes_to_a_sleeping_job_leave_one_live_timer() -> None:
    fleet, _ = started()
    for t in (1.0, 2.0):
        fleet.handle(Nudged(now=t, job_id="b"))
        batch = fleet.next_action(t)
        assert batch == PollBatch(ids=("b",))
        observe(fleet, batch, t)
    assert fleet.next_action(2.0) == FleetSleep(seconds=3.0)
    batch = fleet.next_action(5.0)
    assert set(batch.ids) == {"a", "b", "c"}  # type: ignore[union-attr]
    observe(fleet, batch, 5.0)  # type: ignore[arg-type]
    # Voided entries of b were skipped, not turned into extra polls.
    assert fleet.next_action(5.0) == FleetSleep(seconds=5.0)
    assert fleet.polls("b") == 4


# --- the drivers ------------------------------------------------------------------------


def many(job: Job) -> Any:
    def fetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
        return {i: job.fetch() if i == "j1" else {"status": "ready"} for i in ids}

    return fetch_many


def test_sync_wait_all_notices_a_pushed_job_at_once() -> None:
    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)

    finish = finisher(job, wakeup)

    results = jw_sync.wait_all(
        many(job),
        ["j1"],
        backoff=FIVE,
        wakeup=wakeup,
        clock=vc.now,
        sleep=pushing_sleep(vc, [(6.0, finish)]),
    )
    assert results["j1"] == {"status": "completed"}
    assert job.polls == pytest.approx([0.0, 5.0, 6.0])
    assert wakeup.listeners == 0


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_wait_all_notices_a_pushed_job_at_once(runtime: str) -> None:
    async def main() -> tuple[list[float], float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def fetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
            return many(job)(ids)

        async def push() -> None:
            await asleep(runtime, 6.0)
            job.status = "completed"
            wakeup.wake("j1")

        if runtime == "asyncio":
            task = asyncio.ensure_future(push())
            await jw_asyncio.wait_all(fetch_many, ["j1", "j2"], backoff=FIVE, wakeup=wakeup)
            await task
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push)
                async with jw_trio.as_completed(
                    fetch_many, ["j1"], backoff=FIVE, wakeup=wakeup
                ) as results:
                    async for job_id, outcome in results:
                        assert (job_id, outcome) == ("j1", {"status": "completed"})
        return job.polls, now(runtime)

    if runtime == "asyncio":
        with asyncio.Runner(loop_factory=VirtualLoop) as runner:
            polls, ended = runner.run(main())
    else:
        polls, ended = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert polls == [0.0, 5.0, 6.0]
    if runtime == "trio":
        assert ended == 6.0


@pytest.mark.realtime
def test_wakes_from_eight_threads_while_a_fleet_runs() -> None:
    # 64 jobs that each finish at a random moment in the first 0.4 s and are then
    # pushed by all 8 threads (duplicates galore). Polling alone would only look again
    # at 5 s: a lost wake would show as a job noticed late. The fleet may send 40
    # requests a second; the request log shows it never sends more.
    ids = [f"job-{n}" for n in range(64)]
    done_at = {i: random.uniform(0.0, 0.4) for i in ids}
    wakeup = Wakeup()
    start = time.monotonic()
    sent: list[float] = []
    noticed: dict[str, float] = {}
    lock = threading.Lock()

    def fetch_many(batch: tuple[str, ...]) -> dict[str, Any]:
        t = time.monotonic() - start
        with lock:
            sent.append(t)
        return {i: {"status": "completed" if t >= done_at[i] else "ready"} for i in batch}

    def pusher(seed: int) -> None:
        rng = random.Random(seed)
        order = sorted(ids, key=lambda i: done_at[i])
        for job_id in order:
            delay = done_at[job_id] - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
            for _ in range(rng.randint(1, 3)):
                wakeup.wake(job_id)

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    try:
        results = jw_sync.wait_all(
            fetch_many,
            ids,
            backoff=FIVE,
            timeout=4.0,
            max_polls_per_second=40,
            max_batch=8,
            wakeup=wakeup,
            on_status=lambda job_id, job, status: noticed.setdefault(
                job_id, time.monotonic() - start
            ),
        )
    finally:
        for thread in threads:
            thread.join()
    assert all(r == {"status": "completed"} for r in results.values())
    assert wakeup.listeners == 0
    # No lost wake: every job was noticed well before the 5 s poll (or the 4 s deadline).
    assert max(noticed[i] - done_at[i] for i in ids) < 3.0
    # Never more than 40 requests in any one-second window.
    assert all(sum(1 for u in sent if t <= u < t + 1.0) <= 40 for t in sent)


def test_a_push_keeps_a_deferral_by_predictions() -> None:
    fleet = JobFleet(backoff=FIVE, use_predictions=True)
    fleet.add(["a"], now=0.0)
    job = {"status": "ready", "predicted_wait_time_ms": 100_000}
    batch = fleet.next_action(0.0)
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": job}, now=0.0))  # type: ignore[union-attr]
    assert fleet.next_action(0.0) == FleetSleep(seconds=90.0)  # 0.9 of the prediction
    fleet.handle(Nudged(now=10.0, job_id="a"))
    batch = fleet.next_action(10.0)
    assert batch == PollBatch(ids=("a",))
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": job}, now=10.0))
    # The push cost one poll; the fleet's own schedule (poll at 90) stands.
    assert fleet.next_action(10.0) == FleetSleep(seconds=80.0)
    assert fleet.next_action(90.0) == PollBatch(ids=("a",))


# --- the invariants, as properties -------------------------------------------------------


@given(
    done_at=st.lists(st.floats(0.0, 60.0), min_size=1, max_size=6),
    pushes=st.lists(st.tuples(st.floats(0.0, 80.0), st.integers(0, 6)), max_size=15),
    budget=st.sampled_from([None, 1, 2]),
    concurrency=st.sampled_from([None, 1, 2]),
    latency=st.sampled_from([0.0, 0.3]),
)
@settings(max_examples=60)
def test_pushes_never_break_the_budget_and_cost_one_poll_each(
    done_at: list[float],
    pushes: list[tuple[float, int]],
    budget: int | None,
    concurrency: int | None,
    latency: float,
) -> None:
    # Jobs j0.. complete at done_at; a push (time, index) wakes job `index` (an index
    # past the last job means wake() for all). Batches take `latency` to answer, one
    # at a time in report order; the driver delivers every push before next_action.
    ids = [f"j{n}" for n in range(len(done_at))]

    def world(pushed: bool) -> tuple[dict[str, int], list[float], float]:
        fleet = JobFleet(
            backoff=FIVE,
            timeout=None,
            max_batch=2,
            batch_window=0.5,
            max_polls_per_second=budget,
            max_concurrency=concurrency,
        )
        fleet.add(ids, now=0.0)
        queue = sorted(pushes) if pushed else []
        flights: list[tuple[float, PollBatch]] = []
        sent: list[float] = []
        now = 0.0
        for _ in range(10_000):
            while queue and queue[0][0] <= now:
                _, index = queue.pop(0)
                fleet.handle(Nudged(now=now, job_id=ids[index] if index < len(ids) else None))
            action = fleet.next_action(now)
            if isinstance(action, PollBatch):
                sent.append(now)
                flights.append((now + latency, action))
                flights.sort(key=lambda f: f[0])
            elif isinstance(action, AllDone):
                return {i: fleet.polls(i) for i in ids}, sent, now
            elif isinstance(action, FleetSleep):
                wake = [now + action.seconds] if action.seconds is not None else []
                wake += [f[0] for f in flights[:1]] + [p[0] for p in queue[:1]]
                now = max(now, min(wake))
                if flights and flights[0][0] <= now:
                    at, batch = flights.pop(0)
                    jobs = {
                        i: {"status": "completed" if at >= done_at[int(i[1:])] else "ready"}
                        for i in batch.ids
                    }
                    fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=now))
        raise AssertionError("the fleet did not finish")

    lone, _, _ = world(False)
    polls, sent, _ = world(True)
    if budget is not None:  # never more than `budget` requests in any one-second window
        assert all(sum(1 for u in sent if t <= u < t + 1.0) <= budget for t in sent)
    received = len(pushes)
    everyone = sum(1 for _, index in pushes if index >= len(ids))
    # Each push costs at most one extra poll per job it names (caught in flight: the
    # poll in flight was due anyway, one more follows), beyond polling alone.
    assert sum(polls.values()) <= sum(lone.values()) + (received + everyone * len(ids))
