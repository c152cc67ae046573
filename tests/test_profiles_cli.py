"""``jobwait wait --api NAME`` and the vocabulary options, against scripted answers.

A stdlib HTTP server on 127.0.0.1 answers each GET with the next scripted response
(the last one repeats), shaped like the real API's; the CLI runs in-process and polls
every 10 ms, so each test takes a few tens of milliseconds.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from jobwait.adapters._http.request import job_name
from jobwait.adapters.cli import main

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
    if answers[0] is NOT_YET:
        assert "poll 1: HTTP 404, which celery-flower answers while the job is not there" in err
        assert "polling again in" in err
        assert "failed (" not in err
    if code:
        assert f"job '{TASK}'" in err


@realtime
def test_without_the_profile_zero_config_reads_all_but_the_http_quirk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Only the profile knows that Flower's 404 means "not there yet".
    with scripted([NOT_YET, flower("SUCCESS")]) as (url, _):
        code, _, err = run(capsys, f"{url}/api/task/info/{TASK}")
    assert code == 5, err
    # With no option at all, --api auto reads Flower's `state` and what it means.
    with scripted([flower("STARTED"), flower("SUCCESS")]) as (url, _):
        code, _, err = run(capsys, f"{url}/api/task/info/{TASK}")
    assert code == 0, err
    assert "status 'STARTED' after 0.0s, 1 poll (read from state)" in err
    # A partial vocabulary times out on the status it never recognised, and says so.
    with scripted([flower("STARTED"), flower("SUCCESS")]) as (url, _):
        code, _, err = run(
            capsys,
            f"{url}/t",
            "--status-field",
            "state",
            "--pending",
            "STARTED",
            "--timeout",
            "0.1",
        )
    assert code == 3, err
    assert "not a known status" in err
    assert (
        "did not finish within the timeout of 0.1s; its last status 'SUCCESS' was never "
        "recognised: if it means the job ended, say so with --success completed --success "
        "SUCCESS (or the same with --failure / --canceled), or name its API with --api NAME "
        "(job 't', last status 'SUCCESS'"
    ) in err


@realtime
def test_explicit_options_win_over_the_profile(capsys: pytest.CaptureFixture[str]) -> None:
    # The API invented a state; --pending replaces the profile's pending list.
    answers = [flower("QUEUED_AT_EDGE"), flower("SUCCESS")]
    with scripted(answers) as (url, _):
        code, _, err = run(capsys, f"{url}/t", "--api", "celery-flower", "--on-unknown", "fail")
    assert code == 5, err
    assert "unknown status 'QUEUED_AT_EDGE'" in err
    assert "still waiting" not in err
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
    assert "list it with --pending, --success, --failure or --canceled (or pass " in err
    assert "--case-insensitive), or keep waiting on unlisted statuses with --on-unknown" in err
    assert "Statuses(" not in err
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
    # No --api: the sentence names no API (before: "which job answers").
    assert "HTTP 404, which the API answers while the job is not there yet" in err


@realtime
def test_failure_field_reads_nested_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    failed = {"id": "op", "status": "Failed", "error": {"code": "Quota", "message": "over quota"}}
    with scripted([(200, {"status": "Running"}, {}), (200, failed, {})]) as (url, _):
        code, _, err = run(
            capsys, f"{url}/ops/op", "--api", "azure", "--failure-field", "error.message"
        )
    assert code == 1, err
    assert "job failed: \"over quota\" (job 'op'," in err


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
        # Only the core's check sees these: the same status once case is folded.
        (["--pending", "X", "--success", "x", "--case-insensitive"], "'x' is in both"),
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
        ("http://h/api/2.0/mlflow/runs/get?run_id=6617df86", "6617df86"),
        ("http://h/api/2.2/jobs/runs/get?run_id=455644833&include_history=true", "455644833"),
        ("http://h/apis/batch/v1/namespaces/default/jobs/pi/status", "pi"),
        ("http://h/runs/get", "runs"),
    ],
)
def test_job_name_from_the_url(url: str, name: str | None) -> None:
    assert job_name(url) == name


# --- every shell example of docs/apis.md, run against answers in the API's shape ------

DOCS_ANSWERS: dict[str, list[Answer]] = {
    "/v1/operations/42": [
        (200, {"name": "operations/42"}, {}),
        (200, {"done": True, "response": {}}, {}),
    ],
    "/v0.4/jobs/j1": [
        (200, {"id": "j1", "status": "ready"}, {}),
        (200, {"status": "completed"}, {}),
    ],
    "/quantum-task/t1": [(200, {"status": "QUEUED"}, {}), (200, {"status": "COMPLETED"}, {})],
    "/api/v1/jobs/d1": [
        (200, {"state": {"status": "Running"}}, {}),
        (200, {"state": {"status": "Completed"}}, {}),
    ],
    "/operations/op1": [
        (200, {"status": "InProgress"}, {"retry-after-ms": "10"}),
        (200, {"status": "Succeeded"}, {}),
    ],
    "/locations/op1": [(202, b"", {}), (200, {"name": "vm1"}, {})],
    f"/api/task/info/{TASK}": [NOT_YET, flower("STARTED"), flower("SUCCESS")],
    "/repos/octo/app/actions/runs/30433642": [
        (200, {"status": "in_progress", "conclusion": None}, {}),
        (200, {"status": "completed", "conclusion": "success"}, {}),
    ],
    "/v1/jobs/876da822": [
        (200, {"jobId": "876da822", "status": "RUNNABLE"}, {}),
        (200, {"status": "SUCCEEDED"}, {}),
    ],
    "/training-jobs/xgb": [
        (200, {"TrainingJobStatus": "InProgress"}, {}),
        (200, {"TrainingJobStatus": "Completed"}, {}),
    ],
    "/renders/r1": [
        (404, b"", {}),
        (200, {"state": "rendering"}, {}),
        (200, {"state": "finished"}, {}),
    ],
    "/api/jobs/raysubmit_tjqiDjG8VkTXRprT": [
        (200, {"submission_id": "raysubmit_tjqiDjG8VkTXRprT", "status": "RUNNING"}, {}),
        (200, {"submission_id": "raysubmit_tjqiDjG8VkTXRprT", "status": "SUCCEEDED"}, {}),
    ],
    "/api/flow_runs/fc2c07c2-c698-4e8d-9264-28fb120e6d04": [
        (200, {"state_type": "RUNNING", "state": {"type": "RUNNING"}}, {}),
        (200, {"state_type": "COMPLETED", "state": {"type": "COMPLETED"}}, {}),
    ],
    "/api/2.0/mlflow/runs/get": [
        (200, {"run": {"info": {"status": "RUNNING"}}}, {}),
        (200, {"run": {"info": {"status": "FINISHED"}}}, {}),
    ],
    "/api/2.2/jobs/runs/get": [
        (200, {"run_id": 455644833, "state": {"life_cycle_state": "RUNNING"}}, {}),
        (200, {"state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}}, {}),
    ],
    "/apis/batch/v1/namespaces/default/jobs/pi": [
        (200, {"kind": "Job", "status": {"active": 1}}, {}),
        (
            200,
            {"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            {},
        ),
    ],
    "/api/v2/dags/etl/dagRuns/manual__2026-12-08": [
        (200, {"dag_run_id": "manual__2026-12-08", "state": "running"}, {}),
        (200, {"dag_run_id": "manual__2026-12-08", "state": "success"}, {}),
    ],
    "/graphql": [
        (200, {"data": {"runOrError": {"__typename": "Run", "status": "STARTED"}}}, {}),
        (200, {"data": {"runOrError": {"__typename": "Run", "status": "SUCCESS"}}}, {}),
    ],
    "/api/v1/workflows/argo/hello-x7k2p": [
        (200, {"metadata": {"name": "hello-x7k2p"}, "status": {}}, {}),
        (200, {"metadata": {"name": "hello-x7k2p"}, "status": {"phase": "Succeeded"}}, {}),
    ],
    "/executions/run-1": [
        (200, {"executionArn": "arn:x", "status": "RUNNING"}, {}),
        (200, {"executionArn": "arn:x", "status": "SUCCEEDED"}, {}),
    ],
    "/v1/projects/1/locations/us-central1/customJobs/456": [
        (200, {"state": "JOB_STATE_RUNNING"}, {}),
        (200, {"state": "JOB_STATE_SUCCEEDED"}, {}),
    ],
    "/v2/render/r1": [
        (200, {"id": "r1", "progress": 40, "status": "processing"}, {}),
        (200, {"id": "r1", "progress": 100, "status": "Done"}, {}),
    ],
}


def docs_commands() -> list[list[str]]:
    import shlex
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "apis.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.M | re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line]


@realtime
@pytest.mark.parametrize("command", docs_commands(), ids=lambda c: c[2].split("/", 3)[-1])
def test_docs_shell_examples_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    assert command[:2] == ["jobwait", "wait"]
    path = urlsplit(command[2]).path
    for i, arg in enumerate(command):
        if arg == "--header-env":  # every credential the line reads, made up
            monkeypatch.setenv(command[i + 1].split("=")[1], "Bearer not-a-real-token")
    with scripted(DOCS_ANSWERS[path]) as (url, paths):
        code = main(["wait", url + path, *command[3:], *FAST])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert len(paths) >= 2


def test_every_profile_has_a_shell_example() -> None:
    vocabulary = {"--pending", "--success", "--failure", "--canceled"}
    used = {
        c[c.index("--api") + 1] if "--api" in c else "auto"  # the default
        for c in docs_commands()
        if "--api" in c or not vocabulary & set(c)
    }
    from jobwait import ApiProfile

    assert set(ApiProfile.names()) - used == {"celery"}  # AsyncResult has no URL
