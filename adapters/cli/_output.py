"""Terminal output and redaction: what may be printed, how it is coloured and sized,
and the masking of secrets in every line and library log record (with the core's one
:class:`~jobwait._plumbing.Redactor`, fed by its one rule, ``secret_values``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Final

from jobwait import JobStatusError, Phase
from jobwait._plumbing import Redactor as Redactor  # the CLI's lines mask with the core's
from jobwait._plumbing import preview, server_message, status_hint
from jobwait.http import ResponseError


def printable(text: str, limit: int | None = None) -> str:
    # Statuses and messages come from the server: never let them drive the terminal.
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if limit is None else preview(clean, limit, quote=False)


def shown(text: str, redact: Redactor, limit: int | None = None) -> str:
    """``text`` as it may be shown: secrets masked first, then made printable and cut
    to ``limit`` characters (so a cut can never leave part of a secret)."""
    return printable(redact(text), limit)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def live(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` can show a live, rewritten display."""
    return _isatty(stream) and environ.get("TERM") != "dumb"


def colour_on(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return live(stream, environ) and not environ.get("NO_COLOR")


def width(stream: IO[str]) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        columns = 0
    return max(40, columns) if columns > 0 else 80  # 0: a pty nobody sized


PHASE_COLOURS: Final = {
    Phase.PENDING: "36",
    Phase.SUCCEEDED: "32",
    Phase.FAILED: "31",
    Phase.CANCELED: "33",
    Phase.UNKNOWN: "35",
}


def paint(text: str, code: str | None, on: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if on and code else text


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe_failure(error: BaseException) -> str:
    """A short description of a failed poll, for progress lines and final lines: for
    an HTTP error, its status, the server's message (never its raw JSON), its
    Retry-After hint and, for a status the caller can fix, what to check."""
    if isinstance(error, ResponseError):
        hint = "" if error.retry_after is None else f", Retry-After {error.retry_after:g}s"
        message = server_message(error.body_excerpt or "")
        if message is None:  # no words from the server: the library's reason says it
            return f"{error}{hint}"
        check = status_hint(error.status_code)
        return f"HTTP {error.status_code}: {message}{hint}" + (f"; {check}" if check else "")
    if isinstance(error, JobStatusError):
        return "the response body is not a JSON object"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _RedactingFilter(logging.Filter):
    """Masks secrets in the library's log records before any handler sees them (a
    server may echo a header back, say as a status, and the waiter logs statuses)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


@contextmanager
def redacting_logs(redact: Redactor) -> Iterator[None]:
    logger = logging.getLogger("jobwait")
    masking = _RedactingFilter(redact)
    logger.addFilter(masking)
    try:
        yield
    finally:
        logger.removeFilter(masking)


@contextmanager
def library_logs_handled() -> Iterator[None]:
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
