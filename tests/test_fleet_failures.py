"""The fleet asks its waiters: failed batches reach each job's own JobWaiter.

The property at the heart of issue 9: for random sequences of batch answers and batch
failures, each job in a fleet sleeps exactly what a lone ``JobWaiter`` sleeps when it
is fed the same failures (``SharedFetchFailed`` for a retryable failed batch, with the
fleet's ``max_batch_errors`` budget modelled here independently as ``spent``;
``FetchFailed(retryable=False)`` for the others), and ends with the same outcome. The
fleet adds only *when* (windows, holds, budgets), never *how long*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait import (
    AllDone,
    Backoff,
    BatchFailed,
    BatchObserved,
    Done,
    FetchFailed,
    Finished,
    FleetSleep,
    JobFetchError,
    JobFleet,
    JobStatusError,
    JobWaiter,
    JobWaitError,
    Observed,
    PollBatch,
    Raise,
    Sleep,
    Start,
    State,
    UsageError,
    Woke,
)
from jobwait._backoff import usable_seconds
from jobwait._fleet import _TABLE, FleetState
from jobwait._plumbing import fleet_transitions
from jobwait._protocol import SharedFetchFailed


@dataclass(frozen=True)
class Answer:
    """One batch's answer: a failure (``error`` set) or every job in ``status``."""

    error: BaseException | None
    retryable: bool
    retry_after: float | None
    finished: frozenset[int]  # indexes (in the batch) of jobs that are now completed


_ALL_COMPLETE = Answer(None, True, None, frozenset(range(4)))

answers_st = st.builds(
    Answer,
    error=st.none() | st.sampled_from([ConnectionError("reset"), TimeoutError("slow")]),
    retryable=st.booleans() | st.just(True),
    retry_after=st.none() | st.floats(0.0, 40.0) | st.just(-1.0) | st.just(float("nan")),
    finished=st.frozensets(st.integers(0, 3), max_size=2),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], list[Answer], float]:
    backoff = Backoff(
        initial=draw(st.sampled_from([0.5, 1.0, 2.0])),
        factor=draw(st.sampled_from([1.0, 1.5, 2.0])),
        max=draw(st.sampled_from([2.0, 10.0, 30.0])),
    )
    per_job = {
        "timeout": draw(st.none() | st.sampled_from([0.0, 3.0, 20.0, 120.0])),
        "backoff": backoff,
        "max_fetch_errors": draw(st.integers(1, 6)),
        "max_retry_after": draw(st.sampled_from([0.0, 5.0, 120.0])),
    }
    fleet = {
        "max_batch": draw(st.integers(1, 4)),
        "batch_window": draw(st.sampled_from([0.0, 0.5])),
        "max_batch_errors": draw(st.integers(1, 8)),
        "max_concurrency": 1,
    }
    answers = draw(st.lists(answers_st, min_size=1, max_size=25))
    latency = draw(st.sampled_from([0.0, 0.25, 1.0]))
    return per_job, fleet, answers, latency


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(1, 4))
def test_each_job_sleeps_what_a_lone_waiter_fed_the_same_failures_sleeps(
    scenario: tuple[dict[str, Any], dict[str, Any], list[Answer], float], n_jobs: int
) -> None:
    per_job, fleet_options, answers, latency = scenario
    fleet = JobFleet(**per_job, **fleet_options)
    ids = [f"j{i}" for i in range(n_jobs)]
    lone = {job_id: JobWaiter(job_id=job_id, **per_job) for job_id in ids}
    for waiter in lone.values():
        waiter.handle(Start(now=0.0))
    fleet.add(ids, now=0.0)
    consecutive = 0  # the fleet's budget, modelled independently
    now = 0.0
    batches = 0
    results: dict[str, Any] = {}
    # id -> (report time, sleep); every job is due when added
    last_report: dict[str, tuple[float, float]] = dict.fromkeys(ids, (0.0, 0.0))
    held: dict[str, float] = {}  # id -> how long its poll in flight was held back
    for _ in range(2_000):
        action = fleet.next_action(now)
        if isinstance(action, AllDone):
            break
        if isinstance(action, Finished):
            results[action.job_id] = action.outcome
            continue
        if isinstance(action, FleetSleep):
            assert action.seconds is not None  # nothing in flight between steps
            now += action.seconds
            continue
        assert isinstance(action, PollBatch)
        for job_id in action.ids:
            held[job_id] = 0.0
            if job_id in last_report:  # never polled earlier than the fleet said
                at, slept = last_report[job_id]
                assert now >= at + slept - 1e-9
                held[job_id] = now - (at + slept)
            if lone[job_id].state is State.SLEEPING:
                lone[job_id].handle(Woke(now=now))
        # after the scripted answers, every job completes
        answer = answers[batches] if batches < len(answers) else _ALL_COMPLETE
        batches += 1
        now += latency
        event: FetchFailed | SharedFetchFailed | None = None
        if answer.error is not None:
            if answer.retryable:
                consecutive += 1
                spent = None
                if consecutive >= fleet_options["max_batch_errors"]:
                    spent = (
                        f"{consecutive} batch requests in a row failed "
                        f"(max_batch_errors={fleet_options['max_batch_errors']})"
                    )
                event = SharedFetchFailed(
                    error=answer.error, now=now, retry_after=answer.retry_after, spent=spent
                )
            else:
                event = FetchFailed(error=answer.error, now=now, retryable=False)
            fleet.handle(
                BatchFailed(
                    ids=action.ids,
                    error=answer.error,
                    now=now,
                    retryable=answer.retryable,
                    retry_after=answer.retry_after,
                )
            )
        else:
            consecutive = 0
            jobs = {
                job_id: {"status": "completed" if i in answer.finished else "ready"}
                for i, job_id in enumerate(action.ids)
            }
            fleet.handle(
                BatchObserved(ids=action.ids, jobs=jobs, now=now, retry_after=answer.retry_after)
            )
        for i, job_id in enumerate(action.ids):
            expected = lone[job_id].handle(
                event
                if event is not None
                else Observed(
                    job={"status": "completed" if i in answer.finished else "ready"},
                    now=now,
                    retry_after=answer.retry_after,
                )
            )
            mine = fleet._waiters.get(job_id)
            if isinstance(expected, Sleep):
                assert mine is not None, (job_id, expected)
                assert mine.last_action == expected
                # and the fleet schedules exactly that sleep (it may only hold the
                # batch back later, for windows, holds and budgets), less how long this
                # poll was held back: a hold does not push the rest of the schedule
                # back (not for a sleep clamped to the deadline or floored by a hint)
                slept = expected.seconds
                deadline = mine.deadline
                clamped = deadline is not None and now + slept >= deadline
                if held[job_id] > 0 and answer.retry_after is None and not clamped:
                    slept = max(0.0, slept - held[job_id])
                due = [d for d, _, j in fleet._plan.timers if j == job_id]
                assert due == [now + slept]
                last_report[job_id] = (now, slept)
            else:
                assert mine is None  # finished: its outcome is in the outbox
                _, outcome = _drain_outcome(fleet, job_id, now, results)
                _same_outcome(outcome, expected)
    else:
        raise AssertionError("the fleet did not finish")
    assert set(results) == set(ids)


