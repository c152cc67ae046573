"""Terminal output and redaction: what may be printed, how it is coloured and sized,
and the masking of secrets in every line and library log record."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Final

from jobwait import JobStatusError, Phase, ResponseError


class Redactor:
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


def printable(text: str, limit: int | None = None) -> str:
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
    """A short description of a failed poll, for progress lines."""
    if isinstance(error, ResponseError):
        hint = "" if error.retry_after is None else f", Retry-After {error.retry_after:g}s"
        return f"HTTP {error.status_code}{hint}"
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
