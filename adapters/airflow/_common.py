"""What the trigger and the operator share: the wait's description, Airflow connections
as the durable core's resolvers, the event the trigger fires and how an outcome counts.

Nothing here imports the operator's half of Airflow; the connection objects are read by
their fields (``host``, ``schema``, ``port``, ``password``), so a test may hand in any
object that has them.
"""

from __future__ import annotations

import ast
import contextvars
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from jobwait import (
    JobCanceledError,
    JobFailedError,
    JobTimeoutError,
    JobWaitError,
    Phase,
    Statuses,
)
from jobwait._durable import (
    Credential,
    SourceSpec,
    fleet_options_from_json,
    fleet_options_to_json,
)
from jobwait._plumbing import ID_LIMIT, make_fleet, preview

from .._durable import BaseUrlResolver, CredentialResolver, env_credential
from .._http.request import clean_secret

#: The format of the trigger's event payload; ``execute_complete`` refuses others.
EVENT_FORMAT: Final = "jobwait.airflow/1"

#: How a job's outcome counts for the task: ``"succeeded"``; ``"failed"`` (a failed
#: status, or ``JobFailedError``); ``"canceled"``; ``"timed_out"`` (``JobTimeoutError``);
#: ``"error"`` (it could not be read to its end: ``JobFetchError``, ``JobStatusError``,
#: ...); ``"unfinished"`` (``fail_fast`` stopped the wait first).
Verdict = Literal["succeeded", "failed", "canceled", "timed_out", "error", "unfinished"]
VERDICTS: Final[tuple[str, ...]] = (
    "succeeded",
    "failed",
    "canceled",
    "timed_out",
    "error",
    "unfinished",
)
#: What fails the task by default: every verdict but ``"succeeded"``.
FAIL_ON: Final = frozenset(VERDICTS) - {"succeeded"}

# Margin past the jobs' deadline after which Airflow's own deferral timeout fails the
# task: only a trigger that hangs (the wait ends each job by its deadline) reaches it.
DEFER_GRACE: Final = 300.0


# --- per-job log lines --------------------------------------------------------------------

# Set while a wait runs without per-job lines (the task and the reads it starts inherit
# it; nothing else in the process sees it).
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "jobwait_airflow_quiet", default=False
)


_CORE_LOG = logging.getLogger("jobwait")
_enabled_for = _CORE_LOG.isEnabledFor


def _core_enabled_for(level: int) -> bool:
    # The core's per-job lines (INFO and below: "job X: status 'ready' -> 'started'")
    # are not even made inside a quiet wait: a record dropped by a filter still costs
    # about 8 us (findCaller, makeRecord), 2,000 of them a tenth of a 1,000-job wait's
    # CPU. Warnings and errors always pass; outside a quiet wait nothing changes.
    return (level >= logging.WARNING or not _QUIET.get()) and _enabled_for(level)


if getattr(_CORE_LOG.isEnabledFor, "__name__", "") != _core_enabled_for.__name__:
    _CORE_LOG.isEnabledFor = _core_enabled_for  # type: ignore[method-assign]


@contextmanager
def per_job_lines(enabled: bool) -> Iterator[None]:
    """Keep (``enabled``) or drop the core's per-job INFO lines while the block runs, in
    this task and the ones it starts. Through Airflow's log pipeline each line costs
    about 0.1 ms: for 1,000 jobs, two thirds more CPU than the wait itself
    (tests/bench/bench_airflow.py)."""
    token = _QUIET.set(not enabled)
    try:
        yield
    finally:
        _QUIET.reset(token)


class ConnectionLike(Protocol):
    """The fields of an Airflow connection jobwait reads."""

    host: str | None
    schema: str | None
    port: int | None
    password: str | None


# --- the wait's description -----------------------------------------------------------------


def stored_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fleet options in the form a trigger's kwargs hold (``fleet_options_to_json``),
    from either form (``Backoff`` / ``Statuses`` objects, or their JSON).

    Raises:
        TypeError, ValueError: Options that cannot be stored (a callable: readers belong
            to the source's ``ApiProfile``), or malformed JSON.
    """
    given = dict(options or {})
    objects = fleet_options_from_json(
        {k: v for k, v in given.items() if k in ("backoff", "statuses") and isinstance(v, dict)}
    )
    return fleet_options_to_json({**given, **objects})


def wait_options(spec: SourceSpec, stored: Mapping[str, Any]) -> dict[str, Any]:
    """The ``JobFleet`` options a wait runs with: the profile's (``statuses``,
    ``raise_on_cancel``) under the stored ones, read back as objects, one job per
    request for a source without batch reads."""
    options = {**spec.waiter_options(), **fleet_options_from_json(stored)}
    if not spec.batch:
        options.setdefault("max_batch", 1)  # another value is refused by check_options
    return options


def check_options(spec: SourceSpec, options: Mapping[str, Any]) -> None:
    """Check every option now, by the core's own rules (``make_fleet``).

    Raises:
        TypeError: An unknown option, or ``max_batch`` other than 1 for a source that
            reads one job per request.
        ValueError: An invalid value.
    """
    make_fleet(options, one_by_one=not spec.batch)


def checked_instant(name: str, value: object, *, optional: bool = False) -> float | None:
    """A wall-clock instant in seconds since the epoch, as a float.

    Raises:
        ValueError: Not a finite number (or ``None`` where ``optional``).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}={preview(value, 60)} must be seconds since the epoch")
    return float(value)


