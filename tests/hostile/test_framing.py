"""Framing: bad chunk sizes, conflicting lengths, truncation, HTTP/1.0, 1xx, huge headers.

The promise (docs/http.md, "How responses are classified"): a malformed answer is
transport trouble (retryable; the wait ends with ``JobFetchError`` once
``max_fetch_errors`` are spent, or ``JobTimeoutError``), a well-formed one is read as
usual; never a raw exception, never past the bound.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _hostile import Conn, serving
from _runners import WITH_CLI, Outcome, exit_code, run

from jobwait import JobFetchError, JobTimeoutError

pytestmark = pytest.mark.realtime

JOB = b'{"id": "j1", "status": "completed"}'


def _raw(data: bytes) -> Callable[[Conn], None]:
    def behaviour(conn: Conn) -> None:
        conn.send(data)

    return behaviour


def _huge_headers(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n" + JOB)


def _many_headers(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\n" + b"X-H: a\r\n" * 20_000 + b"Content-Length: 2\r\n\r\n{}")


def _continue_then_job(conn: Conn) -> None:
    conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.respond(200, JOB)


BROKEN: dict[str, Callable[[Conn], None]] = {
    "bad-chunk-size": _raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ),
    "chunk-longer-than-said": _raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n" + JOB + b"\r\n0\r\n\r\n"
    ),
    "conflicting-content-length": _raw(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 35\r\n\r\n" + JOB
    ),
    "negative-content-length": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n" + JOB),
    "truncated-body": _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + JOB[:10]),
    "truncated-chunked": _raw(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n23\r\n{"st'),
    "garbage-status-line": _raw(b"HELLO THERE\r\n\r\n"),
    "status-code-999": _raw(b"HTTP/1.1 999 What\r\nContent-Length: 2\r\n\r\n{}"),
    "huge-header": _huge_headers,
    # An upgrade nobody asked for: h11 refuses it as a protocol error (retried).
    "unsolicited-101": _raw(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    ),
    "many-headers": _many_headers,
}
WELL_FORMED: dict[str, Callable[[Conn], None]] = {
    "http-1.0-without-length": _raw(b"HTTP/1.0 200 OK\r\n\r\n" + JOB),
    "100-continue-then-answer": _continue_then_job,
    "chunked-one-byte-chunks": _raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in JOB)
        + b"0\r\n\r\n"
    ),
}


def _fetch_failed_in_time(outcome: Outcome) -> None:
    if outcome.runtime == "cli":
        assert outcome.code in exit_code(JobFetchError, JobTimeoutError), outcome.stderr
        return
    assert isinstance(outcome.error, JobFetchError | JobTimeoutError), outcome.error
    assert outcome.seconds < outcome.bound(), f"{outcome.seconds:.2f}s"


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(BROKEN))
def test_malformed_answers_are_failed_polls(runtime: str, name: str) -> None:
    with serving(BROKEN[name]) as server:
        outcome = run(runtime, server.url())
    _fetch_failed_in_time(outcome)


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(WELL_FORMED))
def test_unusual_but_valid_framing_is_read(runtime: str, name: str) -> None:
    with serving(WELL_FORMED[name]) as server:
        outcome = run(runtime, server.url())
    if runtime == "cli":
        assert outcome.code == 0, outcome.stderr
        assert '"completed"' in outcome.stdout
        return
    assert outcome.error is None, outcome.error
    assert outcome.value == {"id": "j1", "status": "completed"}
