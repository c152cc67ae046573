"""``wakeup=`` in the sync, asyncio and trio adapters.

The headline case on every runtime: a job that finishes 1 s into a 5 s sleep is
noticed at the push (virtual time: 0 s after it), with one extra poll at most. Sync
runs on an injected clock and a sleep that delivers the push; asyncio on a loop whose
clock jumps (``VirtualLoop`` below); trio on ``MockClock(autojump_threshold=0)``. A
few ``realtime`` tests wake from another thread for real (each well under 0.2 s).
"""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

from jobwait import Backoff, JobTimeoutError, Wakeup
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import sync as jw_sync
from jobwait.adapters import trio as jw_trio
from jobwait.testing import VirtualClock

FIVE = Backoff(initial=5.0, factor=1.0, max=5.0)  # polls at 0, 5, 10, ...


class _JumpingSelector:
    """Wraps a selector: never blocks; a timeout moves the loop's virtual time."""

    def __init__(self, selector: selectors.BaseSelector, loop: VirtualLoop) -> None:
        self._selector = selector
        self._loop = loop

    def select(self, timeout: float | None = None) -> Any:
        events = self._selector.select(0)
        if not events and timeout:
            self._loop.now += timeout
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time: when nothing is ready it jumps to the next
    timer, like trio's autojumping MockClock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _JumpingSelector(self._selector, self)  # type: ignore[has-type]

    def time(self) -> float:
        return self.now


def run(runtime: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    if runtime == "asyncio":
        with asyncio.Runner(loop_factory=VirtualLoop) as runner:
            return runner.run(fn())  # type: ignore[arg-type]
    return trio.run(fn, clock=trio.testing.MockClock(autojump_threshold=0))


def adapter(runtime: str) -> Any:
    return jw_asyncio if runtime == "asyncio" else jw_trio


def now(runtime: str) -> float:
    return asyncio.get_running_loop().time() if runtime == "asyncio" else trio.current_time()


async def asleep(runtime: str, seconds: float) -> None:
    if runtime == "asyncio":
        await asyncio.sleep(seconds)
    else:
        await trio.sleep(seconds)


class Job:
    """A job whose status a push changes; records the time of every poll."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.status = "ready"
        self.polls: list[float] = []
        self._clock = clock

    def fetch(self) -> dict[str, str]:
        self.polls.append(self._clock())
        return {"status": self.status}

    async def afetch(self) -> dict[str, str]:
        return self.fetch()


# --- sync -----------------------------------------------------------------------------


def pushing_sleep(vc: VirtualClock, pushes: list[tuple[float, Callable[[], object]]]) -> Any:
    """A virtual sleep that stops at each push, delivers it, and returns early when
    the push returned true (it woke the wait), like the default sleep does."""

    def sleep(seconds: float) -> None:
        until = vc.now() + seconds
        while pushes and pushes[0][0] < until:
            at, push = pushes.pop(0)
            vc.advance(at - vc.now())
            if push():
                return
        vc.sleep(until - vc.now())

    return sleep


def finisher(job: Job, wakeup: Wakeup) -> Callable[[], bool]:
    """A push: the job completes and its notice wakes ``j1``'s wait."""

    def finish() -> bool:
        job.status = "completed"
        wakeup.wake("j1")
        return True

    return finish


def woke(wake: Callable[[], object]) -> Callable[[], bool]:
    def push() -> bool:
        wake()
        return True

    return push


@pytest.mark.parametrize("pushed", [True, False])
def test_sync_a_push_1s_into_a_5s_sleep_is_noticed_at_once(pushed: bool) -> None:
    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)

    def finish() -> bool:
        job.status = "completed"
        if pushed:
            wakeup.wake("j1")
        return pushed

    result = jw_sync.wait(
        job.fetch,
        job_id="j1",
        backoff=FIVE,
        wakeup=wakeup,
        clock=vc.now,
        sleep=pushing_sleep(vc, [(6.0, finish)]),
    )
    assert result == {"status": "completed"}
    # Polling alone notices it at 10; the push at 6 costs no extra poll here at all.
    assert job.polls == pytest.approx([0.0, 5.0, 6.0] if pushed else [0.0, 5.0, 10.0])
    assert wakeup.listeners == 0  # the wait stopped listening when it ended


