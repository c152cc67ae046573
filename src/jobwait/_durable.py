"""The engine-neutral durable core: what a durable wait saves and reads, as plain data.

Theory of operation
===================

A durable wait outlives the process that started it: an engine (Celery workers with
Redis, an Airflow triggerer) saves its state, and any process of any version that
reads the saved state must understand it or refuse it with a typed error. This module
holds the three things every such engine saves, and nothing that does IO:

- **Outcome records**: one finished job's outcome as a JSON object, the one format
  every engine stores and hands to callbacks (:func:`outcome_record`,
  :func:`outcome_of`)::

      {"job": <payload or null>, "status": "completed", "polls": 4}
      {"error": <error_to_json(...)>, "polls": 4}

  An error keeps its exact class, reason, context, notes and a structured cause
  (:func:`jobwait._errors.error_to_json`, the same form fleet snapshots use).
  :func:`outcome_of` also reads the records ``jobwait.celery/1`` wrote.
- **Source descriptions**: where a worker reads job statuses from, as data that can
  travel in a task message or a trigger's kwargs (:class:`SourceSpec`): an
  :class:`~jobwait.ApiProfile` name, URL templates for single and batch reads, and
  where each credential comes from (:class:`Credential`: an environment variable or an
  engine's connection id), never a credential itself. The process that runs the wait
  builds the HTTP reads from it (``jobwait.adapters._durable.build_source``).
- **Fleet state**: a shard's or trigger's :class:`~jobwait.JobFleet`, saved and
  restored on one wall clock so deadlines keep counting (:func:`new_fleet_snapshot`,
  :func:`fleet_snapshot`, :func:`restore_fleet`), stored as zlib-compressed JSON
  (:func:`pack`, :func:`unpack`), with its options as JSON
  (:func:`fleet_options_to_json`, :func:`fleet_options_from_json`). An engine that
  cannot save a fleet as it goes (an Airflow trigger keeps only the arguments it was
  created with) rebuilds it from its description with :func:`resume_fleet`.

Everything read back is checked where it enters: JSON nested too deep, numbers out of
range, fields of the wrong type and oversized blobs raise ``ValueError`` (or
``TypeError`` where documented), never ``RecursionError``, ``OverflowError`` or
``KeyError``.
"""

from __future__ import annotations

import importlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._backoff import Backoff
from ._errors import (
    CORE_ERROR_NAMES,
    JobWaitError,
    error_from_json,
    error_to_json,
    is_json,
)
from ._fleet import JobFleet
from ._numbers import check_count, check_number
from ._options import JOB_OPTIONS, options_from_json
from ._profiles import ApiProfile, check_template
from ._statuses import Statuses, default_failure_of, default_status_of
from ._text import ID_LIMIT, preview

__all__ = [
    "MAX_SNAPSHOT_SIZE",
    "Credential",
    "SourceSpec",
    "fleet_options_from_json",
    "fleet_options_to_json",
    "fleet_snapshot",
    "load_json",
    "new_fleet_snapshot",
    "outcome_kind",
    "outcome_of",
    "outcome_record",
    "pack",
    "record_json",
    "restore_fleet",
    "resume_fleet",
    "unpack",
]

_MAX_TEXT: Final = 500

# --- local checks (issue 20 item 1): the lead points these at the core's shared checks
# --- for nesting depth and number size when merging; one function per concern.


