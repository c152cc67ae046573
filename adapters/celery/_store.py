"""The Redis side of durable waits: keys, the compare-and-set save, the request budget.

Every write that decides something is one Lua script, so it is atomic on the server:
two workers holding the same shard can never both record an outcome, and the sweeper
cannot take a shard over from a worker that has just saved it.

Keys of a group ``G`` (``{G}`` is a Redis Cluster hash tag: one group, one slot)::

    <prefix>:{G}:meta           hash: format, source, options, shards, total, created,
                                canceled, on_done
    <prefix>:{G}:shard:<n>      hash: gen (generation counter), snap (zlib JSON of the
                                fleet snapshot), done
    <prefix>:{G}:due            zset: shard number -> when its next run is due
    <prefix>:{G}:results        hash: job id -> outcome JSON (written once: HSETNX)
    <prefix>:{G}:counts         hash: outcome kind -> count
    <prefix>:{G}:stream         stream of finished jobs: fields id, kind
    <prefix>:{G}:notify         zset: finished ids whose on_done signature is not sent
                                yet -> when they finished
    <prefix>:{G}:budget         zset: the group's requests in the last second
    <prefix>:groups             zset: group ids still waiting -> creation time

Times are Redis server seconds (``TIME``), one clock for every worker and producer.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis

__all__ = ["FORMAT", "Keys", "Store"]

#: The format of everything this module writes; a group of another format is refused.
FORMAT: Final = "jobwait.celery/1"

# save(): compare-and-set on the shard's generation, then record each outcome once.
# KEYS: shard, due, results, counts, stream, notify, groups, meta
# ARGV: expected gen, snapshot blob ('' = keep), due ('' = shard done), shard number,
#       group id, total jobs, ttl seconds, notify (0/1), now, then (id, kind, json)
#       triples.
# Returns the new generation, 0 if the generation moved on, the shard is done or the
# group was canceled (nothing is written), -1 if the shard does not exist.
_SAVE: Final = """
local gen = tonumber(redis.call('HGET', KEYS[1], 'gen'))
if gen == nil then return -1 end
if gen ~= tonumber(ARGV[1]) then return 0 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return 0 end
if redis.call('HGET', KEYS[8], 'canceled') == '1' then return 0 end
gen = gen + 1
redis.call('HSET', KEYS[1], 'gen', gen)
if ARGV[3] == '' then
  redis.call('HSET', KEYS[1], 'done', '1')
  redis.call('HDEL', KEYS[1], 'snap')
  redis.call('ZREM', KEYS[2], ARGV[4])
  if tonumber(ARGV[7]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[7]) end
else
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'snap', ARGV[2]) end
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
for i = 10, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('HINCRBY', KEYS[4], ARGV[i + 1], 1)
    redis.call('XADD', KEYS[5], '*', 'id', ARGV[i], 'kind', ARGV[i + 1])
    if ARGV[8] == '1' then redis.call('ZADD', KEYS[6], ARGV[9], ARGV[i]) end
  end
end
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[6]) then
  redis.call('ZREM', KEYS[7], ARGV[5])
  local ttl = tonumber(ARGV[7])
  if ttl > 0 then
    for _, k in ipairs({2, 3, 4, 5, 6, 8}) do redis.call('EXPIRE', KEYS[k], ttl) end
  end
