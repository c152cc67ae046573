"""Table tests of the JobWaiter core: an event sequence in, the exact action sequence out.

Each test plays a list of ``(event, expected action)`` steps through one waiter. A
``Raise`` is matched with :class:`Raises` (exceptions compare by identity), every other
action by dataclass equality, so sleeps are checked to the last bit.
"""

from __future__ import annotations

import itertools
import logging
import math
import pickle
import random
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from jobwait import (
    Backoff,
    Done,
    Expired,
    FetchFailed,
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    Observed,
    Phase,
    Poll,
    Raise,
    Sleep,
    Start,
    State,
    Statuses,
    UsageError,
    Woke,
    field_reader,
)
from jobwait._errors import FleetFailedError
from jobwait._plumbing import Transition, transitions
from jobwait._protocol import Nudged, SharedFetchFailed
from jobwait._waiter import _TABLE


class Raises:
    """Matches a ``Raise`` action by error type, ``cancel_job`` and (optionally) cause."""

    def __init__(
        self,
        error_type: type[JobWaitError],
        *,
        cancel_job: bool = False,
        cause: BaseException | None = None,
    ) -> None:
        self.error_type = error_type
        self.cancel_job = cancel_job
        self.cause = cause

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Raise)
            and type(other.error) is self.error_type
            and other.cancel_job == self.cancel_job
            and (self.cause is None or other.error.__cause__ is self.cause)
        )

    def __repr__(self) -> str:
        name = self.error_type.__name__
        return f"Raises({name}, cancel_job={self.cancel_job}, cause={self.cause!r})"


Step = tuple[Any, Any]


def play(waiter: JobWaiter, steps: Sequence[Step]) -> list[Any]:
    """Feed every event; assert the actions are exactly the expected ones."""
    got = []
    for i, (event, expected) in enumerate(steps):
        action = waiter.handle(event)
        got.append(action)
        assert action == expected, f"step {i}: {event!r} gave {action!r}, expected {expected!r}"
    return got


def obs(status: Any, now: float, **kw: Any) -> Observed:
    return Observed(job={"status": status}, now=now, **kw)


def fail(now: float, error: BaseException | None = None, **kw: Any) -> FetchFailed:
    return FetchFailed(
        error=error if error is not None else ConnectionError("reset"), now=now, **kw
    )


def last_error(actions: list[Any]) -> JobWaitError:
    action = actions[-1]
    assert isinstance(action, Raise)
    return action.error


def pending_steps(times: Sequence[float], status: str = "ready") -> list[Step]:
    """Start at times[0], then observe ``status`` at each time and sleep to the next."""
    steps: list[Step] = [(Start(now=times[0]), Poll())]
    for t, t_next in itertools.pairwise(times):
        steps += [(obs(status, t), Sleep(seconds=t_next - t)), (Woke(now=t_next), Poll())]
    return steps


# --- the default schedule ------------------------------------------------------------

DEFAULT_SLEEPS = [
    1.0,
    1.5,
    2.25,
    3.375,
    5.0625,
    7.59375,
    11.390625,
    17.0859375,
    25.62890625,
    30.0,
    30.0,
    30.0,
    30.0,
    30.0,
    30.0,
    30.0,
    15.11328125,  # clamped: the last poll lands exactly on the 300 s deadline
]
DEFAULT_POLLS = [0.0, 1.0, 2.5, 4.75, 8.125, 13.1875, 20.78125, 32.171875, 49.2578125]
DEFAULT_POLLS += [74.88671875 + 30 * k for k in range(8)] + [300.0]


def test_default_schedule_is_18_polls_then_timeout_with_cancel() -> None:
    assert len(DEFAULT_POLLS) == 18
    assert [b - a for a, b in itertools.pairwise(DEFAULT_POLLS)] == DEFAULT_SLEEPS
    waiter = JobWaiter(job_id="j1")
    steps = pending_steps(DEFAULT_POLLS)
    steps.append((obs("ready", 300.0), Raises(JobTimeoutError, cancel_job=True)))
    error = last_error(play(waiter, steps))
    assert isinstance(error, JobTimeoutError)
    assert error.timeout == 300.0
    assert error.polls == 18
    assert error.elapsed == 300.0
    assert error.__cause__ is None
    assert waiter.state is State.RAISED


def test_default_backoff_intervals() -> None:
    assert Backoff().intervals(11) == [*DEFAULT_SLEEPS[:10], 30.0]
    assert Backoff().next_interval(25.62890625) == 30.0


def test_clamped_sleep_makes_the_next_poll_the_last() -> None:
    steps = pending_steps([0.0, 1.0, 2.5, 4.75, 8.125, 10.0])
    assert steps[-2][1] == Sleep(seconds=1.875)
    steps.append((obs("ready", 10.0), Raises(JobTimeoutError, cancel_job=True)))
    play(JobWaiter(timeout=10.0), steps)


def test_clamped_final_poll_does_not_trust_float_equality() -> None:
    # now + (deadline - now) lands a hair short of the deadline here; the poll after a
    # clamped sleep must still be the last one, not followed by a 2e-16 s sleep.
    start, now = 0.1, 0.7571470780944988
    deadline = start + 1.7
    left = deadline - now
    assert now + left < deadline
    waiter = JobWaiter(timeout=1.7, backoff=Backoff(initial=2.0, max=2.0))
    play(
        waiter,
        [
            (Start(now=start), Poll()),
            (obs("ready", now), Sleep(seconds=left)),
            (Woke(now=now + left), Poll()),
            (obs("ready", now + left), Raises(JobTimeoutError, cancel_job=True)),
        ],
    )


