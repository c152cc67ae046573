"""The ``jobwait`` command: wait for a job from a shell, serve the simulated API, run a demo.

::

    jobwait wait URL [options]   poll an HTTP JSON job endpoint until the job finishes
    jobwait serve [options]      serve the simulated IonQ-style job API on loopback
    jobwait demo [options]       wait for a scripted batch of jobs on an embedded server

Everything here is IO and presentation. Every decision (when to poll, how long to
sleep, what a status or an HTTP answer means, when to give up) is the core's: ``wait``
builds a :class:`jobwait.JobWaiter` from the options and hands it to
:func:`jobwait.adapters.httpx.wait_for_url`. Progress is read from what the adapter
reports: ``on_status``, the error classifier (which only records the error and
delegates to :func:`jobwait.adapters.httpx.is_retryable`) and the ``sleep`` it asks
for. ``demo`` waits for all its jobs with one :class:`jobwait.JobFleet` over batch
reads (:func:`jobwait.adapters.httpx.async_wait_for_batch`); its display reads the
fleet's ``on_status`` and ``sleep`` and the embedded server's request log. Nothing is
guessed.

Secrets: header values given with ``--header`` or ``--header-env`` are never printed.
A malformed ``--header`` is reported by name (or not at all when it has no colon),
unrecognised arguments are reported by option name only, and every line written to
stderr passes through a redactor that masks the header values as a last line of
defence (against, say, a library error message that quotes a header).

Logging: the library logs unknown statuses at WARNING on the ``"jobwait"`` logger.
While a command runs, that logger (and httpx's) has a ``NullHandler``, so logging's
last-resort handler never prints records onto the terminal; records still propagate
to any handler the caller configured. The CLI shows unknown statuses in its own
progress output instead.

The CLI needs the ``httpx`` extra (httpx and h11): ``pip install 'jobwait[httpx]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import re
import secrets
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn
from urllib.parse import parse_qs, urlsplit

import jobwait
from jobwait import (
    Backoff,
    FleetOptions,
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    Phase,
    ResponseError,
    Statuses,
    field_reader,
)

if TYPE_CHECKING:
    from jobwait.testing import Fault

    from .server import JobServer, RequestRecord

__all__ = ["EXIT_CODES", "exit_code_of", "main"]

EXIT_SUCCEEDED: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_TIMED_OUT: Final = 3
EXIT_CANCELED: Final = 4
EXIT_UNREADABLE: Final = 5
EXIT_SOFTWARE: Final = 70
EXIT_INTERRUPTED: Final = 130

EXIT_CODES: Final[tuple[tuple[int, str], ...]] = (
    (EXIT_SUCCEEDED, "the job succeeded"),
    (EXIT_FAILED, "the job failed (its failure is printed)"),
    (EXIT_USAGE, "bad command-line usage (nothing was fetched)"),
    (EXIT_TIMED_OUT, "the timeout passed before the job finished"),
    (EXIT_CANCELED, "the job was canceled"),
    (
        EXIT_UNREADABLE,
        "could not read the job's status: unreachable, HTTP error, body not JSON, no status field",
    ),
    (EXIT_SOFTWARE, "jobwait itself could not run (httpx/h11 missing, or a bug)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)
"""Every exit code ``jobwait wait`` can return, as ``(code, meaning)`` (shown in ``--help``)."""

_MISSING_HTTPX = "the command line needs httpx and h11: pip install 'jobwait[httpx]'"
_TICK: Final = 0.2  # seconds between redraws of a live progress display
_USER_AGENT: Final = f"jobwait/{jobwait.__version__}"


def exit_code_of(error: JobWaitError) -> int:
    """The exit code for a wait that ended with ``error`` (see :data:`EXIT_CODES`)."""
    if isinstance(error, JobFailedError):
        return EXIT_FAILED
    if isinstance(error, JobCanceledError):
        return EXIT_CANCELED
    if isinstance(error, JobTimeoutError):
        return EXIT_TIMED_OUT
    if isinstance(error, JobFetchError | JobStatusError):
        return EXIT_UNREADABLE
    return EXIT_SOFTWARE  # UsageError: a bug in the driver, not the user's doing


# --- argument parsing ---------------------------------------------------------------


class _UsageError(Exception):
    """Bad command-line usage: reported as one line, exit 2.

    ``prog`` names the command whose ``--help`` the line points to.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (raised, so ``main`` can return 2), not a
    usage dump and a ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message, self.prog)


