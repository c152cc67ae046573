"""Wait for a job from asyncio code.

The loop below only performs the action the core returns and reports what happened;
every decision is :class:`jobwait.JobWaiter`'s. Task cancellation (including the
caller's ``asyncio.timeout``) is never swallowed: it propagates after the optional
``cancel=`` callback had its chance to cancel the remote job.

Example::

    from jobwait.adapters import asyncio as jobwait_asyncio

    job = await jobwait_asyncio.wait(fetch, job_id="j1", timeout=600)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Unpack

from jobwait import (
    Fetched,
    JobWaiter,
    WaiterOptions,
    cancel_failed,
    is_retryable,
    make_waiter,
    retry_after_of,
)

from ._async_loop import drive

__all__ = ["wait"]

J = TypeVar("J")

# Cancel requests still running after a second cancellation of the waiting task:
# kept referenced so they are not garbage-collected mid-flight (asyncio holds only
# weak references to tasks). Each is bounded by its grace period.
_background: set[asyncio.Task[None]] = set()


async def wait(
    fetch: Callable[[], Awaitable[J | Fetched]],
    *,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
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
        cancel: Async, no arguments: cancels the remote job. Awaited once when the wait
            times out or its task is cancelled, shielded from that cancellation and
            bounded by ``cancel_grace``. Its failure is attached to the error being
            raised (``error.cancel_error``), never replacing it.
        cancel_grace: Seconds ``cancel`` may take (default 10).
        clock: Monotonic seconds (default: the running loop's ``time()``).
        sleep: Async sleep (default ``asyncio.sleep``); ``VirtualClock.asleep`` in tests.
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
        TypeError: ``waiter`` given together with options, or an unknown option.
        asyncio.CancelledError: The task was cancelled (re-raised, never swallowed).
    """
    job: J = await drive(
        make_waiter(waiter, options),
        fetch,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=clock or asyncio.get_running_loop().time,
        sleep=sleep,
        interrupts=(asyncio.CancelledError, KeyboardInterrupt),
        run_cancel=_cancel,
    )
    return job


async def _cancel(
    cancel: Callable[[], Awaitable[object]], error: BaseException, grace: float
) -> None:
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
    # request. A further cancellation stops our waiting for it (so the caller is not
    # held up twice) while the request finishes in the background within its grace.
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not isinstance(error, asyncio.CancelledError):
            raise
