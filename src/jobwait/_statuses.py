"""Status vocabularies: which raw status strings mean what, and how to read them."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._text import STATUS_LIMIT, preview

__all__ = [
    "MISSING",
    "Phase",
    "Statuses",
    "default_failure_of",
    "default_status_of",
    "field_reader",
    "read_field",
]


class Phase(enum.Enum):
    """What a job's status means, whatever the API calls it."""

    PENDING = "pending"
    """Not finished: queued, ready, running."""
    SUCCEEDED = "succeeded"
    """Finished and produced its result."""
    FAILED = "failed"
    """Finished without a result."""
    CANCELED = "canceled"
    """Finished because someone canceled it."""
    UNKNOWN = "unknown"
    """A status the vocabulary does not list."""

    @property
    def terminal(self) -> bool:
        """``True`` for SUCCEEDED, FAILED and CANCELED."""
        return self in _TERMINAL


_TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELED})
OnUnknown = Literal["wait", "raise"]


def _frozen(name: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"Statuses({name}=...) takes a collection of strings, not one string")
    out = frozenset(values)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise TypeError(f"Statuses({name}=...) values must be strings, got {bad[0]!r}")
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Statuses:
    """Which raw status values mean pending, succeeded, failed and canceled.

    The default is IonQ's v0.4 vocabulary: ``submitted``, ``ready``, ``started`` (and
    the legacy ``running``) are pending; ``completed`` succeeded; ``failed``;
    ``canceled`` (one l). Use :meth:`braket` or :meth:`qiskit` for those APIs, or
    list your own values.

    Args:
        pending: Values meaning "not finished yet".
        succeeded: Values meaning success.
        failed: Values meaning failure.
        canceled: Values meaning the job was canceled.
        case_sensitive: When ``False``, ``"COMPLETED"`` matches ``"completed"``.
        on_unknown: What a value in none of the sets does: ``"wait"`` (default) logs
            a warning once per distinct value and keeps polling; ``"raise"`` ends the
            wait with :class:`~jobwait.JobStatusError`.

    Raises:
        ValueError: If one value is in two sets, or ``on_unknown`` is not
            ``"wait"`` or ``"raise"``.
        TypeError: If a set is a bare string or holds a non-string.
    """

    pending: AbstractSet[str] = frozenset({"submitted", "ready", "started", "running"})
    succeeded: AbstractSet[str] = frozenset({"completed"})
    failed: AbstractSet[str] = frozenset({"failed"})
    canceled: AbstractSet[str] = frozenset({"canceled"})
    case_sensitive: bool = True
    on_unknown: OnUnknown = "wait"
    _lookup: dict[str, Phase] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[str, Phase] = {}
        seen: dict[str, str] = {}
        for name, phase in (
            ("pending", Phase.PENDING),
            ("succeeded", Phase.SUCCEEDED),
            ("failed", Phase.FAILED),
            ("canceled", Phase.CANCELED),
        ):
            values = _frozen(name, getattr(self, name))
            object.__setattr__(self, name, values)
            for value in values:
                key = value if self.case_sensitive else value.casefold()
                if key in seen and seen[key] != name:
                    raise ValueError(
                        f"Statuses: {value!r} is in both {seen[key]!r} and {name!r}; "
                        "a status can mean only one thing"
                    )
                seen[key] = name
                lookup[key] = phase
        if not isinstance(self.case_sensitive, bool):
            raise TypeError(f"Statuses(case_sensitive={self.case_sensitive!r}) must be a bool")
        if self.on_unknown not in ("wait", "raise"):
            raise ValueError(f"Statuses(on_unknown={self.on_unknown!r}) must be 'wait' or 'raise'")
        object.__setattr__(self, "_lookup", lookup)

    def phase(self, status: Any) -> Phase:
        """Classify a raw status (a string, or an enum member read by :meth:`text`).
        Unlisted values are ``Phase.UNKNOWN``.

        Raises:
            TypeError: If ``status`` is neither a string nor an enum member (see
                :meth:`text`).
        """
        status = self.text(status)
        key = status if self.case_sensitive else status.casefold()
        return self._lookup.get(key, Phase.UNKNOWN)

    def text(self, status: Any) -> str:
        """The status as the plain string this vocabulary is written in.

        A plain ``str`` is returned as it is. An enum member (``enum.Enum``, also a
        ``StrEnum`` or a ``(str, Enum)`` mix-in such as Qiskit's ``JobStatus``) reads
        as its ``value`` when that is a string this vocabulary lists, else as its
        ``name`` when that is listed, else as its string ``value`` (or its ``name``
        when the value is not a string). Any other ``str`` subclass reads as
        ``str.__str__`` of it. The waiter calls this for every status that is not a
        plain ``str``.

        Raises:
            TypeError: For anything else (an int, a bool, ``None``, a dict, ...). The
                message says how to map it: pass ``status_of=`` that returns one of
                the listed strings, or use an :class:`~jobwait.ApiProfile` that does.
        """
        if type(status) is str:
            return status
        if isinstance(status, enum.Enum):
            value, name = status.value, status.name
            if isinstance(value, str) and self._key(value) in self._lookup:
                return str.__str__(value)
            if self._key(name) in self._lookup:
                return name
            return str.__str__(value) if isinstance(value, str) else name
        if isinstance(status, str):
            return str.__str__(status)
        raise TypeError(
            f"the job's status must be a string, got {preview(status)} "
            f"({type(status).__name__}); "
            "map it to a status listed in Statuses with status_of=, e.g. "
            "status_of=lambda job: {0: 'queued', 1: 'completed'}[job['status']], "
            "or use an ApiProfile that reads this API"
        )

    def _key(self, status: str) -> str:
        return status if self.case_sensitive else status.casefold()

    def known(self) -> str:
        """Every listed status, grouped by meaning, for messages: ``"pending: a, b;
        succeeded: c; failed: d; canceled: e"`` (an empty group is left out)."""
        groups = []
        for name in ("pending", "succeeded", "failed", "canceled"):
            values: AbstractSet[str] = getattr(self, name)
            if values:
                # An empty status (Argo's phase before a workflow is picked up) shows.
                shown = ", ".join(value or '""' for value in sorted(values))
                groups.append(f"{name}: {shown}")
        return "; ".join(groups) or "none"

    def unknown_message(self, status: str) -> str:
        """What strict mode (``on_unknown="raise"``) says about an unlisted status:
        the status, every known one, and what to do."""
        case = "" if self.case_sensitive else ", compared case-insensitively"
        return (
            f"unknown status {preview(status, STATUS_LIMIT)} (known{case}: {self.known()}); "
            "list it (Statuses(pending=...) in Python, --pending/--success/--failure/--canceled "
            "on the command line), or keep waiting on unlisted statuses "
            "(on_unknown='wait', --on-unknown wait)"
        )

    def replace(self, **changes: Any) -> Statuses:
        """A copy with some sets replaced, e.g. ``Statuses().replace(succeeded={"done"})``.

        Values given for an outcome leave the other sets, so a status moved to
        ``succeeded`` stops being pending.
        """
        sets = {
            name: set(getattr(self, name))
            for name in ("pending", "succeeded", "failed", "canceled")
        }
        for name, values in changes.items():
            if name not in sets:
                continue
            moved = _frozen(name, values)
            for other in sets:
                if other != name:
                    sets[other] -= moved
            sets[name] = set(moved)
        options = {k: v for k, v in changes.items() if k not in sets}
        return Statuses(
            **{k: frozenset(v) for k, v in sets.items()},
            case_sensitive=options.pop("case_sensitive", self.case_sensitive),
            on_unknown=options.pop("on_unknown", self.on_unknown),
            **options,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (used by snapshots)."""
        return {
            "pending": sorted(self.pending),
            "succeeded": sorted(self.succeeded),
            "failed": sorted(self.failed),
            "canceled": sorted(self.canceled),
            "case_sensitive": self.case_sensitive,
            "on_unknown": self.on_unknown,
        }

    @classmethod
    def ionq(cls) -> Statuses:
        """IonQ v0.4 (the default; the ``ionq`` profile's vocabulary)."""
        from ._apis import vocabulary  # the profiles are built from this class

        return vocabulary("ionq")

    @classmethod
    def braket(cls) -> Statuses:
        """Amazon Braket: ``CREATED``, ``QUEUED``, ``RUNNING``, ``CANCELLING`` pending;
        ``COMPLETED``; ``FAILED``; ``CANCELLED`` (the ``braket`` profile's vocabulary)."""
        from ._apis import vocabulary  # the profiles are built from this class

        return vocabulary("braket")

    @classmethod
    def qiskit(cls) -> Statuses:
        """IBM Qiskit Runtime: ``Queued``, ``Running``, ``Initializing``, ``Validating``
        pending; ``Completed``, ``Done``; ``Failed``, ``Error``; ``Cancelled`` (matched
        case-insensitively, as the API's casing has varied; the ``qiskit`` profile's
        vocabulary, less the status its reader derives)."""
        from ._apis import vocabulary  # the profiles are built from this class

        return vocabulary("qiskit")


#: What :func:`read_field` returns for a field that is not there (when no default is given).
MISSING: Final[Any] = object()
_MISSING = MISSING


def read_field(obj: Any, path: str, default: Any = MISSING) -> Any:
    """The one field reader: ``obj``'s value at a dotted ``path`` (``"state.status"``).

    Each step reads a mapping's key, else an object's attribute (so a parsed JSON
    answer and an SDK's model read alike); a step that is not there gives
    ``default`` (:data:`MISSING` when none is given). Only a property of ``obj``
    that raises makes it raise.
    """
    value = obj
    for step in path.split(".") if "." in path else (path,):
        if type(value) is dict or isinstance(
            value, Mapping
        ):  # the common case, without the slower ABC check
            value = value.get(step, MISSING)
        else:
            value = getattr(value, step, MISSING)
        if value is MISSING:
            return default
    return value


def _get(job: Any, name: str) -> Any:
    if type(job) is dict:  # the hot path of default_status_of
        return job.get(name, MISSING)
    return read_field(job, name)


def default_status_of(job: Any) -> Any:
    """Read ``job["status"]`` from a mapping, else ``job.status``.

    Raises:
        LookupError: If the job has neither.
    """
    value = _get(job, "status")
    if value is _MISSING:
        raise LookupError("the job has no 'status' field")
    return value


def default_failure_of(job: Any) -> Any:
    """Read ``job["failure"]`` from a mapping, else ``job.failure``; ``None`` if absent."""
    value = _get(job, "failure")
    return None if value is _MISSING else value


def field_reader(path: str, *, default: Any = _MISSING) -> Callable[[Any], Any]:
    """A ``status_of`` reader for a dotted path, e.g. ``field_reader("state.status")``.

    Each step reads a mapping key, else an attribute. A missing step raises
    ``LookupError`` naming the path, which the waiter reports
    as ``JobStatusError``; with ``default=`` given, it returns ``default`` instead
    (use ``field_reader("error.message", default=None)`` as a ``failure_of``).

    Raises:
        ValueError: If ``path`` is empty or has an empty step.
    """
    steps = path.split(".")
    if not path or any(not s for s in steps):
        raise ValueError(f"field path {path!r} must be dotted names, like 'state.status'")

    def read(job: Any) -> Any:
        value = read_field(job, path)
        if value is MISSING:
            if default is not MISSING:
                return default
            raise LookupError(f"the job has no {path!r} field")
        return value

    read.__name__ = f"field_reader({path!r})"
    return read
