"""Content: bodies that are not job JSON, statuses and failures of every wrong type.

The promise (docs/http.md, "How responses are classified"; docs/errors.md): a 2xx body
that is not a JSON object is a retryable failed poll (a run of them ends in
``JobFetchError`` caused by ``JobStatusError``); a job whose status is missing or not
a string ends with ``JobStatusError``; an unknown status is waited on until the
deadline; a failed job ends with ``JobFailedError`` carrying its failure payload,
whatever its type. No raw exception ever escapes, the CLI never crashes (exit 70) on
what it prints, and its output stays short.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _hostile import Conn, serving
from _runners import REQUEST, RUNTIMES, WITH_CLI, exit_code, run, run_batch

from jobwait import JobFailedError, JobFetchError, JobStatusError, JobTimeoutError

pytestmark = pytest.mark.realtime

HUGE = "x" * 900_000
SHORT = 0.1  # waits that always run to their deadline
DEEP = 100_000


def _body(raw: bytes, content_type: str = "application/json") -> Any:
    def behaviour(conn: Conn) -> None:
        conn.respond(200, raw, [("Content-Type", content_type)])

    return behaviour


NOT_A_JOB: dict[str, bytes] = {
    "invalid-utf8": b'{"status": "\xff\xfe completed"}',
    "deep-nesting": b"[" * DEEP + b"]" * DEEP,
    "deep-nesting-in-object": b'{"status": "completed", "x": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "top-level-list": b'[{"status": "completed"}]',
    "top-level-number": b"42",
    "top-level-null": b"null",
    "top-level-string": b'"completed"',
    "html": b"<html><body>502 Bad Gateway</body></html>",
    "empty": b"",
    "truncated-json": b'{"status": "compl',
    "nan-literal": b'{"status": NaN',
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(NOT_A_JOB))
def test_a_body_that_is_not_a_job_is_a_failed_poll(runtime: str, name: str) -> None:
    with serving(_body(NOT_A_JOB[name])) as server:
        outcome = run(runtime, server.url())
    if runtime == "cli":
        assert outcome.code in exit_code(JobFetchError), outcome.stderr
        assert len(outcome.stderr) < 2000
        return
    assert isinstance(outcome.error, JobFetchError), outcome.error
    assert isinstance(outcome.error.__cause__, JobStatusError)
    assert outcome.error.polls == 3  # max_fetch_errors: each such answer was retried


WRONG_STATUS: dict[str, Any] = {
    "status-int": 3,
    "status-float": 1.5,
    "status-bool": True,
    "status-null": None,
    "status-list": ["completed"],
    "status-object": {"value": "completed"},
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", [*WRONG_STATUS, "status-missing"])
def test_a_status_of_the_wrong_type_is_a_status_error(runtime: str, name: str) -> None:
    job = {"id": "j1"} if name == "status-missing" else {"id": "j1", "status": WRONG_STATUS[name]}
    with serving(_body(json.dumps(job).encode())) as server:
        outcome = run(runtime, server.url())
    if runtime == "cli":
        assert outcome.code in exit_code(JobStatusError), outcome.stderr
        return
    assert isinstance(outcome.error, JobStatusError), outcome.error
    assert outcome.error.last_job == job


ODD_STATUS: dict[str, bytes] = {
    "lone-surrogate": b'{"status": "\\ud800"}',
    "huge-string": json.dumps({"status": HUGE}).encode(),
    "control-chars": b'{"status": "\\u001b[31mred\\u0007\\r\\n"}',
    "empty-string": b'{"status": ""}',
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(ODD_STATUS))
def test_an_odd_status_string_is_waited_on_until_the_deadline(runtime: str, name: str) -> None:
    with serving(_body(ODD_STATUS[name])) as server:
        outcome = run(runtime, server.url(), timeout=SHORT, client_timeout=REQUEST)
    if runtime == "cli":
        assert outcome.code in exit_code(JobTimeoutError), outcome.stderr
        assert len(outcome.stderr) < 5000
        assert "\x1b" not in outcome.stderr  # no terminal escapes from the server
        return
    assert isinstance(outcome.error, JobTimeoutError), outcome.error
    assert outcome.seconds < outcome.bound()


FAILURES: dict[str, Any] = {
    "failure-int": 123,
    "failure-string": "boom",
    "failure-list": [1, {"a": None}],
    "failure-null": None,
    "failure-nested-wrong-types": {"code": [], "message": {"text": 5}},
    "failure-huge": {"message": HUGE},
}


@pytest.mark.parametrize("runtime", WITH_CLI)
@pytest.mark.parametrize("name", list(FAILURES))
def test_a_failure_payload_of_any_type_is_a_failed_job(runtime: str, name: str) -> None:
    job = {"id": "j1", "status": "failed", "failure": FAILURES[name]}
    with serving(_body(json.dumps(job).encode())) as server:
        outcome = run(runtime, server.url())
    if runtime == "cli":
        assert outcome.code in exit_code(JobFailedError), outcome.stderr
        assert len(outcome.stderr) < 5000
        return
    assert isinstance(outcome.error, JobFailedError), outcome.error
    assert outcome.error.failure == FAILURES[name]
    assert len(str(outcome.error)) < 2000


BAD_BATCH: dict[str, bytes] = {
    "not-json": b"<html>busy</html>",
    "jobs-not-a-list": b'{"jobs": "nope"}',
    "no-jobs-key": b'{"data": []}',
    "job-without-id": b'{"jobs": [{"status": "completed"}]}',
    "top-level-list": b'[{"id": "a", "status": "completed"}]',
}


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", list(BAD_BATCH))
def test_unreadable_batch_answers_spend_the_budget_into_fetch_errors(
    runtime: str, name: str
) -> None:
    # docs/fleet.md and docs/errors.md: spending max_batch_errors ends each job with
    # JobFetchError caused by the real error (issue 10, item 7).
    with serving(_body(BAD_BATCH[name])) as server:
        outcome = run_batch(runtime, server.base, ["a", "b"], max_batch_errors=3)
        assert len(server.requests) == 3
    assert outcome.error is None, outcome.error
    for job_id in ("a", "b"):
        error = outcome.value[job_id]
        assert isinstance(error, JobFetchError), error
        assert isinstance(error.__cause__, JobStatusError)
        assert "max_batch_errors" in str(error)