def test_retry_after_clamped_to_deadline_also_makes_the_last_poll() -> None:
    play(
        JobWaiter(timeout=5.0),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.0, retry_after=10.0), Sleep(seconds=5.0)),
            (Woke(now=5.0), Poll()),
            (obs("ready", 5.0), Raises(JobTimeoutError, cancel_job=True)),
        ],
    )


def test_latency_past_the_deadline_times_out_without_sleeping() -> None:
    play(
        JobWaiter(timeout=10.0),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 12.0), Raises(JobTimeoutError, cancel_job=True)),
        ],
    )


@pytest.mark.parametrize("observed_at", [0.0, 0.5, 1e9])
def test_timeout_zero_polls_exactly_once(observed_at: float) -> None:
    waiter = JobWaiter(timeout=0)
    actions = play(
        waiter,
        [
            (Start(now=0.0), Poll()),
            (obs("ready", observed_at), Raises(JobTimeoutError, cancel_job=True)),
        ],
    )
    assert last_error(actions).polls == 1
    assert waiter.deadline == 0.0


def test_timeout_zero_still_returns_a_finished_job() -> None:
    job = {"status": "completed"}
    play(
        JobWaiter(timeout=0),
        [(Start(now=3.0), Poll()), (Observed(job=job, now=3.0), Done(job=job))],
    )


def test_terminal_status_wins_over_the_deadline() -> None:
    job = {"status": "completed"}
    play(
        JobWaiter(timeout=1.0),
        [(Start(now=0.0), Poll()), (Observed(job=job, now=99.0), Done(job=job))],
    )


@pytest.mark.parametrize("timeout", [None, math.inf])
def test_no_timeout_waits_forever_with_capped_sleeps(timeout: float | None) -> None:
    waiter = JobWaiter(timeout=timeout)
    now = 0.0
    assert waiter.handle(Start(now=now)) == Poll()
    assert waiter.deadline is None
    assert waiter.timeout is None
    sleeps = []
    for _ in range(2000):
        action = waiter.handle(obs("ready", now))
        assert isinstance(action, Sleep)
        sleeps.append(action.seconds)
        now += action.seconds
        assert waiter.handle(Woke(now=now)) == Poll()
    assert sleeps[:10] == DEFAULT_SLEEPS[:10]
    assert set(sleeps[9:]) == {30.0}
    assert waiter.time_left(now) is None
    assert waiter.polls == 2000


# --- terminal statuses ---------------------------------------------------------------


def test_completed_returns_the_same_job_object() -> None:
    job = {"status": "completed", "results": [1, 2]}
    actions = play(
        JobWaiter(),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.1), Sleep(seconds=1.0)),
            (Woke(now=1.1), Poll()),
            (Observed(job=job, now=1.3), Done(job=job)),
        ],
    )
    assert actions[-1].job is job


@pytest.mark.parametrize(
    ("job", "failure"),
    [
        (
            {"status": "failed", "failure": {"code": "E1", "message": "boom"}},
            {"code": "E1", "message": "boom"},
        ),
        ({"status": "failed"}, None),
        (SimpleNamespace(status="failed", failure="attr-payload"), "attr-payload"),
    ],
)
def test_failed_raises_with_the_failure_payload(job: Any, failure: Any) -> None:
    actions = play(
        JobWaiter(job_id="j1"),
        [(Start(now=0.0), Poll()), (Observed(job=job, now=0.5), Raises(JobFailedError))],
    )
    error = last_error(actions)
    assert isinstance(error, JobFailedError)
    assert error.failure == failure
    assert error.last_job is job
    assert error.last_status == "failed"
    if failure is None:  # no reason is said in words, with where to read one
        assert "job failed, giving no reason" in str(error)
        assert "failure_of=jobwait.field_reader(" in str(error)
    else:
        assert repr(failure)[:20] in str(error)


def test_failed_without_raise_on_failure_returns_the_job() -> None:
    job = {"status": "failed", "failure": {"code": "E1"}}
    play(
        JobWaiter(raise_on_failure=False),
        [(Start(now=0.0), Poll()), (Observed(job=job, now=0.0), Done(job=job))],
    )


def test_failure_of_raising_is_a_status_error_with_cause() -> None:
    boom = RuntimeError("cannot read failure")

    def failure_of(job: Any) -> Any:
        raise boom

    actions = play(
        JobWaiter(failure_of=failure_of),
        [(Start(now=0.0), Poll()), (obs("failed", 0.0), Raises(JobStatusError, cause=boom))],
    )
    assert "RuntimeError: cannot read failure" in str(last_error(actions))


def test_canceled_returns_the_job_by_default() -> None:
    job = {"status": "canceled"}
    play(JobWaiter(), [(Start(now=0.0), Poll()), (Observed(job=job, now=0.0), Done(job=job))])


def test_canceled_raises_with_raise_on_cancel() -> None:
    actions = play(
        JobWaiter(raise_on_cancel=True),
        [(Start(now=0.0), Poll()), (obs("canceled", 0.0), Raises(JobCanceledError))],
    )
    assert last_error(actions).last_status == "canceled"


