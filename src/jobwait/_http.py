"""Pure HTTP decisions: what a response means for a wait.

The HTTP adapters (``jobwait.adapters.httpx``, ``.ionq``), the fleet drivers and the
simulated job board all read responses the same way, so the reading lives here, once,
with no IO: :func:`read_response` turns a status code, headers and body into the job
(wrapped in :class:`~jobwait.Fetched` with any ``Retry-After`` hint) or raises a
classified error that the drivers report as ``FetchFailed``.

- 2xx with a JSON object body: the job.
- 429, 500, 502, 503, 504, 520-529: :class:`ResponseError`, retryable, with the hint.
- Every other status (1xx, 3xx, other 4xx and 5xx): :class:`ResponseError`, not
  retryable; the wait ends with ``JobFetchError`` carrying ``status_code``,
  ``request_id`` (``x-request-id``) and ``body_excerpt``.
- A 2xx body that is not a JSON object: :class:`~jobwait.JobStatusError` describing it,
  retryable when ``retry_invalid_body`` (so an endpoint that keeps answering garbage
  ends in ``JobFetchError`` caused by it), else the wait ends with it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ._advice import http_error_reason
from ._errors import JobStatusError
from ._json import loads
from ._numbers import usable_seconds
from ._protocol import Fetched
from ._text import SERVER_LIMIT, preview

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "ResponseError",
    "body_excerpt",
    "body_too_large",
    "parse_retry_after",
    "read_response",
    "request_timeout",
]

#: Largest response body read before the wait gives up (1 MiB).
DEFAULT_MAX_BODY_SIZE = 1 << 20
_EXCERPT = 200


#: HTTP statuses worth retrying: rate limiting, and server or gateway trouble
#: (including Cloudflare's 520-529). Every other 1xx/3xx/4xx/5xx is final.
RETRYABLE_STATUS_CODES: frozenset[int] = frozenset({429, 500, 502, 503, 504, *range(520, 530)})


def is_retryable_status(status_code: int) -> bool:
    """``True`` if an HTTP response with this status is worth retrying."""
    return status_code in RETRYABLE_STATUS_CODES


class ResponseError(Exception):
    """The server answered, but not with a job: an HTTP error status or an oversized body.

    It is the ``__cause__`` of the ``JobFetchError`` a wait ends with, and its HTTP
    attributes are copied onto that error.

    Attributes:
        status_code: The HTTP status.
        request_id: The ``x-request-id`` header, if any.
        body_excerpt: At most 200 characters of the body (never a header).
        retry_after: The server's ``Retry-After`` hint in seconds, if valid.
        retryable: Whether retrying may help (429 and 5xx gateway trouble).
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int,
        request_id: str | None = None,
        body_excerpt: str | None = None,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                str(self),
                self.status_code,
                self.request_id,
                self.body_excerpt,
                self.retry_after,
                self.retryable,
            ),
        )


def _rebuild(
    reason: str,
    status_code: int,
    request_id: str | None,
    excerpt: str | None,
    retry_after: float | None,
    retryable: bool,
) -> ResponseError:
    return ResponseError(
        reason,
        status_code=status_code,
        request_id=request_id,
        body_excerpt=excerpt,
        retry_after=retry_after,
        retryable=retryable,
    )


def parse_retry_after(value: str | None, *, wall_now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` if unusable.

    Accepts non-negative seconds (``"3"``, ``"1.5"``) or an HTTP-date, read against
    ``wall_now`` (Unix seconds, from the adapter's wall clock); a date in the past
    means 0. Anything else (negative, NaN, garbage, empty) is ignored: ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return usable_seconds(seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; be lenient with zone-less ones
        return None
    return max(0.0, when.timestamp() - wall_now)


def body_too_large(status_code: int, limit: int, *, request_id: str | None) -> ResponseError:
    """The error of an answer whose body passed ``limit`` bytes (after decompression):
    not retryable (the same answer would come again), the wait ends with
    ``JobFetchError`` naming the setting (``max_body_size``)."""
    return ResponseError(
        f"HTTP {status_code} response body is larger than max_body_size={limit} "
        "(after decompression)",
        status_code=status_code,
        request_id=request_id,
        retryable=False,
    )


def body_excerpt(body: bytes) -> str:
    """At most 200 characters of a response body, decoded leniently."""
    return body[: _EXCERPT * 4].decode("utf-8", "replace")[:_EXCERPT]


def _header(headers: Iterable[tuple[str, str]] | Mapping[str, str], name: str) -> str | None:
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name:
            return value
    return None


def read_response(
    status_code: int,
    headers: Iterable[tuple[str, str]] | Mapping[str, str],
    body: bytes,
    *,
    wall_now: float,
    retry_invalid_body: bool = True,
    job_id: str | None = None,
) -> Fetched:
    """Read one HTTP response to a job poll.

    Args:
        status_code: The response status.
        headers: The response headers (a mapping, or (name, value) pairs).
        body: The whole body (adapters enforce ``max_body_size`` while reading).
        wall_now: Unix seconds now, for ``Retry-After`` HTTP-dates.
        retry_invalid_body: Whether a 2xx body that is not a JSON object is retryable.
        job_id: For the error message.

    Returns:
        ``Fetched(job, retry_after)``: ``job`` is the parsed JSON object.

    Raises:
        ResponseError: A non-2xx status (``retryable`` for 429 and 5xx gateway trouble).
        JobStatusError: A 2xx body that is not a JSON object (its ``retryable``
            attribute follows ``retry_invalid_body``).
    """
    hint = parse_retry_after(_header(headers, "retry-after"), wall_now=wall_now)
    if not 200 <= status_code < 300:
        retryable = is_retryable_status(status_code)
        raise ResponseError(
            http_error_reason(status_code, retryable=retryable, body=body),
            status_code=status_code,
            request_id=_header(headers, "x-request-id"),
            body_excerpt=body_excerpt(body),
            retry_after=hint if retryable else None,
            retryable=retryable,
        )
    try:
        job = loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, nested too deep
        what = f"is not JSON ({type(exc).__name__}: {exc})"
    else:
        if isinstance(job, dict):
            return Fetched(job, retry_after=hint)
        what = f"is JSON {type(job).__name__}, not an object"
    error = JobStatusError(
        f"HTTP {status_code} response body {what}; starts "
        f"{preview(body_excerpt(body), SERVER_LIMIT)}",
        job_id=job_id,
    )
    error.retryable = retry_invalid_body
    raise error


def request_timeout(
    client_timeout: float | None, time_left: float | None, *, floor: float = 1.0
) -> float | None:
    """The timeout for one request: the smaller of the client's own and the time left
    to the deadline, but at least ``floor`` so the final poll at the deadline still gets
    a fair answer. ``None`` means no limit."""
    if time_left is None:
        return client_timeout
    bound = max(time_left, floor)
    return bound if client_timeout is None else min(client_timeout, bound)
