"""``jobwait demo``: a dozen scripted jobs on an embedded server, one fleet, batch reads."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlsplit

from jobwait import Backoff, JobWaitError, Phase, Statuses
from jobwait._plumbing import FleetOptions

from ._base import EXIT_FAILED, EXIT_SOFTWARE, EXIT_SUCCEEDED, MISSING_HTTPX, TICK, USER_AGENT
from ._output import PHASE_COLOURS, colour_on, live, paint, plural, printable, width

if TYPE_CHECKING:
    from jobwait.testing import Fault

    from ..server import JobServer, RequestRecord

_DEMO_STATUSES: Final = Statuses()


# The demo's jobs are data: each is the JSON job script that ``POST /jobs`` accepts
# (docs/server.md), submitted as it stands. Durations are scripted seconds (divided by
# --time-scale); "name" is the job's own trouble, shown in the summary; "outcome" is
# what it is expected to end as (default "completed"). A job's own faults are keyed by
# poll=n: the n-th request for the job that the server-wide faults let through to the
# API (a truncated or malformed answer counts); they change only its entry of a batch
# answer.
_JOBS: Final[tuple[dict[str, Any], ...]] = (
    {"id": "bell", "durations": {"submitted": 0, "ready": 10, "started": 20}},
    {"id": "ghz-3", "durations": {"submitted": 5, "ready": 20, "started": 40}},
    {"id": "qft-4", "durations": {"submitted": 0, "ready": 15, "started": 30}},
    {"id": "grover-2", "durations": {"submitted": 0, "ready": 20, "started": 35}},
    {
        "id": "vqe-h2",
        "name": "status goes back",
        "durations": {"submitted": 5, "ready": 15, "started": 200},
        "faults": [{"kind": "regress", "poll": 5}],
    },
    {
        "id": "shor-15",
        "name": "fails",
        "durations": {"submitted": 0, "ready": 10, "started": 35},
        "outcome": "failed",
        "failure": {"code": "QuantumComputerError", "message": "calibration drifted"},
    },
    {
        "id": "teleport",
        "name": "canceled",
        "durations": {"submitted": 0, "ready": 25, "started": 20},
        "outcome": "canceled",
    },
    {
        "id": "qaoa-6",
        "name": "left out of an answer",
        "durations": {"submitted": 0, "ready": 15, "started": 45},
        "faults": [{"kind": "drop", "poll": 2}],
    },
    {"id": "deutsch", "durations": {"submitted": 0, "ready": 5, "started": 25}},
    {
        "id": "bv-5",
        "name": "left out twice",
        "durations": {"submitted": 0, "ready": 15, "started": 40},
        "faults": [{"kind": "drop", "poll": 2}, {"kind": "drop", "poll": 5}],
    },
    {
        "id": "qwalk",
        "name": "unknown status",
        "durations": {"submitted": 0, "ready": 10, "started": 30},
        "faults": [{"kind": "unknown_status", "poll": 2, "status": "calibrating"}],
    },
    {"id": "long-run", "durations": {"submitted": 5, "ready": 25, "started": 70}},
)

# Server-wide trouble, as fault JSON (Fault.from_json) plus a label: the server's
# requests ``request`` to ``request + count - 1`` (counted from 1) meet ``kind``,
# whichever jobs they ask for; ``retry_after`` is in scripted seconds. Never more than
# three failed requests in a row: the fleet's max_batch_errors is 5.
_TROUBLE: Final[tuple[dict[str, Any], ...]] = (
    {"label": "429 storm", "kind": "429", "request": 2, "count": 3, "retry_after": 8.0},
    {"label": "connection reset", "kind": "reset", "request": 6},
    {"label": "truncated body", "kind": "truncated", "request": 7},
    {"label": "malformed JSON", "kind": "malformed_json", "request": 8},
    {"label": "503 burst", "kind": "503", "request": 10, "count": 2},
)


def _expected(job: Mapping[str, Any]) -> str:
    return str(job.get("outcome", "completed"))


def _server_faults(scale: float) -> list[Fault]:
    """The server-wide faults, with each Retry-After hint scaled to real seconds."""
    from jobwait.testing import Fault

    faults = []
    for trouble in _TROUBLE:
        spec = {key: value for key, value in trouble.items() if key != "label"}
        if "retry_after" in spec:
            spec["retry_after"] = f"{spec['retry_after'] / scale:.3f}"
        faults.append(Fault.from_json(spec))
    return faults


def _describe_trouble(scale: float) -> str:
    described = []
    for trouble in _TROUBLE:
        first = trouble["request"]
        last = first + trouble.get("count", 1) - 1
        numbers = f"#{first}" if last == first else f"#{first}-{last}"
        hint = trouble.get("retry_after")
        shown = "" if hint is None else f" (Retry-After {hint / scale:.2f}s)"
        described.append(f"{numbers} {trouble['label']}{shown}")
    return ", ".join(described)


def _demo_fleet_options(scale: float) -> FleetOptions:
    # The demo's schedule in scripted seconds, scaled like the server so that a faster
    # --time-scale is the same demo, faster: each job is polled at once, then after 5 s,
    # x1.5, capped at 20 s, and given up on after 300 s; a due job may be held 2 s so
    # that jobs due soon after share its request.
    return {
        "timeout": 300.0 / scale,
        "backoff": Backoff(initial=5.0 / scale, factor=1.5, max=20.0 / scale),
        "statuses": _DEMO_STATUSES,
        "raise_on_failure": False,
        "batch_window": 2.0 / scale,
    }


def _ids_asked(record: RequestRecord) -> int:
    """How many job ids a logged batch GET asked for (the shape of ``ionq.batch_url``)."""
    return len(parse_qs(urlsplit(record.path).query).get("ids", ()))


def _answer(record: RequestRecord) -> str:
    return "connection reset" if record.status_code is None else str(record.status_code)


class _DemoProgress:
    """The demo's live display on stderr, fed only by what the fleet reports
    (``on_status``, and the ``sleep`` it asks for) and by the server's request log.

    On a terminal (``"live"``) a board of one line per job is redrawn in place; otherwise
    (``"lines"``) a line is printed per request served and per status change; ``"off"``
    prints nothing. Either way it records when the client learned each outcome.
    """

    def __init__(
        self, stream: IO[str], server: JobServer, *, mode: str, colour: bool, ids: Sequence[str]
    ) -> None:
        self._stream = stream
        self._server = server
        self._mode = mode
        self._colour = colour
        self._started = time.monotonic()
        self._rows = 0
        self._shown = 0  # request-log records printed so far
        self._wake_at: float | None = None
        self.trails: dict[str, list[str]] = {job_id: [] for job_id in ids}
        self.knew_at: dict[str, float] = {}  # time.monotonic(), the server's clock too

    def start(self) -> float:
        """Count elapsed time from now; returns now."""
        self._started = time.monotonic()
        return self._started

    def on_status(self, job_id: str, job: object, status: str) -> None:
        """The fleet's ``on_status``: a job's status changed (the first one counts)."""
        trail = self.trails[job_id]
        previous = trail[-1] if trail else None
        trail.append(status)
        phase = _DEMO_STATUSES.phase(status)
        if phase.terminal:
            self.knew_at[job_id] = time.monotonic()
        if self._mode == "lines":
            self._print_requests()  # the request that brought this status comes first
            shown = printable(status, 40)
            change = shown if previous is None else f"{printable(previous, 40)} -> {shown}"
            note = " (not a known status; still waiting)" if phase is Phase.UNKNOWN else ""
            elapsed = time.monotonic() - self._started
            self._write(f"{elapsed:6.2f}s  {job_id:<10} {change}{note}\n")

    async def sleep(self, seconds: float) -> None:
        """The fleet's ``sleep``: remembers when the fleet next wakes, then sleeps."""
        self._wake_at = time.monotonic() + seconds
        await asyncio.sleep(seconds)

    async def show_until_cancelled(self) -> None:
        if self._mode == "off":
            return
        while True:
            self.refresh()
            await asyncio.sleep(TICK / 2)

    def refresh(self) -> None:
        """Redraw the board, or print the requests served since the last call."""
        if self._mode == "live":
            self._draw()
        elif self._mode == "lines":
            self._print_requests()

    def _print_requests(self) -> None:
        records = self._server.requests
        for number, record in enumerate(records[self._shown :], start=self._shown + 1):
            fault = f" (scripted: {record.fault})" if record.fault else ""
            self._write(
                f"{record.time - self._started:6.2f}s  request #{number}: "
                f"{plural(_ids_asked(record), 'job')} -> {_answer(record)}{fault}\n"
            )
        self._shown = len(records)

    def _draw(self) -> None:
        room = width(self._stream) - 1
        server = self._server
        lines = []
        job_polls = 0
        for job_id, trail in self.trails.items():
            polls = len(server.requests_for(job_id))
            job_polls += polls
            lines.append(self._row(job_id, trail, polls, room))
        now = time.monotonic()
        requests = server.requests
        footer = (
            f"{len(self.knew_at)}/{len(self.trails)} finished, {now - self._started:.1f}s, "
            f"{plural(len(requests), 'request')} for {plural(job_polls, 'job poll')}"
        )
        if requests:
            footer += f", last {_answer(requests[-1])}"
        if (
            self._wake_at is not None
            and self._wake_at > now
            and len(self.knew_at) < len(self.trails)
        ):
            footer += f", wakes in {self._wake_at - now:.1f}s"
        lines.append(footer[:room])
        up = f"\x1b[{self._rows}F" if self._rows else ""
        self._write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self._rows = len(lines)

    def _row(self, job_id: str, trail: Sequence[str], polls: int, room: int) -> str:
        status = trail[-1] if trail else "waiting"
        phase = _DEMO_STATUSES.phase(status) if trail else None
        code = PHASE_COLOURS[phase] if phase is not None else None
        shown = paint(f"{printable(status, 14):<14}", code, self._colour)
        history = " > ".join(printable(s, 20) for s in trail)
        # An unknown status is said in words too, not only by colour (NO_COLOR).
        unknown = " (unknown status)" if phase is Phase.UNKNOWN else ""
        rest = f"{unknown} {plural(polls, 'poll'):>9}  {history}"[: max(0, room - 25)]
        return f"{job_id:<10} {shown}{rest}"

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _outcome_of(result: object) -> str:
    if isinstance(result, JobWaitError):
        return f"error: {type(result).__name__}"
    status = result.get("status") if isinstance(result, dict) else None
    return printable(str(status), 20)