# --- fetch failures --------------------------------------------------------------------


def test_retryable_failures_retry_on_the_schedule_and_a_success_resets_the_count() -> None:
    errors = [ConnectionError(f"reset {i}") for i in range(5)]
    job = {"status": "completed"}
    actions = play(
        JobWaiter(max_fetch_errors=3),
        [
            (Start(now=0.0), Poll()),
            (fail(0.0, errors[0]), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (fail(1.0, errors[1]), Sleep(seconds=1.5)),
            (Woke(now=2.5), Poll()),
            (obs("ready", 2.5), Sleep(seconds=2.25)),  # resets the count: 2 more allowed
            (Woke(now=4.75), Poll()),
            (fail(4.75, errors[2]), Sleep(seconds=3.375)),
            (Woke(now=8.125), Poll()),
            (fail(8.125, errors[3]), Sleep(seconds=5.0625)),
            (Woke(now=13.1875), Poll()),
            (Observed(job=job, now=13.1875), Done(job=job)),
        ],
    )
    assert len(actions) == 12


def test_error_budget_spent_at_the_max_fetch_errors_th_failure() -> None:
    errors = [TimeoutError(f"slow {i}") for i in range(3)]
    waiter = JobWaiter(job_id="j1", max_fetch_errors=3)
    actions = play(
        waiter,
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.0), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (fail(1.0, errors[0]), Sleep(seconds=1.5)),
            (Woke(now=2.5), Poll()),
            (fail(2.5, errors[1]), Sleep(seconds=2.25)),
            (Woke(now=4.75), Poll()),
            (fail(4.75, errors[2]), Raises(JobFetchError, cause=errors[2])),
        ],
    )
    error = last_error(actions)
    assert error.__suppress_context__
    assert error.polls == 4
    assert error.last_status == "ready"
    assert "3 fetches in a row failed (max_fetch_errors=3)" in str(error)
    assert "TimeoutError: slow 2" in str(error)


def test_max_fetch_errors_one_gives_up_at_the_first_failure() -> None:
    error = OSError("down")
    play(
        JobWaiter(max_fetch_errors=1),
        [(Start(now=0.0), Poll()), (fail(0.0, error), Raises(JobFetchError, cause=error))],
    )


def test_budget_is_checked_before_the_deadline() -> None:
    errors = [ConnectionError("a"), ConnectionError("b")]
    play(
        JobWaiter(timeout=1.0, max_fetch_errors=2),
        [
            (Start(now=0.0), Poll()),
            (fail(0.0, errors[0]), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (fail(1.0, errors[1]), Raises(JobFetchError, cause=errors[1])),
        ],
    )


@pytest.mark.parametrize("failed_at", [1.0, 7.5])
def test_retryable_failure_at_or_after_the_deadline_times_out_with_cause(failed_at: float) -> None:
    errors = [ConnectionError("a"), ConnectionError("b")]
    actions = play(
        JobWaiter(timeout=1.0),
        [
            (Start(now=0.0), Poll()),
            (fail(0.0, errors[0]), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (fail(failed_at, errors[1]), Raises(JobTimeoutError, cancel_job=True, cause=errors[1])),
        ],
    )
    assert last_error(actions).__suppress_context__


def test_non_retryable_failure_raises_at_once() -> None:
    error = ValueError("bad request")
    actions = play(
        JobWaiter(max_fetch_errors=10),
        [
            (Start(now=0.0), Poll()),
            (fail(0.0, error, retryable=False), Raises(JobFetchError, cause=error)),
        ],
    )
    assert "retrying cannot fix it: ValueError: bad request" in str(last_error(actions))


def test_fetch_error_copies_http_context_from_the_cause() -> None:
    class HTTPError(Exception):
        status_code = 404
        request_id = "req-7"
        body_excerpt = "x" * 500

    actions = play(
        JobWaiter(),
        [
            (Start(now=0.0), Poll()),
            (fail(0.0, HTTPError(), retryable=False), Raises(JobFetchError)),
        ],
    )
    error = last_error(actions)
    assert isinstance(error, JobFetchError)
    assert (error.status_code, error.request_id) == (404, "req-7")
    assert error.body_excerpt == "x" * 200


def test_fetch_error_ignores_http_context_of_the_wrong_type() -> None:
    error = ConnectionError("x")
    error.status_code = True  # type: ignore[attr-defined]
    error.request_id = 5  # type: ignore[attr-defined]
    error.body_excerpt = b"bytes"  # type: ignore[attr-defined]
    actions = play(
        JobWaiter(max_fetch_errors=1),
        [(Start(now=0.0), Poll()), (fail(0.0, error), Raises(JobFetchError))],
    )
    fetch_error = last_error(actions)
    assert isinstance(fetch_error, JobFetchError)
    assert (fetch_error.status_code, fetch_error.request_id, fetch_error.body_excerpt) == (
        None,
        None,
        None,
    )


# --- server hints ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (None, 1.0),
        (0.0, 1.0),
        (0.5, 1.0),  # a floor, never shortens the sleep
        (10.0, 10.0),
        (120.0, 120.0),
        (500.0, 120.0),  # capped at max_retry_after
        (-3.0, 1.0),  # ignored
        (math.nan, 1.0),
        (math.inf, 1.0),
        (-math.inf, 1.0),
    ],
)
@pytest.mark.parametrize("kind", ["observed", "fetch_failed"])
def test_retry_after_hint(hint: float | None, expected: float, kind: str) -> None:
    event = (
        obs("ready", 0.0, retry_after=hint) if kind == "observed" else fail(0.0, retry_after=hint)
    )
    play(JobWaiter(), [(Start(now=0.0), Poll()), (event, Sleep(seconds=expected))])


