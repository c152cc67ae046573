"""Pure helpers every driver shares, so no adapter makes a decision of its own.

A driver turns what its ``fetch`` did into an event: :func:`observed` for a returned
value (unwrapping :class:`~jobwait.Fetched`), :func:`fetch_failed` for an exception
(classified by :func:`is_retryable` and :func:`retry_after_of` unless the caller
passes its own). :func:`make_waiter` builds the waiter from adapter keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._backoff import usable_seconds
from ._protocol import Fetched, FetchFailed, Observed
from ._waiter import JobWaiter

__all__ = [
    "RETRYABLE_STATUS_CODES",
    "cancel_failed",
    "fetch_failed",
    "is_retryable",
    "is_retryable_status",
    "make_waiter",
    "observed",
    "retry_after_of",
]

#: HTTP statuses worth retrying: rate limiting, and server or gateway trouble
#: (including Cloudflare's 520-529). Every other 1xx/3xx/4xx/5xx is final.
RETRYABLE_STATUS_CODES: frozenset[int] = frozenset({429, 500, 502, 503, 504, *range(520, 530)})


def is_retryable_status(status_code: int) -> bool:
    """``True`` if an HTTP response with this status is worth retrying."""
    return status_code in RETRYABLE_STATUS_CODES


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


def make_waiter(waiter: JobWaiter | None, options: Mapping[str, Any]) -> JobWaiter:
    """The waiter an adapter should drive: ``waiter`` as given, or a new one built
    from ``options`` (the ``JobWaiter`` keywords the caller passed).

    Raises:
        TypeError: If both are given, or an option is not a ``JobWaiter`` keyword.
        ValueError: If an option's value is invalid (from ``JobWaiter``).
    """
    # "api" is a constructor keyword too, merged by the waiter itself.
    unknown = [name for name in options if name not in JobWaiter.OPTIONS and name != "api"]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    if waiter is not None:
        if options:
            raise TypeError(
                f"pass either waiter= or JobWaiter options, not both (got {sorted(options)})"
            )
        if not isinstance(waiter, JobWaiter):
            raise TypeError(f"waiter= must be a jobwait.JobWaiter, got {waiter!r}")
        return waiter
    return JobWaiter(**options)


def cancel_failed(error: BaseException, failure: BaseException) -> None:
    """Record that canceling the remote job failed, on the error being raised.

    The failure never replaces ``error``: it is set as ``error.cancel_error`` and
    described in a note (``add_note``), so tracebacks show both.
    """
    error.cancel_error = failure  # type: ignore[attr-defined]
    error.add_note(
        f"jobwait: canceling the remote job also failed: {type(failure).__name__}: {failure}"
    )
