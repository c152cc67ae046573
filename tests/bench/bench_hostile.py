"""Benchmark of the hostile-server bars (issue 10): bomb memory and cancel latency.

Run it directly (it is not a test and pytest skips ``tests/bench``)::

    python tests/bench/bench_hostile.py [--repeats R]

1. **Decoded-body memory.** A loopback server (the hostile suite's stdlib socket
   server) answers gzip bombs of about 1 KB, 10 KB and 100 KB on the wire (and the
   issue's ``gzip, gzip`` bomb of under 2 KB that inflates to 1 GiB, and a 405-byte br
   bomb of 256 MiB when brotli is installed). Each is read
   with ``max_body_size`` = 1 MiB two ways, side by side in this run:

   - *before*: the read jobwait used until this change, httpx's ``iter_bytes()`` with
     the size checked after each decoded chunk;
   - *after*: :func:`jobwait.adapters._http.request.request`, which decodes the raw bytes
     itself, 64 KiB at a time, and stops at the cap.

   The figure is the peak of ``tracemalloc`` (Python allocations, zlib's buffers
   included) above the baseline, against ``max_body_size``. Goal: under 3x.
2. **Cancel latency.** A wait stuck in a response that never comes is cancelled
   (``task.cancel()`` under asyncio, a cancel scope's deadline under trio); the figure
   is the time from the cancel to the wait's return, median / p90 / max of R runs.
   Goal: under 50 ms.

It prints figures and PASS/MISS and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import platform
import statistics
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hostile"))

from _hostile import Conn, serving

from jobwait.adapters._http.request import request
from jobwait.adapters.httpx import async_wait_for_url

LIMIT = 1 << 20
MIB = 1 << 20


def gzip_of_zeros(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(size // len(block))]
    parts.append(c.compress(bytes(size % len(block))))
    return b"".join(parts) + c.flush()


def bombs() -> list[tuple[str, str, bytes, int]]:
    """(name, Content-Encoding, body, inflated size)."""
    out = []
    for kb in (1, 10, 100):
        inflated = kb * 1030 * 1024  # zeros deflate about 1030:1
        out.append((f"gzip ~{kb} KB", "gzip", gzip_of_zeros(inflated), inflated))
    inner = gzip_of_zeros(1 << 30)
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out.append(("gzip, gzip (issue)", "gzip, gzip", c.compress(inner) + c.flush(), 1 << 30))
    try:
        import brotli
    except ImportError:  # br only when installed, as in httpx
        return out
    size = 256 << 20
    out.append(("br", "br", brotli.compress(bytes(size), quality=4), size))
    return out


def read_before(client: httpx.Client, url: str) -> str:
    """The read jobwait used before: httpx decodes, the size is checked afterwards."""
    with client.stream("GET", url) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > LIMIT:
                return "too large"
    return f"read {len(body)} bytes"


def read_after(client: httpx.Client, url: str) -> str:
    try:
        request(client, "GET", url, max_body_size=LIMIT)
    except Exception as exc:
        return "too large" if "max_body_size" in str(exc) else type(exc).__name__
    return "read"


def peak_of(fn: Callable[[], str]) -> tuple[str, int]:
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    try:
        outcome = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, peak - base


def memory() -> None:
    print(f"\n1. Peak memory growth reading a gzip bomb, max_body_size = {LIMIT // MIB} MiB")
    print(
        f"   {'bomb':<20}{'wire':>9}{'inflates to':>13}{'before':>12}{'after':>12}"
        f"{'after/cap':>11}  goal < 3x"
    )
    for name, encoding, body, inflated in bombs():

        def bomb(conn: Conn, body: bytes = body, encoding: str = encoding) -> None:
            conn.respond(200, body, [("Content-Encoding", encoding)])

        with serving(bomb) as server, httpx.Client(timeout=30) as client:
            url = server.url()
            before, before_peak = peak_of(lambda c=client, u=url: read_before(c, u))
            after, after_peak = peak_of(lambda c=client, u=url: read_after(c, u))
        assert before == after == "too large", (before, after)
        ratio = after_peak / LIMIT
        print(
            f"   {name:<20}{len(body):>8}B{inflated / MIB:>10.0f} MiB"
            f"{before_peak / MIB:>8.1f} MiB{after_peak / MIB:>8.2f} MiB{ratio:>10.2f}x"
            f"  {'PASS' if ratio < 3 else 'MISS'}"
        )


def _never(conn: Conn) -> None:
    conn.pause(30)


async def _one_cancel(runtime: str, url: str, client: httpx.AsyncClient) -> float:
    async def wait() -> None:
        await async_wait_for_url(client, url, timeout=None)

    if runtime == "asyncio":
        task = asyncio.ensure_future(wait())
        await asyncio.sleep(0.05)
        cancelled = time.perf_counter()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return time.perf_counter() - cancelled
    with trio.move_on_after(0.05) as scope:
        await wait()
    assert scope.cancelled_caught
    return trio.current_time() - scope.deadline


def cancel_latency(repeats: int) -> None:
    print(f"\n2. Cancel to return, a wait stuck in a response that never comes ({repeats} runs)")
    print(f"   {'runtime':<10}{'median':>10}{'p90':>10}{'max':>10}  goal < 50 ms")
    with serving(_never) as server:
        for runtime in ("asyncio", "trio"):

            async def main(runtime: str = runtime) -> list[float]:
                async with httpx.AsyncClient(timeout=None) as client:
                    return [
                        await _one_cancel(runtime, server.url(), client) for _ in range(repeats)
                    ]

            times = asyncio.run(main()) if runtime == "asyncio" else trio.run(main)
            times.sort()
            med, p90, worst = (
                statistics.median(times),
                times[int(0.9 * (len(times) - 1))],
                times[-1],
            )
            print(
                f"   {runtime:<10}{med * 1000:>8.2f}ms{p90 * 1000:>8.2f}ms{worst * 1000:>8.2f}ms"
                f"  {'PASS' if worst < 0.05 else 'MISS'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(
        f"bench_hostile: Python {platform.python_version()}, httpx {httpx.__version__}, "
        f"trio {trio.__version__}, {platform.machine()}"
    )
    memory()
    cancel_latency(args.repeats)


if __name__ == "__main__":
    main()
