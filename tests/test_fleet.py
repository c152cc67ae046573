"""Table tests of the JobFleet scheduler in virtual time.

Each test drives the fleet by hand (or through ``run_fleet``, a tiny pure driver that
models an async driver: batches complete ``latency`` virtual seconds after they go
out, and the driver wakes early for them) and asserts the exact actions and times.
"""

from __future__ import annotations

import heapq
import math
import pickle
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from jobwait import (
    AllDone,
    Backoff,
    BatchFailed,
    BatchObserved,
    CancelJobs,
    Fetched,
    Finished,
    FleetSleep,
    JobFailedError,
    JobFetchError,
    JobFleet,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    PollBatch,
    Raise,
    State,
    UsageError,
)
from jobwait._errors import FleetFailedError
from jobwait._plumbing import JobMissingError, batch_failed, batch_observed, ionq_predicted_seconds
from jobwait.testing import Fail, simulate

# --- the simulated driver (also used by test_fleet_properties.py) ---------------------

JobScript = Callable[[float, int], Any]  # (now, poll index of this job) -> job | Fail
BatchScript = Callable[[int, float], Fail | None]  # (batch index, now) -> whole-batch fault


@dataclass
class Run:
    """What ``run_fleet`` saw."""

    batches: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    finished: list[Finished] = field(default_factory=list)
    cancels: list[tuple[str, ...]] = field(default_factory=list)
    error: FleetFailedError | None = None
    job_polls: dict[str, list[float]] = field(default_factory=dict)
    max_in_flight: int = 0
    end: float = 0.0
    actions: list[Any] = field(default_factory=list)

    @property
    def outcomes(self) -> dict[str, Any]:
        return {f.job_id: f.outcome for f in self.finished}

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.batches]


def run_fleet(
    fleet: JobFleet,
    scripts: Mapping[str, JobScript],
    *,
    ids: Iterable[str] | None = None,
    latency: float = 0.0,
    batch_faults: BatchScript | None = None,
    adds: Iterable[tuple[float, list[str]]] = (),
    max_steps: int = 200_000,
) -> Run:
    """Drive ``fleet`` until ``AllDone`` or ``Raise``, in virtual time from 0.

    A batch's jobs are read at dispatch time and reported ``latency`` later. A job
    script returning ``Fail`` makes that job missing from the response; a batch fault
    fails the whole request.
    """
    run = Run()
    now = 0.0
    fleet.add(list(scripts) if ids is None else list(ids), now=now)
    later = sorted(adds, key=lambda a: a[0])
    reported: dict[str, int] = {}
    in_flight: list[tuple[float, int, PollBatch, float, Any]] = []
    seq = 0
    for _ in range(max_steps):
        action = fleet.next_action(now)
        run.actions.append(action)
        kind = type(action)
        if kind is PollBatch:
            assert isinstance(action, PollBatch)
            fault = batch_faults(len(run.batches), now) if batch_faults else None
            run.batches.append((now, action.ids))
            if fault is None:
                jobs = {}
                for job_id in action.ids:
                    result = scripts[job_id](now, reported.get(job_id, 0))
                    reported[job_id] = reported.get(job_id, 0) + 1
                    run.job_polls.setdefault(job_id, []).append(now)
                    if type(result) is not Fail:
                        jobs[job_id] = result
                result_of: Any = jobs
            else:
                result_of = fault
            heapq.heappush(in_flight, (now + latency, seq, action, now, result_of))
            seq += 1
            run.max_in_flight = max(run.max_in_flight, len(in_flight))
            continue
        if kind is Finished:
            assert isinstance(action, Finished)
            run.finished.append(action)
            continue
        if kind is CancelJobs:
            assert isinstance(action, CancelJobs)
            run.cancels.append(action.ids)
            continue
        if kind is Raise:
            assert isinstance(action, Raise)
            assert isinstance(action.error, FleetFailedError)
            run.error = action.error
            break
        if kind is AllDone:
            assert not in_flight
            if later:
                at, more = later.pop(0)
                now = max(now, at)
                fleet.add(more, now=now)
                continue
            break
        assert isinstance(action, FleetSleep)
        wake = math.inf if action.seconds is None else now + action.seconds
        if action.seconds is None:
            assert in_flight, "FleetSleep(None) with nothing in flight would hang"
        else:
            assert action.seconds > 0
        targets = [wake]
        if in_flight:
            targets.append(in_flight[0][0])
        if later:
            targets.append(later[0][0])
        now = max(now, min(targets))
        while in_flight and in_flight[0][0] <= now:
            at, _, batch, _sent, result_of = heapq.heappop(in_flight)
            if isinstance(result_of, Fail):
                fleet.handle(
                    BatchFailed(
                        ids=batch.ids,
                        error=result_of.error,
                        now=at,
                        retryable=result_of.retryable,
                        retry_after=result_of.retry_after,
                    )
                )
            else:
                fleet.handle(BatchObserved(ids=batch.ids, jobs=result_of, now=at))
        # A driver adds nothing once fail_fast stopped the fleet (add would refuse).
        while later and later[0][0] <= now and not fleet.stopped:
            fleet.add(later.pop(0)[1], now=now)
    else:
        raise AssertionError("the fleet did not finish within max_steps")
    run.end = now
    return run


