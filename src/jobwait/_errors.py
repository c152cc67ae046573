"""The one tree of errors jobwait raises.

Every error raised while waiting is a :class:`JobWaitError` and carries the context of
the wait it ended: the job id, the last status and job payload seen, how many polls were
made and how long the wait had lasted. Nothing seen is lost.

::

    JobWaitError
    ├── UsageError          you used the state machine wrongly (a bug in the driver)
    ├── JobFailedError      the job finished as failed (and raise_on_failure is on)
    ├── JobCanceledError    the job was canceled (and raise_on_cancel is on)
    ├── JobTimeoutError     the deadline passed before the job finished
    ├── JobFetchError       the job could not be fetched (error budget spent, or an
    │                       error that retrying cannot fix)
    ├── JobStatusError      a job payload whose status could not be read or is unknown
    └── FleetFailedError    fail_fast stopped a JobFleet at its first job error

``UsageError`` is the one member that is not an outcome of a wait: it is raised
directly by ``handle()`` / ``next_action()`` / ``add()`` / ``snapshot()`` to the code
driving the machine, never handed out through ``Raise`` or ``Finished``. It stays in
the tree (as h11 keeps ``LocalProtocolError`` and ``RemoteProtocolError`` under one
``ProtocolError``) so that it carries the same context and pickles the same way;
drivers that catch ``JobWaitError`` to report outcomes never see one unless they
themselves have a bug.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ._numbers import check_count, check_number

__all__ = [
    "FleetFailedError",
    "JobCanceledError",
    "JobFailedError",
    "JobFetchError",
    "JobStatusError",
    "JobTimeoutError",
    "JobWaitError",
    "UsageError",
    "error_from_json",
    "error_to_json",
]


# A message names the job id and the last status, but a server may send a status (or an
# id) of any length: the message shows at most this many characters of each; the
# attributes keep them whole.
_SHOWN_MAX = 120


def shown(value: object, limit: int = _SHOWN_MAX) -> str:
    """``repr(value)``, cut to ``limit`` characters with the full length named."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}\u2026 ({len(text)} characters)"


class JobWaitError(Exception):
    """Base class of every error jobwait raises.

    Attributes:
        reason: The short message, without the context suffix.
        job_id: The job's id, or ``None`` when the caller gave none.
        last_status: The last status string observed, or ``None`` if none was read.
        last_job: The last job payload observed (the raw object), or ``None``.
        polls: Fetch attempts made, successful or not.
        elapsed: Seconds from the start of the wait to the event that ended it.
        cancel_error: Set by an adapter when calling ``cancel=`` to cancel the remote
            job failed; the failure never replaces this error.
    """

    cancel_error: BaseException | None = None

    def __init__(
        self,
        reason: str,
        *,
        job_id: str | None = None,
        last_status: str | None = None,
        last_job: Any = None,
        polls: int = 0,
        elapsed: float = 0.0,
    ) -> None:
        self.reason = reason
        self.job_id = job_id
        self.last_status = last_status
        self.last_job = last_job
        self.polls = polls
        self.elapsed = elapsed
        super().__init__(self._message())

    def _message(self) -> str:
        job = "job" if self.job_id is None else f"job {shown(self.job_id)}"
        return (
            f"{self.reason} ({job}, last status {shown(self.last_status)}, "
            f"{self.polls} poll{'s' if self.polls != 1 else ''}, {self.elapsed:.3f}s elapsed)"
        )

    def _context(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "last_status": self.last_status,
            "last_job": self.last_job,
            "polls": self.polls,
            "elapsed": self.elapsed,
        }

    def _extra(self) -> dict[str, Any]:
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive Exception's default pickling; errors
        # cross process boundaries (multiprocessing, snapshots), so rebuild explicitly.
        state = {
            name: getattr(self, name)
            for name in ("cancel_error", "__notes__")
            if name in self.__dict__
        }
        return (
            _rebuild,
            (type(self), self.reason, {**self._context(), **self._extra()}),
            state or None,
        )


def _rebuild(cls: type[JobWaitError], reason: str, kwargs: dict[str, Any]) -> JobWaitError:
    return cls(reason, **kwargs)


class UsageError(JobWaitError):
    """An event was not valid in the waiter's current state.

    This is a bug in the code driving the waiter (for example sending ``Woke`` when a
    poll result is expected, or any event after the wait finished). The waiter is left
    unchanged; fix the driver.
    """


class JobFailedError(JobWaitError):
    """The job finished with a failed status and ``raise_on_failure`` is on.

    Attributes:
        failure: The job's failure payload as the API gave it (IonQ: a mapping with
            ``code`` and ``message``), or ``None`` if the job carried none.
    """

    def __init__(self, reason: str, *, failure: Any = None, **context: Any) -> None:
        self.failure = failure
        super().__init__(reason, **context)

    def _extra(self) -> dict[str, Any]:
        return {"failure": self.failure}


class JobCanceledError(JobWaitError):
    """The job was canceled and ``raise_on_cancel`` is on (by default a canceled job is
    returned, as ``ionq_core.polling`` does)."""


class JobTimeoutError(JobWaitError):
    """The job did not finish before the deadline.

    The remote job is still running: cancel it (adapters do so when given ``cancel=``)
    or wait again with a longer timeout.

    Attributes:
        timeout: The timeout in seconds that passed.
    """

    def __init__(self, reason: str, *, timeout: float | None = None, **context: Any) -> None:
        self.timeout = timeout
        super().__init__(reason, **context)

    def _extra(self) -> dict[str, Any]:
        return {"timeout": self.timeout}