def job_ids_from(value: object) -> list[str]:
    """The job ids an operator was given, once its templates are rendered: a list (or
    tuple) of strings or integers; an XCom pulled by a template arrives as its text
    (``"['a', 'b']"``), which is read back as a Python or JSON literal; any other string
    is one id. Repeats are dropped, the order kept.

    Raises:
        TypeError: Not a list of strings or integers.
        ValueError: An empty id.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                try:
                    value = ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    raise ValueError(
                        f"job_ids rendered to {preview(text)}, which is not a list literal: "
                        "pass job_ids=upstream_task.output, or render_template_as_native_obj"
                    ) from None
        else:
            value = [text]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise TypeError(f"job_ids must be a list of job ids (strings), not {type(value).__name__}")
    ids: list[str] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            raise TypeError(
                f"job_ids holds {preview(item, ID_LIMIT)}: each job id must be a string"
            )
        if not item:
            raise ValueError("job_ids holds an empty id")
        ids.append(item)
    return list(dict.fromkeys(ids))


# --- connections ------------------------------------------------------------------------------


def conn_ids(spec: SourceSpec) -> list[str]:
    """The Airflow connections the source needs, each once, in order."""
    found = [c.conn_id for c in spec.credentials if c.conn_id is not None]
    if spec.base_url_conn_id is not None:
        found.append(spec.base_url_conn_id)
    return list(dict.fromkeys(found))


def connection_url(conn: ConnectionLike) -> str | None:
    """A connection's base URL, as Airflow's ``HttpHook`` builds it, but ``https`` by
    default: ``host`` as it is when it has a scheme (``https://api.ionq.co/v0.4``), else
    ``<schema or https>://<host>``; ``port`` added when the host names none. ``None``
    when the connection has no host.

    Raises:
        ValueError: A port that is not a number from 1 to 65535.
    """
    host = (conn.host or "").strip()
    if not host:
        return None
    url = host if "://" in host else f"{conn.schema or 'https'}://{host}"
    port = conn.port
    if port:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"the connection's port {preview(port, 40)} is not a port number")
        parts = urlsplit(url)
        if parts.port is None:
            url = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))
    return url


def resolvers(
    connections: Mapping[str, ConnectionLike],
) -> tuple[CredentialResolver, BaseUrlResolver]:
    """The durable core's resolvers over connections read in this process: a
    credential's secret is its connection's password; a base URL, its host."""

    def secret(credential: Credential) -> str:
        if credential.conn_id is None:
            return env_credential(credential)
        password = connections[credential.conn_id].password
        if not isinstance(password, str) or not password:
            raise LookupError(
                f"Airflow connection {credential.conn_id} has no password: put the API key "
                "(or token) in its password field"
            )
        return clean_secret(password, name=f"the password of connection {credential.conn_id}")

    def base_url(conn_id: str) -> str | None:
        url: str | None = connection_url(connections[conn_id])
        return url

    return secret, base_url


# --- the event and what it means ------------------------------------------------------------


def event_payload(
    records: Mapping[str, Mapping[str, Any]],
    unfinished: Iterable[str] = (),
    stopped_by: str | None = None,
) -> dict[str, Any]:
    """The trigger's event payload (JSON, no secret): every finished job's outcome
    record, the jobs left unfinished and the job that stopped the wait (``fail_fast``).
    """
    return {
        "format": EVENT_FORMAT,
        "outcomes": dict(records),
        "unfinished": list(unfinished),
        "stopped_by": stopped_by,
    }


def verdict(outcome: Any, statuses: Statuses, status_of: Any) -> Verdict:
    """How one outcome counts for the task (see :data:`Verdict`)."""
    if isinstance(outcome, JobWaitError):
        if isinstance(outcome, JobFailedError):
            return "failed"
        if isinstance(outcome, JobCanceledError):
            return "canceled"
        if isinstance(outcome, JobTimeoutError):
            return "timed_out"
        return "error"
    try:
        phase = statuses.phase(status_of(outcome))
    except Exception:  # noqa: BLE001 - a reader that raises on a finished job: not a success
        return "error"
    if phase is Phase.SUCCEEDED:
        return "succeeded"
    if phase is Phase.FAILED:
        return "failed"
    if phase is Phase.CANCELED:
        return "canceled"
    return "error"


def checked_fail_on(fail_on: Iterable[str]) -> frozenset[str]:
    """``fail_on`` as a set of verdicts.

    Raises:
        ValueError: A name that is not a verdict.
    """
    if isinstance(fail_on, str):
        fail_on = (fail_on,)
    chosen = frozenset(fail_on)
    unknown = sorted(chosen - set(VERDICTS))
    if unknown:
        raise ValueError(f"fail_on={preview(unknown)}: each must be one of {', '.join(VERDICTS)}")
    return chosen