def timeline(*points: tuple[float, str], missing: Iterable[int] = ()) -> JobScript:
    """A job script: the status of the last point at or before ``now``; polls with an
    index in ``missing`` are left out of the response."""
    gaps = frozenset(missing)

    def script(now: float, index: int) -> Any:
        if index in gaps:
            return Fail(JobMissingError("?"))
        status = points[0][1]
        for at, value in points:
            if at <= now:
                status = value
        return {"status": status}

    return script


def done_at(t: float, status: str = "completed") -> JobScript:
    return timeline((0.0, "ready"), (t, status))


def same(ids: Iterable[str], status: str) -> dict[str, Any]:
    """A response with every id in ``status``."""
    return {job_id: {"status": status} for job_id in ids}


def step(fleet: JobFleet, now: float) -> Any:
    return fleet.next_action(now)


# --- batching ---------------------------------------------------------------------------


def test_jobs_due_together_share_one_request() -> None:
    fleet = JobFleet()
    assert fleet.add(["a", "b", "c"], now=0.0) == ("a", "b", "c")
    assert step(fleet, 0.0) == PollBatch(ids=("a", "b", "c"))
    assert step(fleet, 0.0) == FleetSleep(seconds=None)  # one batch in flight
    fleet.handle(BatchObserved(ids=("a", "b", "c"), jobs=same("abc", "ready"), now=0.0))
    assert step(fleet, 0.0) == FleetSleep(seconds=1.0)
    assert step(fleet, 1.0) == PollBatch(ids=("a", "b", "c"))
    assert fleet.requests == 2
    assert [fleet.polls(i) for i in "abc"] == [1, 1, 1]


def test_max_batch_splits_a_due_crowd() -> None:
    ids = [f"j{i}" for i in range(250)]
    fleet = JobFleet(max_batch=100)
    fleet.add(ids, now=0.0)
    batches = [step(fleet, 0.0) for _ in range(3)]
    assert [b.ids for b in batches] == [tuple(ids[:100]), tuple(ids[100:200]), tuple(ids[200:])]
    assert step(fleet, 0.0) == FleetSleep(seconds=None)


