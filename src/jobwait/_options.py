"""The per-job options, defined once.

``JobOptions`` is the one list of the rules every wait of one job follows: their
names and types (a ``TypedDict``, so ``**options: Unpack[JobOptions]`` types the
keywords of ``JobWaiter``, ``JobFleet`` and every adapter) and, in ``JOB_DEFAULTS``,
their defaults. Everything else derives from these two: ``JobWaiter.OPTIONS``, the
keywords a fleet forwards to its waiters, the keywords adapters accept, and the
``options`` part of a snapshot (``options_to_json`` / ``options_from_json``). Adding
an option means adding it here (and reading it in ``JobWaiter``); a check at import
time makes sure the defaults cover every name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypedDict

from ._backoff import Backoff
from ._statuses import Statuses, default_failure_of, default_status_of

__all__ = [
    "JOB_DEFAULTS",
    "JOB_OPTIONS",
    "FleetOptions",
    "JobOptions",
    "WaiterOptions",
    "options_from_json",
    "options_to_json",
]


class JobOptions(TypedDict, total=False):
    """The per-job rules: the :class:`~jobwait.JobWaiter` keywords other than
    ``job_id``, shared by single waits and fleets (see ``JobWaiter`` for what each
    means and its default)."""

    timeout: float | None
    backoff: Backoff
    statuses: Statuses
    raise_on_failure: bool
    raise_on_cancel: bool
    max_fetch_errors: int
    max_retry_after: float
    status_of: Callable[[Any], Any]
    failure_of: Callable[[Any], Any]


class WaiterOptions(JobOptions, total=False):
    """The :class:`~jobwait.JobWaiter` keywords every adapter accepts (same names and
    defaults as the constructor)."""

    job_id: str | None


class FleetOptions(JobOptions, total=False):
    """The :class:`~jobwait.JobFleet` keywords every fleet adapter accepts (same names
    and defaults as the constructor): the per-job rules and the fleet's own."""

    max_batch: int
    batch_window: float
    max_polls_per_second: int | None
    max_concurrency: int | None
    max_batch_errors: int | None
    fail_fast: bool
    use_predictions: bool
    request_timeout: float | None


#: The default of every per-job option (the ``ionq_core.polling`` contract).
JOB_DEFAULTS: Final[JobOptions] = {
    "timeout": 300.0,
    "backoff": Backoff(),
    "statuses": Statuses(),
    "raise_on_failure": True,
    "raise_on_cancel": False,
    "max_fetch_errors": 5,
    "max_retry_after": 120.0,
    "status_of": default_status_of,
    "failure_of": default_failure_of,
}

#: The per-job option names, in their documented order.
JOB_OPTIONS: Final[tuple[str, ...]] = tuple(JobOptions.__annotations__)

if set(JOB_DEFAULTS) != set(JOB_OPTIONS):  # pragma: no cover - a broken edit of this file
    raise ImportError(f"JOB_DEFAULTS {sorted(JOB_DEFAULTS)} != JobOptions {JOB_OPTIONS}")

# Options whose values are objects with a JSON form (to_json() and a constructor
# taking its keys); callables are never stored: they are passed again on restore.
_CODECS: Final[dict[str, type[Backoff] | type[Statuses]]] = {
    name: type(value)
    for name, value in JOB_DEFAULTS.items()
    if isinstance(value, Backoff | Statuses)
}


def options_to_json(options: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The JSON form of per-job options: every option except the callables (with
    ``partial``, only those ``options`` holds)."""
    out: dict[str, Any] = {}
    for name in JOB_OPTIONS:
        if partial and name not in options:
            continue
        value = options[name]
        if name in _CODECS:
            out[name] = value.to_json()
        elif not callable(value):
            out[name] = value
    return out


def options_from_json(data: Any, *, partial: bool = False, **given: Any) -> dict[str, Any]:
    """Per-job options back from :func:`options_to_json`; ``given`` supplies what
    JSON cannot hold (``status_of``, ``failure_of``, and ``rng`` for the backoff).
    With ``partial``, only the options ``data`` holds come back.

    Raises:
        KeyError, TypeError, ValueError: For a missing or invalid entry (the caller
            wraps it into the snapshot's own ``ValueError``).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"options must be an object, got {type(data).__name__}")
    rng = given.pop("rng", None)
    out: dict[str, Any] = {}
    for name in JOB_OPTIONS:
        if partial and name not in data:
            continue
        if not partial and name in given:
            out[name] = given[name]
        elif name in _CODECS:
            entry = data[name]
            if not isinstance(entry, Mapping):
                raise TypeError(f"options.{name} must be an object")
            extra = {"rng": rng} if _CODECS[name] is Backoff else {}
            out[name] = _CODECS[name](**entry, **extra)
        elif callable(JOB_DEFAULTS[name]):  # type: ignore[literal-required]
            out[name] = JOB_DEFAULTS[name]  # type: ignore[literal-required]
        else:
            value = data[name]
            default = JOB_DEFAULTS[name]  # type: ignore[literal-required]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise TypeError(f"options.{name} must be a boolean, got {value!r}")
            out[name] = value
    return out
