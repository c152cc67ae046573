"""``jobwait wait URL``: poll one HTTP JSON job endpoint until the job finishes."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Final
from urllib.parse import urlsplit

from jobwait import (
    ApiProfile,
    Backoff,
    JobWaiter,
    JobWaitError,
    Phase,
    PollReport,
    Statuses,
    field_reader,
)
from jobwait._plumbing import auto_reading, secret_values

from ._base import (
    EXIT_INTERRUPTED,
    EXIT_SOFTWARE,
    EXIT_SUCCEEDED,
    MISSING_HTTPX,
    TICK,
    USER_AGENT,
    CommandLineError,
    exit_code_of,
)
from ._outcome import outcome_line
from ._output import (
    PHASE_COLOURS,
    Redactor,
    colour_on,
    describe_failure,
    live,
    paint,
    plural,
    redacting_logs,
    shown,
    width,
)
from ._push import listening
from ._types import Header, check_header_value

_FAILURE_LIMIT = 200


class _Watch:
    """What one wait has shown so far, fed only by the adapter's ``on_poll`` reports.

    Each :class:`~jobwait.PollReport` (after every poll, failed ones included) updates
    the status, the poll count, the latest fetch error and when the next poll is due,
    then calls ``listener(watch, event)``: ``"status"`` when the status changed,
    ``"retry"`` when the poll failed and another follows, else ``"poll"``. Nothing is
    guessed: the counts and the error are the waiter's own.
    """

    def __init__(
        self,
        listener: Callable[[_Watch, str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        reading: Callable[[], str | None] | None = None,
    ) -> None:
        self.status: str | None = None
        self.reading: str | None = None  # where --api auto found the status
        self.reading_changed = False
        self.phase: Phase | None = None
        self.polls = 0
        self.elapsed = 0.0
        self.retrying = False  # the latest poll failed
        self.not_yet = False  # ... with the API's "not there yet" (--retry-http, --api)
        self.failure: str | None = None
        self.last_error: BaseException | None = None
        self.knew_at: float | None = None  # clock time the final status was seen
        self.next_poll_at: float | None = None
        self._listener = listener
        self._clock = clock
        self._reading = reading

    def on_poll(self, report: PollReport) -> None:
        now = self._clock()
        self.polls = report.polls
        self.elapsed = report.elapsed
        self.next_poll_at = None if report.next_sleep is None else now + report.next_sleep
        self.retrying = report.error is not None
        self.not_yet = getattr(report.error, "pending", False) is True
        if report.error is not None:
            self.last_error = report.error
            self.failure = describe_failure(report.error)
            self._listener(self, "retry" if report.next_sleep is not None else "poll")
            return
        reading = None if self._reading is None else self._reading()
        self.reading_changed = reading != self.reading
        changed = report.status != self.status or self.reading_changed
        self.status, self.phase, self.reading = report.status, report.phase, reading
        if self.phase is not None and self.phase.terminal:
            self.knew_at = now
        self._listener(self, "status" if changed else "poll")


class _WaitProgress:
    """Progress of ``jobwait wait`` on stderr: one rewritten line on a terminal
    (``"live"``), a plain line per status change and per retry otherwise
    (``"lines"``), or nothing (``"off"``). Final lines go through :meth:`finish`."""

    def __init__(
        self,
        stream: IO[str],
        *,
        mode: str,
        colour: bool,
        redact: Redactor,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._mode = mode
        self._colour = colour
        self._redact = redact
        self._clock = clock
        self._started = clock()
        self._drawn = False

    def start(self) -> None:
        """Count elapsed time from now (the first poll), as the waiter does."""
        self._started = self._clock()

    def event(self, watch: _Watch, event: str) -> None:
        if self._mode == "live" and event == "status":
            self._draw(watch, None)
        elif self._mode == "lines":
            self._log(watch, event)

    def sleep(self, watch: _Watch, seconds: float) -> None:
        """The sleep handed to the adapter: reports it, then sleeps ``seconds``."""
        if self._mode != "live":
            time.sleep(seconds)
            return
        end = self._clock() + seconds
        while (left := end - self._clock()) > 0:
            self._draw(watch, left)
            time.sleep(min(left, TICK))

    def finish(self, line: str | None, *, always: bool = False) -> None:
        """Clear the live line; then print ``line`` unless quiet (or ``always``)."""
        if self._drawn:
            self._write("\r\x1b[2K")
            self._drawn = False
        if line is not None and (always or self._mode != "off"):
            self._write(shown(line, self._redact) + "\n")

    def _log(self, watch: _Watch, event: str) -> None:
        elapsed = watch.elapsed
        if event == "status" and watch.phase is not None and not watch.phase.terminal:
            if watch.next_poll_at is None:
                return  # strict mode ended the wait on this status: the final line says so
            unknown = " (not a known status; still waiting)" if watch.phase is Phase.UNKNOWN else ""
            status = shown(repr(watch.status or ""), self._redact, 60)
            # Where the status comes from is said once, and again if it moves.
            where = f" (read from {watch.reading})" if watch.reading_changed else ""
            self._line(
                f"status {status} after {elapsed:.1f}s, {plural(watch.polls, 'poll')}"
                f"{where}{unknown}"
            )
        elif event == "retry" and watch.next_poll_at is not None:
            wait = max(0.0, watch.next_poll_at - self._clock())
            failure = shown(watch.failure or "", self._redact, _FAILURE_LIMIT)
            if watch.not_yet:
                self._line(f"poll {watch.polls}: {failure}; polling again in {wait:.2f}s")
            else:
                self._line(f"poll {watch.polls} failed ({failure}); retrying in {wait:.2f}s")

    def _line(self, text: str) -> None:
        self._write(shown(f"jobwait: {text}", self._redact) + "\n")

    def _draw(self, watch: _Watch, left: float | None) -> None:
        status = shown(watch.status or "waiting", self._redact, 30)
        parts = [f"{self._clock() - self._started:.1f}s", plural(watch.polls, "poll")]
        if watch.phase is Phase.UNKNOWN:
            # Said in words too, not only by colour: for NO_COLOR and colour-blind users.
            parts.insert(0, "not a known status, still waiting")
        if left is not None:
            retry = watch.retrying and not watch.not_yet
            parts.append(f"{'retry' if retry else 'next poll'} in {left:.1f}s")
        if watch.retrying:  # last: the width cuts the server's words, not the countdown
            parts.append(shown(watch.failure or "", self._redact, _FAILURE_LIMIT))
        # Where --api auto found the status, right after it: "RUNNING (state.type, as
        # prefect), 3.2s, ...".
        where = "" if watch.reading is None else f" ({watch.reading})"
        rest = shown(where + ", " + ", ".join(parts), self._redact)
        room = width(self._stream) - 1 - len("jobwait: ") - len(status)
        rest = rest[: max(0, room)]
        code = PHASE_COLOURS.get(watch.phase) if watch.phase else None
        self._write(f"\r\x1b[2Kjobwait: {paint(status, code, self._colour)}{rest}")
        self._drawn = True

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _resolve_headers(args: argparse.Namespace, environ: Mapping[str, str]) -> list[Header]:
    headers: list[Header] = list(args.header)
    for spec in args.header_env:
        where = f"--header-env {spec.name}={spec.variable}"
        value = environ.get(spec.variable)
        if value is None:
            raise CommandLineError(f"{where}: environment variable {spec.variable} is not set")
        value = value.strip()
        if not value:
            raise CommandLineError(f"{where}: environment variable {spec.variable} is empty")
        try:
            check_header_value(spec.name, value)
        except argparse.ArgumentTypeError as exc:
            raise CommandLineError(f"{where}: {exc}") from None
        headers.append(Header(spec.name, value))
    return headers


_VOCABULARY: Final = ("pending", "success", "failure", "canceled")


def _statuses(args: argparse.Namespace, base: Statuses, *, add: bool) -> Statuses:
    """``base`` with the statuses given on the command line: each list replaces that
    part of ``base`` (``add``: joins it, for ``--api auto``'s universal vocabulary)."""
    given = {
        "pending": ("--pending", args.pending),
        "succeeded": ("--success", args.success),
        "failed": ("--failure", args.failure),
        "canceled": ("--canceled", args.canceled),
    }
    seen: dict[str, str] = {}
    for option, values in given.values():
        for value in values or ():
            if seen.get(value, option) != option:
                raise CommandLineError(
                    f"status {value!r} is given to both {seen[value]} and {option}"
                )
            seen[value] = option
    changes: dict[str, object] = {
        outcome: set(values) | (set(getattr(base, outcome)) if add else set())
        for outcome, (_, values) in given.items()
        if values
    }
    if args.case_insensitive:
        changes["case_sensitive"] = False
    if args.on_unknown is not None:
        changes["on_unknown"] = "raise" if args.on_unknown == "fail" else "wait"
    try:
        return base.replace(**changes)
    except ValueError as exc:
        # The core's own check of the vocabulary (a status in two lists once case is
        # folded, or one given here that the profile lists elsewhere) is a usage error.
        raise CommandLineError(str(exc)) from None


def _api_name(args: argparse.Namespace) -> str | None:
    """The profile the wait reads with: --api's, else ``auto`` unless the vocabulary is
    given with --pending, --success, --failure or --canceled (then none)."""
    if args.api:
        return str(args.api)
    return None if any(getattr(args, name) for name in _VOCABULARY) else "auto"


def _profile(args: argparse.Namespace) -> ApiProfile:
    """The --api profile (``auto`` by default, or the default vocabulary when statuses
    are listed), with every explicit option on top."""
    name = _api_name(args)
    base = ApiProfile.named(name) if name else ApiProfile(name="job", statuses=Statuses())
    changes: dict[str, object] = {
        "statuses": _statuses(args, base.statuses, add=base.name == "auto"),
        "pending_http": base.pending_http | set(args.retry_http),
    }
    if args.status_field is not None:
        changes["status_of"] = field_reader(args.status_field)
    if args.failure_field is not None:
        changes["failure_of"] = field_reader(args.failure_field, default=None)
    return base.replace(**changes)


def _reading(
    args: argparse.Namespace, profile: ApiProfile, waiter: JobWaiter
) -> Callable[[], str | None] | None:
    """Where the status comes from, for the progress display: only said when jobwait
    found it itself (``--api auto``)."""
    if profile.name != "auto":
        return None
    if args.status_field is not None:
        field = str(args.status_field)
        return lambda: field

    def where() -> str | None:
        found = auto_reading(waiter.last_job)
        return None if found is None else str(found)

    return where


def _waiter(args: argparse.Namespace, profile: ApiProfile, name: str | None) -> JobWaiter:
    backoff = Backoff(
        initial=args.interval,
        factor=args.factor,
        max=max(args.max_interval, args.interval),  # the cap follows a larger interval
    )
    options = profile.options(
        job_id=name,
        timeout=args.timeout,
        backoff=backoff,
        max_fetch_errors=args.max_fetch_errors,
        raise_on_failure=True,
        raise_on_cancel=True,  # so a canceled job ends as JobCanceledError: exit 4
    )
    return JobWaiter(**options)


def _client_headers(headers: Sequence[Header]) -> list[tuple[str, str]]:
    names = {h.name.lower() for h in headers}
    ours = [] if "user-agent" in names else [("User-Agent", USER_AGENT)]
    return ours + [(h.name, h.value) for h in headers]


def _success_line(waiter: JobWaiter, redact: Redactor) -> str:
    status = shown(repr(waiter.last_status), redact, 60)
    return (
        f"jobwait: job succeeded (status {status}, "
        f"{plural(waiter.polls, 'poll')}, {waiter.elapsed:.3f}s elapsed)"
    )


def _print_json(job: object, stdout: IO[str]) -> None:
    stdout.write(json.dumps(job, indent=2) + "\n")
    stdout.flush()


def wait_command(
    args: argparse.Namespace, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    headers = _resolve_headers(args, environ)
    profile = _profile(args)
    try:
        import httpx

        from .. import httpx as http_adapter
        from .._http.request import job_name
    except ImportError:
        stderr.write(f"jobwait: error: {MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    waiter = _waiter(args, profile, job_name(args.url))
    try:
        httpx.URL(args.url)
    except httpx.InvalidURL:
        raise CommandLineError("the URL is not valid (not shown)") from None
    password = urlsplit(args.url).password
    # Every header given on the command line is the user's: all are treated as secret.
    sent = [(h.name, h.value) for h in headers]
    redact = Redactor(secret_values(sent, password=password, every_header=True))
    mode = "off" if args.quiet else "live" if live(stderr, environ) else "lines"
    progress = _WaitProgress(stderr, mode=mode, colour=colour_on(stderr, environ), redact=redact)
    watch = _Watch(progress.event, reading=_reading(args, profile, waiter))
    job: object = None
    # Usage errors of --listen (exit 2) come before anything is fetched.
    push = contextlib.ExitStack()
    wakeup = push.enter_context(listening(args, environ, stderr, quiet=args.quiet))
    try:
        with (
            redacting_logs(redact),
            httpx.Client(
                headers=_client_headers(headers),
                timeout=httpx.Timeout(30.0, connect=10.0),
                follow_redirects=args.follow_redirects,
            ) as client,
        ):
            progress.start()
            job = http_adapter.wait_for_url(
                client,
                args.url,
                api=profile,
                waiter=waiter,
                max_body_size=args.max_body_size,
                on_poll=watch.on_poll,
                wakeup=wakeup,
                sleep=lambda seconds: progress.sleep(watch, seconds),
            )
    except JobWaitError as error:
        code = exit_code_of(error)
        job = error.last_job
        line = outcome_line(
            error,
            args,
            header_names=[h.name for h in headers],
            classify=http_adapter.is_retryable,
            last_failure=watch.last_error if watch.retrying else None,
            redact=redact,
            statuses=profile.statuses,
            api=_api_name(args),
        )
        progress.finish(line, always=True)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        job = waiter.last_job
        progress.finish("jobwait: interrupted", always=True)
    except Exception as exc:  # noqa: BLE001 - a bug: one redacted line, never a traceback
        code = EXIT_SOFTWARE
        progress.finish(f"jobwait: internal error: {describe_failure(exc)}", always=True)
    else:
        code = EXIT_SUCCEEDED
        progress.finish(_success_line(waiter, redact))
    finally:
        push.close()
    if args.json:
        _print_json(job, stdout)
    return code
