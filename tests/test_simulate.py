"""``jobwait.testing`` (VirtualClock, simulate, Trace), the driver helpers in ``_drive``,
and where the test kit sits: the core never imports it, adapters use its public names."""

from __future__ import annotations

import ast
import asyncio
import itertools
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
import trio

import jobwait.testing
from jobwait import (
    Backoff,
    Fetched,
    FetchFailed,
    JobFetchError,
    JobTimeoutError,
    JobWaiter,
    Observed,
    Start,
    UsageError,
    fetch_failed,
    is_retryable,
    observed,
)
from jobwait._plumbing import make_waiter, retry_after_of
from jobwait.http import RETRYABLE_STATUS_CODES, is_retryable_status
from jobwait.testing import Fail, Trace, VirtualClock, simulate

DEFAULT_POLLS = [0.0, 1.0, 2.5, 4.75, 8.125, 13.1875, 20.78125, 32.171875]

# --- VirtualClock --------------------------------------------------------------------


def test_virtual_clock_sleep_and_advance() -> None:
    vc = VirtualClock()
    assert vc.now() == 0.0
    vc.sleep(2.5)
    vc.advance(1.0)
    vc.sleep(0)
    assert vc.now() == 3.5
    assert vc.sleeps == [2.5, 0]
    assert repr(vc) == "<VirtualClock now=3.5 sleeps=2>"
    assert VirtualClock(start=100).now() == 100.0


@pytest.mark.parametrize("seconds", [-1.0, -1e-300, math.nan])
def test_virtual_clock_rejects_negative_and_nan(seconds: float) -> None:
    vc = VirtualClock(start=5.0)
    with pytest.raises(ValueError, match="sleep"):
        vc.sleep(seconds)
    with pytest.raises(ValueError, match="advance"):
        vc.advance(seconds)
    with pytest.raises(ValueError, match="sleep"):
        asyncio.run(vc.asleep(seconds))
    assert vc.now() == 5.0
    assert vc.sleeps == []


def test_asleep_never_suspends() -> None:
    vc = VirtualClock()
    coro = vc.asleep(7.0)
    with pytest.raises(StopIteration):
        coro.send(None)  # finishes on the first step: it never yields to a loop
    assert (vc.now(), vc.sleeps) == (7.0, [7.0])


def test_asleep_under_asyncio() -> None:
    vc = VirtualClock()

    async def main() -> float:
        loop_time = asyncio.get_running_loop().time()
        for seconds in (1.0, 2.0, 3600.0):
            await vc.asleep(seconds)
        return asyncio.get_running_loop().time() - loop_time

    real = asyncio.run(main())
    assert vc.now() == 3603.0
    assert vc.sleeps == [1.0, 2.0, 3600.0]
    assert real < 60  # an hour of virtual time, no real waiting


def test_asleep_under_trio() -> None:
    vc = VirtualClock()

    async def main() -> float:
        start = trio.current_time()
        for seconds in (1.0, 2.0, 3600.0):
            await vc.asleep(seconds)
        return trio.current_time() - start

    real = trio.run(main)
    assert vc.now() == 3603.0
    assert vc.sleeps == [1.0, 2.0, 3600.0]
    assert real < 60


# --- simulate: timelines ------------------------------------------------------------------


def test_simulate_timeline_of_bare_strings() -> None:
    trace = simulate(JobWaiter(), [(0, "submitted"), (5, "ready"), (20, "completed")])
    assert isinstance(trace, Trace)
    assert trace.polls == DEFAULT_POLLS[:7]
    assert trace.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375]
    assert trace.outcome == {"status": "completed"}
    assert trace.error is None
    assert trace.elapsed == 20.78125


def test_simulate_timeline_of_dict_jobs_returns_the_entry() -> None:
    final = {"status": "completed", "id": "j1", "results": {"0": 1.0}}
    trace = simulate(JobWaiter(), [(0, {"status": "ready", "id": "j1"}), (2, final)])
    assert trace.outcome is final
    assert trace.polls == [0.0, 1.0, 2.5]


def test_simulate_before_the_first_entry_sees_the_first_entry() -> None:
    seen: list[Any] = []
    waiter = JobWaiter(status_of=lambda job: seen.append(job["status"]) or job["status"])
    trace = simulate(waiter, [(3.0, "ready"), (4.0, "completed")])
    assert seen[:3] == ["ready", "ready", "ready"]  # polls at 0, 1 and 2.5 precede t=3
    assert trace.polls == [0.0, 1.0, 2.5, 4.75]


def test_simulate_timeline_order_does_not_matter() -> None:
    forward = simulate(JobWaiter(), [(0, "ready"), (10, "completed")])
    backward = simulate(JobWaiter(), [(10, "completed"), (0, "ready")])
    assert forward == backward