def test_retry_after_cap_is_configurable_and_does_not_change_the_backoff() -> None:
    play(
        JobWaiter(max_retry_after=7.0, timeout=None),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.0, retry_after=60.0), Sleep(seconds=7.0)),
            (Woke(now=7.0), Poll()),
            (obs("ready", 7.0), Sleep(seconds=1.5)),  # the interval grew as usual
            (Woke(now=8.5), Poll()),
            (fail(8.5, retry_after=2.0), Sleep(seconds=2.25)),
        ],
    )


def test_max_retry_after_zero_disables_hints() -> None:
    play(
        JobWaiter(max_retry_after=0),
        [(Start(now=0.0), Poll()), (obs("ready", 0.0, retry_after=50.0), Sleep(seconds=1.0))],
    )


# --- statuses ------------------------------------------------------------------------


def test_unknown_status_waits_and_is_logged_once_per_distinct_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwait")
    job = {"status": "completed"}
    waiter = JobWaiter(job_id="j9")
    play(
        waiter,
        [
            (Start(now=0.0), Poll()),
            (obs("warming_up", 0.0), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (obs("warming_up", 1.0), Sleep(seconds=1.5)),
            (Woke(now=2.5), Poll()),
            (obs("thawing", 2.5), Sleep(seconds=2.25)),
            (Woke(now=4.75), Poll()),
            (obs("warming_up", 4.75), Sleep(seconds=3.375)),
        ],
    )
    assert waiter.phase is Phase.UNKNOWN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["jobwait", "jobwait"]
    assert "'warming_up'" in warnings[0].getMessage()
    assert "'thawing'" in warnings[1].getMessage()
    assert "j9" in warnings[0].getMessage()
    play(waiter, [(Woke(now=8.125), Poll()), (Observed(job=job, now=8.125), Done(job=job))])


def test_unknown_status_raises_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="jobwait")
    actions = play(
        JobWaiter(statuses=Statuses(on_unknown="raise")),
        [(Start(now=0.0), Poll()), (obs("warming_up", 0.0), Raises(JobStatusError))],
    )
    error = last_error(actions)
    assert "unknown status 'warming_up'" in str(error)
    assert error.last_status == "warming_up"
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


class _NoStatus:
    pass


@pytest.mark.parametrize(
    "job",
    [
        {},
        {"status": None},
        {"status": 3},
        {"status": b"completed"},
        {"state": "completed"},
        _NoStatus(),
        SimpleNamespace(status=None),
        None,
        [],
        "completed",
    ],
    ids=repr,
)
def test_missing_or_non_string_status_is_a_status_error(job: Any) -> None:
    waiter = JobWaiter()
    actions = play(
        waiter, [(Start(now=0.0), Poll()), (Observed(job=job, now=0.0), Raises(JobStatusError))]
    )
    error = last_error(actions)
    assert error.last_job is job
    assert error.last_status is None
    assert error.polls == 1
    assert isinstance(error.__cause__, LookupError | type(None))


@pytest.mark.parametrize(
    "raised", [KeyError("status"), AttributeError("status"), RuntimeError("x")]
)
def test_status_of_raising_is_a_status_error_with_cause(raised: Exception) -> None:
    def status_of(job: Any) -> Any:
        raise raised

    actions = play(
        JobWaiter(status_of=status_of),
        [(Start(now=0.0), Poll()), (obs("ready", 0.0), Raises(JobStatusError, cause=raised))],
    )
    assert type(raised).__name__ in str(last_error(actions))


def test_field_reader_reads_a_dotted_path() -> None:
    waiter = JobWaiter(status_of=field_reader("state.status"))
    job = SimpleNamespace(state={"status": "completed"})
    play(waiter, [(Start(now=0.0), Poll()), (Observed(job=job, now=0.0), Done(job=job))])
    waiter = JobWaiter(status_of=field_reader("state.status"))
    actions = play(
        waiter,
        [(Start(now=0.0), Poll()), (Observed(job={"state": {}}, now=0.0), Raises(JobStatusError))],
    )
    assert "'state.status'" in str(last_error(actions))


