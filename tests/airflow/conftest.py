"""Apache Airflow 3 for the tests in this folder, kept away from the rest of the suite
and from the user's home.

Importing Airflow has side effects: it reads ``AIRFLOW_HOME`` (``~/airflow`` when unset)
and writes there, adds a stdout handler to the root logger and lowers its level,
replaces ``warnings.showwarning`` and configures structlog. So this conftest, which
pytest imports before any test module of this folder:

- points ``AIRFLOW_HOME`` at a temporary folder (removed when the session ends) before
  the first Airflow import; only Airflow reads it;
- imports Airflow (and the adapter) once, here, then puts the root logger and
  ``warnings.showwarning`` back as they were, so the other tests' logging is
  untouched (structlog stays configured: only Airflow uses it);
- runs every ``dag.test()`` in a child process of its own (``dag_run.py``): the task
  runner's logging, its metadata database and its in-process API server never enter
  this process.

Every test here is marked ``realtime`` (real sockets; bounded).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

HOME = tempfile.mkdtemp(prefix="jobwait-airflow-")
os.environ["AIRFLOW_HOME"] = HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{HOME}/airflow.db"

_root = (logging.root.level, list(logging.root.handlers))
_showwarning = warnings.showwarning
try:
    pytest.importorskip("airflow", reason="the Airflow tests need the test extra (apache-airflow)")
    import jobwait.adapters.airflow  # noqa: F401 - imported here, once, quarantined
finally:
    logging.root.setLevel(_root[0])
    logging.root.handlers[:] = _root[1]
    warnings.showwarning = _showwarning

from jobwait.adapters.server import JobServer  # noqa: E402 - after the quarantined import

CONN_ID = "jobwait_test"
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.realtime)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture
def connection(
    server: JobServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An Airflow connection (from the environment, as a deployment may define one)
    holding the test module's ``KEY`` in its password and the ``server`` fixture's URL
    in its host."""
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "http", "host": server.url, "password": request.module.KEY}),
    )
    return CONN_ID