def test_simulate_empty_timeline_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        simulate(JobWaiter(), [])


def test_simulate_timeout_on_a_job_that_never_finishes() -> None:
    trace = simulate(JobWaiter(timeout=10.0), [(0, "ready")])
    assert trace.polls == [*DEFAULT_POLLS[:5], 10.0]
    assert isinstance(trace.error, JobTimeoutError)
    assert trace.outcome is trace.error
    assert trace.elapsed == 10.0


def test_simulate_a_two_hour_queue() -> None:
    trace = simulate(JobWaiter(timeout=None), [(0, "submitted"), (7200, "completed")])
    capped_from = 74.88671875  # the 10th poll; every 30 s after it
    expected = 10 + math.ceil((7200 - capped_from) / 30)
    assert len(trace.polls) == expected == 248
    assert trace.polls[-1] == capped_from + 30 * (expected - 10)
    assert trace.outcome == {"status": "completed"}


def test_simulate_start_time() -> None:
    trace = simulate(JobWaiter(), [(0, "ready"), (105, "completed")], start=100.0)
    assert trace.polls == [100 + t for t in DEFAULT_POLLS[:5]]
    assert trace.elapsed == 8.125


def test_simulate_negative_start_time() -> None:
    trace = simulate(JobWaiter(timeout=5.0), [(-100, "ready")], start=-50.0)
    assert trace.polls == [-50.0, -49.0, -47.5, -45.25, -45.0]
    assert isinstance(trace.error, JobTimeoutError)


def test_simulate_rejects_a_started_waiter() -> None:
    waiter = JobWaiter()
    waiter.handle(Start(now=0.0))
    with pytest.raises(UsageError):
        simulate(waiter, [(0, "ready")])


# --- simulate: callables, Fetched, Fail, exceptions --------------------------------------


def test_simulate_callable_returning_jobs() -> None:
    calls: list[tuple[float, int]] = []

    def script(now: float, index: int) -> dict[str, str]:
        calls.append((now, index))
        return {"status": "completed" if index == 3 else "running"}

    trace = simulate(JobWaiter(), script)
    assert calls == [(0.0, 0), (1.0, 1), (2.5, 2), (4.75, 3)]
    assert trace.outcome == {"status": "completed"}


def test_simulate_fetched_passes_the_hint() -> None:
    def script(now: float, index: int) -> Any:
        if index == 0:
            return Fetched({"status": "ready"}, retry_after=10.0)
        return {"status": "completed"}

    trace = simulate(JobWaiter(), script)
    assert trace.sleeps == [10.0]
    assert trace.polls == [0.0, 10.0]


def test_simulate_fail_retryable_with_hint_then_success() -> None:
    boom = ConnectionError("reset")

    def script(now: float, index: int) -> Any:
        return Fail(boom, retry_after=4.0) if index < 2 else {"status": "completed"}

    trace = simulate(JobWaiter(), script)
    assert trace.sleeps == [4.0, 4.0]
    assert trace.outcome == {"status": "completed"}


def test_simulate_fail_not_retryable() -> None:
    boom = RuntimeError("400 Bad Request")
    trace = simulate(JobWaiter(), lambda now, i: Fail(boom, retryable=False))
    assert isinstance(trace.error, JobFetchError)
    assert trace.error.__cause__ is boom
    assert trace.polls == [0.0]


def test_simulate_exception_classified_retryable_until_the_budget() -> None:
    errors = [OSError(f"down {i}") for i in range(10)]
    trace = simulate(JobWaiter(max_fetch_errors=4), lambda now, i: errors[i])
    assert len(trace.polls) == 4
    assert isinstance(trace.error, JobFetchError)
    assert trace.error.__cause__ is errors[3]


def test_simulate_exception_classified_not_retryable() -> None:
    error = ValueError("bad payload")
    trace = simulate(JobWaiter(), lambda now, i: error)
    assert isinstance(trace.error, JobFetchError)
    assert trace.error.__cause__ is error
    assert len(trace.polls) == 1


def test_simulate_exception_with_retry_after_attribute() -> None:
    class RateLimitedError(Exception):
        status_code = 429
        retry_after = 12.0

    def script(now: float, index: int) -> Any:
        return RateLimitedError() if index == 0 else {"status": "completed"}

    trace = simulate(JobWaiter(), script)
    assert trace.sleeps == [12.0]