def _number(text: str, *, minimum: float, inclusive: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and (value >= minimum if inclusive else value > minimum):
        return value
    shown = text if len(text) <= 30 else text[:27] + "..."
    raise argparse.ArgumentTypeError(f"expected {what}, got {shown!r}")


def _positive_seconds(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=False, what="a number of seconds > 0")


def _factor(text: str) -> float:
    return _number(text, minimum=1.0, inclusive=True, what="a number >= 1")


def _time_scale(text: str) -> float:
    return _number(text, minimum=0.0, inclusive=False, what="a number > 0")


def _timeout(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    return _number(text, minimum=0.0, inclusive=True, what="a number of seconds >= 0, or 'none'")


def _port(text: str) -> int:
    if text.isascii() and text.isdigit() and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text[:10]!r}")


def _url(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if sep and scheme.lower() in ("http", "https") and rest:
        return text
    # Not echoed: a URL may carry a token in its query or user info.
    raise argparse.ArgumentTypeError("the URL must start with http:// or https://")


def _status_field(text: str) -> str:
    try:
        field_reader(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


# RFC 9110 field names are tokens; values are visible ASCII, spaces and tabs (httpx
# encodes header values as ASCII, and a CR or LF would split the header).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class _Header:
    name: str
    value: str = field(repr=False)  # a secret, as far as we know: never shown


@dataclass(frozen=True, slots=True)
class _HeaderEnv:
    name: str
    variable: str


def _header_name(name: str, option: str) -> str:
    name = name.strip()
    if not _TOKEN.match(name):
        raise argparse.ArgumentTypeError(
            f"{option} needs a valid HTTP header name before the separator (not shown)"
        )
    return name


def _check_header_value(name: str, value: str) -> None:
    if not _FIELD_VALUE.match(value):
        raise argparse.ArgumentTypeError(
            f"the value of header {name!r} has characters that cannot be sent "
            "(control or non-ASCII characters); the value is not shown"
        )


def _header(text: str) -> _Header:
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(
            "expected 'Name: value', but there is no colon (the argument is not shown)"
        )
    name = _header_name(name, "--header")
    value = value.strip()
    _check_header_value(name, value)
    return _Header(name, value)


def _header_env(text: str) -> _HeaderEnv:
    name, eq, variable = text.partition("=")
    if not eq:
        raise argparse.ArgumentTypeError("expected NAME=ENVVAR, e.g. Authorization=API_TOKEN")
    name = _header_name(name, "--header-env")
    if not _ENV_NAME.match(variable):
        raise argparse.ArgumentTypeError(
            f"--header-env {name}=...: expected the name of an environment variable "
            "(letters, digits, underscores; the text given is not shown)"
        )
    return _HeaderEnv(name, variable)


def _exit_codes_epilog() -> str:
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"exit codes:\n{rows}"


_WAIT_EPILOG = f"""\
{_exit_codes_epilog()}

examples:
  jobwait wait https://api.example.com/jobs/42 --timeout 600
  export API_AUTH="Bearer $(cat token)"
  jobwait wait "$JOB_URL" --header-env Authorization=API_AUTH --json > job.json
  jobwait wait "$URL" --status-field state.phase --success DONE --failure ERROR

The job is polled at once, then after --interval seconds, each wait --factor times
the last, up to --max-interval: by default at t = 0, 1, 2.5, 4.75, ... s, then every
30 s. A 429 or 5xx answer, a dropped connection or a body that is not JSON is retried
on the same schedule (a server's Retry-After is honoured); five failures in a row end
the wait with exit code 5.
"""

_MAIN_DESCRIPTION = """\
Wait for remote jobs to finish. 'jobwait wait URL' polls an HTTP JSON job endpoint
until the job succeeds, fails or is canceled, and says which with its exit code.
"""

_MAIN_EPILOG = f"""\
Run 'jobwait COMMAND --help' for a command's options. Start with 'jobwait demo'.

exit codes of 'jobwait wait':
{_exit_codes_epilog().partition(chr(10))[2]}
"""


def _add_wait(commands: Any) -> None:
    wait = commands.add_parser(
        "wait",
        help="poll an HTTP JSON job endpoint until the job finishes",
        description="Poll URL (GET) until the job it returns finishes; the exit code\n"
        "tells how it ended. Progress goes to stderr, the job (with --json) to stdout.",
        epilog=_WAIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    wait.add_argument("url", metavar="URL", type=_url, help="the job's URL (http or https)")
    job = wait.add_argument_group("what the job says")
    job.add_argument(
        "--status-field",
        metavar="PATH",
        type=_status_field,
        default="status",
        help="dotted path of the status in the job JSON, e.g. state.phase (default: status)",
    )
    for option, dest, default in (
        ("--success", "success", "completed"),
        ("--failure", "failure", "failed"),
        ("--canceled", "canceled", "canceled"),
    ):
        job.add_argument(
            option,
            dest=dest,
            metavar="STATUS",
            action="append",
            help=f"a status meaning {dest}; repeatable; replaces the default ({default}) "
            "and stops meaning pending",
        )
    schedule = wait.add_argument_group("when to poll and when to give up")
    schedule.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_timeout,
        default=300.0,
        help="give up after this long (default 300; 0 polls once; 'none' never gives up)",
    )
    schedule.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_positive_seconds,
        default=1.0,
        help="first wait between polls (default 1)",
    )
    schedule.add_argument(
        "--factor",
        metavar="X",
        type=_factor,
        default=1.5,
        help="each wait is X times the last (default 1.5)",
    )
    schedule.add_argument(
        "--max-interval",
        metavar="SECONDS",
        type=_positive_seconds,
        default=30.0,
        help="longest wait between polls (default 30; never below --interval)",
    )
    http = wait.add_argument_group("HTTP")
    http.add_argument(
        "--header",
        metavar="'NAME: VALUE'",
        type=_header,
        action="append",
        default=[],
        help="send this header; repeatable (prefer --header-env for secrets)",
    )
    http.add_argument(
        "--header-env",
        metavar="NAME=ENVVAR",
        type=_header_env,
        action="append",
        default=[],
        help="send header NAME with the value of environment variable ENVVAR, which "
        "keeps a secret out of shell history and process lists; repeatable",
    )
    http.add_argument(
        "--follow-redirects",
        action="store_true",
        help="follow 3xx redirects (off by default: a redirect ends the wait with exit 5)",
    )
    out = wait.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print the final job (or the last job seen, or null) as JSON on stdout",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress; errors still print")


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the simulated IonQ-style job API on loopback",
        description="Serve jobwait's simulated job API (JobServer) on 127.0.0.1 until "
        "Ctrl-C, with one example job, and print the command that waits for it.",
        epilog="Without --api-key a random key is generated for the session and printed "
        "(it guards only this loopback server). A key you pass is never printed. The API "
        "and its fault scripts are described in the docs (docs/server.md).",
        allow_abbrev=False,
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="port to listen on (default: a free one)"
    )
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--api-key", metavar="KEY", help="require 'Authorization: apiKey KEY'")
    auth.add_argument("--no-auth", action="store_true", help="require no key at all")
    serve.add_argument(
        "--time-scale",
        metavar="X",
        type=_time_scale,
        default=1.0,
        help="scripted seconds per real second (default 1)",
    )
    serve.add_argument(
        "-q", "--quiet", action="store_true", help="do not print each request served"
    )


