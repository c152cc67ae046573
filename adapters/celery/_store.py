"""The Redis side of durable waits: keys, the compare-and-set save, the request budget.

Every write that decides something is one Lua script, so it is atomic on the server:
two workers holding the same shard can never both record an outcome, the sweeper
cannot take a shard over from a worker that has just saved it, and a group is created
whole or not at all.

Keys of a group ``G`` (``{G}`` is a Redis Cluster hash tag: one group, one slot)::

    <prefix>:{G}:meta           hash: format, source, options, shards, total, created,
                                canceled, on_done, cancel_on_timeout, budget, digest
    <prefix>:{G}:shard:<n>      hash: gen (generation counter), snap (zlib JSON of the
                                fleet snapshot), done
    <prefix>:{G}:due            zset: shard number -> when its next run is due
    <prefix>:{G}:results        hash: job id -> outcome record JSON (written once: HSETNX)
    <prefix>:{G}:counts         hash: outcome kind -> count
    <prefix>:{G}:stream         stream of finished jobs: fields id, kind
    <prefix>:{G}:notify         zset: finished ids whose on_done has not been confirmed
                                (run to its end) yet -> when last sent, or until when
                                a notify run holds it (a claim)
    <prefix>:{G}:budget         zset: the group's requests in the last second
    <prefix>:groups             zset: groups the sweeper visits (still waiting, or with
                                on_done not confirmed) -> creation time

Times are Redis server seconds (``TIME``), one clock for every worker and producer.

Everything read back is checked: a key of the wrong type, a field that is missing,
not UTF-8 or out of range raises :class:`CorruptGroupError` naming the group and the
key; a ``format`` this version does not read raises :class:`ForeignFormatError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from jobwait._durable import load_json
from jobwait._plumbing import ID_LIMIT, preview

from ._errors import CorruptGroupError, ForeignFormatError

if TYPE_CHECKING:
    import redis

__all__ = ["FORMAT", "READ_FORMATS", "GroupMeta", "Keys", "Store"]

logger = logging.getLogger("jobwait.celery")

#: The format of everything this module writes.
FORMAT: Final = "jobwait.celery/2"
#: The formats this version reads and runs: ``/1`` groups (records of the old layout,
#: ``on_done`` struck off when sent) are read and finished by this version.
READ_FORMATS: Final = frozenset({"jobwait.celery/1", FORMAT})

# Largest number of ids, shards or jobs a group field may hold: past any real group.
_MAX_TOTAL: Final = 10**9

# create(): a new group whole, or nothing. KEYS: meta, due, groups, shard 0..n-1.
# ARGV: group id, due, field count, then (field, value) pairs, then one snapshot blob
# per shard. Returns 1 when created; else {format, digest} of the group that exists
# ('?' as format for a meta key that is not a hash).
_CREATE: Final = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'none' then
  if kind ~= 'hash' then return {'?', ''} end
  local found = redis.call('HMGET', KEYS[1], 'format', 'digest')
  return {found[1] or '', found[2] or ''}
end
local fields = tonumber(ARGV[3])
for i = 0, fields - 1 do
  redis.call('HSET', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
local first = 4 + 2 * fields
for s = 4, #KEYS do
  redis.call('DEL', KEYS[s])
  redis.call('HSET', KEYS[s], 'gen', 1, 'snap', ARGV[first + s - 4], 'done', 0)
  redis.call('ZADD', KEYS[2], ARGV[2], s - 4)
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# save(): compare-and-set on the shard's generation, then record each outcome once.
# KEYS: shard, due, results, counts, stream, notify, groups, meta
# ARGV: expected gen, snapshot blob ('' = keep), due ('' = shard done), shard number,
#       group id, total jobs, ttl seconds, notify (0/1), now, then (id, kind, json)
#       triples.
# Returns the new generation, 0 if the generation moved on, the shard is done or the
# group was canceled (nothing is written), -1 if the shard does not exist.
# When every job has its outcome the group leaves the sweeper's list, unless on_done
# calls are still unconfirmed (confirm() takes it off with the last one).
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
  if redis.call('ZCARD', KEYS[6]) == 0 then redis.call('ZREM', KEYS[7], ARGV[5]) end
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

# confirm(): an on_done call ran to its end: strike the job off; with the last one of a
# group that has every outcome (or was canceled), the group leaves the sweeper's list.
# KEYS: notify, results, meta, groups.  ARGV: job id, group id.
# Returns 1 if the job was pending, 0 if another run confirmed it first.
_CONFIRM: Final = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  local total = tonumber(redis.call('HGET', KEYS[3], 'total'))
  local finished = total ~= nil and redis.call('HLEN', KEYS[2]) >= total
  if finished or redis.call('HGET', KEYS[3], 'canceled') == '1' then
    redis.call('ZREM', KEYS[4], ARGV[2])
  end
end
return removed
"""

