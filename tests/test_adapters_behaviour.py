"""Runtime adapters beyond the schedule: cancellation, cancel=, on_status, options.

Sync tests inject a VirtualClock; trio tests run on MockClock(autojump_threshold=0);
asyncio tests block on events that never fire instead of sleeping, and the few that
must wait on asyncio's real clock are marked ``realtime`` and bounded to ~50 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from jobwait import (
    Backoff,
    Fetched,
    JobFetchError,
    JobTimeoutError,
    JobWaiter,
)
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import sync as jw_sync
from jobwait.adapters import trio as jw_trio
from jobwait.testing import VirtualClock

RUNTIMES = ["asyncio", "trio"]


def run(runtime: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``fn`` on asyncio or on trio (with an autojumping MockClock)."""
    if runtime == "asyncio":
        return asyncio.run(fn())  # type: ignore[arg-type]
    return trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def adapter(runtime: str) -> Any:
    return jw_asyncio if runtime == "asyncio" else jw_trio


def virtual(runtime: str) -> dict[str, Any]:
    """asyncio gets a VirtualClock; trio needs nothing (MockClock)."""
    if runtime == "asyncio":
        vc = VirtualClock()
        return {"clock": vc.now, "sleep": vc.asleep}
    return {}


# --- sync -------------------------------------------------------------------------


def test_sync_keyboard_interrupt_in_sleep_propagates_and_cancels_once() -> None:
    vc = VirtualClock()
    calls: list[str] = []

    def sleep(seconds: float) -> None:
        if len(vc.sleeps) == 2:
            raise KeyboardInterrupt
        vc.sleep(seconds)

    with pytest.raises(KeyboardInterrupt):
        jw_sync.wait(
            lambda: {"status": "started"},
            clock=vc.now,
            sleep=sleep,
            cancel=lambda: calls.append("cancel"),
        )
    assert calls == ["cancel"]


def test_sync_keyboard_interrupt_in_fetch_propagates() -> None:
    vc = VirtualClock()

    def fetch() -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        jw_sync.wait(fetch, clock=vc.now, sleep=vc.sleep)


def test_sync_timeout_calls_cancel_once() -> None:
    vc = VirtualClock()
    calls: list[int] = []
    with pytest.raises(JobTimeoutError) as info:
        jw_sync.wait(
            lambda: {"status": "ready"},
            job_id="j1",
            timeout=10,
            clock=vc.now,
            sleep=vc.sleep,
            cancel=lambda: calls.append(1),
        )
    assert calls == [1]
    assert info.value.cancel_error is None
    assert info.value.job_id == "j1"
    assert info.value.last_job == {"status": "ready"}


def test_sync_cancel_failure_is_attached_never_replacing_the_error() -> None:
    vc = VirtualClock()

    def cancel() -> None:
        raise ConnectionError("cancel endpoint down")

    with pytest.raises(JobTimeoutError) as info:
        jw_sync.wait(
            lambda: {"status": "ready"}, timeout=5, clock=vc.now, sleep=vc.sleep, cancel=cancel
        )
    assert isinstance(info.value.cancel_error, ConnectionError)
    assert any("cancel endpoint down" in note for note in info.value.__notes__)


def test_sync_cancel_failure_on_interrupt_is_attached_to_the_interrupt() -> None:
    vc = VirtualClock()

    def sleep(_s: float) -> None:
        raise KeyboardInterrupt

    def cancel() -> None:
        raise RuntimeError("nope")

    with pytest.raises(KeyboardInterrupt) as info:
        jw_sync.wait(lambda: {"status": "ready"}, clock=vc.now, sleep=sleep, cancel=cancel)
    assert isinstance(info.value.cancel_error, RuntimeError)  # type: ignore[attr-defined]


def test_sync_cancel_not_called_on_failure_or_success() -> None:
    vc = VirtualClock()
    calls: list[int] = []
    jw_sync.wait(
        lambda: {"status": "completed"},
        clock=vc.now,
        sleep=vc.sleep,
        cancel=lambda: calls.append(1),
    )
    with pytest.raises(Exception, match="failed"):
        jw_sync.wait(
            lambda: {"status": "failed"},
            clock=vc.now,
            sleep=vc.sleep,
            cancel=lambda: calls.append(1),
        )
    assert calls == []


def test_sync_fetch_exception_never_escapes_raw() -> None:
    vc = VirtualClock()

    def fetch() -> Any:
        return {}["status"]

    with pytest.raises(JobFetchError) as info:
        jw_sync.wait(fetch, clock=vc.now, sleep=vc.sleep)
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.polls == 1