def _drain_outcome(
    fleet: JobFleet, job_id: str, now: float, results: dict[str, Any]
) -> tuple[str, Any]:
    outcome = fleet.results[job_id]
    results.setdefault(job_id, outcome)
    return job_id, outcome


def _same_outcome(mine: Any, expected: Done | Raise | Any) -> None:
    if isinstance(expected, Done):
        assert mine == expected.job
        return
    assert isinstance(expected, Raise)
    assert isinstance(mine, JobWaitError)
    error = expected.error
    assert type(mine) is type(error)
    assert (mine.reason, mine.polls, mine.last_status, mine.elapsed) == (
        error.reason,
        error.polls,
        error.last_status,
        error.elapsed,
    )
    assert mine.__cause__ is error.__cause__
    assert getattr(mine, "__notes__", None) == getattr(error, "__notes__", None)


# --- the budget, told to the waiters ---------------------------------------------------


def test_a_spent_budget_ends_jobs_with_fetch_errors_chained_to_the_real_error() -> None:
    fleet = JobFleet(max_batch_errors=1)
    fleet.add(["a"], now=0.0)
    assert fleet.next_action(0.0) == PollBatch(ids=("a",))
    reset = ConnectionError("reset by peer")
    fleet.handle(BatchFailed(ids=("a",), error=reset, now=0.5))
    finished = fleet.next_action(0.5)
    assert isinstance(finished, Finished)
    error = finished.outcome
    assert isinstance(error, JobFetchError)
    assert error.__cause__ is reset
    # the real error is retryable: the message must not claim retrying cannot fix it
    assert "retrying cannot fix" not in str(error)
    assert "max_batch_errors=1" in error.reason
    assert "ConnectionError: reset by peer" in error.reason
    assert any("max_batch_errors=1" in note for note in error.__notes__)
    assert not finished.cancel_job