def test_sync_a_push_for_a_running_job_costs_one_poll_and_keeps_the_schedule() -> None:
    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)
    pushes: list[tuple[float, Callable[[], object]]] = [
        (6.0, woke(wakeup.wake)),
        (7.0, lambda: wakeup.wake("other-job")),  # not ours: no poll, no early return
        (12.0, lambda: setattr(job, "status", "completed")),  # its push was dropped
    ]
    jw_sync.wait(
        job.fetch,
        job_id="j1",
        backoff=FIVE,
        wakeup=wakeup,
        clock=vc.now,
        sleep=pushing_sleep(vc, pushes),
    )
    assert job.polls == pytest.approx([0.0, 5.0, 6.0, 10.0, 15.0])


def test_sync_a_wake_during_a_poll_causes_one_more_poll_right_after() -> None:
    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)

    def fetch() -> dict[str, str]:
        answer = job.fetch()
        if len(job.polls) == 2:  # the job ends while the second poll's answer travels
            job.status = "completed"
            wakeup.wake()
            wakeup.wake()  # a duplicate: still one more poll
        return answer

    jw_sync.wait(fetch, backoff=FIVE, wakeup=wakeup, clock=vc.now, sleep=vc.sleep)
    assert job.polls == pytest.approx([0.0, 5.0, 5.0])


@pytest.mark.realtime
def test_sync_a_wake_from_another_thread_cuts_a_real_sleep_short() -> None:
    wakeup = Wakeup()
    job = Job(time.monotonic)

    def push() -> None:
        give_up = time.monotonic() + 10  # a wait that failed early never polls
        while (len(job.polls) < 1 or wakeup.listeners == 0) and time.monotonic() < give_up:
            time.sleep(0.005)
        time.sleep(0.02)  # well into the 5 s sleep
        job.status = "completed"
        wakeup.wake()

    pusher = threading.Thread(target=push)
    pusher.start()
    started = time.monotonic()
    jw_sync.wait(job.fetch, backoff=FIVE, timeout=4.0, wakeup=wakeup)
    pusher.join(15)
    assert len(job.polls) == 2
    assert job.polls[1] - started < 2.5  # not the 4 s of the clamped sleep


# --- asyncio and trio -------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
@pytest.mark.parametrize("pushed", [True, False])
def test_async_a_push_1s_into_a_5s_sleep_is_noticed_at_once(runtime: str, pushed: bool) -> None:
    async def main() -> tuple[list[float], float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def push() -> None:
            await asleep(runtime, 6.0)
            job.status = "completed"
            if pushed:
                wakeup.wake("j1")  # from a task in the wait's own loop

        if runtime == "asyncio":
            task = asyncio.ensure_future(push())
            await jw_asyncio.wait(job.afetch, job_id="j1", backoff=FIVE, wakeup=wakeup)
            await task
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push)
                await jw_trio.wait(job.afetch, job_id="j1", backoff=FIVE, wakeup=wakeup)
        assert wakeup.listeners == 0
        return job.polls, now(runtime)

    polls, ended = run(runtime, main)
    assert polls == ([0.0, 5.0, 6.0] if pushed else [0.0, 5.0, 10.0])
    assert ended == (6.0 if pushed else 10.0)


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_pushes_cost_one_poll_each_and_duplicates_are_one(runtime: str) -> None:
    async def main() -> list[float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def push() -> None:
            await asleep(runtime, 6.0)
            wakeup.wake()
            wakeup.wake()  # duplicate, before the poll it causes: one poll
            await asleep(runtime, 1.0)
            wakeup.wake("someone-else")
            await asleep(runtime, 5.0)
            job.status = "completed"  # its push was dropped: polling finds it

        if runtime == "asyncio":
            task = asyncio.ensure_future(push())
            await jw_asyncio.wait(job.afetch, job_id="j1", backoff=FIVE, wakeup=wakeup)
            await task
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push)
                await jw_trio.wait(job.afetch, job_id="j1", backoff=FIVE, wakeup=wakeup)
        return job.polls

    assert run(runtime, main) == [0.0, 5.0, 6.0, 10.0, 15.0]


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_a_wake_during_a_poll_causes_one_more_poll(runtime: str) -> None:
    async def main() -> list[float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def fetch() -> dict[str, str]:
            answer = await job.afetch()
            await asleep(runtime, 0.5)  # the poll takes a while; the job ends meanwhile
            if len(job.polls) == 2:
                job.status = "completed"
                wakeup.wake()
            return answer

        await adapter(runtime).wait(fetch, backoff=FIVE, wakeup=wakeup)
        return job.polls

    assert run(runtime, main) == [0.0, 5.5, 6.0]


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_a_wake_never_passes_the_deadline(runtime: str) -> None:
    async def main() -> list[float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def push() -> None:
            for _ in range(10):
                await asleep(runtime, 1.0)
                wakeup.wake()

        if runtime == "asyncio":
            task = asyncio.ensure_future(push())
            with pytest.raises(JobTimeoutError):
                await jw_asyncio.wait(job.afetch, backoff=FIVE, timeout=3.0, wakeup=wakeup)
            task.cancel()
        else:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(push)
                with pytest.raises(JobTimeoutError):
                    await jw_trio.wait(job.afetch, backoff=FIVE, timeout=3.0, wakeup=wakeup)
                nursery.cancel_scope.cancel()
        return job.polls

    assert run(runtime, main) == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.realtime
@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_a_wake_from_another_thread_cuts_a_real_sleep_short(runtime: str) -> None:
    wakeup = Wakeup()
    job = Job(time.monotonic)

    def push() -> None:
        give_up = time.monotonic() + 10  # a wait that failed early never polls
        while (len(job.polls) < 1 or wakeup.listeners == 0) and time.monotonic() < give_up:
            time.sleep(0.005)
        time.sleep(0.02)
        job.status = "completed"
        wakeup.wake()

    async def main() -> None:
        await adapter(runtime).wait(job.afetch, backoff=FIVE, timeout=4.0, wakeup=wakeup)

    pusher = threading.Thread(target=push)
    pusher.start()
    started = time.monotonic()
    if runtime == "asyncio":
        asyncio.run(main())
    else:
        trio.run(main)
    pusher.join(15)
    assert len(job.polls) == 2
    assert job.polls[1] - started < 2.5  # not the 4 s of the clamped sleep


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_cancellation_during_a_wakeable_sleep_propagates(runtime: str) -> None:
    async def main() -> list[float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))
        if runtime == "asyncio":
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(7.0):
                    await jw_asyncio.wait(job.afetch, backoff=FIVE, wakeup=wakeup)
        else:
            with trio.move_on_after(7.0):
                await jw_trio.wait(job.afetch, backoff=FIVE, wakeup=wakeup)
        assert wakeup.listeners == 0
        wakeup.wake()  # after the end: ignored, no error
        return job.polls

    assert run(runtime, main) == [0.0, 5.0]


# --- httpx and IonQ: the same wake through the HTTP waits ---------------------------------


def _transport(job: Job) -> Any:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "j1", **job.fetch()})

    return handler