def test_simulate_latency() -> None:
    trace = simulate(JobWaiter(), [(0, "ready"), (2, "completed")], latency=0.5)
    # fetch at 0, seen at 0.5, sleep 1; fetch at 1.5 (still ready), seen at 2, sleep 1.5;
    # fetch at 3.5 sees completed, seen at 4.
    assert trace.polls == [0.0, 1.5, 3.5]
    assert trace.sleeps == [1.0, 1.5]
    assert trace.elapsed == 4.0


def test_simulate_latency_counts_against_the_deadline() -> None:
    trace = simulate(JobWaiter(timeout=3.0), [(0, "ready")], latency=2.0)
    # fetch at 0, seen at 2, sleep 1 (clamped); fetch at 3, seen at 5: time is up.
    assert trace.polls == [0.0, 3.0]
    assert isinstance(trace.error, JobTimeoutError)
    assert trace.elapsed == 5.0


@pytest.mark.parametrize("latency", [-0.1, math.nan])
def test_simulate_invalid_latency(latency: float) -> None:
    with pytest.raises(ValueError, match="latency"):
        simulate(JobWaiter(), [(0, "ready")], latency=latency)


def test_simulate_max_polls_stops_without_an_outcome() -> None:
    trace = simulate(JobWaiter(timeout=None), [(0, "ready")], max_polls=3)
    assert trace.polls == [0.0, 1.0, 2.5]
    assert trace.sleeps == [1.0, 1.5, 2.25]
    assert trace.outcome is None
    assert trace.error is None
    assert trace.elapsed == 4.75


def test_simulate_matches_a_hand_driven_waiter() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, max=8.0)
    trace = simulate(JobWaiter(backoff=backoff, timeout=60.0), [(0, "ready"), (40, "completed")])
    assert trace.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert trace.polls == list(itertools.accumulate([0.0, *trace.sleeps]))


# --- driver helpers ------------------------------------------------------------------------


def test_observed_wraps_a_job_and_unwraps_fetched() -> None:
    job = {"status": "ready"}
    assert observed(job, 3.0) == Observed(job=job, now=3.0)
    assert observed(Fetched(job, retry_after=7.0), 3.0) == Observed(
        job=job, now=3.0, retry_after=7.0
    )
    assert observed(Fetched(job), 1.0) == Observed(job=job, now=1.0, retry_after=None)


def test_fetch_failed_classifies_with_the_defaults() -> None:
    error = ConnectionError("reset")
    error.retry_after = 5  # type: ignore[attr-defined]
    assert fetch_failed(error, 2.0) == FetchFailed(
        error=error, now=2.0, retryable=True, retry_after=5.0
    )
    bad = ValueError("no")
    bad.retry_after = 5  # type: ignore[attr-defined]
    # A hint on a failure that will not be retried is irrelevant: not read.
    assert fetch_failed(bad, 2.0) == FetchFailed(
        error=bad, now=2.0, retryable=False, retry_after=None
    )


def test_fetch_failed_with_custom_classifiers() -> None:
    error = ValueError("x")
    event = fetch_failed(error, 1.0, is_retryable=lambda e: True, retry_after_of=lambda e: 9.0)
    assert (event.retryable, event.retry_after) == (True, 9.0)


@pytest.mark.parametrize("which", ["is_retryable", "retry_after_of"])
def test_fetch_failed_with_a_raising_classifier_is_not_retryable_with_a_note(which: str) -> None:
    def broken(error: BaseException) -> Any:
        raise RuntimeError("classifier bug")

    error = ConnectionError("reset")
    event = fetch_failed(error, 1.0, **{which: broken})
    assert event == FetchFailed(error=error, now=1.0, retryable=False)
    assert error.__notes__ == [
        "jobwait: classifying this error raised RuntimeError: classifier bug"
    ]
    waiter = JobWaiter()
    waiter.handle(Start(now=0.0))
    action = waiter.handle(event)
    assert isinstance(action.error, JobFetchError)  # type: ignore[union-attr]
    assert action.error.__cause__ is error  # type: ignore[union-attr]


class _FlaggedError(Exception):
    def __init__(self, **attrs: Any) -> None:
        super().__init__("flagged")
        self.__dict__.update(attrs)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (OSError(), True),
        (FileNotFoundError(), True),  # an OSError: the classifier is coarse on purpose
        (ValueError(), False),
        (KeyError(), False),
        (RuntimeError(), False),
        (_FlaggedError(retryable=True), True),
        (_FlaggedError(retryable=False), False),
        (_FlaggedError(retryable="yes"), False),  # not a boolean: not believed
        (_FlaggedError(retryable=False, status_code=503), False),  # the flag wins
        (_FlaggedError(status_code=503), True),
        (_FlaggedError(status_code=429), True),
        (_FlaggedError(status_code=520), True),
        (_FlaggedError(status_code=529), True),
        (_FlaggedError(status_code=530), False),
        (_FlaggedError(status_code=404), False),
        (_FlaggedError(status_code=400), False),
        (_FlaggedError(status_code=True), False),
        (_FlaggedError(status_code="503"), False),
    ],
    ids=repr,
)
def test_is_retryable(error: BaseException, expected: bool) -> None:
    assert is_retryable(error) is expected