def test_unparseable_batch_answers_that_spend_the_budget_end_with_fetch_errors() -> None:
    # An HTTP adapter reports a body that is not JSON as a retryable JobStatusError;
    # when such answers spend max_batch_errors the jobs end with JobFetchError (as
    # docs/fleet.md and docs/errors.md promise), caused by the JobStatusError.
    fleet = JobFleet(max_batch_errors=2)
    fleet.add(["a", "b"], now=0.0)
    for now in (0.0, 1.0):
        batch = fleet.next_action(now)
        assert isinstance(batch, PollBatch)
        garbage = JobStatusError("the response body is not JSON: '<html>'")
        garbage.retryable = True
        fleet.handle(BatchFailed(ids=batch.ids, error=garbage, now=now))
    outcomes = [fleet.next_action(1.0), fleet.next_action(1.0)]
    for finished in outcomes:
        assert isinstance(finished, Finished)
        assert type(finished.outcome) is JobFetchError
        assert finished.outcome.__cause__ is garbage
        assert finished.outcome.polls == 2  # every request that carried it counts
    assert fleet.next_action(1.0) == AllDone()


def test_a_failed_batch_retries_on_each_jobs_own_schedule() -> None:
    # a has backed off to 4 s; b is new. A failed batch holding both retries each one
    # after its own next interval: no fleet formula restarts a at the initial interval.
    fleet = JobFleet(backoff=Backoff(initial=1.0, factor=2.0, max=30.0), batch_window=0.0)
    fleet.add(["a"], now=0.0)
    for now in (0.0, 1.0, 3.0):
        assert fleet.next_action(now) == PollBatch(ids=("a",))
        fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=now))
    fleet.add(["b"], now=7.0)
    assert fleet.next_action(7.0) == PollBatch(ids=("a", "b"))
    fleet.handle(BatchFailed(ids=("a", "b"), error=OSError("down"), now=7.0))
    assert fleet.polls("a") == 4  # a shared failure is a poll of the job too
    assert fleet._waiters["a"].last_action == Sleep(seconds=8.0)
    assert fleet._waiters["b"].last_action == Sleep(seconds=1.0)
    assert fleet.next_action(7.0) == FleetSleep(seconds=1.0)
    assert fleet.next_action(8.0) == PollBatch(ids=("b",))


def test_retry_after_is_cleaned_in_one_place() -> None:
    assert usable_seconds(3) == 3.0
    assert usable_seconds(3.5, 2.0) == 2.0
    for bad in (-1, float("nan"), float("inf"), True, "3", None, 10**400):
        assert usable_seconds(bad) is None


# --- the fleet's table -----------------------------------------------------------------


def test_the_fleet_table_lists_every_move_and_the_diagram_comes_from_it() -> None:
    edges = fleet_transitions()
    assert ("RUNNING", "add()", "RUNNING") in [(a.name, b, d.name) for a, b, _, d in edges]
    stop = [e for e in edges if e[0] is FleetState.STOPPING and e[1] == "next_action()"]
    assert {e[3] for e in stop} == {FleetState.STOPPING, FleetState.STOPPED}
    assert all("Raise" in e[2] for e in stop)
    for (state, _key), (handler, _, next_states) in _TABLE.items():
        assert callable(getattr(JobFleet, handler))
        assert next_states
        assert state in FleetState


def test_every_call_moves_the_fleet_only_as_its_table_says() -> None:
    fleet = JobFleet(fail_fast=True, max_batch=1, batch_window=0.0)

    def check(before: FleetState, key: Any) -> None:
        allowed = _TABLE[(before, key)][2]
        assert fleet._state in allowed, (before, key, fleet._state)

    fleet.add(["a", "b"], now=0.0)
    check(FleetState.RUNNING, "add")
    first = fleet.next_action(0.0)
    assert isinstance(first, PollBatch)
    second = fleet.next_action(0.0)
    assert isinstance(second, PollBatch)
    fleet.handle(BatchFailed(ids=first.ids, error=PermissionError("401"), now=0.1, retryable=False))
    check(FleetState.RUNNING, BatchFailed)
    assert fleet._state is FleetState.STOPPING
    with pytest.raises(UsageError, match="fail_fast stopped"):
        fleet.add(["c"], now=0.1)
    seen = []
    while fleet._state is FleetState.STOPPING:
        before = fleet._state
        seen.append(type(fleet.next_action(0.1)).__name__)
        check(before, "next_action")
    assert seen == ["Finished", "CancelJobs", "Raise"]
    fleet.handle(BatchObserved(ids=second.ids, jobs={}, now=0.2))  # late: ignored
    check(FleetState.STOPPED, BatchObserved)
    with pytest.raises(UsageError, match="already returned"):
        fleet.next_action(0.2)
    with pytest.raises(UsageError, match=r"takes .*BatchObserved or BatchFailed"):
        fleet.handle(Woke(now=0.3))  # type: ignore[arg-type]
