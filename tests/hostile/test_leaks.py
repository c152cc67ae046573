"""Leaks: threads, file descriptors and tasks after 100 waits of each kind.

The promise (the brief: adapters are short loops that own nothing): after a wait
returns or raises, nothing it started is left: no thread, no open socket, no asyncio
task, no async generator for the collector (a trio ``ResourceWarning``, an error here).
Checked on a good path (the job completes) and on bad ones (a bomb, a reset).
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio
from _hostile import Conn, serving
from _runners import TLS, run_cli
from test_size import bombs

from jobwait import Backoff
from jobwait.adapters.httpx import (
    async_wait_for_batch,
    async_wait_for_url,
    wait_for_batch,
    wait_for_url,
)

pytestmark = pytest.mark.realtime

N = 100
FAST = {
    "timeout": 2.0,
    "backoff": Backoff(initial=0.001, factor=1, max=0.001),
    "max_body_size": 64 * 1024,
}
CLI_N = 10  # each CLI run builds its own client (~50 ms)


def _done(conn: Conn) -> None:
    if conn.request.target.startswith("/jobs?"):
        conn.respond(200, {"jobs": [{"id": "a", "status": "completed"}]})
    else:
        conn.respond(200, {"id": "j1", "status": "completed"})


def _bomb(conn: Conn) -> None:
    encoding, body = bombs()["gzip,gzip"]
    conn.respond(200, body, [("Content-Encoding", encoding)])


def _reset(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
    conn.reset()


BEHAVIOURS: dict[str, Callable[[Conn], None]] = {"done": _done, "bomb": _bomb, "reset": _reset}


def _url_for(base: str) -> Callable[[tuple[str, ...]], httpx.URL]:
    return lambda ids: httpx.URL(base + "/jobs", params=[("ids", i) for i in ids])


def _sync(kind: str, base: str, n: int = N) -> None:
    with httpx.Client(verify=TLS, timeout=2.0) as client:
        for _ in range(n):
            try:
                if kind == "single":
                    wait_for_url(client, base + "/jobs/j1", max_fetch_errors=1, **FAST)
                else:
                    wait_for_batch(
                        client, ["a"], url_for=_url_for(base), max_batch_errors=1, **FAST
                    )
            except Exception:  # the outcome is not what this test checks
                pass


async def _async(kind: str, base: str, n: int = N) -> None:
    async with httpx.AsyncClient(verify=TLS, timeout=2.0) as client:
        for _ in range(n):
            try:
                if kind == "single":
                    await async_wait_for_url(client, base + "/jobs/j1", max_fetch_errors=1, **FAST)
                else:
                    await async_wait_for_batch(
                        client, ["a"], url_for=_url_for(base), max_batch_errors=1, **FAST
                    )
            except Exception:
                pass


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _threads() -> set[threading.Thread]:
    # trio runs getaddrinfo in its thread cache, whose idle workers linger ~10 s and are
    # reused: trio's, bounded, not left by a wait. The hostile server's own threads (one
    # per connection, ending as the client closes) are the server's, not the client's.
    return {t for t in threading.enumerate() if not t.name.startswith(("Trio thread", "hostile-"))}


def _measure(fn: Callable[[], Any]) -> tuple[int, int]:
    gc.collect()
    threads, fds = _threads(), _fds()
    fn()
    gc.collect()
    new = _threads() - threads
    if new:  # name them: a leak's name says whose it is
        print("threads started during the waits and still alive:", [t.name for t in new])
    return len(new), _fds() - fds


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds through /proc")
# Batch waits read through the same request function: their bad paths are the same.
@pytest.mark.parametrize(
    ("runtime", "kind", "behaviour"),
    [
        (r, k, b)
        for r in ("sync", "asyncio", "trio")
        for k in ("single", "batch")
        for b in BEHAVIOURS
        if k == "single" or b == "done"
    ],
)
def test_nothing_is_left_after_100_waits(runtime: str, kind: str, behaviour: str) -> None:
    leftover_tasks: list[int] = []

    async def on_asyncio(n: int) -> None:
        await _async(kind, server.base, n)
        leftover_tasks.append(len(asyncio.all_tasks()) - 1)

    with serving(BEHAVIOURS[behaviour]) as server:

        def waits(n: int = N) -> None:
            if runtime == "sync":
                _sync(kind, server.base, n)
            elif runtime == "asyncio":
                asyncio.run(on_asyncio(n))
            else:
                trio.run(_async, kind, server.base, n)

        # Measured inside the server's lifetime, after a warm-up (imports, caches), so
        # only what the waits keep is counted.
        waits(2)
        threads, fds = _measure(waits)
        assert len(server.requests) >= N
    assert threads <= 0, f"{threads} threads more"
    assert fds <= 0, f"{fds} file descriptors more"
    assert leftover_tasks in ([], [0, 0])  # none left in the loop after the waits


def test_nothing_is_left_after_cli_waits() -> None:
    with serving(_done) as server:

        def waits(n: int = CLI_N) -> None:
            for _ in range(n):
                assert run_cli(server.url())[0] == 0

        waits(1)
        threads, fds = _measure(waits)
    assert threads <= 0, f"{threads} threads more"  # one ending meanwhile is not a leak
    assert fds <= 0, f"{fds} file descriptors more"