def test_max_batch_one_polls_each_job_alone() -> None:
    fleet = JobFleet(max_batch=1)
    fleet.add(["a", "b"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    assert step(fleet, 0.0) == PollBatch(ids=("b",))


def test_batch_window_holds_until_the_other_job_is_due() -> None:
    fleet = JobFleet(batch_window=1.0)
    fleet.add(["a"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.0))
    fleet.add(["b"], now=0.2)
    # b is due at 0.2; a comes due at 1.0, inside b's window (until 1.2): hold b.
    assert step(fleet, 0.2) == FleetSleep(seconds=pytest.approx(0.8))
    assert step(fleet, 1.0) == PollBatch(ids=("b", "a"))


def test_batch_window_zero_never_holds() -> None:
    fleet = JobFleet(batch_window=0.0)
    fleet.add(["a"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.0))
    fleet.add(["b"], now=0.2)
    assert step(fleet, 0.2) == PollBatch(ids=("b",))


def test_batch_window_never_holds_a_job_past_its_deadline() -> None:
    # timeout 0.5: a's next poll (final, at its deadline) is due at 0.5; b, added at
    # 0.2, has its deadline at 0.7 < 0.2 + window: it is held only until a is due.
    fleet = JobFleet(timeout=0.5, batch_window=1.0)
    fleet.add(["a"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.0))
    fleet.add(["b"], now=0.2)
    assert step(fleet, 0.2) == FleetSleep(seconds=pytest.approx(0.3))
    assert step(fleet, 0.5) == PollBatch(ids=("a", "b"))  # a, at its deadline, first
    fleet.handle(BatchObserved(ids=("a", "b"), jobs=same("ab", "ready"), now=0.5))
    finished = step(fleet, 0.5)
    assert finished.job_id == "a"
    assert isinstance(finished.outcome, JobTimeoutError)
    assert finished.cancel_job is True
    # b's final poll is due at its deadline 0.7; nothing else is due: it goes at 0.7.
    assert step(fleet, 0.5) == FleetSleep(seconds=pytest.approx(0.2))
    assert step(fleet, 0.7) == PollBatch(ids=("b",))


def test_window_is_capped_by_a_ready_jobs_deadline() -> None:
    # b (deadline 2.0) is ready at 1.5 with another job due at 2.4 (inside b's window):
    # b goes out at its deadline 2.0, not at 2.4.
    fleet = JobFleet(timeout=2.0, batch_window=1.0, backoff=Backoff(initial=1.5, max=1.5))
    fleet.add(["b"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("b",))
    fleet.add(["c"], now=0.9)
    assert step(fleet, 0.9) == PollBatch(ids=("c",))
    fleet.handle(BatchObserved(ids=("b",), jobs={"b": {"status": "ready"}}, now=0.9))
    fleet.handle(BatchObserved(ids=("c",), jobs={"c": {"status": "ready"}}, now=0.9))
    # b: due at 0.9 + min(1.5, 1.1) = 2.0 (final); c: due at 2.4.
    assert step(fleet, 0.9) == FleetSleep(seconds=pytest.approx(1.1))
    assert step(fleet, 2.0) == PollBatch(ids=("b",))


# --- the global budget and concurrency ----------------------------------------------------


def test_budget_spaces_requests_one_second_apart() -> None:
    fleet = JobFleet(max_batch=1, max_polls_per_second=2)
    run = run_fleet(fleet, {f"j{i}": done_at(0.0) for i in range(5)})
    assert run.times == [0.0, 0.0, 1.0, 1.0, 2.0]
    assert sorted(run.outcomes) == [f"j{i}" for i in range(5)]


def test_concurrency_caps_batches_in_flight() -> None:
    fleet = JobFleet(max_batch=1, max_concurrency=2)
    fleet.add(["a", "b", "c"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    assert step(fleet, 0.0) == PollBatch(ids=("b",))
    # c waits for a free slot; the only timer left is c's deadline (it would expire)
    assert step(fleet, 0.0) == FleetSleep(seconds=300.0)
    assert fleet.in_flight == 2
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "completed"}}, now=0.3))
    assert step(fleet, 0.3) == Finished(job_id="a", outcome={"status": "completed"})
    assert step(fleet, 0.3) == PollBatch(ids=("c",))


def test_a_deadline_passing_under_the_budget_times_out_at_the_deadline() -> None:
    fleet = JobFleet(max_batch=1, max_polls_per_second=1, timeout=0.5)
    fleet.add(["a", "b", "c"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    assert step(fleet, 0.0) == FleetSleep(seconds=0.5)  # b and c wait for a slot at 1.0
    expired = [step(fleet, 0.5), step(fleet, 0.5)]
    assert [f.job_id for f in expired] == ["b", "c"]
    for f in expired:
        assert isinstance(f.outcome, JobTimeoutError)
        assert f.cancel_job
        assert (f.outcome.polls, f.outcome.elapsed, f.outcome.timeout) == (0, 0.5, 0.5)
    # a is in flight past its deadline: it ends when its batch reports, as a lone wait.
    assert step(fleet, 0.5) == FleetSleep(seconds=None)
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.7))
    last = step(fleet, 0.7)
    assert last.job_id == "a"
    assert isinstance(last.outcome, JobTimeoutError)
    assert last.outcome.polls == 1
    assert step(fleet, 0.7) == AllDone()


# --- reports: missing ids, batch failures -------------------------------------------------


def test_a_job_missing_from_the_response_is_its_own_fetch_failure() -> None:
    fleet = JobFleet(max_fetch_errors=2)
    run = run_fleet(fleet, {"a": timeline((0.0, "ready"), missing=[0, 1]), "b": done_at(2.0)})
    a = run.outcomes["a"]
    assert isinstance(a, JobFetchError)
    assert isinstance(a.__cause__, JobMissingError)
    assert a.__cause__.job_id == "a"
    assert a.polls == 2
    assert "max_fetch_errors=2" in str(a)
    assert run.outcomes["b"] == {"status": "completed"}
    assert run.batches[:2] == [(0.0, ("a", "b")), (1.0, ("a", "b"))]


def test_a_missing_job_recovers_when_it_comes_back() -> None:
    fleet = JobFleet(max_fetch_errors=2)
    run = run_fleet(fleet, {"a": timeline((0.0, "ready"), (2.0, "completed"), missing=[0])})
    assert run.outcomes == {"a": {"status": "completed"}}
    assert fleet.polls("a") == 3


def test_retryable_batch_failure_retries_the_batch_and_holds_the_fleet() -> None:
    fleet = JobFleet()
    fleet.add(["a", "b"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a", "b"))
    boom = ConnectionError("503")
    fleet.handle(BatchFailed(ids=("a", "b"), error=boom, now=0.1, retry_after=5.0))
    fleet.add(["c"], now=0.2)  # c is due now, but the fleet is held until 5.1
    assert step(fleet, 0.2) == FleetSleep(seconds=pytest.approx(4.9))
    assert step(fleet, 5.1) == PollBatch(ids=("c", "a", "b"))
    # each job's waiter answered the shared failure itself; a poll of the job
    assert fleet.polls("a") == 1


def test_jobs_held_by_retry_after_go_out_when_the_hold_ends() -> None:
    # a fails with Retry-After 5 (hold until 5.1) and makes its last poll at its
    # deadline 4.0, as a lone wait does (its sleep never passes the deadline);
    # b, added at 2.0 (deadline 6.0), must be polled when the hold ends, not expire.
    fleet = JobFleet(timeout=4.0)
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    fleet.handle(BatchFailed(ids=("a",), error=OSError(), now=0.1, retry_after=5.0))
    fleet.add(["b"], now=2.0)
    assert step(fleet, 2.0) == FleetSleep(seconds=2.0)
    assert step(fleet, 4.0) == PollBatch(ids=("a",))  # through the hold: b waits
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "started"}}, now=4.0))
    expired = step(fleet, 4.0)
    assert expired.job_id == "a"
    assert isinstance(expired.outcome, JobTimeoutError)
    assert expired.outcome.polls == 2
    assert step(fleet, 4.0) == FleetSleep(seconds=pytest.approx(1.1))
    assert step(fleet, 5.1) == PollBatch(ids=("b",))


