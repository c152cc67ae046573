"""Wait for one job, or many, from trio code.

The loop below only performs the action the core returns and reports what happened;
every decision is :class:`jobwait.JobWaiter`'s. It reads trio's own clock, so
``trio.testing.MockClock(autojump_threshold=0)`` runs hours of waiting in
milliseconds with nothing injected, and it composes with the caller's cancel scopes:
``timeout=`` is the job's own deadline, while ``trio.fail_after`` /
``trio.move_on_after`` around the call bound the wait from outside (pass
``timeout=None`` to leave the deadline entirely to them). ``trio.Cancelled`` is never
swallowed.

Example::

    from jobwait.adapters import trio as jobwait_trio

    with trio.move_on_after(600):
        job = await jobwait_trio.wait(fetch, job_id="j1", timeout=None)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, Unpack

from jobwait._plumbing import missing_extra

try:
    import trio
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, module=__name__, extra="trio") from _missing

from jobwait import ApiProfile, Fetched, JobWaiter, PollReport, Wakeup, is_retryable
from jobwait._plumbing import FleetOptions, WaiterOptions, cancel_failed, retry_after_of, with_api

from ._runtime import loop as _loop
from ._runtime.loop import AsyncCancel, FetchMany, FetchOne, Group, drive_fleet, fleet_for, register

__all__ = ["as_completed", "wait", "wait_all"]

J = TypeVar("J")


class _Nursery:
    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start(
        self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> Callable[[], object]:
        scope = trio.CancelScope()

        async def child() -> None:
            with scope:
                await fn(*args)

        self._nursery.start_soon(child)
        return scope.cancel

    def cancel(self) -> None:
        self._nursery.cancel_scope.cancel()


class _Trio:
    name = "trio"
    interrupts: tuple[type[BaseException], ...] = (trio.Cancelled, KeyboardInterrupt)

    def clock(self) -> float:
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    @asynccontextmanager
    async def limit(self, seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        with trio.move_on_after(seconds) as scope:
            yield
        if scope.cancelled_caught:
            raise TimeoutError(f"the request took longer than {seconds:g}s as a whole")

    @asynccontextmanager
    async def group(self) -> AsyncIterator[Group]:
        async with trio.open_nursery() as nursery:
            yield _Nursery(nursery)

    async def run_cancel(self, cancel: AsyncCancel, error: BaseException, grace: float) -> None:
        # Shielded from the cancellation that brought us here, bounded by the grace.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + grace
            try:
                await cancel()
            except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
                cancel_failed(error, failure)
        if scope.cancelled_caught:
            cancel_failed(error, TimeoutError(f"cancel did not finish within {grace:g}s"))

    def threadsafe(self, fn: Callable[[], object]) -> Callable[[], None]:
        token = trio.lowlevel.current_trio_token()

        def call() -> None:
            # After the run ended, the wait has ended with it.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(fn)

        return call

    def loop_token(self) -> object:
        return trio.lowlevel.current_root_task()

    def spawn_system(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> object:
        return trio.lowlevel.spawn_system_task(fn)

    def signal(self) -> trio.Event:
        return trio.Event()

    def park(self, leave: Callable[[str], object], key: str) -> None:
        return None  # a trio caller awaits a signal in a coroutine of its own


#: The trio :class:`~jobwait.adapters._runtime.loop.Runtime`.
RUNTIME = _Trio()
register(RUNTIME)


async def wait(
    fetch: Callable[[], Awaitable[J | Fetched]],
    *,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = trio.current_time,
    sleep: Callable[[float], Awaitable[object]] = trio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[WaiterOptions],
) -> J:
    """Poll ``await fetch()`` until the job finishes, and return the final job.

    Takes the same arguments as :func:`jobwait.adapters.asyncio.wait`.

    Args:
        fetch: Async; returns the job or ``jobwait.Fetched``. Its exceptions are
            classified by the core and never escape raw; ``trio.Cancelled`` propagates.
        waiter: A ready :class:`~jobwait.JobWaiter`, or pass its options instead.
        is_retryable: Exception -> may retrying help? (default :func:`jobwait.is_retryable`).
        retry_after_of: Exception -> server hint in seconds, or ``None``.
        on_status: ``on_status(job, status)``, sync or async, once per status change.
        on_poll: ``on_poll(report)``, sync or async, after every poll (a
            :class:`~jobwait.PollReport`; see :func:`jobwait.adapters.sync.wait`).
        cancel: Async, no arguments: cancels the remote job. Awaited once when the wait
            times out or is cancelled (cancel scope, ``KeyboardInterrupt``), in a
            shielded scope bounded by ``cancel_grace``. Its failure is attached to the
            error being raised (``error.cancel_error``), never replacing it.
        cancel_grace: Seconds ``cancel`` may take (default 10).
        wakeup: A :class:`~jobwait.Wakeup`: ``wakeup.wake()`` from any thread, another
            loop or this one makes the wait poll at once without advancing its
            backoff; a wake during a poll causes one more poll after it.
        clock: Seconds (default ``trio.current_time``, so ``MockClock`` just works).
        sleep: Async sleep (default ``trio.sleep``).
        api: An :class:`~jobwait.ApiProfile` or a built-in profile's name
            (``"azure"``, see :meth:`~jobwait.ApiProfile.names`): its vocabulary,
            status and failure readers and ``raise_on_cancel`` as options; explicit
            options win. Not with ``waiter``. Default ``None`` (no profile).
        **options: ``JobWaiter`` options, when ``waiter`` is not given.

    Returns:
        The job in its final status.

    Raises:
        JobFailedError: The job failed (with ``raise_on_failure``, the default).
        JobCanceledError: The job was canceled and ``raise_on_cancel`` is on.
        JobTimeoutError: The deadline passed; the remote job may still be running.
        JobFetchError: The job could not be fetched (error budget spent, or an error
            retrying cannot fix); the fetch's exception is the ``__cause__``.
        JobStatusError: The job's status could not be read or is unknown.
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: ``fetch`` is not callable, ``waiter``
            given together with options, or an unknown option.
        trio.Cancelled: An enclosing cancel scope was cancelled (re-raised).
    """
    job: J = await _loop.wait(
        fetch,
        rt=RUNTIME,
        where="trio.wait",
        waiter=waiter,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        wakeup=wakeup,
        clock=clock,
        sleep=sleep,
        api=api,
        **options,
    )
    return job


async def wait_all(
    fetch_many: FetchMany | None,
    job_ids: Iterable[str],
    *,
    fetch_one: FetchOne | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = trio.current_time,
    sleep: Callable[[float], Awaitable[object]] = trio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[FleetOptions],
) -> dict[str, Any]:
    """Wait for many jobs with one :class:`~jobwait.JobFleet`; return every outcome.

    Takes the same arguments as :func:`jobwait.adapters.asyncio.wait_all`; runs on
    trio's clock, so ``MockClock`` just works, and composes with your cancel scopes.

    Returns:
        A dict mapping every id to its final job or to its ``JobWaitError``.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error.
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: Both or neither of ``fetch_many`` and ``fetch_one``, one that is
            not callable, or an unknown option.
        trio.Cancelled: An enclosing cancel scope was cancelled (re-raised).
    """
    return await _loop.wait_all(
        fetch_many,
        job_ids,
        rt=RUNTIME,
        where="trio.wait_all",
        fetch_one=fetch_one,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        wakeup=wakeup,
        clock=clock,
        sleep=sleep,
        api=api,
        **options,
    )


@asynccontextmanager
async def as_completed(
    fetch_many: FetchMany | None,
    job_ids: Iterable[str],
    *,
    fetch_one: FetchOne | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = trio.current_time,
    sleep: Callable[[float], Awaitable[object]] = trio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[FleetOptions],
) -> AsyncIterator[trio.MemoryReceiveChannel[tuple[str, Any]]]:
    """Like :func:`wait_all`, but receive ``(job_id, outcome)`` as each job finishes.

    The trio way to stream results out of a task group is a channel inside
    ``async with`` (yielding from inside a nursery would break structured
    concurrency, PEP 789)::

        async with as_completed(fetch_many, ids) as results:
            async for job_id, outcome in results:
                ...

    Leaving the block early stops the fleet. With ``fail_fast``, ``FleetFailedError``
    is raised from the ``async with`` after the outcomes before it.

    Raises:
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: As :func:`wait_all`.
    """
    fleet, read, reads = fleet_for(
        fetch_many, fetch_one, on_status, on_poll, with_api(api, options), "trio.as_completed"
    )
    send, receive = trio.open_memory_channel[tuple[str, Any]](math.inf)
    failure: BaseException | None = None

    async def run() -> None:
        nonlocal failure
        async with send:
            fleet.add(job_ids, now=clock())
            try:
                await drive_fleet(
                    fleet,
                    read,
                    reads=reads,
                    rt=RUNTIME,
                    is_retryable=is_retryable,
                    retry_after_of=retry_after_of,
                    on_status=on_status,
                    on_poll=on_poll,
                    cancel=cancel,
                    cancel_grace=cancel_grace,
                    clock=clock,
                    sleep=sleep,
                    emit=send.send,
                    wakeup=wakeup,
                )
            except Exception as exc:  # noqa: BLE001 - re-raised below, unwrapped
                failure = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        async with receive:
            yield receive
        nursery.cancel_scope.cancel()  # the caller left: stop the fleet
    if failure is not None:
        raise failure
