"""Every command's arguments, in one place: ``build_parser`` defines them all.

To add an option, add it to the command's ``_add_*`` function below (with a type
from ``_types`` if the value needs checking) and read it in the command's module.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, Final, NoReturn

import jobwait
from jobwait.http import DEFAULT_MAX_BODY_SIZE

from . import _push, _types
from ._base import EXIT_CODES, CommandLineError

DEMO_TIME_SCALE: Final = 40.0


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (raised, so ``main`` can return 2), not a
    usage dump and a ``sys.exit``."""

    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message, self.prog)


def _exit_codes_epilog() -> str:
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    return f"exit codes:\n{rows}"


_WAIT_EPILOG = f"""\
{_exit_codes_epilog()}

examples:
  jobwait wait https://api.example.com/jobs/42 --timeout 600
  jobwait wait http://127.0.0.1:8265/api/jobs/$SUBMISSION_ID          # Ray: no option needed
  export API_AUTH="Bearer $(cat token)"
  jobwait wait "$JOB_URL" --header-env Authorization=API_AUTH --json > job.json
  jobwait wait "$URL" --status-field state.phase --success DONE --failure ERROR
  jobwait wait http://127.0.0.1:5555/api/task/info/$TASK_ID --api celery-flower
  jobwait wait "$URL" --api azure --on-unknown fail --retry-http 404

The job is polled at once, then after --interval seconds, each wait --factor times
the last, up to --max-interval: by default at t = 0, 1, 2.5, 4.75, ... s, then every
30 s. A 429 or 5xx answer, a dropped connection or a body that is not JSON is retried
on the same schedule (a server's Retry-After is honoured); --max-fetch-errors failures
in a row (default 5) end the wait with exit code 5.
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


def _add_wait(commands: Any) -> argparse.ArgumentParser:
    wait: argparse.ArgumentParser = commands.add_parser(
        "wait",
        help="poll an HTTP JSON job endpoint until the job finishes",
        description="Poll URL (GET) until the job it returns finishes; the exit code\n"
        "tells how it ended. Progress goes to stderr, the job (with --json) to stdout.",
        epilog=_WAIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    wait.add_argument("url", metavar="URL", type=_types.url, help="the job's URL (http or https)")
    job = wait.add_argument_group(
        "what the job says",
        "With none of --api, --pending, --success, --failure, --canceled, the job is read "
        "with --api auto: the status and its meaning are found in any job API's answer. "
        "Listing statuses makes the vocabulary yours (IonQ's by default; each list "
        "replaces that part of it); with --api NAME an option given here replaces that "
        "part of the profile, with --api auto listed statuses join its vocabulary.",
    )
    job.add_argument(
        "--api",
        metavar="NAME",
        type=_types.api,
        help="read the job as this API does (default: auto, when no status is listed): "
        + ", ".join(jobwait.ApiProfile.names()),
    )
    job.add_argument(
        "--status-field",
        metavar="PATH",
        type=_types.status_field,
        help="dotted path of the status in the job JSON, e.g. state.phase (default: found "
        "by --api auto; status when statuses are listed)",
    )
    job.add_argument(
        "--failure-field",
        metavar="PATH",
        type=_types.status_field,
        help="dotted path of a failed job's reason, e.g. error.message (default: found by "
        "--api auto; failure when statuses are listed)",
    )
    for option, dest, default in (
        ("--pending", "pending", "submitted, ready, started, running"),
        ("--success", "success", "completed"),
        ("--failure", "failure", "failed"),
        ("--canceled", "canceled", "canceled"),
    ):
        job.add_argument(
            option,
            dest=dest,
            metavar="STATUS",
            action="append",
            help=f"a status meaning {dest}; repeatable; replaces the default ({default})"
            + (" and stops meaning pending" if dest != "pending" else ""),
        )
    job.add_argument(
        "--case-insensitive",
        action="store_true",
        default=None,
        help="match statuses ignoring case (SUCCESS is success)",
    )
    job.add_argument(
        "--on-unknown",
        choices=("wait", "fail"),
        help="a status in none of the lists: keep waiting (default) or fail at once "
        "(exit 5, naming the status and the known ones)",
    )
    schedule = wait.add_argument_group("when to poll and when to give up")
    schedule.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_types.timeout,
        default=300.0,
        help="give up after this long (default 300; 0 polls once; 'none' never gives up)",
    )
    schedule.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_types.positive_seconds,
        default=1.0,
        help="first wait between polls (default 1)",
    )
    schedule.add_argument(
        "--factor",
        metavar="X",
        type=_types.factor,
        default=1.5,
        help="each wait is X times the last (default 1.5)",
    )
    schedule.add_argument(
        "--max-interval",
        metavar="SECONDS",
        type=_types.positive_seconds,
        default=30.0,
        help="longest wait between polls (default 30; never below --interval)",
    )
    schedule.add_argument(
        "--max-fetch-errors",
        metavar="N",
        type=_types.count,
        default=5,
        help="give up (exit 5) after N failed polls in a row: HTTP 429/5xx, a dropped "
        "connection, a body that is not JSON (default 5)",
    )
    http = wait.add_argument_group("HTTP")
    http.add_argument(
        "--header",
        metavar="'NAME: VALUE'",
        type=_types.header,
        action="append",
        default=[],
        help="send this header; repeatable (prefer --header-env for secrets)",
    )
    http.add_argument(
        "--header-env",
        metavar="NAME=ENVVAR",
        type=_types.header_env,
        action="append",
        default=[],
        help="send header NAME with the value of environment variable ENVVAR, which "
        "keeps a secret out of shell history and process lists; repeatable",
    )
    http.add_argument(
        "--retry-http",
        metavar="CODE",
        type=_types.http_status,
        action="append",
        default=[],
        help="an HTTP status that means 'not there yet' (e.g. 404 just after submission): "
        "polled again like a pending job until the timeout; repeatable",
    )
    http.add_argument(
        "--follow-redirects",
        action="store_true",
        help="follow 3xx redirects (off by default: a redirect ends the wait with exit 5)",
    )
    http.add_argument(
        "--max-body-size",
        metavar="BYTES",
        type=_types.count,
        default=DEFAULT_MAX_BODY_SIZE,
        help="largest answer read, after decompression; a larger one ends the wait with "
        f"exit 5 (default {DEFAULT_MAX_BODY_SIZE}, 1 MiB)",
    )
    _push.add_listen(wait)
    out = wait.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print the final job (or the last job seen, or null) as JSON on stdout",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress; errors still print")
    return wait


def _add_serve(commands: Any) -> argparse.ArgumentParser:
    serve: argparse.ArgumentParser = commands.add_parser(
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
        "--port", type=_types.port, default=0, help="port to listen on (default: a free one)"
    )
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--api-key", metavar="KEY", help="require 'Authorization: apiKey KEY'")
    auth.add_argument("--no-auth", action="store_true", help="require no key at all")
    serve.add_argument(
        "--time-scale",
        metavar="X",
        type=_types.time_scale,
        default=1.0,
        help="scripted seconds per real second (default 1)",
    )
    serve.add_argument(
        "-q", "--quiet", action="store_true", help="do not print each request served"
    )
    _push.add_webhook(serve)
    return serve


def _add_demo(commands: Any) -> argparse.ArgumentParser:
    demo: argparse.ArgumentParser = commands.add_parser(
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
        type=_types.time_scale,
        default=DEMO_TIME_SCALE,
        help=f"scripted seconds per real second (default {DEMO_TIME_SCALE:g}: about "
        "five seconds in all)",
    )
    demo.add_argument("--no-progress", action="store_true", help="only print the summary")
    return demo


def build_parser() -> argparse.ArgumentParser:
    """The ``jobwait`` argument parser (its ``error`` raises instead of exiting)."""
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
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
    subparsers = {
        "wait": _add_wait(commands),
        "serve": _add_serve(commands),
        "demo": _add_demo(commands),
    }
    return parser, subparsers


def _unrecognized(extras: Sequence[str], known: Sequence[str]) -> str:
    # argparse would echo them all, and a mistyped option's value may be a secret
    # (`--haeder 'Authorization: ...'`): name the options, count the rest.
    options = [a.partition("=")[0] for a in extras if a.startswith("-")]
    hidden = len(extras) - len(options)
    text = "unrecognized arguments: " + (" ".join(options) if options else "")
    if hidden:
        text += f"{' and ' if options else ''}{hidden} more (not shown)"
    guesses = {
        option: match[0]
        for option in options
        if (match := difflib.get_close_matches(option, known, n=1, cutoff=0.6))
    }
    if len(guesses) == 1:
        text += f"; did you mean {next(iter(guesses.values()))}?"
    elif guesses:
        text += "; did you mean " + ", ".join(f"{g} (for {o})" for o, g in guesses.items()) + "?"
    return text


def usage_text() -> str:
    """The main help, printed by a bare ``jobwait``."""
    return build_parser().format_help()


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; unknown arguments are a :class:`CommandLineError` that points at
    the ``--help`` of the command they were given to."""
    parser, subparsers = _build()
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = subparsers[args.command]
        known = [o for action in command._actions for o in action.option_strings]
        raise CommandLineError(_unrecognized(extras, known), command.prog)
    return args