def test_retry_after_is_capped_by_max_retry_after() -> None:
    fleet = JobFleet(max_retry_after=2.0)
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    fleet.handle(BatchFailed(ids=("a",), error=OSError(), now=0.0, retry_after=3600.0))
    assert step(fleet, 0.0) == FleetSleep(seconds=2.0)


def test_batch_retries_back_off_on_the_fleet_schedule() -> None:
    fleet = JobFleet(backoff=Backoff(initial=1.0, factor=2.0, max=3.0), max_batch_errors=10)
    fails = iter(range(4))
    run = run_fleet(
        fleet,
        {"a": done_at(0.0)},
        batch_faults=lambda i, now: (
            Fail(OSError("down")) if next(fails, None) is not None else None
        ),
    )
    assert run.times == [0.0, 1.0, 3.0, 6.0, 9.0]
    assert run.outcomes == {"a": {"status": "completed"}}


def test_spent_fleet_error_budget_ends_the_batch_with_fetch_errors() -> None:
    fleet = JobFleet(max_batch_errors=2, max_batch=1)
    fleet.add(["a", "b"], now=0.0)
    assert step(fleet, 0.0) == PollBatch(ids=("a",))
    assert step(fleet, 0.0) == PollBatch(ids=("b",))
    boom = TimeoutError("gateway")
    fleet.handle(BatchFailed(ids=("a",), error=boom, now=0.0))  # 1st in a row: retry
    fleet.handle(BatchFailed(ids=("b",), error=boom, now=0.0))  # 2nd: budget spent
    finished = step(fleet, 0.0)
    assert finished.job_id == "b"
    error = finished.outcome
    assert isinstance(error, JobFetchError)
    assert error.__cause__ is boom
    assert error.polls == 1
    assert any("max_batch_errors=2" in note for note in error.__notes__)
    # the count stays spent until a batch is observed: a's next failure ends it too
    assert step(fleet, 1.0) == PollBatch(ids=("a",))
    fleet.handle(BatchFailed(ids=("a",), error=boom, now=1.0))
    assert isinstance(step(fleet, 1.0).outcome, JobFetchError)
    assert step(fleet, 1.0) == AllDone()