def test_case_insensitive_statuses() -> None:
    statuses = Statuses(case_sensitive=False)
    job = {"status": "COMPLETED"}
    play(
        JobWaiter(statuses=statuses),
        [
            (Start(now=0.0), Poll()),
            (obs("Ready", 0.0), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (Observed(job=job, now=1.0), Done(job=job)),
        ],
    )
    play(
        JobWaiter(statuses=statuses),
        [(Start(now=0.0), Poll()), (obs("FaIlEd", 0.0), Raises(JobFailedError))],
    )
    assert statuses.phase("CANCELED") is Phase.CANCELED


def test_case_sensitive_by_default() -> None:
    waiter = JobWaiter()
    play(waiter, [(Start(now=0.0), Poll()), (obs("COMPLETED", 0.0), Sleep(seconds=1.0))])
    assert waiter.phase is Phase.UNKNOWN
    assert waiter.last_status == "COMPLETED"


@pytest.mark.parametrize(
    ("statuses", "status", "phase"),
    [
        (Statuses.ionq(), "submitted", Phase.PENDING),
        (Statuses.ionq(), "running", Phase.PENDING),
        (Statuses.ionq(), "completed", Phase.SUCCEEDED),
        (Statuses.ionq(), "cancelled", Phase.UNKNOWN),  # IonQ spells it with one l
        (Statuses.braket(), "QUEUED", Phase.PENDING),
        (Statuses.braket(), "CANCELLING", Phase.PENDING),
        (Statuses.braket(), "COMPLETED", Phase.SUCCEEDED),
        (Statuses.braket(), "FAILED", Phase.FAILED),
        (Statuses.braket(), "CANCELLED", Phase.CANCELED),
        (Statuses.braket(), "completed", Phase.UNKNOWN),
        (Statuses.qiskit(), "QUEUED", Phase.PENDING),
        (Statuses.qiskit(), "completed", Phase.SUCCEEDED),
        (Statuses.qiskit(), "DONE", Phase.SUCCEEDED),
        (Statuses.qiskit(), "error", Phase.FAILED),
        (Statuses.qiskit(), "Cancelled", Phase.CANCELED),
    ],
)
def test_statuses_presets(statuses: Statuses, status: str, phase: Phase) -> None:
    assert statuses.phase(status) is phase
    waiter = JobWaiter(statuses=statuses, raise_on_failure=False)
    waiter.handle(Start(now=0.0))
    action = waiter.handle(obs(status, 0.0))
    assert waiter.phase is phase
    assert isinstance(action, Done if phase.terminal else Sleep)


def test_ionq_preset_is_the_default() -> None:
    assert Statuses.ionq() == Statuses()
    assert JobWaiter().statuses == Statuses()


def test_statuses_replace_moves_a_value() -> None:
    statuses = Statuses().replace(succeeded={"ready"})
    assert statuses.phase("ready") is Phase.SUCCEEDED
    assert statuses.phase("completed") is Phase.UNKNOWN
    assert statuses.phase("started") is Phase.PENDING
    assert Statuses().replace(on_unknown="raise").on_unknown == "raise"


# --- jitter --------------------------------------------------------------------------


def _pending_sleeps(waiter: JobWaiter, count: int) -> list[float]:
    now = 0.0
    waiter.handle(Start(now=now))
    sleeps = []
    for _ in range(count):
        action = waiter.handle(obs("ready", now))
        assert isinstance(action, Sleep)
        sleeps.append(action.seconds)
        now += action.seconds
        waiter.handle(Woke(now=now))
    return sleeps


def _expected_jitter(
    jitter: str, seed: int, count: int, initial: float, factor: float, cap: float
) -> list[float]:
    rng = random.Random(seed)
    interval = previous = initial
    out = []
    for _ in range(count):
        if jitter == "full":
            sleep = rng.uniform(0.0, interval)
        elif jitter == "equal":
            sleep = interval / 2 + rng.uniform(0.0, interval / 2)
        else:
            sleep = min(cap, rng.uniform(initial, previous * 3))
        out.append(sleep)
        previous = sleep
        interval = min(interval * factor, cap)
    return out


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jitter_follows_the_documented_formula(jitter: Any) -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max=20.0, jitter=jitter, rng=random.Random(1234))
    sleeps = _pending_sleeps(JobWaiter(timeout=None, backoff=backoff), 60)
    assert sleeps == _expected_jitter(jitter, 1234, 60, 0.5, 2.0, 20.0)


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated"])
def test_jitter_bounds_and_reproducibility(jitter: Any) -> None:
    def run(seed: int) -> list[float]:
        backoff = Backoff(initial=1.0, factor=1.5, max=30.0, jitter=jitter, rng=random.Random(seed))
        return _pending_sleeps(JobWaiter(timeout=None, backoff=backoff), 200)

    sleeps = run(42)
    assert sleeps == run(42)
    assert sleeps != run(43)
    intervals = Backoff().intervals(200)
    previous = 1.0
    for sleep, interval in zip(sleeps, intervals, strict=True):
        if jitter == "full":
            assert 0.0 <= sleep <= interval
        elif jitter == "equal":
            assert interval / 2 <= sleep <= interval
        else:
            assert 1.0 <= sleep <= min(30.0, previous * 3)
        previous = sleep
    assert len(set(sleeps)) > 100  # really random (decorrelated often hits the cap)


def test_jitter_without_rng_gets_its_own_generator() -> None:
    backoff = Backoff(jitter="full")
    assert isinstance(backoff.rng, random.Random)
    assert Backoff().rng is None
    assert Backoff(jitter="full") == Backoff(jitter="full", rng=random.Random(1))


def test_jittered_sleep_is_still_clamped_to_the_deadline() -> None:
    backoff = Backoff(initial=10.0, max=10.0, jitter="equal", rng=random.Random(0))
    play(
        JobWaiter(timeout=3.0, backoff=backoff),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.0), Sleep(seconds=3.0)),
            (Woke(now=3.0), Poll()),
            (obs("ready", 3.0), Raises(JobTimeoutError, cancel_job=True)),
        ],
    )


