"""Wait for a job from plain synchronous code.

The loop below only performs the action the core returns and reports what happened;
every decision (schedule, deadline, retries, errors) is :class:`jobwait.JobWaiter`'s.

Example::

    from jobwait.adapters import sync

    job = sync.wait(lambda: api.get_job("j1"), job_id="j1", timeout=600)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar, Unpack

from jobwait import (
    Done,
    Fetched,
    JobWaiter,
    Poll,
    Sleep,
    Start,
    WaiterOptions,
    Woke,
    cancel_failed,
    fetch_failed,
    is_retryable,
    make_waiter,
    observed,
    retry_after_of,
)

__all__ = ["wait"]

J = TypeVar("J")


def wait(
    fetch: Callable[[], J | Fetched],
    *,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    cancel: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    **options: Unpack[WaiterOptions],
) -> J:
    """Poll ``fetch()`` until the job finishes, and return the final job.

    Args:
        fetch: Returns the job (or ``jobwait.Fetched(job, retry_after=...)`` to pass a
            server hint). An exception it raises is a failed poll, classified by
            ``is_retryable`` and ``retry_after_of``; it never escapes raw.
        waiter: A ready :class:`~jobwait.JobWaiter`; or pass its options instead
            (``job_id``, ``timeout=300``, ``backoff``, ``statuses``, ...).
        is_retryable: Exception -> may retrying help? Default: :func:`jobwait.is_retryable`
            (``OSError``, including ``ConnectionError`` and ``TimeoutError``, is retryable).
        retry_after_of: Exception -> server hint in seconds, or ``None``.
        on_status: Called as ``on_status(job, status)`` once per status change, the
            first observation included. Its exceptions propagate unchanged.
        cancel: Called once, with no arguments, to cancel the remote job when the wait
            times out or is interrupted (``KeyboardInterrupt``). It runs plainly: a
            blocking call cannot be bounded safely from sync code, so give your cancel
            request its own timeout. If it raises, the failure is attached to the error
            being raised (``error.cancel_error`` and a note), never replacing it.
        clock: Monotonic seconds (default ``time.monotonic``).
        sleep: Sleeps the given seconds (default ``time.sleep``). Inject
            ``jobwait.testing.VirtualClock``'s ``now`` and ``sleep`` to test instantly.
        **options: ``JobWaiter`` options, when ``waiter`` is not given.

    Returns:
        The job in its final status (``completed``; or ``failed`` / ``canceled`` when
        the waiter is configured to return those).

    Raises:
        JobFailedError: The job failed (with ``raise_on_failure``, the default).
        JobCanceledError: The job was canceled and ``raise_on_cancel`` is on.
        JobTimeoutError: The deadline passed; the remote job may still be running.
        JobFetchError: The job could not be fetched (error budget spent, or an error
            retrying cannot fix); the fetch's exception is the ``__cause__``.
        JobStatusError: The job's status could not be read or is unknown (with
            ``on_unknown="raise"``).
        TypeError: ``waiter`` given together with options, or an unknown option.
        ValueError: An invalid option value.
    """
    w = make_waiter(waiter, options)
    try:
        action = w.handle(Start(now=clock()))
        while True:
            if isinstance(action, Poll):
                try:
                    result = fetch()
                except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
                    action = w.handle(fetch_failed(exc, clock(), is_retryable, retry_after_of))
                else:
                    action = w.handle(observed(result, clock()))
                if on_status is not None and w.status_changed:
                    on_status(w.last_job, w.last_status or "")
            elif isinstance(action, Sleep):
                sleep(action.seconds)
                action = w.handle(Woke(now=clock()))
            elif isinstance(action, Done):
                job: J = action.job
                return job
            else:
                if action.cancel_job and cancel is not None:
                    _cancel(cancel, action.error)
                raise action.error
    except KeyboardInterrupt as interrupt:
        if cancel is not None:
            _cancel(cancel, interrupt)
        raise


def _cancel(cancel: Callable[[], object], error: BaseException) -> None:
    try:
        cancel()
    except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
        cancel_failed(error, failure)
