"""Wait for one job, or many, from asyncio code.

The loops (shared with trio, in ``_runtime/loop.py``) only perform the actions the core
returns and report what happened; every decision is :class:`jobwait.JobWaiter`'s or
:class:`jobwait.JobFleet`'s. Task cancellation (including the caller's
``asyncio.timeout``) is never swallowed: it propagates after the optional ``cancel=``
callback had its chance to cancel the remote job(s).

Example::

    from jobwait.adapters import asyncio as jobwait_asyncio

    job = await jobwait_asyncio.wait(fetch, job_id="j1", timeout=600)
    results = await jobwait_asyncio.wait_all(fetch_many, ["a", "b", "c"])
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, Unpack

from jobwait import ApiProfile, Fetched, JobWaiter, PollReport, Wakeup, is_retryable
from jobwait._plumbing import FleetOptions, WaiterOptions, cancel_failed, retry_after_of, with_api

from ._runtime import loop as _loop
from ._runtime.loop import AsyncCancel, FetchMany, FetchOne, Group, drive_fleet, fleet_for, register

__all__ = ["as_completed", "wait", "wait_all"]

J = TypeVar("J")

# Cancel requests still running after a second cancellation of the waiting task:
# kept referenced so they are not garbage-collected mid-flight (asyncio holds only
# weak references to tasks). Each is bounded by its grace period.
_background: set[asyncio.Task[None]] = set()


class _TaskGroup:
    """Children that end before the group does. Not ``asyncio.TaskGroup``: that one
    forgets a finished child only in a done-callback, one loop step later, so a loop
    that ends right after its last read would outlive its caller by a step (a task
    left behind, seen by ``asyncio.all_tasks``). Here a child leaves the group as its
    last statement runs. Children are jobwait's own and never raise but to be
    cancelled; one that does anyway is re-raised when the group ends."""

    __slots__ = ("_loop", "_tasks")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> Callable[[], object]:
        tasks = self._tasks

        async def child() -> None:
            try:
                await fn(*args)
            finally:
                tasks.discard(task)

        task = self._loop.create_task(child())
        tasks.add(task)
        return task.cancel

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def join(self) -> None:
        """Wait until every child has ended (cancelled, the rest wait on)."""
        while self._tasks:
            pending = set(self._tasks)
            try:
                await asyncio.wait(pending)
            except asyncio.CancelledError:
                self.cancel()
                await asyncio.wait(pending)
                raise
            for task in pending:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]


class _Asyncio:
    name = "asyncio"
    interrupts: tuple[type[BaseException], ...] = (asyncio.CancelledError, KeyboardInterrupt)

    def clock(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    @asynccontextmanager
    async def limit(self, seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        try:
            async with asyncio.timeout(seconds):
                yield
        except TimeoutError:
            raise TimeoutError(f"the request took longer than {seconds:g}s as a whole") from None

    @asynccontextmanager
    async def group(self) -> AsyncIterator[Group]:
        group = _TaskGroup()
        try:
            yield group
        except BaseException:
            group.cancel()
            await group.join()
            raise
        await group.join()

    async def run_cancel(self, cancel: AsyncCancel, error: BaseException, grace: float) -> None:
        async def bounded() -> None:
            try:
                async with asyncio.timeout(grace):
                    await cancel()
            except TimeoutError:
                cancel_failed(error, TimeoutError(f"cancel did not finish within {grace:g}s"))
            except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
                cancel_failed(error, failure)

        task = asyncio.ensure_future(bounded())
        _background.add(task)
        task.add_done_callback(_background.discard)
        # Shielded: the cancellation that brought us here must not cancel the cancel
        # request. A further cancellation stops our waiting for it (so the caller is
        # not held up twice) while the request finishes in the background within its
        # grace period.
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not isinstance(error, asyncio.CancelledError):
                raise

    def threadsafe(self, fn: Callable[[], object]) -> Callable[[], None]:
        loop = asyncio.get_running_loop()

        def call() -> None:
            # A loop that has closed raises RuntimeError: the wait is over.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn)

        return call

    def loop_token(self) -> object:
        return asyncio.get_running_loop()

    def spawn_system(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> object:
        return asyncio.get_running_loop().create_task(fn())

    def signal(self) -> _Signal:
        return _Signal(asyncio.get_running_loop())

    def park(self, leave: Callable[[str], object], key: str) -> _Parked:
        return _Parked(leave, key)


class _Parked(asyncio.Future[Any]):
    """What a caller of the shared scheduler with no hooks awaits: resolved with the job
    or its error; cancelled with the caller's task, it calls ``leave(key)`` (the job
    leaves the fleet). A future of its own kind, not a done-callback, because memory per
    waiting call is a benchmark target (a callback costs a partial, a context and a list
    per call)."""

    __slots__ = ("_key", "_leave")

    def __init__(self, leave: Callable[[str], object], key: str) -> None:
        super().__init__()
        self._leave = leave
        self._key = key

    def cancel(self, msg: Any = None) -> bool:
        cancelled = super().cancel(msg=msg)
        if cancelled:
            self._leave(self._key)
        return cancelled


class _Signal:
    """A one-shot asyncio event on a bare future: a caller waits on one per wake-up,
    and it costs a sixth of an ``asyncio.Event`` (memory per waiting call counts)."""

    __slots__ = ("_future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._future: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        if not self._future.done():
            self._future.set_result(None)

    def is_set(self) -> bool:
        return self._future.done()

    async def wait(self) -> None:
        await self._future


#: The asyncio :class:`~jobwait.adapters._runtime.loop.Runtime`.
RUNTIME = _Asyncio()
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
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[WaiterOptions],
) -> J:
    """Poll ``await fetch()`` until the job finishes, and return the final job.

    Takes the same arguments as :func:`jobwait.adapters.sync.wait`, async where they
    do IO, plus ``cancel_grace``.

    Args:
        fetch: Async; returns the job or ``jobwait.Fetched``. Its exceptions are
            classified by the core and never escape raw; cancellation propagates.
        waiter: A ready :class:`~jobwait.JobWaiter`, or pass its options instead.
        is_retryable: Exception -> may retrying help? (default :func:`jobwait.is_retryable`).
        retry_after_of: Exception -> server hint in seconds, or ``None``.
        on_status: ``on_status(job, status)``, sync or async, once per status change.
        on_poll: ``on_poll(report)``, sync or async, after every poll (a
            :class:`~jobwait.PollReport`; see :func:`jobwait.adapters.sync.wait`).
        cancel: Async, no arguments: cancels the remote job. Awaited once when the wait
            times out or its task is cancelled, shielded from that cancellation and
            bounded by ``cancel_grace``. Its failure is attached to the error being
            raised (``error.cancel_error``), never replacing it.
        cancel_grace: Seconds ``cancel`` may take (default 10).
        wakeup: A :class:`~jobwait.Wakeup`: ``wakeup.wake()`` from any thread, another
            loop or this one makes the wait poll at once without advancing its
            backoff; a wake during a poll causes one more poll after it.
        clock: Monotonic seconds (default: the running loop's ``time()``).
        sleep: Async sleep (default ``asyncio.sleep``); ``VirtualClock.asleep`` in tests.
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
        asyncio.CancelledError: The task was cancelled (re-raised, never swallowed).
    """
    job: J = await _loop.wait(
        fetch,
        rt=RUNTIME,
        where="asyncio.wait",
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
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[FleetOptions],
) -> dict[str, Any]:
    """Wait for many jobs with one :class:`~jobwait.JobFleet`; return every outcome.

    Args:
        fetch_many: Async ``fetch_many(ids) -> {id: job}`` (or ``Fetched(mapping,
            retry_after=...)``): one request for a batch of ids. A job missing from
            the mapping is a retryable failure for that job alone.
        job_ids: The ids to wait for (duplicates are ignored).
        fetch_one: Instead of ``fetch_many``, for APIs without a batch read: async
            ``fetch_one(id) -> job``; each job is then polled on its own
            (``max_batch=1``), at most ``max_concurrency`` at a time.
        is_retryable: Exception -> may retrying help? A failed batch request that is
            retryable is retried for the whole batch and counts once against the
            fleet's ``max_batch_errors``.
        retry_after_of: Exception -> hint in seconds; it holds the whole fleet.
        on_status: ``on_status(job_id, job, status)``, sync or async, once per status
            change of each job.
        on_poll: ``on_poll(report)``, sync or async, for every job of every batch
            reported (a :class:`~jobwait.PollReport`; ``report.job_id`` says which).
        cancel: Async ``cancel(job_id)``: awaited for a job that timed out, for every
            unfinished job when ``fail_fast`` stops the fleet, and for every unfinished
            job when the wait is cancelled; shielded and bounded by ``cancel_grace``.
        cancel_grace: Seconds each round of ``cancel`` calls may take (default 10).
        wakeup: A :class:`~jobwait.Wakeup`: ``wakeup.wake(job_id)`` from any thread or
            loop makes that job due at the fleet's next free request slot (within its
            budget and concurrency); a wake while it is in flight polls it once more
            after; ``wake()`` wakes every job still waiting.
        clock: Monotonic seconds (default: the running loop's ``time()``).
        sleep: Async sleep (default ``asyncio.sleep``; ``VirtualClock.asleep`` in tests).
        api: An :class:`~jobwait.ApiProfile` or a built-in profile's name
            (``"azure"``, see :meth:`~jobwait.ApiProfile.names`): its vocabulary,
            status and failure readers and ``raise_on_cancel`` as options; explicit
            options win, for every job. Default ``None`` (no profile).
        **options: :class:`~jobwait.JobFleet` options: every per-job ``JobWaiter``
            option (``timeout``, ``backoff``, ``statuses``, ...) and ``max_batch``,
            ``batch_window``, ``max_polls_per_second``, ``max_concurrency``,
            ``max_batch_errors``, ``fail_fast``, ``use_predictions``.

    Returns:
        A dict mapping every id to its final job or to its ``JobWaitError``.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error (``results``
            holds every outcome known, ``__cause__`` the job's error).
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: Both or neither of ``fetch_many`` and ``fetch_one``, one that is
            not callable, or an unknown option.
        asyncio.CancelledError: The task was cancelled (re-raised, never swallowed).
    """
    return await _loop.wait_all(
        fetch_many,
        job_ids,
        rt=RUNTIME,
        where="asyncio.wait_all",
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


class _Completed(AbstractAsyncContextManager["_Completed"]):
    """The iterator :func:`as_completed` returns: ``async for`` it directly, or inside
    ``async with`` to be sure the fleet stops when you leave early."""

    def __init__(self, start: Callable[[asyncio.Queue[Any]], Awaitable[object]]) -> None:
        self._start = start
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task[object] | None = None

    def __aiter__(self) -> _Completed:
        return self

    async def __anext__(self) -> tuple[str, Any]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._start(self._queue))
            self._task.add_done_callback(lambda _: self._queue.put_nowait(_END))
        item = await self._queue.get()
        if item is _END:
            await self.aclose()
            self._task.result()  # re-raise FleetFailedError and the like
            raise StopAsyncIteration
        pair: tuple[str, Any] = item
        return pair

    async def aclose(self) -> None:
        """Stop the fleet (if it still runs) and wait until it has stopped."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait never raises the task's error, and lets our own
            # cancellation through.
            await asyncio.wait([task])

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


_END = object()


def as_completed(
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
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[FleetOptions],
) -> _Completed:
    """Like :func:`wait_all`, but yield ``(job_id, outcome)`` as each job finishes.

    ``async for job_id, outcome in as_completed(fetch_many, ids): ...`` ; the outcome
    is the final job or its ``JobWaitError``. Leaving the loop early stops the fleet
    once the iterator is closed: use ``async with as_completed(...) as results:`` (or
    ``await results.aclose()``) to stop it at once. With ``fail_fast``, the
    ``FleetFailedError`` is raised from the iteration after the outcomes before it.

    Raises:
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: As :func:`wait_all`, at once.
    """
    fleet, read, reads = fleet_for(
        fetch_many, fetch_one, on_status, on_poll, with_api(api, options), "asyncio.as_completed"
    )

    async def run(queue: asyncio.Queue[Any]) -> object:
        now = clock or RUNTIME.clock
        fleet.add(job_ids, now=now())
        return await drive_fleet(
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
            clock=now,
            sleep=sleep,
            emit=queue.put,
            wakeup=wakeup,
        )

    return _Completed(run)
