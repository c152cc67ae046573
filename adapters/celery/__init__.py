"""Durable waits: many jobs waited for on Celery workers, state saved in Redis.

Theory of operation
===================

The unit of work is a *shard*: up to ``shard_size`` job ids (default ``10 *
max_batch``: a shard's fleet keeps its batches full as its jobs finish) with one saved
:class:`~jobwait.JobFleet`.
:meth:`DurableWaits.submit` splits the ids into shards, writes each shard's fleet
snapshot to Redis (generation 1) and sends one Celery task per shard. It returns a
:class:`WaitGroup`, whose string id rebuilds it in any process.

One run of the shard task (``<prefix>.shard(group, shard, gen)``):

1. load the shard; if its generation is not ``gen`` the message is stale (a
   redelivery, or a duplicate the sweeper replaced): drop it, no request made;
2. restore the fleet on the group clock (Redis ``TIME``) with deadlines that kept
   counting while it was stored;
3. perform the fleet's actions: ``PollBatch`` -> one request through the worker's
   source (after a token of the group's request budget), ``Finished`` -> an outcome
   to record; stop at ``FleetSleep`` or ``AllDone``;
4. save with compare-and-set on the generation (one Lua script): the new snapshot,
   the next due time and each outcome, recorded in the results hash and the stream
   only by the writer that wins; a loser's write is dropped and it stops;
5. the winner sends ``on_done`` signatures, cancels timed-out jobs if the group asked
   for it, and re-sends the task with the new generation and
   ``countdown = min(next sleep, countdown_cap)``.

So a message is only ever *acted on* once per generation: a duplicate delivered at
the same time costs at most one status request and loses the race; a stale one costs
nothing. The task is ``acks_late`` and ``reject_on_worker_lost``: a worker killed in
the middle of a run leaves its message unacknowledged and the broker delivers it
again after its visibility timeout; the countdown is capped well below that timeout
so a message a live worker holds is never redelivered to another one.

The *sweeper* (``<prefix>.sweep``, on celery beat or by hand) re-sends every shard
whose next run is overdue by more than ``sweep_grace``: a lost message, a worker
killed after saving and before re-sending, a Redis restart. It moves the shard to a
new generation first, so the lost message, should it come back, is dropped unread.

Nothing here cancels a remote job when a worker stops (warm, cold or killed): the
wait is handed over. Remote jobs are canceled only when one times out in a group
submitted with ``cancel_on_timeout=True``, or on ``WaitGroup.cancel(remote=True)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import redis
from celery import Celery, Task, signature
from celery.signals import worker_process_shutdown

from jobwait import (
    AllDone,
    Backoff,
    Finished,
    FleetSleep,
    JobFleet,
    JobWaitError,
    Statuses,
)
from jobwait._plumbing import FleetDriver, Read, make_fleet

from ._fleetstate import new_snapshot, restore_fleet, snapshot_of
from ._outcomes import RemoteError, encode_outcome, outcome_of
from ._sources import Source, SourceFactory, http_source, ionq_source
from ._store import FORMAT, Store, pack, unpack

__all__ = [
    "FORMAT",
    "DurableWaitError",
    "DurableWaits",
    "ForeignFormatError",
    "GroupCanceledError",
    "GroupNotFoundError",
    "GroupTimeoutError",
    "InvalidJobIdsError",
    "Progress",
    "RemoteError",
    "Source",
    "SourceFactory",
    "StoreUnavailableError",
    "UnknownSourceError",
    "WaitGroup",
    "http_source",
    "ionq_source",
    "outcome_of",
]

logger = logging.getLogger("jobwait.celery")

_DEFAULT_VISIBILITY: Final = 3600.0  # kombu's Redis transport default
_BUDGET_INLINE_WAIT: Final = 0.5
_STORE_ERRORS: Final = (redis.ConnectionError, redis.TimeoutError)


# --- errors ---------------------------------------------------------------------------


class DurableWaitError(JobWaitError):
    """Base of the errors of durable waits (a :class:`~jobwait.JobWaitError`)."""


class UnknownSourceError(DurableWaitError, LookupError):
    """``submit`` named a source that is not registered in this process.

    Register it with :meth:`DurableWaits.register_source` in the module that both the
    producer and the workers import (where the Celery app is built).
    """


class InvalidJobIdsError(DurableWaitError, ValueError):
    """The job ids given to ``submit`` are empty, not strings, or repeated."""


class StoreUnavailableError(DurableWaitError, ConnectionError):
    """Redis could not be reached (the cause says why); nothing was lost: retry."""


class ForeignFormatError(DurableWaitError, ValueError):
    """A group in Redis was written by another version of jobwait (the message
    names both formats). Run workers of that version until it finishes, or cancel it."""


class GroupNotFoundError(DurableWaitError, LookupError):
    """No group of that id in Redis: a wrong id or prefix, or it expired
    (``result_ttl`` after it finished)."""


class GroupTimeoutError(DurableWaitError, TimeoutError):
    """``as_completed`` / ``wait`` ran out of ``timeout`` with jobs still waiting.
    The group keeps running: call again to go on waiting."""


class GroupCanceledError(DurableWaitError):
    """The group was canceled (``WaitGroup.cancel``) while jobs were still waiting."""


def _unavailable(action: str, exc: BaseException) -> StoreUnavailableError:
    return StoreUnavailableError(f"{action}: Redis is unreachable ({exc}); check redis_url")


# --- progress and groups ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a group stands.

    Attributes:
        total: Jobs submitted.
        waiting: Jobs without an outcome yet.
        counts: Finished jobs per outcome kind: the job's status (``"completed"``,
            ``"failed"``, ``"canceled"``) or the error's class name
            (``"JobTimeoutError"``, ...).
        canceled: ``True`` after ``WaitGroup.cancel``.
    """

    total: int
    waiting: int
    counts: Mapping[str, int]
    canceled: bool = False

    @property
    def done(self) -> bool:
        """``True`` when every job has its outcome."""
        return self.waiting == 0