def _refuse_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity; jobwait writes allow_nan=False, so either is
    # foreign data.
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str | bytes | bytearray, what: str) -> Any:
    """``text`` parsed as JSON that jobwait could have written.

    Nesting is bounded where the text enters: the C parser raises ``RecursionError``
    at the interpreter's recursion limit before it builds anything, and that is turned
    into ``ValueError`` here, at the one place data comes in. ``NaN`` and ``Infinity``
    are refused; integers past 4,300 digits are refused by the parser itself.

    Raises:
        ValueError: Not UTF-8 JSON, nested too deep, or a non-finite constant; the
            message names ``what``.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to be jobwait's") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, the digit limit
        raise ValueError(f"{what} is not JSON: {str(exc)[:200]}") from None


# --- end of local checks ----------------------------------------------------------------


# --- outcome records ------------------------------------------------------------------


def outcome_kind(outcome: Any, status_of: Callable[[Any], Any]) -> str:
    """What an engine counts an outcome as: the job's status (``"completed"``,
    ``"failed"``, ...; ``"done"`` when unreadable) or the error's class name
    (``"JobTimeoutError"``, ...). Never raises."""
    if isinstance(outcome, JobWaitError):
        return type(outcome).__name__
    try:
        status = status_of(outcome)
    except Exception:  # noqa: BLE001 - a status reader that raises only loses the label
        return "done"
    return status if isinstance(status, str) and status else "done"


def outcome_record(
    outcome: Any, *, status_of: Callable[[Any], Any] = default_status_of, polls: int | None = None
) -> tuple[str, dict[str, Any]]:
    """``(kind, record)`` for one finished job: the record every engine stores.

    A job is ``{"job": payload, "status": kind, "polls": polls}`` (a payload that is not
    plain JSON, :func:`jobwait._errors.is_json`, is stored as ``null`` with its status);
    an error is ``{"error": error_to_json(error), "polls": error.polls}``. ``kind`` is
    :func:`outcome_kind`.

    Args:
        outcome: The fleet's outcome for the job (``Finished.outcome``).
        status_of: Reads a job's status (the source's reader).
        polls: Status reads made for the job (``JobFleet.polls(job_id)``).
    """
    kind = outcome_kind(outcome, status_of)
    if isinstance(outcome, JobWaitError):
        return kind, {"error": error_to_json(outcome), "polls": outcome.polls}
    job = outcome if is_json(outcome, tuples=True) else None
    return kind, {"job": job, "status": kind, "polls": polls}


def record_json(record: Mapping[str, Any]) -> str:
    """A record as stored: compact JSON (never pickle)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def _legacy_error(record: Mapping[str, Any]) -> dict[str, Any]:
    # jobwait.celery/1 wrote {"error": <class name>, "class", "reason", "context",
    # "extra", "cause": {"type", "message"} | null, "notes"}: the same fields, laid out
    # differently; read as today's form.
    name = record["error"]
    context = record["context"]
    extra = record.get("extra") or {}
    if not isinstance(context, dict) or not isinstance(extra, dict):
        raise TypeError("context and extra must be objects")
    return {
        "type": name if name in CORE_ERROR_NAMES else "JobWaitError",
        "class": record.get("class"),
        "reason": record["reason"],
        "context": {**context, **extra},
        "notes": record.get("notes") or [],
        "cause": record.get("cause"),
    }


def outcome_of(record: Mapping[str, Any] | str | bytes) -> Any:
    """Rebuild an outcome from its record (:func:`outcome_record`): the job payload, or
    the :class:`~jobwait.JobWaitError` it ended with (its exact class when loaded here,
    the same reason and context attributes, its ``__cause__`` a
    :class:`~jobwait._errors.RemoteError` naming the original exception).

    Reads today's records and those ``jobwait.celery/1`` wrote.

    Args:
        record: The stored JSON text, or the object it parses to (what ``on_done``
            callbacks receive).

    Raises:
        ValueError: The record is not JSON, or is malformed: a field of the wrong type,
            a number out of range, a payload nested past 64 levels (the message says
            which).
        TypeError: The record is not a JSON object.
    """
    if isinstance(record, str | bytes | bytearray):
        record = load_json(record, "a stored outcome")
    if not isinstance(record, Mapping):
        raise TypeError(f"a stored outcome must be a JSON object, got {type(record).__name__}")
    try:
        if "job" in record:
            job = record["job"]
            status, polls = record.get("status"), record.get("polls")
            if status is not None and not isinstance(status, str):
                raise TypeError("status must be a string")
            if polls is not None:
                check_count("polls", polls)
            if not is_json(job):
                raise ValueError("the job payload is not plain JSON within 64 levels")
            return job
        described = record["error"]
        if isinstance(described, str):
            described = _legacy_error(record)
        return error_from_json(described)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a stored outcome is malformed: {exc!r}"[:_MAX_TEXT]) from None


# --- source descriptions ----------------------------------------------------------------


_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _is_conn_id(value: object) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= 250 and all(32 < ord(c) < 127 for c in value)
    )


_MAX_HEADERS: Final = 64


