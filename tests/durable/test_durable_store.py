"""Durable waits against a real redis-server, without workers: the compare-and-set save,
outcomes once, the sweeper's take-over, the group budget, outcomes as JSON, and the typed
errors ``submit`` raises. Shard runs here are called in this process (``run_shard``)."""

from __future__ import annotations

import json
import pickle
import threading
from typing import Any

import pytest

from conftest import API_KEY, Cluster
from jobwait import (
    Backoff,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
    JobWaitError,
)
from jobwait._durable import outcome_record, record_json
from jobwait.adapters.celery import (
    DurableWaitError,
    ForeignFormatError,
    GroupCanceledError,
    GroupNotFoundError,
    GroupTimeoutError,
    InvalidJobIdsError,
    RemoteError,
    Source,
    StoreUnavailableError,
    UnknownSourceError,
    WaitGroup,
    http_source,
    outcome_of,
)
from jobwait.adapters.celery._store import FORMAT, Store

FAST = {"backoff": Backoff(initial=0.2, factor=1.5, max=1.0)}


def _queued(cluster: Cluster) -> list[Any]:
    # The task messages waiting in the broker's default queue.
    raw = cluster.waits.store.client.lrange("celery", 0, -1)
    return [json.loads(m) for m in raw]


def _shard_messages(cluster: Cluster) -> list[list[Any]]:
    out = []
    for message in _queued(cluster):
        if message["headers"]["task"] == "jobwait.shard":
            body = json.loads(__import__("base64").b64decode(message["body"]))
            out.append(body[0])
    return out


# --- the store -------------------------------------------------------------------------


def test_durable_save_is_compare_and_set_and_records_each_outcome_once(cluster: Cluster) -> None:
    store = cluster.waits.store
    assert store.create("g1", {"source": "board", "total": "2"}, [b"s0"], 100.0) is None
    first = store.save(
        "g1", 0, gen=1, snapshot=b"s1", due=110.0, outcomes=[("a", "completed", '{"job":1}')],
        total=2, ttl=0, notify=False, now=105.0,
    )  # fmt: skip
    assert first == 2
    # A stale writer (generation 1 again) writes nothing, not even its outcomes.
    stale = store.save(
        "g1", 0, gen=1, snapshot=b"old", due=999.0,
        outcomes=[("a", "failed", '{"job":2}'), ("b", "completed", '{"job":3}')],
        total=2, ttl=0, notify=False, now=106.0,
    )  # fmt: skip
    assert stale == 0
    assert store.load("g1", 0) == (2, b"s1", False)
    assert store.results("g1") == {"a": b'{"job":1}'}
    assert store.counts("g1") == {"completed": 1}
    assert [job for _, job in store.read_stream("g1", "0-0", block_ms=None)] == ["a"]
    assert store.overdue("g1", 109.0) == []
    assert store.overdue("g1", 110.0) == [0]
    # The last save marks the shard done and takes the group off the sweeper's list.
    last = store.save(
        "g1", 0, gen=2, snapshot=None, due=None, outcomes=[("b", "completed", '{"job":3}')],
        total=2, ttl=60, notify=False, now=111.0,
    )  # fmt: skip
    assert last == 3
    assert store.load("g1", 0) == (3, None, True)
    assert store.groups() == []
    assert 0 < store.client.ttl(store.keys("g1").results) <= 60
    assert store.save(
        "g1", 0, gen=3, snapshot=b"x", due=1.0, outcomes=[], total=2, ttl=0, notify=False, now=1.0
    ) == 0  # fmt: skip
    assert store.save(
        "nope", 0, gen=1, snapshot=b"x", due=1.0, outcomes=[], total=1, ttl=0, notify=False, now=1
    ) == -1  # fmt: skip


def test_durable_take_over_moves_only_overdue_shards(cluster: Cluster) -> None:
    store = cluster.waits.store
    assert store.create("g2", {"source": "board", "total": "2"}, [b"s0", b"s1"], 100.0) is None
    store.save(
        "g2", 1, gen=1, snapshot=b"s", due=200.0, outcomes=[], total=2, ttl=0, notify=False, now=1
    )  # fmt: skip
    assert store.overdue("g2", 150.0) == [0]
    assert store.take_over("g2", 1, before=150.0, due=160.0) == 0  # not overdue
    assert store.take_over("g2", 0, before=150.0, due=160.0) == 2
    assert store.take_over("g2", 0, before=150.0, due=170.0) == 0  # already moved to 160
    # The message the sweeper replaced is stale now: its save is dropped.
    assert store.save(
        "g2", 0, gen=1, snapshot=b"x", due=1.0, outcomes=[], total=2, ttl=0, notify=False, now=1
    ) == 0  # fmt: skip


