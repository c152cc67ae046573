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
from ._text import ID_LIMIT, STATUS_LIMIT, preview

__all__ = [
    "FleetFailedError",
    "JobCanceledError",
    "JobFailedError",
    "JobFetchError",
    "JobStatusError",
    "JobTimeoutError",
    "JobWaitError",
    "RemoteError",
    "UsageError",
    "error_from_json",
    "error_to_json",
]


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
        # A server may send an id or a status of any length: the message shows the
        # start of each (preview), the attributes keep them whole.
        job = "job" if self.job_id is None else f"job {preview(self.job_id, ID_LIMIT)}"
        return (
            f"{self.reason} ({job}, last status {preview(self.last_status, STATUS_LIMIT)}, "
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


# --- errors as JSON (fleet snapshots, durable outcome records) --------------------------

#: Longest text kept from a cause's message or a note in the JSON form.
_MAX_TEXT = 500
_NOTES_MAX = 50

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
        FleetFailedError,
    )
}
#: The names of this tree's classes (what ``"type"`` may say in the JSON form).
CORE_ERROR_NAMES = frozenset(_CLASSES)
# The context every error carries, and its type rule (see _context_value).
_CONTEXT = ("job_id", "last_status", "last_job", "polls", "elapsed")
_EXTRAS: dict[type[JobWaitError], frozenset[str]] = {}
_EXACT: dict[str, type[JobWaitError]] = {}


class RemoteError(Exception):
    """The ``__cause__`` of an error rebuilt from JSON (a fleet snapshot, a durable
    outcome record): the exception that caused it where it was raised, by type name and
    message (its traceback stayed in that process's log).

    Attributes:
        type_name: The original exception's qualified class name
            (``"builtins.ConnectionResetError"``).
        message: Its message (at most 500 characters).
    """

    def __init__(self, type_name: str, message: str) -> None:
        self.type_name = type_name
        self.message = message
        super().__init__(f"{type_name}: {message}" if message else type_name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.message))


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _core_class(cls: type[JobWaitError]) -> type[JobWaitError]:
    # The nearest class of this module's tree (a subclass defined elsewhere maps to it).
    for base in cls.__mro__:
        if _CLASSES.get(base.__name__) is base:
            return base
    return JobWaitError  # pragma: no cover - every error derives from JobWaitError


def _extras_of(cls: type[JobWaitError]) -> frozenset[str]:
    # The keyword arguments a core class takes beyond the context (its _extra()).
    names = _EXTRAS.get(cls)
    if names is None:
        names = _EXTRAS[cls] = frozenset(cls("probe")._extra())
    return names


def _exact_class(qualified: object, base: type[JobWaitError]) -> type[JobWaitError] | None:
    """The subclass of ``base`` named ``qualified`` (module and qualified name) if it
    is loaded in this process; only already-loaded subclasses are considered, nothing
    is imported."""
    if not isinstance(qualified, str):
        return None
    found = _EXACT.get(qualified)
    if found is not None and issubclass(found, base):
        return found
    pending: list[type[JobWaitError]] = [base]
    while pending:
        cls = pending.pop()
        if _qualified(cls) == qualified:
            _EXACT[qualified] = cls
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _cause_json(error: BaseException) -> dict[str, str] | None:
    cause = error.__cause__
    if cause is None:
        return None
    if isinstance(cause, RemoteError):
        return {"type": cause.type_name[:_MAX_TEXT], "message": cause.message[:_MAX_TEXT]}
    return {"type": _qualified(type(cause)), "message": str(cause)[:_MAX_TEXT]}


def error_to_json(error: JobWaitError) -> dict[str, Any]:
    """A wait's error as JSON-serialisable data, for :func:`error_from_json`: the one
    form jobwait stores errors in (fleet snapshots, durable outcome records).

    ::

        {"type": "JobFetchError",                  # the nearest class of this tree
         "class": "jobwait._errors.JobFetchError",  # the exact class, module.qualname
         "reason": "...",
         "context": {"job_id": ..., "last_status": ..., "last_job": ..., "polls": ...,
                     "elapsed": ..., <the class's own fields: failure, timeout,
                     status_code, request_id, body_excerpt>},
         "notes": ["...", ...],                     # each at most 500 characters
         "cause": {"type": "builtins.ConnectionResetError", "message": "..."} | null}

    A context value that is not plain JSON (:func:`is_json`) becomes ``None``;
    ``FleetFailedError``'s ``results`` and ``unfinished`` are left out.
    """
    cls = type(error)
    context = {**error._context(), **error._extra()}
    context.pop("results", None)
    context.pop("unfinished", None)
    for name, value in context.items():
        if not is_json(value, tuples=True):
            context[name] = None
    return {
        "type": _core_class(cls).__name__,
        "class": _qualified(cls),
        "reason": error.reason,
        "context": context,
        "notes": [str(n)[:_MAX_TEXT] for n in getattr(error, "__notes__", ())][:_NOTES_MAX],
        "cause": _cause_json(error),
    }


