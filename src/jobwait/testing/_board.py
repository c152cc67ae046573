"""A simulated IonQ-v0.4-style job API as a pure object: no IO, no clock.

Theory of operation
-------------------
A :class:`JobBoard` holds scripted jobs. Time is always an input (``now=``, float
seconds on whatever clock the caller runs: virtual time in
``jobwait.testing.simulate``, ``time.monotonic()`` in
:class:`jobwait.adapters.server.JobServer`). Each job is a script: how long it
spends in ``submitted``, ``ready`` and ``started`` (in *scripted* seconds), and
how it ends (``completed``, ``failed`` or ``canceled``). ``time_scale`` says how
many scripted seconds pass per second of ``now``; at submission the script is
converted once into board-time thresholds, so a job's status at ``now`` is a
comparison against three numbers and :meth:`JobBoard.terminal_at` is exact.

:meth:`JobBoard.handle` answers an HTTP-shaped request with a :class:`Reply`.
Things a pure object cannot do itself (reset a connection, answer late, send a
short body) are instructions on the reply that the transport carries out.

Faults are data: a :class:`Fault` names a kind and when it fires. Per-job
faults are keyed by that job's poll number (the n-th GET that returns the job,
single or batch, counted from 1); server-wide faults are keyed by request number
(the n-th call of :meth:`JobBoard.handle`, counted from 1). A fault fires on
``count`` consecutive polls or requests. Fault kinds fall into three groups:

* *replacing* kinds answer instead of the API (429, 5xx, reset, html, 404,
  401, 403);
* *transforming* kinds change how the normal answer travels (slow, truncated,
  malformed_json);
* *view* kinds change one job's JSON (missing_status, null_status,
  nonstring_status, unknown_status, regress, drop).

A server-wide replacing fault answers before authentication and routing, as a
load balancer would, and no job poll is counted. When several faults match the
same poll or request, the first in script order wins.

The board is deterministic (no randomness, ids ``job-0001``, ``job-0002``, ...,
request ids ``req-000001``, ...) and not thread-safe: a threaded transport must
hold a lock around every call.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

from .._errors import JobStatusError
from .._http import ResponseError, read_response
from .._json import MAX_DEPTH
from .._json import loads as loads_json
from .._numbers import finite
from ._simulate import Fail

__all__ = ["Fault", "JobBoard", "JobScriptError", "Reply"]

#: Pending statuses in the order a job passes through them.
_PHASES = ("submitted", "ready", "started")
_OUTCOMES = ("completed", "failed", "canceled")
_STATUSES = frozenset(_PHASES + _OUTCOMES)
_DEFAULT_DURATIONS = {"submitted": 0.0, "ready": 1.0, "started": 1.0}
_DEFAULT_FAILURE = {"code": "SimulatedFailure", "message": "the job failed (simulated)"}
_JOB_TYPE = "ionq.circuit.v1"

_REPLACING = frozenset({"429", "500", "502", "503", "504", "reset", "html", "404", "401", "403"})
_TRANSFORMING = frozenset({"slow", "truncated", "malformed_json"})
_VIEW = frozenset(
    {"missing_status", "null_status", "nonstring_status", "unknown_status", "regress", "drop"}
)
_RETRY_AFTER_KINDS = frozenset({"429", "500", "502", "503", "504"})
_DEFAULT_SLOW_DELAY = 10.0
# The longest a "slow" fault may hold its answer: a day is longer than any client waits,
# and a transport's timer wait must stay far below the ~24 days selectors accept.
_MAX_DELAY = 86_400.0
# The furthest a job may end from its submission, in board seconds (about 32 million
# years): its times in job JSON (milliseconds, ISO dates) stay exact integers.
_MAX_SPAN = 1e15
_DEFAULT_UNKNOWN_STATUS = "warming_up"
_DEFAULT_NONSTRING_STATUS = 3

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Keys of a POST /jobs body: the job script, and IonQ submission fields that a
# real client sends and the board accepts and ignores.
_SCRIPT_KEYS = frozenset(
    {"id", "name", "durations", "outcome", "failure", "faults", "predicted", "metadata"}
)
_IGNORED_IONQ_KEYS = frozenset(
    {"type", "backend", "target", "input", "shots", "noise", "settings", "session_id", "dry_run"}
)
_FAULT_KEYS = frozenset(
    {"kind", "poll", "request", "count", "retry_after", "delay", "truncate_to", "status_code"}
    | {"status"}
)

# Board time 0.0 is shown as this instant in the ISO timestamps of a job's JSON
# (2025-01-01T00:00:00Z): the board has no wall clock, and timestamps are there
# only so that job JSON has IonQ's shape.
_EPOCH_SECONDS = 1_735_689_600


class JobScriptError(ValueError):
    """A job script, fault script or ``POST /jobs`` body is invalid.

    The message names the offending field. Over HTTP the board answers 400 with
    this message; fix the script and submit again.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """An HTTP answer, plus instructions the transport must carry out.

    Attributes:
        status_code: HTTP status; 0 when ``reset`` is true (there is no answer).
        headers: ``(name, value)`` pairs, names lower case. ``content-length`` is
            not included: the transport derives it from ``body``.
        body: The full body.
        reset: Close the connection abruptly (TCP RST) instead of answering.
        delay: Seconds to wait before answering.
        truncate_to: Send only this many body bytes while declaring
            ``len(body)`` as the Content-Length, then close the connection.
        fault: The fault kind that shaped this reply, for logs and tests.
    """

    status_code: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    reset: bool = False
    delay: float = 0.0
    truncate_to: int | None = None
    fault: str | None = None

    def header(self, name: str) -> str | None:
        """Return the first header called ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        """Decode the body as JSON.

        Raises:
            json.JSONDecodeError: The body is not JSON (e.g. a ``malformed_json`` fault).
        """
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour of the job API.

    Give exactly one of ``poll`` (in a job's script: that job's n-th poll,
    counting from 1) or ``request`` (server-wide: the board's n-th request,
    counting from 1). The fault fires on ``count`` consecutive polls or requests.

    Kinds (``Fault.KINDS``) and their parameters:

    * ``"429"``, ``"500"``, ``"502"``, ``"503"``, ``"504"``: that status with an
      IonQ-style JSON error body; ``retry_after`` (str sent verbatim, or a
      number sent as ``str(number)``) adds a ``Retry-After`` header.
    * ``"reset"``: the connection is reset without an answer.
    * ``"slow"``: the normal answer, ``delay`` seconds late (default 10; at most
      86,400, a day).
    * ``"truncated"``: the normal answer, but only ``truncate_to`` body bytes
      (default half) are sent under the full Content-Length.
    * ``"malformed_json"``: 200 with the first half of the JSON body.
    * ``"html"``: an HTML error page with ``status_code`` (default 502).
    * ``"missing_status"``, ``"null_status"``: the job's ``status`` key is absent
      or ``null``.
    * ``"nonstring_status"``: ``status`` is ``status`` (default ``3``), not a string.
    * ``"unknown_status"``: ``status`` is ``status`` (default ``"warming_up"``).
    * ``"regress"``: ``status`` goes back to ``status`` (default: the previous
      phase; ``started`` for a finished job, ``submitted`` stays ``submitted``).
    * ``"404"``, ``"401"``, ``"403"``: that error although the job exists.
    * ``"drop"``: the job is left out of a batch answer (a single GET gets 404).

    Raises:
        JobScriptError: (a ``ValueError``) unknown kind, a parameter the kind
            does not take, or a value out of range.
    """

    KINDS: ClassVar[tuple[str, ...]] = (
        "429", "500", "502", "503", "504", "reset", "slow", "truncated", "malformed_json",
        "html", "missing_status", "null_status", "nonstring_status", "unknown_status",
        "regress", "404", "401", "403", "drop",
    )  # fmt: skip

    kind: str
    _: KW_ONLY
    poll: int | None = None
    request: int | None = None
    count: int = 1
    retry_after: str | float | None = None
    delay: float | None = None
    truncate_to: int | None = None
    status_code: int | None = None
    status: object = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind not in self.KINDS:
            raise JobScriptError(
                f"unknown fault kind {kind!r}; expected one of {', '.join(self.KINDS)}"
            )
        if (self.poll is None) == (self.request is None):
            raise JobScriptError(f"fault {kind!r}: give exactly one of poll= or request=")
        for field in ("poll", "request", "count"):
            value = getattr(self, field)
            if value is not None and (not _is_int(value) or value < 1):
                raise JobScriptError(f"fault {kind!r}: {field} must be an int >= 1, not {value!r}")
        self._check_parameters()

    def _check_parameters(self) -> None:
        kind = self.kind
        takes = {
            "retry_after": kind in _RETRY_AFTER_KINDS,
            "delay": kind == "slow",
            "truncate_to": kind == "truncated",
            "status_code": kind == "html",
            "status": kind in {"nonstring_status", "unknown_status", "regress"},
        }
        for field, allowed in takes.items():
            if getattr(self, field) is not None and not allowed:
                raise JobScriptError(f"fault {kind!r} does not take {field}=")
        retry_after = self.retry_after
        if retry_after is not None:
            if isinstance(retry_after, str):
                if any((ord(c) < 32 and c != "\t") or ord(c) > 255 for c in retry_after):
                    raise JobScriptError(f"fault {kind!r}: retry_after cannot be sent as a header")
            elif finite(retry_after) is None:
                raise JobScriptError(
                    f"fault {kind!r}: retry_after must be a str or a finite number"
                )
        delay = None if self.delay is None else finite(self.delay)
        if self.delay is not None and (delay is None or not 0 <= delay <= _MAX_DELAY):
            raise JobScriptError(f"fault 'slow': delay must be a number from 0 to {_MAX_DELAY:g}")
        if self.truncate_to is not None and (not _is_int(self.truncate_to) or self.truncate_to < 0):
            raise JobScriptError("fault 'truncated': truncate_to must be an int >= 0")
        code = self.status_code
        if code is not None and (not _is_int(code) or not 200 <= code <= 599):
            raise JobScriptError("fault 'html': status_code must be an int from 200 to 599")
        status = self.status
        if status is None:
            return
        if kind == "unknown_status" and (not isinstance(status, str) or status in _STATUSES):
            raise JobScriptError("fault 'unknown_status': status must be a str no job API uses")
        if kind == "nonstring_status" and isinstance(status, str):
            raise JobScriptError("fault 'nonstring_status': status must not be a str")
        if kind == "regress" and status not in _STATUSES:
            raise JobScriptError(f"fault 'regress': status must be one of {sorted(_STATUSES)}")

    @classmethod
    def from_json(cls, data: object) -> Fault:
        """Build a fault from its JSON form, e.g. ``{"kind": "429", "poll": 2}``.

        The keys are the constructor's parameter names; absent keys take the
        defaults.

        Raises:
            JobScriptError: ``data`` is not an object, has an unknown key, or
                describes an invalid fault.
        """
        if not isinstance(data, Mapping):
            raise JobScriptError(f"a fault must be a JSON object, not {type(data).__name__}")
        unknown = set(data) - _FAULT_KEYS
        if unknown:
            raise JobScriptError(f"unknown fault key(s): {', '.join(sorted(map(str, unknown)))}")
        if "kind" not in data:
            raise JobScriptError("a fault needs a 'kind'")
        kind = data["kind"]
        if not isinstance(kind, str):
            raise JobScriptError(f"fault kind must be a string such as '429', not {kind!r}")
        params = {key: value for key, value in data.items() if key != "kind"}
        return cls(kind, **params)

    def to_json(self) -> dict[str, object]:
        """Return the JSON form accepted by :meth:`from_json` (defaults omitted)."""
        out: dict[str, object] = {"kind": self.kind}
        for field in sorted(_FAULT_KEYS - {"kind"}):
            value = getattr(self, field)
            if value is not None and not (field == "count" and value == 1):
                out[field] = value
        return out

    def covers(self, number: int) -> bool:
        """Return whether this fault fires on poll or request ``number``."""
        start = self.poll if self.poll is not None else self.request
        assert start is not None  # __post_init__ guarantees one of them
        return start <= number < start + self.count