end
return gen
"""

# take_over(): the sweeper moves a shard that is overdue to a new generation (so every
# older message for it is dropped unread) and sets its due time to now + grace.
# KEYS: shard, due.  ARGV: shard number, overdue-before, new due.
# Returns the new generation, or 0 if the shard is no longer overdue or is done.
_TAKE_OVER: Final = """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due or tonumber(due) > tonumber(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[1], 'done') == '1' then return 0 end
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return gen
"""

# take_token(): at most ARGV[1] requests in any one-second window for the whole group
# (the fleet's own max_polls_per_second rule, kept in Redis so it holds across
# workers). Returns 0 and records the request, or the seconds (as a string) until a
# request is allowed.
_TAKE_TOKEN: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
local limit = tonumber(ARGV[1])
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('EXPIRE', KEYS[1], 2)
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + 1 - now)
"""


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis keys of one group (see the module docstring)."""

    prefix: str
    group: str

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{{{self.group}}}:{name}"

    @property
    def meta(self) -> str:
        return self._key("meta")

    def shard(self, n: int) -> str:
        return self._key(f"shard:{n}")

    @property
    def due(self) -> str:
        return self._key("due")

    @property
    def results(self) -> str:
        return self._key("results")

    @property
    def counts(self) -> str:
        return self._key("counts")

    @property
    def stream(self) -> str:
        return self._key("stream")

    @property
    def notify(self) -> str:
        return self._key("notify")

    @property
    def budget(self) -> str:
        return self._key("budget")


def pack(snapshot: Mapping[str, Any]) -> bytes:
    """A fleet snapshot as stored: compact JSON, zlib-compressed (never pickle)."""
    text = json.dumps(snapshot, separators=(",", ":"), allow_nan=False)
    return zlib.compress(text.encode(), 1)  # level 1: ~4x faster than 6, ~10% larger


def unpack(blob: bytes) -> Any:
    """Read what :func:`pack` wrote.

    Raises:
        ValueError: The blob is not zlib-compressed JSON (names which).
    """
    try:
        text = zlib.decompress(blob)
    except zlib.error as exc:
        raise ValueError(f"a stored shard snapshot is not zlib data: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"a stored shard snapshot is not JSON: {exc}") from exc


class Store:
    """Typed access to the keys of :mod:`jobwait.adapters.celery`.

    Args:
        client: A ``redis.Redis`` (bytes responses: ``decode_responses=False``).
        prefix: The key prefix of every key (default ``"jobwait"``).
    """

    def __init__(self, client: redis.Redis, prefix: str = "jobwait") -> None:
        # redis-py's annotations cover sync and asyncio clients and str and bytes
        # answers at once; this client answers bytes, read as such below.
        self.client: Any = client
        self.prefix = prefix
        self._save = client.register_script(_SAVE)
        self._take_over = client.register_script(_TAKE_OVER)
        self._take_token = client.register_script(_TAKE_TOKEN)

    def keys(self, group: str) -> Keys:
        return Keys(self.prefix, group)

    @property
    def groups_key(self) -> str:
        return f"{self.prefix}:groups"

    def now(self) -> float:
        """Redis server time in seconds: the one clock every worker shares."""
        seconds, micros = self.client.time()
        return float(seconds) + float(micros) / 1e6

    # --- groups ------------------------------------------------------------------------

    def create(
        self,
        group: str,
        meta: Mapping[str, str],
        shards: Sequence[bytes],
        due: float,
    ) -> bool:
        """Write a new group and its shards in one transaction.

        Returns:
            ``False`` (nothing written) if a group of that id exists already.
        """
        keys = self.keys(group)
        if not self.client.hsetnx(keys.meta, "format", FORMAT):
            return False
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.meta, mapping=dict(meta))
        for n, blob in enumerate(shards):
            pipe.hset(keys.shard(n), mapping={"gen": 1, "snap": blob, "done": 0})
        pipe.zadd(keys.due, {str(n): due for n in range(len(shards))})
        pipe.zadd(self.groups_key, {group: due})
        pipe.execute()
        return True

    def meta(self, group: str) -> dict[str, str] | None:
        raw = self.client.hgetall(self.keys(group).meta)
        if not raw:
            return None
        return {k.decode(): v.decode() for k, v in raw.items()}

    def cancel(self, group: str, ttl: int) -> None:
        keys = self.keys(group)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(keys.meta, "canceled", "1")
        pipe.delete(keys.due)
        pipe.zrem(self.groups_key, group)
        if ttl > 0:
            for key in (keys.meta, keys.results, keys.counts, keys.stream, keys.notify):
                pipe.expire(key, ttl)
        pipe.execute()

    def groups(self) -> list[str]:
        return [g.decode() for g in self.client.zrange(self.groups_key, 0, -1)]

    def forget(self, group: str) -> None:
        """Stop sweeping a group (its meta is gone: expired or deleted)."""
        self.client.zrem(self.groups_key, group)

    # --- shards ------------------------------------------------------------------------

    def load_run(
        self, group: str, n: int
    ) -> tuple[dict[str, str] | None, tuple[int, bytes | None, bool] | None, float]:
        """What a shard run reads, in one round trip: the group's meta, the shard
        (as :meth:`load`) and the Redis time."""
        keys = self.keys(group)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.meta)
        pipe.hmget(keys.shard(n), ["gen", "snap", "done"])
        pipe.time()
        raw_meta, (gen, snap, done), (seconds, micros) = pipe.execute()
        meta = {k.decode(): v.decode() for k, v in raw_meta.items()} if raw_meta else None
        shard = None if gen is None else (int(gen), snap, done == b"1")
        return meta, shard, float(seconds) + float(micros) / 1e6

    def load(self, group: str, n: int) -> tuple[int, bytes | None, bool] | None:
        """``(gen, snapshot blob, done)`` of a shard, or ``None`` if it does not exist."""
        gen, snap, done = self.client.hmget(self.keys(group).shard(n), ["gen", "snap", "done"])
        if gen is None:
            return None
        return int(gen), snap, done == b"1"

    def save(
        self,
        group: str,
        n: int,
        *,
        gen: int,
        snapshot: bytes | None,
        due: float | None,
        outcomes: Iterable[tuple[str, str, str]],
        total: int,
        ttl: int,
        notify: bool,
        now: float,
    ) -> int:
        """Compare-and-set a shard from generation ``gen`` and record its outcomes.

        Args:
            snapshot: The new snapshot blob; ``None`` keeps the stored one.
            due: When the shard's next run is due; ``None``: the shard is done.
            outcomes: ``(job id, kind, outcome JSON)`` for each job that finished.
            total: Jobs in the group (when all have results, the keys get ``ttl``).
            ttl: Seconds the finished group's keys live (``0``: forever).
            notify: Queue the finished ids for the ``on_done`` signature.

        Returns:
            The new generation; ``0`` if another writer moved the shard on (nothing
            was written); ``-1`` if the shard does not exist.
        """
        keys = self.keys(group)
        argv: list[Any] = [
            gen,
            snapshot or b"",
            "" if due is None else repr(due),
            n,
            group,
            total,
            ttl,
            1 if notify else 0,
            repr(now),
        ]
        for triple in outcomes:
            argv.extend(triple)
        result = self._save(
            keys=[
                keys.shard(n),
                keys.due,
                keys.results,
                keys.counts,
                keys.stream,
                keys.notify,
                self.groups_key,
                keys.meta,
            ],
            args=argv,
        )
        return int(result)

    def overdue(self, group: str, before: float) -> list[int]:
        """Shard numbers of ``group`` whose next run was due before ``before``."""
        return [int(n) for n in self.client.zrangebyscore(self.keys(group).due, "-inf", before)]

    def take_over(self, group: str, n: int, *, before: float, due: float) -> int:
        """Move an overdue shard to a new generation (``0``: not overdue any more)."""
        keys = self.keys(group)
        return int(self._take_over(keys=[keys.shard(n), keys.due], args=[n, before, due]))

    def take_token(self, group: str, limit: int, token: str) -> float:
        """Claim one request of the group's ``limit`` per second.

        Returns:
            ``0.0`` if the request may go now, else the seconds to wait first.
        """
        return float(self._take_token(keys=[self.keys(group).budget], args=[limit, token]))

    # --- results -----------------------------------------------------------------------

    def counts(self, group: str) -> dict[str, int]:
        raw = self.client.hgetall(self.keys(group).counts)
        return {k.decode(): int(v) for k, v in raw.items()}

    def results(self, group: str) -> dict[str, bytes]:
        raw = self.client.hgetall(self.keys(group).results)
        return {k.decode(): v for k, v in raw.items()}

    def results_of(self, group: str, ids: list[str]) -> list[bytes | None]:
        """The stored outcomes of ``ids`` (``None`` where there is none), one round trip."""
        if not ids:
            return []
        return list(self.client.hmget(self.keys(group).results, ids))

    def result(self, group: str, job_id: str) -> bytes | None:
        value = self.client.hget(self.keys(group).results, job_id)
        return None if value is None else bytes(value)

    def read_stream(
        self, group: str, after: str, *, block_ms: int | None, count: int = 1000
    ) -> list[tuple[str, str]]:
        """Stream entries after ``after`` as ``(entry id, job id)``; blocks up to
        ``block_ms`` when there are none (``None``: do not block)."""
        answer = self.client.xread({self.keys(group).stream: after}, count=count, block=block_ms)
        out: list[tuple[str, str]] = []
        for _, entries in answer or ():
            for entry_id, fields in entries:
                out.append((entry_id.decode(), fields[b"id"].decode()))
        return out

    def pending_notifications(self, group: str, before: float) -> list[str]:
        """Finished ids whose ``on_done`` was not sent, recorded before ``before``."""
        notify = self.keys(group).notify
        return [i.decode() for i in self.client.zrangebyscore(notify, "-inf", before)]

    def notified(self, group: str, ids: Iterable[str]) -> None:
        ids = list(ids)
        if ids:
            self.client.zrem(self.keys(group).notify, *ids)