def _demo_table(
    server: JobServer,
    progress: _DemoProgress,
    results: Mapping[str, object],
    elapsed: float,
    scale: float,
) -> tuple[str, bool]:
    """The summary: a row per job, then the totals. Polls are counted by the server:
    every request that asked for the job, the failed ones included."""
    header = (
        f"{'job':<10} {'its own trouble':<22} {'expected':<10} {'actual':<10} "
        f"{'polls':>5}  {'detected after':>14}"
    )
    rows = [header, "-" * len(header)]
    matched = 0
    job_polls = 0
    for job in _JOBS:
        job_id, expected = job["id"], _expected(job)
        actual = _outcome_of(results[job_id])
        ok = actual == expected
        matched += ok
        polls = len(server.requests_for(job_id))
        job_polls += polls
        knew_at = progress.knew_at.get(job_id)
        delay = "-" if knew_at is None else f"{knew_at - server.terminal_at(job_id):.3f}s"
        rows.append(
            f"{job_id:<10} {job.get('name', '-'):<22} {expected:<10} {actual:<10} "
            f"{polls:>5}  {delay:>14}{'' if ok else '  <- not as scripted'}"
        )
    requests = server.requests
    faulted = sum(1 for record in requests if record.fault)
    trouble = _describe_trouble(scale)
    totals = (
        f"server-wide trouble, by request number: {trouble}",
        f"{matched}/{len(_JOBS)} jobs ended as scripted in {elapsed:.2f}s",
        (
            f"{plural(len(requests), 'request')} ({faulted} met a scripted fault) carried "
            f"{plural(job_polls, 'job poll')}; polled one job per request, the same polls "
            f"would have taken {plural(job_polls, 'request')}"
        ),
    )
    rows.append("")
    for line in totals:
        rows += textwrap.wrap(line, width=len(header) + 8, subsequent_indent="    ")
    return "\n".join(rows), matched == len(_JOBS)