@dataclass(slots=True, eq=False)
class _Job:
    id: str
    name: str | None
    metadata: dict[str, object] | None
    submitted_at: float
    ready_at: float
    started_at: float
    done_at: float
    outcome: str
    failure: dict[str, object] | None
    faults: tuple[Fault, ...]
    predicted: bool
    polls: int = 0
    canceled_at: float | None = None

    def status_at(self, now: float) -> str:
        if self.canceled_at is not None and now >= self.canceled_at:
            return "canceled"
        if now < self.ready_at:
            return "submitted"
        if now < self.started_at:
            return "ready"
        if now < self.done_at:
            return "started"
        return self.outcome

    def terminal_at(self) -> float:
        return self.canceled_at if self.canceled_at is not None else self.done_at

    def fault_at(self, poll: int) -> Fault | None:
        for fault in self.faults:
            if fault.covers(poll):
                return fault
        return None

    def view(self, now: float) -> dict[str, object]:
        """The job's IonQ v0.4 JSON at ``now`` (every key IonQ's schema requires)."""
        status = self.status_at(now)
        terminal = status in _OUTCOMES
        ran = now >= self.started_at and (
            self.canceled_at is None or self.canceled_at > self.started_at
        )
        wait_ms: int | None = None
        execution_ms: int | None = None
        if self.predicted and not terminal:
            wait_ms = _ms(max(0.0, self.started_at - now))
            execution_ms = _ms(self.done_at - max(now, self.started_at))
        end = self.terminal_at()
        return {
            "id": self.id,
            "status": status,
            "type": _JOB_TYPE,
            "name": self.name,
            "metadata": self.metadata,
            "backend": "simulator",
            "dry_run": False,
            "submitter_id": "jobwait-board",
            "project_id": None,
            "parent_job_id": None,
            "session_id": None,
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at) if ran else None,
            "completed_at": _iso(end) if terminal else None,
            "predicted_wait_time_ms": wait_ms,
            "predicted_execution_duration_ms": execution_ms,
            "execution_duration_ms": _ms(end - self.started_at) if terminal and ran else None,
            "failure": dict(self.failure) if status == "failed" and self.failure else None,
            "output": {},
            "settings": {},
            "stats": {},
            "results": None,
            "child_job_ids": None,
        }


