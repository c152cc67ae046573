"""Semantics: 429/503 for ever with every kind of Retry-After, redirects, 401/403/404,
a status that goes back from completed.

The promise (docs/http.md, "Retry-After", "How responses are classified", "Secrets";
docs/concepts.md): a server hint never makes a wait sleep past its deadline (a
huge, negative, NaN, past, future or garbage ``Retry-After`` is clamped or ignored);
statuses retrying cannot fix end the wait at once with ``JobFetchError`` carrying
``status_code``; a redirect is followed only when the client follows redirects, and
no credential follows it to another origin; a wait ends at the first final status.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

import pytest
from _hostile import Conn, HostileServer, serving
from _runners import REQUEST, RUNTIMES, WITH_CLI, exit_code, run

from jobwait import JobFetchError, JobTimeoutError

pytestmark = pytest.mark.realtime

KEY = "sk-redirect-0123456789abcdef"


def _date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


RETRY_AFTER: dict[str, Callable[[], str]] = {
    "huge": lambda: "1000000000",
    "negative": lambda: "-5",
    "nan": lambda: "NaN",
    "inf": lambda: "inf",
    "date-past": lambda: _date(-3600),
    "date-future": lambda: _date(86400),
    "garbage": lambda: "soon, promise",
    "empty": lambda: "",
    "fractional": lambda: "0.001",
}


def _busy(status: int, value: Callable[[], str]) -> Callable[[Conn], None]:
    def behaviour(conn: Conn) -> None:
        conn.respond(status, {"error": "busy"}, [("Retry-After", value())])

    return behaviour


BUSY = [(429, name) for name in RETRY_AFTER] + [(503, "huge"), (503, "nan"), (503, "garbage")]
SHORT = 0.15  # these waits always run to their deadline: keep it short


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("status", "name"), BUSY)
def test_busy_for_ever_never_sleeps_past_the_deadline(runtime: str, status: int, name: str) -> None:
    with serving(_busy(status, RETRY_AFTER[name])) as server:
        outcome = run(
            runtime, server.url(), max_fetch_errors=1000, timeout=SHORT, client_timeout=REQUEST
        )
    assert isinstance(outcome.error, JobTimeoutError), outcome.error
    assert outcome.seconds < outcome.bound(), f"{outcome.seconds:.2f}s"


@pytest.mark.parametrize("name", ["huge", "date-future"])
def test_busy_for_ever_cli(name: str) -> None:
    with serving(_busy(429, RETRY_AFTER[name])) as server:
        outcome = run("cli", server.url(), timeout=SHORT)
    assert outcome.code in exit_code(JobTimeoutError, JobFetchError), outcome.stderr
    assert outcome.seconds < outcome.bound(), f"{outcome.seconds:.2f}s"


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("status", [401, 403, 404, 418])
def test_a_status_retrying_cannot_fix_ends_the_wait_at_once(runtime: str, status: int) -> None:
    with serving(lambda conn: conn.respond(status, {"error": "no"}, reason="No")) as server:
        outcome = run(runtime, server.url())
        assert len(server.requests) == 1
    if runtime == "cli":
        assert outcome.code in exit_code(JobFetchError), outcome.stderr
        return
    assert isinstance(outcome.error, JobFetchError), outcome.error
    assert (outcome.error.status_code, outcome.error.polls) == (status, 1)


def _back_from_completed(conn: Conn) -> None:
    status = ["started", "completed", "started"][min(conn.request.index, 2)]
    conn.respond(200, {"id": "j1", "status": status})


@pytest.mark.parametrize("runtime", WITH_CLI)
def test_a_status_going_back_from_completed_is_never_seen(runtime: str) -> None:
    with serving(_back_from_completed) as server:
        outcome = run(runtime, server.url())
        assert len(server.requests) == 2  # the wait ended at the first final status
    if runtime == "cli":
        assert outcome.code == 0, outcome.stderr
        return
    assert outcome.value == {"id": "j1", "status": "completed"}


def _redirect_to(target: HostileServer, status: int = 302) -> Callable[[Conn], None]:
    def behaviour(conn: Conn) -> None:
        conn.respond(status, "", [("Location", target.url())], reason="Found")

    return behaviour


def _done(conn: Conn) -> None:
    conn.respond(200, {"id": "j1", "status": "completed"})


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_no_credential_follows_a_redirect_to_another_origin(runtime: str, status: int) -> None:
    with serving(_done) as other, serving(_redirect_to(other, status)) as server:
        outcome = run(
            runtime,
            server.url(),
            headers={"Authorization": f"apiKey {KEY}"},
            follow_redirects=True,
        )
        assert server.requests[0].header("authorization") == f"apiKey {KEY}"
        assert [r.header("authorization") for r in other.requests] == [None]
    assert outcome.value == {"id": "j1", "status": "completed"}, outcome.error


@pytest.mark.parametrize("runtime", WITH_CLI)
def test_a_redirect_is_not_followed_unless_the_client_does(runtime: str) -> None:
    with serving(_done) as other, serving(_redirect_to(other)) as server:
        outcome = run(runtime, server.url())
        assert other.requests == []
    if runtime == "cli":
        assert outcome.code in exit_code(JobFetchError), outcome.stderr
        return
    assert isinstance(outcome.error, JobFetchError), outcome.error
    assert (outcome.error.status_code, outcome.error.polls) == (302, 1)


def _redirect_bomb(target: HostileServer) -> Callable[[Conn], None]:
    import zlib

    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    bomb = c.compress(bytes(64 << 20)) + c.flush()

    def behaviour(conn: Conn) -> None:
        headers = [("Location", target.url()), ("Content-Encoding", "gzip")]
        conn.respond(302, bomb, headers, reason="Found")

    return behaviour


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_redirect_body_is_never_read(runtime: str) -> None:
    import tracemalloc

    with serving(_done) as other, serving(_redirect_bomb(other)) as server:
        tracemalloc.start()
        try:
            outcome = run(runtime, server.url(), follow_redirects=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert outcome.value == {"id": "j1", "status": "completed"}, outcome.error
    assert peak < 8 << 20, f"peak {peak >> 20} MiB"  # httpx would inflate all 64 MiB


def _loop(conn: Conn) -> None:
    conn.respond(302, "", [("Location", conn.request.target)], reason="Found")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_redirect_loop_ends_the_wait_at_once(runtime: str) -> None:
    with serving(_loop) as server:
        outcome = run(runtime, server.url(), follow_redirects=True)
    assert isinstance(outcome.error, JobFetchError), outcome.error
    assert outcome.error.polls == 1
