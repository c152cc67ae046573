"""A wait rebuilt from its description alone (``resume_fleet``): what an engine runs that
cannot save a fleet as it goes (an Airflow trigger re-created after a triggerer
restart). Driven with explicit wall-clock ``now`` values, no sleeping."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwait import Backoff, BatchObserved, FleetSleep, JobFleet, JobTimeoutError, PollBatch
from jobwait._durable import resume_fleet
from jobwait._fleet import Finished

STARTED = 1_800_000_000.0


def _walk(backoff: Backoff, seconds: float) -> float:
    # The schedule followed poll by poll: the interval in force once `seconds` passed.
    t, interval = 0.0, backoff.initial
    while t + interval <= seconds and interval < backoff.max:
        t += interval
        interval = backoff.next_interval(interval)
    return interval


def _pending(ids: tuple[str, ...], now: float) -> BatchObserved:
    return BatchObserved(ids=ids, jobs={i: {"id": i, "status": "started"} for i in ids}, now=now)


# --- Backoff.interval_after ---------------------------------------------------------------


def test_interval_after_follows_the_default_schedule() -> None:
    backoff = Backoff()  # polls at 0, 1, 2.5, 4.75, 8.125, ...; 30 s from about 74.9 s
    table = [
        (0.0, 1.0),
        (0.99, 1.0),
        (1.0, 1.5),
        (2.5, 2.25),
        (4.75, 3.375),
        (74.0, 25.62890625),
        (80.0, 30.0),
        (1e9, 30.0),
        (float("inf"), 30.0),
        (-5.0, 1.0),
    ]
    for seconds, interval in table:
        assert backoff.interval_after(seconds) == interval, seconds


def test_interval_after_a_flat_schedule_stays_and_a_slow_one_cannot_overflow() -> None:
    assert Backoff(initial=2.0, factor=1.0, max=9.0).interval_after(1e6) == 2.0
    assert Backoff(initial=1e-6, factor=1.0000001, max=30.0).interval_after(1e15) == 30.0


@given(
    initial=st.floats(0.01, 5.0),
    factor=st.floats(1.0, 4.0),
    ceiling=st.floats(1.0, 50.0),
    seconds=st.floats(0.0, 500.0),
)
def test_interval_after_is_the_schedule_walked_poll_by_poll(
    initial: float, factor: float, ceiling: float, seconds: float
) -> None:
    backoff = Backoff(initial=initial, factor=factor, max=max(initial, initial * ceiling))
    got = backoff.interval_after(seconds)
    walked = _walk(backoff, seconds)
    assert backoff.initial <= got <= backoff.max
    # Equal to within rounding (initial * factor**n against n multiplications), and at
    # an exact boundary the closed form may land one step either side.
    near = [walked, backoff.next_interval(walked)]
    assert any(math.isclose(got, x, rel_tol=1e-9) for x in near) or math.isclose(
        backoff.next_interval(got), walked, rel_tol=1e-9
    )


# --- resume_fleet ---------------------------------------------------------------------------


def test_resume_fleet_at_its_start_is_a_fresh_fleet() -> None:
    options: dict[str, Any] = {"timeout": 60.0, "backoff": Backoff(initial=1.0, factor=2.0)}
    fresh = JobFleet(**options)
    fresh.add(["a", "b"], now=STARTED)
    resumed = resume_fleet(options, ["a", "b"], started=STARTED, now=STARTED)
    now = STARTED
    for _ in range(4):
        first, second = fresh.next_action(now), resumed.next_action(now)
        assert first == second
        if isinstance(first, PollBatch):
            fresh.handle(_pending(first.ids, now))
            resumed.handle(_pending(first.ids, now))
        else:
            assert isinstance(first, FleetSleep)
            now += first.seconds or 0.0


def test_resume_fleet_reads_each_job_once_then_goes_on_from_the_schedule_it_reached() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max=60.0)
    fleet = resume_fleet(
        {"timeout": 600.0, "backoff": backoff}, ["a", "b", "c"], started=STARTED, now=STARTED + 40
    )
    now = STARTED + 40
    read = fleet.next_action(now)
    assert read == PollBatch(ids=("a", "b", "c"))
    assert read.time_left == 560.0  # the deadline is the first start's
    fleet.handle(_pending(read.ids, now + 0.1))
    # 0.5 + 1 + 2 + 4 + 8 + 16 = 31.5 <= 40 < 63.5: the 7th interval, 32 s, not 0.5 s.
    assert backoff.interval_after(40) == 32.0
    assert fleet.next_action(now + 0.1) == FleetSleep(seconds=32.0)


def test_resume_fleet_reads_jobs_past_their_deadline_once_their_last_poll() -> None:
    now = STARTED + 45
    fleet = resume_fleet({"timeout": 30.0}, ["a", "b"], started=STARTED, now=now)
    read = fleet.next_action(now)
    assert read == PollBatch(ids=("a", "b"))
    fleet.handle(
        BatchObserved(
            ids=read.ids,
            jobs={"a": {"id": "a", "status": "completed"}, "b": {"id": "b", "status": "started"}},
            now=now + 0.1,
        )
    )
    ended = {}
    for _ in range(2):
        action = fleet.next_action(now + 0.1)
        assert isinstance(action, Finished)
        ended[action.job_id] = action.outcome
    assert ended["a"] == {"id": "a", "status": "completed"}  # it finished while stored
    timed_out = ended["b"]
    assert isinstance(timed_out, JobTimeoutError)
    assert timed_out.polls == 1
    assert timed_out.elapsed == pytest.approx(45.1)
    assert fleet.requests == 1


def test_resume_fleet_counts_a_clock_behind_the_start_as_no_time_passed() -> None:
    fleet = resume_fleet({"timeout": 10.0}, ["a"], started=STARTED, now=STARTED - 3)
    read = fleet.next_action(STARTED - 3)
    assert read == PollBatch(ids=("a",))
    assert read.time_left == 10.0


def test_resume_fleet_refuses_what_a_fleet_refuses() -> None:
    with pytest.raises(TypeError, match="max_bach"):
        resume_fleet({"max_bach": 3}, ["a"], started=STARTED, now=STARTED)
    with pytest.raises(ValueError, match="started"):
        resume_fleet({}, ["a"], started=float("nan"), now=STARTED)
    with pytest.raises(ValueError, match="now"):
        resume_fleet({}, ["a"], started=STARTED, now=True)  # type: ignore[arg-type]
