"""What a fetch did, as the event a machine takes: the one reading every driver shares.

A driver turns what its ``fetch`` did into an event: :func:`observed` for a returned
value (unwrapping :class:`~jobwait.Fetched`), :func:`fetch_failed` for an exception
(classified by :func:`is_retryable` and :func:`retry_after_of` unless the caller
passes its own); for a fleet's batch, :func:`batch_observed` and :func:`batch_failed`
(and :func:`single_job` for a one-job read). No adapter classifies a failure itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._http import is_retryable_status
from ._numbers import usable_seconds
from ._protocol import BatchFailed, BatchObserved, Fetched, FetchFailed, Observed

__all__ = [
    "batch_failed",
    "batch_observed",
    "cancel_failed",
    "fetch_failed",
    "is_retryable",
    "observed",
    "retry_after_of",
    "single_job",
]


def is_retryable(error: BaseException) -> bool:
    """The default classifier: may retrying the fetch that raised ``error`` help?

    ``ConnectionError``, ``TimeoutError`` and every other ``OSError`` are retryable.
    An exception that says so itself is believed: a boolean ``retryable`` attribute,
    or an integer ``status_code`` attribute (as raised by HTTP client wrappers such
    as ionq-core's), judged by :func:`is_retryable_status`. Anything else is not.
    """
    if isinstance(error, OSError):
        return True
    flag = getattr(error, "retryable", None)
    if isinstance(flag, bool):
        return flag
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return is_retryable_status(status)
    return False


def retry_after_of(error: BaseException) -> float | None:
    """The default hint reader: the error's ``retry_after`` attribute in seconds, if it
    is a finite non-negative number; else ``None``."""
    return usable_seconds(getattr(error, "retry_after", None))


def observed(result: Any, now: float) -> Observed:
    """The event for a fetch that returned ``result`` (a job, or ``Fetched``)."""
    if type(result) is Fetched:
        return Observed(job=result.job, now=now, retry_after=result.retry_after)
    return Observed(job=result, now=now)


def fetch_failed(
    error: Exception,
    now: float,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
) -> FetchFailed:
    """The event for a fetch that raised ``error``.

    If a classifier itself raises, the failure is treated as not retryable (the wait
    ends with ``JobFetchError`` whose ``__cause__`` is ``error``) and a note on
    ``error`` records what the classifier raised.

    Only pass ``Exception`` here: cancellation and ``KeyboardInterrupt`` must propagate.
    """
    try:
        retryable = bool(is_retryable(error))
        hint = retry_after_of(error) if retryable else None
    except Exception as exc:  # noqa: BLE001 - a broken classifier must not hide the fetch error
        error.add_note(f"jobwait: classifying this error raised {type(exc).__name__}: {exc}")
        return FetchFailed(error=error, now=now, retryable=False)
    return FetchFailed(error=error, now=now, retryable=retryable, retry_after=hint)


def cancel_failed(error: BaseException, failure: BaseException) -> None:
    """Record that canceling the remote job failed, on the error being raised.

    The failure never replaces ``error``: it is set as ``error.cancel_error`` and
    described in a note (``add_note``), so tracebacks show both.
    """
    error.cancel_error = failure  # type: ignore[attr-defined]
    error.add_note(
        f"jobwait: canceling the remote job also failed: {type(failure).__name__}: {failure}"
    )


def batch_observed(ids: tuple[str, ...], result: Any, now: float) -> BatchObserved | BatchFailed:
    """The event for a batch fetch that returned ``result``: a mapping of id to job,
    or ``Fetched(mapping, retry_after=...)`` to pass a server hint along.

    Anything else is a bug in the fetch (or an API answering something unexpected):
    it becomes a non-retryable ``BatchFailed`` whose error, a ``TypeError``, says what
    came back, so every job of the batch ends with ``JobFetchError`` instead of a raw
    exception escaping the wait.
    """
    jobs, hint = (result.job, result.retry_after) if type(result) is Fetched else (result, None)
    if not isinstance(jobs, Mapping):
        error = TypeError(
            f"a batch fetch must return a mapping of job id to job, got {type(jobs).__name__}"
        )
        return BatchFailed(ids=ids, error=error, now=now, retryable=False)
    return BatchObserved(ids=ids, jobs=jobs, now=now, retry_after=hint)


def single_job(job_id: str, result: Any) -> Any:
    """Wrap what a single-job ``fetch_one(job_id)`` returned as a batch result of one
    (keeping a ``Fetched`` hint), so one-at-a-time APIs drive a fleet unchanged."""
    if type(result) is Fetched:
        return Fetched({job_id: result.job}, retry_after=result.retry_after)
    return {job_id: result}


def batch_failed(
    ids: tuple[str, ...],
    error: Exception,
    now: float,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
) -> BatchFailed:
    """The event for a batch fetch that raised ``error``, classified exactly as
    :func:`jobwait.fetch_failed` classifies a single fetch (a classifier that raises
    makes the failure not retryable). Only pass ``Exception``: cancellation must
    propagate."""
    event = fetch_failed(error, now, is_retryable, retry_after_of)
    return BatchFailed(
        ids=ids,
        error=event.error,
        now=now,
        retryable=event.retryable,
        retry_after=event.retry_after,
    )