def test_is_retryable_status() -> None:
    assert {c for c in range(100, 600) if is_retryable_status(c)} == set(RETRYABLE_STATUS_CODES)
    assert set(RETRYABLE_STATUS_CODES) == {429, 500, 502, 503, 504, *range(520, 530)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5.0),
        (2.5, 2.5),
        (0, 0.0),
        (-1, None),
        (math.nan, None),
        (math.inf, None),
        ("5", None),
        (True, None),
        (None, None),
        (10**400, None),
    ],
    ids=lambda v: repr(v)[:12],
)
def test_retry_after_of(value: Any, expected: float | None) -> None:
    assert retry_after_of(_FlaggedError(retry_after=value)) == expected
    assert retry_after_of(ValueError()) is None


def test_make_waiter() -> None:
    waiter = JobWaiter()
    assert make_waiter(waiter, {}) is waiter
    built = make_waiter(None, {"timeout": 5.0, "job_id": "j"})
    assert (built.timeout, built.job_id) == (5.0, "j")
    assert make_waiter(None, {}).timeout == 300.0


def test_make_waiter_rejects_waiter_and_options() -> None:
    with pytest.raises(TypeError, match="either waiter= or JobWaiter options"):
        make_waiter(JobWaiter(), {"timeout": 5.0})


def test_make_waiter_rejects_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="'timout'"):
        make_waiter(None, {"timout": 5.0})
    with pytest.raises(TypeError, match="'timout'"):
        make_waiter(JobWaiter(), {"timout": 5.0})


def test_make_waiter_rejects_a_non_waiter_and_bad_values() -> None:
    with pytest.raises(TypeError, match=r"jobwait\.JobWaiter"):
        make_waiter("waiter", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        make_waiter(None, {"timeout": -1})


def test_options_list_matches_the_constructor() -> None:
    # The per-job options are defined once (JobOptions); the waiter's list derives.
    from jobwait._plumbing import JOB_DEFAULTS, JobOptions

    assert ("job_id", *JobOptions.__annotations__) == JobWaiter.OPTIONS
    assert set(JOB_DEFAULTS) == set(JobOptions.__annotations__)
    waiter = JobWaiter(job_id="a", **JOB_DEFAULTS)
    assert waiter.options() == JOB_DEFAULTS
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        JobWaiter(colour="red")  # type: ignore[call-arg]


# --- where the test kit sits -----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every ``(module, names)`` imported by ``path``; relative imports resolved against
    its package (``jobwait.`` for src/jobwait, ``jobwait.adapters.`` for adapters)."""
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "src":
        package = list(relative.parts[1:-1])
    else:
        package = ["jobwait", *relative.parts[:-1]]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((module, tuple(alias.name for alias in node.names)))
    return found


def test_the_core_never_imports_the_test_kit() -> None:
    core = sorted((ROOT / "src" / "jobwait").glob("*.py"))
    assert len(core) > 5
    for path in core:
        for module, names in _imports(path):
            assert not module.startswith("jobwait.testing"), (path.name, module)
            assert not (module == "jobwait" and "testing" in names), path.name


def test_adapters_use_only_the_public_names_of_the_test_kit() -> None:
    paths = sorted((ROOT / "adapters").rglob("*.py"))
    assert ROOT / "adapters" / "server.py" in paths
    uses = 0
    for path in paths:
        for module, names in _imports(path):
            if module.startswith("jobwait.testing"):
                uses += 1
                assert module == "jobwait.testing", (path.name, module)
                assert set(names) <= set(jobwait.testing.__all__), (path.name, names)
    assert uses >= 2  # server.py and the demo


def test_the_test_kit_names_its_public_home() -> None:
    for name in jobwait.testing.__all__:
        assert getattr(jobwait.testing, name).__module__ == "jobwait.testing", name
    fail = Fail(ConnectionError("x"), retry_after=1.0)
    assert pickle.loads(pickle.dumps(fail)).retry_after == 1.0
    assert repr(VirtualClock()).startswith("<VirtualClock")


def test_no_cli_module_is_over_500_lines() -> None:
    modules = sorted((ROOT / "adapters" / "cli").glob("*.py"))
    assert {p.name for p in modules} >= {"_wait.py", "_serve.py", "_demo.py", "_parser.py"}
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in modules}
    assert max(sizes.values()) <= 500, sizes