class JobBoard:
    """A simulated IonQ-v0.4-style job API; pure, so it runs in virtual or real time.

    Args:
        time_scale: Scripted seconds that pass per second of ``now``. With
            ``time_scale=6000`` a job scripted to run ten minutes finishes 0.1 s
            of ``now`` after it starts. Predictions in job JSON are in board
            time (scripted seconds / ``time_scale``), so a client that trusts
            them polls at the right moment.
        api_key: When set, every request needs ``Authorization: apiKey <key>``
            and gets 401 otherwise. The key never appears in a reply or repr.
        faults: Server-wide faults, each keyed by ``request=``.

    Raises:
        JobScriptError: ``time_scale`` is not a finite number > 0, or a fault is
            keyed by ``poll=`` instead of ``request=``.
    """

    __slots__ = ("_api_key", "_faults", "_jobs", "_next_number", "_requests", "_time_scale")

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        api_key: str | None = None,
        faults: Iterable[Fault] = (),
    ) -> None:
        scale = finite(time_scale)
        if scale is None or scale <= 0:
            raise JobScriptError(f"time_scale must be a finite number > 0, not {time_scale!r}")
        self._time_scale = scale
        self._api_key = api_key
        self._faults = tuple(faults)
        for fault in self._faults:
            if not isinstance(fault, Fault) or fault.request is None:
                raise JobScriptError(f"server-wide faults are keyed by request=, got {fault!r}")
        self._jobs: dict[str, _Job] = {}
        self._next_number = 1
        self._requests = 0

    def __repr__(self) -> str:
        auth = "set" if self._api_key is not None else "none"
        return (
            f"JobBoard(time_scale={self._time_scale!r}, api_key=<{auth}>, "
            f"jobs={len(self._jobs)}, requests={self._requests})"
        )

    @property
    def time_scale(self) -> float:
        """Scripted seconds per second of ``now``."""
        return self._time_scale

    @property
    def request_count(self) -> int:
        """How many requests :meth:`handle` has answered (server-wide faults key on this)."""
        return self._requests

    # -- scripting -------------------------------------------------------------------

    def submit(
        self,
        *,
        now: float,
        id: str | None = None,
        durations: Mapping[str, float] | None = None,
        outcome: str = "completed",
        failure: Mapping[str, object] | None = None,
        faults: Iterable[Fault] = (),
        name: str | None = None,
        predicted: bool = True,
        metadata: Mapping[str, object] | None = None,
    ) -> str:
        """Add a scripted job, submitted at ``now``, and return its id.

        The job is ``submitted`` for ``durations["submitted"]`` scripted seconds
        (default 0.0), then ``ready`` (default 1.0), then ``started`` (default
        1.0), then ``outcome`` forever. Thresholds in board time are
        ``now + cumulative_seconds / time_scale``; a status changes exactly at
        its threshold.

        Args:
            now: Board time of submission.
            id: The job id, kept exactly as given (any non-empty string);
                default ``job-0001``, ``job-0002``, ... (skipping taken ids).
            durations: Scripted seconds per pending status; missing keys keep
                their defaults.
            outcome: ``"completed"``, ``"failed"`` or ``"canceled"``.
            failure: For ``outcome="failed"`` only: merged over the default
                ``{"code": "SimulatedFailure", "message": ...}``.
            faults: Per-job faults, each keyed by ``poll=``.
            name: Optional job name, shown in the job JSON.
            predicted: Whether pending job JSON carries ``predicted_wait_time_ms``
                and ``predicted_execution_duration_ms`` (else they are ``null``).
            metadata: Optional JSON object shown as the job's ``metadata``.

        Returns:
            The job id: poll it with :meth:`handle`, a fetcher or HTTP.

        Raises:
            JobScriptError: Any argument is invalid, or the id is taken.
        """
        if id is None:
            id = self._fresh_id()
        elif not isinstance(id, str) or not id:
            raise JobScriptError(f"id must be a non-empty string, not {id!r}")
        if id in self._jobs:
            raise JobScriptError(f"a job with id {id!r} already exists")
        if finite(now) is None:
            raise JobScriptError(f"now must be a finite number, not {now!r}")
        spans = dict(_DEFAULT_DURATIONS)
        if durations is not None:
            if not isinstance(durations, Mapping):
                raise JobScriptError("durations must map a status to seconds")
            for key, value in durations.items():
                if key not in spans:
                    raise JobScriptError(
                        f"durations: unknown status {key!r}; expected {', '.join(_PHASES)}"
                    )
                seconds = finite(value)
                if seconds is None or seconds < 0:
                    raise JobScriptError(f"durations[{key!r}] must be a finite number >= 0")
                spans[key] = seconds
        if outcome not in _OUTCOMES:
            raise JobScriptError(f"outcome must be one of {', '.join(_OUTCOMES)}, not {outcome!r}")
        failure_json: dict[str, object] | None = None
        if outcome == "failed":
            failure_json = dict(_DEFAULT_FAILURE)
            if failure is not None:
                if not isinstance(failure, Mapping):
                    raise JobScriptError("failure must be an object like {'code': ..., 'message'}")
                failure_json.update(failure)
            for key in ("code", "message"):
                if not isinstance(failure_json[key], str):
                    raise JobScriptError(f"failure[{key!r}] must be a string")
        elif failure is not None:
            raise JobScriptError("failure= is only allowed with outcome='failed'")
        fault_list = tuple(faults)
        for fault in fault_list:
            if not isinstance(fault, Fault) or fault.poll is None:
                raise JobScriptError(f"a job's faults are keyed by poll=, got {fault!r}")
        if name is not None and not isinstance(name, str):
            raise JobScriptError(f"name must be a string, not {name!r}")
        if not isinstance(predicted, bool):
            raise JobScriptError(f"predicted must be true or false, not {predicted!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise JobScriptError("metadata must be an object")
        scale = self._time_scale
        total = sum(spans.values()) / scale
        if not total <= _MAX_SPAN:  # also inf, when the sum overflows
            raise JobScriptError(
                f"durations add up to {total:g} s of board time at time_scale={scale:g}; "
                f"the most is {_MAX_SPAN:g}"
            )
        ready_at = now + spans["submitted"] / scale
        started_at = now + (spans["submitted"] + spans["ready"]) / scale
        done_at = now + (spans["submitted"] + spans["ready"] + spans["started"]) / scale
        self._jobs[id] = _Job(
            id=id,
            name=name,
            metadata=dict(metadata) if metadata is not None else None,
            submitted_at=float(now),
            ready_at=ready_at,
            started_at=started_at,
            done_at=done_at,
            outcome=outcome,
            failure=failure_json,
            faults=fault_list,
            predicted=predicted,
        )
        return id

    def submit_json(self, body: object, *, now: float) -> str:
        """Add a job from its JSON script (a ``POST /jobs`` body) and return its id.

        Keys: ``id``, ``name``, ``durations``, ``outcome``, ``failure``,
        ``predicted``, ``metadata`` as in :meth:`submit`, and ``faults``, a list
        of :meth:`Fault.from_json` objects keyed by ``poll``. IonQ submission
        keys (``type``, ``backend``, ``target``, ``input``, ``shots``, ``noise``,
        ``settings``, ``session_id``, ``dry_run``) are accepted and ignored, so
        a real client's body is a valid script.

        Raises:
            JobScriptError: ``body`` is not an object, has an unknown key, or is
                an invalid script.
        """
        if not isinstance(body, Mapping):
            raise JobScriptError(f"the job script must be a JSON object, not {type(body).__name__}")
        unknown = set(body) - _SCRIPT_KEYS - _IGNORED_IONQ_KEYS
        if unknown:
            raise JobScriptError(
                f"unknown job script key(s): {', '.join(sorted(map(str, unknown)))}"
            )
        faults = body.get("faults", [])
        if not isinstance(faults, list):
            raise JobScriptError("faults must be a list of fault objects")
        return self.submit(
            now=now,
            id=body.get("id"),
            durations=body.get("durations"),
            outcome=body.get("outcome", "completed"),
            failure=body.get("failure"),
            faults=[Fault.from_json(item) for item in faults],
            name=body.get("name"),
            predicted=body.get("predicted", True),
            metadata=body.get("metadata"),
        )

    def cancel(self, job_id: str, *, now: float) -> dict[str, object]:
        """Cancel a job at ``now``, as ``PUT /jobs/{id}/status/cancel`` does.

        A pending job becomes ``canceled`` from ``now`` on; a finished job is
        left as it is.

        Returns:
            IonQ's answer shape, ``{"id": job_id, "status": status_after}``.

        Raises:
            KeyError: No such job.
        """
        job = self._jobs[job_id]
        if job.status_at(now) not in _OUTCOMES:
            job.canceled_at = now
        return {"id": job.id, "status": job.status_at(now)}

    def _fresh_id(self) -> str:
        while True:
            candidate = f"job-{self._next_number:04d}"
            self._next_number += 1
            if candidate not in self._jobs:
                return candidate

    # -- inspection (never counts as a poll) -----------------------------------------

    def job_ids(self) -> list[str]:
        """Return every job id, in submission order."""
        return list(self._jobs)

    @staticmethod
    def job_ids_in(target: str) -> tuple[str, ...]:
        """Return the job ids a request target names, for a transport's request log.

        ``/jobs/{id}`` and ``/jobs/{id}/status/cancel`` name one id (percent-decoded),
        ``/jobs?ids=a,b`` names its ids; anything else names none. Give the target
        relative to the API's base path (``/v0.4`` removed).
        """
        return _job_ids_in_target(target)

    def job(self, job_id: str, *, now: float) -> dict[str, object]:
        """Return the job's true JSON at ``now``, without counting a poll or faults.

        Raises:
            KeyError: No such job.
        """
        return self._jobs[job_id].view(now)

    def status(self, job_id: str, *, now: float) -> str:
        """Return the job's true status at ``now``.

        Raises:
            KeyError: No such job.
        """
        return self._jobs[job_id].status_at(now)

    def polls(self, job_id: str) -> int:
        """Return how many GETs have returned this job so far (its last poll number).

        Raises:
            KeyError: No such job.
        """
        return self._jobs[job_id].polls

    def terminal_at(self, job_id: str) -> float:
        """Return the board time at which the job is (or is scheduled to be) terminal.

        Subtract it from the time a client noticed the outcome to get the
        detection delay. A later cancel can bring it forward.

        Raises:
            KeyError: No such job.
        """
        return self._jobs[job_id].terminal_at()

    def timeline(self, job_id: str) -> list[tuple[float, str]]:
        """Return when the job's status changes: ``(board time, status)`` pairs in order.

        The first pair is the status at submission; each later one is a change (what a
        webhook would announce). A status scripted for zero seconds never shows and is
        left out; a cancel cuts the rest short with ``canceled``.

        Raises:
            KeyError: No such job.
        """
        job = self._jobs[job_id]
        points = [
            (job.submitted_at, "submitted"),
            (job.ready_at, "ready"),
            (job.started_at, "started"),
            (job.done_at, job.outcome),
        ]
        if job.canceled_at is not None:
            points = [p for p in points if p[0] < job.canceled_at]
            points.append((job.canceled_at, "canceled"))
        changes: list[tuple[float, str]] = []
        for at, status in points:
            if changes and changes[-1][0] == at:
                changes[-1] = (at, status)
            else:
                changes.append((at, status))
        return changes

    # -- HTTP ------------------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        *,
        now: float,
    ) -> Reply:
        """Answer one HTTP request to the API, rooted at ``/jobs``.

        Routes: ``POST /jobs`` (body: a JSON job script, 201), ``GET /jobs/{id}``
        (id percent-decoded), ``GET /jobs?ids=a,b`` (``{"jobs": [...], "next":
        null}``, unknown ids left out; without ``ids`` every job), and
        ``PUT /jobs/{id}/status/cancel``. Unknown job or route: 404; wrong
        method: 405 with ``allow``; bad body: 400; missing or wrong API key:
        401. Every reply has an ``x-request-id`` header.

        Args:
            method: HTTP method, e.g. ``"GET"``.
            target: Request target: path and optional query string.
            headers: ``(name, value)`` pairs, names in any case.
            body: Request body.
            now: Board time of the request.

        Returns:
            The reply; the caller must honour its ``reset``, ``delay`` and
            ``truncate_to`` instructions.
        """
        self._requests += 1
        number = self._requests
        request_id = f"req-{number:06d}"
        server_fault = _first(self._faults, number)
        if server_fault is not None and server_fault.kind in _REPLACING:
            return _replacement(server_fault, request_id)
        reply = self._route(method, target, headers, body, now, request_id, server_fault)
        if server_fault is not None and server_fault.kind in _TRANSFORMING:
            reply = _transform(reply, server_fault)
        return reply

    def _route(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        now: float,
        request_id: str,
        server_fault: Fault | None,
    ) -> Reply:
        if not self._authorized(headers):
            return _error(401, "Invalid or missing API key", request_id)
        path, _, query = target.partition("?")
        parts = path.split("/")
        if len(parts) < 2 or parts[0] != "" or parts[1] != "jobs":
            return _error(404, "No such route", request_id)
        parts = parts[2:]
        if not parts:
            if method == "GET":
                return self._get_batch(query, now, request_id, server_fault)
            if method == "POST":
                return self._post(body, now, request_id)
            return _error(405, "Use GET or POST", request_id, allow="GET, POST")
        job_id = _percent_decode(parts[0])
        if len(parts) == 1 and job_id:
            if method == "GET":
                return self._get_one(job_id, now, request_id, server_fault)
            return _error(405, "Use GET", request_id, allow="GET")
        if len(parts) == 3 and job_id and parts[1:] == ["status", "cancel"]:
            if method == "PUT":
                if job_id not in self._jobs:
                    return _error(404, f"Job not found: {job_id}", request_id)
                return _json(200, self.cancel(job_id, now=now), request_id)
            return _error(405, "Use PUT", request_id, allow="PUT")
        return _error(404, "No such route", request_id)

    def _authorized(self, headers: Iterable[tuple[str, str]]) -> bool:
        if self._api_key is None:
            return True
        for name, value in headers:
            if name.lower() == "authorization":
                scheme, _, token = value.strip().partition(" ")
                return scheme.lower() == "apikey" and hmac.compare_digest(
                    token.strip().encode(), self._api_key.encode()
                )
        return False

    def _post(self, body: bytes, now: float, request_id: str) -> Reply:
        try:
            script = loads_json(body)
        except ValueError:  # not JSON, not UTF-8, or nested too deep
            return _error(
                400,
                f"The request body is not valid JSON (nested at most {MAX_DEPTH} deep)",
                request_id,
            )
        try:
            job_id = self.submit_json(script, now=now)
        except JobScriptError as exc:
            return _error(400, str(exc), request_id)
        job = self._jobs[job_id]
        return _json(201, {"id": job_id, "status": job.status_at(now)}, request_id)

    def _poll(self, job: _Job, now: float, server_fault: Fault | None) -> _Polled:
        """Count a poll of ``job`` and apply its (and the server's) view faults."""
        job.polls += 1
        polled = _Polled(view=job.view(now))
        for fault in (job.fault_at(job.polls), server_fault):
            if fault is None:
                continue
            if fault.kind in _VIEW:
                if polled.view is not None:
                    polled.view = _alter(polled.view, fault)
                    polled.altered_by = polled.altered_by or fault.kind
            elif fault is not server_fault:  # server reply faults are applied by handle()
                polled.reply_fault = fault
        return polled

    def _get_one(
        self, job_id: str, now: float, request_id: str, server_fault: Fault | None
    ) -> Reply:
        job = self._jobs.get(job_id)
        if job is None:
            return _error(404, f"Job not found: {job_id}", request_id)
        polled = self._poll(job, now, server_fault)
        if polled.view is None:
            reply = _error(404, f"Job not found: {job_id}", request_id)
        else:
            reply = _json(200, polled.view, request_id)
        return _finish(reply, [polled], request_id)

    def _get_batch(
        self, query: str, now: float, request_id: str, server_fault: Fault | None
    ) -> Reply:
        ids = _batch_ids(query)
        polls = [
            self._poll(self._jobs[job_id], now, server_fault)
            for job_id in dict.fromkeys(ids if ids is not None else self._jobs)
            if job_id in self._jobs
        ]
        views = [polled.view for polled in polls if polled.view is not None]
        return _finish(_json(200, {"jobs": views, "next": None}, request_id), polls, request_id)

    # -- simulation --------------------------------------------------------------------

    def fetcher(self, job_id: str, *, timeout: float | None = None) -> Callable[[float, int], Any]:
        """Return a fetch function for ``jobwait.testing.simulate``.

        The function ``fetch(now, poll_index)`` sends ``GET /jobs/{job_id}``
        through :meth:`handle` (with this board's API key) and translates the
        reply as an HTTP client adapter would:

        * 2xx with a JSON object: the job dict (even with a bad ``status``: the
          waiter judges it);
        * 429, 500, 502-504, 520-529: ``Fail(ResponseError, retryable=True,
          retry_after=seconds)``, with ``Retry-After`` read by
          :func:`jobwait.http.parse_retry_after` (board time 0 is 2025-01-01 UTC);
        * reset: ``Fail(ConnectionResetError, retryable=True)``;
        * slow, when ``timeout`` is set and the delay exceeds it:
          ``Fail(TimeoutError, retryable=True)`` (a delay within ``timeout``
          is ignored: the fetch cannot advance the caller's clock);
        * truncated: ``Fail(ConnectionError, retryable=True)``;
        * malformed JSON, HTML or a non-object with a 2xx status:
          ``Fail(JobStatusError, retryable=True)``;
        * any other status (401, 403, 404, ...): ``Fail(ResponseError,
          retryable=False)``.

        This is :func:`jobwait.http.read_response`, the reading the HTTP adapters use,
        so a scenario behaves the same in ``simulate`` and over HTTP.

        ``poll_index`` is accepted for the simulator's signature and ignored:
        the board counts polls itself.
        """
        path = "/jobs/" + _percent_encode(job_id)
        headers = [("authorization", f"apiKey {self._api_key}")] if self._api_key else []

        def fetch(now: float, poll_index: int) -> Any:
            return _translate(self.handle("GET", path, headers, b"", now=now), timeout, now)

        return fetch


