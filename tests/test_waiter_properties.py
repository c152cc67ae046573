"""Property tests of the JobWaiter core: random configurations against random scripts.

A script is a list of fetch outcomes (an observed status or a failed fetch, each with
an optional server hint and a latency); once it runs out the job is ``completed``, so
every run ends. The driver here is deliberately independent of ``jobwait.testing``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jobwait import (
    Backoff,
    Done,
    FetchFailed,
    JobWaiter,
    Observed,
    Poll,
    Raise,
    Sleep,
    Start,
    State,
    UsageError,
    Woke,
)
from jobwait._waiter import _TABLE

STATUSES = [
    "ready",
    "ready",
    "ready",
    "started",
    "submitted",
    "mystery",
    "completed",
    "failed",
    "canceled",
]
PENDING_ONLY = ["ready", "started", "submitted", "mystery"]


@dataclass(frozen=True)
class Step:
    """One fetch: ``status`` observed, or (``status is None``) a failure."""

    status: str | None
    retryable: bool = True
    hint: float | None = None
    latency: float = 0.0


# --- strategies ------------------------------------------------------------------------


def dyadic(low: int, high: int, denominator: int = 8) -> st.SearchStrategy[float]:
    """Floats k/denominator: sums and products by 1.5 or 2 stay exact in binary."""
    return st.integers(low, high).map(lambda k: k / denominator)


hints = st.one_of(
    st.none(),
    st.floats(min_value=-10, max_value=400, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
)


def steps(
    *, statuses: list[str], hint: st.SearchStrategy[Any], latency: st.SearchStrategy[float]
) -> Any:
    observed = st.builds(Step, status=st.sampled_from(statuses), hint=hint, latency=latency)
    failed = st.builds(Step, status=st.none(), retryable=st.booleans(), hint=hint, latency=latency)
    return st.one_of(observed, observed, observed, failed)


@st.composite
def configs(draw: st.DrawFn, *, exact: bool = False, jitter: bool = True) -> dict[str, Any]:
    """JobWaiter options. ``exact`` keeps every number dyadic, so schedules are exact."""
    if exact:
        initial = draw(dyadic(1, 40))
        factor = draw(st.sampled_from([1.0, 1.5, 2.0]))
        cap = initial + draw(dyadic(0, 120))
        timeout = draw(st.one_of(st.none(), st.just(0.0), dyadic(1, 800)))
        max_retry_after = draw(dyadic(0, 400))
    else:
        initial = draw(st.floats(min_value=1e-3, max_value=20))
        factor = draw(st.floats(min_value=1.0, max_value=4.0))
        cap = initial * draw(st.floats(min_value=1.0, max_value=100.0))
        timeout = draw(st.one_of(st.none(), st.just(0.0), st.floats(min_value=0.0, max_value=600)))
        max_retry_after = draw(st.floats(min_value=0.0, max_value=300))
    kind = draw(st.sampled_from([None, "full", "equal", "decorrelated"])) if jitter else None
    seed = draw(st.integers(0, 2**32))
    return {
        "timeout": timeout,
        "backoff": Backoff(
            initial=initial, factor=factor, max=cap, jitter=kind, rng=random.Random(seed)
        ),
        "max_fetch_errors": draw(st.integers(1, 6)),
        "max_retry_after": max_retry_after,
        "raise_on_failure": draw(st.booleans()),
        "raise_on_cancel": draw(st.booleans()),
    }


def fresh(config: dict[str, Any]) -> JobWaiter:
    """A waiter for ``config`` with its own copy of the generator (same seed, same state)."""
    backoff: Backoff = config["backoff"]
    rng = None
    if backoff.rng is not None:
        rng = random.Random()
        rng.setstate(backoff.rng.getstate())
    return JobWaiter(
        **{**config, "backoff": Backoff(**backoff.to_json(), rng=rng)}  # type: ignore[arg-type]
    )


# --- the driver ----------------------------------------------------------------------


@dataclass
class Driver:
    """Turns each action into the next event, reading outcomes from the script."""

    script: list[Step]
    now: float
    index: int = 0

    def event_for(self, action: Any) -> Any:
        if isinstance(action, Sleep):
            self.now += action.seconds
            return Woke(now=self.now)
        assert isinstance(action, Poll)
        step = self.script[self.index] if self.index < len(self.script) else Step("completed")
        self.index += 1
        self.now += step.latency
        if step.status is None:
            error = ConnectionError(f"fetch {self.index}")
            return FetchFailed(
                error=error, now=self.now, retryable=step.retryable, retry_after=step.hint
            )
        return Observed(job={"status": step.status}, now=self.now, retry_after=step.hint)


def check_step(
    waiter: JobWaiter, state: State, event: Any, action: Any, deadline: float | None
) -> None:
    """The per-step invariants: the table, and every bound on a sleep."""
    assert type(action) in _TABLE[(state, type(event))][1]
    if not isinstance(action, Sleep):
        return
    seconds = action.seconds
    assert math.isfinite(seconds)
    assert seconds >= 0
    if deadline is not None:
        assert seconds <= deadline - event.now, "the sleep ends past the deadline"
    cap = waiter.backoff.max
    hint = getattr(event, "retry_after", None)
    raised_by_hint = hint is not None and 0 <= hint < math.inf
    limit = max(cap, min(hint, waiter._max_retry_after)) if raised_by_hint else cap  # type: ignore[type-var]
    assert seconds <= limit, f"sleep {seconds} above {limit} (cap {cap}, hint {hint})"
    assert seconds <= max(cap, waiter._max_retry_after)


def run(
    waiter: JobWaiter, driver: Driver, *, action: Any = None, limit: int = 5000
) -> list[tuple[Any, Any]]:
    """Drive until the wait finishes; returns (event, action) pairs. Starts the waiter
    unless ``action`` (the action to perform next) is given."""
    trace: list[tuple[Any, Any]] = []
    if action is None:
        event = Start(now=driver.now)
        action = waiter.handle(event)
        trace.append((event, action))
    while not isinstance(action, Done | Raise):
        assert len(trace) < limit, "the wait does not end"
        event = driver.event_for(action)
        state, deadline = waiter.state, waiter.deadline
        action = waiter.handle(event)
        check_step(waiter, state, event, action, deadline)
        trace.append((event, action))
    return trace


def assert_finished_for_good(waiter: JobWaiter, now: float) -> None:
    state = waiter.state
    assert waiter.finished
    for event in (
        Start(now=now),
        Observed(job={"status": "ready"}, now=now),
        FetchFailed(error=OSError(), now=now),
        Woke(now=now),
    ):
        with pytest.raises(UsageError):
            waiter.handle(event)
        assert waiter.state is state


# --- properties --------------------------------------------------------------------------

scripts = st.lists(
    steps(statuses=STATUSES, hint=hints, latency=st.floats(min_value=0, max_value=10)),
    max_size=40,
)


@settings(max_examples=400)
@given(config=configs(), script=scripts, start=st.floats(min_value=-1e6, max_value=1e6))
def test_sleeps_are_bounded_and_the_wait_finishes_exactly_once(
    config: dict[str, Any], script: list[Step], start: float
) -> None:
    waiter = fresh(config)
    driver = Driver(script, now=start)
    trace = run(waiter, driver)  # checks every step: table, sign, deadline and caps
    finals = [a for _, a in trace if isinstance(a, Done | Raise)]
    assert len(finals) == 1
    assert trace[-1][1] is finals[0]
    assert waiter.last_action is finals[0]
    assert waiter.polls == driver.index
    assert waiter.polls <= len(script) + 1
    if isinstance(finals[0], Raise):
        error = finals[0].error
        assert error.polls == waiter.polls
        assert error.elapsed == waiter.elapsed
        assert finals[0].cancel_job == (type(error).__name__ == "JobTimeoutError")
    assert_finished_for_good(waiter, driver.now + 1)


@settings(max_examples=200)
@given(
    config=configs(),
    script=st.lists(
        steps(statuses=PENDING_ONLY, hint=st.none(), latency=st.floats(min_value=0, max_value=3)),
        min_size=1,
        max_size=30,
    ),
)
def test_every_table_row_is_checked_against_the_handlers(
    config: dict[str, Any], script: list[Step]
) -> None:
    # The runner asserts each action is listed for its (state, event); here also make sure
    # a non-terminal script ends only by the deadline, a failure or the script running out.
    waiter = fresh(config)
    trace = run(waiter, Driver(script, now=0.0))
    last = trace[-1][1]
    if isinstance(last, Raise):
        assert type(last.error).__name__ in {"JobTimeoutError", "JobFetchError"}
    else:
        assert isinstance(last, Done)
        assert last.job == {"status": "completed"}


def expected_polls(initial: float, factor: float, cap: float, timeout: float) -> int:
    """The number of polls of a job that never finishes, computed exactly: polls at
    0, then each min(previous + interval, deadline), until one lands on the deadline."""
    deadline = Fraction(timeout)
    t, interval, polls = Fraction(0), Fraction(initial), 1
    while t < deadline:
        t = min(t + interval, deadline)
        interval = min(interval * Fraction(factor), Fraction(cap))
        polls += 1
    return polls


@settings(max_examples=300)
@given(config=configs(exact=True, jitter=False), start=dyadic(0, 10**6, 4))
def test_without_jitter_the_number_of_polls_matches_the_schedule(
    config: dict[str, Any], start: float
) -> None:
    timeout = config["timeout"]
    backoff: Backoff = config["backoff"]
    assume(timeout is not None)
    expected = expected_polls(backoff.initial, backoff.factor, backoff.max, timeout)
    assume(expected <= 2000)
    waiter = fresh(config)
    script = [Step("ready")] * (expected + 5)
    trace = run(waiter, Driver(script, now=start))
    last = trace[-1][1]
    assert isinstance(last, Raise)
    assert type(last.error).__name__ == "JobTimeoutError"
    assert waiter.polls == expected
    assert waiter.elapsed == timeout


def test_expected_polls_model_matches_the_issue() -> None:
    # The independent model itself, against the schedule the issue states.
    assert expected_polls(1.0, 1.5, 30.0, 300.0) == 18
    assert expected_polls(1.0, 1.5, 30.0, 0.0) == 1
    assert expected_polls(1.0, 2.0, 4.0, 7.0) == 4  # 0, 1, 3, then 3 + 4 lands on 7
    assert expected_polls(1.0, 2.0, 4.0, 7.5) == 5  # 0, 1, 3, 7, then 7.5 (clamped)


exact_scripts = st.lists(
    steps(
        statuses=STATUSES,
        hint=st.one_of(st.none(), dyadic(-8, 400, 2), st.sampled_from([math.nan, math.inf])),
        latency=dyadic(0, 40, 16),
    ),
    max_size=40,
)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def _same_action(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Sleep):
        return _close(a.seconds, b.seconds)
    if isinstance(a, Raise):
        return (
            type(a.error) is type(b.error)
            and a.cancel_job == b.cancel_job
            and a.error.polls == b.error.polls
            and a.error.last_status == b.error.last_status
            and _close(a.error.elapsed, b.error.elapsed)
        )
    return bool(a == b)


@settings(max_examples=300)
@given(
    config=configs(exact=True),
    script=exact_scripts,
    offset=st.one_of(st.just(0), st.integers(0, 10**6)),
    data=st.data(),
)
def test_restore_continues_with_the_identical_schedule(
    config: dict[str, Any], script: list[Step], offset: int, data: st.DataObject
) -> None:
    # How many events does the full wait take? Snapshot after a random number of them.
    full = run(fresh(config), Driver(script, now=0.0))
    k = data.draw(st.integers(0, len(full) - 1), label="events before the snapshot")

    original = fresh(config)
    driver = Driver(script, now=0.0)
    action = None
    if k:
        action = original.handle(Start(now=driver.now))
        for _ in range(k - 1):
            action = original.handle(driver.event_for(action))
    assert not original.finished
    snapshot = json.loads(json.dumps(original.snapshot()))

    rng = None
    if original.backoff.rng is not None:
        rng = random.Random()
        rng.setstate(original.backoff.rng.getstate())
    restored = JobWaiter.restore(snapshot, now=driver.now + offset, rng=rng)
    assert restored.state is original.state
    assert restored.polls == original.polls
    assert _close(restored.elapsed, original.elapsed)
    if original.deadline is not None and original.state is not State.IDLE:
        assert restored.deadline is not None
        assert _close(restored.deadline, original.deadline + offset)
    assert _same_action(restored.last_action, original.last_action)

    shifted = Driver(script, now=driver.now + offset, index=driver.index)
    rest_a = run(original, driver, action=action)
    rest_b = run(restored, shifted, action=restored.last_action if k else None)
    assert len(rest_a) == len(rest_b)
    for (event_a, action_a), (event_b, action_b) in zip(rest_a, rest_b, strict=True):
        assert type(event_a) is type(event_b)
        assert _close(event_b.now - event_a.now, offset), "the schedule is shifted by the offset"
        assert _same_action(action_a, action_b), (action_a, action_b)
    assert type(original.last_action) is type(restored.last_action)
    assert original.polls == restored.polls
    if k:  # the original's schedule is the reference run's, too
        assert [type(a) for _, a in full[k:]] == [type(a) for _, a in rest_a]


@settings(max_examples=100)
@given(config=configs(), script=scripts, data=st.data())
def test_snapshot_is_json_and_restores_at_every_point(
    config: dict[str, Any], script: list[Step], data: st.DataObject
) -> None:
    waiter = fresh(config)
    driver = Driver(script, now=data.draw(st.floats(-1e3, 1e3)))
    action = waiter.handle(Start(now=driver.now))
    while not isinstance(action, Done | Raise):
        snapshot = waiter.snapshot()
        assert json.loads(json.dumps(snapshot, allow_nan=False)) == snapshot
        restored = JobWaiter.restore(snapshot, now=driver.now)
        assert restored.state is waiter.state
        assert restored.last_status == waiter.last_status
        assert restored.status_changed == waiter.status_changed
        assert restored.phase is waiter.phase
        assert restored.last_job == waiter.last_job
        action = waiter.handle(driver.event_for(action))


def test_restore_keeps_the_final_poll_after_a_clamped_sleep() -> None:
    # After a sleep clamped to the deadline, now + (deadline - now) can land a hair short
    # of the deadline; the snapshot must carry "the next poll is the last" along.
    start, now = 0.1, 0.7571470780944988
    waiter = JobWaiter(timeout=1.7, backoff=Backoff(initial=2.0, max=2.0))
    waiter.handle(Start(now=start))
    sleep = waiter.handle(Observed(job={"status": "ready"}, now=now))
    assert isinstance(sleep, Sleep)
    woke = now + sleep.seconds
    waiter.handle(Woke(now=woke))
    restored = JobWaiter.restore(json.loads(json.dumps(waiter.snapshot())), now=woke)
    assert restored.time_left(woke) > 0  # the premise: the deadline is not reached yet
    action = restored.handle(Observed(job={"status": "ready"}, now=woke))
    assert isinstance(action, Raise)
    assert type(action.error).__name__ == "JobTimeoutError"