def _add_demo(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="wait for a scripted batch of jobs on an embedded server",
        description="Start the simulated job API on loopback, submit a dozen scripted "
        "jobs (one fails, one is canceled, some go missing from an answer or show odd "
        "statuses, and the server throws 429s, 5xx and dropped connections), wait for all "
        "of them with one fleet that reads them in batches (GET /jobs?ids=...), and print "
        "how each ended. Needs no network. Exits 0 when every job ended as scripted.",
        allow_abbrev=False,
    )
    demo.add_argument(
        "--time-scale",
        metavar="X",
        type=_time_scale,
        default=_DEMO_TIME_SCALE,
        help=f"scripted seconds per real second (default {_DEMO_TIME_SCALE:g}: about "
        "five seconds in all)",
    )
    demo.add_argument("--no-progress", action="store_true", help="only print the summary")


def build_parser() -> argparse.ArgumentParser:
    """The ``jobwait`` argument parser (its ``error`` raises instead of exiting)."""
    parser = _Parser(
        prog="jobwait",
        description=_MAIN_DESCRIPTION,
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"jobwait {jobwait.__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    _add_wait(commands)
    _add_serve(commands)
    _add_demo(commands)
    return parser


def _unrecognized(extras: Sequence[str]) -> str:
    # argparse would echo them all, and a mistyped option's value may be a secret
    # (`--haeder 'Authorization: ...'`): name the options, count the rest.
    options = [a.partition("=")[0] for a in extras if a.startswith("-")]
    hidden = len(extras) - len(options)
    text = "unrecognized arguments: " + (" ".join(options) if options else "")
    if hidden:
        text += f"{' and ' if options else ''}{hidden} more (not shown)"
    return text


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    args, extras = build_parser().parse_known_args(argv)
    if extras:
        raise _UsageError(_unrecognized(extras))
    return args


# --- output ---------------------------------------------------------------------------


class _Redactor:
    """Masks known secrets in text: each whole value, and each long word of it (so
    ``apiKey s3cr3t-token`` is masked even where only the token is quoted)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        words: set[str] = set()
        for value in values:
            value = value.strip()
            if len(value) >= 4:
                words.add(value)
            words.update(part for part in value.split() if len(part) >= 8)
        self._secrets = sorted(words, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _printable(text: str, limit: int | None = None) -> str:
    # Statuses and messages come from the server: never let them drive the terminal.
    clean = "".join(c if c.isprintable() else "?" for c in text)
    if limit is not None and len(clean) > limit:
        clean = clean[: limit - 3] + "..."
    return clean


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _live(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` can show a live, rewritten display."""
    return _isatty(stream) and environ.get("TERM") != "dumb"


def _colour_on(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return _live(stream, environ) and not environ.get("NO_COLOR")


def _width(stream: IO[str]) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    return max(40, columns) if columns > 0 else 80  # 0: a pty nobody sized


_PHASE_COLOURS: Final = {
    Phase.PENDING: "36",
    Phase.SUCCEEDED: "32",
    Phase.FAILED: "31",
    Phase.CANCELED: "33",
    Phase.UNKNOWN: "35",
}


def _paint(text: str, code: str | None, on: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if on and code else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe_failure(error: BaseException) -> str:
    """A short description of a failed poll, for progress lines."""
    if isinstance(error, ResponseError):
        hint = "" if error.retry_after is None else f", Retry-After {error.retry_after:g}s"
        return f"HTTP {error.status_code}{hint}"
    if isinstance(error, JobStatusError):
        return "the response body is not a JSON object"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- watching one wait ------------------------------------------------------------------


class _Watch:
    """What one wait has shown so far, fed only by what the adapter reports.

    ``on_status`` is the adapter's status callback, ``is_retryable`` wraps the
    classifier (it records the failure, then lets the real classifier decide), and
    ``will_sleep`` is called by the sleep the adapter asks for. Each calls
    ``listener(watch, event)`` with ``"status"``, ``"retry"`` or ``"sleep"``.
    """

    def __init__(
        self,
        waiter: JobWaiter,
        classify: Callable[[BaseException], bool],
        listener: Callable[[_Watch, str], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.waiter = waiter
        self.status: str | None = None
        self.phase: Phase | None = None
        self.failure: str | None = None
        self.knew_at: float | None = None  # clock time the final status was seen
        self.next_poll_at: float | None = None
        self._classify = classify
        self._listener = listener
        self._clock = clock
        self._failed_poll = 0

    @property
    def polls(self) -> int:
        return self.waiter.polls

    @property
    def retrying(self) -> bool:
        """Whether the latest poll failed (and the wait goes on)."""
        return self._failed_poll == self.waiter.polls > 0

    def on_status(self, job: object, status: str) -> None:
        self.status = status
        self.phase = self.waiter.phase
        if self.phase is not None and self.phase.terminal:
            self.knew_at = self._clock()
        self._listener(self, "status")

    def is_retryable(self, error: BaseException) -> bool:
        self._failed_poll = self.waiter.polls + 1  # the waiter counts it after we answer
        self.failure = _describe_failure(error)
        return self._classify(error)

    def will_sleep(self, seconds: float) -> None:
        self.next_poll_at = self._clock() + seconds
        self._listener(self, "retry" if self.retrying else "sleep")


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
        redact: _Redactor,
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
        watch.will_sleep(seconds)
        if self._mode != "live":
            time.sleep(seconds)
            return
        end = self._clock() + seconds
        while (left := end - self._clock()) > 0:
            self._draw(watch, left)
            time.sleep(min(left, _TICK))

    def finish(self, line: str | None, *, always: bool = False) -> None:
        """Clear the live line; then print ``line`` unless quiet (or ``always``)."""
        if self._drawn:
            self._write("\r\x1b[2K")
            self._drawn = False
        if line is not None and (always or self._mode != "off"):
            self._write(self._redact(_printable(line)) + "\n")

    def _log(self, watch: _Watch, event: str) -> None:
        elapsed = self._clock() - self._started
        if event == "status" and watch.phase is not None and not watch.phase.terminal:
            unknown = " (not a known status; still waiting)" if watch.phase is Phase.UNKNOWN else ""
            status = _printable(watch.status or "", 60)
            self._line(
                f"status {status!r} after {elapsed:.1f}s, {_plural(watch.polls, 'poll')}{unknown}"
            )
        elif event == "retry" and watch.next_poll_at is not None:
            wait = max(0.0, watch.next_poll_at - self._clock())
            self._line(f"poll {watch.polls} failed ({watch.failure}); retrying in {wait:.2f}s")

    def _line(self, text: str) -> None:
        self._write(self._redact(_printable(f"jobwait: {text}")) + "\n")

    def _draw(self, watch: _Watch, left: float | None) -> None:
        status = _printable(watch.status or "waiting", 30)
        parts = [f"{self._clock() - self._started:.1f}s", _plural(watch.polls, "poll")]
        if watch.retrying:
            parts.append(f"{watch.failure}")
        if left is not None:
            parts.append(f"{'retry' if watch.retrying else 'next poll'} in {left:.1f}s")
        rest = self._redact(_printable(", " + ", ".join(parts)))
        room = _width(self._stream) - 1 - len("jobwait: ") - len(status)
        rest = rest[: max(0, room)]
        code = _PHASE_COLOURS.get(watch.phase) if watch.phase else None
        self._write(f"\r\x1b[2Kjobwait: {_paint(status, code, self._colour)}{rest}")
        self._drawn = True

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


# --- jobwait wait -----------------------------------------------------------------------


def _resolve_headers(args: argparse.Namespace, environ: Mapping[str, str]) -> list[_Header]:
    headers: list[_Header] = list(args.header)
    for spec in args.header_env:
        where = f"--header-env {spec.name}={spec.variable}"
        value = environ.get(spec.variable)
        if value is None:
            raise _UsageError(f"{where}: environment variable {spec.variable} is not set")
        value = value.strip()
        if not value:
            raise _UsageError(f"{where}: environment variable {spec.variable} is empty")
        try:
            _check_header_value(spec.name, value)
        except argparse.ArgumentTypeError as exc:
            raise _UsageError(f"{where}: {exc}") from None
        headers.append(_Header(spec.name, value))
    return headers


def _statuses(args: argparse.Namespace) -> Statuses:
    given = {
        "succeeded": ("--success", args.success),
        "failed": ("--failure", args.failure),
        "canceled": ("--canceled", args.canceled),
    }
    seen: dict[str, str] = {}
    for option, values in given.values():
        for value in values or ():
            if seen.get(value, option) != option:
                raise _UsageError(f"status {value!r} is given to both {seen[value]} and {option}")
            seen[value] = option
    changes = {outcome: set(values) for outcome, (_, values) in given.items() if values}
    return Statuses().replace(**changes)


def _waiter(args: argparse.Namespace) -> JobWaiter:
    backoff = Backoff(
        initial=args.interval,
        factor=args.factor,
        max=max(args.max_interval, args.interval),  # the cap follows a larger interval
    )
    return JobWaiter(
        timeout=args.timeout,
        backoff=backoff,
        statuses=_statuses(args),
        status_of=field_reader(args.status_field),
        raise_on_failure=True,
        raise_on_cancel=True,  # so a canceled job ends as JobCanceledError: exit 4
    )


def _client_headers(headers: Sequence[_Header]) -> list[tuple[str, str]]:
    names = {h.name.lower() for h in headers}
    ours = [] if "user-agent" in names else [("User-Agent", _USER_AGENT)]
    return ours + [(h.name, h.value) for h in headers]


def _outcome_line(error: JobWaitError, code: int, args: argparse.Namespace) -> str:
    if code in (EXIT_FAILED, EXIT_CANCELED):
        return f"jobwait: {error}"
    line = f"jobwait: error: {error}"
    status_code = getattr(error, "status_code", None)
    if isinstance(status_code, int) and 300 <= status_code < 400 and not args.follow_redirects:
        line += " (the server redirected; pass --follow-redirects to follow it)"
    return line


def _success_line(waiter: JobWaiter) -> str:
    return (
        f"jobwait: job succeeded (status {waiter.last_status!r}, "
        f"{_plural(waiter.polls, 'poll')}, {waiter.elapsed:.3f}s elapsed)"
    )


def _print_json(job: object, stdout: IO[str]) -> None:
    stdout.write(json.dumps(job, indent=2) + "\n")
    stdout.flush()


def _wait_command(
    args: argparse.Namespace, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    headers = _resolve_headers(args, environ)
    waiter = _waiter(args)
    try:
        import httpx

        from . import httpx as http_adapter
    except ImportError:
        stderr.write(f"jobwait: error: {_MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    try:
        httpx.URL(args.url)
    except httpx.InvalidURL:
        raise _UsageError("the URL is not valid (not shown)") from None
    password = urlsplit(args.url).password
    redact = _Redactor([h.value for h in headers] + ([password] if password else []))
    mode = "off" if args.quiet else "live" if _live(stderr, environ) else "lines"
    progress = _WaitProgress(stderr, mode=mode, colour=_colour_on(stderr, environ), redact=redact)
    watch = _Watch(waiter, http_adapter.is_retryable, progress.event)
    job: object = None
    try:
        with (
            _redacting_logs(redact),
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
                waiter=waiter,
                is_retryable=watch.is_retryable,
                on_status=watch.on_status,
                sleep=lambda seconds: progress.sleep(watch, seconds),
            )
    except JobWaitError as error:
        code = exit_code_of(error)
        job = error.last_job
        progress.finish(_outcome_line(error, code, args), always=True)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        job = waiter.last_job
        progress.finish("jobwait: interrupted", always=True)
    except Exception as exc:  # noqa: BLE001 - a bug: one redacted line, never a traceback
        code = EXIT_SOFTWARE
        progress.finish(f"jobwait: internal error: {_describe_failure(exc)}", always=True)
    else:
        code = EXIT_SUCCEEDED
        progress.finish(_success_line(waiter))
    if args.json:
        _print_json(job, stdout)
    return code


# --- jobwait serve ----------------------------------------------------------------------

_EXAMPLE_ID: Final = "example-1"
_EXAMPLE_DURATIONS: Final = {"submitted": 1.0, "ready": 3.0, "started": 6.0}


def _serve_banner(server: JobServer, job_id: str, key: str | None, generated: bool) -> str:
    seconds = sum(_EXAMPLE_DURATIONS.values()) / server.board.time_scale
    lines = [
        f"jobwait: serving the simulated job API at {server.url}",
        f"jobwait: submitted job {job_id} (finishes in about {seconds:.3g} s)",
    ]
    command = f"jobwait wait {server.url}/jobs/{job_id}"
    if key is None:
        lines += ["", "Wait for it from another shell:", "", f"  {command}"]
    else:
        shown = key if generated else "<the key you passed to --api-key>"
        if generated:
            lines.insert(
                1, f"jobwait: API key for this session: {key} (generated; guards only this server)"
            )
        lines += [
            "",
            "Wait for it from another shell (the key goes in an environment variable,",
            "so it stays out of shell history and process lists):",
            "",
            f"  export JOBWAIT_AUTH='apiKey {shown}'",
            f"  {command} --header-env Authorization=JOBWAIT_AUTH",
        ]
    lines += [
        "",
        f"Submit more jobs with POST {server.url}/jobs (a JSON job script; see docs/server.md).",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


class _RequestLog:
    """Prints the requests a server answered since the last call (``serve``'s output)."""

    def __init__(self, server: JobServer, stdout: IO[str]) -> None:
        self._server = server
        self._stdout = stdout
        self._shown = 0
        self._started = server.now()

    def print_new(self) -> None:
        records = self._server.requests
        for record in records[self._shown :]:
            answer = "reset" if record.status_code is None else str(record.status_code)
            fault = f"  (scripted fault: {record.fault})" if record.fault else ""
            self._stdout.write(
                f"{record.time - self._started:9.2f}s  {record.method or '-'} "
                f"{_printable(record.path, 120)} -> {answer}{fault}\n"
            )
        self._shown = len(records)
        self._stdout.flush()


def _serve_command(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    try:
        from .server import JobServer
    except ImportError:
        stderr.write(f"jobwait: error: {_MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    generated = args.api_key is None and not args.no_auth
    key = secrets.token_urlsafe(16) if generated else args.api_key
    server = JobServer(api_key=key, time_scale=args.time_scale, port=args.port)
    try:
        server.start()
    except OSError as exc:
        stderr.write(
            f"jobwait: error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}\n"
        )
        return EXIT_FAILED
    log = _RequestLog(server, stdout)
    try:
        job_id = server.submit(
            id=_EXAMPLE_ID, name="jobwait serve example", durations=_EXAMPLE_DURATIONS
        )
        stdout.write(_serve_banner(server, job_id, key, generated) + "\n\n")
        stdout.flush()
        while True:  # until Ctrl-C
            time.sleep(_TICK)
            if not args.quiet:
                log.print_new()
    except KeyboardInterrupt:
        if not args.quiet:
            log.print_new()
    finally:
        server.close()
    stderr.write("jobwait: stopped\n")
    return EXIT_SUCCEEDED


# --- jobwait demo -----------------------------------------------------------------------

_DEMO_TIME_SCALE: Final = 20.0
# The statuses the demo's fleet reads; the display colours a status by the same table.
_DEMO_STATUSES: Final = Statuses()


@dataclass(frozen=True, slots=True)
class _DemoJob:
    """One scripted job of the demo; times are scripted seconds (divided by the scale).

    ``faults`` are the job's own view faults, keyed by ``poll=n``: the n-th request for
    the job that the server-wide faults let through to the API (a truncated or malformed
    answer counts; see docs/server.md). They change only this job's entry of a batch
    answer.
    """

    id: str
    trouble: str
    expected: str
    durations: tuple[float, float, float]  # submitted, ready, started
    faults: tuple[tuple[str, dict[str, Any]], ...] = ()
    failure: dict[str, str] | None = None

    def script(self) -> dict[str, Any]:
        from jobwait.testing import Fault

        script: dict[str, Any] = {
            "id": self.id,
            "name": self.trouble,
            "durations": dict(zip(("submitted", "ready", "started"), self.durations, strict=True)),
            "outcome": self.expected,
            "faults": [Fault(kind, **params) for kind, params in self.faults],
        }
        if self.failure is not None:
            script["failure"] = self.failure
        return script


@dataclass(frozen=True, slots=True)
class _DemoTrouble:
    """A server-wide fault of the demo: the server's requests ``first`` to
    ``first + count - 1`` (counted from 1) meet ``kind``, whichever jobs they ask for.
    ``retry_after`` is in scripted seconds."""

    kind: str
    first: int
    label: str
    count: int = 1
    retry_after: float | None = None

    def fault(self, scale: float) -> Fault:
        from jobwait.testing import Fault

        if self.retry_after is None:
            return Fault(self.kind, request=self.first, count=self.count)
        # A hint in scripted seconds, sent in real ones.
        hint = f"{self.retry_after / scale:.3f}"
        return Fault(self.kind, request=self.first, count=self.count, retry_after=hint)

    def describe(self, scale: float) -> str:
        last = self.first + self.count - 1
        numbers = f"#{self.first}" if last == self.first else f"#{self.first}-{last}"
        hint = "" if self.retry_after is None else f" (Retry-After {self.retry_after / scale:.2f}s)"
        return f"{numbers} {self.label}{hint}"


_DEMO_JOBS: Final = (
    _DemoJob("bell", "-", "completed", (0, 10, 20)),
    _DemoJob("ghz-3", "-", "completed", (5, 20, 40)),
    _DemoJob("qft-4", "-", "completed", (0, 15, 30)),
    _DemoJob("grover-2", "-", "completed", (0, 20, 35)),
    _DemoJob("vqe-h2", "status goes back", "completed", (5, 15, 60), (("regress", {"poll": 5}),)),
    _DemoJob(
        "shor-15",
        "fails",
        "failed",
        (0, 10, 35),
        failure={"code": "QuantumComputerError", "message": "calibration drifted"},
    ),
    _DemoJob("teleport", "canceled", "canceled", (0, 25, 20)),
    _DemoJob("qaoa-6", "left out of an answer", "completed", (0, 15, 45), (("drop", {"poll": 2}),)),
    _DemoJob("deutsch", "-", "completed", (0, 5, 25)),
    _DemoJob(
        "bv-5",
        "left out twice",
        "completed",
        (0, 15, 40),
        (("drop", {"poll": 2}), ("drop", {"poll": 5})),
    ),
    _DemoJob(
        "qwalk",
        "unknown status",
        "completed",
        (0, 10, 30),
        (("unknown_status", {"poll": 2, "status": "calibrating"}),),
    ),
    _DemoJob("long-run", "-", "completed", (5, 25, 70)),
)

# Never more than three failed requests in a row: the fleet's max_batch_errors is 5.
_DEMO_TROUBLE: Final = (
    _DemoTrouble("429", 2, "429 storm", count=3, retry_after=8.0),
    _DemoTrouble("reset", 6, "connection reset"),
    _DemoTrouble("truncated", 7, "truncated body"),
    _DemoTrouble("malformed_json", 8, "malformed JSON"),
    _DemoTrouble("503", 10, "503 burst", count=2),
)


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
            shown = _printable(status, 40)
            change = shown if previous is None else f"{_printable(previous, 40)} -> {shown}"
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
            await asyncio.sleep(_TICK / 2)

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
                f"{_plural(_ids_asked(record), 'job')} -> {_answer(record)}{fault}\n"
            )
        self._shown = len(records)

    def _draw(self) -> None:
        width = _width(self._stream) - 1
        server = self._server
        lines = []
        job_polls = 0
        for job_id, trail in self.trails.items():
            polls = len(server.requests_for(job_id))
            job_polls += polls
            lines.append(self._row(job_id, trail, polls, width))
        now = time.monotonic()
        requests = server.requests
        footer = (
            f"{len(self.knew_at)}/{len(self.trails)} finished, {now - self._started:.1f}s, "
            f"{len(requests)} requests for {job_polls} job polls"
        )
        if requests:
            footer += f", last {_answer(requests[-1])}"
        if (
            self._wake_at is not None
            and self._wake_at > now
            and len(self.knew_at) < len(self.trails)
        ):
            footer += f", wakes in {self._wake_at - now:.1f}s"
        lines.append(footer[:width])
        up = f"\x1b[{self._rows}F" if self._rows else ""
        self._write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
        self._rows = len(lines)

    def _row(self, job_id: str, trail: Sequence[str], polls: int, width: int) -> str:
        status = trail[-1] if trail else "waiting"
        code = _PHASE_COLOURS[_DEMO_STATUSES.phase(status)] if trail else None
        shown = _paint(f"{_printable(status, 14):<14}", code, self._colour)
        history = " > ".join(_printable(s, 20) for s in trail)
        rest = f" {_plural(polls, 'poll'):>9}  {history}"[: max(0, width - 25)]
        return f"{job_id:<10} {shown}{rest}"

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _outcome_of(result: object) -> str:
    if isinstance(result, JobWaitError):
        return f"error: {type(result).__name__}"
    status = result.get("status") if isinstance(result, dict) else None
    return _printable(str(status), 20)


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
    for job in _DEMO_JOBS:
        actual = _outcome_of(results[job.id])
        ok = actual == job.expected
        matched += ok
        polls = len(server.requests_for(job.id))
        job_polls += polls
        knew_at = progress.knew_at.get(job.id)
        delay = "-" if knew_at is None else f"{knew_at - server.terminal_at(job.id):.3f}s"
        rows.append(
            f"{job.id:<10} {job.trouble:<22} {job.expected:<10} {actual:<10} "
            f"{polls:>5}  {delay:>14}{'' if ok else '  <- not as scripted'}"
        )
    requests = server.requests
    faulted = sum(1 for record in requests if record.fault)
    trouble = ", ".join(t.describe(scale) for t in _DEMO_TROUBLE)
    totals = (
        f"server-wide trouble, by request number: {trouble}",
        f"{matched}/{len(_DEMO_JOBS)} jobs ended as scripted in {elapsed:.2f}s",
        (
            f"{len(requests)} requests ({faulted} met a scripted fault) carried {job_polls} "
            f"job polls; polled one job per request, the same polls would have taken "
            f"{job_polls} requests"
        ),
    )
    rows.append("")
    for line in totals:
        rows += textwrap.wrap(line, width=len(header) + 8, subsequent_indent="    ")
    return "\n".join(rows), matched == len(_DEMO_JOBS)


async def _run_demo(
    server: JobServer, key: str, scale: float, progress: _DemoProgress
) -> tuple[dict[str, Any], float]:
    """Wait for every demo job with one fleet over batch reads; return the outcomes and
    the seconds it took. Every decision (which jobs share a request, when it goes out,
    how a failed one is retried) is the fleet's."""
    import httpx

    from .httpx import async_wait_for_batch
    from .ionq import batch_url

    headers = {"Authorization": f"apiKey {key}", "User-Agent": _USER_AGENT}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10.0) as client:
        # Submit only once the client is ready (building one takes a while on a busy
        # machine), so every job is first polled while pending and meets its faults.
        for job in _DEMO_JOBS:
            server.submit(**job.script())
        started = progress.start()
        display = asyncio.create_task(progress.show_until_cancelled())
        try:
            results = await async_wait_for_batch(
                client,
                [job.id for job in _DEMO_JOBS],
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


def _demo_command(
    args: argparse.Namespace, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    try:
        from .server import JobServer
    except ImportError:
        stderr.write(f"jobwait: error: {_MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    mode = "off" if args.no_progress else "live" if _live(stderr, environ) else "lines"
    key = secrets.token_urlsafe(16)
    scale = args.time_scale
    faults = [trouble.fault(scale) for trouble in _DEMO_TROUBLE]
    with JobServer(api_key=key, time_scale=scale, faults=faults) as server:
        progress = _DemoProgress(
            stderr,
            server,
            mode=mode,
            colour=_colour_on(stderr, environ),
            ids=[job.id for job in _DEMO_JOBS],
        )
        if mode != "off":
            stderr.write(
                f"jobwait demo: {len(_DEMO_JOBS)} scripted jobs on {server.url} "
                f"(time scale {scale:g}x), one fleet, batch reads\n"
            )
        results, elapsed = asyncio.run(_run_demo(server, key, scale, progress))
        table, all_ok = _demo_table(server, progress, results, elapsed, scale)
    stdout.write(table + "\n")
    stdout.flush()
    return EXIT_SUCCEEDED if all_ok else EXIT_FAILED


# --- entry point ------------------------------------------------------------------------


class _RedactingFilter(logging.Filter):
    """Masks secrets in the library's log records before any handler sees them (a
    server may echo a header back, say as a status, and the waiter logs statuses)."""

    def __init__(self, redact: _Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@contextmanager
def _redacting_logs(redact: _Redactor) -> Iterator[None]:
    logger = logging.getLogger("jobwait")
    masking = _RedactingFilter(redact)
    logger.addFilter(masking)
    try:
        yield
    finally:
        logger.removeFilter(masking)


@contextmanager
def _library_logs_handled() -> Iterator[None]:
    """Give the library loggers a handler while a command runs.

    With no handler anywhere, logging's last-resort handler prints WARNING records raw
    on stderr (the waiter's "unknown status" warning, in the middle of a progress
    line). A ``NullHandler`` stops that; records still propagate to handlers the
    caller configured. The CLI reports unknown statuses itself.
    """
    attached = [(logging.getLogger(name), logging.NullHandler()) for name in ("jobwait", "httpx")]
    for logger, handler in attached:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, handler in attached:
            logger.removeHandler(handler)


def _dispatch(
    argv: Sequence[str] | None, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    try:
        args = _parse(argv)
    except SystemExit as exit_:  # --help and --version print, then "exit"
        return exit_.code if isinstance(exit_.code, int) else EXIT_SUCCEEDED
    try:
        if args.command == "wait":
            return _wait_command(args, stdout, stderr, environ)
        if args.command == "serve":
            return _serve_command(args, stdout, stderr)
        return _demo_command(args, stdout, stderr, environ)
    except _UsageError as exc:
        exc.prog = exc.prog or f"jobwait {args.command}"
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jobwait`` command with ``argv`` (default ``sys.argv[1:]``).

    Returns:
        The exit code (see :data:`EXIT_CODES`); it never raises, nor calls
        ``sys.exit``: ``python -m jobwait`` and the console script exit with it.
    """
    stdout, stderr, environ = sys.stdout, sys.stderr, os.environ
    try:
        with _library_logs_handled():
            return _dispatch(argv, stdout, stderr, environ)
    except _UsageError as exc:
        stderr.write(f"jobwait: error: {exc} (see '{exc.prog or 'jobwait'} --help')\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("jobwait: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, never a traceback
        stderr.write(f"jobwait: internal error (please report it): {_describe_failure(exc)}\n")
        return EXIT_SOFTWARE