def test_an_observed_batch_resets_the_fleet_error_count() -> None:
    fleet = JobFleet(max_batch_errors=2)
    faults = {0: Fail(OSError()), 2: Fail(OSError()), 4: Fail(OSError())}
    run = run_fleet(fleet, {"a": done_at(20.0)}, batch_faults=lambda i, now: faults.get(i))
    assert run.outcomes == {"a": {"status": "completed"}}


def test_non_retryable_batch_failure_ends_every_job_of_the_batch() -> None:
    fleet = JobFleet()
    fleet.add(["a", "b"], now=0.0)
    step(fleet, 0.0)
    denied = PermissionError("401")
    fleet.handle(BatchFailed(ids=("a", "b"), error=denied, now=0.5, retryable=False))
    out = [step(fleet, 0.5), step(fleet, 0.5)]
    assert [f.job_id for f in out] == ["a", "b"]
    for f in out:
        assert isinstance(f.outcome, JobFetchError)
        assert f.outcome.__cause__ is denied
        assert f.outcome.polls == 1
        assert not f.cancel_job
    assert step(fleet, 0.5) == AllDone()


def test_a_failed_batch_at_the_deadline_times_out_with_the_error_as_cause() -> None:
    fleet = JobFleet(timeout=1.0)
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    boom = OSError("reset")
    fleet.handle(BatchFailed(ids=("a",), error=boom, now=1.0))
    f = step(fleet, 1.0)
    assert isinstance(f.outcome, JobTimeoutError)
    assert f.outcome.__cause__ is boom
    assert f.cancel_job


def test_a_batch_retry_is_clamped_to_the_deadline() -> None:
    fleet = JobFleet(timeout=0.5)
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    fleet.handle(BatchFailed(ids=("a",), error=OSError(), now=0.1))
    assert step(fleet, 0.1) == FleetSleep(seconds=pytest.approx(0.4))
    assert step(fleet, 0.5) == PollBatch(ids=("a",))


def test_batch_retry_after_on_success_goes_to_each_job() -> None:
    fleet = JobFleet()
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.0, retry_after=7))
    assert step(fleet, 0.0) == FleetSleep(seconds=7.0)


# --- per-job semantics are the waiter's ------------------------------------------------


def test_per_job_outcomes_equal_a_lone_waiters() -> None:
    failing = timeline((0.0, "ready"), (3.0, "failed"))
    lone = simulate(JobWaiter(job_id="x"), failing)
    fleet = JobFleet()
    run = run_fleet(fleet, {"x": failing})
    error = run.outcomes["x"]
    assert isinstance(error, JobFailedError)
    assert isinstance(lone.outcome, JobFailedError)
    assert str(error) == str(lone.outcome)
    assert run.job_polls["x"] == lone.polls


