"""HTTP helpers for a fetch of your own: what an HTTP answer means for a wait.

The HTTP adapters read every answer with these; use them when you write a ``fetch``
over another HTTP client and want the same rules: :func:`read_response` turns a
status code, headers and body into the job (wrapped in :class:`~jobwait.Fetched`
with any ``Retry-After`` hint) or raises :class:`ResponseError` /
:class:`~jobwait.JobStatusError`, which every wait classifies;
:func:`parse_retry_after` reads a ``Retry-After`` header; :func:`request_timeout` is
the one bound on a request, ``min(T, max(time_left, floor))``.

Example::

    from jobwait.http import read_response

    def fetch():
        r = session.get(url, timeout=30)
        return read_response(r.status_code, r.headers.items(), r.content, wall_now=time.time())

.. versionadded:: 0.1
"""

from ._http import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
from ._http import RETRYABLE_STATUS_CODES as RETRYABLE_STATUS_CODES
from ._http import ResponseError as ResponseError
from ._http import is_retryable_status as is_retryable_status
from ._http import parse_retry_after as parse_retry_after
from ._http import read_response as read_response
from ._http import request_timeout as request_timeout
from ._public import claim as _claim

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "RETRYABLE_STATUS_CODES",
    "ResponseError",
    "is_retryable_status",
    "parse_retry_after",
    "read_response",
    "request_timeout",
]

# What a user catches or calls names its public home in tracebacks and reprs (trio's
# way): jobwait.http.ResponseError, not jobwait._http.ResponseError.
_claim(globals(), __all__, __name__)
