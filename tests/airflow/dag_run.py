"""Run the end-to-end DAG with ``dag.test()`` in a process of its own, then write what
Airflow recorded (task states, XComs) as JSON to the path given as the only argument.

Started by tests/airflow/test_airflow_dag.py with ``AIRFLOW_HOME`` (a temporary folder),
its SQLite database, the DAG folder and the connection set in the environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(out: Path) -> None:
    started = time.monotonic()
    from airflow.utils import db

    db.initdb()  # a fresh SQLite metadata database in AIRFLOW_HOME
    ready = time.monotonic()
    sys.path.insert(0, str(Path(__file__).resolve().parent / "dags"))
    from jobwait_e2e import dag

    run = dag.test()
    ran = time.monotonic()

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {
            ti.task_id: str(ti.state)
            for ti in session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id)
        }
        xcom: dict[str, dict[str, object]] = {}
        for row in session.query(XComModel).filter(XComModel.run_id == run.run_id):
            value = row.value
            xcom.setdefault(row.task_id, {})[row.key] = (
                json.loads(value) if isinstance(value, str) else value
            )
    out.write_text(
        json.dumps(
            {
                "states": states,
                "xcom": xcom,
                "seconds": {"database": ready - started, "dag_test": ran - ready},
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