def test_raise_on_failure_false_returns_the_failed_job() -> None:
    run = run_fleet(JobFleet(raise_on_failure=False), {"x": done_at(0.0, "failed")})
    assert run.outcomes == {"x": {"status": "failed"}}


# --- fail fast ------------------------------------------------------------------------------


def test_fail_fast_reports_results_and_cancels_the_rest() -> None:
    fleet = JobFleet(fail_fast=True, max_batch=2, max_concurrency=None)
    scripts = {
        "ok": done_at(0.0),
        "bad": done_at(0.0, "failed"),
        "slow1": done_at(99.0),
        "slow2": done_at(99.0),
    }
    run = run_fleet(fleet, scripts, latency=0.5)
    assert [f.job_id for f in run.finished] == ["ok", "bad"]
    assert run.cancels == [("slow1", "slow2")]
    error = run.error
    assert isinstance(error, FleetFailedError)
    assert isinstance(error, JobWaitError)
    assert isinstance(error.__cause__, JobFailedError)
    assert error.job_id == "bad"
    assert error.results == {"ok": {"status": "completed"}, "bad": error.__cause__}
    assert error.unfinished == ("slow1", "slow2")
    assert fleet.stopped
    assert fleet.waiting == 0
    # the batch (slow1, slow2) was in flight: its report was accepted and ignored
    assert fleet.in_flight == 0
    assert dict(fleet.results) == error.results
    with pytest.raises(UsageError, match="already returned"):
        fleet.next_action(0.5)
    with pytest.raises(UsageError, match="fail_fast stopped"):
        fleet.add(["new"], now=0.5)


def test_fail_fast_on_a_timeout_under_the_budget() -> None:
    fleet = JobFleet(fail_fast=True, max_batch=1, max_polls_per_second=1, timeout=0.5)
    # a is in flight (latency 0.7) when b, held back by the budget, expires at 0.5
    run = run_fleet(fleet, {"a": done_at(9.0), "b": done_at(9.0)}, latency=0.7)
    assert isinstance(run.error, FleetFailedError)
    assert isinstance(run.error.__cause__, JobTimeoutError)
    assert run.error.job_id == "b"
    assert run.error.elapsed == 0.5
    assert run.cancels == [("a",)]


def test_fleet_failed_error_pickles() -> None:
    error = FleetFailedError("x", results={"a": 1}, unfinished=("b",), job_id="a", polls=2)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.results, copy.unfinished, copy.job_id, copy.polls) == ({"a": 1}, ("b",), "a", 2)
    missing = pickle.loads(pickle.dumps(JobMissingError("z")))
    assert missing.job_id == "z"


# --- adding, duplicates, state ---------------------------------------------------------------


def test_duplicate_ids_are_ignored_and_results_keyed_as_given() -> None:
    fleet = JobFleet()
    assert fleet.add(["a", "b", "a"], now=0.0) == ("a", "b")
    assert fleet.add(["b", "c"], now=0.0) == ("c",)
    run_fleet_from_here = step(fleet, 0.0)
    assert run_fleet_from_here == PollBatch(ids=("a", "b", "c"))
    fleet.handle(BatchObserved(ids=("a", "b", "c"), jobs=same("abc", "completed"), now=0.0))
    assert [step(fleet, 0.0).job_id for _ in range(3)] == ["a", "b", "c"]
    assert fleet.add(["a"], now=1.0) == ()  # finished ids too
    assert step(fleet, 1.0) == AllDone()
    assert sorted(fleet.results) == ["a", "b", "c"]


def test_jobs_added_after_all_done_continue_the_fleet() -> None:
    fleet = JobFleet()
    run = run_fleet(fleet, {"a": done_at(0.0), "b": done_at(12.0)}, ids=["a"], adds=[(10.0, ["b"])])
    assert [(t, ids) for t, ids in run.batches] == [
        (0.0, ("a",)),
        (10.0, ("b",)),
        (11.0, ("b",)),
        (12.5, ("b",)),
    ]
    assert fleet.finished == 2
    assert fleet.waiting == 0