def error_from_json(data: Any) -> JobWaitError:
    """The error :func:`error_to_json` described, rebuilt: the exact class when it is
    loaded in this process (an adapter's subclass included) and takes the stored
    fields, else the nearest class of this tree; the same reason, context and notes;
    its ``__cause__`` a :class:`RemoteError` naming the original exception.

    Also reads what older versions wrote (a cause as one ``"Type: message"`` string).
    Every field is checked where it enters: a value of the wrong type, a number out of
    range (``polls`` past ``2**63``, an ``elapsed`` or ``timeout`` that is not a finite
    float) or anything past the nesting limit of :func:`is_json` is refused.

    Raises:
        ValueError: ``data`` is not such a description (the message says why); never
            ``KeyError``, ``TypeError``, ``OverflowError`` or ``RecursionError``.
    """
    try:
        return _error_from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a jobwait error description: {exc!r}"[:_MAX_TEXT]) from None


def _error_from_json(data: Any) -> JobWaitError:
    if not isinstance(data, dict):
        raise TypeError(f"an error description must be an object, got {type(data).__name__}")
    base = _CLASSES[data["type"]] if isinstance(data["type"], str) else None
    reason, context, notes = data["reason"], data["context"], data.get("notes") or []
    if base is None or not isinstance(reason, str) or not isinstance(context, dict):
        raise TypeError("type and reason must be strings and context an object")
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise TypeError("notes must be a list of strings")
    known = {*_CONTEXT, *_extras_of(base)}
    checked = {k: _context_value(k, v) for k, v in context.items() if k in known}
    error: JobWaitError | None = None
    exact = _exact_class(data.get("class"), base)
    if exact is not None and exact is not base:
        extra = {k: v for k, v in context.items() if k not in known and is_json(v)}
        try:
            error = exact(reason, **checked, **extra)
        except Exception:  # noqa: BLE001 - a subclass with another constructor: use its base
            error = None
    if error is None:
        error = base(reason, **checked)
    for note in notes[:_NOTES_MAX]:
        error.add_note(note[:_MAX_TEXT])
    cause = data.get("cause")
    if isinstance(cause, str):  # written before the structured form
        name, _, message = cause.partition(": ")
        error.__cause__ = RemoteError(name[:_MAX_TEXT], message[:_MAX_TEXT])
    elif isinstance(cause, dict):
        kind, text = cause.get("type"), cause.get("message")
        if not isinstance(kind, str) or not isinstance(text, str):
            raise TypeError("cause must hold a string type and message")
        error.__cause__ = RemoteError(kind[:_MAX_TEXT], text[:_MAX_TEXT])
    elif cause is not None:
        raise TypeError("cause must be an object or null")
    return error


def _context_value(name: str, value: Any) -> Any:
    # The type rule of each stored context field (the constructors trust their input).
    if name in ("job_id", "last_status", "request_id", "body_excerpt"):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"context.{name} must be a string or null")
        return value
    if name == "polls":
        return check_count("context.polls", value)
    if name == "elapsed":
        return check_number("context.elapsed", value)
    if name == "timeout":
        return None if value is None else check_number("context.timeout", value)
    if name == "status_code":
        if value is not None:
            check_count("context.status_code", value)
        return value
    if not is_json(value):  # last_job, failure: plain JSON within the nesting limit
        raise ValueError(f"context.{name} is not plain JSON within {_DEPTH} levels")
    return value


_DEPTH = 64


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
    if depth > _DEPTH:
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


class JobMissingError(LookupError):
    """A batch response did not include a job it was asked for.

    The fleet reports it to that job's waiter as a retryable fetch failure, so it
    becomes the ``__cause__`` of the ``JobFetchError`` raised when the job's
    ``max_fetch_errors`` runs out.

    Attributes:
        job_id: The id that was missing.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"the batch response did not include job {job_id!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id,))
