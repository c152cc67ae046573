"""Durable records against a real redis-server, tried as an attacker (or a bad day)
would: every key of a group changed into something jobwait did not write.

The promises (docs/durable.md, "What a reader does with foreign data"):

- ``from_id``, ``progress``, ``results`` and ``as_completed`` raise
  :class:`CorruptGroupError` (a ``DurableWaitError`` and a ``ValueError``) naming the
  group and the key, for anything they did not write: never a raw ``KeyError``,
  ``RecursionError``, ``OverflowError``, ``UnicodeDecodeError`` or Redis
  ``WRONGTYPE`` answer.
- ``run_shard`` never raises for bad state: it logs the fault and leaves the shard as it
  is; ``sweep`` logs a corrupted group and goes on with the others.
- ``submit`` writes a group all at once or not at all: a connection lost at any command
  leaves nothing half-written, and a retry with the same ``group_id`` works.
- Every message shows ids, statuses and formats cut to 120 characters.

Each case lists, in ``BEFORE``, what today's code did with it before this group was
written (recorded on commit 3ee20f2).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from conftest import API_KEY, Cluster
from jobwait import Backoff
from jobwait.adapters.celery import (
    FORMAT,
    CorruptGroupError,
    DurableWaitError,
    ForeignFormatError,
    GroupNotFoundError,
    InvalidJobIdsError,
    UnknownSourceError,
    WaitGroup,
)
from jobwait.adapters.celery._store import Keys, Store

FAST = {"backoff": Backoff(initial=0.2, factor=1.5, max=1.0)}
QUICK = {"submitted": 0.0, "ready": 0.0, "started": 0.0}
HUGE = 10**400
LONG = 120 + 200  # a message shows at most 120 characters of a value, plus its own words


def _group(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> WaitGroup:
    """Two jobs finished (recorded), one still waiting in shard 0 at generation 2."""
    monkeypatch.setenv("JOBWAIT_DURABLE_API", cluster.server.url)
    monkeypatch.setenv("JOBWAIT_DURABLE_KEY", API_KEY)
    server = cluster.server
    ids = [server.submit(durations=QUICK, id=f"quick-{i}") for i in range(2)]
    ids.append(server.submit(durations={"started": 600.0}, id="slow"))
    group = cluster.waits.submit(
        "board", ids, on_done=cluster.app.signature("durable_app.record_done"), **FAST
    )
    cluster.waits.run_shard(group.id, 0, 1)
    assert group.progress().waiting == 1
    return group


def _snapshot(client: Any, keys: Keys) -> dict[str, Any]:
    blob = client.hget(keys.shard(0), "snap")
    snapshot: dict[str, Any] = json.loads(zlib.decompress(blob))
    return snapshot


def _with_snapshot(change: Callable[[dict[str, Any]], object]) -> Callable[[Any, Keys], None]:
    def corrupt(client: Any, keys: Keys) -> None:
        snapshot = _snapshot(client, keys)
        change(snapshot)
        client.hset(keys.shard(0), "snap", zlib.compress(json.dumps(snapshot).encode()))

    return corrupt


def _error_record(**context: Any) -> bytes:
    # Today's record format (jobwait.celery/1) with a context a writer never produces.
    record = {
        "error": "JobTimeoutError",
        "class": "jobwait._errors.JobTimeoutError",
        "reason": "late",
        "context": {"job_id": "quick-0", "polls": 1, "elapsed": 1.0, **context},
        "extra": {},
        "cause": None,
        "notes": [],
    }
    return json.dumps(record).encode()


def _key(keys: Keys, key: str) -> str:
    return keys.shard(int(key[6:])) if key.startswith("shard:") else str(getattr(keys, key))


def _set(key: str, field: str, value: bytes | str) -> Callable[[Any, Keys], None]:
    return lambda client, keys: client.hset(_key(keys, key), field, value)


def _replace(key: str, value: bytes) -> Callable[[Any, Keys], None]:
    def corrupt(client: Any, keys: Keys) -> None:
        client.delete(getattr(keys, key))
        client.set(getattr(keys, key), value)

    return corrupt


def _only_format(client: Any, keys: Keys) -> None:
    client.delete(keys.meta)
    client.hset(keys.meta, "format", FORMAT)


def _stream_entry(fields: dict[str, bytes]) -> Callable[[Any, Keys], None]:
    return lambda client, keys: client.xadd(keys.stream, fields)


@dataclass(frozen=True)
class Case:
    name: str
    corrupt: Callable[[Any, Keys], object]
    read: str  # "from_id", "progress", "results", "as_completed"
    before: str  # what 3ee20f2 did


READERS = [
    Case("meta-only-format", _only_format, "progress", "KeyError('total')"),
    Case("meta-total-not-a-number", _set("meta", "total", "many"), "progress", "ValueError: int()"),
    Case("meta-total-5000-digits", _set("meta", "total", "9" * 5000), "progress",
         "ValueError: Exceeds the limit (4300 digits)"),
    Case("meta-total-negative", _set("meta", "total", "-5"), "progress",
         "no error: Progress(waiting=-7)"),
    Case("meta-not-utf8", _set("meta", "source", b"\xff\xfe"), "from_id", "UnicodeDecodeError"),
    Case("meta-wrong-redis-type", _replace("meta", b"x"), "from_id",
         "redis ResponseError: WRONGTYPE"),
    Case("counts-not-a-number", _set("counts", "completed", "x"), "progress",
         "ValueError: int()"),
    Case("counts-past-total", _set("counts", "completed", "99"), "progress",
         "no error: Progress(waiting=-96)"),
    Case("result-nested-100000-deep", _set("results", "quick-0", "[" * 100_000), "results",
         "RecursionError"),
    Case("result-huge-elapsed", _set("results", "quick-0", _error_record(elapsed=HUGE)), "results",
         "OverflowError: int too large to convert to float"),
    Case("result-elapsed-a-string", _set("results", "quick-0", _error_record(elapsed="x")),
         "results", "ValueError: Unknown format code 'f'"),
    Case("result-not-an-object", _set("results", "quick-0", "[1]"), "results", "TypeError"),
    Case("result-not-utf8", _set("results", "quick-0", b"\xff\xfe{}"), "results",
         "ValueError: a stored outcome is not JSON (untyped)"),
    Case("result-unknown-shape", _set("results", "quick-0", '{"neither": 1}'), "results",
         "KeyError('error') as ValueError (untyped)"),
    Case("result-wrong-redis-type", _replace("results", b"x"), "results",
         "redis ResponseError: WRONGTYPE"),
    Case("stream-entry-without-id", _stream_entry({"kind": b"completed"}), "as_completed",
         "KeyError(b'id')"),
    Case("stream-entry-of-a-job-without-outcome", _stream_entry({"id": b"ghost"}),
         "as_completed", "no error: ends early, job 'slow' never seen"),
    Case("stream-id-not-utf8", _stream_entry({"id": b"\xff"}), "as_completed",
         "UnicodeDecodeError"),
]  # fmt: skip


def _read(cluster: Cluster, group: WaitGroup, how: str) -> object:
    if how == "from_id":
        return WaitGroup.from_id(group.id, redis_url=cluster.redis.url)
    if how == "progress":
        return group.progress()
    if how == "results":
        return group.results()
    return list(group.as_completed(timeout=3))


@pytest.mark.parametrize("case", READERS, ids=[c.name for c in READERS])
def test_durable_readers_raise_corrupt_group_error_for_foreign_data(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    group = _group(cluster, monkeypatch)
    store = cluster.waits.store
    case.corrupt(store.client, store.keys(group.id))
    with pytest.raises(CorruptGroupError) as caught:
        _read(cluster, group, case.read)
    error = caught.value
    assert isinstance(error, DurableWaitError)
    assert isinstance(error, ValueError)
    assert group.id in str(error)
    assert len(str(error)) < 600, len(str(error))


# --- run_shard and sweep never raise for bad state -------------------------------------

SHARDS = [
    Case("snapshot-nested-100000-deep", _set("shard:0", "snap", zlib.compress(b"[" * 100_000)),
         "run_shard", "RecursionError"),
    Case("snapshot-huge-now", _with_snapshot(lambda s: s.update(now=HUGE)), "run_shard",
         "OverflowError"),
    Case("snapshot-huge-due", _with_snapshot(lambda s: s["jobs"][0].update(due=HUGE)),
         "run_shard", "OverflowError"),
    Case("snapshot-not-zlib", _set("shard:0", "snap", b"plain"), "run_shard",
         "logged (already held)"),
    Case("shard-generation-not-a-number", _set("shard:0", "gen", "x"), "run_shard",
         "ValueError: int()"),
    Case("meta-without-source", lambda c, k: c.hdel(k.meta, "source"), "run_shard",
         "KeyError('source')"),
    Case("meta-without-total", lambda c, k: c.hdel(k.meta, "total"), "run_shard",
         "KeyError('total') after a status request"),
    Case("meta-budget-not-a-number", _set("meta", "budget", "x"), "run_shard",
         "ValueError: int()"),
    Case("meta-on-done-not-json", _set("meta", "on_done", "{"), "run_shard",
         "JSONDecodeError after the save"),
    Case("meta-wrong-redis-type", _replace("meta", b"x"), "run_shard",
         "redis ResponseError: WRONGTYPE"),
    Case("sweep-due-member-not-a-number", lambda c, k: c.zadd(k.due, {"x": 0}), "sweep",
         "ValueError: int()"),
    Case("sweep-meta-only-format", _only_format, "sweep", "no error"),
    Case("sweep-notify-member-not-utf8", lambda c, k: c.zadd(k.notify, {b"\xff": 0}), "sweep",
         "UnicodeDecodeError"),
    Case("sweep-meta-wrong-redis-type", _replace("meta", b"x"), "sweep",
         "redis ResponseError: WRONGTYPE"),
]  # fmt: skip


@pytest.mark.parametrize("case", SHARDS, ids=[c.name for c in SHARDS])
def test_durable_run_shard_and_sweep_log_bad_state_and_never_raise(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    case: Case,
) -> None:
    group = _group(cluster, monkeypatch)
    store = cluster.waits.store
    keys = store.keys(group.id)
    case.corrupt(store.client, keys)
    requests = len(cluster.server.requests)
    with caplog.at_level(logging.INFO, logger="jobwait.celery"):
        if case.read == "run_shard":
            cluster.waits.run_shard(group.id, 0, 2)
        else:
            cluster.waits.sweep(grace=0.0)
    assert any(r.levelno >= logging.ERROR for r in caplog.records), caplog.text
    assert all(len(r.getMessage()) < 2000 for r in caplog.records)
    if case.read == "run_shard":
        assert len(cluster.server.requests) == requests, "no status request for bad state"


def test_durable_a_healthy_group_is_swept_beside_a_corrupted_one(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _group(cluster, monkeypatch)
    store = cluster.waits.store
    store.client.zadd(store.keys(bad.id).due, {"x": 0})
    good = cluster.waits.submit("board", ["a"], **FAST)
    assert cluster.waits.sweep(grace=0.0) == 1  # the good group's shard, re-sent
    assert store.load(good.id, 0)[0] == 2  # type: ignore[index]


# --- messages: the 120-character rule ---------------------------------------------------

MEGA = "x" * 1_000_000


def test_durable_messages_cut_ids_names_and_formats(cluster: Cluster) -> None:
    waits = cluster.waits
    attempts: list[Callable[[], object]] = [
        lambda: waits.submit("board", [MEGA, MEGA]),
        lambda: waits.submit("board", ["a", MEGA.encode()]),  # type: ignore[list-item]
        lambda: waits.submit(MEGA, ["a"]),
        lambda: WaitGroup.from_id("y" * 1_000_000, redis_url=cluster.redis.url),
        lambda: waits.submit("board", ["b"], group_id=MEGA),  # exists, another submission
    ]
    waits.submit("board", ["a"], group_id=MEGA)
    store = waits.store
    store.client.hset(store.keys("foreign").meta, mapping={"format": MEGA, "total": "1"})
    attempts.append(lambda: waits.group("foreign"))
    attempts.append(lambda: waits.submit("board", ["a"], group_id="foreign"))
    kinds = []
    for attempt in attempts:
        with pytest.raises((DurableWaitError, TypeError, ValueError)) as caught:
            attempt()
        kinds.append(type(caught.value).__name__)
        assert len(str(caught.value)) < LONG + 300, (kinds[-1], len(str(caught.value)))
    assert kinds[:4] == [
        InvalidJobIdsError.__name__,
        InvalidJobIdsError.__name__,
        UnknownSourceError.__name__,
        GroupNotFoundError.__name__,
    ]
    assert kinds[5:] == [ForeignFormatError.__name__] * 2


# --- submit: all at once or not at all --------------------------------------------------


class _Dropping(redis.Redis):
    """A client whose connection is lost at its ``drop_at``-th command: before the
    command reaches Redis (``after=False``) or after Redis ran it, the answer lost."""

    drop_at = 0
    after = False
    sent = 0

    def _maybe_drop(self, run: Callable[[], Any]) -> Any:
        self.sent += 1
        if self.sent != self.drop_at:
            return run()
        if self.after:
            run()
        raise redis.ConnectionError("connection lost (injected)")

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self._maybe_drop(lambda: super(_Dropping, self).execute_command(*args, **options))

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        real = super().pipeline(transaction=transaction, shard_hint=shard_hint)
        outer = self

        class _Pipe:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def execute(self) -> Any:
                return outer._maybe_drop(real.execute)

        return _Pipe()


def _keys_of(client: Any, group: str) -> list[bytes]:
    return sorted(client.keys(f"jobwait:{{{group}}}:*"))


@pytest.mark.parametrize("after", [False, True], ids=["before-the-command", "answer-lost"])
def test_durable_submit_lost_at_any_command_leaves_all_or_nothing_and_retry_works(
    cluster: Cluster, after: bool
) -> None:
    """Before: a drop at MULTI (the pipeline) left the meta key behind (``hsetnx``
    outside the transaction) and a retry said "exists already"; a lost answer made the
    retry fail the same way."""
    waits = cluster.waits
    good = waits.store
    ids = [f"job-{i}" for i in range(25)]
    for drop_at in range(1, 12):
        group = f"g-{drop_at}-{after}"
        client = _Dropping.from_url(cluster.redis.url)
        client.drop_at, client.after = drop_at, after
        waits._store = Store(client, waits.prefix)
        try:
            waits.submit("board", ids, group_id=group, shard_size=10, **FAST)
        except DurableWaitError:
            written = _keys_of(good.client, group)
            meta = good.client.exists(good.keys(group).meta)
            # Nothing, or all of it: the meta, the due set and the three shards.
            assert len(written) == (5 if meta else 0), (drop_at, written)
        finally:
            waits._store = good
            client.close()
        if client.sent < drop_at:
            break  # submit sent fewer commands than that: every point was tried
        retried = waits.submit("board", ids, group_id=group, shard_size=10, **FAST)
        assert retried.progress().total == 25
        assert good.client.zscore(good.groups_key, group) is not None
        assert [good.load(group, n) is not None for n in range(3)] == [True] * 3
    else:
        pytest.fail("submit sent more commands than the test tried")
    with pytest.raises(ValueError, match="exists already"):
        waits.submit("board", ["other"], group_id=group, **FAST)
