"""Groups written by the previous record format (``jobwait.celery/1``) are read and
finished by this version: real records, written by that version's code against a real
redis-server (``tests/data/durable_v1_make.py``, data in ``tests/data/durable_v1.json``),
loaded into a fresh redis-server here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import API_KEY, Cluster
from jobwait import (
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
)
from jobwait.adapters.celery import FORMAT, RemoteError, WaitGroup, outcome_of

DATA = Path(__file__).resolve().parent.parent / "data" / "durable_v1.json"


def _load(cluster: Cluster) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    client = cluster.waits.store.client
    b = base64.b64decode
    for key, entry in data["keys"].items():
        value = entry["value"]
        if entry["type"] == "hash":
            client.hset(key, mapping={b(k): b(v) for k, v in value.items()})
        elif entry["type"] == "zset":
            client.zadd(key, {b(member): score for member, score in value})
        else:
            for entry_id, fields in value:
                client.xadd(key, {b(k): b(v) for k, v in fields.items()}, id=entry_id)
    return data


def test_durable_v1_records_read_as_they_were_written() -> None:
    data = json.loads(DATA.read_text())
    job, fetch, failed, late = (outcome_of(r["text"]) for r in data["records"])
    assert [r["kind"] for r in data["records"]] == [
        "completed",
        "JobFetchError",
        "JobFailedError",
        "JobTimeoutError",
    ]
    assert job == {"id": "j1", "status": "completed", "output": [1, 2]}
    assert type(fetch) is JobFetchError
    context = (fetch.job_id, fetch.last_status, fetch.polls, fetch.elapsed)
    assert context == ("j2", "started", 7, 12.5)
    assert fetch.last_job == {"status": "started"}
    assert (fetch.status_code, fetch.request_id, fetch.body_excerpt) == (503, "r-1", "busy")
    assert isinstance(fetch.__cause__, RemoteError)
    assert fetch.__cause__.type_name == "builtins.ConnectionResetError"
    assert fetch.__cause__.message == "peer reset"
    assert fetch.__notes__ == ["jobwait: 5 batch requests in a row failed"]
    assert type(failed) is JobFailedError
    assert failed.failure == {"code": "X", "message": "m"}
    assert type(late) is JobTimeoutError
    assert (late.timeout, late.last_job) == (3.0, None)


def test_durable_v1_groups_are_read_whole(cluster: Cluster) -> None:
    _load(cluster)
    done = WaitGroup.from_id("v1-done", redis_url=cluster.redis.url)
    progress = done.progress()
    assert (progress.total, progress.waiting) == (8, 0)
    assert dict(progress.counts) == {
        "completed": 3,
        "failed": 1,
        "canceled": 1,
        "JobTimeoutError": 2,
        "JobFetchError": 1,
    }
    results = done.results()
    assert {k: v["status"] for k, v in results.items() if isinstance(v, dict)} == {
        "done-0": "completed",
        "done-1": "completed",
        "done-2": "completed",
        "failed-0": "failed",
        "canceled-0": "canceled",
    }
    assert all(type(results[f"late-{i}"]) is JobTimeoutError for i in range(2))
    assert results["late-0"].timeout == 1.0
    missing = results["no-such-job"]
    assert type(missing) is JobFetchError
    assert missing.polls == 2
    assert isinstance(missing.__cause__, RemoteError)
    assert missing.__cause__.type_name == "jobwait._fleet.JobMissingError"
    assert dict(done.as_completed(timeout=5)).keys() == results.keys()

    raised = WaitGroup.from_id("v1-raise", redis_url=cluster.redis.url).results()
    assert type(raised["raise-failed"]) is JobFailedError
    assert raised["raise-failed"].failure["code"] == "SimulatedFailure"
    assert type(raised["raise-canceled"]) is JobCanceledError


def test_durable_a_v1_group_in_flight_is_finished_by_this_version(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group a v1 worker left waiting (its shard saved, two ``on_done`` calls never
    sent) is run on by this version: its jobs' deadline passed while the data sat in
    the file, so they make the last poll they were owed (one batch read) and end with
    JobTimeoutError; the two old notifications and the three new ones all reach the
    callback; the group leaves the sweeper's list."""
    monkeypatch.setenv("JOBWAIT_DURABLE_API", cluster.server.url)
    monkeypatch.setenv("JOBWAIT_DURABLE_KEY", API_KEY)
    _load(cluster)
    waits = cluster.waits
    store = waits.store
    assert store.meta("v1-open").format == "jobwait.celery/1" != FORMAT  # type: ignore[union-attr]
    group = waits.group("v1-open")
    assert group.progress().waiting == 3
    gen = store.load("v1-open", 0)[0]  # type: ignore[index]
    waits.run_shard("v1-open", 0, gen)
    # The deadline had passed: the one poll each job was owed, its last, in one read.
    assert [r.method for r in cluster.server.requests] == ["GET"]
    results = group.results()
    assert sorted(results) == [f"open-{i}" for i in range(3)] + ["open-done-0", "open-done-1"]
    assert all(type(results[f"open-{i}"]) is JobTimeoutError for i in range(3))
    assert results["open-done-0"]["status"] == "completed"  # a v1 record beside new ones
    stored = store.results("v1-open")
    assert "context" in json.loads(stored["open-0"])["error"]  # this version's layout
    # The notifications: the old two (pending since v1) and the new three.
    pending = sorted(m.decode() for m in store.client.zrange(store.keys("v1-open").notify, 0, -1))
    assert pending == sorted(results)
    assert waits.run_notify("v1-open", pending) == 5
    calls = store.client.hgetall("test:v1-open:on_done")
    assert {k.decode(): int(v) for k, v in calls.items()} == dict.fromkeys(results, 1)
    assert store.client.zcard(store.keys("v1-open").notify) == 0
    assert "v1-open" not in store.groups()
