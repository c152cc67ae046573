"""Size: huge declared and chunked bodies, and compression bombs.

The promise (docs/http.md, "Bounded bodies"): every body jobwait reads is capped at
``max_body_size`` after decompression, while decoding, with peak memory a small
multiple of the cap plus one read chunk; an oversized body ends the wait at once with
a non-retryable ``JobFetchError`` whose cause is a ``ResponseError``.
"""

from __future__ import annotations

import functools
import gc
import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from _hostile import Conn, serving
from _runners import RUNTIMES, WITH_CLI, exit_code, run, run_batch

from jobwait import JobFetchError
from jobwait.http import ResponseError

pytestmark = pytest.mark.realtime

LIMIT = 256 * 1024
INFLATED = 16 << 20  # what each bomb decodes to: 64x the cap


def _zlib(data: bytes, wbits: int) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


@functools.cache
def bombs() -> dict[str, tuple[str, bytes]]:
    zeros = bytes(INFLATED)
    gz = _zlib(zeros, 31)
    out = {
        "gzip": ("gzip", gz),
        "deflate": ("deflate", _zlib(zeros, 15)),
        "raw-deflate": ("deflate", _zlib(zeros, -15)),
        "gzip,gzip": ("gzip, gzip", _zlib(gz, 31)),
        "gzip,deflate": ("gzip, deflate", _zlib(gz, 15)),
        "x-gzip,identity": ("x-gzip, identity", gz),
    }
    try:
        import brotli
    except ImportError:
        pass
    else:
        br = brotli.compress(zeros, quality=4)
        out["br"] = ("br", br)
        out["br,gzip"] = ("br, gzip", _zlib(br, 31))
    return out


BOMBS = ["gzip", "deflate", "raw-deflate", "gzip,gzip", "gzip,deflate", "x-gzip,identity"]
BROTLI = ["br", "br,gzip"]


def _bomb(name: str) -> Callable[[Conn], None]:
    encoding, body = bombs()[name]

    def behaviour(conn: Conn) -> None:
        conn.respond(200, body, [("Content-Encoding", encoding)])

    return behaviour


def _too_large(outcome: object) -> None:
    error = getattr(outcome, "error", None)
    assert isinstance(error, JobFetchError), error
    assert isinstance(error.__cause__, ResponseError)
    assert "max_body_size" in str(error.__cause__)
    assert not error.__cause__.retryable
    assert error.polls == 1


def _peak(fn: Callable[[], object]) -> tuple[object, int]:
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _brotli_or_skip(name: str) -> None:
    if name in BROTLI:
        pytest.importorskip("brotli", reason="br bombs need brotli installed (as httpx)")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", BOMBS + BROTLI)
def test_compression_bomb_is_capped_while_decoding(runtime: str, name: str) -> None:
    _brotli_or_skip(name)
    with serving(_bomb(name)) as server:
        outcome, peak = _peak(lambda: run(runtime, server.url(), max_body_size=LIMIT))
    _too_large(outcome)
    # A small multiple of the cap plus one read chunk (64 KiB), whatever it inflates to.
    assert peak < 3 * LIMIT + 1024 * 1024, f"peak {peak / 1024:.0f} KiB"


@pytest.mark.parametrize("name", ["gzip,gzip"])
def test_compression_bomb_cli(name: str) -> None:
    with serving(_bomb(name)) as server:
        outcome = run("cli", server.url())
    assert outcome.code in exit_code(JobFetchError), outcome.stderr
    assert any("max_body_size" in line for line in outcome.logs)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_compression_bomb_in_a_batch_answer(runtime: str) -> None:
    with serving(_bomb("gzip,gzip")) as server:
        outcome, peak = _peak(
            lambda: run_batch(runtime, server.base, ["a", "b"], max_body_size=LIMIT)
        )
    assert outcome.error is None, outcome.error
    for job_id in ("a", "b"):
        error = outcome.value[job_id]
        assert isinstance(error, JobFetchError)
        assert isinstance(error.__cause__, ResponseError)
        assert "max_body_size" in str(error.__cause__)
    assert peak < 3 * LIMIT + 1024 * 1024, f"peak {peak / 1024:.0f} KiB"


def _endless_empty_blocks(conn: Conn) -> None:
    # A gzip stream of empty stored blocks: it decodes to nothing, for ever.
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
    conn.send(head)
    block = b"\x00\x00\x00\xff\xff" * 4000
    chunk = f"{len(block):x}\r\n".encode() + block + b"\r\n"
    conn.send(b"a\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\r\n")
    while conn.pause(0):
        conn.send(chunk)


def _declared_huge(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n{")
    conn.pause(5)


def _chunked_endless(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"8000\r\n" + b" " * 0x8000 + b"\r\n"
    while conn.pause(0):
        conn.send(piece)


def _chunked_huge_chunk(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n")
    while conn.pause(0):
        conn.send(b"x" * 65536)


def _identity_endless_no_length(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    while conn.pause(0):
        conn.send(b"[" * 65536)


SIZE = {
    "gzip-of-nothing-forever": _endless_empty_blocks,
    "declared-1TB": _declared_huge,
    "chunked-forever": _chunked_endless,
    "one-huge-chunk": _chunked_huge_chunk,
    "no-length-forever": _identity_endless_no_length,
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(SIZE))
def test_huge_bodies_end_the_wait_at_once(runtime: str, name: str) -> None:
    with serving(SIZE[name]) as server:
        outcome = run(runtime, server.url(), max_body_size=LIMIT)
    if runtime == "cli":
        assert outcome.code in exit_code(JobFetchError), outcome.stderr
        assert any("max_body_size" in line for line in outcome.logs)
        return
    _too_large(outcome)


def _zlib_all(data: bytes, encodings: list[str]) -> bytes:
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15, "raw-deflate": -15}
    for name in encodings:
        if name == "br":
            import brotli

            data = brotli.compress(data)
        elif name != "identity":
            data = _zlib(data, wbits[name])
    return data


VALID = {
    "gzip": ["gzip"],
    "deflate": ["deflate"],
    "raw-deflate": ["raw-deflate"],
    "gzip,gzip": ["gzip", "gzip"],
    "deflate,gzip,identity": ["deflate", "gzip", "identity"],
    "br": ["br"],
    "br,gzip": ["br", "gzip"],
}
JOB_WITH_PADDING = {"id": "j1", "status": "completed", "pad": "abc" * 50_000}


def _encoded_job(steps: list[str], chunk: int) -> Callable[[Conn], None]:
    import json

    body = _zlib_all(json.dumps(JOB_WITH_PADDING).encode(), steps)
    header = ", ".join("deflate" if s == "raw-deflate" else s for s in steps)

    def behaviour(conn: Conn) -> None:
        # Chunked in small pieces, so every decoder is fed across chunk boundaries.
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {header}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        conn.send(head.encode())
        for i in range(0, len(body), chunk):
            piece = body[i : i + chunk]
            conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.send(b"0\r\n\r\n")

    return behaviour


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(VALID))
def test_an_encoded_job_is_decoded_across_chunk_boundaries(runtime: str, name: str) -> None:
    if "br" in VALID[name]:
        pytest.importorskip("brotli", reason="br needs brotli installed (as httpx)")
    with serving(_encoded_job(VALID[name], chunk=7)) as server:
        outcome = run(runtime, server.url())
    assert outcome.error is None, outcome.error
    assert outcome.value == JOB_WITH_PADDING
