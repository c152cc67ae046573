"""The DAG the end-to-end test runs with ``dag.test()`` (tests/airflow/dag_run.py): tasks
submit jobs to the test's JobServer over HTTP and hand their ids on through XCom; one
JobWaitOperator per way a wait can end reads them back with the key from an Airflow
connection."""

from __future__ import annotations

from typing import Any

import httpx
from airflow.sdk import DAG, BaseHook, task

from jobwait import Backoff
from jobwait.adapters.airflow import JobWaitOperator, connection_url

CONN_ID = "jobwait_e2e"
QUICK = Backoff(initial=0.1, factor=1.5, max=0.5)


def _d(**phases: float) -> dict[str, float]:
    return {"submitted": 0.0, "ready": 0.0, "started": 0.0, **phases}


OK = [{"durations": _d(ready=0.3, started=0.5 + 0.2 * i)} for i in range(3)]
MIXED = [
    {"durations": _d(started=0.4)},  # completes
    {"outcome": "failed", "durations": _d(started=0.4)},
    {"outcome": "canceled", "durations": _d(started=0.4)},
    {"durations": _d(started=600.0)},  # never in time
]


@task
def submit(scripts: list[dict[str, Any]]) -> list[str]:
    conn = BaseHook.get_connection(CONN_ID)
    base = connection_url(conn)
    assert base is not None
    with httpx.Client(
        base_url=base, headers={"Authorization": f"apiKey {conn.password}"}
    ) as client:
        return [client.post("/jobs", json=script).json()["id"] for script in scripts]


def _wait(task_id: str, job_ids: Any, **options: Any) -> JobWaitOperator:
    options.setdefault("timeout", 30.0)
    return JobWaitOperator(
        task_id=task_id, api="ionq", conn_id=CONN_ID, job_ids=job_ids, backoff=QUICK, **options
    )


with DAG("jobwait_e2e", schedule=None, catchup=False) as dag:
    ok = submit.override(task_id="submit_ok")(OK)
    mixed = submit.override(task_id="submit_mixed")(MIXED)
    # Ids through a template (the XCom's text, read back) and through .output.
    ok >> _wait("wait_ok", "{{ ti.xcom_pull(task_ids='submit_ok') }}")
    _wait("wait_in_worker", ok, deferrable=False)
    mixed >> [
        _wait("wait_failed", "{{ ti.xcom_pull(task_ids='submit_mixed')[:2] }}"),
        _wait("wait_canceled", "{{ ti.xcom_pull(task_ids='submit_mixed')[2:3] }}"),
        _wait(
            "wait_timed_out",
            "{{ ti.xcom_pull(task_ids='submit_mixed')[3:] }}",
            timeout=1.0,
            cancel_on_timeout=True,
        ),
        _wait(
            "wait_tolerant",
            "{{ ti.xcom_pull(task_ids='submit_mixed')[:3] }}",
            fail_on=["timed_out"],
        ),
    ]