@dataclass(slots=True)
class _Polled:
    view: dict[str, object] | None
    altered_by: str | None = None
    reply_fault: Fault | None = None


def _finish(reply: Reply, polls: Sequence[_Polled], request_id: str) -> Reply:
    """Apply the per-job reply faults of one GET: a replacing one wins over a transforming one."""
    faults = [polled.reply_fault for polled in polls if polled.reply_fault is not None]
    replacing = [fault for fault in faults if fault.kind in _REPLACING]
    if replacing:
        return _replacement(replacing[0], request_id)
    if faults:
        return _transform(reply, faults[0])
    altered = [polled.altered_by for polled in polls if polled.altered_by is not None]
    return dataclasses.replace(reply, fault=altered[0]) if altered else reply


# -- replies ---------------------------------------------------------------------------


def _json(status: int, payload: object, request_id: str, **extra: str) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("content-type", "application/json"), ("x-request-id", request_id)]
    headers.extend((name.replace("_", "-"), value) for name, value in extra.items())
    return Reply(status_code=status, headers=tuple(headers), body=body)


def _error(status: int, message: str, request_id: str, **extra: str) -> Reply:
    payload = {"error": _REASONS[status], "message": message, "statusCode": status}
    return _json(status, payload, request_id, **extra)


def _replacement(fault: Fault, request_id: str) -> Reply:
    kind = fault.kind
    if kind == "reset":
        return Reply(status_code=0, reset=True, fault=kind)
    if kind == "html":
        code = fault.status_code if fault.status_code is not None else 502
        title = f"{code} {_REASONS.get(code, 'Error')}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
        headers = (("content-type", "text/html; charset=utf-8"), ("x-request-id", request_id))
        return Reply(status_code=code, headers=headers, body=page.encode(), fault=kind)
    status = int(kind)
    extra = {}
    if fault.retry_after is not None:
        extra["retry_after"] = _header_text(fault.retry_after)
    message = {
        429: "Rate limit exceeded",
        401: "Invalid or missing API key",
        403: "Forbidden",
        404: "Not found",
    }.get(status, "Simulated server error")
    return dataclasses.replace(_error(status, message, request_id, **extra), fault=kind)


