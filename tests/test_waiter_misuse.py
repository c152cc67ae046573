"""Invalid configurations, misuse of the machine, and corrupted snapshots.

Every invalid option raises the documented ``ValueError``/``TypeError`` naming the
option; every misuse raises ``UsageError`` and leaves the waiter exactly as it was; a
snapshot that is not one raises ``ValueError`` and nothing else.
"""

from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
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
    Statuses,
    UsageError,
    Woke,
    field_reader,
)
from jobwait._plumbing import SNAPSHOT_FORMAT

# --- invalid configuration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"timeout": -1.0}, ValueError, "timeout"),
        ({"timeout": -1e-300}, ValueError, "timeout"),
        ({"timeout": math.nan}, ValueError, "timeout"),
        ({"timeout": -math.inf}, ValueError, "timeout"),
        ({"timeout": "300"}, ValueError, "timeout"),
        ({"timeout": True}, ValueError, "timeout"),
        ({"timeout": 10**400}, ValueError, "timeout"),
        ({"max_fetch_errors": 0}, ValueError, "max_fetch_errors"),
        ({"max_fetch_errors": -3}, ValueError, "max_fetch_errors"),
        ({"max_fetch_errors": 2.0}, ValueError, "max_fetch_errors"),
        ({"max_fetch_errors": True}, ValueError, "max_fetch_errors"),
        ({"max_retry_after": -1.0}, ValueError, "max_retry_after"),
        ({"max_retry_after": math.nan}, ValueError, "max_retry_after"),
        ({"max_retry_after": math.inf}, ValueError, "max_retry_after"),
        ({"max_retry_after": "60"}, ValueError, "max_retry_after"),
        ({"max_retry_after": 10**400}, ValueError, "max_retry_after"),
        ({"job_id": 42}, TypeError, "job_id"),
        ({"backoff": {"initial": 1.0}}, TypeError, "backoff"),
        ({"statuses": {"pending": ["a"]}}, TypeError, "statuses"),
        ({"status_of": "status"}, TypeError, "status_of"),
        ({"failure_of": None}, TypeError, "failure_of"),
    ],
    ids=lambda x: repr(x)[:40],
)
def test_invalid_waiter_options(options: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=rf"\b{name}\b"):
        JobWaiter(**options)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"initial": 0.0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"initial": math.nan}, "initial"),
        ({"initial": math.inf}, "initial"),
        ({"initial": "1"}, "initial"),
        ({"initial": 10**400}, "initial"),
        ({"factor": 0.99}, "factor"),
        ({"factor": 0.0}, "factor"),
        ({"factor": math.nan}, "factor"),
        ({"factor": math.inf}, "factor"),
        ({"max": 0.5}, "max"),  # below the default initial of 1.0
        ({"initial": 5.0, "max": 4.0}, "max"),
        ({"max": math.inf}, "max"),
        ({"max": math.nan}, "max"),
        ({"jitter": "fully"}, "jitter"),
        ({"jitter": "FULL"}, "jitter"),
        ({"jitter": True}, "jitter"),
    ],
    ids=lambda x: repr(x)[:40],
)
def test_invalid_backoff(options: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=rf"Backoff\({name}="):
        Backoff(**options)


def test_backoff_edge_values_are_valid() -> None:
    assert Backoff(factor=1.0, initial=2.0, max=2.0).intervals(3) == [2.0, 2.0, 2.0]
    assert Backoff(initial=1, factor=2, max=4).intervals(4) == [1, 2, 4, 4]


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"pending": {"a"}, "succeeded": {"a"}}, ValueError, ("pending", "succeeded")),
        ({"failed": {"completed"}}, ValueError, ("succeeded", "failed")),
        ({"canceled": {"ready"}}, ValueError, ("pending", "canceled")),
        (
            {"pending": {"Done"}, "succeeded": {"done"}, "case_sensitive": False},
            ValueError,
            ("pending", "succeeded"),
        ),
        ({"on_unknown": "ignore"}, ValueError, ("on_unknown",)),
        ({"on_unknown": None}, ValueError, ("on_unknown",)),
        ({"pending": "ready"}, TypeError, ("pending",)),
        ({"failed": {1}}, TypeError, ("failed",)),
    ],
    ids=repr,
)
def test_invalid_statuses(
    options: dict[str, Any], error: type[Exception], names: tuple[str, ...]
) -> None:
    with pytest.raises(error) as info:
        Statuses(**options)
    for name in names:
        assert name in str(info.value)


