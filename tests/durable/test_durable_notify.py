"""``on_done`` is at least once, against a real redis-server, without workers: the
notification is struck off only after the callback ran (``run_notify`` here, as the
``jobwait.notify`` task runs it), the sweeper re-sends what is unconfirmed, and a
finished or canceled group stays on the sweeper's list until the last one is confirmed.
The same with real workers and SIGKILLs is in ``test_durable_workers.py``."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from conftest import API_KEY, Cluster
from jobwait import Backoff
from jobwait.adapters.celery import WaitGroup

FAST = {"backoff": Backoff(initial=0.2, factor=1.5, max=1.0)}
QUICK = {"submitted": 0.0, "ready": 0.0, "started": 0.0}


def _messages(cluster: Cluster, task: str) -> list[list[Any]]:
    # The arguments of each queued message of ``task``, oldest first (kombu's Redis
    # transport pushes new messages at the head of the list).
    out = []
    for raw in reversed(cluster.waits.store.client.lrange("celery", 0, -1)):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            out.append(json.loads(base64.b64decode(message["body"]))[0])
    return out


def _calls(cluster: Cluster, group: str) -> dict[str, int]:
    raw = cluster.waits.store.client.hgetall(f"test:{group}:on_done")
    return {k.decode(): int(v) for k, v in raw.items()}


def _pending(cluster: Cluster, group: str) -> list[str]:
    store = cluster.waits.store
    return sorted(m.decode() for m in store.client.zrange(store.keys(group).notify, 0, -1))


def _group(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, *, slow: int = 1, task: str = "record_done"
) -> WaitGroup:
    monkeypatch.setenv("JOBWAIT_DURABLE_API", cluster.server.url)
    monkeypatch.setenv("JOBWAIT_DURABLE_KEY", API_KEY)
    server = cluster.server
    ids = [server.submit(durations=QUICK, id=f"quick-{i}") for i in range(2)]
    ids += [server.submit(durations={"started": 600.0}, id=f"slow-{i}") for i in range(slow)]
    on_done = cluster.app.signature(f"durable_app.{task}")
    return cluster.waits.submit("board", ids, on_done=on_done, **FAST)


def test_durable_on_done_is_struck_off_only_after_the_callback_ran(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = _group(cluster, monkeypatch)
    waits = cluster.waits
    waits.run_shard(group.id, 0, 1)
    # The save marked both pending and the run sent one notify task for them.
    assert _pending(cluster, group.id) == ["quick-0", "quick-1"]
    assert _messages(cluster, "jobwait.notify") == [[group.id, ["quick-0", "quick-1"]]]
    assert _calls(cluster, group.id) == {}
    # A worker killed before the callback ran: the sweeper re-sends after its grace.
    assert waits.sweep(grace=60.0) == 0
    assert len(_messages(cluster, "jobwait.notify")) == 1
    waits.sweep(grace=0.0)
    assert _messages(cluster, "jobwait.notify")[-1] == [group.id, ["quick-0", "quick-1"]]
    # The task body: each callback runs, then its job is struck off.
    assert waits.run_notify(group.id, ["quick-0", "quick-1"]) == 2
    assert _calls(cluster, group.id) == {"quick-0": 1, "quick-1": 1}
    assert _pending(cluster, group.id) == []
    # The re-sent message comes later: both are confirmed, nothing runs again.
    assert waits.run_notify(group.id, ["quick-0", "quick-1"]) == 0
    assert _calls(cluster, group.id) == {"quick-0": 1, "quick-1": 1}


def test_durable_a_finished_group_stays_swept_until_every_on_done_is_confirmed(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = _group(cluster, monkeypatch, slow=0)
    waits = cluster.waits
    store = waits.store
    waits.run_shard(group.id, 0, 1)
    assert group.progress().done
    assert group.id in store.groups()  # two on_done calls unconfirmed
    assert waits.run_notify(group.id, ["quick-0"]) == 1
    assert group.id in store.groups()
    # The sweeper still visits it and re-sends the one left.
    waits.sweep(grace=0.0)
    assert _messages(cluster, "jobwait.notify")[-1] == [group.id, ["quick-1"]]
    assert waits.run_notify(group.id, ["quick-1"]) == 1
    assert group.id not in store.groups()
    assert _calls(cluster, group.id) == {"quick-0": 1, "quick-1": 1}


def test_durable_a_callback_that_raises_is_logged_and_not_run_again(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    group = _group(cluster, monkeypatch, slow=0, task="fail_done")
    waits = cluster.waits
    waits.run_shard(group.id, 0, 1)
    with caplog.at_level(logging.ERROR, logger="jobwait.celery"):
        assert waits.run_notify(group.id, ["quick-0", "quick-1"]) == 2
    assert "on_done failed for quick-0" in caplog.text
    assert _pending(cluster, group.id) == []
    assert group.id not in waits.store.groups()
    assert _calls(cluster, group.id) == {"quick-0": 1, "quick-1": 1}


def test_durable_a_canceled_group_still_delivers_the_outcomes_it_recorded(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = _group(cluster, monkeypatch)
    waits = cluster.waits
    store = waits.store
    waits.run_shard(group.id, 0, 1)
    waits.group(group.id).cancel()
    assert group.id in store.groups()
    waits.sweep(grace=0.0)
    assert _messages(cluster, "jobwait.notify")[-1] == [group.id, ["quick-0", "quick-1"]]
    assert waits.run_notify(group.id, ["quick-0", "quick-1"]) == 2
    assert group.id not in store.groups()
    waits.sweep(grace=0.0)  # nothing left to visit
    assert len(_messages(cluster, "jobwait.notify")) == 2


def test_durable_on_done_must_name_a_task_of_the_app(cluster: Cluster) -> None:
    from celery import signature

    with pytest.raises(ValueError, match=r"nowhere\.task"):
        cluster.waits.submit("board", ["a"], on_done=signature("nowhere.task"))
    assert cluster.waits.store.client.keys("jobwait:*") == []


def test_durable_cancel_remote_goes_out_as_a_task(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``cancel(remote=True)`` on ``DurableWaits.group()`` raised ``TypeError``
    (the task wrapped a bound method, whose ``self`` Celery's argument check counted)."""
    group = _group(cluster, monkeypatch)
    cluster.waits.group(group.id).cancel(remote=True)
    assert _messages(cluster, "jobwait.cancel_remote") == [[group.id]]


def test_durable_a_job_held_by_one_notify_run_is_skipped_by_another(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs holding the same job at once (the sweeper's re-send beside the original
    message) call its callback once: the first claims it for ``sweep_grace``; the claim
    also keeps the sweeper from re-sending it until it ran out."""
    group = _group(cluster, monkeypatch)
    waits = cluster.waits
    store = waits.store
    waits.run_shard(group.id, 0, 1)
    assert store.claim(group.id, "quick-0", 60.0) == 1  # another run is calling it
    assert store.claim(group.id, "quick-0", 60.0) == -1
    assert waits.run_notify(group.id, ["quick-0", "quick-1"]) == 1
    assert _calls(cluster, group.id) == {"quick-1": 1}
    assert _pending(cluster, group.id) == ["quick-0"]
    before = len(_messages(cluster, "jobwait.notify"))
    waits.sweep(grace=0.0)
    assert len(_messages(cluster, "jobwait.notify")) == before  # held: not re-sent yet
    assert store.claim(group.id, "quick-1", 60.0) == 0  # confirmed
