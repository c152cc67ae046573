"""A DAG run end to end on a real Airflow 3 (``dag.test()``: the deferred tasks' triggers
run inline, re-created from their serialized form, on a SQLite metadata database made
for the run), against a real JobServer: jobs submitted by upstream tasks, their ids
handed on through XCom, waited on for every way a wait ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobwait._durable import outcome_of
from jobwait.adapters.server import JobServer

HERE = Path(__file__).resolve().parent
CONN_ID = "jobwait_e2e"


class Run:
    """What the child process's ``dag.test()`` left: task states, XComs, its output and
    every file it wrote."""

    def __init__(self, result: dict[str, Any], output: str, home: Path, server: JobServer):
        self.states: dict[str, str] = result["states"]
        self.xcom: dict[str, dict[str, Any]] = result["xcom"]
        self.seconds: dict[str, float] = result["seconds"]
        self.output = output
        self.home = home
        self.server = server
        self.submitted: dict[str, list[str]] = {
            name: self.xcom[f"submit_{name}"]["return_value"] for name in ("ok", "mixed")
        }

    def outcomes(self, task_id: str, key: str = "return_value") -> dict[str, Any]:
        return {job_id: outcome_of(r) for job_id, r in self.xcom[task_id][key].items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    key = "airflow-dag-secret-key-8d21e7"
    home = tmp_path_factory.mktemp("airflow-home")
    with JobServer(api_key=key) as server:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(
                {"conn_type": "http", "host": server.url, "password": key}
            ),
        }
        out = home / "result.json"
        done = subprocess.run(
            [sys.executable, str(HERE / "dag_run.py"), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-5000:]
        made = Run(json.loads(out.read_text()), output, home, server)
        made.key = key  # type: ignore[attr-defined]
        yield made


def test_airflow_dag_waits_for_jobs_handed_on_through_xcom(run: Run) -> None:
    assert run.states["wait_ok"] == "success"
    outcomes = run.outcomes("wait_ok")
    assert sorted(outcomes) == sorted(run.submitted["ok"])
    assert {job["status"] for job in outcomes.values()} == {"completed"}
    # The jobs were still running when the task deferred: the trigger polled them.
    for job_id in run.submitted["ok"]:
        assert len([r for r in run.server.requests_for(job_id) if r.method == "GET"]) >= 2


def test_airflow_dag_waits_in_the_worker_with_the_same_outcomes(run: Run) -> None:
    assert run.states["wait_in_worker"] == "success"
    here = run.outcomes("wait_in_worker")
    deferred = run.outcomes("wait_ok")
    assert {k: v["status"] for k, v in here.items()} == {
        k: v["status"] for k, v in deferred.items()
    }


def test_airflow_dag_fails_a_task_naming_its_failed_job(run: Run) -> None:
    done, broken = run.submitted["mixed"][:2]
    assert run.states["wait_failed"] == "failed"
    assert "return_value" not in run.xcom.get("wait_failed", {})
    outcomes = run.outcomes("wait_failed", "outcomes")
    assert outcomes[done]["status"] == "completed"
    assert type(outcomes[broken]).__name__ == "JobFailedError"
    assert (
        f"JobsFailedError: 1 of 2 job(s) did not succeed: failed: '{broken}' (SimulatedFailure)"
        in run.output
    )


def test_airflow_dag_fails_a_task_naming_its_canceled_job(run: Run) -> None:
    (stopped,) = run.submitted["mixed"][2:3]
    assert run.states["wait_canceled"] == "failed"
    assert run.outcomes("wait_canceled", "outcomes")[stopped]["status"] == "canceled"
    assert f"1 of 1 job(s) did not succeed: canceled: '{stopped}'" in run.output


def test_airflow_dag_fails_a_task_naming_its_timed_out_job_and_cancels_it(run: Run) -> None:
    (endless,) = run.submitted["mixed"][3:]
    assert run.states["wait_timed_out"] == "failed"
    error = run.outcomes("wait_timed_out", "outcomes")[endless]
    assert type(error).__name__ == "JobTimeoutError"
    assert 1.0 <= error.elapsed < 3.0
    assert f"1 of 1 job(s) did not succeed: timed out: '{endless}'" in run.output
    assert run.server.requests_for(endless)[-1].method == "PUT"  # cancel_on_timeout


def test_airflow_dag_fail_on_chooses_what_fails_the_task(run: Run) -> None:
    assert run.states["wait_tolerant"] == "success"
    outcomes = run.outcomes("wait_tolerant")
    assert len(outcomes) == 3
    assert sorted(type(o).__name__ for o in outcomes.values()) == ["JobFailedError", "dict", "dict"]


def test_airflow_dag_keeps_the_key_out_of_logs_xcom_and_the_database(run: Run) -> None:
    key: str = run.key  # type: ignore[attr-defined]
    assert key not in run.output  # every task's log, the triggers' included
    assert key not in json.dumps(run.xcom)
    assert "jobwait: waiting for" in run.output
    for path in run.home.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
