"""``jobwait serve``: the simulated job API on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Final
from urllib.parse import urlsplit

from ._base import EXIT_FAILED, EXIT_SOFTWARE, EXIT_SUCCEEDED, MISSING_HTTPX, TICK
from ._output import printable
from ._push import webhooks

if TYPE_CHECKING:
    from ..server import JobServer

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


def _with_webhooks(banner: str, url: str) -> str:
    """The banner, telling where notices go and how ``wait`` takes them."""
    parts = urlsplit(url)
    lines = banner.split("\n")
    lines.insert(2, f"jobwait: posting a webhook notice to {url} on each status change")
    listen = f" --listen {parts.hostname}:{parts.port or 80}"
    return "\n".join(
        line + listen if line.startswith("  jobwait wait ") else line for line in lines
    )


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
                f"{printable(record.path, 120)} -> {answer}{fault}\n"
            )
        self._shown = len(records)
        self._stdout.flush()


def serve_command(
    args: argparse.Namespace,
    stdout: IO[str],
    stderr: IO[str],
    environ: Mapping[str, str] = os.environ,
) -> int:
    try:
        from ..server import JobServer
    except ImportError:
        stderr.write(f"jobwait: error: {MISSING_HTTPX}\n")
        return EXIT_SOFTWARE
    generated = args.api_key is None and not args.no_auth
    key = secrets.token_urlsafe(16) if generated else args.api_key
    hooks = webhooks(args, environ)
    server = JobServer(api_key=key, time_scale=args.time_scale, port=args.port, webhooks=hooks)
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
        banner = _serve_banner(server, job_id, key, generated)
        if hooks is not None:
            banner = _with_webhooks(banner, hooks.url)
        stdout.write(banner + "\n\n")
        stdout.flush()
        while True:  # until Ctrl-C
            time.sleep(TICK)
            if not args.quiet:
                log.print_new()
    except KeyboardInterrupt:
        if not args.quiet:
            log.print_new()
    finally:
        server.close()
    stderr.write("jobwait: stopped\n")
    return EXIT_SUCCEEDED
