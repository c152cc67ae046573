"""Secrets: keys with stray whitespace, keys echoed back by the server.

The promise (docs/http.md, "Secrets"): a credential the request carries never reaches
an error's message or repr, a pickled error, a log record (DEBUG included) or the
CLI's output; a header value HTTP cannot send is reported by header name, never by
value.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

import pytest
from _hostile import Conn, serving
from _runners import RUNTIMES, TIGHT, WITH_CLI, Outcome, run

from jobwait import JobFailedError, JobFetchError, JobTimeoutError, JobWaitError

pytestmark = pytest.mark.realtime

KEY = "sk-live-0123456789abcdefSECRET"


def _no_key(outcome: Outcome) -> None:
    assert KEY not in outcome.texts()
    if outcome.error is not None:
        blob = pickle.dumps(outcome.error)
        assert KEY.encode() not in blob
        assert KEY not in repr(pickle.loads(blob))


def _done(conn: Conn) -> None:
    conn.respond(200, {"id": "j1", "status": "completed"})


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("stray", ["\n", " ", "\r", "\r\n", "\t"])
def test_a_key_with_stray_whitespace_is_named_never_shown(runtime: str, stray: str) -> None:
    with serving(_done) as server:
        outcome = run(runtime, server.url(), headers={"Authorization": f"apiKey {KEY}{stray}"})
        assert server.requests == []  # it never left: h11 refuses such a value
    assert isinstance(outcome.error, JobFetchError), outcome.error
    assert outcome.error.polls == 1  # not retryable: retrying cannot fix it
    assert "'authorization' header" in str(outcome.error).lower()
    _no_key(outcome)


def test_cli_strips_a_key_read_with_stray_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    from _runners import run_cli

    # docs/cli.md: --header-env values are stripped (a CRLF .env file, a key file).
    monkeypatch.setenv("HOSTILE_KEY", f"apiKey {KEY}\r\n")
    with serving(_done) as server:
        code, out, err = run_cli(server.url(), extra=("--header-env", "Authorization=HOSTILE_KEY"))
        assert server.requests[0].header("authorization") == f"apiKey {KEY}"
    assert code == 0, err
    assert KEY not in out + err


def test_cli_rejects_a_key_with_a_line_break_inside_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from _runners import run_cli

    monkeypatch.setenv("HOSTILE_KEY", f"apiKey {KEY}\r\nX-Injected: 1")
    with serving(_done) as server:
        code, out, err = run_cli(server.url(), extra=("--header-env", "Authorization=HOSTILE_KEY"))
        assert server.requests == []
    assert code == 2, err
    assert "HOSTILE_KEY" in err
    assert KEY not in out + err


def _echo_status(conn: Conn) -> None:
    conn.respond(200, {"id": "j1", "status": conn.request.header("authorization")})


def _echo_failure(conn: Conn) -> None:
    auth = conn.request.header("authorization")
    conn.respond(200, {"status": "failed", "failure": {"code": "x", "message": f"bad {auth}"}})


def _echo_error_body(conn: Conn) -> None:
    conn.respond(
        401, {"error": "Unauthorized", "message": f"key {conn.request.header('authorization')}"}
    )


def _echo_header(conn: Conn) -> None:
    conn.respond(403, "no", [("x-request-id", KEY), ("Content-Type", "text/plain")])


def _echo_bad_body(conn: Conn) -> None:
    conn.respond(200, f"<html>{conn.request.header('authorization')}</html>")


def _echo_unknown_then_done(conn: Conn) -> None:
    if conn.request.index == 0:
        _echo_status(conn)
    else:
        _done(conn)


ECHO: dict[str, tuple[Callable[[Conn], None], type[BaseException] | None]] = {
    "in-status": (_echo_status, JobTimeoutError),
    "in-failure": (_echo_failure, JobFailedError),
    "in-error-body": (_echo_error_body, JobFetchError),
    "in-request-id": (_echo_header, JobFetchError),
    "in-non-json-body": (_echo_bad_body, JobWaitError),
    "in-status-then-done": (_echo_unknown_then_done, None),
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(ECHO))
def test_a_key_echoed_back_never_leaks(runtime: str, name: str) -> None:
    behaviour, expected = ECHO[name]
    with serving(behaviour) as server:
        outcome = run(runtime, server.url(), headers={"Authorization": f"apiKey {KEY}"}, **TIGHT)
        assert server.requests[0].header("authorization") == f"apiKey {KEY}"
    _no_key(outcome)
    if runtime == "cli":
        assert (outcome.code == 0) == (expected is None), outcome.stderr
    elif expected is None:
        assert outcome.error is None, outcome.error
    else:
        assert isinstance(outcome.error, expected), outcome.error
