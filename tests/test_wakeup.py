"""Pushes in the core: the waiter's ``Nudged`` rows, and ``Wakeup`` itself.

The waiter is driven with explicit ``now`` values (tables: events in, actions out);
the schedule invariants ("a push costs at most one extra poll, the schedule is
otherwise unchanged") are property tests. ``Wakeup`` is hammered from 8 threads.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwait import (
    Backoff,
    Done,
    FetchFailed,
    JobTimeoutError,
    JobWaiter,
    Observed,
    Poll,
    Raise,
    Sleep,
    Start,
    State,
    UsageError,
    Wakeup,
    Woke,
)
from jobwait._protocol import Nudged


def obs(status: str, now: float, **kw: Any) -> Observed:
    return Observed(job={"status": status}, now=now, **kw)


def run(waiter: JobWaiter, events: list[Any]) -> list[Any]:
    return [waiter.handle(event) for event in events]


# --- the waiter's rows, as tables --------------------------------------------------------

# Default schedule: polls at 0, 1, 2.5, 4.75, 8.125, ...
PREFIX = [Start(now=0.0), obs("ready", 0.0), Woke(now=1.0), obs("ready", 1.0)]


def test_a_nudge_while_sleeping_polls_at_once_and_keeps_the_due_poll() -> None:
    w = JobWaiter()
    actions = run(
        w,
        [
            *PREFIX,  # ... Sleep(1.5): the poll at 2.5 is due
            Nudged(now=1.75),
            obs("ready", 1.75),
            Woke(now=2.5),
            obs("ready", 2.5),
        ],
    )
    assert actions[3:] == [
        Sleep(seconds=1.5),
        Poll(),  # the extra poll, at once
        Sleep(seconds=0.75),  # the rest of the way to 2.5, not a new 1.5 or 2.25
        Poll(),
        Sleep(seconds=2.25),  # the interval grew once, for the due poll only
    ]


def test_a_nudge_that_finds_the_job_done_ends_the_wait() -> None:
    w = JobWaiter()
    actions = run(w, [*PREFIX, Nudged(now=2.0), obs("completed", 2.0)])
    assert actions[-1] == Done(job={"status": "completed"})


def test_a_nudge_during_a_poll_is_remembered_as_one_more_poll() -> None:
    w = JobWaiter()
    actions = run(
        w,
        [
            Start(now=0.0),
            Nudged(now=0.05),
            Nudged(now=0.06),  # many nudges before the next poll are one
            obs("ready", 0.1),  # the answer may predate the push: poll again
            obs("ready", 0.2),
            Woke(now=1.1),
        ],
    )
    assert actions == [
        Poll(),
        Poll(),
        Poll(),
        Poll(),
        Sleep(seconds=pytest.approx(0.9)),  # type: ignore[arg-type]
        Poll(),
    ]
    assert w.polls == 2


def test_a_nudge_during_an_extra_poll_asks_for_one_more() -> None:
    w = JobWaiter()
    actions = run(w, [*PREFIX, Nudged(now=2.0), Nudged(now=2.1), obs("ready", 2.2)])
    assert actions[-1] == Poll()
    assert run(w, [obs("ready", 2.3)]) == [Sleep(seconds=pytest.approx(0.2))]  # type: ignore[arg-type]


def test_an_extra_poll_that_ends_after_the_due_time_is_the_due_poll() -> None:
    w = JobWaiter()
    actions = run(w, [*PREFIX, Nudged(now=2.4), obs("ready", 2.6)])
    assert actions[-1] == Sleep(seconds=2.25)  # the schedule advanced from this poll


def test_a_nudge_racing_the_end_of_the_sleep_is_the_due_poll() -> None:
    w = JobWaiter()
    actions = run(w, [*PREFIX, Nudged(now=2.5), obs("ready", 2.5)])
    assert actions[-2:] == [Poll(), Sleep(seconds=2.25)]


def test_a_failed_extra_poll_counts_as_a_fetch_error_and_resumes_the_schedule() -> None:
    w = JobWaiter(max_fetch_errors=2)
    actions = run(w, [*PREFIX, Nudged(now=2.0), FetchFailed(error=OSError("x"), now=2.0)])
    assert actions[-1] == Sleep(seconds=0.5)
    last = run(w, [Nudged(now=2.1), FetchFailed(error=OSError("y"), now=2.1)])[-1]
    assert isinstance(last, Raise)
    assert "2 fetches in a row" in str(last.error)


def test_a_server_hint_still_floors_the_sleep_after_an_extra_poll() -> None:
    w = JobWaiter()
    actions = run(w, [*PREFIX, Nudged(now=2.0), obs("ready", 2.0, retry_after=3.0)])
    assert actions[-1] == Sleep(seconds=3.0)


def test_a_nudge_never_moves_the_deadline() -> None:
    # timeout 2: polls at 0 and 1, then the final poll at the deadline, 2.
    w = JobWaiter(timeout=2.0)
    actions = run(
        w,
        [
            Start(now=0.0),
            obs("ready", 0.0),
            Woke(now=1.0),
            obs("ready", 1.0),
            Nudged(now=1.5),
            obs("ready", 1.5),
            Woke(now=2.0),
            obs("ready", 2.0),
        ],
    )
    assert actions[3:6] == [Sleep(seconds=1.0), Poll(), Sleep(seconds=0.5)]
    assert isinstance(actions[-1], Raise)
    assert isinstance(actions[-1].error, JobTimeoutError)


def test_a_nudge_for_another_job_is_a_usage_error_and_changes_nothing() -> None:
    w = JobWaiter(job_id="a")
    run(w, PREFIX)
    with pytest.raises(UsageError, match="another job"):
        w.handle(Nudged(now=2.0, job_id="b"))
    assert w.state is State.SLEEPING
    assert w.handle(Nudged(now=2.0, job_id="a")) == Poll()


def test_a_nudge_after_the_end_is_a_usage_error() -> None:
    w = JobWaiter()
    run(w, [Start(now=0.0), obs("completed", 0.0)])
    with pytest.raises(UsageError, match="already over"):
        w.handle(Nudged(now=1.0))


def test_a_nudge_before_start_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not valid while IDLE"):
        JobWaiter().handle(Nudged(now=0.0))


def test_a_restored_sleeping_waiter_keeps_its_due_poll() -> None:
    w = JobWaiter()
    run(w, PREFIX)  # sleeping toward 2.5
    clone = JobWaiter.restore(w.snapshot(), now=100.0)
    assert run(clone, [Nudged(now=101.0), obs("ready", 101.0)]) == [Poll(), Sleep(seconds=0.5)]


# --- the invariants, as properties --------------------------------------------------------


def drive(
    waiter: JobWaiter, done_at: float, nudges: list[float], latency: float
) -> tuple[list[tuple[float, bool]], float]:
    """Run a wait for a job that completes at ``done_at``, with a push at each time in
    ``nudges``; return the polls as (start time, extra?) and when the job was noticed."""
    pushes = sorted(nudges)
    now = 0.0
    polls: list[tuple[float, bool]] = []
    action = waiter.handle(Start(now=now))
    extra = False
    while True:
        if isinstance(action, Sleep):
            until = now + action.seconds
            if pushes and pushes[0] < until:
                now = max(now, pushes.pop(0))
                while pushes and pushes[0] <= now:  # many pushes before the poll: one
                    pushes.pop(0)
                action, extra = waiter.handle(Nudged(now=now)), True
            else:
                now = until
                action, extra = waiter.handle(Woke(now=now)), False
        elif isinstance(action, Poll):
            started = now
            while pushes and pushes[0] <= started:
                pushes.pop(0)
            polls.append((started, extra))
            status = "completed" if started >= done_at else "ready"
            now += latency
            if pushes and pushes[0] <= now:  # came during the poll
                while pushes and pushes[0] <= now:
                    pushes.pop(0)
                waiter.handle(Nudged(now=now))
            action = waiter.handle(obs(status, now))
            extra = isinstance(action, Poll)
        elif isinstance(action, Done):
            return polls, now
        else:
            assert isinstance(action, Raise)
            return polls, math.inf


@given(
    done_at=st.floats(0.0, 200.0),
    pushes=st.lists(st.floats(0.0, 250.0), max_size=12),
    drop=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_pushes_cost_at_most_one_poll_each_and_leave_the_schedule_alone(
    done_at: float, pushes: list[float], drop: list[bool]
) -> None:
    # The job's own webhook (at done_at) may be dropped; other pushes are spurious
    # (duplicates, late deliveries, other jobs' notices routed here by mistake).
    received = [t for t, dropped in zip(pushes, drop, strict=False) if not dropped]
    lone, lone_noticed = drive(JobWaiter(timeout=None), done_at, [], 0.0)
    polls, noticed = drive(JobWaiter(timeout=None), done_at, received, 0.0)
    scheduled = [t for t, extra in polls if not extra]
    # Every scheduled poll of the lone wait happens at the same time (until the end).
    assert scheduled == pytest.approx([t for t, _ in lone][: len(scheduled)])
    assert len(polls) - len(scheduled) <= len(received)
    assert noticed <= lone_noticed + 1e-9
    if any(done_at <= t for t in received):
        assert noticed <= min(t for t in received if t >= done_at) + 1e-9


@given(
    done_at=st.floats(0.0, 100.0),
    pushes=st.lists(st.floats(0.0, 150.0), max_size=8),
    latency=st.floats(0.0, 0.5),
)
def test_with_latency_each_push_costs_at_most_one_poll(
    done_at: float, pushes: list[float], latency: float
) -> None:
    lone, _ = drive(
        JobWaiter(timeout=None, backoff=Backoff(initial=5, factor=1)), done_at, [], latency
    )
    polls, _ = drive(
        JobWaiter(timeout=None, backoff=Backoff(initial=5, factor=1)), done_at, pushes, latency
    )
    assert len(polls) <= len(lone) + len(pushes)


@given(nudges=st.lists(st.floats(0.0, 400.0), max_size=10), timeout=st.floats(0.0, 300.0))
def test_pushes_never_extend_the_wait_past_its_deadline(
    nudges: list[float], timeout: float
) -> None:
    w = JobWaiter(timeout=timeout)
    polls, noticed = drive(w, math.inf, nudges, 0.0)
    assert noticed == math.inf
    assert all(t <= timeout + 1e-9 for t, _ in polls)
    assert w.state is State.RAISED


# --- Wakeup ---------------------------------------------------------------------------


def test_a_single_wait_hears_its_own_id_and_anonymous_wakes() -> None:
    wakeup = Wakeup()
    rings: list[int] = []
    with wakeup.subscribe(lambda: rings.append(1), job_id="a") as sub:
        wakeup.wake("b")
        assert not sub.pending()
        assert rings == []
        wakeup.wake("a")
        wakeup.wake()
        wakeup.wake("a")
        assert sub.pending()
        assert len(rings) == 3
        assert sub.take() == ["a", None]  # many wakes, one per id, in first-woken order
        assert sub.take() == []
        assert not sub.pending()
    assert wakeup.listeners == 0
    wakeup.wake("a")  # after the wait: ignored
    assert len(rings) == 3


def test_a_fleet_hears_every_id_and_a_wait_without_id_hears_all() -> None:
    wakeup = Wakeup()
    fleet = wakeup.subscribe(lambda: None, fleet=True)
    anyone = wakeup.subscribe(lambda: None)
    wakeup.wake("x")
    wakeup.wake("y")
    assert fleet.take() == ["x", "y"]
    assert anyone.take() == ["x", "y"]
    fleet.close()
    fleet.close()  # idempotent
    assert wakeup.listeners == 1
    assert "listeners=1" in repr(wakeup)


def test_wake_rejects_a_non_string_id() -> None:
    with pytest.raises(TypeError, match="string or None"):
        Wakeup().wake(42)  # type: ignore[arg-type]


def test_no_wake_is_lost_from_eight_threads() -> None:
    wakeup = Wakeup()
    ring = threading.Event()
    sub = wakeup.subscribe(ring.set, fleet=True)
    ids = [[f"t{t}-{i}" for i in range(2000)] for t in range(8)]
    start = threading.Barrier(9, timeout=10)

    def waker(mine: list[str]) -> None:
        start.wait()
        for job_id in mine:
            wakeup.wake(job_id)

    # Subscribing and closing other waits concurrently must not disturb delivery.
    def churn() -> None:
        start.wait()
        for _ in range(2000):
            wakeup.subscribe(lambda: None).close()

    threads = [threading.Thread(target=waker, args=(m,)) for m in ids[:7]]
    threads.append(threading.Thread(target=churn))
    seen: list[str | None] = []
    for thread in threads:
        thread.start()
    start.wait()
    while any(thread.is_alive() for thread in threads):
        if ring.wait(0.01):
            ring.clear()
            seen += sub.take()
    for thread in threads:
        thread.join(10)
    seen += sub.take()
    assert sorted(s for s in seen if s is not None) == sorted(i for m in ids[:7] for i in m)