# --- read-only state -------------------------------------------------------------------


def test_read_only_properties_through_a_wait() -> None:
    w = JobWaiter(job_id="j1", timeout=300.0)
    assert (w.state, w.polls, w.elapsed, w.last_status, w.last_job, w.phase) == (
        State.IDLE,
        0,
        0.0,
        None,
        None,
        None,
    )
    assert (w.status_changed, w.finished, w.deadline, w.time_left(5.0), w.last_action) == (
        False,
        False,
        None,
        None,
        None,
    )
    w.handle(Start(now=100.0))
    assert (w.state, w.deadline, w.elapsed) == (State.POLLING, 400.0, 0.0)
    assert w.time_left(150.0) == 250.0
    assert w.time_left(500.0) == 0.0
    assert w.last_action == Poll()

    job1 = {"status": "ready"}
    w.handle(Observed(job=job1, now=100.5))
    assert (w.state, w.polls, w.elapsed, w.last_status, w.phase) == (
        State.SLEEPING,
        1,
        0.5,
        "ready",
        Phase.PENDING,
    )
    assert w.last_job is job1
    assert w.status_changed  # the first observation counts as a change
    assert w.last_action == Sleep(seconds=1.0)

    w.handle(Woke(now=101.5))
    assert (w.state, w.elapsed, w.status_changed) == (State.POLLING, 1.5, False)
    w.handle(obs("ready", 101.5))
    assert not w.status_changed
    w.handle(Woke(now=103.0))
    w.handle(obs("started", 103.0))
    assert w.status_changed
    assert w.last_status == "started"
    w.handle(Woke(now=105.25))
    w.handle(fail(105.5))
    assert (w.polls, w.last_status, w.status_changed, w.phase) == (
        4,
        "started",
        False,
        Phase.PENDING,
    )
    w.handle(Woke(now=109.0))
    done = {"status": "completed"}
    w.handle(Observed(job=done, now=109.0))
    assert (w.state, w.finished, w.phase, w.status_changed, w.polls) == (
        State.DONE,
        True,
        Phase.SUCCEEDED,
        True,
        5,
    )
    assert w.last_action == Done(job=done)
    assert w.elapsed == 9.0


def test_status_changed_is_false_after_an_unreadable_status() -> None:
    w = JobWaiter(raise_on_failure=True)
    w.handle(Start(now=0.0))
    w.handle(obs("ready", 0.0))
    w.handle(Woke(now=1.0))
    w.handle(Observed(job={}, now=1.0))
    assert not w.status_changed
    assert w.last_status == "ready"
    assert w.state is State.RAISED


@pytest.mark.parametrize(
    "name",
    [
        "state",
        "polls",
        "elapsed",
        "last_status",
        "last_job",
        "phase",
        "status_changed",
        "finished",
        "deadline",
    ],
)
def test_properties_are_read_only(name: str) -> None:
    w = JobWaiter()
    with pytest.raises(AttributeError):
        setattr(w, name, None)


def test_configuration_properties_and_repr() -> None:
    backoff = Backoff(initial=2.0)
    w = JobWaiter(job_id="j1", timeout=12.5, backoff=backoff)
    assert (w.timeout, w.backoff, w.job_id) == (12.5, backoff, "j1")
    assert repr(w) == "<JobWaiter job_id='j1' state=IDLE polls=0 last_status=None>"


# --- logging -------------------------------------------------------------------------


def test_logging_debug_per_poll_and_info_per_status_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobwait")
    job = {"status": "completed"}
    play(
        JobWaiter(job_id="j1"),
        [
            (Start(now=0.0), Poll()),
            (obs("ready", 0.0), Sleep(seconds=1.0)),
            (Woke(now=1.0), Poll()),
            (obs("ready", 1.0), Sleep(seconds=1.5)),
            (Woke(now=2.5), Poll()),
            (fail(2.5), Sleep(seconds=2.25)),
            (Woke(now=4.75), Poll()),
            (obs("started", 4.75), Sleep(seconds=3.375)),
            (Woke(now=8.125), Poll()),
            (Observed(job=job, now=8.125), Done(job=job)),
        ],
    )
    assert {r.name for r in caplog.records} == {"jobwait"}
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(debug) == 5
    assert all(f"poll {i}" in m for i, m in enumerate(debug, 1))
    assert "retryable" in debug[2]
    assert info == [
        "job j1: status None -> 'ready'",
        "job j1: status 'ready' -> 'started'",
        "job j1: status 'started' -> 'completed'",
    ]


def test_no_debug_records_when_debug_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="jobwait")
    _pending_sleeps(JobWaiter(), 5)
    assert [r.levelno for r in caplog.records] == [logging.INFO]


# --- errors: context, messages, pickling ----------------------------------------------


def _scenario(config: dict[str, Any], events: list[Any]) -> JobWaitError:
    waiter = JobWaiter(job_id="j1", **config)
    for event in events[:-1]:
        action = waiter.handle(event)
        assert not isinstance(action, Raise | Done)
    action = waiter.handle(events[-1])
    assert isinstance(action, Raise)
    return action.error


_BASE = [Start(now=10.0), obs("ready", 10.25), Woke(now=11.25)]


class _HTTPError(Exception):
    status_code = 503
    request_id = "req-1"
    body_excerpt = "overloaded"


