"""Snapshots read back from storage: waiter and fleet snapshots, corrupted.

The promise (docs/fleet.md, "Saving and resuming"; docs/concepts.md): ``restore``
turns anything that is not a snapshot it wrote into ``ValueError`` naming what is
wrong (a huge integer where a number belongs, a value nested deeper than plain JSON,
NaN, a boolean), and a restored waiter or fleet re-derives every sleep from its rules:
no stored number delays a poll past the deadline, and no sleep exceeds
``max(backoff.max, max_retry_after)`` (one second of request budget, for a fleet with
``max_polls_per_second``) unless the deadline is nearer. The constructors apply the
same checks to the options.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait import (
    AllDone,
    Backoff,
    BatchFailed,
    BatchObserved,
    Finished,
    FleetSleep,
    JobFleet,
    JobWaiter,
    Nudged,
    Observed,
    Poll,
    PollBatch,
    Raise,
    Sleep,
    Start,
    State,
    StatusChanged,
    Woke,
)

HUGE = 10**400
TIMEOUT = 100.0
CAP = 60.0  # max(backoff.max, max_retry_after) of the fleets below
# A snapshot's times go through a subtraction and an addition: rounding may move a
# restored time by a few units in the last place, never more.
ROUNDING = 1e-9


def _near(value: float, bound: float) -> bool:
    return value <= bound + ROUNDING * max(1.0, abs(bound))


# --- a fleet with a job in every place a snapshot keeps --------------------------------


def _fleet(**options: Any) -> JobFleet:
    settings: dict[str, Any] = {
        "timeout": TIMEOUT,
        "batch_window": 0.0,
        "max_batch": 2,
        "max_polls_per_second": 5,
        "max_concurrency": 2,
        "max_retry_after": CAP,
        "backoff": Backoff(initial=1.0, factor=1.5, max=30.0),
        **options,
    }
    return JobFleet(**settings)


def _busy_fleet() -> JobFleet:
    """Jobs on the timer, ready (pushed, its due poll kept), in flight, finished (a job
    and an error, not yet handed out), a Retry-After hold and a budget window."""
    fleet = _fleet(max_batch=3, max_concurrency=3)
    fleet.add(["a", "b", "c", "d", "e", "f", "g"], now=0.0)
    first, second, third = (fleet.next_action(0.0) for _ in range(3))
    assert (first, second, third) == (
        PollBatch(ids=("a", "b", "c")),
        PollBatch(ids=("d", "e", "f")),
        PollBatch(ids=("g",)),  # in flight when saved
    )
    jobs = {
        "a": {"status": "ready"},
        "b": {"status": "failed", "failure": {"code": "x"}},
        "c": {"status": "completed"},
    }
    fleet.handle(BatchObserved(ids=first.ids, jobs=jobs, now=0.1))
    fleet.handle(
        BatchFailed(ids=second.ids, error=OSError("x"), now=0.2, retryable=True, retry_after=2.0)
    )
    fleet.handle(Nudged(now=0.3, job_id="a"))  # ready at once, its timer kept
    return fleet


def _saved(fleet: JobFleet) -> dict[str, Any]:
    saved: dict[str, Any] = json.loads(json.dumps(fleet.snapshot()))
    return saved


def _numbers(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every number in ``value``."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _numbers(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _numbers(v, (*prefix, i))]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [prefix]
    return []


def _set(snapshot: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = snapshot
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


BUSY = _saved(_busy_fleet())


def _waiter_snapshot() -> dict[str, Any]:
    waiter = JobWaiter(job_id="j1", timeout=60.0, max_retry_after=CAP)
    waiter.handle(Start(now=0.0))
    waiter.handle(Observed(job={"status": "ready"}, now=0.5))
    waiter.handle(Nudged(now=0.7))  # an extra poll in flight: resume_in is kept
    saved: dict[str, Any] = json.loads(json.dumps(waiter.snapshot()))
    return saved


WAITER = _waiter_snapshot()
# (kind, the path of a number in its snapshot): every number either snapshot holds.
NUMBERS = [("fleet", p) for p in _numbers(BUSY)] + [("waiter", p) for p in _numbers(WAITER)]


@pytest.mark.parametrize(
    ("kind", "path"), NUMBERS, ids=[f"{k}-{'.'.join(map(str, p))}" for k, p in NUMBERS]
)
def test_a_huge_int_anywhere_in_a_snapshot_is_a_value_error(
    kind: str, path: tuple[Any, ...]
) -> None:
    saved = copy.deepcopy(BUSY if kind == "fleet" else WAITER)
    _set(saved, path, HUGE)
    restore: Any = JobFleet.restore if kind == "fleet" else JobWaiter.restore
    for same_clock in (False, True):
        with pytest.raises(ValueError, match="snapshot"):
            restore(saved, now=2.3, same_clock=same_clock)


@pytest.mark.parametrize(
    "make",
    [
        lambda: JobFleet(batch_window=HUGE),
        lambda: JobFleet(batch_window=True),
        lambda: JobFleet(max_batch=HUGE),
        lambda: JobFleet(max_polls_per_second=HUGE),
        lambda: JobFleet(max_concurrency=HUGE),
        lambda: JobFleet(max_batch_errors=HUGE),
        lambda: JobWaiter(max_fetch_errors=HUGE),
        lambda: JobWaiter(max_retry_after=-HUGE),
    ],
    ids=[
        "batch_window-huge",
        "batch_window-bool",
        "max_batch-huge",
        "max_polls_per_second-huge",
        "max_concurrency-huge",
        "max_batch_errors-huge",
        "max_fetch_errors-huge",
        "max_retry_after-minus-huge",
    ],
)
def test_options_out_of_range_are_value_errors(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


# --- values nested deeper than plain JSON ----------------------------------------------


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


DEEP = _deep(100_000)


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("waiter", ("last_job",)),
        ("fleet", ("jobs", 0, "last_job")),
        ("fleet", ("results", "b", "error", "context", "last_job")),
        ("fleet", ("results", "b", "error", "context", "failure")),
    ],
    ids=["waiter-last-job", "fleet-last-job", "fleet-error-last-job", "fleet-error-failure"],
)
def test_a_value_nested_deeper_than_json_is_a_value_error(kind: str, path: tuple[Any, ...]) -> None:
    saved = copy.deepcopy(WAITER if kind == "waiter" else BUSY)
    _set(saved, path, DEEP)
    restore: Any = JobWaiter.restore if kind == "waiter" else JobFleet.restore
    with pytest.raises(ValueError, match="nested"):
        restore(saved, now=2.3)


def test_a_finished_job_nested_deeper_than_json_is_a_value_error() -> None:
    saved = copy.deepcopy(BUSY)
    saved["results"]["b"] = {"job": DEEP}
    with pytest.raises(ValueError, match="nested"):
        JobFleet.restore(saved, now=2.3)


# --- stored times cannot delay a poll past the rules -----------------------------------


def _sleeping_waiter(timeout: float | None) -> dict[str, Any]:
    waiter = JobWaiter(job_id="j1", timeout=timeout, max_retry_after=CAP)
    waiter.handle(Start(now=0.0))
    waiter.handle(Observed(job={"status": "ready"}, now=0.0))
    saved: dict[str, Any] = json.loads(json.dumps(waiter.snapshot()))
    return saved


@pytest.mark.parametrize(
    ("timeout", "field", "value", "longest"),
    [
        (60.0, "sleep", 1e300, 60.0),  # the case: no Sleep(1e300)
        (None, "sleep", 1e300, CAP),
        (30.0, "time_left", 1e300, 30.0),
    ],
    ids=["sleep-1e300", "sleep-1e300-no-timeout", "time_left-1e300"],
)
def test_a_restored_waiter_sleeps_no_longer_than_its_rules(
    timeout: float | None, field: str, value: float, longest: float
) -> None:
    saved = _sleeping_waiter(timeout)
    saved[field] = value
    waiter = JobWaiter.restore(saved, now=0.0)
    action = waiter.last_action
    assert isinstance(action, Sleep)
    assert _near(action.seconds, longest)
    assert waiter.deadline is None or _near(waiter.deadline, longest)
    waiter.handle(Woke(now=action.seconds))
    after = waiter.handle(Observed(job={"status": "ready"}, now=action.seconds))
    if isinstance(after, Sleep):
        assert _near(after.seconds, CAP)


def test_a_restored_extra_poll_resumes_no_later_than_its_rules() -> None:
    saved = copy.deepcopy(WAITER)  # an extra poll in flight; resumes toward the due poll
    saved["resume_in"] = 1e300
    waiter = JobWaiter.restore(saved, now=0.7)
    action = waiter.handle(Observed(job={"status": "ready"}, now=0.8))
    assert isinstance(action, Sleep)
    assert _near(action.seconds, CAP)


def _sleeps(fleet: JobFleet, now: float, pending: str) -> list[tuple[float, float, float]]:
    """(when, seconds, the nearest deadline) of each FleetSleep, to the end; the jobs
    in ``pending`` stay pending, the others complete at their next poll."""
    out: list[tuple[float, float, float]] = []
    for _ in range(200):
        action = fleet.next_action(now)
        if isinstance(action, FleetSleep):
            assert action.seconds is not None
            deadlines = [w.deadline for w in fleet._waiters.values() if w.deadline is not None]
            out.append((now, action.seconds, min(deadlines, default=math.inf)))
            now += action.seconds
        elif isinstance(action, PollBatch):
            jobs = {i: {"status": "ready" if i in pending else "completed"} for i in action.ids}
            fleet.handle(BatchObserved(ids=action.ids, jobs=jobs, now=now))
        elif isinstance(action, AllDone):
            break
    return out


def _entry(saved: dict[str, Any], job_id: str) -> dict[str, Any]:
    return next(job for job in saved["jobs"] if job["id"] == job_id)


FLEET_DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], None], float, str]] = {
    # damage, the longest sleep the rules allow, the jobs that stay pending
    # the case: a stored due of 1e9 with a 100 s timeout
    "due-1e9": (lambda s: _entry(s, "b").update(due=1e9), TIMEOUT, "b"),
    "due-1e9-no-timeout": (lambda s: _entry(s, "b").update(due=1e9), CAP, "b"),
    "due-1e9-deferred": (lambda s: _entry(s, "b").update(due=1e9, deferred=True), CAP, "b"),
    "hold-1e9": (lambda s: s.update(hold=1e9), CAP, "ab"),
    "sent-1e9": (lambda s: s.update(sent=[1e9] * 5), CAP, "ab"),
    "kept-1e9": (lambda s: _entry(s, "a")["kept"].__setitem__(0, 1e9), CAP, "a"),
    "ready-due-1e9": (lambda s: _entry(s, "a").update(due=1e9), CAP, "a"),
    "time-left-1e300": (lambda s: _entry(s, "b").update(time_left=1e300), CAP, "b"),
    "time-left-in-the-past": (lambda s: _entry(s, "b").update(time_left=-50.0), CAP, "ab"),
    "sleep-1e300": (lambda s: _entry(s, "b").update(sleep=1e300), CAP, "b"),
}


@pytest.mark.parametrize("name", list(FLEET_DAMAGE))
def test_a_restored_fleet_sleeps_no_longer_than_its_rules(name: str) -> None:
    damage, longest, pending = FLEET_DAMAGE[name]
    timeout = None if name.endswith("no-timeout") else TIMEOUT
    fleet = _fleet(timeout=timeout)
    fleet.add(["a", "b"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, PollBatch)
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": {"status": "ready"}}, now=0.0))
    fleet.handle(Nudged(now=0.1, job_id="a"))  # a: ready, pushed, its due poll kept
    saved = _saved(fleet)
    damage(saved)
    for same_clock in (False, True):
        again = JobFleet.restore(copy.deepcopy(saved), now=0.1, same_clock=same_clock)
        deadlines = [w.deadline for w in again._waiters.values() if w.deadline is not None]
        if timeout is not None:
            assert all(_near(d, 0.1 + timeout) for d in deadlines), deadlines
        sleeps = _sleeps(again, 0.1, pending)
        assert sleeps
        for when, seconds, deadline in sleeps:
            assert _near(seconds, longest), (when, seconds)
            assert _near(when + seconds, deadline), (when, seconds)


# --- the property: corrupted but well-typed snapshots ----------------------------------

TIMES = st.one_of(
    st.floats(-1e12, 1e300, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-300, 1e9, 1e300, -1e300]),
)
WAITER_TIMES = ["sleep", "time_left", "resume_in", "elapsed", "interval", "previous_sleep", "now"]


@settings(max_examples=300)
@given(
    steps=st.integers(0, 6),
    nudge=st.booleans(),
    damage=st.dictionaries(st.sampled_from(WAITER_TIMES), TIMES, max_size=4),
    flags=st.dictionaries(st.sampled_from(["extra", "nudged", "final_poll"]), st.booleans()),
    timeout=st.sampled_from([None, 0.0, 5.0, 60.0]),
    same_clock=st.booleans(),
    later=st.sampled_from([0.0, 0.5, 50.0]),
    hints=st.lists(st.none() | st.floats(0, 1e300), min_size=8, max_size=8),
)
def test_a_restored_waiter_never_sleeps_past_its_rules(
    steps: int,
    nudge: bool,
    damage: dict[str, float],
    flags: dict[str, bool],
    timeout: float | None,
    same_clock: bool,
    later: float,
    hints: list[float | None],
) -> None:
    waiter = JobWaiter(job_id="j1", timeout=timeout, max_retry_after=CAP)
    now = 0.0
    action: Any = waiter.handle(Start(now=now))
    for _ in range(steps):
        if isinstance(action, Sleep):
            now += action.seconds / 2 if nudge else action.seconds
            event: Any = Nudged(now=now) if nudge else Woke(now=now)
        elif isinstance(action, Poll):
            now += 0.1
            event = Observed(job={"status": "ready"}, now=now, retry_after=hints[0])
        else:
            return
        action = waiter.handle(event)
    if isinstance(action, Raise):
        return
    saved = json.loads(json.dumps(waiter.snapshot()))
    saved.update(damage)
    saved.update(flags)
    try:
        again = JobWaiter.restore(saved, now=now + later, same_clock=same_clock)
    except ValueError:
        return
    moment = again._now
    deadline = again.deadline
    if timeout is not None:
        assert deadline is not None
        assert _near(deadline, moment + timeout)
    longest = max(again.backoff.max, CAP)
    now = moment
    action = again.last_action
    for hint in hints:
        if isinstance(action, Sleep):
            assert action.seconds >= 0
            assert _near(action.seconds, longest), action
            # Past the deadline already (stored so), the only sleep allowed is none.
            assert deadline is None or _near(now + action.seconds, max(deadline, now))
            now += action.seconds
            action = again.handle(Woke(now=now))
        elif isinstance(action, Poll):
            action = again.handle(Observed(job={"status": "ready"}, now=now, retry_after=hint))
        else:
            return


FLEET_TIMES = ["due", "time_left", "resume_in", "sleep", "last", "elapsed"]


@settings(max_examples=200)
@given(
    job_damage=st.lists(
        st.dictionaries(st.sampled_from(FLEET_TIMES), TIMES, max_size=3), min_size=6, max_size=6
    ),
    hold=st.none() | TIMES,
    sent=st.lists(TIMES, max_size=6),
    kept=st.none() | TIMES,
    deferred=st.booleans(),
    same_clock=st.booleans(),
    later=st.sampled_from([0.0, 1.0, 500.0]),
    timeout=st.sampled_from([None, 5.0, TIMEOUT]),
    hints=st.lists(st.none() | st.floats(0, 1e300), min_size=10, max_size=10),
)
def test_a_restored_fleet_never_sleeps_past_its_rules(
    job_damage: list[dict[str, float]],
    hold: float | None,
    sent: list[float],
    kept: float | None,
    deferred: bool,
    same_clock: bool,
    later: float,
    timeout: float | None,
    hints: list[float | None],
) -> None:
    saved = copy.deepcopy(BUSY)
    saved["options"]["timeout"] = timeout
    for entry, damage in zip(saved["jobs"], job_damage, strict=False):
        entry.update({k: v for k, v in damage.items() if entry.get(k) is not None})
        entry["deferred"] = deferred
        if kept is not None and "kept" in entry:
            entry["kept"][0] = kept
    saved["hold"] = hold
    saved["sent"] = sent
    try:
        fleet = JobFleet.restore(saved, now=saved["now"] + later, same_clock=same_clock)
    except ValueError:
        return
    now = fleet._now
    # A request budget may hold a poll for up to one second after the last request.
    longest = max(30.0, CAP, 1.0)
    for hint in hints:
        action = fleet.next_action(now)
        if isinstance(action, AllDone):
            return
        if isinstance(action, FleetSleep):
            assert action.seconds is not None
            deadlines = [w.deadline for w in fleet._waiters.values() if w.deadline is not None]
            assert action.seconds >= 0
            assert _near(action.seconds, longest), action
            assert all(_near(now + action.seconds, max(d, now)) for d in deadlines), action
            now += action.seconds
        elif isinstance(action, PollBatch):
            jobs = {i: {"status": "ready"} for i in action.ids}
            fleet.handle(BatchObserved(ids=action.ids, jobs=jobs, now=now, retry_after=hint))
        else:
            assert isinstance(action, Finished | StatusChanged)


def test_the_busy_snapshot_holds_every_place_and_restores_whole() -> None:
    # The damage above must not hide a broken restore: undamaged, it keeps every job.
    places = {job["id"]: job["where"] for job in BUSY["jobs"]}
    assert places == {"a": "ready", "d": "timer", "e": "timer", "f": "timer", "g": "flight"}
    assert "kept" in _entry(BUSY, "a")
    assert BUSY["hold"] > 0
    assert BUSY["sent"]
    assert len(BUSY["pending"]) == 2
    fleet = JobFleet.restore(copy.deepcopy(BUSY), now=BUSY["now"])
    assert sorted(fleet._waiters) == ["a", "d", "e", "f", "g"]
    assert all(w.state in (State.SLEEPING, State.POLLING) for w in fleet._waiters.values())
    assert math.isfinite(fleet._now)