def test_progress_state() -> None:
    fleet = JobFleet()
    fleet.add(["a", "b"], now=0.0)
    assert (fleet.waiting, fleet.finished, fleet.in_flight, fleet.requests) == (2, 0, 0, 0)
    step(fleet, 0.0)
    assert (fleet.in_flight, fleet.requests) == (1, 1)
    fleet.handle(
        BatchObserved(
            ids=("a", "b"), jobs={"a": {"status": "completed"}, "b": {"status": "ready"}}, now=0.0
        )
    )
    assert fleet.last_status("b") == "ready"
    assert (fleet.waiting, fleet.finished, fleet.polls("a"), fleet.polls("b")) == (1, 1, 1, 1)
    assert "waiting=1" in repr(fleet)
    with pytest.raises(TypeError):
        fleet.results["x"] = 1  # type: ignore[index]


# --- predictions -----------------------------------------------------------------------------


def predicted(status: str, wait_ms: float, run_ms: float = 0.0) -> dict[str, Any]:
    return {
        "status": status,
        "predicted_wait_time_ms": wait_ms,
        "predicted_execution_duration_ms": run_ms,
    }


def test_a_prediction_defers_the_next_poll_once() -> None:
    def script(now: float, index: int) -> Any:
        return predicted("completed" if now >= 100 else "ready", 80_000, 20_000)

    run = run_fleet(JobFleet(use_predictions=True), {"a": script})
    # poll at 0 sees 100 s predicted: next poll at 90; then the waiter's own backoff
    # (its 2nd interval, 1.5 s), without deferring again.
    assert run.times == [0.0, 90.0, 91.5, 93.75, 97.125, 102.1875]
    plain = run_fleet(JobFleet(), {"a": script})
    assert len(plain.batches) == 11


def test_a_prediction_never_defers_past_the_deadline() -> None:
    run = run_fleet(
        JobFleet(use_predictions=True, timeout=30.0),
        {"a": lambda now, i: predicted("ready", 600_000)},
    )
    assert run.times == [0.0, 30.0]
    assert isinstance(run.outcomes["a"], JobTimeoutError)


def test_predictions_are_off_by_default_and_read_safely() -> None:
    assert ionq_predicted_seconds({"predicted_wait_time_ms": 1500}) == 1.5
    assert ionq_predicted_seconds({"predicted_wait_time_ms": None}) is None
    assert ionq_predicted_seconds({"predicted_wait_time_ms": "soon"}) is None
    assert ionq_predicted_seconds({"predicted_wait_time_ms": math.nan}) is None
    run = run_fleet(
        JobFleet(), {"a": lambda now, i: predicted("completed" if now > 5 else "ready", 99_000)}
    )
    assert run.times[1] == 1.0


# --- jitter ----------------------------------------------------------------------------------


def test_jitter_scales_a_whole_batch_by_one_factor() -> None:
    fleet = JobFleet(backoff=Backoff(jitter="equal", rng=random.Random(7)))
    fleet.add(["a", "b", "c"], now=0.0)
    batch = step(fleet, 0.0)
    fleet.handle(BatchObserved(ids=batch.ids, jobs=same("abc", "ready"), now=0.0))
    sleep = step(fleet, 0.0)
    assert 0.5 <= sleep.seconds <= 1.0
    assert sleep.seconds != 1.0
    assert step(fleet, sleep.seconds) == PollBatch(ids=("a", "b", "c"))


def test_jitter_never_moves_a_final_poll_off_the_deadline() -> None:
    fleet = JobFleet(timeout=0.5, backoff=Backoff(jitter="full", rng=random.Random(1)))
    fleet.add(["a"], now=0.0)
    step(fleet, 0.0)
    fleet.handle(BatchObserved(ids=("a",), jobs={"a": {"status": "ready"}}, now=0.0))
    assert step(fleet, 0.0) == FleetSleep(seconds=0.5)


# --- helpers and misuse --------------------------------------------------------------------