def test_durable_budget_allows_n_requests_in_any_second(cluster: Cluster) -> None:
    store = cluster.waits.store
    waits = [store.take_token("g3", 3, f"t{i}") for i in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert all(0 < w <= 1.0 for w in waits[3:])


def test_durable_snapshot_is_stored_as_compressed_json(cluster: Cluster) -> None:
    group = cluster.waits.submit("board", ["a", "b"], **FAST)
    _, blob, _ = cluster.waits.store.load(group.id, 0) or (0, None, False)
    assert blob is not None
    assert not blob.startswith(b"\x80")  # not a pickle
    from jobwait._durable import unpack

    assert isinstance(unpack(blob), dict)
    with pytest.raises(ValueError, match="zlib"):
        unpack(b"not zlib")


# --- outcomes as JSON -------------------------------------------------------------------


def _roundtrip(outcome: Any) -> Any:
    kind, record = outcome_record(outcome, status_of=lambda job: job.get("status"))
    text = record_json(record)
    json.loads(text)  # plain JSON
    return kind, outcome_of(text)


def test_durable_outcomes_round_trip_as_json_with_their_context() -> None:
    job = {"id": "j1", "status": "completed", "output": [1, 2]}
    assert _roundtrip(job) == ("completed", job)

    cause = ConnectionResetError("peer reset")
    error = JobFetchError(
        "gave up", job_id="j2", last_status="started", last_job={"status": "started"},
        polls=7, elapsed=12.5, status_code=503, request_id="r-1", body_excerpt="busy",
    )  # fmt: skip
    error.__cause__ = cause
    error.add_note("jobwait: 5 batch requests in a row failed")
    kind, back = _roundtrip(error)
    assert kind == "JobFetchError"
    assert type(back) is JobFetchError
    assert (back.job_id, back.last_status, back.polls, back.elapsed) == ("j2", "started", 7, 12.5)
    assert back.last_job == {"status": "started"}
    assert (back.status_code, back.request_id, back.body_excerpt) == (503, "r-1", "busy")
    assert isinstance(back.__cause__, RemoteError)
    assert back.__cause__.type_name == "builtins.ConnectionResetError"
    assert "peer reset" in str(back.__cause__)
    assert back.__notes__ == ["jobwait: 5 batch requests in a row failed"]
    assert str(back) == str(error)
    pickle.loads(pickle.dumps(back))  # still crosses processes

    failed = JobFailedError("failed", job_id="j3", failure={"code": "X", "message": "m"})
    assert _roundtrip(failed)[1].failure == {"code": "X", "message": "m"}
    timed_out = JobTimeoutError("late", job_id="j4", timeout=3.0, last_job=object())
    kind, back = _roundtrip(timed_out)
    assert (kind, back.timeout, back.last_job) == ("JobTimeoutError", 3.0, None)


def test_durable_malformed_outcomes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        outcome_of("{")
    with pytest.raises(ValueError, match="malformed"):
        outcome_of('{"error": "JobTimeoutError"}')
    with pytest.raises(TypeError):
        outcome_of("[1]")
    # A class this version does not know keeps its context as a JobWaitError.
    back = outcome_of(
        '{"error": "FutureError", "reason": "r", "context": {"job_id": "j"}, "extra": {"x": 1}}'
    )
    assert type(back) is JobWaitError
    assert back.job_id == "j"


# --- typed errors at submit ---------------------------------------------------------------


def test_durable_submit_refuses_bad_input_with_typed_errors(cluster: Cluster) -> None:
    waits = cluster.waits
    with pytest.raises(UnknownSourceError, match=r"'nope'.*register_source"):
        waits.submit("nope", ["a"])
    with pytest.raises(InvalidJobIdsError, match="empty"):
        waits.submit("board", [])
    with pytest.raises(InvalidJobIdsError, match=r"twice.*'a'"):
        waits.submit("board", ["a", "b", "a"])
    with pytest.raises(InvalidJobIdsError, match="non-empty string"):
        waits.submit("board", ["a", ""])
    with pytest.raises(InvalidJobIdsError, match="not one string"):
        waits.submit("board", "abc")
    with pytest.raises(TypeError, match="fail_fast"):
        waits.submit("board", ["a"], fail_fast=True)
    with pytest.raises(TypeError, match="status_of"):
        waits.submit("board", ["a"], status_of=lambda job: "x")
    with pytest.raises(TypeError, match="unexpected keyword"):
        waits.submit("board", ["a"], max_bach=3)
    with pytest.raises(ValueError):
        waits.submit("board", ["a"], timeout=-1)
    with pytest.raises(ValueError, match="max_polls_per_second"):
        waits.submit("board", ["a"], max_polls_per_second=0)
    # Nothing above reached Redis.
    assert waits.store.client.keys("jobwait:*") == []
    for error in (UnknownSourceError, InvalidJobIdsError):
        assert issubclass(error, DurableWaitError)
        assert issubclass(error, JobWaitError)


def test_durable_submit_to_an_unreachable_redis_is_a_typed_error(cluster: Cluster) -> None:
    from procs import free_port

    from jobwait.adapters.celery import DurableWaits

    app = cluster.app
    waits = DurableWaits(app, redis_url=f"redis://127.0.0.1:{free_port()}/0", prefix="other")
    waits.register_source("board", lambda: Source(fetch_many=dict))
    with pytest.raises(StoreUnavailableError, match="Redis is unreachable") as caught:
        waits.submit("board", ["a"])
    assert caught.value.__cause__ is not None


def test_durable_groups_of_another_format_are_refused(cluster: Cluster) -> None:
    store = cluster.waits.store
    store.client.hset("jobwait:{old}:meta", mapping={"format": "jobwait.celery/0", "total": "1"})
    with pytest.raises(ForeignFormatError, match=r"jobwait\.celery/0"):
        cluster.waits.group("old")
    with pytest.raises(ForeignFormatError, match="choose another group_id"):
        cluster.waits.submit("board", ["a"], group_id="old")
    with pytest.raises(GroupNotFoundError):
        WaitGroup.from_id("missing", redis_url=cluster.redis.url)
    group = cluster.waits.submit("board", ["a"], group_id="mine")
    assert WaitGroup.from_id("mine", redis_url=cluster.redis.url).progress().total == 1
    with pytest.raises(ValueError, match="exists already"):
        cluster.waits.submit("board", ["b"], group_id="mine")
    with pytest.raises(GroupTimeoutError, match="1 of 1 jobs still waiting"):
        list(group.as_completed(timeout=0.05))
    assert store.meta("mine").format == FORMAT  # type: ignore[union-attr]


# --- one shard run, in this process ---------------------------------------------------


def _board_source(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBWAIT_DURABLE_API", cluster.server.url)
    monkeypatch.setenv("JOBWAIT_DURABLE_KEY", API_KEY)


def test_durable_duplicate_delivery_at_once_one_write_wins(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same shard message delivered twice at the same moment: both poll (one
    request each, the at-least-once price), one save wins, each outcome is recorded
    once, and only the winner re-sends the shard."""
    _board_source(cluster, monkeypatch)
    server = cluster.server
    ids = [server.submit(durations={"submitted": 0.0, "ready": 0.0, "started": 60.0})]
    ids += [server.submit(durations={"submitted": 0.0, "ready": 0.0, "started": 0.0})]
    waits = cluster.waits
    group = waits.submit("board", ids, **FAST)
    source = waits.source("board")
    both_fetched = threading.Barrier(2, timeout=10)

    def fetch_together(batch: tuple[str, ...]) -> Any:
        result = source.fetch_many(batch)
        both_fetched.wait()
        return result

    waits._sources["board"] = Source(fetch_many=fetch_together, is_retryable=source.is_retryable)
    assert len(_shard_messages(cluster)) == 1
    threads = [threading.Thread(target=waits.run_shard, args=(group.id, 0, 1)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(server.requests) == 2  # one status request per delivery
    progress = group.progress()
    assert (progress.waiting, dict(progress.counts)) == (1, {"completed": 1})
    assert len(waits.store.read_stream(group.id, "0-0", block_ms=None)) == 1
    assert waits.store.load(group.id, 0)[0] == 2  # type: ignore[index]
    # The submit's message and the winner's re-send (generation 2); no second one.
    assert [m[2] for m in _shard_messages(cluster)] == [2, 1]
    # A third, late delivery of generation 1 is stale: dropped without a request.
    waits.run_shard(group.id, 0, 1)
    assert len(server.requests) == 2


def test_durable_secrets_never_reach_redis_or_messages(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    _board_source(cluster, monkeypatch)
    server = cluster.server
    ids = [server.submit(durations={"started": 0.0, "ready": 0.0}) for _ in range(3)]
    ids.append("no-such-job")
    group = cluster.waits.submit("board", ids, max_fetch_errors=1, **FAST)
    cluster.waits.run_shard(group.id, 0, 1)
    results = group.results()
    assert isinstance(results["no-such-job"], JobFetchError)
    client = cluster.waits.store.client
    dump = b""
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"string":
            dump += client.get(key) or b""
        elif kind == b"hash":
            dump += b"".join(k + v for k, v in client.hgetall(key).items())
        elif kind == b"list":
            dump += b"".join(client.lrange(key, 0, -1))
        elif kind == b"stream":
            dump += repr(client.xrange(key)).encode()
    assert API_KEY.encode() not in dump
    import zlib

    for n in range(cluster.waits.store.meta(group.id).shards):  # type: ignore[union-attr]
        blob = cluster.waits.store.load(group.id, n)[1]  # type: ignore[index]
        if blob:
            assert API_KEY.encode() not in zlib.decompress(blob)


def test_durable_store_wraps_a_down_redis(cluster: Cluster) -> None:
    group = cluster.waits.submit("board", ["a"], **FAST)
    cluster.redis.stop()
    with pytest.raises(StoreUnavailableError):
        group.progress()
    with pytest.raises(StoreUnavailableError):
        cluster.waits.sweep()


def test_durable_store_class_is_usable_alone(cluster: Cluster) -> None:
    store = Store(cluster.redis.client(), prefix="p")
    assert store.keys("g").shard(3) == "p:{g}:shard:3"
    assert store.now() > 1e9


def test_durable_cancel_stops_the_group_and_remote_cancel_reaches_the_api(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    _board_source(cluster, monkeypatch)
    server = cluster.server
    ids = [server.submit(durations={"started": 600.0}) for _ in range(4)]
    ids.append(server.submit(durations={"started": 0.0, "ready": 0.0}))
    waits = cluster.waits
    group = waits.submit("board", ids, **FAST)
    waits.run_shard(group.id, 0, 1)
    assert group.progress().waiting == 4
    requests = len(server.requests)
    # The worker's side of cancel(remote=True): the task body, run here.
    assert waits.cancel_task(group.id) == 4
    puts = [r.path for r in server.requests if r.method == "PUT"]
    assert sorted(puts) == sorted(f"/v0.4/jobs/{i}/status/cancel" for i in ids[:4])
    group.cancel()
    assert group.progress().canceled
    # A run after the cancel polls nothing and writes nothing.
    waits.run_shard(group.id, 0, 2)
    assert len(server.requests) == requests + 4
    assert waits.sweep() == 0
    with pytest.raises(GroupCanceledError, match="canceled with 4 jobs waiting"):
        list(group.as_completed(timeout=5))
    assert list(group.results()) == [ids[4]]


def test_durable_http_source_one_by_one_reads_each_job_with_headers_from_the_env(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = cluster.server
    monkeypatch.setenv("DURABLE_TEST_AUTH", f"apiKey {API_KEY}")
    waits = cluster.waits
    waits.register_source(
        "one-by-one",
        http_source(server.url + "/jobs/{id}", headers_env={"Authorization": "DURABLE_TEST_AUTH"}),
    )
    ids = [server.submit(durations={"started": 0.0, "ready": 0.0}, id=f"a/b.{i}") for i in range(3)]
    group = waits.submit("one-by-one", ids, **FAST)
    options = waits.store.client.hget(waits.store.keys(group.id).meta, "options")
    assert json.loads(options)["max_batch"] == 1
    waits.run_shard(group.id, 0, 1)
    assert sorted(r.path for r in server.requests) == [f"/v0.4/jobs/a%2Fb%2E{i}" for i in range(3)]
    assert {
        job_id: outcome["status"] for job_id, outcome in group.results().items()
    } == dict.fromkeys(ids, "completed")
    with pytest.raises(TypeError, match="max_batch must be 1"):
        waits.submit("one-by-one", ["x"], max_batch=5)
    with pytest.raises(ValueError, match=r"\{ids\}"):
        http_source("https://example.invalid/jobs", batch=True)