def test_httpx_wait_for_url_wakes_on_a_push() -> None:
    import httpx

    from jobwait.adapters import httpx as jw_httpx

    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)

    finish = finisher(job, wakeup)

    with httpx.Client(
        base_url="http://api.test", transport=httpx.MockTransport(_transport(job))
    ) as client:
        result = jw_httpx.wait_for_url(
            client,
            "/jobs/j1",
            job_id="j1",
            backoff=FIVE,
            wakeup=wakeup,
            clock=vc.now,
            sleep=pushing_sleep(vc, [(6.0, finish)]),
        )
    assert result["status"] == "completed"
    assert job.polls == pytest.approx([0.0, 5.0, 6.0])


def test_ionq_wait_for_job_takes_wakeup() -> None:
    import httpx

    from jobwait.adapters import ionq

    vc = VirtualClock()
    wakeup = Wakeup()
    job = Job(vc.now)

    finish = finisher(job, wakeup)

    with ionq.client(
        api_key="k", base_url="http://api.test", transport=httpx.MockTransport(_transport(job))
    ) as client:
        result = ionq.wait_for_job(
            client,
            "j1",
            poll_interval=5.0,
            wakeup=wakeup,
            clock=vc.now,
            sleep=pushing_sleep(vc, [(6.0, finish)]),
        )
    assert result.status == "completed"
    assert job.polls == pytest.approx([0.0, 5.0, 6.0])


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_httpx_async_wait_for_url_wakes_on_a_push(runtime: str) -> None:
    import httpx

    from jobwait.adapters import httpx as jw_httpx

    async def main() -> list[float]:
        wakeup = Wakeup()
        job = Job(lambda: now(runtime))

        async def push() -> None:
            await asleep(runtime, 6.0)
            job.status = "completed"
            wakeup.wake("j1")

        async with httpx.AsyncClient(
            base_url="http://api.test", transport=httpx.MockTransport(_transport(job))
        ) as client:
            wait = jw_httpx.async_wait_for_url(
                client, "/jobs/j1", job_id="j1", backoff=FIVE, wakeup=wakeup
            )
            if runtime == "asyncio":
                task = asyncio.ensure_future(push())
                await wait
                await task
            else:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(push)
                    await wait
        return job.polls

    assert run(runtime, main) == [0.0, 5.0, 6.0]
