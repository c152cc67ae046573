"""One small runner per runtime: wait for a URL on the hostile server, report the outcome.

Every runner uses the same tight bounds (:data:`BOUNDS`), so a hostile behaviour costs
a fraction of a second when the library keeps its promises. ``run(runtime, ...)``
returns an :class:`Outcome` whatever happens: the job, or the exception that escaped,
the seconds it took, every jobwait log record at DEBUG, and for the CLI its exit code
and output.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from jobwait import Backoff
from jobwait.adapters.httpx import (
    async_wait_for_batch,
    async_wait_for_url,
    wait_for_batch,
    wait_for_url,
)

RUNTIMES = ["sync", "asyncio", "trio"]
WITH_CLI = [*RUNTIMES, "cli"]
# One TLS context for every client: building one per client costs ~30 ms (CA bundle).
TLS = ssl.create_default_context()
# Waits that end on their own (an error budget, a final status, a bomb) get a generous
# deadline, so a loaded CI machine cannot turn them into timeouts; waits that must run
# to their deadline (silence, drips, 429 for ever) pass TIGHT.
TIMEOUT = 0.2  # the job's deadline, tight
REQUEST = 0.15  # the client's timeout (each phase, and so the whole-request limit), tight
TIGHT: dict[str, Any] = {"timeout": TIMEOUT, "client_timeout": REQUEST}
GENEROUS_TIMEOUT = 3.0
GENEROUS_REQUEST = 2.0
FLOOR = 0.1
BOUNDS: dict[str, Any] = {
    "timeout": GENEROUS_TIMEOUT,
    "backoff": Backoff(initial=0.02, factor=1, max=0.02),
    "max_fetch_errors": 3,
}
# The promise: no wait ends later than its deadline plus one request timeout. The
# slack is for a loaded CI machine; a broken bound overshoots by seconds.
SLACK = 2.0
CLI_FLOOR = 1.0  # the CLI's request floor (its own timeout_floor default)


def exit_code(*errors: type[BaseException]) -> set[int]:
    """The CLI's exit codes for waits ending with these errors (via ``exit_code_of``)."""
    from jobwait.adapters.cli import exit_code_of

    return {exit_code_of(error("x")) for error in errors}  # type: ignore[arg-type]


@dataclass
class Outcome:
    runtime: str
    timeout: float | None = None
    request: float | None = None
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0
    logs: list[str] = field(default_factory=list)
    code: int | None = None
    stdout: str = ""
    stderr: str = ""

    def texts(self) -> str:
        """Everything jobwait said: error text, repr, causes, notes, logs, CLI output."""
        parts = [self.stdout, self.stderr, *self.logs]
        seen: set[int] = set()
        error = self.error
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            parts += [str(error), repr(error), *getattr(error, "__notes__", [])]
            for name in ("body_excerpt", "last_job", "last_status", "failure"):
                parts.append(repr(getattr(error, name, None)))
            error = error.__cause__ or error.__context__
        return "\n".join(parts)

    def bound(self) -> float:
        """The promise: the deadline plus one request timeout (plus slack for CI)."""
        request = CLI_FLOOR if self.runtime == "cli" else max(self.request or 0.0, FLOOR)
        return (self.timeout or 0.0) + request + SLACK


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _logs() -> Any:
    logger = logging.getLogger("jobwait")
    handler = _Records()
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def _client_kw(headers: dict[str, str] | None, timeout: float | None, follow: bool) -> Any:
    return {"headers": headers or {}, "timeout": timeout, "verify": TLS, "follow_redirects": follow}


def run(
    runtime: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    client_timeout: float | None = GENEROUS_REQUEST,
    follow_redirects: bool = False,
    cli_args: tuple[str, ...] = (),
    **options: Any,
) -> Outcome:
    """Wait for ``url`` under ``runtime`` ("sync", "asyncio", "trio", "cli")."""
    kw = {**BOUNDS, "timeout_floor": FLOOR, **options}
    client = _client_kw(headers, client_timeout, follow_redirects)
    outcome = Outcome(runtime, kw["timeout"], client_timeout)
    started = time.monotonic()
    with _logs() as lines:
        try:
            if runtime == "sync":
                with httpx.Client(**client) as c:
                    outcome.value = wait_for_url(c, url, **kw)
            elif runtime == "cli":
                outcome.code, outcome.stdout, outcome.stderr = run_cli(
                    url, headers=headers, timeout=kw["timeout"], extra=cli_args
                )
            else:

                async def main() -> Any:
                    async with httpx.AsyncClient(**client) as c:
                        return await async_wait_for_url(c, url, **kw)

                outcome.value = _run_async(runtime, main)
        except BaseException as exc:
            outcome.error = exc
    outcome.seconds = time.monotonic() - started
    outcome.logs = list(lines)
    return outcome


def run_batch(
    runtime: str,
    base: str,
    ids: list[str],
    *,
    headers: dict[str, str] | None = None,
    client_timeout: float | None = GENEROUS_REQUEST,
    **options: Any,
) -> Outcome:
    """``wait_for_batch`` / ``async_wait_for_batch`` of ``ids`` on ``base``."""
    kw = {**BOUNDS, "timeout_floor": FLOOR, "batch_window": 0.0, **options}
    kw.pop("max_fetch_errors", None)
    kw.setdefault("max_batch_errors", 3)

    def url_for(batch: tuple[str, ...]) -> httpx.URL:
        return httpx.URL(base + "/jobs", params=[("ids", i) for i in batch])

    client = _client_kw(headers, client_timeout, False)
    outcome = Outcome(runtime, kw["timeout"], client_timeout)
    started = time.monotonic()
    with _logs() as lines:
        try:
            if runtime == "sync":
                with httpx.Client(**client) as c:
                    outcome.value = wait_for_batch(c, ids, url_for=url_for, **kw)
            else:

                async def main() -> Any:
                    async with httpx.AsyncClient(**client) as c:
                        return await async_wait_for_batch(c, ids, url_for=url_for, **kw)

                outcome.value = _run_async(runtime, main)
        except BaseException as exc:
            outcome.error = exc
    outcome.seconds = time.monotonic() - started
    outcome.logs = list(lines)
    return outcome


def _run_async(runtime: str, main: Callable[[], Any]) -> Any:
    if runtime == "asyncio":
        return asyncio.run(main())
    return trio.run(main)


def run_cli(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    extra: tuple[str, ...] = (),
) -> tuple[int, str, str]:
    """``jobwait wait URL`` in this process: (exit code, stdout, stderr)."""
    from jobwait.adapters.cli import main

    argv = ["wait", url, "--timeout", str(timeout), "--interval", "0.02", "--json", *extra]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()