def _static_headers(headers: Any) -> tuple[tuple[str, str], ...]:
    # Non-secret headers, as (name, value) pairs: a mapping or pairs in, pairs out.
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    if len(pairs) > _MAX_HEADERS:
        raise ValueError(f"SourceSpec(headers=...) holds {len(pairs)} headers; at most 64")
    out: list[tuple[str, str]] = []
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"SourceSpec(headers=...) holds {preview(pair)}, not a (name, value)")
        name, value = pair
        if not isinstance(name, str) or not _HEADER.fullmatch(name):
            raise ValueError(
                f"SourceSpec(headers=...) names {preview(name, ID_LIMIT)}, not an HTTP header"
            )
        if (
            not isinstance(value, str)
            or len(value) > 4096
            or not all(32 <= ord(c) < 127 for c in value)
        ):
            raise ValueError(
                f"SourceSpec(headers=...): the value of {name} must be printable ASCII "
                "(at most 4,096 characters)"
            )
        out.append((name, value))
    return tuple(out)


_PROFILE_PATH: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*")


def _profile_named(api: object) -> ApiProfile:
    """A built-in profile's name, or ``"package.module:NAME"`` imported here."""
    if not isinstance(api, str) or ":" not in api:
        return ApiProfile.named(api)  # type: ignore[arg-type]  # it names what is wrong
    if not _PROFILE_PATH.fullmatch(api):
        raise ValueError(
            f"SourceSpec(api={preview(api, ID_LIMIT)}) must be a profile name or 'module:NAME'"
        )
    module_name, _, attribute = api.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"SourceSpec(api={preview(api, ID_LIMIT)}): {type(exc).__name__}: "
            f"{preview(str(exc), quote=False)}; the module must be importable where the "
            "wait runs"
        ) from None
    if not isinstance(found, ApiProfile):
        raise ValueError(  # noqa: TRY004 - one documented error for a bad description
            f"SourceSpec(api={preview(api, ID_LIMIT)}) names a {type(found).__name__}, "
            "not an ApiProfile"
        )
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """Where one secret request header comes from, never the secret itself.

    The process that runs the wait resolves it (``jobwait.adapters._durable``: an
    environment variable by default; an engine supplies a resolver for connection ids)
    and sends ``header: <scheme> <secret>``.

    Args:
        header: The request header (default ``Authorization``).
        scheme: Written before the secret with one space (``"apiKey"``, ``"Bearer"``);
            ``""`` (default) sends the secret alone.
        env: The environment variable holding the secret.
        conn_id: An engine's connection id holding it (Airflow: a connection whose
            password is the secret). Exactly one of ``env`` and ``conn_id``.

    Raises:
        ValueError: Neither or both of ``env`` and ``conn_id``, a header name that is
            not an HTTP token, a scheme with whitespace, or an invalid variable name.
    """

    header: str = "Authorization"
    scheme: str = ""
    env: str | None = None
    conn_id: str | None = None

    def __post_init__(self) -> None:
        if (self.env is None) == (self.conn_id is None):
            raise ValueError("Credential needs exactly one of env= and conn_id=")
        if not isinstance(self.header, str) or not _HEADER.fullmatch(self.header):
            raise ValueError(
                f"Credential(header={preview(self.header, ID_LIMIT)}) is not an HTTP header"
            )
        if not isinstance(self.scheme, str) or not all(33 <= ord(c) < 127 for c in self.scheme):
            raise ValueError(
                f"Credential(scheme={preview(self.scheme, ID_LIMIT)}) must be one ASCII word"
            )
        if self.env is not None and (
            not isinstance(self.env, str) or not _ENV_NAME.fullmatch(self.env)
        ):
            raise ValueError(
                f"Credential(env={preview(self.env, ID_LIMIT)}) is not a variable name"
            )
        if self.conn_id is not None and not _is_conn_id(self.conn_id):
            raise ValueError(
                f"Credential(conn_id={preview(self.conn_id, ID_LIMIT)}) is not a connection id"
            )

    @property
    def where(self) -> str:
        """Where the secret is read, for messages: ``"env IONQ_API_KEY"``."""
        return f"env {self.env}" if self.env is not None else f"connection {self.conn_id}"

    def to_json(self) -> dict[str, str]:
        """The JSON form (names only: no secret)."""
        out = {"header": self.header, "scheme": self.scheme}
        if self.env is not None:
            out["env"] = self.env
        else:
            out["conn_id"] = self.conn_id or ""
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpec:
    """A job API to read statuses from, described as data that travels (a task
    message, a trigger's serialized kwargs, Redis): never a credential, never a
    callable.

    URL templates (a small part of RFC 6570), absolute or relative to ``base_url``:

    - ``url`` reads one job: ``{id}`` is the job id percent-encoded as one path segment
      (``/`` and ``.`` included), e.g. ``"/jobs/{id}"``.
    - ``batch_url`` reads many: ``{ids}`` is the comma-separated encoded ids
      (``"/jobs?ids={ids}"``); ``{?name*}`` / ``{&name*}`` repeat a query parameter
      per id (``"/jobs{?ids*}"`` -> ``/jobs?ids=a&ids=b``, IonQ's batch read).

    Reads go to ``batch_url`` when it is set (one request per batch of up to
    ``max_batch`` ids), else to ``url`` one id per request.

    The base URL is, in order: ``base_url_env``'s value where the wait runs (when set
    and not empty), the host of the engine's connection ``base_url_conn_id`` (when it
    has one), ``base_url``.

    Args:
        api: An :class:`~jobwait.ApiProfile`: a built-in one's name (``"ionq"``,
            ``"azure"``, see ``ApiProfile.names()``), or your own as
            ``"package.module:NAME"``, imported where the description is read (the
            module must be importable there, as an Airflow trigger's class is). Its
            vocabulary, readers, HTTP rules and batch reader read every answer.
            ``None``: jobwait's defaults (IonQ-shaped jobs).
        base_url: Root the templates are relative to (``""``: they are absolute).
        base_url_env: An environment variable that, when set where the wait runs,
            replaces ``base_url``.
        base_url_conn_id: An engine's connection whose host, when it has one, replaces
            ``base_url`` (Airflow: the connection's host, schema and port).
        url: The single read's template.
        batch_url: The batch read's template.
        cancel_url: A template with ``{id}`` to cancel a job with ``cancel_method``
            (``None``: the source cannot cancel).
        cancel_method: ``"PUT"`` (default), ``"POST"`` or ``"DELETE"``.
        credentials: The secret headers (:class:`Credential`).
        headers: Headers sent with every request that are not secret, as
            ``(name, value)`` pairs or a mapping (``{"Accept": "application/json"}``);
            they travel with the description, so never put a secret here.
        max_body_size: Largest answer read, after decompression (default 16 MiB).
        timeout: Seconds per request phase (default 30); ``connect_timeout`` for the
            connect phase (default 10).

    Raises:
        ValueError: An unknown profile name (or a ``"module:NAME"`` that does not import
            or is not an ``ApiProfile``), neither ``url`` nor ``batch_url``, a template
            without its marker, a header given twice (credentials and ``headers``
            together), a header that is not an HTTP token or a value that is not
            printable ASCII, or a bad number.
        TypeError: A credential that is not a :class:`Credential`.
    """

    api: str | None = None
    base_url: str = ""
    base_url_env: str | None = None
    base_url_conn_id: str | None = None
    url: str | None = None
    batch_url: str | None = None
    cancel_url: str | None = None
    cancel_method: str = "PUT"
    credentials: tuple[Credential, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    max_body_size: int = 16 * 1024 * 1024
    timeout: float = 30.0
    connect_timeout: float = 10.0
    _profile: ApiProfile | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.api is not None:
            object.__setattr__(self, "_profile", _profile_named(self.api))
        if self.url is None and self.batch_url is None:
            raise ValueError("SourceSpec needs url= (one job per read) or batch_url= (many)")
        if self.url is not None:
            check_template("SourceSpec(url=...)", self.url, batch=False)
        if self.batch_url is not None:
            check_template("SourceSpec(batch_url=...)", self.batch_url, batch=True)
        if self.cancel_url is not None:
            check_template("SourceSpec(cancel_url=...)", self.cancel_url, batch=False)
        if self.cancel_method not in ("PUT", "POST", "DELETE"):
            raise ValueError(f"SourceSpec(cancel_method={preview(self.cancel_method, ID_LIMIT)})")
        if not isinstance(self.base_url, str) or len(self.base_url) > 4096:
            raise ValueError("SourceSpec(base_url=...) must be a string")
        if self.base_url_env is not None and not (
            isinstance(self.base_url_env, str) and _ENV_NAME.fullmatch(self.base_url_env)
        ):
            raise ValueError(f"SourceSpec(base_url_env={preview(self.base_url_env, ID_LIMIT)})")
        if self.base_url_conn_id is not None and not _is_conn_id(self.base_url_conn_id):
            raise ValueError(
                f"SourceSpec(base_url_conn_id={preview(self.base_url_conn_id, ID_LIMIT)}) is "
                "not a connection id"
            )
        credentials = tuple(self.credentials)
        if not all(isinstance(c, Credential) for c in credentials):
            raise TypeError("SourceSpec(credentials=...) takes Credential objects")
        static = _static_headers(self.headers)
        names = [c.header.lower() for c in credentials] + [name.lower() for name, _ in static]
        if len(set(names)) != len(names):
            raise ValueError("SourceSpec(credentials=..., headers=...) name one header twice")
        object.__setattr__(self, "credentials", credentials)
        object.__setattr__(self, "headers", static)
        check_count("SourceSpec(max_body_size=...)", self.max_body_size)
        for name in ("timeout", "connect_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"SourceSpec({name}={preview(value, 40)}) must be > 0")
            if not value < 86400:
                raise ValueError(f"SourceSpec({name}=...) must be under a day")

    @property
    def batch(self) -> bool:
        """Whether one read is one request for many ids (``batch_url`` is set)."""
        return self.batch_url is not None

    @property
    def profile(self) -> ApiProfile | None:
        """The :class:`~jobwait.ApiProfile` ``api`` names (``None`` without one)."""
        return self._profile

    @property
    def status_of(self) -> Callable[[Any], Any]:
        """The profile's status reader (default: the ``status`` field)."""
        return default_status_of if self._profile is None else self._profile.status_of

    @property
    def failure_of(self) -> Callable[[Any], Any]:
        """The profile's failure reader (default: the ``failure`` field)."""
        return default_failure_of if self._profile is None else self._profile.failure_of

    def waiter_options(self) -> dict[str, Any]:
        """The profile's waiter options that can be stored (``statuses``,
        ``raise_on_cancel``); an engine puts them under the caller's options. Its
        readers are callables: the process running the wait takes them from here
        (:attr:`status_of`, :attr:`failure_of`)."""
        if self._profile is None:
            return {}
        return {
            "statuses": self._profile.statuses,
            "raise_on_cancel": self._profile.raise_on_cancel,
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON form, for a task message or a trigger's kwargs (no secret)."""
        return {
            "api": self.api,
            "base_url": self.base_url,
            "base_url_env": self.base_url_env,
            "base_url_conn_id": self.base_url_conn_id,
            "url": self.url,
            "batch_url": self.batch_url,
            "cancel_url": self.cancel_url,
            "cancel_method": self.cancel_method,
            "credentials": [c.to_json() for c in self.credentials],
            "headers": [[name, value] for name, value in self.headers],
            "max_body_size": self.max_body_size,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
        }

    @classmethod
    def from_json(cls, data: Any) -> SourceSpec:
        """Read :meth:`to_json`'s form back.

        Raises:
            ValueError: ``data`` is not such a form (the message says why).
        """
        try:
            if not isinstance(data, Mapping):
                raise TypeError(f"a source description is an object, not {type(data).__name__}")
            unknown = set(data) - set(_SPEC_FIELDS)
            if unknown:
                raise ValueError(f"unknown field(s) {preview(sorted(unknown), ID_LIMIT)}")
            entries = data.get("credentials") or []
            if not isinstance(entries, list):
                raise TypeError("credentials must be a list")
            credentials = []
            for entry in entries:
                if not isinstance(entry, Mapping) or set(entry) - _CREDENTIAL_FIELDS:
                    raise TypeError(
                        "each credential is an object of header, scheme, env or conn_id"
                    )
                credentials.append(Credential(**entry))
            headers = data.get("headers") or []
            if not isinstance(headers, list) or not all(
                isinstance(pair, list) and len(pair) == 2 for pair in headers
            ):
                raise TypeError("headers must be a list of [name, value] pairs")
            fields = {k: v for k, v in data.items() if k not in ("credentials", "headers")}
            return cls(
                **fields,
                credentials=tuple(credentials),
                headers=tuple((name, value) for name, value in headers),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a jobwait source description: {exc}"[:_MAX_TEXT]) from None


_SPEC_FIELDS: Final = (
    "api",
    "base_url",
    "base_url_env",
    "base_url_conn_id",
    "url",
    "batch_url",
    "cancel_url",
    "cancel_method",
    "credentials",
    "headers",
    "max_body_size",
    "timeout",
    "connect_timeout",
)
_CREDENTIAL_FIELDS: Final = frozenset({"header", "scheme", "env", "conn_id"})


# --- fleet state ------------------------------------------------------------------------

#: Largest snapshot :func:`unpack` inflates (a guard against a zlib bomb in storage).
MAX_SNAPSHOT_SIZE: Final = 512 * 1024 * 1024


def new_fleet_snapshot(
    options: Mapping[str, Any], ids: Iterable[str], now: float
) -> dict[str, Any]:
    """The snapshot of a new fleet with ``options`` and ``ids`` added at ``now`` (the
    engine's wall clock: Redis ``TIME``, the triggerer's ``time.time()``).

    Raises:
        TypeError, ValueError: Invalid options (from ``JobFleet``).
    """
    fleet = JobFleet(**options)
    fleet.add(ids, now=now)
    return fleet_snapshot(fleet)


def fleet_snapshot(fleet: JobFleet) -> dict[str, Any]:
    """``fleet.snapshot()`` without the outcomes already handed out.

    The engine records every outcome the fleet handed out (``Finished``) in the same
    save as the snapshot, so the snapshot keeps only the jobs still waiting (and any
    outcome not handed out yet).
    """
    snapshot = fleet.snapshot()
    if not snapshot.get("pending"):
        snapshot["results"] = {}
        snapshot["polls"] = {}
    return snapshot


def restore_fleet(
    snapshot: Any,
    *,
    now: float,
    status_of: Callable[[Any], Any] = default_status_of,
    failure_of: Callable[[Any], Any] = default_failure_of,
) -> JobFleet:
    """The fleet saved in ``snapshot``, on the same wall clock, at ``now``: deadlines
    kept counting while it was stored (``JobFleet.restore(..., same_clock=True)``).

    Args:
        status_of, failure_of: The source's readers (callables are never stored).

    Raises:
        ValueError: A corrupted, truncated or foreign snapshot (names what is wrong).
    """
    try:
        return JobFleet.restore(
            snapshot, now=now, same_clock=True, status_of=status_of, failure_of=failure_of
        )
    except OverflowError as exc:
        # Local check (issue 20 item 1): until JobFleet.restore checks number sizes
        # itself (the shared checks), a stored number past a float's range is refused
        # here, at the one place a stored fleet enters.
        raise ValueError(f"a stored fleet snapshot holds a number out of range: {exc}") from None


def resume_fleet(
    options: Mapping[str, Any],
    ids: Iterable[str],
    *,
    started: float,
    now: float,
    status_of: Callable[[Any], Any] = default_status_of,
    failure_of: Callable[[Any], Any] = default_failure_of,
) -> JobFleet:
    """The fleet of a wait that began at ``started`` and of which only its description
    was kept (its ``options`` and ``ids``, no saved state), continued at ``now``, both on
    one wall clock: what an engine runs that cannot save a fleet as it goes, such as an
    Airflow trigger re-created from its arguments after a triggerer restart.

    - Every job keeps its deadline, ``started + timeout``.
    - Every job is read once, at once (due together, so they share batch reads). For a
      job whose deadline passed, that read is its last, owed poll (as
      :func:`restore_fleet`): it ends with its job if it finished, else with
      ``JobTimeoutError``.
    - Then each job still waiting follows its schedule from the interval the schedule had reached by
      ``now`` (:meth:`Backoff.interval_after(now - started)
      <jobwait.Backoff.interval_after>`), not from ``initial``: a restart costs one read
      per job, not a new ramp of quick polls.

    At ``now == started`` this is the fleet a fresh wait starts with. What the lost
    state held (outcomes already handed out, poll counts, holds, budget windows) is
    not known: outcomes are found again by the first read, and ``polls`` counts the
    reads made since ``now``.

    Args:
        options: ``JobFleet`` options (``timeout`` counts from ``started``).
        ids: The jobs.
        started: When the wait began, on the wall clock.
        now: The wall clock now (``started`` for a new wait).
        status_of, failure_of: The source's readers.

    Raises:
        TypeError, ValueError: Invalid options (from ``JobFleet``), or ``started`` or
            ``now`` not a finite number.
    """
    started = check_number("resume_fleet(started=...)", started)
    now = check_number("resume_fleet(now=...)", now)
    snapshot = new_fleet_snapshot(options, ids, started)
    schedule = snapshot["options"]["backoff"]
    reached = Backoff(
        initial=schedule["initial"], factor=schedule["factor"], max=schedule["max"]
    ).interval_after(now - started)
    # Due now, not at `started`: the fleet schedules a poll held past its due time as if
    # it had not been held, and these reads were never held, only not made.
    due = max(0.0, now - started)
    for entry in snapshot["jobs"]:
        entry["interval"] = entry["previous_sleep"] = reached
        entry["due"] = due
    return restore_fleet(snapshot, now=now, status_of=status_of, failure_of=failure_of)


def pack(snapshot: Mapping[str, Any]) -> bytes:
    """A snapshot as stored: compact JSON, zlib-compressed (never pickle)."""
    text = json.dumps(snapshot, separators=(",", ":"), allow_nan=False)
    return zlib.compress(text.encode(), 1)  # level 1: ~4x faster than 6, ~10% larger


def unpack(blob: bytes, *, max_size: int = MAX_SNAPSHOT_SIZE) -> Any:
    """Read what :func:`pack` wrote, inflating at most ``max_size`` bytes.

    Raises:
        ValueError: The blob is not zlib-compressed JSON, inflates past ``max_size``
            (a bomb), or is nested too deeply (names which).
    """
    if not isinstance(blob, bytes | bytearray):
        raise ValueError(  # noqa: TRY004 - one documented error for anything stored
            f"a stored snapshot must be bytes, got {type(blob).__name__}"
        )
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(blob, max_size)
    except zlib.error as exc:
        raise ValueError(f"a stored snapshot is not zlib data: {exc}") from None
    if inflate.unconsumed_tail:
        raise ValueError(f"a stored snapshot inflates past {max_size} bytes")
    return load_json(text, "a stored snapshot")


def fleet_options_to_json(options: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`~jobwait.JobFleet` options as JSON (``backoff`` and ``statuses`` in their
    ``to_json()`` form), for an engine to store or serialize.

    Raises:
        TypeError: A ``backoff`` that is not a :class:`~jobwait.Backoff`, a ``statuses``
            that is not a :class:`~jobwait.Statuses`, or a callable (``status_of``,
            ``failure_of``: they belong to the source, which every process builds).
        ValueError: A value that is not plain JSON.
    """
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name == "backoff":
            if not isinstance(value, Backoff):
                raise TypeError(f"backoff must be a jobwait.Backoff, not {type(value).__name__}")
            out[name] = value.to_json()
        elif name == "statuses":
            if not isinstance(value, Statuses):
                raise TypeError(f"statuses must be a jobwait.Statuses, not {type(value).__name__}")
            out[name] = value.to_json()
        elif callable(value):
            raise TypeError(
                f"{name}= is a callable and cannot be stored: give it to the source (its "
                "ApiProfile, or the reader overrides of the process that builds it)"
            )
        elif not is_json(value):
            raise ValueError(f"{name}={preview(value, ID_LIMIT)} is not plain JSON")
        else:
            out[name] = value
    return out


def fleet_options_from_json(data: Any) -> dict[str, Any]:
    """Options back from :func:`fleet_options_to_json` (``backoff`` and ``statuses`` as
    objects; the rest as stored, checked when a ``JobFleet`` is built from them).

    Raises:
        ValueError: ``data`` is not such a form.
    """
    if not isinstance(data, Mapping):
        raise ValueError(  # noqa: TRY004 - one documented error for anything stored
            f"fleet options must be an object, got {type(data).__name__}"
        )
    try:
        jobs = options_from_json({k: v for k, v in data.items() if k in JOB_OPTIONS}, partial=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"stored fleet options are malformed: {exc}"[:_MAX_TEXT]) from None
    return {**{k: v for k, v in data.items() if k not in JOB_OPTIONS}, **jobs}
