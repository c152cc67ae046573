"""The scripted job server: one script per job id, answering single and batch reads.

A script is a tuple of :class:`Step`. Every request that *meets* a step of a job
consumes it (the last step repeats for ever), and the server records the time: those
times are the job's **poll times**, what the matrix compares between paths.

Two reads, one script (the IonQ API, which the httpx paths use too):

- ``GET /v0.4/jobs/{id}`` (single read): meets the job's next step and answers it as is:
  the job's JSON, an HTTP error, a reset connection, a body that is not JSON or not an
  object, or an answer that stalls.
- ``GET /v0.4/jobs?ids=a&ids=b`` (batch read), answering ``{"jobs": [...]}``:

  * with **one** id, the request is about that job alone: it meets the job's step and
    the step is the answer of the whole request (a job becomes ``{"jobs": [job]}``; a
    503, a reset, a stall, a non-JSON body is the whole answer), exactly what a server
    that crashed on that job would send;
  * with **several** ids, each job whose next step is a job answer (a 2xx JSON object)
    meets it and is listed; a job whose next step is a fault (an HTTP error, a reset, a
    stall, a body that is not a JSON object) is **left out, and its step is not
    consumed**: the next request carrying that job meets it. Unknown ids are left out.

Why this rule (and not "one faulty job fails the whole batch"): the matrix compares
every caller with its own lone wait, neighbours included. If one job's 503 failed the
batch, its 20 neighbours (plain scripts that never fail alone) would see a failure
they never see alone, and no implementation could keep their promises: the comparison
would measure the rule, not the code. Left out without consuming, the fault waits for
the job's next request, so a shared wait that reads a left-out job alone (the lone
wait's own request) meets exactly the lone sequence, and one that does not is caught
(its polls, times, error and chain differ). A batch of one id stays faithful to a real
server (the fault is the whole answer), so the fleets, which batch even a single job,
meet the same faults as the lone wait.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from jobwait.adapters.httpx import current_runtime

__all__ = [
    "BASE_URL",
    "ScriptedServer",
    "Step",
    "body",
    "http",
    "job",
    "reset",
    "stall",
    "text",
]

BASE_URL = "https://api.test/v0.4"
#: A stalled answer drips one byte this often (virtual seconds), so a sync request,
#: which checks its whole-request bound after each read, is cut within this long.
DRIP = 0.01


@dataclass(frozen=True)
class Step:
    """One answer of a job's script.

    ``kind``: ``"job"`` (200 with the job's JSON: ``{"id", "status", **fields}``,
    ``status=None`` leaves the status out), ``"http"`` (``code``, optional
    ``Retry-After``), ``"reset"`` (the connection drops: ``httpx.ReadError``),
    ``"text"`` (200, a body that is not JSON), ``"json"`` (200, ``payload`` as the body,
    e.g. a list), ``"stall"`` (``then`` answered after ``seconds``).
    """

    kind: str
    status: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    code: int = 200
    retry_after: str | None = None
    payload: Any = None
    seconds: float = 0.0
    then: Step | None = None

    @property
    def is_answer(self) -> bool:
        """Whether a batch lists this step (a 2xx JSON object for the job)."""
        return self.kind == "job"

    def label(self) -> str:
        if self.kind == "job":
            return str(self.status)
        if self.kind == "http":
            return f"{self.code}" + (f"(ra={self.retry_after})" if self.retry_after else "")
        if self.kind == "stall":
            return f"stall {self.seconds:g}s->{self.then.label() if self.then else ''}"
        return self.kind


def job(status: str | None, **fields: Any) -> Step:
    return Step("job", status=status, fields=fields)


def http(code: int, retry_after: float | str | None = None) -> Step:
    return Step("http", code=code, retry_after=None if retry_after is None else str(retry_after))


def reset() -> Step:
    return Step("reset")


def text(payload: str = "<html><body>Bad gateway, try later</body></html>") -> Step:
    return Step("text", payload=payload)


def body(payload: Any) -> Step:
    return Step("json", payload=payload)


def stall(seconds: float, then: Step) -> Step:
    return Step("stall", seconds=seconds, then=then)


@dataclass
class _Plan:
    """What one request answers: a response (after ``delay`` seconds), or a reset."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes = b""
    delay: float = 0.0
    reset: bool = False


_ERROR_NAMES = {404: "NotFoundError", 429: "TooManyRequests", 500: "InternalServerError"}