# resend(): the sweeper claims the notifications pending since before ARGV[1] (at most
# ARGV[3]) and marks them sent again at ARGV[2], so the next sweep leaves them alone for
# another grace period. KEYS: notify.  Returns the claimed ids.
_RESEND: Final = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id) end
return ids
"""

# claim(): a notify run takes one pending job for ARGV[2] seconds (its score moves that
# far into the future, on the Redis clock), so a second run holding the same job (the
# sweeper's re-send, a redelivery) skips it instead of calling the callback at the same
# time. A run that dies leaves the claim to run out: the sweeper re-sends the job once
# it is older than its grace. KEYS: notify.  ARGV: job id, lease seconds.
# Returns 1 (claimed), 0 (confirmed already), -1 (claimed by another run).
_CLAIM: Final = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
if tonumber(score) > now then return -1 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# cancel(): mark the group canceled, stop its shards; it stays on the sweeper's list
# while on_done calls are unconfirmed. KEYS: meta, due, notify, groups, results, counts,
# stream. ARGV: group id, ttl.
_CANCEL: Final = """
redis.call('HSET', KEYS[1], 'canceled', '1')
redis.call('DEL', KEYS[2])
if redis.call('ZCARD', KEYS[3]) == 0 then redis.call('ZREM', KEYS[4], ARGV[1]) end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  for _, k in ipairs({1, 3, 5, 6, 7}) do redis.call('EXPIRE', KEYS[k], ttl) end
end
return 1
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


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMeta:
    """A group's meta hash, checked (:meth:`Store.meta`).

    Attributes:
        format: ``jobwait.celery/1`` or ``/2``.
        source: The registered source name.
        total: Jobs in the group (1 or more).
        shards: Shards of the group (1 to ``total``).
        budget: The group's ``max_polls_per_second``, or ``None``.
        canceled: Whether ``WaitGroup.cancel`` ran.
        on_done: The ``on_done`` signature as a dict, or ``None``.
        cancel_on_timeout: Whether timed-out jobs are canceled remotely.
        digest: What was submitted, hashed (``""`` for ``/1`` groups): a retried
            ``submit`` with the same digest is the same submission.
    """

    format: str
    source: str
    total: int
    shards: int
    budget: int | None
    canceled: bool
    on_done: dict[str, Any] | None
    cancel_on_timeout: bool
    digest: str


def _corrupt(group: str, what: str) -> CorruptGroupError:
    return CorruptGroupError(
        f"wait group {preview(group, ID_LIMIT)}: {what}; this is not what jobwait wrote (another "
        "program changed the key, or it is damaged): delete the group's keys and submit "
        "again"
    )


def _text(group: str, where: str, raw: object) -> str:
    if not isinstance(raw, bytes):
        raise _corrupt(group, f"{where} is not a string")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise _corrupt(group, f"{where} is not UTF-8") from None


