"""One table of scenarios, run through simulate and all three runtime adapters.

Every adapter must produce exactly the poll schedule and the outcome that
``jobwait.testing.simulate`` computes for the same scenario: the adapters perform
the core's actions and decide nothing themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from jobwait import (
    Backoff,
    Fetched,
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    Statuses,
)
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import sync as jw_sync
from jobwait.adapters import trio as jw_trio
from jobwait.testing import VirtualClock, simulate

Script = Callable[[float, int], Any]


class HintedError(ConnectionError):
    """A retryable fetch error that carries a server hint (read by retry_after_of)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"503, retry after {retry_after}")
        self.retry_after = retry_after


def statuses(*seq: str) -> Script:
    """The i-th poll sees seq[i]; the last entry repeats."""
    return lambda _now, i: {"status": seq[min(i, len(seq) - 1)], "poll": i}


def until(t: float, final: str = "completed") -> Script:
    return lambda now, i: {"status": final if now >= t else "started", "poll": i}


def flaky(failures: int, error: Callable[[], Exception], then: Script) -> Script:
    return lambda now, i: error() if i < failures else then(now, i)


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Script
    expect: type[Any]  # dict for a returned job, else the error type
    options: dict[str, Any] = field(default_factory=dict)
    cancel_after: int | None = None  # the caller cancels during the sleep after this poll


SCENARIOS = [
    Scenario("never finishes", statuses("started"), JobTimeoutError),
    Scenario(
        "finishes after 4 polls", statuses("submitted", "ready", "started", "completed"), dict
    ),
    Scenario("finishes at t=60", until(60.0), dict),
    Scenario("fails", statuses("ready", "failed"), JobFailedError),
    Scenario("fails, returned", statuses("ready", "failed"), dict, {"raise_on_failure": False}),
    Scenario("canceled is returned", statuses("started", "canceled"), dict),
    Scenario(
        "canceled raises",
        statuses("started", "canceled"),
        JobCanceledError,
        {"raise_on_cancel": True},
    ),
    Scenario(
        "transient errors then success",
        flaky(3, lambda: ConnectionResetError("reset"), statuses("completed")),
        dict,
    ),
    Scenario(
        "error budget exhausted",
        flaky(99, lambda: TimeoutError("read timed out"), statuses("completed")),
        JobFetchError,
        {"max_fetch_errors": 4},
    ),
    Scenario(
        "non-retryable error",
        flaky(1, lambda: KeyError("status"), statuses("completed")),
        JobFetchError,
    ),
    Scenario(
        "retry-after hint on a job",
        lambda now, i: Fetched({"status": "completed" if i >= 3 else "queued"}, retry_after=7.0),
        dict,
        {"statuses": Statuses(pending={"queued"})},
    ),
    Scenario(
        "retry-after hint on an error",
        flaky(2, lambda: HintedError(12.5), statuses("completed")),
        dict,
    ),
    Scenario("timeout 0", statuses("started"), JobTimeoutError, {"timeout": 0}),
    Scenario(
        "short timeout, custom backoff",
        statuses("started"),
        JobTimeoutError,
        {"timeout": 10, "backoff": Backoff(initial=0.5, factor=2, max=4)},
    ),
    Scenario(
        "timeout None, the caller cancels",
        statuses("started"),
        asyncio.CancelledError,  # each runtime's own cancellation; see run_* below
        {"timeout": None},
        cancel_after=25,
    ),
]


@dataclass
class Run:
    polls: list[float]
    outcome: Any


def expected(s: Scenario) -> Run:
    trace = simulate(JobWaiter(**s.options), s.script, max_polls=s.cancel_after or 1_000_000)
    return Run(trace.polls, trace.outcome)


def _fetch_for(s: Scenario, now: Callable[[], float], polls: list[float]) -> Callable[[], Any]:
    def fetch() -> Any:
        t = now()
        polls.append(t)
        result = s.script(t, len(polls) - 1)
        if isinstance(result, Exception):
            raise result
        return result

    return fetch