ERROR_SCENARIOS: dict[str, Callable[[], tuple[JobWaitError, str | None, int, float]]] = {
    "timeout": lambda: (
        _scenario({"timeout": 1.0}, [*_BASE, obs("started", 11.5)]),
        "started",
        2,
        1.5,
    ),
    "failed": lambda: (
        _scenario(
            {}, [*_BASE, Observed(job={"status": "failed", "failure": {"code": "X"}}, now=11.5)]
        ),
        "failed",
        2,
        1.5,
    ),
    "canceled": lambda: (
        _scenario({"raise_on_cancel": True}, [*_BASE, obs("canceled", 11.5)]),
        "canceled",
        2,
        1.5,
    ),
    "fetch": lambda: (
        _scenario({}, [*_BASE, fail(11.5, _HTTPError("503"), retryable=False)]),
        "ready",
        2,
        1.5,
    ),
    "budget": lambda: (
        _scenario({"max_fetch_errors": 1}, [*_BASE, fail(11.5, _HTTPError("503"))]),
        "ready",
        2,
        1.5,
    ),
    "status": lambda: (
        _scenario({}, [*_BASE, Observed(job={"status": 7}, now=11.5)]),
        "ready",
        2,
        1.5,
    ),
    "unknown": lambda: (
        _scenario({"statuses": Statuses(on_unknown="raise")}, [*_BASE, obs("odd", 11.5)]),
        "odd",
        2,
        1.5,
    ),
}


def _usage_error() -> UsageError:
    waiter = JobWaiter(job_id="j1")
    for event in _BASE:
        waiter.handle(event)
    with pytest.raises(UsageError) as info:
        waiter.handle(Woke(now=12.0))
    return info.value


def _all_errors() -> list[tuple[str, JobWaitError, str | None, int, float]]:
    out = [(name, *make()) for name, make in ERROR_SCENARIOS.items()]
    out.append(("usage", _usage_error(), "ready", 1, 1.25))
    return out


@pytest.mark.parametrize("name", [*ERROR_SCENARIOS, "usage"])
def test_every_error_carries_its_context_and_names_it(name: str) -> None:
    [(_, error, status, polls, elapsed)] = [e for e in _all_errors() if e[0] == name]
    assert (error.job_id, error.last_status, error.polls, error.elapsed) == (
        "j1",
        status,
        polls,
        elapsed,
    )
    assert error.last_job is not None
    assert error.last_job["status"] == (7 if name == "status" else status)
    message = str(error)
    assert message.startswith(error.reason)
    assert "job 'j1'" in message
    assert f"last status {status!r}" in message
    assert f"{polls} poll" in message
    assert f"{elapsed:.3f}s elapsed" in message


def test_error_message_without_job_id_and_singular_poll() -> None:
    w = JobWaiter(timeout=0)
    w.handle(Start(now=0.0))
    action = w.handle(obs("ready", 0.0))
    assert isinstance(action, Raise)
    assert str(action.error).endswith("(job, last status 'ready', 1 poll, 0.000s elapsed)")


@pytest.mark.parametrize("name", [*ERROR_SCENARIOS, "usage"])
def test_errors_pickle_round_trip(name: str) -> None:
    [(_, error, *_rest)] = [e for e in _all_errors() if e[0] == name]
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    attrs = ["reason", "job_id", "last_status", "last_job", "polls", "elapsed"]
    attrs += {
        JobFailedError: ["failure"],
        JobTimeoutError: ["timeout"],
        JobFetchError: ["status_code", "request_id", "body_excerpt"],
    }.get(type(error), [])
    for attr in attrs:
        assert getattr(clone, attr) == getattr(error, attr), attr


def test_fetch_error_attributes_from_the_scenario() -> None:
    error = ERROR_SCENARIOS["fetch"]()[0]
    assert isinstance(error, JobFetchError)
    assert (error.status_code, error.request_id, error.body_excerpt) == (503, "req-1", "overloaded")
    assert isinstance(error.__cause__, _HTTPError)
    failed = ERROR_SCENARIOS["failed"]()[0]
    assert isinstance(failed, JobFailedError)
    assert failed.failure == {"code": "X"}


# --- the table itself --------------------------------------------------------------------


def test_transitions_are_read_from_the_table() -> None:
    expected = {
        Transition(State.IDLE, "Start", "Poll", State.POLLING),
        Transition(State.POLLING, "Observed", "Sleep", State.SLEEPING),
        Transition(State.POLLING, "Observed", "Done", State.DONE),
        Transition(State.POLLING, "Observed", "Raise", State.RAISED),
        Transition(State.POLLING, "FetchFailed", "Sleep", State.SLEEPING),
        Transition(State.POLLING, "FetchFailed", "Raise", State.RAISED),
        Transition(State.POLLING, "SharedFetchFailed", "Sleep", State.SLEEPING),
        Transition(State.POLLING, "SharedFetchFailed", "Raise", State.RAISED),
        Transition(State.POLLING, "SharedFetchFailed", "Poll", State.POLLING),
        Transition(State.SLEEPING, "Woke", "Poll", State.POLLING),
        Transition(State.POLLING, "Observed", "Poll", State.POLLING),
        Transition(State.POLLING, "FetchFailed", "Poll", State.POLLING),
        Transition(State.SLEEPING, "Nudged", "Poll", State.POLLING),
        Transition(State.POLLING, "Nudged", "Poll", State.POLLING),
        Transition(State.POLLING, "Expired", "Raise", State.RAISED),
        Transition(State.SLEEPING, "Expired", "Raise", State.RAISED),
    }
    assert set(transitions()) == expected
    assert len(transitions()) == len(expected)
    assert {(s, e.__name__) for s, e in _TABLE} == {(t[0], t[1]) for t in expected}


