"""Outcomes as JSON: a finished job, or its ``JobWaitError`` with every bit of context.

Results cross processes as JSON (never pickle, as Celery itself defaults to): a job is
stored as ``{"job": <payload>}``, an error as ``{"error": <class name>, "reason": ...,
"context": {...}, "extra": {...}, "cause": {"type": ..., "message": ...}, "notes":
[...]}``. :func:`outcome_of` rebuilds the same error class with the same attributes; its
``__cause__`` becomes a :class:`RemoteError` naming the original exception.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import jobwait
from jobwait import JobWaitError
from jobwait._plumbing import is_json

__all__ = ["RemoteError", "encode_outcome", "outcome_of"]

_MAX_TEXT: Final = 500


class RemoteError(Exception):
    """The ``__cause__`` of an error rebuilt from Redis: the exception that caused it in
    the worker, by type name and message (its traceback stayed in the worker's log).

    Attributes:
        type_name: The original exception's qualified class name.
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


def _error_class(name: str, qualified: str | None) -> type[JobWaitError] | None:
    # The exact class if it is loaded here (an adapter's subclass included), else the
    # core class of that name.
    by_name: type[JobWaitError] | None = None
    pending: list[type[JobWaitError]] = [JobWaitError]
    while pending:
        cls = pending.pop()
        if qualified is not None and _qualified(cls) == qualified:
            return cls
        if cls.__name__ == name and cls.__module__.startswith("jobwait._"):
            by_name = cls
        pending.extend(cls.__subclasses__())
    return by_name


def _json_or_none(value: Any) -> Any:
    return value if is_json(value, tuples=True) else None


def _cause(error: BaseException) -> dict[str, str] | None:
    cause = error.__cause__
    if cause is None:
        return None
    if isinstance(cause, RemoteError):
        return {"type": cause.type_name, "message": cause.message}
    kind = type(cause)
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(cause)[:_MAX_TEXT]}


def encode_outcome(
    outcome: Any, status_of: Callable[[Any], Any], polls: int | None = None
) -> tuple[str, str]:
    """``(kind, JSON text)`` for one finished job's outcome.

    ``kind`` is what :meth:`WaitGroup.progress` counts: the job's status for a job
    (``"completed"``, ``"failed"``, ...; ``"done"`` if unreadable), the error's class
    name for a ``JobWaitError``. A job payload that is not JSON-serialisable is
    stored as ``null`` with its status. A job's record also keeps ``polls``, the
    status reads its wait made (an error keeps its own ``polls``).
    """
    if isinstance(outcome, JobWaitError):
        context = {
            "job_id": outcome.job_id,
            "last_status": outcome.last_status,
            "last_job": _json_or_none(outcome.last_job),
            "polls": outcome.polls,
            "elapsed": outcome.elapsed,
        }
        extra = {k: _json_or_none(v) for k, v in outcome._extra().items()}
        record: dict[str, Any] = {
            "error": type(outcome).__name__,
            "class": _qualified(type(outcome)),
            "reason": outcome.reason,
            "context": context,
            "extra": extra,
            "cause": _cause(outcome),
            "notes": [str(n)[:_MAX_TEXT] for n in getattr(outcome, "__notes__", ())],
        }
        return type(outcome).__name__, json.dumps(record, allow_nan=False)
    try:
        status = status_of(outcome)
    except Exception:  # noqa: BLE001 - a status reader that raises only loses the label
        status = None
    kind = status if isinstance(status, str) and status else "done"
    job = outcome if is_json(outcome, tuples=True) else None
    return kind, json.dumps({"job": job, "status": kind, "polls": polls}, allow_nan=False)


def outcome_of(record: Mapping[str, Any] | str | bytes) -> Any:
    """Rebuild an outcome stored by the durable waits: the job payload, or the
    ``JobWaitError`` it ended with (same class, reason and context attributes; its
    ``__cause__`` a :class:`RemoteError`).

    Args:
        record: The stored JSON text, or the dict it parses to (what ``on_done``
            signatures receive).

    Raises:
        ValueError: The record is not JSON, or malformed.
        TypeError: The record is not a JSON object.
    """
    if isinstance(record, str | bytes):
        try:
            record = json.loads(record)
        except ValueError as exc:
            raise ValueError(f"a stored outcome is not JSON: {exc}") from exc
    if not isinstance(record, Mapping):
        raise TypeError(f"a stored outcome must be a JSON object, got {type(record).__name__}")
    if "job" in record:
        return record["job"]
    try:
        name = record["error"]
        cls = _error_class(name, record.get("class"))
        context = dict(record["context"])
        extra = dict(record.get("extra") or {})
        if cls is None:  # written by a newer jobwait: keep the context, not the extras
            cls, extra = JobWaitError, {}
        if cls is jobwait.FleetFailedError:
            extra.pop("results", None)
            extra.pop("unfinished", None)
        error = cls(record["reason"], **context, **extra)
        cause = record.get("cause")
        if cause:
            error.__cause__ = RemoteError(str(cause["type"]), str(cause["message"]))
        for note in record.get("notes") or ():
            error.add_note(str(note))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a stored outcome is malformed: {exc!r}") from exc
    return error