def test_sync_classifier_that_raises_ends_as_fetch_error_with_the_original_cause() -> None:
    vc = VirtualClock()

    def fetch() -> Any:
        raise ConnectionError("down")

    def broken(_exc: BaseException) -> bool:
        raise ZeroDivisionError

    with pytest.raises(JobFetchError) as info:
        jw_sync.wait(fetch, clock=vc.now, sleep=vc.sleep, is_retryable=broken)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert any("ZeroDivisionError" in n for n in info.value.__cause__.__notes__)


def test_sync_custom_classifiers_are_used() -> None:
    vc = VirtualClock()
    n = 0

    def fetch() -> Any:
        nonlocal n
        n += 1
        if n < 3:
            raise ValueError("usually fatal")
        return {"status": "completed"}

    job = jw_sync.wait(
        fetch,
        clock=vc.now,
        sleep=vc.sleep,
        is_retryable=lambda e: isinstance(e, ValueError),
        retry_after_of=lambda e: 42.0,
    )
    assert job == {"status": "completed"}
    assert vc.sleeps == [42.0, 42.0]


def test_sync_on_status_once_per_change_first_included() -> None:
    vc = VirtualClock()
    seq = iter(["submitted", "submitted", "ready", "ready", "started", "completed"])
    seen: list[tuple[str, str]] = []
    jw_sync.wait(
        lambda: {"status": next(seq)},
        clock=vc.now,
        sleep=vc.sleep,
        on_status=lambda job, status: seen.append((job["status"], status)),
    )
    assert [s for _, s in seen] == ["submitted", "ready", "started", "completed"]
    assert all(a == b for a, b in seen)


def test_sync_fetched_is_unwrapped() -> None:
    vc = VirtualClock()
    seq = iter([Fetched({"status": "ready"}, retry_after=9), Fetched({"status": "completed"})])
    assert jw_sync.wait(lambda: next(seq), clock=vc.now, sleep=vc.sleep) == {"status": "completed"}
    assert vc.sleeps == [9]


def test_waiter_and_options_together_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="either waiter= or JobWaiter options"):
        jw_sync.wait(dict, waiter=JobWaiter(), timeout=5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'timout'"):
        jw_sync.wait(dict, timout=5)  # type: ignore[call-arg]


def test_a_ready_waiter_is_driven_and_left_finished() -> None:
    vc = VirtualClock()
    w = JobWaiter(job_id="x", backoff=Backoff(initial=2))
    jw_sync.wait(lambda: {"status": "completed"}, waiter=w, clock=vc.now, sleep=vc.sleep)
    assert w.finished
    assert w.polls == 1


@pytest.mark.realtime
def test_sync_defaults_use_the_real_clock_briefly() -> None:
    seq = iter(["ready", "completed"])
    t0 = time.monotonic()
    job = jw_sync.wait(lambda: {"status": next(seq)}, backoff=Backoff(initial=0.01))
    assert job == {"status": "completed"}
    assert 0.009 <= time.monotonic() - t0 < 0.5


# --- asyncio and trio ---------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_on_status_sync_and_async_callbacks(runtime: str) -> None:
    seen: list[str] = []

    async def main() -> None:
        seq = iter(["ready", "started", "started", "completed"])

        async def fetch() -> Any:
            return {"status": next(seq)}

        async def on_status(_job: Any, status: str) -> None:
            seen.append("async:" + status)

        await adapter(runtime).wait(fetch, on_status=on_status, **virtual(runtime))
        seq = iter(["ready", "completed"])
        await adapter(runtime).wait(
            fetch, on_status=lambda _j, s: seen.append("sync:" + s), **virtual(runtime)
        )

    run(runtime, main)
    assert seen == [
        "async:ready",
        "async:started",
        "async:completed",
        "sync:ready",
        "sync:completed",
    ]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_timeout_awaits_cancel_once_and_attaches_its_failure(runtime: str) -> None:
    calls: list[int] = []

    async def main() -> None:
        async def fetch() -> Any:
            return {"status": "ready"}

        async def cancel() -> None:
            calls.append(1)
            raise ConnectionError("cancel failed")

        with pytest.raises(JobTimeoutError) as info:
            await adapter(runtime).wait(fetch, timeout=20, cancel=cancel, **virtual(runtime))
        assert isinstance(info.value.cancel_error, ConnectionError)

    run(runtime, main)
    assert calls == [1]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_fetch_errors_never_escape_raw(runtime: str) -> None:
    async def main() -> None:
        async def fetch() -> Any:
            raise TypeError("bad payload")

        with pytest.raises(JobFetchError) as info:
            await adapter(runtime).wait(fetch, **virtual(runtime))
        assert isinstance(info.value.__cause__, TypeError)

    run(runtime, main)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_waiter_with_options_is_a_type_error(runtime: str) -> None:
    async def main() -> None:
        async def fetch() -> Any:
            return {"status": "completed"}

        with pytest.raises(TypeError):
            await adapter(runtime).wait(fetch, waiter=JobWaiter(), job_id="x")

    run(runtime, main)


# asyncio cancellation: block on events that never fire, cancel the task from outside.


@pytest.mark.parametrize("where", ["sleep", "fetch"])
def test_asyncio_cancel_returns_promptly_without_cancel(where: str) -> None:
    async def main() -> None:
        never = asyncio.Event()
        polls = 0

        async def fetch() -> Any:
            nonlocal polls
            polls += 1
            if where == "fetch" and polls == 2:
                await never.wait()
            return {"status": "ready"}

        async def sleep(_s: float) -> None:
            if where == "sleep" and polls == 2:
                await never.wait()

        task = asyncio.create_task(jw_asyncio.wait(fetch, sleep=sleep, timeout=None))
        for _ in range(10):
            await asyncio.sleep(0)
        assert polls == 2
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())