def _number(group: str, where: str, raw: str, low: int, high: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12 or not low <= int(raw) <= high:
        raise _corrupt(group, f"{where} is {preview(raw, 40)}, not an integer {low} .. {high}")
    return int(raw)


def _flag(group: str, where: str, raw: str | None) -> bool:
    if raw not in ("0", "1"):
        raise _corrupt(group, f"{where} is {preview(raw, 40)}, not '0' or '1'")
    return raw == "1"


def parse_meta(group: str, raw: Mapping[Any, Any]) -> GroupMeta:
    """Check a group's meta hash as Redis returned it (bytes).

    Raises:
        ForeignFormatError: A ``format`` this version does not read.
        CorruptGroupError: Anything else this version did not write.
    """
    meta = {
        _text(group, "a meta field name", k): _text(group, "a meta value", v)
        for k, v in raw.items()
    }
    where = "the meta key's"
    form = meta.get("format")
    if form is None:
        raise _corrupt(group, f"{where} 'format' is missing")
    if form not in READ_FORMATS:
        raise ForeignFormatError(
            f"wait group {preview(group, ID_LIMIT)} has format {preview(form, ID_LIMIT)}; this "
            f"jobwait reads "
            f"{' and '.join(sorted(READ_FORMATS))}"
        )
    missing = [k for k in ("source", "total", "shards", "canceled") if k not in meta]
    if missing:
        raise _corrupt(group, f"{where} {', '.join(missing)} missing")
    total = _number(group, f"{where} total", meta["total"], 1, _MAX_TOTAL)
    budget_text = meta.get("budget", "")
    on_done_text = meta.get("on_done", "")
    on_done = None
    if on_done_text:
        try:
            on_done = load_json(on_done_text, "on_done")
        except ValueError as exc:
            raise _corrupt(group, f"{where} on_done: {exc}") from None
        if not isinstance(on_done, dict) or not isinstance(on_done.get("task"), str):
            raise _corrupt(group, f"{where} on_done is not a Celery signature")
    if not meta["source"]:
        raise _corrupt(group, f"{where} source is empty")
    return GroupMeta(
        format=form,
        source=meta["source"],
        total=total,
        shards=_number(group, f"{where} shards", meta["shards"], 1, total),
        budget=_number(group, f"{where} budget", budget_text, 1, _MAX_TOTAL)
        if budget_text
        else None,
        canceled=_flag(group, f"{where} canceled", meta["canceled"]),
        on_done=on_done,
        cancel_on_timeout=_flag(
            group, f"{where} cancel_on_timeout", meta.get("cancel_on_timeout", "0")
        ),
        digest=meta.get("digest", ""),
    )


class Store:
    """Typed access to the keys of :mod:`jobwait.adapters.celery`.

    Args:
        client: A ``redis.Redis`` (bytes responses: ``decode_responses=False``).
        prefix: The key prefix of every key (default ``"jobwait"``).

    Every read raises :class:`CorruptGroupError` for data jobwait did not write (and
    :class:`ForeignFormatError` for another version's group); Redis connection errors
    propagate as redis-py raises them.
    """

    def __init__(self, client: redis.Redis, prefix: str = "jobwait") -> None:
        import redis as _redis

        # redis-py's annotations cover sync and asyncio clients and str and bytes
        # answers at once; this client answers bytes, read as such below.
        self.client: Any = client
        self.prefix = prefix
        self._response_error = _redis.ResponseError
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        self._take_over = client.register_script(_TAKE_OVER)
        self._take_token = client.register_script(_TAKE_TOKEN)
        self._confirm = client.register_script(_CONFIRM)
        self._resend = client.register_script(_RESEND)
        self._claim = client.register_script(_CLAIM)
        self._cancel = client.register_script(_CANCEL)

    def keys(self, group: str) -> Keys:
        return Keys(self.prefix, group)

    @property
    def groups_key(self) -> str:
        return f"{self.prefix}:groups"

    @contextlib.contextmanager
    def _reading(self, group: str, what: str) -> Iterator[None]:
        # Redis answers WRONGTYPE for a key holding another kind of value: foreign data.
        try:
            yield
        except self._response_error as exc:
            if "WRONGTYPE" not in str(exc):
                raise
            raise _corrupt(group, f"{what} holds another kind of Redis value") from None

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
    ) -> tuple[str, str] | None:
        """Write a new group and its shards in one script: all of it, or nothing.

        Returns:
            ``None`` when written; ``(format, digest)`` of the group of that id that
            exists already (nothing written; ``"?"`` as format for a meta key that
            is not a hash).
        """
        keys = self.keys(group)
        fields = {"format": FORMAT, **meta}
        argv: list[Any] = [group, repr(due), len(fields)]
        for name, value in fields.items():
            argv += [name, value]
        argv += list(shards)
        names = [keys.meta, keys.due, self.groups_key] + [keys.shard(n) for n in range(len(shards))]
        answer = self._create(keys=names, args=argv)
        if answer == 1:
            return None
        found = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in answer]
        return found[0], found[1]

    def meta(self, group: str) -> GroupMeta | None:
        """The group's checked meta, or ``None`` if there is no such group.

        Raises:
            ForeignFormatError, CorruptGroupError: As :func:`parse_meta`.
        """
        with self._reading(group, "the meta key"):
            raw = self.client.hgetall(self.keys(group).meta)
        return parse_meta(group, raw) if raw else None

    def cancel(self, group: str, ttl: int) -> None:
        keys = self.keys(group)
        names = [
            keys.meta, keys.due, keys.notify, self.groups_key, keys.results, keys.counts,
            keys.stream,
        ]  # fmt: skip
        with self._reading(group, "a key of the group"):
            self._cancel(keys=names, args=[group, ttl])

    def groups(self) -> list[str]:
        """The groups the sweeper visits (a member that is not UTF-8 is dropped)."""
        out, bad = [], []
        for raw in self.client.zrange(self.groups_key, 0, -1):
            try:
                out.append(raw.decode())
            except UnicodeDecodeError:
                bad.append(raw)
        if bad:
            logger.error("jobwait sweep: dropped %d group id(s) that are not UTF-8", len(bad))
            self.client.zrem(self.groups_key, *bad)
        return out

    def forget(self, group: str) -> None:
        """Stop sweeping a group (its meta is gone: expired or deleted)."""
        self.client.zrem(self.groups_key, group)

    # --- shards ------------------------------------------------------------------------

    def _shard(
        self, group: str, n: int, raw: Sequence[Any]
    ) -> tuple[int, bytes | None, bool] | None:
        gen, snap, done = raw
        if gen is None:
            return None
        where = f"shard {n}'s"
        number = _number(group, f"{where} gen", _text(group, f"{where} gen", gen), 1, 2**62)
        if done not in (None, b"0", b"1"):
            raise _corrupt(group, f"{where} done flag is {preview(done, 40)}")
        return number, snap, done == b"1"

    def load_run(
        self, group: str, n: int
    ) -> tuple[GroupMeta | None, tuple[int, bytes | None, bool] | None, float]:
        """What a shard run reads, in one round trip: the group's checked meta, the
        shard (as :meth:`load`) and the Redis time.

        Raises:
            ForeignFormatError, CorruptGroupError: As :meth:`meta` and :meth:`load`.
        """
        keys = self.keys(group)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.meta)
        pipe.hmget(keys.shard(n), ["gen", "snap", "done"])
        pipe.time()
        with self._reading(group, f"the meta key or shard {n}"):
            raw_meta, shard, (seconds, micros) = pipe.execute()
        meta = parse_meta(group, raw_meta) if raw_meta else None
        return meta, self._shard(group, n, shard), float(seconds) + float(micros) / 1e6

    def load(self, group: str, n: int) -> tuple[int, bytes | None, bool] | None:
        """``(gen, snapshot blob, done)`` of a shard, or ``None`` if it does not exist.

        Raises:
            CorruptGroupError: The shard holds what jobwait did not write.
        """
        with self._reading(group, f"shard {n}"):
            raw = self.client.hmget(self.keys(group).shard(n), ["gen", "snap", "done"])
        return self._shard(group, n, raw)

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
            outcomes: ``(job id, kind, outcome record JSON)`` for each job that
                finished.
            total: Jobs in the group (when all have results, the keys get ``ttl``).
            ttl: Seconds the finished group's keys live (``0``: forever).
            notify: Queue the finished ids for the ``on_done`` signature (pending until
                :meth:`confirm`).

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
        names = [
            keys.shard(n), keys.due, keys.results, keys.counts, keys.stream, keys.notify,
            self.groups_key, keys.meta,
        ]  # fmt: skip
        with self._reading(group, "a key of the group"):
            result = self._save(keys=names, args=argv)
        return int(result)

    def overdue(self, group: str, before: float) -> list[int]:
        """Shard numbers of ``group`` whose next run was due before ``before``.

        Raises:
            CorruptGroupError: A member that is not a shard number.
        """
        with self._reading(group, "the due key"):
            raw = self.client.zrangebyscore(self.keys(group).due, "-inf", before)
        return [
            _number(group, "a due member", _text(group, "a due member", n), 0, 2**31) for n in raw
        ]

    def take_over(self, group: str, n: int, *, before: float, due: float) -> int:
        """Move an overdue shard to a new generation (``0``: not overdue any more)."""
        keys = self.keys(group)
        with self._reading(group, f"shard {n}"):
            return int(self._take_over(keys=[keys.shard(n), keys.due], args=[n, before, due]))

    def take_token(self, group: str, limit: int, token: str) -> float:
        """Claim one request of the group's ``limit`` per second.

        Returns:
            ``0.0`` if the request may go now, else the seconds to wait first.
        """
        with self._reading(group, "the budget key"):
            return float(self._take_token(keys=[self.keys(group).budget], args=[limit, token]))

    # --- results -----------------------------------------------------------------------

    def counts(self, group: str) -> dict[str, int]:
        """Outcomes per kind.

        Raises:
            CorruptGroupError: A count that is not a non-negative integer.
        """
        with self._reading(group, "the counts key"):
            raw = self.client.hgetall(self.keys(group).counts)
        return {
            _text(group, "a counts field", k): _number(
                group, "a count", _text(group, "a count", v), 0, _MAX_TOTAL
            )
            for k, v in raw.items()
        }

    def results(self, group: str) -> dict[str, bytes]:
        """Every outcome record by job id (the records unparsed).

        Raises:
            CorruptGroupError: A job id that is not UTF-8, or the key is not a hash.
        """
        with self._reading(group, "the results key"):
            raw = self.client.hgetall(self.keys(group).results)
        return {_text(group, "a job id in the results key", k): v for k, v in raw.items()}

    def results_of(self, group: str, ids: list[str]) -> list[bytes | None]:
        """The stored outcomes of ``ids`` (``None`` where there is none), one round trip."""
        if not ids:
            return []
        with self._reading(group, "the results key"):
            return list(self.client.hmget(self.keys(group).results, ids))

    def result(self, group: str, job_id: str) -> bytes | None:
        with self._reading(group, "the results key"):
            value = self.client.hget(self.keys(group).results, job_id)
        return None if value is None else bytes(value)

    def read_stream(
        self, group: str, after: str, *, block_ms: int | None, count: int = 1000
    ) -> list[tuple[str, str]]:
        """Stream entries after ``after`` as ``(entry id, job id)``; blocks up to
        ``block_ms`` when there are none (``None``: do not block).

        Raises:
            CorruptGroupError: An entry without a UTF-8 ``id`` field, or the key is not
                a stream.
        """
        with self._reading(group, "the stream key"):
            answer = self.client.xread(
                {self.keys(group).stream: after}, count=count, block=block_ms
            )
        out: list[tuple[str, str]] = []
        for _, entries in answer or ():
            for entry_id, fields in entries:
                entry = _text(group, "a stream entry id", entry_id)
                if not isinstance(fields, dict) or b"id" not in fields:
                    raise _corrupt(group, f"stream entry {preview(entry, ID_LIMIT)} has no job id")
                out.append(
                    (
                        entry,
                        _text(
                            group, f"stream entry {preview(entry, ID_LIMIT)}'s id", fields[b"id"]
                        ),
                    )
                )
        return out

    # --- on_done notifications ---------------------------------------------------------

    def resend_notifications(
        self, group: str, before: float, now: float, limit: int = 1000
    ) -> list[str]:
        """Claim the ids whose ``on_done`` has been pending since before ``before``
        (at most ``limit``), marked sent again at ``now``.

        Raises:
            CorruptGroupError: A pending id that is not UTF-8.
        """
        with self._reading(group, "the notify key"):
            raw = self._resend(keys=[self.keys(group).notify], args=[before, now, limit])
        return [_text(group, "a pending on_done id", i) for i in raw]

    def claim(self, group: str, job_id: str, lease: float) -> int:
        """Take ``job_id``'s pending ``on_done`` call for ``lease`` seconds.

        Returns:
            ``1``: claimed, call it; ``0``: confirmed already; ``-1``: another run holds
            it (skip it: if that run dies, the sweeper re-sends it after the lease).
        """
        with self._reading(group, "the notify key"):
            return int(self._claim(keys=[self.keys(group).notify], args=[job_id, lease]))

    def pending_count(self, group: str) -> int:
        with self._reading(group, "the notify key"):
            return int(self.client.zcard(self.keys(group).notify))

    def confirm(self, group: str, job_id: str) -> bool:
        """Strike ``job_id`` off: its ``on_done`` ran to its end. The last one of a
        finished (or canceled) group takes the group off the sweeper's list.

        Returns:
            ``False`` if another run had confirmed it already.
        """
        keys = self.keys(group)
        names = [keys.notify, keys.results, keys.meta, self.groups_key]
        with self._reading(group, "a key of the group"):
            return bool(self._confirm(keys=names, args=[job_id, group]))