def _transform(reply: Reply, fault: Fault) -> Reply:
    kind = fault.kind
    if kind == "slow":
        delay = fault.delay if fault.delay is not None else _DEFAULT_SLOW_DELAY
        return dataclasses.replace(reply, delay=float(delay), fault=kind)
    if kind == "truncated":
        size = len(reply.body)
        keep = fault.truncate_to if fault.truncate_to is not None else size // 2
        # A "truncated" reply that sends everything would not be truncated.
        keep = max(0, min(keep, size - 1))
        return dataclasses.replace(reply, truncate_to=keep, fault=kind)
    if kind == "malformed_json":
        # A strict prefix of a JSON object text is never valid JSON.
        return dataclasses.replace(reply, body=reply.body[: len(reply.body) // 2], fault=kind)
    raise AssertionError(f"not a transforming fault: {kind}")  # pragma: no cover


def _alter(view: dict[str, object], fault: Fault) -> dict[str, object] | None:
    kind = fault.kind
    if kind == "drop":
        return None
    view = dict(view)
    if kind == "missing_status":
        del view["status"]
    elif kind == "null_status":
        view["status"] = None
    elif kind == "nonstring_status":
        view["status"] = fault.status if fault.status is not None else _DEFAULT_NONSTRING_STATUS
    elif kind == "unknown_status":
        view["status"] = fault.status if fault.status is not None else _DEFAULT_UNKNOWN_STATUS
    elif kind == "regress":
        current = view.get("status")
        if fault.status is not None:
            view["status"] = fault.status
        elif current in _OUTCOMES:
            view["status"] = "started"
        elif current in _PHASES:
            view["status"] = _PHASES[max(0, _PHASES.index(str(current)) - 1)]
        if view["status"] != "failed":
            view["failure"] = None
    return view


def _translate(reply: Reply, timeout: float | None, now: float) -> Any:
    """Translate a reply the way an HTTP client adapter would (see JobBoard.fetcher).

    Transport faults become the exceptions an HTTP client raises; everything the
    server *said* is read by the same pure function the HTTP adapters use.
    """
    if reply.reset:
        return Fail(ConnectionResetError("the job server reset the connection"))
    if timeout is not None and reply.delay > timeout:
        return Fail(TimeoutError(f"no answer within {timeout} s"))
    if reply.truncate_to is not None and reply.truncate_to < len(reply.body):
        message = f"response body ended after {reply.truncate_to} of {len(reply.body)} bytes"
        return Fail(ConnectionError(message))
    try:
        return read_response(
            reply.status_code, reply.headers, reply.body, wall_now=_EPOCH_SECONDS + now
        ).job
    except ResponseError as exc:
        return Fail(exc, retryable=exc.retryable, retry_after=exc.retry_after)
    except JobStatusError as exc:
        return Fail(exc, retryable=True)


# -- small pure helpers ----------------------------------------------------------------


def _first(faults: Sequence[Fault], number: int) -> Fault | None:
    for fault in faults:
        if fault.covers(number):
            return fault
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _header_text(value: str | float) -> str:
    return value if isinstance(value, str) else str(value)


def _ms(seconds: float) -> int:
    # Round to the microsecond first so 0.1 s is 100 ms, not 101.
    return math.ceil(round(seconds * 1000.0, 3))


def _iso(board_seconds: float) -> str:
    """Format board time as an ISO 8601 UTC timestamp (days-to-civil, H. Hinnant)."""
    total_ms = round((_EPOCH_SECONDS + board_seconds) * 1000)
    days, ms = divmod(total_ms, 86_400_000)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    hour, ms = divmod(ms, 3_600_000)
    minute, ms = divmod(ms, 60_000)
    second, ms = divmod(ms, 1000)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{ms:03d}Z"


_HEX = "0123456789ABCDEFabcdef"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _percent_decode(text: str, *, plus_is_space: bool = False) -> str:
    """Decode ``%XX`` escapes as UTF-8 (invalid bytes become U+FFFD), like ``unquote``."""
    if plus_is_space:
        text = text.replace("+", " ")
    if "%" not in text:
        return text
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex_pair(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", errors="replace")


def _is_hex_pair(pair: bytes) -> bool:
    return len(pair) == 2 and all(chr(b) in _HEX for b in pair)


def _percent_encode(text: str) -> str:
    """Encode everything but RFC 3986 unreserved characters, like ``quote(safe="")``."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def _batch_ids(query: str) -> list[str] | None:
    """The ids of ``ids=a,b`` and/or ``ids=a&ids=b`` in a query string; ``None`` if absent."""
    ids: list[str] | None = None
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        if _percent_decode(key, plus_is_space=True) == "ids":
            ids = ids if ids is not None else []
            # Decode first: httpx sends "a,b" as "a%2Cb". So ids containing a
            # comma cannot be batched (a single GET still finds them).
            ids.extend(v for v in _percent_decode(value, plus_is_space=True).split(",") if v)
    return ids


def _job_ids_in_target(target: str) -> tuple[str, ...]:
    """Return the job ids a request target names (for a transport's request log).

    ``/jobs/{id}`` and ``/jobs/{id}/status/cancel`` name one id, ``/jobs?ids=``
    names its ids; anything else names none.
    """
    path, _, query = target.partition("?")
    parts = path.split("/")
    if len(parts) < 2 or parts[0] != "" or parts[1] != "jobs":
        return ()
    if len(parts) >= 3:
        return (_percent_decode(parts[2]),) if parts[2] else ()
    return tuple(_batch_ids(query) or ())