def run_sync(s: Scenario) -> Run:
    vc = VirtualClock()
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        if s.cancel_after is not None and len(polls) >= s.cancel_after:
            raise KeyboardInterrupt
        vc.sleep(seconds)

    try:
        outcome = jw_sync.wait(_fetch_for(s, vc.now, polls), clock=vc.now, sleep=sleep, **s.options)
    except (JobWaitError, KeyboardInterrupt) as exc:
        outcome = exc
    return Run(polls, outcome)


def run_asyncio(s: Scenario) -> Run:
    vc = VirtualClock()
    polls: list[float] = []
    fetch_sync = _fetch_for(s, vc.now, polls)

    async def fetch() -> Any:
        return fetch_sync()

    async def main() -> Any:
        task = asyncio.current_task()
        assert task is not None

        async def sleep(seconds: float) -> None:
            if s.cancel_after is not None and len(polls) >= s.cancel_after:
                task.cancel()
                await asyncio.sleep(0)  # the cancellation lands here
            await vc.asleep(seconds)

        return await jw_asyncio.wait(fetch, clock=vc.now, sleep=sleep, **s.options)

    try:
        outcome = asyncio.run(main())
    except (JobWaitError, asyncio.CancelledError) as exc:
        outcome = exc
    return Run(polls, outcome)


def run_trio(s: Scenario) -> Run:
    """trio runs on its own clock (MockClock), with nothing injected."""
    polls: list[float] = []
    fetch_sync = _fetch_for(s, trio.current_time, polls)
    outcome: Any = None

    async def fetch() -> Any:
        await trio.lowlevel.checkpoint()
        return fetch_sync()

    async def main() -> None:
        nonlocal outcome
        with trio.CancelScope() as scope:

            async def sleep(seconds: float) -> None:
                if s.cancel_after is not None and len(polls) >= s.cancel_after:
                    scope.cancel()
                await trio.sleep(seconds)

            try:
                outcome = await jw_trio.wait(fetch, sleep=sleep, **s.options)
            except JobWaitError as exc:
                outcome = exc
        if scope.cancelled_caught:
            outcome = trio.Cancelled

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return Run(polls, outcome)


def _same_outcome(s: Scenario, want: Run, got: Run, cancelled: tuple[Any, ...]) -> None:
    if s.cancel_after is not None:
        assert want.outcome is None  # simulate stopped at max_polls: still waiting
        assert got.outcome in cancelled or isinstance(got.outcome, cancelled)
        return
    if s.expect is dict:
        assert got.outcome == want.outcome
        assert isinstance(got.outcome, dict)
        return
    assert type(got.outcome) is s.expect is type(want.outcome)
    assert got.outcome.polls == want.outcome.polls == len(want.polls)
    assert got.outcome.last_status == want.outcome.last_status
    assert got.outcome.elapsed == pytest.approx(want.outcome.elapsed)
    assert type(got.outcome.__cause__) is type(want.outcome.__cause__)


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.name)
def test_simulate_baseline(s: Scenario) -> None:
    want = expected(s)
    assert want.polls, "every scenario polls at least once"
    if s.cancel_after is None:
        assert isinstance(want.outcome, s.expect)


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.name)
def test_sync_matches_simulate(s: Scenario) -> None:
    want, got = expected(s), run_sync(s)
    assert got.polls == pytest.approx(want.polls)
    _same_outcome(s, want, got, (KeyboardInterrupt,))


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.name)
def test_asyncio_matches_simulate(s: Scenario) -> None:
    want, got = expected(s), run_asyncio(s)
    assert got.polls == pytest.approx(want.polls)
    _same_outcome(s, want, got, (asyncio.CancelledError,))


@pytest.mark.parametrize("s", SCENARIOS, ids=lambda s: s.name)
def test_trio_matches_simulate(s: Scenario) -> None:
    want, got = expected(s), run_trio(s)
    assert got.polls == pytest.approx(want.polls)
    _same_outcome(s, want, got, (trio.Cancelled,))


def test_default_schedule_is_the_ionq_one_in_every_runtime() -> None:
    s = SCENARIOS[0]
    for run in (run_sync, run_asyncio, run_trio):
        got = run(s)
        assert len(got.polls) == 18
        assert got.polls[:5] == pytest.approx([0, 1, 2.5, 4.75, 8.125])
        assert got.polls[-1] == pytest.approx(300.0)
        assert isinstance(got.outcome, JobTimeoutError)