async def _run_demo(
    server: JobServer, key: str, scale: float, progress: _DemoProgress
) -> tuple[dict[str, Any], float]:
    """Wait for every demo job with one fleet over batch reads; return the outcomes and
    the seconds it took. Every decision (which jobs share a request, when it goes out,
    how a failed one is retried) is the fleet's."""
    import httpx

    from ..httpx import async_wait_for_batch
    from ..ionq import batch_url

    headers = {"Authorization": f"apiKey {key}", "User-Agent": USER_AGENT}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10.0) as client:
        # Submit only once the client is ready (building one takes a while on a busy
        # machine), so every job is first polled while pending and meets its faults.
        for job in _JOBS:
            server.submit_json(job)
        started = progress.start()
        display = asyncio.create_task(progress.show_until_cancelled())
        try:
            results = await async_wait_for_batch(
                client,
                [job["id"] for job in _JOBS],
                url_for=batch_url,
                on_status=progress.on_status,
                sleep=progress.sleep,
                **_demo_fleet_options(scale),
            )
        finally:
            display.cancel()
            await asyncio.gather(display, return_exceptions=True)
    elapsed = time.monotonic() - started
    progress.refresh()
    return results, elapsed


def demo_command(
    args: argparse.Namespace, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    try:
        from ..server import JobServer
    except ImportError:
        stderr.write(f"jobwait: error: {MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    mode = "off" if args.no_progress else "live" if live(stderr, environ) else "lines"
    key = secrets.token_urlsafe(16)
    scale = args.time_scale
    faults = _server_faults(scale)
    with JobServer(api_key=key, time_scale=scale, faults=faults) as server:
        progress = _DemoProgress(
            stderr,
            server,
            mode=mode,
            colour=colour_on(stderr, environ),
            ids=[job["id"] for job in _JOBS],
        )
        if mode != "off":
            stderr.write(
                f"jobwait demo: {len(_JOBS)} scripted jobs on {server.url} "
                f"(time scale {scale:g}x), one fleet, batch reads\n"
            )
        results, elapsed = asyncio.run(_run_demo(server, key, scale, progress))
        table, all_ok = _demo_table(server, progress, results, elapsed, scale)
    stdout.write(table + "\n")
    stdout.flush()
    return EXIT_SUCCEEDED if all_ok else EXIT_FAILED
