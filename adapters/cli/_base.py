"""What every command shares: exit codes, the usage error, and a few constants."""

from __future__ import annotations

from typing import Final

import jobwait
from jobwait import (
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaitError,
)

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

MISSING_HTTPX: Final = "the command line needs httpx and h11: pip install 'jobwait[httpx]'"
TICK: Final = 0.2  # seconds between redraws of a live progress display
USER_AGENT: Final = f"jobwait/{jobwait.__version__}"


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


class CommandLineError(Exception):
    """Bad command-line usage: reported as one line, exit 2.

    ``prog`` names the command whose ``--help`` the line points to.
    """

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog
