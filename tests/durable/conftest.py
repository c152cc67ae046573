"""Fixtures of the durable-wait tests: a real redis-server, real celery workers, JobServer.

Every test here is marked ``durable`` and ``realtime`` (select them with
``pytest -k "celery or durable"``). Each starts what it needs on 127.0.0.1 and stops it
at teardown, also when it fails; every wait is bounded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="the durable-wait tests need the test extra (celery)")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import durable_app
from procs import CeleryWorker, Processes, RedisServer, processes

from jobwait.adapters.server import JobServer

API_KEY = "durable-test-secret-key"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.durable)
            item.add_marker(pytest.mark.realtime)


class Cluster:
    """A redis-server, a JobServer and the app, as the tests drive them."""

    def __init__(self, procs: Processes, server: JobServer, *, aof: bool = False) -> None:
        self.procs = procs
        self.server = server
        self.redis: RedisServer = procs.redis(aof=aof)
        self.app, self.waits = durable_app.make(self.redis.url)

    @property
    def env(self) -> dict[str, str]:
        return {
            "JOBWAIT_DURABLE_REDIS": self.redis.url,
            "JOBWAIT_DURABLE_API": self.server.url,
            "JOBWAIT_DURABLE_KEY": API_KEY,
        }

    def worker(self, name: str = "w") -> CeleryWorker:
        return self.procs.worker("durable_app:app", self.env, name=name)

    def close(self) -> None:
        self.waits.store.client.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with processes(tmp_path) as started:
        yield started


@pytest.fixture
def job_server() -> Iterator[JobServer]:
    with JobServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def cluster(procs: Processes, job_server: JobServer) -> Iterator[Cluster]:
    made = Cluster(procs, job_server)
    try:
        yield made
    finally:
        made.close()
