"""Wait for a job from trio code.

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

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, Unpack

import trio

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


async def wait(
    fetch: Callable[[], Awaitable[J | Fetched]],
    *,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    clock: Callable[[], float] = trio.current_time,
    sleep: Callable[[float], Awaitable[object]] = trio.sleep,
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
        cancel: Async, no arguments: cancels the remote job. Awaited once when the wait
            times out or is cancelled (cancel scope, ``KeyboardInterrupt``), in a
            shielded scope bounded by ``cancel_grace``. Its failure is attached to the
            error being raised (``error.cancel_error``), never replacing it.
        cancel_grace: Seconds ``cancel`` may take (default 10).
        clock: Seconds (default ``trio.current_time``, so ``MockClock`` just works).
        sleep: Async sleep (default ``trio.sleep``).
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
        trio.Cancelled: An enclosing cancel scope was cancelled (re-raised).
    """
    job: J = await drive(
        make_waiter(waiter, options),
        fetch,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=clock,
        sleep=sleep,
        interrupts=(trio.Cancelled, KeyboardInterrupt),
        run_cancel=_cancel,
    )
    return job


async def _cancel(
    cancel: Callable[[], Awaitable[object]], error: BaseException, grace: float
) -> None:
    # Shielded from the cancellation that brought us here, bounded by the grace period.
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + grace
        try:
            await cancel()
        except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
            cancel_failed(error, failure)
    if scope.cancelled_caught:
        cancel_failed(error, TimeoutError(f"cancel did not finish within {grace:g}s"))