def test_driver_helpers_classify_like_single_fetches() -> None:
    ids = ("a",)
    assert batch_observed(ids, {"a": 1}, 2.0) == BatchObserved(ids=ids, jobs={"a": 1}, now=2.0)
    hinted = batch_observed(ids, Fetched({"a": 1}, retry_after=3.0), 2.0)
    assert hinted.retry_after == 3.0
    failed = batch_failed(ids, ConnectionError(), 1.0)
    assert failed.retryable
    assert not batch_failed(ids, ValueError(), 1.0).retryable


def test_usage_errors_leave_the_fleet_unchanged() -> None:
    fleet = JobFleet()
    fleet.add(["a"], now=1.0)
    with pytest.raises(TypeError, match="not one string"):
        fleet.add("abc", now=1.0)
    with pytest.raises(TypeError, match="strings"):
        fleet.add([1], now=1.0)  # type: ignore[list-item]
    with pytest.raises(UsageError, match="monotonic"):
        fleet.next_action(0.5)
    batch = step(fleet, 1.0)
    with pytest.raises(UsageError, match="not a batch in flight"):
        fleet.handle(BatchObserved(ids=("zzz",), jobs={}, now=1.0))
    with pytest.raises(UsageError, match="mapping"):
        fleet.handle(BatchObserved(ids=batch.ids, jobs=[], now=1.0))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="monotonic"):
        fleet.handle(BatchObserved(ids=batch.ids, jobs={}, now=0.0))
    with pytest.raises(UsageError, match="takes BatchObserved"):
        fleet.handle("nope")  # type: ignore[arg-type]
    assert fleet.in_flight == 1
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": {"status": "completed"}}, now=1.0))
    with pytest.raises(UsageError, match="not a batch in flight"):
        fleet.handle(BatchObserved(ids=batch.ids, jobs={}, now=1.0))  # reported twice


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_batch", 0),
        ("max_batch", True),
        ("batch_window", -1),
        ("batch_window", math.inf),
        ("max_polls_per_second", 0),
        ("max_concurrency", 1.5),
        ("max_batch_errors", 0),
        ("timeout", -1),
        ("max_fetch_errors", 0),
    ],
)
def test_invalid_options_are_rejected(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        JobFleet(**{option: value})


def test_backoff_type_is_checked() -> None:
    with pytest.raises(TypeError, match="Backoff"):
        JobFleet(backoff=1.0)  # type: ignore[arg-type]


# --- Expired, the waiter's transition the fleet needs -------------------------------------


def test_waiter_expired_ends_with_the_timeout_error_of_a_lone_wait() -> None:
    from jobwait import Expired, Observed, Start, Woke

    waiter = JobWaiter(job_id="x", timeout=2.0)
    waiter.handle(Start(now=0.0))
    waiter.handle(Observed(job={"status": "ready"}, now=0.0))
    with pytest.raises(UsageError, match="deadline"):
        waiter.handle(Expired(now=1.9))
    assert waiter.state is State.SLEEPING
    assert waiter.elapsed == 0.0  # a rejected event leaves the waiter unchanged
    cause = OSError("x")
    action = waiter.handle(Expired(now=2.0, cause=cause))
    assert isinstance(action, Raise)
    assert action.cancel_job
    assert isinstance(action.error, JobTimeoutError)
    assert action.error.__cause__ is cause
    assert (action.error.polls, action.error.elapsed, action.error.last_status) == (1, 2.0, "ready")
    assert waiter.state is State.RAISED
    assert waiter.last_action is action
    with pytest.raises(UsageError, match="RAISED"):
        waiter.handle(Expired(now=3.0))
    with pytest.raises(UsageError):
        waiter.handle(Woke(now=3.0))
    untimed = JobWaiter(timeout=None)
    untimed.handle(Start(now=0.0))
    with pytest.raises(UsageError, match="deadline"):
        untimed.handle(Expired(now=1e9))
    idle = JobWaiter(timeout=1.0)
    with pytest.raises(UsageError, match="IDLE"):
        idle.handle(Expired(now=5.0))