def test_same_value_in_two_cases_is_fine_when_case_sensitive() -> None:
    statuses = Statuses(pending={"Done"}, succeeded={"done"})
    assert statuses.phase("done").name == "SUCCEEDED"
    assert statuses.phase("Done").name == "PENDING"


@pytest.mark.parametrize("path", ["", ".", "a..b", "a.", ".b"])
def test_invalid_field_reader_path(path: str) -> None:
    with pytest.raises(ValueError, match="field path"):
        field_reader(path)


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        JobWaiter("j1")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Backoff(1.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Start(0.0)  # type: ignore[misc]


def test_infinite_timeout_means_no_deadline() -> None:
    waiter = JobWaiter(timeout=math.inf)
    waiter.handle(Start(now=0.0))
    assert waiter.deadline is None


# --- misuse of the machine ---------------------------------------------------------------


def _state_of(waiter: JobWaiter) -> dict[str, Any]:
    """Every slot of the waiter, deep-copied, to prove a rejected event changed nothing."""
    return {
        name: copy.deepcopy(getattr(waiter, name))
        for name in JobWaiter.__slots__
        if name
        not in {"_status_of", "_failure_of", "_backoff", "_statuses", "_row", "_last_action"}
    } | {"_row": id(waiter._row), "_last_action": id(waiter._last_action)}


def _waiter_in(state: State) -> JobWaiter:
    waiter = JobWaiter(job_id="j1", timeout=60.0)
    if state is State.IDLE:
        return waiter
    waiter.handle(Start(now=10.0))
    if state is State.POLLING:
        return waiter
    waiter.handle(Observed(job={"status": "ready"}, now=10.5))
    if state is State.SLEEPING:
        return waiter
    status = "completed" if state is State.DONE else "failed"
    waiter.handle(Woke(now=11.5))
    action = waiter.handle(Observed(job={"status": status}, now=11.5))
    assert isinstance(action, Done if state is State.DONE else Raise)
    return waiter


def _events(now: float) -> dict[str, Any]:
    return {
        "Start": Start(now=now),
        "Observed": Observed(job={"status": "completed"}, now=now),
        "FetchFailed": FetchFailed(error=OSError("x"), now=now),
        "Woke": Woke(now=now),
    }


VALID = {
    State.IDLE: {"Start"},
    State.POLLING: {"Observed", "FetchFailed"},
    State.SLEEPING: {"Woke"},
    State.DONE: set(),
    State.RAISED: set(),
}
MISUSES = [(state, name) for state in State for name in _events(0.0) if name not in VALID[state]]


@pytest.mark.parametrize(("state", "event_name"), MISUSES, ids=lambda x: getattr(x, "name", x))
def test_event_not_valid_in_state_is_a_usage_error_and_changes_nothing(
    state: State, event_name: str
) -> None:
    waiter = _waiter_in(state)
    before = _state_of(waiter)
    with pytest.raises(UsageError) as info:
        waiter.handle(_events(100.0)[event_name])
    assert _state_of(waiter) == before
    assert waiter.state is state
    message = str(info.value)
    assert event_name in message
    assert state.name in message
    assert info.value.job_id == "j1"
    if state in (State.DONE, State.RAISED):
        assert "already over" in message
    else:
        for expected in VALID[state]:
            assert expected in message


@pytest.mark.parametrize("state", [State.DONE, State.RAISED])
def test_a_finished_waiter_rejects_everything_forever(state: State) -> None:
    waiter = _waiter_in(state)
    for _ in range(3):
        for event in _events(1e6).values():
            with pytest.raises(UsageError):
                waiter.handle(event)
    assert waiter.finished
    assert waiter.state is state


def test_start_twice() -> None:
    waiter = JobWaiter()
    assert waiter.handle(Start(now=0.0)) == Poll()
    with pytest.raises(UsageError, match="Start is not valid while POLLING"):
        waiter.handle(Start(now=1.0))


@pytest.mark.parametrize("state", [State.POLLING, State.SLEEPING])
@pytest.mark.parametrize("now", [10.4, math.nan, -math.inf])
def test_now_going_backwards_or_nan_is_a_usage_error(state: State, now: float) -> None:
    waiter = _waiter_in(state)  # the latest event's now is 10.0 or 10.5
    before = _state_of(waiter)
    event = Woke(now=now) if state is State.SLEEPING else Observed(job={"status": "ready"}, now=now)
    if state is State.POLLING and now == 10.4:
        event = Observed(job={"status": "ready"}, now=9.99)
    with pytest.raises(UsageError, match="monotonic"):
        waiter.handle(event)
    assert _state_of(waiter) == before


def test_start_with_nan_now_is_a_usage_error() -> None:
    waiter = JobWaiter()
    with pytest.raises(UsageError):
        waiter.handle(Start(now=math.nan))
    assert waiter.state is State.IDLE


@pytest.mark.parametrize("now", [-5.0, -1e9, 0.0, 1e9])
def test_start_accepts_any_monotonic_reading(now: float) -> None:
    # A monotonic clock's reference point is undefined: a negative reading is valid.
    waiter = JobWaiter(timeout=10.0)
    assert waiter.handle(Start(now=now)) == Poll()
    assert waiter.deadline == now + 10.0
    assert waiter.handle(Observed(job={"status": "ready"}, now=now)) == Sleep(seconds=1.0)
    assert waiter.elapsed == 0.0


def test_same_now_twice_is_fine() -> None:
    waiter = JobWaiter()
    waiter.handle(Start(now=5.0))
    waiter.handle(Observed(job={"status": "ready"}, now=5.0))
    assert waiter.handle(Woke(now=5.0)) == Poll()


@pytest.mark.parametrize(
    "event", [None, "Start", object(), {"now": 0.0}, Poll(), Sleep(seconds=1.0)]
)
def test_something_that_is_not_an_event_is_a_usage_error(event: Any) -> None:
    waiter = JobWaiter()
    with pytest.raises(UsageError):
        waiter.handle(event)
    assert waiter.state is State.IDLE


@pytest.mark.parametrize("state", [State.DONE, State.RAISED])
def test_snapshot_of_a_finished_waiter_is_a_usage_error(state: State) -> None:
    with pytest.raises(UsageError, match="finished"):
        _waiter_in(state).snapshot()


# --- corrupted and foreign snapshots -------------------------------------------------------


def _valid_snapshot(state: State = State.SLEEPING, **options: Any) -> dict[str, Any]:
    waiter = JobWaiter(job_id="j1", timeout=60.0, **options)
    if state is not State.IDLE:
        waiter.handle(Start(now=10.0))
    if state is State.SLEEPING:
        waiter.handle(Observed(job={"status": "ready"}, now=10.5))
    snapshot = waiter.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    return snapshot


@pytest.mark.parametrize("state", [State.IDLE, State.POLLING, State.SLEEPING])
def test_valid_snapshot_restores(state: State) -> None:
    waiter = JobWaiter.restore(_valid_snapshot(state), now=1000.0)
    assert waiter.state is state
    assert waiter.job_id == "j1"


def _set(path: tuple[str, ...], value: Any) -> Any:
    def mutate(snapshot: dict[str, Any]) -> None:
        target = snapshot
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[str, ...]) -> Any:
    def mutate(snapshot: dict[str, Any]) -> None:
        target = snapshot
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