def test_asyncio_cancel_runs_shielded_once_then_reraises() -> None:
    calls: list[str] = []

    async def main() -> None:
        never = asyncio.Event()

        async def fetch() -> Any:
            await never.wait()

        async def cancel() -> None:
            calls.append("start")
            await asyncio.sleep(0)  # a real await inside the shielded cancel
            calls.append("end")

        task = asyncio.create_task(jw_asyncio.wait(fetch, cancel=cancel))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert calls == ["start", "end"]


@pytest.mark.realtime
def test_asyncio_cancel_grace_bounds_a_hanging_cancel() -> None:
    async def main() -> float:
        never = asyncio.Event()

        async def fetch() -> Any:
            await never.wait()

        async def cancel() -> None:
            await never.wait()

        task = asyncio.create_task(jw_asyncio.wait(fetch, cancel=cancel, cancel_grace=0.05))
        await asyncio.sleep(0)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert isinstance(info.value.cancel_error, TimeoutError)  # type: ignore[attr-defined]
        return time.monotonic() - t0

    assert 0.04 <= asyncio.run(main()) < 0.5


def test_asyncio_caller_timeout_composes() -> None:
    async def main() -> None:
        never = asyncio.Event()

        async def fetch() -> Any:
            await never.wait()

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await jw_asyncio.wait(fetch, timeout=None)

    asyncio.run(main())


@pytest.mark.realtime
def test_asyncio_default_clock_and_sleep() -> None:
    async def main() -> Any:
        seq = iter(["ready", "completed"])

        async def fetch() -> Any:
            return {"status": next(seq)}

        return await jw_asyncio.wait(fetch, backoff=Backoff(initial=0.01))

    assert asyncio.run(main()) == {"status": "completed"}


# trio: MockClock makes every wait instant and exact.


def test_trio_move_on_after_cancels_during_sleep_promptly() -> None:
    async def main() -> tuple[float, int]:
        polls = 0

        async def fetch() -> Any:
            nonlocal polls
            polls += 1
            return {"status": "started"}

        with trio.move_on_after(100):
            await jw_trio.wait(fetch, timeout=None)
        return trio.current_time(), polls

    now, polls = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert now == pytest.approx(100)
    assert polls == 10  # t = 0, 1, 2.5, 4.75, 8.125, 13.19, 20.78, 32.17, 49.26, 74.89


def test_trio_fail_after_cancels_during_fetch_and_cancel_gets_its_grace() -> None:
    calls: list[float] = []

    async def main() -> None:
        async def fetch() -> Any:
            await trio.sleep_forever()

        async def cancel() -> None:
            calls.append(trio.current_time())
            await trio.sleep_forever()  # hangs: bounded by cancel_grace

        with pytest.raises(trio.TooSlowError):
            with trio.fail_after(5):
                await jw_trio.wait(fetch, cancel=cancel, cancel_grace=3)
        assert trio.current_time() == pytest.approx(8)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert calls == [pytest.approx(5)]


def test_trio_job_timeout_inside_a_longer_caller_scope() -> None:
    async def main() -> None:
        async def fetch() -> Any:
            return {"status": "ready"}

        with trio.fail_after(50):
            with pytest.raises(JobTimeoutError):
                await jw_trio.wait(fetch, timeout=30)
        assert trio.current_time() == pytest.approx(30)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_trio_hours_of_waiting_with_mockclock() -> None:
    async def main() -> Any:
        async def fetch() -> Any:
            return {"status": "completed" if trio.current_time() >= 7200 else "ready"}

        return await jw_trio.wait(fetch, timeout=None)

    assert trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0)) == {
        "status": "completed"
    }
