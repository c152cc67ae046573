"""Ray and MLflow, from answers recorded on real servers, with no option and with --api.

Both systems are too heavy for the test extra (Ray is hundreds of megabytes; MLflow
takes about a minute to install), so their answers were recorded from real servers
run on loopback (``tests/data/ray/record_ray.py`` with Ray 2.60.0,
``tests/data/mlflow/record_mlflow.py`` with MLflow 3.18.0; the versions are in each
file) for four jobs: one that succeeds, one that fails, one stopped or killed by its
user, and an id that does not exist. A loopback server replays each job's answers in
order (the last repeats) and ``jobwait wait`` runs in-process against it three ways:
with no option (``--api auto``), with ``--api NAME``, and with the options a user
needed before profiles existed (the issue's count).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from test_profiles_cli import Answer, run, scripted

realtime = pytest.mark.realtime
DATA = Path(__file__).resolve().parent / "data"
RAY = json.loads((DATA / "ray" / "ray-jobs-2.60.0.json").read_text())
MLFLOW = json.loads((DATA / "mlflow" / "mlflow-runs-3.18.0.json").read_text())

#: What a user had to pass before (issue 21), and now.
RAY_BEFORE = [
    *("--pending", "PENDING", "--pending", "RUNNING", "--success", "SUCCEEDED"),
    *("--failure", "FAILED", "--canceled", "STOPPED", "--failure-field", "message"),
]
MLFLOW_BEFORE = [
    *("--status-field", "run.info.status", "--pending", "SCHEDULED", "--pending", "RUNNING"),
    *("--success", "FINISHED", "--failure", "FAILED", "--canceled", "KILLED"),
]
WAYS = ["auto", "api", "before"]


def answers(recorded: list[dict[str, Any]]) -> list[Answer]:
    out: list[Answer] = []
    for answer in recorded:
        body = answer["body"]
        data = body.encode() if isinstance(body, str) else body
        out.append((answer["status_code"], data, {"Content-Type": answer["content_type"]}))
    return out


def options(way: str, api: str, before: list[str]) -> list[str]:
    return {"auto": [], "api": ["--api", api], "before": before}[way]


def test_the_recordings_name_their_versions() -> None:
    assert RAY["recorded_with"]["ray"] == "2.60.0"
    assert MLFLOW["recorded_with"]["mlflow"] == "3.18.0"
    statuses = [a["body"]["status"] for a in RAY["answers"]["succeed"]]
    assert statuses == ["PENDING", "RUNNING", "SUCCEEDED"]


def _ray_id(case: str) -> str:
    first = RAY["answers"][case][0]["body"]
    return first["submission_id"] if isinstance(first, dict) else "raysubmit_doesnotexist00"


RAY_CASES = [
    ("succeed", 0, "job succeeded (status 'SUCCEEDED'"),
    ("fail", 1, 'job failed: "Job entrypoint command failed with exit code 3'),
    ("stop", 4, "job was canceled"),
    (
        "unknown",
        5,
        "HTTP 404: Job raysubmit_doesnotexist00 does not exist; check the job id and the URL",
    ),
]


@realtime
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("case", "code", "text"), RAY_CASES, ids=[c[0] for c in RAY_CASES])
def test_ray_jobs(
    capsys: pytest.CaptureFixture[str], way: str, case: str, code: int, text: str
) -> None:
    job = _ray_id(case)
    with scripted(answers(RAY["answers"][case])) as (url, paths):
        got, _, err = run(capsys, f"{url}/api/jobs/{job}", *options(way, "ray-jobs", RAY_BEFORE))
    assert got == code, err
    assert text in err
    assert f"job '{job}'" in err or code == 0
    assert "not a known status" not in err
    if way == "auto" and case != "unknown":
        assert "(read from status, as ray-jobs)" in err  # its signature: submission_id
    assert len(paths) >= (1 if case == "unknown" else len(RAY["answers"][case]))


def _run_id(case: str) -> str:
    first = MLFLOW["answers"][case][0]["body"]
    return first["run"]["info"]["run_id"] if "run" in first else "0123456789abcdef0123456789abcdef"


MLFLOW_CASES = [
    ("succeed", 0, "job succeeded (status 'FINISHED'"),
    (
        "fail",
        1,
        (
            "job failed, giving no reason; if the job holds one, name its field with "
            "--failure-field PATH (its fields: 'run'"
        ),
    ),
    ("kill", 4, "job was canceled"),
    (
        "unknown",
        5,
        (
            "HTTP 404: Run with id=0123456789abcdef0123456789abcdef not found; check the job "
            "id and the URL"
        ),
    ),
]


@realtime
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(("case", "code", "text"), MLFLOW_CASES, ids=[c[0] for c in MLFLOW_CASES])
def test_mlflow_runs(
    capsys: pytest.CaptureFixture[str], way: str, case: str, code: int, text: str
) -> None:
    run_id = _run_id(case)
    with scripted(answers(MLFLOW["answers"][case])) as (url, _):
        got, _, err = run(
            capsys,
            f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}",
            *options(way, "mlflow", MLFLOW_BEFORE),
        )
    assert got == code, err
    assert text in err
    if code:
        assert f"job '{run_id}'" in err  # named by its run_id, not 'get'
    if way == "auto" and case != "unknown":
        assert "(read from run.info.status, as mlflow)" in err


@realtime
def test_mlflow_400_shows_the_servers_message_and_what_to_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scripted(answers(MLFLOW["answers"]["malformed"])) as (url, _):
        code, _, err = run(capsys, f"{url}/api/2.0/mlflow/runs/get?run_id=")
    assert code == 5, err
    # The server's message (its first 99 characters and its length), then what to check.
    assert "HTTP 400: Missing value for required parameter 'run_id'. See the API docs" in err
    assert "request \u2026 (110 characters); check the URL and its query parameters" in err
    assert "(job 'runs', no status read" in err
    assert "error_code" not in err  # never the raw JSON