class WaitGroup:
    """The jobs of one :meth:`DurableWaits.submit`, read from Redis in any process.

    Rebuild one from its id with :meth:`DurableWaits.group` or :meth:`from_id`;
    ``str(group)`` is the id.

    Args:
        group_id: The id ``submit`` returned.
        store: Where the group lives (a :class:`DurableWaits` builds it).
        on_cancel: Called by :meth:`cancel` with ``remote=True`` (sends the task that
            cancels the remote jobs).
    """

    def __init__(
        self,
        group_id: str,
        *,
        store: Store,
        on_cancel: Callable[[str], object] | None = None,
        ttl: int = 0,
    ) -> None:
        self.id = group_id
        self._store = store
        self._on_cancel = on_cancel
        self._ttl = ttl

    @classmethod
    def from_id(
        cls, group_id: str, *, redis_url: str | redis.Redis, prefix: str = "jobwait"
    ) -> WaitGroup:
        """A group from its id and the Redis it lives in (no Celery app needed to read
        it; ``cancel(remote=True)`` needs :meth:`DurableWaits.group` instead).

        Raises:
            GroupNotFoundError: No such group.
            ForeignFormatError: It was written by another version of jobwait.
            StoreUnavailableError: Redis is unreachable.
        """
        client = redis_url if isinstance(redis_url, redis.Redis) else _client(redis_url)
        group = cls(group_id, store=Store(client, prefix))
        group._meta()
        return group

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<WaitGroup {self.id}>"

    def _meta(self) -> dict[str, str]:
        try:
            meta = self._store.meta(self.id)
        except _STORE_ERRORS as exc:
            raise _unavailable(f"reading group {self.id!r}", exc) from exc
        if meta is None:
            raise GroupNotFoundError(f"no wait group {self.id!r} in Redis (wrong id, or expired)")
        if meta.get("format") != FORMAT:
            raise ForeignFormatError(
                f"wait group {self.id!r} has format {meta.get('format')!r}; this jobwait "
                f"reads {FORMAT!r}"
            )
        return meta

    def progress(self) -> Progress:
        """Counts per outcome and jobs still waiting.

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
        """
        meta = self._meta()
        try:
            counts = self._store.counts(self.id)
        except _STORE_ERRORS as exc:
            raise _unavailable("reading progress", exc) from exc
        total = int(meta["total"])
        return Progress(
            total=total,
            waiting=total - sum(counts.values()),
            counts=counts,
            canceled=meta.get("canceled") == "1",
        )

    def results(self) -> dict[str, Any]:
        """Every outcome recorded so far: job id -> the final job (parsed JSON), or
        the ``JobWaitError`` it ended with, rebuilt with its context. Jobs still
        waiting are absent (see :meth:`progress`).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
        """
        self._meta()
        try:
            raw = self._store.results(self.id)
        except _STORE_ERRORS as exc:
            raise _unavailable("reading results", exc) from exc
        return {job_id: outcome_of(text) for job_id, text in raw.items()}

    def as_completed(self, timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """Yield ``(job_id, outcome)`` as jobs finish (those already finished first),
        each once, until every job has its outcome.

        Blocks on the group's Redis stream, at most one second per read so that a
        cancel is noticed.

        Args:
            timeout: Seconds to wait in all (default ``None``: until done).

        Raises:
            GroupTimeoutError: ``timeout`` passed with jobs still waiting.
            GroupCanceledError: The group was canceled with jobs still waiting.
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
        """
        total = int(self._meta()["total"])
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: set[str] = set()
        after = "0-0"
        while len(seen) < total:
            block = 1000
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GroupTimeoutError(
                        f"wait group {self.id!r}: {total - len(seen)} of {total} jobs still "
                        f"waiting after timeout={timeout}s; call again to wait longer"
                    )
                block = max(1, min(block, int(left * 1000)))
            try:
                entries = self._store.read_stream(self.id, after, block_ms=block)
            except _STORE_ERRORS as exc:
                raise _unavailable("reading finished jobs", exc) from exc
            fresh: list[str] = []
            for entry_id, job_id in entries:
                after = entry_id
                if job_id not in seen:
                    seen.add(job_id)
                    fresh.append(job_id)
            try:
                texts = self._store.results_of(self.id, fresh)
            except _STORE_ERRORS as exc:
                raise _unavailable("reading finished jobs", exc) from exc
            for job_id, text in zip(fresh, texts, strict=True):
                if text is not None:
                    yield job_id, outcome_of(text)
            if not entries and self._meta().get("canceled") == "1":
                raise GroupCanceledError(
                    f"wait group {self.id!r} was canceled with {total - len(seen)} jobs waiting"
                )

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until every job has its outcome and return :meth:`results`.

        Raises:
            GroupTimeoutError, GroupCanceledError: As :meth:`as_completed`.
        """
        for _ in self.as_completed(timeout=timeout):
            pass
        return self.results()

    def cancel(self, *, remote: bool = False) -> None:
        """Stop the group: no shard polls again and no outcome is recorded any more
        (a run in progress loses its write). Outcomes recorded stay readable.

        Args:
            remote: Also cancel the remote jobs still waiting, through the source's
                ``cancel`` in a worker (default ``False``: they keep running).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
            RuntimeError: ``remote=True`` on a group built without a Celery app.
        """
        self._meta()
        if remote and self._on_cancel is None:
            raise RuntimeError("cancel(remote=True) needs DurableWaits.group(), not from_id()")
        if remote:
            assert self._on_cancel is not None
            self._on_cancel(self.id)  # reads the unfinished ids before the shards stop
        try:
            self._store.cancel(self.id, self._ttl)
        except _STORE_ERRORS as exc:
            raise _unavailable("canceling", exc) from exc


# --- the engine -------------------------------------------------------------------------


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=5.0, socket_timeout=10.0, health_check_interval=30
    )


def _json_options(options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name == "backoff":
            if not isinstance(value, Backoff):
                raise TypeError(f"backoff must be a jobwait.Backoff, not {type(value).__name__}")
            out[name] = value.to_json()
        elif name == "statuses":
            if not isinstance(value, Statuses):
                raise TypeError(f"statuses must be a jobwait.Statuses, not {type(value).__name__}")
            out[name] = value.to_json()
        elif name in ("status_of", "failure_of"):
            raise TypeError(
                f"{name}= is a callable: give it to the source (Source({name}=...)), which "
                "every worker builds by name"
            )
        else:
            out[name] = value
    return out


def _check_ids(job_ids: Iterable[str]) -> list[str]:
    if isinstance(job_ids, str | bytes):
        raise InvalidJobIdsError("job_ids must be a list of ids, not one string")
    ids = list(job_ids)
    if not ids:
        raise InvalidJobIdsError("job_ids is empty: give at least one job id")
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise InvalidJobIdsError(f"every job id must be a non-empty string; got {bad[0]!r}")
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if repeated:
        raise InvalidJobIdsError(
            f"{len(repeated)} job id(s) given twice, first {repeated[0]!r}: each job can "
            "have only one outcome; remove the duplicates"
        )
    return ids


class DurableWaits:
    """Durable waits on a Celery app: registers the tasks, holds the sources.

    Build one in the module that both your producers and your workers import, next to
    the app, and register the sources there::

        app = Celery("proj", broker="redis://localhost:6379/0")
        waits = DurableWaits(app)
        waits.register_source("ionq", ionq_source())

        group = waits.submit("ionq", job_ids, timeout=3600)
        for job_id, outcome in group.as_completed():
            ...

    Args:
        app: Your Celery app (its broker may be Redis or anything else).
        redis_url: Where groups live (default: the app's broker URL, which must then
            be ``redis://`` or ``rediss://``).
        prefix: Prefix of every Redis key and of the task names (default
            ``"jobwait"``: tasks ``jobwait.shard``, ``jobwait.sweep``,
            ``jobwait.cancel_remote``).
        countdown_cap: Longest countdown a shard task is re-sent with (default: a
            quarter of the broker's ``visibility_timeout``, which is 1 h by default).
            Keep it well below that timeout: a message held longer is delivered again.
        sweep_grace: Seconds a shard may be overdue before the sweeper re-sends it
            (default ``2 * countdown_cap + 60``).
        result_ttl: Seconds a finished or canceled group's keys live (default 7
            days; ``0`` keeps them until you delete them).
        queue: The Celery queue of the shard tasks (default: the app's default).

    Raises:
        ValueError: No ``redis_url`` and the broker is not Redis.
    """

    def __init__(
        self,
        app: Celery,
        *,
        redis_url: str | None = None,
        prefix: str = "jobwait",
        countdown_cap: float | None = None,
        sweep_grace: float | None = None,
        result_ttl: int = 7 * 86400,
        queue: str | None = None,
    ) -> None:
        if redis_url is None:
            broker = str(app.conf.broker_url or "")
            if not broker.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(
                    "DurableWaits needs redis_url= when the Celery broker is not Redis"
                )
            redis_url = broker
        visibility = float(
            (app.conf.broker_transport_options or {}).get("visibility_timeout", _DEFAULT_VISIBILITY)
        )
        self.app = app
        self.prefix = prefix
        self.countdown_cap = visibility / 4 if countdown_cap is None else float(countdown_cap)
        if not 0 < self.countdown_cap < visibility:
            raise ValueError(
                f"countdown_cap={self.countdown_cap} must be > 0 and well below the broker's "
                f"visibility_timeout={visibility}"
            )
        self.sweep_grace = (
            2 * self.countdown_cap + 60 if sweep_grace is None else float(sweep_grace)
        )
        self.result_ttl = result_ttl
        self.queue = queue
        self._redis_url = redis_url
        self._store: Store | None = None
        self._factories: dict[str, SourceFactory] = {}
        self._batch: dict[str, bool] = {}
        self._sources: dict[str, Source] = {}
        self.shard_task = self._register_shard()
        self.sweep_task = app.task(name=f"{prefix}.sweep", ignore_result=True)(self.sweep)
        self.cancel_task = app.task(
            name=f"{prefix}.cancel_remote", ignore_result=True, acks_late=True
        )(self._cancel_remote)
        worker_process_shutdown.connect(self._close_sources, weak=False)

    # --- set-up ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The Redis store (connected lazily, once per process)."""
        if self._store is None:
            self._store = Store(_client(self._redis_url), self.prefix)
        return self._store

    def register_source(
        self, name: str, factory: SourceFactory, *, batch: bool | None = None
    ) -> None:
        """Make a source available under ``name`` in this process.

        Call it in the module that producers and workers both import. ``factory()``
        runs in each worker process the first time a shard of that source runs; it
        reads secrets from the worker's environment.

        Args:
            name: What ``submit`` names.
            factory: Returns the :class:`Source` (see :func:`ionq_source`,
                :func:`http_source`).
            batch: Whether the source reads many ids per request (default: the
                factory's ``batch`` attribute, else ``True``). ``False`` makes shards
                poll one id per request (``max_batch=1``).

        Raises:
            ValueError: ``name`` is empty or registered already.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("a source name must be a non-empty string")
        if name in self._factories:
            raise ValueError(f"a source named {name!r} is registered already")
        self._factories[name] = factory
        self._batch[name] = bool(getattr(factory, "batch", True) if batch is None else batch)

    def _close_sources(self, **_: Any) -> None:
        # A pool process is exiting: close the sources it built (their HTTP clients).
        for source in self._sources.values():
            if source.close is not None:
                with contextlib.suppress(Exception):
                    source.close()
        self._sources.clear()

    def source(self, name: str) -> Source:
        """The source ``name`` as built in this process (built on first use).

        Raises:
            UnknownSourceError: Not registered here.
        """
        source = self._sources.get(name)
        if source is None:
            factory = self._factories.get(name)
            if factory is None:
                raise UnknownSourceError(
                    f"no source named {name!r} is registered in this process (known: "
                    f"{sorted(self._factories) or 'none'}); call register_source() in the "
                    "module the producer and the workers both import"
                )
            source = self._sources[name] = factory()
        return source

    # --- producer side ---------------------------------------------------------------

    def submit(
        self,
        source: str,
        job_ids: Iterable[str],
        *,
        group_id: str | None = None,
        shard_size: int | None = None,
        on_done: Any = None,
        cancel_on_timeout: bool = False,
        **options: Any,
    ) -> WaitGroup:
        """Wait for ``job_ids`` on the workers: write the shards, send their tasks.

        Args:
            source: A registered source name.
            job_ids: The jobs (distinct, non-empty strings).
            group_id: Your own id for the group (default: a new random one).
            shard_size: Ids per shard (default ``10 * max_batch``, 1,000 by default;
                100 for a one-by-one source). Larger shards keep batches full as jobs
                finish (fewer requests) at the cost of larger snapshots per run.
            on_done: A Celery signature run once per finished job as
                ``on_done(group_id, job_id, record)``, ``record`` being the stored
                JSON outcome (rebuild it with :func:`outcome_of`). It must be
                JSON-serialisable (``my_task.s()``).
            cancel_on_timeout: Cancel each job that times out through the source's
                ``cancel`` (default ``False``).
            **options: :class:`~jobwait.JobFleet` options (``timeout``, ``backoff``,
                ``max_batch``, ``batch_window``, ``max_polls_per_second`` for the
                whole group over all workers, ``max_batch_errors``,
                ``use_predictions``, ...). ``timeout`` counts from now, on the Redis
                clock, however long the shards wait in Redis or in queues.

        Returns:
            The :class:`WaitGroup`.

        Raises:
            UnknownSourceError: ``source`` is not registered in this process.
            InvalidJobIdsError: ``job_ids`` is empty, or has a repeated or non-string id.
            ForeignFormatError: ``group_id`` names a group of another jobwait version.
            ValueError: ``group_id`` exists already, or an invalid option value.
            TypeError: An unknown option, a callable option, or ``fail_fast``.
            StoreUnavailableError: Redis is unreachable (nothing was submitted).
        """
        if source not in self._factories:
            self.source(source)  # raises UnknownSourceError with the known names
        ids = _check_ids(job_ids)
        if options.get("fail_fast"):
            raise TypeError(
                "fail_fast is not supported by durable waits: read progress() or "
                "as_completed() and call WaitGroup.cancel() when you want to stop"
            )
        # Every option is checked now, in the caller's process, by the core's own rules.
        make_fleet(options, one_by_one=not self._batch[source])
        options.pop("fail_fast", None)
        options.pop("max_concurrency", None)  # each shard runs one request at a time
        # The request budget holds for the whole group, kept in Redis (not per shard).
        budget = options.pop("max_polls_per_second", None)
        if not self._batch[source]:
            options["max_batch"] = 1
        stored = _json_options(options)
        size = shard_size
        if size is None:
            size = 10 * options.get("max_batch", 100) if self._batch[source] else 100
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"shard_size={size!r} must be an integer >= 1")
        on_done_json = ""
        if on_done is not None:
            on_done_json = json.dumps(dict(signature(on_done)))
        group = group_id or f"jw-{uuid.uuid4().hex}"
        store = self.store
        try:
            now = store.now()
            blobs = [
                pack(new_snapshot(options, ids[i : i + size], now))
                for i in range(0, len(ids), size)
            ]
            meta = {
                "source": source,
                "options": json.dumps(stored),
                "budget": "" if budget is None else str(budget),
                "shards": str(len(blobs)),
                "total": str(len(ids)),
                "created": repr(now),
                "canceled": "0",
                "on_done": on_done_json,
                "cancel_on_timeout": "1" if cancel_on_timeout else "0",
            }
            if not store.create(group, meta, blobs, now):
                existing = store.meta(group) or {}
                if existing.get("format") != FORMAT:
                    raise ForeignFormatError(
                        f"group {group!r} exists with format {existing.get('format')!r}; "
                        f"this jobwait writes {FORMAT!r}: choose another group_id"
                    )
                raise ValueError(f"a wait group {group!r} exists already: choose another id")
        except _STORE_ERRORS as exc:
            raise _unavailable("submitting", exc) from exc
        for n in range(len(blobs)):
            self._send(group, n, 1, 0.0)
        return self.group(group)

    def group(self, group_id: str) -> WaitGroup:
        """The :class:`WaitGroup` of an id (from ``submit``, maybe in another process).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`WaitGroup.from_id`.
        """
        group = WaitGroup(
            group_id,
            store=self.store,
            on_cancel=lambda g: self.cancel_task.apply_async((g,), queue=self.queue),
            ttl=self.result_ttl,
        )
        group._meta()
        return group

    def _send(self, group: str, n: int, gen: int, countdown: float) -> None:
        self.shard_task.apply_async(
            (group, n, gen), countdown=countdown if countdown > 0 else None, queue=self.queue
        )

    # --- worker side -----------------------------------------------------------------

    def _register_shard(self) -> Task:
        waits = self

        def shard(group: str, n: int, gen: int) -> None:
            waits.run_shard(group, n, gen)

        return self.app.task(
            name=f"{self.prefix}.shard",
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            serializer="json",
        )(shard)

    def run_shard(self, group: str, n: int, gen: int) -> None:
        """One run of the shard task (see the module theory). Called by the task;
        call it by hand only to debug a shard.

        Never raises for bad state: an unknown group, source or snapshot format is
        logged and the shard is left as it is in Redis, for the sweeper to re-send
        once the cause is fixed. Redis errors propagate (the sweeper recovers).
        """
        store = self.store
        meta, loaded, base = store.load_run(group, n)
        started = time.monotonic()
        if meta is None:
            logger.info("jobwait shard %s/%d: group gone (expired or deleted)", group, n)
            return
        if meta.get("format") != FORMAT:
            logger.error(
                "jobwait shard %s/%d: group format %r, this worker reads %r; shard left as is",
                group, n, meta.get("format"), FORMAT,
            )  # fmt: skip
            return
        if meta.get("canceled") == "1":
            return
        if loaded is None:
            logger.error("jobwait shard %s/%d: no such shard", group, n)
            return
        current, blob, done = loaded
        if done or current != gen or blob is None:
            logger.info("jobwait shard %s/%d: stale gen %d (now %d)", group, n, gen, current)
            return
        try:
            source = self.source(meta["source"])
        except Exception:
            logger.exception(
                "jobwait shard %s/%d: source %r unavailable in this worker; shard left for the "
                "sweeper",
                group, n, meta["source"],
            )  # fmt: skip
            return

        def clock() -> float:
            return base + (time.monotonic() - started)

        try:
            fleet = restore_fleet(unpack(blob), clock(), source)
        except ValueError:
            logger.exception("jobwait shard %s/%d: snapshot unusable; shard left as is", group, n)
            return
        self._drive(group, n, gen, meta, fleet, source, clock)

    def _drive(
        self,
        group: str,
        n: int,
        gen: int,
        meta: Mapping[str, str],
        fleet: JobFleet,
        source: Source,
        clock: Callable[[], float],
    ) -> None:
        store = self.store
        budget = int(meta["budget"]) if meta.get("budget") else None
        outcomes: list[tuple[str, str, str]] = []
        timed_out: list[str] = []
        due: float | None = None
        token = f"{group}/{n}/{gen}"
        requests = 0
        driver = FleetDriver(
            fleet,
            reads="batch",
            is_retryable=source.is_retryable,
            retry_after_of=source.retry_after_of,
        )
        while True:
            action = driver.step(clock())
            if isinstance(action, Read):
                if budget is not None:
                    wait = store.take_token(group, budget, f"{token}/{requests}")
                    while 0 < wait <= _BUDGET_INLINE_WAIT:
                        time.sleep(wait)
                        wait = store.take_token(group, budget, f"{token}/{requests}")
                    if wait > 0:
                        due = clock() + wait  # the read is restored as due next run
                        break
                requests += 1
                try:
                    result = source.fetch_many(action.ids)
                except Exception as exc:  # noqa: BLE001 - classified by the core's step
                    driver.read_failed(action, exc, clock())
                else:
                    driver.read_done(action, result, clock())
            elif isinstance(action, Finished):
                job_kind, text = encode_outcome(
                    action.outcome, source.status_of, fleet.polls(action.job_id)
                )
                outcomes.append((action.job_id, job_kind, text))
                if action.cancel_job:
                    timed_out.append(action.job_id)
            elif isinstance(action, FleetSleep):
                due = clock() + (0.0 if action.seconds is None else action.seconds)
                break
            elif isinstance(action, AllDone):
                due = None
                break
            # StatusChanged and PollReport are never returned (no hooks); CancelJobs and
            # Raise need fail_fast, which submit refuses.
        now = clock()
        snapshot = pack(snapshot_of(fleet)) if fleet.waiting else None
        notify = bool(meta.get("on_done"))
        new_gen = store.save(
            group,
            n,
            gen=gen,
            snapshot=snapshot,
            due=None if not fleet.waiting else due,
            outcomes=outcomes,
            total=int(meta["total"]),
            ttl=self.result_ttl,
            notify=notify,
            now=now,
        )
        if new_gen <= 0:
            logger.info(
                "jobwait shard %s/%d: generation %d lost the race; %d request(s) made, write "
                "dropped",
                group, n, gen, requests,
            )  # fmt: skip
            return
        if notify and outcomes:
            self._notify(group, meta["on_done"], {job_id: text for job_id, _, text in outcomes})
        if timed_out and meta.get("cancel_on_timeout") == "1" and source.cancel is not None:
            for job_id in timed_out:
                try:
                    source.cancel(job_id)
                except Exception:
                    logger.exception("jobwait: canceling timed-out job %r failed", job_id)
        if fleet.waiting and due is not None:
            countdown = min(max(0.0, due - now), self.countdown_cap)
            self._send(group, n, new_gen, countdown)

    def _notify(self, group: str, on_done: str, texts: Mapping[str, str | bytes | None]) -> None:
        # Send on_done for each finished job, then strike it from the group's pending
        # set; the sweeper sends whatever a killed worker left there.
        sig = signature(json.loads(on_done), app=self.app)
        for job_id, text in texts.items():
            if text is not None:
                sig.clone(args=(group, job_id, json.loads(text))).apply_async()
        self.store.notified(group, texts)

    def sweep(self, grace: float | None = None) -> int:
        """Re-send every shard overdue by more than ``grace`` seconds (default
        ``sweep_grace``) and every ``on_done`` not sent within it. Run it on celery
        beat (task ``<prefix>.sweep``) every ``grace / 2`` or so, or call it by hand,
        e.g. after Redis came back.

        Returns:
            How many shards were re-sent.

        Raises:
            StoreUnavailableError: Redis is unreachable.
        """
        grace = self.sweep_grace if grace is None else float(grace)
        store = self.store
        resent = 0
        try:
            now = store.now()
            for group in store.groups():
                meta = store.meta(group)
                if meta is None:
                    store.forget(group)
                    continue
                if meta.get("format") != FORMAT:
                    logger.error("jobwait sweep: group %s has format %r", group, meta.get("format"))
                    continue
                if meta.get("canceled") == "1":
                    store.forget(group)
                    continue
                for n in store.overdue(group, now - grace):
                    new_gen = store.take_over(group, n, before=now - grace, due=now + grace)
                    if new_gen > 0:
                        logger.warning(
                            "jobwait sweep: shard %s/%d overdue by > %.0fs; re-sent as "
                            "generation %d",
                            group, n, grace, new_gen,
                        )  # fmt: skip
                        self._send(group, n, new_gen, 0.0)
                        resent += 1
                if meta.get("on_done"):
                    late = store.pending_notifications(group, now - grace)
                    if late:
                        texts = {job_id: store.result(group, job_id) for job_id in late}
                        self._notify(group, meta["on_done"], texts)
        except _STORE_ERRORS as exc:
            raise _unavailable("sweeping", exc) from exc
        return resent

    def _cancel_remote(self, group: str) -> int:
        # Runs in a worker: cancel the remote jobs of every shard still waiting.
        meta = self.store.meta(group)
        if meta is None or meta.get("format") != FORMAT:
            return 0
        source = self.source(meta["source"])
        if source.cancel is None:
            logger.error("jobwait: source %r cannot cancel remote jobs", meta["source"])
            return 0
        canceled = 0
        now = self.store.now()
        for n in range(int(meta["shards"])):
            loaded = self.store.load(group, n)
            if loaded is None or loaded[1] is None or loaded[2]:
                continue
            fleet = restore_fleet(unpack(loaded[1]), now, source)
            for job_id in fleet.unfinished():
                try:
                    source.cancel(job_id)
                    canceled += 1
                except Exception:
                    logger.exception("jobwait: canceling job %r failed", job_id)
        return canceled