_PREFIX = [Start(now=0.0), obs("ready", 0.0), Woke(now=1.0)]
TRANSITION_SCENARIOS: dict[Transition, list[Any]] = {
    Transition(State.IDLE, "Start", "Poll", State.POLLING): [Start(now=0.0)],
    Transition(State.POLLING, "Observed", "Sleep", State.SLEEPING): [*_PREFIX, obs("ready", 1.0)],
    Transition(State.POLLING, "Observed", "Done", State.DONE): [*_PREFIX, obs("completed", 1.0)],
    Transition(State.POLLING, "Observed", "Raise", State.RAISED): [*_PREFIX, obs("failed", 1.0)],
    Transition(State.POLLING, "FetchFailed", "Sleep", State.SLEEPING): [*_PREFIX, fail(1.0)],
    Transition(State.POLLING, "FetchFailed", "Raise", State.RAISED): [
        *_PREFIX,
        fail(1.0, retryable=False),
    ],
    Transition(State.POLLING, "SharedFetchFailed", "Sleep", State.SLEEPING): [
        *_PREFIX,
        SharedFetchFailed(error=OSError("batch"), now=1.0),
    ],
    Transition(State.POLLING, "SharedFetchFailed", "Raise", State.RAISED): [
        *_PREFIX,
        SharedFetchFailed(error=OSError("batch"), now=1.0, spent="the budget"),
    ],
    # A nudge during a shared request is remembered like one during a lone poll.
    Transition(State.POLLING, "SharedFetchFailed", "Poll", State.POLLING): [
        Start(now=0.0),
        Nudged(now=0.0),
        SharedFetchFailed(error=OSError("batch"), now=0.0),
    ],
    Transition(State.SLEEPING, "Woke", "Poll", State.POLLING): _PREFIX,
    # A nudge during a poll is remembered: the pending answer asks for one more poll.
    Transition(State.POLLING, "Observed", "Poll", State.POLLING): [
        Start(now=0.0),
        Nudged(now=0.0),
        obs("ready", 0.0),
    ],
    Transition(State.POLLING, "FetchFailed", "Poll", State.POLLING): [
        Start(now=0.0),
        Nudged(now=0.0),
        fail(0.0),
    ],
    Transition(State.SLEEPING, "Nudged", "Poll", State.POLLING): [*_PREFIX[:2], Nudged(now=0.5)],
    Transition(State.POLLING, "Nudged", "Poll", State.POLLING): [Start(now=0.0), Nudged(now=0.0)],
    # The default timeout is 300 s: a scheduler expires a held-back poll at or after it.
    Transition(State.POLLING, "Expired", "Raise", State.RAISED): [*_PREFIX, Expired(now=300.0)],
    Transition(State.SLEEPING, "Expired", "Raise", State.RAISED): [
        Start(now=0.0),
        obs("ready", 0.0),
        Expired(now=301.0),
    ],
}


def test_every_transition_has_a_scenario() -> None:
    assert set(TRANSITION_SCENARIOS) == set(transitions())


@pytest.mark.parametrize("edge", transitions(), ids=lambda t: f"{t[0].name}-{t[1]}-{t[2]}")
def test_each_transition(edge: Transition) -> None:
    state, event_name, action_name, next_state = edge
    events = TRANSITION_SCENARIOS[edge]
    waiter = JobWaiter()
    for event in events[:-1]:
        waiter.handle(event)
    assert waiter.state is state
    assert type(events[-1]).__name__ == event_name
    action = waiter.handle(events[-1])
    assert type(action).__name__ == action_name
    assert type(action) in _TABLE[(state, type(events[-1]))][1]
    assert waiter.state is next_state
    assert waiter.last_action is action


@pytest.mark.parametrize("hint", ["5", None, True, float("nan"), -1.0, float("inf"), object()])
def test_unusable_hints_are_ignored_never_crash(hint: Any) -> None:
    w = JobWaiter()
    w.handle(Start(now=0.0))
    assert w.handle(Observed(job={"status": "ready"}, now=0.0, retry_after=hint)) == Sleep(
        seconds=1.0
    )


def test_errors_pickle_with_cancel_error_results_and_notes() -> None:
    error = JobTimeoutError("late", job_id="a", timeout=3.0, polls=2)
    error.cancel_error = RuntimeError("cancel failed")
    error.add_note("a note")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.job_id, copy.timeout, copy.polls) == ("a", 3.0, 2)
    assert str(copy.cancel_error) == "cancel failed"
    assert copy.__notes__ == ["a note"]
    # results are FleetFailedError's own field, not every error's
    assert not hasattr(copy, "results")
    stopped = FleetFailedError("stopped", results={"a": error}, unfinished=("b",), job_id="a")
    again = pickle.loads(pickle.dumps(stopped))
    assert set(again.results) == {"a"}
    assert again.unfinished == ("b",)
    assert again.results["a"].timeout == 3.0