class JobFetchError(JobWaitError):
    """The job's status could not be fetched.

    Raised when a fetch failed in a way retrying cannot fix, or when ``max_fetch_errors``
    consecutive retryable failures spent the error budget. The fetch exception is the
    ``__cause__``. HTTP adapters fill the HTTP attributes from the failed response.

    Attributes:
        status_code: The HTTP status of the failed response, if there was one.
        request_id: The server's request id (``x-request-id``), if it sent one.
        body_excerpt: At most 200 characters of the response body, never a header.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        body_excerpt: str | None = None,
        **context: Any,
    ) -> None:
        self.status_code = status_code
        self.request_id = request_id
        self.body_excerpt = body_excerpt
        super().__init__(reason, **context)

    def _extra(self) -> dict[str, Any]:
        return {
            "status_code": self.status_code,
            "request_id": self.request_id,
            "body_excerpt": self.body_excerpt,
        }


class JobStatusError(JobWaitError):
    """A job payload's status could not be read, or is not one the waiter knows.

    Raised for a missing, null or non-string status, when ``status_of`` itself raised,
    and for an unknown status when ``Statuses(on_unknown="raise")``. Check the status
    mapping (``Statuses``) or the ``status_of`` reader.

    HTTP adapters also raise it from a fetch, for a response body that is not a JSON
    object; then ``retryable`` tells the driver whether to poll again, and a wait that
    keeps seeing such bodies ends in ``JobFetchError`` caused by this error;
    one that is not retryable ends the wait at once with a ``JobStatusError`` caused by
    it (with the wait's context).

    Attributes:
        retryable: Set on errors raised by a fetch; ``None`` on errors a wait ends with.
    """

    retryable: bool | None = None


class FleetFailedError(JobWaitError):
    """``fail_fast`` stopped a ``JobFleet`` at the first job that ended with an error.

    The context attributes (``job_id``, ``last_status``, ``polls``, ...) are those of
    that job's error, which is also the ``__cause__``.

    Attributes:
        results: Every outcome known when the fleet stopped, keyed by job id: the job,
            or its ``JobWaitError``.
        unfinished: The ids that had no outcome; the fleet asked for them to be
            canceled with ``CancelJobs``.
    """

    def __init__(
        self,
        reason: str,
        *,
        results: Mapping[str, Any] | None = None,
        unfinished: Iterable[str] = (),
        **context: Any,
    ) -> None:
        self.results = dict(results or {})
        self.unfinished = tuple(unfinished)
        super().__init__(reason, **context)

    def _extra(self) -> dict[str, Any]:
        return {"results": self.results, "unfinished": self.unfinished}


# --- errors as JSON (fleet snapshots, durable results) ---------------------------------

_CLASSES: dict[str, type[JobWaitError]] = {
    cls.__name__: cls
    for cls in (
        JobWaitError,
        UsageError,
        JobFailedError,
        JobCanceledError,
        JobTimeoutError,
        JobFetchError,
        JobStatusError,
    )
}


def error_to_json(error: JobWaitError) -> dict[str, Any]:
    """A wait's error as JSON-serialisable data, for :func:`error_from_json`.

    Keeps the class (by name, the nearest class of this tree for a subclass defined
    elsewhere), the reason, the context (a ``last_job`` or ``failure`` that is not
    plain JSON becomes ``None``), the HTTP fields, the notes, and the cause described
    in words (an arbitrary exception cannot be rebuilt).
    """
    cls: type[BaseException] = type(error)
    while cls.__name__ not in _CLASSES or _CLASSES[cls.__name__] is not cls:
        cls = cls.__mro__[1]
    context = {**error._context(), **error._extra()}
    context.pop("results", None)
    context.pop("unfinished", None)
    for name in ("last_job", "failure"):
        if name in context and not is_json(context[name]):
            context[name] = None
    cause = error.__cause__
    return {
        "type": cls.__name__,
        "reason": error.reason,
        "context": context,
        "notes": list(getattr(error, "__notes__", ())),
        "cause": None if cause is None else f"{type(cause).__name__}: {cause}"[:300],
    }


def error_from_json(data: Any) -> JobWaitError:
    """The error :func:`error_to_json` described, rebuilt with its class and context;
    the original cause, if any, is described in a note.

    Raises:
        ValueError: ``data`` is not such a description (the message says why).
    """
    try:
        if not is_json(data):
            raise ValueError("not plain JSON data nested at most 64 deep")
        cls = _CLASSES[data["type"]]
        context = data["context"]
        if not isinstance(context, dict) or not isinstance(data["reason"], str):
            raise TypeError("context must be an object and reason a string")
        check_count("polls", context.get("polls", 0))
        check_number("elapsed", context.get("elapsed", 0.0))
        error = cls(data["reason"], **context)
        for note in data["notes"]:
            error.add_note(str(note))
        if data["cause"] is not None:
            error.add_note(f"jobwait: restored from a snapshot; the cause was {data['cause']}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a jobwait error description: {exc!r}") from exc
    return error


def is_json(value: object, depth: int = 0, *, tuples: bool = False) -> bool:
    """Whether ``value`` is plain JSON data that ``json.dumps(value, allow_nan=False)``
    writes as is: ``None``, ``str``, ``bool``, ``int``, finite ``float``, ``list`` and
    ``dict`` with ``str`` keys, nested at most 64 deep (``depth``: the nesting already
    above ``value``; default 0).

    Args:
        tuples: Also accept ``tuple`` as an array (default ``False``: a snapshot must
            restore exactly, and a tuple would come back as a list; the durable
            adapters, which only store the JSON, pass ``True``).

    Raises nothing: anything else is ``False``.
    """
    if depth > 64:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list) or (tuples and isinstance(value, tuple)):
        return all(is_json(v, depth + 1, tuples=tuples) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and is_json(v, depth + 1, tuples=tuples) for k, v in value.items()
        )
    return False
