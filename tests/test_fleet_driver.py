"""Table tests of the driver step (``FleetDriver``) and the fleet rules it relies on.

The core is driven by hand with explicit ``now`` values: each test says what the driver
is told to read, what it hands back, and what the fleet decides from that.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobwait import (
    AllDone,
    Backoff,
    BatchFailed,
    BatchObserved,
    Fetched,
    FetchFailed,
    Finished,
    FleetSleep,
    JobFetchError,
    JobFleet,
    JobTimeoutError,
    JobWaiter,
    Observed,
    PollBatch,
    Start,
    UsageError,
)
from jobwait._errors import JobStatusError
from jobwait._plumbing import BatchRefused, FleetDriver, JobMissingError, Read, refuses_batch
from jobwait.http import ResponseError

RUNNING = {"status": "started"}
DONE = {"status": "completed"}
STEADY = Backoff(initial=1.0, factor=1.0, max=1.0)


def driver(reads: str = "both", **options: Any) -> FleetDriver:
    fleet = JobFleet(backoff=STEADY, batch_window=0.0, max_batch_errors=None, **options)
    return FleetDriver(fleet, reads=reads)  # type: ignore[arg-type]


def http_error(status: int) -> ResponseError:
    return ResponseError(f"HTTP {status}", status_code=status, retryable=status >= 500)


# --- batch or single reads ---------------------------------------------------------------


def test_a_job_due_alone_is_a_single_read_and_two_due_together_a_batch() -> None:
    d = driver()
    d.fleet.add(["a"], now=0.0)
    first = d.step(0.0)
    assert first == Read(ids=("a",), batch=False)
    assert first.time_left == 300.0  # type: ignore[union-attr]
    d.read_done(first, RUNNING, 0.1)
    d.fleet.add(["b"], now=0.1)
    assert d.step(0.1) == Read(ids=("b",), batch=False, time_left=300.0)
    d.read_done(Read(ids=("b",), batch=False), RUNNING, 0.1)
    # Both due at 1.1: one batch read.
    assert d.step(0.2) == FleetSleep(seconds=pytest.approx(0.9))
    read = d.step(1.1)
    assert isinstance(read, Read)
    assert read.batch
    assert read.ids == ("a", "b")


@pytest.mark.parametrize(("reads", "batch"), [("batch", True), ("single", False)])
def test_a_source_that_reads_one_way_always_reads_that_way(reads: str, batch: bool) -> None:
    d = driver(reads, max_batch=1 if reads == "single" else 100)
    d.fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    assert read.batch is batch


def test_single_reads_need_a_fleet_that_reads_one_id_per_request() -> None:
    with pytest.raises(ValueError, match="max_batch=1"):
        FleetDriver(JobFleet(), reads="single")
    with pytest.raises(ValueError, match="'batch', 'single' or 'both'"):
        FleetDriver(JobFleet(), reads="many")  # type: ignore[arg-type]


# --- what a read returned or raised ------------------------------------------------------


def test_a_failed_request_is_a_failed_poll_of_each_job_it_carried() -> None:
    d = driver(max_fetch_errors=2)
    d.fleet.add(["a", "b"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    assert read.batch
    d.read_failed(read, http_error(503), 0.1)
    assert (d.fleet.polls("a"), d.fleet.polls("b")) == (1, 1)
    read = d.step(1.1)
    assert isinstance(read, Read)
    d.read_failed(read, http_error(503), 1.2)
    outcomes = [d.step(1.2), d.step(1.2)]
    assert all(isinstance(o, Finished) and isinstance(o.error, JobFetchError) for o in outcomes)
    error = outcomes[0].error  # type: ignore[union-attr]
    assert error is not None
    assert error.polls == 2
    assert "max_fetch_errors=2" in error.reason


def test_the_fleet_api_keeps_its_own_budget_of_failed_batches() -> None:
    # The documented difference: JobFleet(max_batch_errors=5) counts failed batches
    # fleet-wide, not against max_fetch_errors; shared per-job waits run with None.
    fleet = JobFleet(backoff=STEADY, max_fetch_errors=2)
    d = FleetDriver(fleet, reads="batch")
    fleet.add(["a"], now=0.0)
    for now in (0.0, 1.1, 2.2):
        read = d.step(now)
        assert isinstance(read, Read)
        d.read_failed(read, http_error(503), now + 0.1)
    assert fleet.polls("a") == 3  # a poll each, and still waiting past max_fetch_errors


def test_a_classifier_decides_retryable() -> None:
    fleet = JobFleet(backoff=STEADY, max_batch_errors=None)
    d = FleetDriver(fleet, reads="batch", is_retryable=lambda error: False)
    fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_failed(read, ConnectionError("reset"), 0.1)
    finished = d.step(0.1)
    assert isinstance(finished, Finished)
    assert isinstance(finished.error, JobFetchError)
    assert isinstance(finished.error.__cause__, ConnectionError)


def test_a_single_read_returns_the_job_and_its_hint() -> None:
    d = driver()
    d.fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_done(read, Fetched(RUNNING, retry_after=7.0), 0.1)
    assert d.step(0.1) == FleetSleep(seconds=pytest.approx(7.0))


# --- batches the source cannot read ------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        http_error(404),
        http_error(405),
        http_error(400),
        http_error(501),
        JobStatusError("the batch answer could not be read"),
    ],
)
def test_a_refused_batch_switches_to_single_reads_and_is_no_poll(error: Exception) -> None:
    assert refuses_batch(error)
    d = driver()
    d.fleet.add(["a", "b"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    assert read.batch
    d.read_failed(read, error, 0.1)
    assert (d.fleet.polls("a"), d.fleet.polls("b"), d.fleet.max_batch) == (0, 0, 1)
    first, second = d.step(0.1), d.step(0.1)
    assert first == Read(ids=("a",), batch=False)
    assert second == Read(ids=("b",), batch=False)
    d.read_done(first, DONE, 0.2)
    assert d.step(0.2) == Finished(job_id="a", outcome=DONE)


@pytest.mark.parametrize("status", [429, 500, 503, 401, 403])
def test_other_answers_are_not_refusals(status: int) -> None:
    assert not refuses_batch(http_error(status))
    assert not refuses_batch(ConnectionError("reset"))


def test_a_refusal_of_a_single_read_is_that_jobs_error() -> None:
    d = driver()
    d.fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    assert not read.batch
    d.read_failed(read, http_error(404), 0.1)
    finished = d.step(0.1)
    assert isinstance(finished, Finished)
    assert isinstance(finished.error, JobFetchError)
    assert finished.error.status_code == 404


def test_a_source_that_only_reads_batches_is_never_switched() -> None:
    d = driver("batch")
    d.fleet.add(["a", "b"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_failed(read, http_error(404), 0.1)
    assert d.fleet.max_batch == 100
    assert all(isinstance(d.step(0.1), Finished) for _ in range(2))


# --- jobs a batch answer left out --------------------------------------------------------


def test_a_job_left_out_is_read_alone_and_the_rest_reported_at_once() -> None:
    d = driver()
    d.fleet.add(["a", "b", "c"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    assert read.ids == ("a", "b", "c")
    d.read_done(read, {"a": RUNNING}, 0.1)
    assert d.fleet.polls("a") == 1  # reported at once: its neighbours' reads wait for no one
    assert d.fleet.in_flight == 2  # b and c, each read alone
    assert d.fleet.requests == 3
    one, two = d.step(0.1), d.step(0.1)
    assert (one, two) == (Read(ids=("b",), batch=False), Read(ids=("c",), batch=False))
    d.read_done(one, DONE, 0.2)
    d.read_failed(two, http_error(404), 0.3)
    actions = [d.step(0.3), d.step(0.3)]
    assert actions[0] == Finished(job_id="b", outcome=DONE)
    assert isinstance(actions[1], Finished)
    assert actions[1].job_id == "c"
    assert isinstance(actions[1].error, JobFetchError)
    assert actions[1].error.status_code == 404  # the lone wait's own error
    assert actions[1].error.polls == 1


def test_a_job_left_out_whose_caller_left_is_not_read() -> None:
    d = driver()
    d.fleet.add(["a", "b"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.fleet.discard(["b"], now=0.05)
    d.read_done(read, {"a": RUNNING}, 0.1)
    assert d.fleet.in_flight == 0
    assert isinstance(d.step(0.1), FleetSleep)


def test_without_single_reads_a_job_left_out_is_a_retryable_miss() -> None:
    d = driver("batch")
    d.fleet.add(["a", "b"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_done(read, {"a": RUNNING}, 0.1)
    assert d.fleet.polls("b") == 1
    assert isinstance(d.fleet._waiters["b"].last_error, JobMissingError)


def test_a_batch_read_that_returns_no_mapping_ends_its_jobs() -> None:
    d = driver("batch")
    d.fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_done(read, ["not", "a", "mapping"], 0.1)
    finished = d.step(0.1)
    assert isinstance(finished, Finished)
    assert isinstance(finished.error, JobFetchError)


# --- the fleet rules the step relies on ---------------------------------------------------


def test_a_job_near_its_deadline_goes_out_alone_bounded_by_its_own_time_left() -> None:
    fleet = JobFleet(backoff=STEADY, batch_window=0.0, request_timeout=5.0, max_batch_errors=None)
    fleet.add(["near"], now=0.0, options={"timeout": 3.0})
    fleet.add(["far", "far2"], now=0.0)
    first = fleet.next_action(0.0)
    assert first == PollBatch(ids=("near",))
    assert first.time_left == 3.0
    second = fleet.next_action(0.0)
    assert second == PollBatch(ids=("far", "far2"))
    assert second.time_left == 300.0


def test_without_request_timeout_jobs_share_and_the_nearest_deadline_bounds() -> None:
    fleet = JobFleet(backoff=STEADY, batch_window=0.0)
    fleet.add(["near"], now=0.0, options={"timeout": 3.0})
    fleet.add(["far"], now=0.0)
    batch = fleet.next_action(1.0)
    assert batch == PollBatch(ids=("near", "far"))
    assert batch.time_left == 2.0


def test_batch_refused_must_name_a_batch_in_flight() -> None:
    fleet = JobFleet()
    fleet.add(["a"], now=0.0)
    with pytest.raises(UsageError, match="not a batch in flight"):
        fleet.handle(BatchRefused(ids=("a",), now=0.0))


def test_unanswered_jobs_stay_in_flight_each_as_its_own_read() -> None:
    fleet = JobFleet(backoff=STEADY, batch_window=0.0)
    fleet.add(["a", "b"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, PollBatch)
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": DONE}, now=0.2, unanswered=("b",)))
    assert fleet.next_action(0.2) == Finished(job_id="a", outcome=DONE)
    with pytest.raises(UsageError, match="not a batch in flight"):
        fleet.handle(BatchObserved(ids=("a", "b"), jobs={}, now=0.3))
    fleet.handle(BatchFailed(ids=("b",), error=TimeoutError("slow"), now=0.3, retryable=False))
    finished = fleet.next_action(0.3)
    assert isinstance(finished, Finished)
    error = finished.error
    assert isinstance(error, JobFetchError)
    assert isinstance(error.__cause__, TimeoutError)


def test_per_job_accounting_ends_at_the_deadline_with_the_failure_as_cause() -> None:
    # A request cut at the job's deadline is its last poll, as alone.
    fleet = JobFleet(backoff=STEADY, batch_window=0.0, max_batch_errors=None, timeout=1.0)
    fleet.add(["a"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, PollBatch)
    fleet.handle(BatchFailed(ids=batch.ids, error=TimeoutError("cut"), now=1.0))
    finished = fleet.next_action(1.0)
    assert isinstance(finished, Finished)
    error = finished.error
    assert isinstance(error, JobTimeoutError)
    assert error.polls == 1
    assert isinstance(error.__cause__, TimeoutError)
    # The lone waiter given the same events ends alike.
    lone = JobWaiter(job_id="a", backoff=STEADY, timeout=1.0)
    lone.handle(Start(now=0.0))
    action = lone.handle(FetchFailed(error=TimeoutError("cut"), now=1.0, retryable=True))
    assert type(action.error) is type(error)
    assert action.error.polls == error.polls


def test_a_fleet_snapshot_keeps_the_new_options_and_reads_old_ones() -> None:
    fleet = JobFleet(max_batch_errors=None, request_timeout=5.0)
    fleet.add(["a"], now=0.0)
    snapshot = fleet.snapshot()
    assert (snapshot["options"]["max_batch_errors"], snapshot["options"]["request_timeout"]) == (
        None,
        5.0,
    )
    restored = JobFleet.restore(snapshot, now=0.0)
    assert restored.snapshot()["options"] == snapshot["options"]
    del snapshot["options"]["request_timeout"]  # written before the option existed
    assert JobFleet.restore(snapshot, now=0.0).snapshot()["options"]["request_timeout"] is None


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), True, "5", 10**400])
def test_request_timeout_must_be_a_positive_number(value: object) -> None:
    with pytest.raises(ValueError, match="request_timeout"):
        JobFleet(request_timeout=value)  # type: ignore[arg-type]


def test_observed_is_the_lone_event_a_single_read_becomes() -> None:
    # The step hands the fleet nothing a lone waiter would not see.
    d = driver()
    d.fleet.add(["a"], now=0.0)
    read = d.step(0.0)
    assert isinstance(read, Read)
    d.read_done(read, RUNNING, 0.5)
    lone = JobWaiter(job_id="a", backoff=STEADY)
    lone.handle(Start(now=0.0))
    assert lone.handle(Observed(job=RUNNING, now=0.5)) == d.fleet._waiters["a"].last_action
    assert d.step(0.5) == FleetSleep(seconds=pytest.approx(1.0))
    assert not isinstance(d.step(1.5), AllDone)