class ScriptedServer:
    """Answers ``httpx.MockTransport`` requests from per-job scripts (see the module).

    Args:
        scripts: Job id -> its steps.
        clock: The time of the path under test (virtual or real), read when a request
            meets a step.
    """

    def __init__(self, scripts: Mapping[str, Sequence[Step]], clock: Callable[[], float]) -> None:
        self.scripts = {job_id: tuple(steps) for job_id, steps in scripts.items()}
        self.clock = clock
        self.origin = 0.0
        self._cursor: dict[str, int] = defaultdict(int)
        #: Job id -> the times its steps were met, relative to :attr:`origin`.
        self.polls: dict[str, list[float]] = defaultdict(list)
        #: Every request: (time, method, path and query, ids met, ids left out).
        self.log: list[tuple[float, str, str, tuple[str, ...], tuple[str, ...]]] = []
        self._requests = 0

    def start(self) -> None:
        """Poll times count from now."""
        self.origin = self.clock()

    def now(self) -> float:
        return self.clock() - self.origin

    def _peek(self, job_id: str) -> Step:
        steps = self.scripts[job_id]
        return steps[min(self._cursor[job_id], len(steps) - 1)]

    def _take(self, job_id: str) -> Step:
        step = self._peek(job_id)
        self._cursor[job_id] += 1
        self.polls[job_id].append(self.now())
        return step

    def _payload(self, job_id: str, step: Step) -> dict[str, Any]:
        out: dict[str, Any] = {"id": job_id}
        if step.status is not None:
            out["status"] = step.status
        out.update(step.fields)
        return out

    def _plan(self, job_id: str, step: Step, batch: bool) -> _Plan:
        self._requests += 1
        headers = {"x-request-id": f"req-{self._requests}"}
        if step.kind == "job":
            payload: Any = self._payload(job_id, step)
            if batch:
                payload = {"jobs": [payload]}
            headers["content-type"] = "application/json"
            return _Plan(200, headers, json.dumps(payload).encode())
        if step.kind == "http":
            if step.retry_after is not None:
                headers["retry-after"] = step.retry_after
            headers["content-type"] = "application/json"
            error = {
                "error": _ERROR_NAMES.get(step.code, "ServiceUnavailable"),
                "message": f"scripted {step.code} for {job_id}",
                "statusCode": step.code,
            }
            return _Plan(step.code, headers, json.dumps(error).encode())
        if step.kind == "reset":
            return _Plan(reset=True)
        if step.kind == "text":
            headers["content-type"] = "text/html"
            return _Plan(200, headers, str(step.payload).encode())
        if step.kind == "json":
            headers["content-type"] = "application/json"
            return _Plan(200, headers, json.dumps(step.payload).encode())
        assert step.kind == "stall"
        assert step.then is not None
        plan = self._plan(job_id, step.then, batch)
        plan.delay = step.seconds
        return plan

    def plan(self, request: httpx.Request) -> _Plan:
        """The answer to one request (consuming the steps it meets)."""
        path = request.url.path
        prefix = httpx.URL(BASE_URL).path + "/jobs"
        shown = path + (f"?{request.url.query.decode()}" if request.url.query else "")
        if path == prefix:
            ids = tuple(request.url.params.get_list("ids"))
            known = [i for i in ids if i in self.scripts]
            if len(ids) == 1 and known:
                self.log.append((self.now(), request.method, shown, ids, ()))
                return self._plan(ids[0], self._take(ids[0]), batch=True)
            met = tuple(i for i in known if self._peek(i).is_answer)
            jobs = [self._payload(i, self._take(i)) for i in met]
            left = tuple(i for i in ids if i not in met)
            self.log.append((self.now(), request.method, shown, met, left))
            content = json.dumps({"jobs": jobs}).encode()
            return _Plan(200, {"content-type": "application/json"}, content)
        if path.startswith(prefix + "/"):
            job_id = unquote(path[len(prefix) + 1 :])
            if job_id in self.scripts:
                self.log.append((self.now(), request.method, shown, (job_id,), ()))
                return self._plan(job_id, self._take(job_id), batch=False)
        self.log.append((self.now(), request.method, shown, (), ()))
        error = {"error": "NotFoundError", "message": "not found", "statusCode": 404}
        return _Plan(404, {"content-type": "application/json"}, json.dumps(error).encode())

    # --- the transports --------------------------------------------------------------

    def sync_transport(self, advance: Callable[[float], None] | None) -> httpx.MockTransport:
        """A sync transport. ``advance``: moves a virtual clock (a stall drips one byte
        per ``DRIP`` seconds of it); ``None``: real time (``time.sleep``)."""

        def handler(request: httpx.Request) -> httpx.Response:
            plan = self.plan(request)
            if plan.reset:
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            if plan.delay <= 0:
                return httpx.Response(plan.status, headers=plan.headers, content=plan.content)
            return httpx.Response(
                plan.status, headers=plan.headers, stream=_Drip(plan, advance or time.sleep)
            )

        return httpx.MockTransport(handler)

    def async_transport(self) -> httpx.MockTransport:
        """An async transport for asyncio and trio: a stall sleeps on the running
        library's clock (so the request's whole-request bound can cut it)."""

        async def handler(request: httpx.Request) -> httpx.Response:
            plan = self.plan(request)
            if plan.reset:
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            if plan.delay > 0:
                await _sleep(plan.delay)
            return httpx.Response(plan.status, headers=plan.headers, content=plan.content)

        return httpx.MockTransport(handler)


async def _sleep(seconds: float) -> None:
    if current_runtime() == "trio":
        import trio

        await trio.sleep(seconds)
    else:
        import asyncio

        await asyncio.sleep(seconds)


class _Drip(httpx.SyncByteStream):
    """A body that arrives one blank byte per ``DRIP`` seconds until the stall is over,
    then whole (leading blanks are valid JSON)."""

    def __init__(self, plan: _Plan, advance: Callable[[float], object]) -> None:
        self._plan = plan
        self._advance = advance

    def __iter__(self) -> Iterator[bytes]:
        left = self._plan.delay
        while left > 1e-9:
            step = min(DRIP, left)
            self._advance(step)
            left -= step
            yield b" "
        yield self._plan.content
