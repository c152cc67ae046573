"""``jobwait wait --api NAME`` and the vocabulary options, against scripted answers.

A stdlib HTTP server on 127.0.0.1 answers each GET with the next scripted response
(the last one repeats), shaped like the real API's; the CLI runs in-process and polls
every 10 ms, so each test takes a few tens of milliseconds.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobwait.adapters.cli import main
from jobwait.adapters.cli._wait import job_name

realtime = pytest.mark.realtime
FAST = ["--interval", "0.01", "--max-interval", "0.02", "--timeout", "10"]

Answer = tuple[int, Any, dict[str, str]]  # (HTTP status, JSON body or raw bytes, headers)


@contextmanager
def scripted(answers: Sequence[Answer]) -> Iterator[tuple[str, list[str]]]:
    queue = list(answers)
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def run(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str, str]:
    code = main(["wait", url, *FAST, *args])
    out, err = capsys.readouterr()
    return code, out, err


TASK = "91396550-c228-4111-9da4-9d88cfd5ddc6"
FLOWER = {"task-id": TASK, "name": "tasks.add", "args": "[2, 2]", "exception": None}
NOT_YET: Answer = (404, b"<html><title>404: Unknown task</title></html>", {})


def flower(state: str, **fields: Any) -> Answer:
    return (200, {**FLOWER, "state": state, **fields}, {})


@realtime
@pytest.mark.parametrize(
    ("answers", "code", "text"),
    [
        ([NOT_YET] * 7 + [flower("RECEIVED"), flower("STARTED"), flower("SUCCESS")], 0, "SUCCESS"),
        (
            [flower("STARTED"), flower("FAILURE", exception="ValueError('boom')")],
            1,
            "job failed: \"ValueError('boom')\"",
        ),
        ([flower("PENDING"), flower("REVOKED")], 4, "canceled"),
    ],
    ids=["success-after-404s", "failure", "revoked"],
)
def test_celery_flower(
    capsys: pytest.CaptureFixture[str], answers: list[Answer], code: int, text: str
) -> None:
    with scripted(answers) as (url, _):
        got, _, err = run(capsys, f"{url}/api/task/info/{TASK}", "--api", "celery-flower")
    assert got == code, err
    assert text in err
    assert "not a known status" not in err
    if code:
        assert f"job '{TASK}'" in err


@realtime
def test_without_the_profile_the_same_answers_go_wrong(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scripted([NOT_YET, flower("SUCCESS")]) as (url, _):
        code, _, err = run(capsys, f"{url}/api/task/info/{TASK}")
    assert code == 5, err
    with scripted([flower("STARTED"), flower("SUCCESS")]) as (url, _):
        code, _, err = run(capsys, f"{url}/t", "--status-field", "state", "--timeout", "0.1")
    assert code == 3, err
    assert "not a known status" in err


@realtime
def test_explicit_options_win_over_the_profile(capsys: pytest.CaptureFixture[str]) -> None:
    # The API invented a state; --pending replaces the profile's pending list.
    answers = [flower("QUEUED_AT_EDGE"), flower("SUCCESS")]
    with scripted(answers) as (url, _):
        code, _, err = run(capsys, f"{url}/t", "--api", "celery-flower", "--on-unknown", "fail")
    assert code == 5, err
    assert "unknown status 'QUEUED_AT_EDGE'" in err
    assert "pending: PENDING, RECEIVED, REJECTED, RETRY, STARTED" in err
    with scripted(answers) as (url, _):
        code, _, err = run(
            capsys,
            f"{url}/t",
            "--api",
            "celery-flower",
            "--on-unknown",
            "fail",
            "--pending",
            "QUEUED_AT_EDGE",
        )
    assert code == 0, err
    with scripted([flower("FAILURE", exception="E", traceback="Traceback: deep")]) as (url, _):
        code, _, err = run(
            capsys, f"{url}/t", "--api", "celery-flower", "--failure-field", "traceback"
        )
    assert code == 1, err
    assert "Traceback: deep" in err


@realtime
def test_strict_mode_and_case_insensitive(capsys: pytest.CaptureFixture[str]) -> None:
    answers: list[Answer] = [(200, {"status": "PENDING"}, {}), (200, {"status": "SUCCESS"}, {})]
    args = ["--pending", "pending", "--success", "success"]
    with scripted(answers) as (url, _):
        code, _, err = run(capsys, f"{url}/jobs/7", *args, "--on-unknown", "fail")
    assert code == 5, err
    assert "unknown status 'PENDING'" in err
    assert "pending: pending; succeeded: success" in err
    with scripted(answers) as (url, _):
        code, _, err = run(capsys, f"{url}/jobs/7", *args, "--case-insensitive")
    assert code == 0, err


@realtime
def test_retry_http_makes_a_404_pending_until_the_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scripted([(404, {"message": "Job not found"}, {})]) as (url, paths):
        code, _, err = run(capsys, f"{url}/jobs/abc", "--retry-http", "404", "--timeout", "0.2")
    assert code == 3, err
    assert len(paths) > 5  # far beyond the five-failure budget
    assert "job 'abc'" in err


@realtime
def test_failure_field_reads_nested_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    failed = {"id": "op", "status": "Failed", "error": {"code": "Quota", "message": "over quota"}}
    with scripted([(200, {"status": "Running"}, {}), (200, failed, {})]) as (url, _):
        code, _, err = run(
            capsys, f"{url}/ops/op", "--api", "azure", "--failure-field", "error.message"
        )
    assert code == 1, err
    assert "job failed: 'over quota'" in err


@realtime
def test_google_lro_and_azure_location(capsys: pytest.CaptureFixture[str]) -> None:
    op = {"name": "operations/42"}
    answers: list[Answer] = [(200, op, {}), (200, {**op, "done": True, "response": {}}, {})]
    with scripted(answers) as (url, _):
        code, _, err = run(capsys, f"{url}/v1/operations/42", "--api", "google-lro")
    assert code == 0, err
    with scripted([(200, {**op, "done": True}, {})]) as (url, _):
        code, _, err = run(capsys, f"{url}/v1/operations/42", "--api", "google-lro")
    assert code == 5, err
    assert "neither 'response' nor 'error'" in err
    with scripted([(202, b"", {}), (200, {"name": "vm1"}, {})]) as (url, _):
        code, out, err = run(capsys, f"{url}/locations/op1", "--api", "azure-location", "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": "vm1"}


def test_bad_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args, text in [
        (["--api", "flower"], "no API profile named 'flower'"),
        (["--retry-http", "4O4"], "expected an HTTP status 100-599"),
        (["--on-unknown", "raise"], "invalid choice"),
        (["--pending", "x", "--success", "x"], "status 'x' is given to both"),
    ]:
        code = main(["wait", "http://127.0.0.1:9/jobs/1", *args])
        _, err = capsys.readouterr()
        assert code == 2, err
        assert text in err


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("http://h/api/task/info/91396550", "91396550"),
        ("http://h/jobs/a%2Fb/", "a/b"),
        ("http://h/jobs/abc?token=secret", "abc"),
        ("http://h", None),
    ],
)
def test_job_name_from_the_url(url: str, name: str | None) -> None:
    assert job_name(url) == name
