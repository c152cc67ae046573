"""The ``jobwait`` command: wait for a job from a shell, serve the simulated API, run a demo.

::

    jobwait wait URL [options]   poll an HTTP JSON job endpoint until the job finishes
    jobwait serve [options]      serve the simulated IonQ-style job API on loopback
    jobwait demo [options]       wait for a scripted batch of jobs on an embedded server

Everything here is IO and presentation. Every decision (when to poll, how long to
sleep, what a status or an HTTP answer means, when to give up) is the core's: ``wait``
builds a :class:`jobwait.JobWaiter` from the options and hands it to
:func:`jobwait.adapters.httpx.wait_for_url`. Progress is read from what the adapter
reports: the ``on_poll`` :class:`jobwait.PollReport` after every poll (status, polls,
elapsed, next sleep, the fetch error) and the ``sleep`` it asks for (to count down).
The final line is built from the error's type and attributes (``_outcome``).
``demo`` waits for all its jobs with one :class:`jobwait.JobFleet` over batch reads
(:func:`jobwait.adapters.httpx.async_wait_for_batch`); its display reads the fleet's
``on_status`` and ``sleep`` and the embedded server's request log. Nothing is guessed.

Secrets: header values given with ``--header`` or ``--header-env`` are never printed.
A malformed ``--header`` is reported by name (or not at all when it has no colon),
unrecognised arguments are reported by option name only, and every line written to
stderr passes through a redactor that masks the header values as a last line of
defence (against, say, a library error message that quotes a header). Masking comes
before any cut to a display limit (``_output.shown``).

Logging: the library logs unknown statuses at WARNING on the ``"jobwait"`` logger.
While a command runs, that logger (and httpx's) has a ``NullHandler``, so logging's
last-resort handler never prints records onto the terminal; records still propagate
to any handler the caller configured. The CLI shows unknown statuses in its own
progress output instead.

The CLI needs the ``httpx`` extra (httpx and h11): ``pip install 'jobwait[httpx]'``.

Layout (the CLI imports adapters; nothing imports the CLI):

- ``_parser``: every command's options, in one place (``build_parser``); add an
  option there and read it in the command's module.
- ``_types``: argument types (numbers, URL, port, headers, status field).
- ``_output``: terminal output and redaction (printable text, colour, width, the
  redactor, the log filters), shared by the commands.
- ``_wait``, ``_serve``, ``_demo``: one module per command; the demo's jobs are data
  (the JSON job scripts ``POST /jobs`` accepts).
- ``_outcome``: the final line of a wait that ended badly: what was wrong, what to do.
- ``_base``: exit codes, the usage error and constants every command shares.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO

from ._base import EXIT_CODES as EXIT_CODES
from ._base import EXIT_INTERRUPTED, EXIT_SOFTWARE, EXIT_SUCCEEDED, EXIT_USAGE, CommandLineError
from ._base import exit_code_of as exit_code_of
from ._demo import demo_command
from ._output import describe_failure, library_logs_handled
from ._parser import build_parser as build_parser
from ._parser import parse, usage_text
from ._serve import serve_command
from ._wait import wait_command

__all__ = ["EXIT_CODES", "exit_code_of", "main"]


def _dispatch(
    argv: Sequence[str] | None, stdout: IO[str], stderr: IO[str], environ: Mapping[str, str]
) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # a bare `jobwait`: show what it can do (exit 2: nothing was done)
        stdout.write(usage_text())
        return EXIT_USAGE
    try:
        args = parse(argv)
    except SystemExit as exit_:  # --help and --version print, then "exit"
        return exit_.code if isinstance(exit_.code, int) else EXIT_SUCCEEDED
    try:
        if args.command == "wait":
            return wait_command(args, stdout, stderr, environ)
        if args.command == "serve":
            return serve_command(args, stdout, stderr, environ)
        return demo_command(args, stdout, stderr, environ)
    except CommandLineError as exc:
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
        with library_logs_handled():
            return _dispatch(argv, stdout, stderr, environ)
    except CommandLineError as exc:
        stderr.write(f"jobwait: error: {exc} (see '{exc.prog or 'jobwait'} --help')\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("jobwait: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, never a traceback
        stderr.write(f"jobwait: internal error (please report it): {describe_failure(exc)}\n")
        return EXIT_SOFTWARE