CORRUPTIONS = {
    "format missing": _delete(("format",)),
    "format other": _set(("format",), "jobwait.JobWaiter/2"),
    "format foreign": _set(("format",), "celery.AsyncResult/1"),
    "options missing": _delete(("options",)),
    "options list": _set(("options",), []),
    "timeout negative": _set(("options", "timeout"), -1),
    "timeout string": _set(("options", "timeout"), "60"),
    "backoff null initial": _set(("options", "backoff", "initial"), None),
    "backoff extra key": _set(("options", "backoff", "rng"), 1),
    "backoff unknown key": _set(("options", "backoff", "seed"), 1),
    "backoff not a dict": _set(("options", "backoff"), [1, 1.5, 30]),
    "backoff bad factor": _set(("options", "backoff", "factor"), 0.1),
    "backoff bad jitter": _set(("options", "backoff", "jitter"), "some"),
    "backoff huge int": _set(("options", "backoff", "initial"), 10**400),
    "statuses overlap": _set(("options", "statuses", "failed"), ["completed"]),
    "statuses string set": _set(("options", "statuses", "failed"), "failed"),
    "statuses nested list": _set(("options", "statuses", "failed"), [["failed"]]),
    "statuses on_unknown": _set(("options", "statuses", "on_unknown"), "shrug"),
    "statuses not a dict": _set(("options", "statuses"), "ionq"),
    "job_id int": _set(("options", "job_id"), 7),
    "raise_on_failure string": _set(("options", "raise_on_failure"), "yes"),
    "raise_on_cancel int": _set(("options", "raise_on_cancel"), 1),
    "max_fetch_errors zero": _set(("options", "max_fetch_errors"), 0),
    "max_retry_after nan": _set(("options", "max_retry_after"), math.nan),
    "state missing": _delete(("state",)),
    "state unknown": _set(("state",), "WAITING"),
    "state lowercase": _set(("state",), "sleeping"),
    "state final": _set(("state",), "DONE"),
    "state raised": _set(("state",), "RAISED"),
    "state list": _set(("state",), ["SLEEPING"]),
    "elapsed negative": _set(("elapsed",), -1.0),
    "elapsed inf": _set(("elapsed",), math.inf),
    "elapsed huge int": _set(("elapsed",), 10**400),
    "elapsed string": _set(("elapsed",), "1.0"),
    "time_left string": _set(("time_left",), "oops"),
    "time_left nan": _set(("time_left",), math.nan),
    "time_left null with timeout": _set(("time_left",), None),
    "sleep negative": _set(("sleep",), -1.0),
    "sleep missing": _delete(("sleep",)),
    "interval nan": _set(("interval",), math.nan),
    "previous_sleep bool": _set(("previous_sleep",), True),
    "final_poll int": _set(("final_poll",), 0),
    "fetch_errors negative": _set(("fetch_errors",), -1),
    "fetch_errors float": _set(("fetch_errors",), 1.0),
    "polls string": _set(("polls",), "3"),
    "last_status int": _set(("last_status",), 3),
    "phase unknown": _set(("phase",), "MAYBE"),
    "phase dict": _set(("phase",), {}),
    "status_changed null": _set(("status_changed",), None),
    "last_job missing": _delete(("last_job",)),
    "unknown_seen string": _set(("unknown_seen",), "abc"),
    "unknown_seen ints": _set(("unknown_seen",), [1, 2]),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupted_snapshot_is_a_value_error(name: str) -> None:
    snapshot = _valid_snapshot()
    CORRUPTIONS[name](snapshot)
    with pytest.raises(ValueError, match="snapshot"):
        JobWaiter.restore(snapshot, now=0.0)


@pytest.mark.parametrize("snapshot", [None, [], "jobwait.JobWaiter/1", 42, {}, {"format": None}])
def test_not_a_snapshot_is_a_value_error(snapshot: Any) -> None:
    with pytest.raises(ValueError, match=SNAPSHOT_FORMAT):
        JobWaiter.restore(snapshot, now=0.0)


@pytest.mark.parametrize("now", [math.nan, math.inf, "0", None, 10**400], ids=lambda x: repr(x)[:9])
def test_restore_with_an_invalid_now_is_a_value_error(now: Any) -> None:
    with pytest.raises(ValueError, match="now"):
        JobWaiter.restore(_valid_snapshot(), now=now)


def test_restore_does_not_modify_the_snapshot() -> None:
    snapshot = _valid_snapshot()
    before = copy.deepcopy(snapshot)
    JobWaiter.restore(snapshot, now=5.0)
    assert snapshot == before


# Fuzzing: any random mutation of a valid snapshot gives a working waiter or ValueError.

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["IDLE", "POLLING", "SLEEPING", "DONE", "PENDING", "UNKNOWN", "full"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


@st.composite
def mutated_snapshots(draw: st.DrawFn) -> dict[str, Any]:
    state = draw(st.sampled_from([State.IDLE, State.POLLING, State.SLEEPING]))
    jitter = draw(st.sampled_from([None, "full", "decorrelated"]))
    snapshot = _valid_snapshot(state, backoff=Backoff(jitter=jitter, rng=random.Random(0)))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(snapshot)
        path = draw(st.sampled_from(paths))
        parent: Any = snapshot
        for key in path[:-1]:
            parent = parent[key]
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(_json)
        else:
            parent[path[-1]] = draw(_json)
    return snapshot


def _drive_a_little(waiter: JobWaiter, now: float) -> None:
    """A restored waiter must work: every event it is offered gives an action."""
    jobs = [{"status": "ready"}, {"status": "weird"}, OSError("x"), {"status": "completed"}]
    for step in range(8):
        state = waiter.state
        if state is State.IDLE:
            action = waiter.handle(Start(now=now))
        elif state is State.SLEEPING:
            last = waiter.last_action
            assert isinstance(last, Sleep)
            now += last.seconds if math.isfinite(last.seconds) else 0.0
            action = waiter.handle(Woke(now=now))
        elif state is State.POLLING:
            job = jobs[step % len(jobs)]
            if isinstance(job, Exception):
                action = waiter.handle(FetchFailed(error=job, now=now))
            else:
                action = waiter.handle(Observed(job=job, now=now))
        else:
            with pytest.raises(UsageError):
                waiter.handle(Woke(now=now))
            return
        assert isinstance(action, Poll | Sleep | Done | Raise)
        if isinstance(action, Sleep):
            assert action.seconds >= 0


@settings(max_examples=300)
@given(snapshot=mutated_snapshots(), now=st.floats(-1e6, 1e6))
def test_fuzzed_snapshot_restores_to_a_working_waiter_or_value_error(
    snapshot: dict[str, Any], now: float
) -> None:
    try:
        waiter = JobWaiter.restore(snapshot, now=now, rng=random.Random(1))
    except ValueError:
        return
    _drive_a_little(waiter, now)


def test_restore_rejects_an_interval_outside_the_backoff() -> None:
    w = JobWaiter(backoff=Backoff(initial=1, max=10))
    w.handle(Start(now=0.0))
    snap = w.snapshot()
    for bad in (0.0, 0.5, 11.0):
        with pytest.raises(ValueError, match="interval"):
            JobWaiter.restore({**snap, "interval": bad}, now=0.0)


def test_statuses_case_sensitive_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="case_sensitive"):
        Statuses(case_sensitive="yes")  # type: ignore[arg-type]


def test_a_huge_status_is_kept_whole_but_shown_bounded_in_messages() -> None:
    # A hostile server's 900 KB status must not make a 900 KB error message or repr;
    # the attributes keep what was read.
    huge = "x" * 900_000
    waiter = JobWaiter(job_id="j1", timeout=10.0)
    action: Any = waiter.handle(Start(now=0.0))
    now = 0.0
    while not isinstance(action, Raise):
        assert isinstance(action, Poll)
        action = waiter.handle(Observed(job={"status": huge}, now=now))
        assert len(repr(waiter)) < 400
        if isinstance(action, Sleep):
            now += action.seconds
            action = waiter.handle(Woke(now=now))
    assert action.error.last_status == huge
    assert len(str(action.error)) < 600
    assert "900002 characters" in str(action.error)
