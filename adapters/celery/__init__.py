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
5. the winner sends one ``<prefix>.notify`` task for the jobs it finished (when the
   group has ``on_done``), cancels timed-out jobs if the group asked for it, and
   re-sends the task with the new generation and
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

``on_done`` is at least once. The save that records an outcome also marks its
notification pending, in the same script. The ``<prefix>.notify`` task calls the
user's signature in its own process and only then strikes the job off; the sweeper
re-sends every notification pending longer than ``sweep_grace``, and a finished group
stays on the sweeper's list until the last one is struck off. A worker killed between
the call and the strike-off makes the call run again: callbacks deduplicate on
``(group_id, job_id)``.

Nothing here cancels a remote job when a worker stops (warm, cold or killed): the
wait is handed over. Remote jobs are canceled only when one times out in a group
submitted with ``cancel_on_timeout=True``, or on ``WaitGroup.cancel(remote=True)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from jobwait import (
    AllDone,
    Finished,
    FleetSleep,
    JobFleet,
)
from jobwait._durable import (
    Credential,
    SourceSpec,
    fleet_options_to_json,
    fleet_snapshot,
    load_json,
    new_fleet_snapshot,
    outcome_of,
    outcome_record,
    pack,
    record_json,
    restore_fleet,
    unpack,
)
from jobwait._plumbing import (
    ID_LIMIT,
    FleetDriver,
    Read,
    RemoteError,
    make_fleet,
    missing_extra,
    preview,
)

from ._errors import (
    CorruptGroupError,
    DurableWaitError,
    ForeignFormatError,
    GroupCanceledError,
    GroupNotFoundError,
    GroupTimeoutError,
    InvalidJobIdsError,
    StoreUnavailableError,
    UnknownSourceError,
)
from ._sources import Source, SourceFactory, SpecFactory, http_source, ionq_source
from ._store import FORMAT, GroupMeta, Store

if TYPE_CHECKING:
    import redis
    from celery import Celery, Task

__all__ = [
    "FORMAT",
    "CorruptGroupError",
    "Credential",
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
    "SourceSpec",
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
_RESEND_MAX: Final = 10_000
_NOTIFY_BATCH: Final = 1000


_STORE_ERRORS_CACHE: list[tuple[type[BaseException], ...]] = []


def _store_errors() -> tuple[type[BaseException], ...]:
    # redis is imported where a store is used, so that the durable core and this
    # module's names import without it (an engine-neutral user needs neither).
    if not _STORE_ERRORS_CACHE:
        import redis

        _STORE_ERRORS_CACHE.append((redis.ConnectionError, redis.TimeoutError))
    return _STORE_ERRORS_CACHE[0]


def _refused(message: str, *args: object) -> None:
    # Data jobwait did not write: one line in the log and no traceback, which would
    # only show where the check is, not what wrote the data.
    logger.error(message, *args)


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

    Every reader checks what it reads: data jobwait did not write (a key of another
    type, a field missing or out of range, an outcome record that does not parse)
    raises :class:`CorruptGroupError` naming the group and the key.

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
            CorruptGroupError: Its meta is not what jobwait wrote.
            StoreUnavailableError: Redis is unreachable.
        """
        client = _client(redis_url) if isinstance(redis_url, str) else redis_url
        group = cls(group_id, store=Store(client, prefix))
        group._meta()
        return group

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<WaitGroup {preview(self.id, ID_LIMIT)}>"

    def _meta(self) -> GroupMeta:
        try:
            meta = self._store.meta(self.id)
        except _store_errors() as exc:
            raise _unavailable(f"reading group {preview(self.id, ID_LIMIT)}", exc) from exc
        if meta is None:
            raise GroupNotFoundError(
                f"no wait group {preview(self.id, ID_LIMIT)} in Redis (wrong id, or expired)"
            )
        return meta

    def _outcome(self, job_id: str, text: bytes) -> Any:
        try:
            return outcome_of(text)
        except (TypeError, ValueError) as exc:
            raise CorruptGroupError(
                f"wait group {preview(self.id, ID_LIMIT)}: the outcome of job "
                f"{preview(job_id, ID_LIMIT)} in the "
                f"results key is not a record jobwait wrote ({str(exc)[:200]}); delete the "
                "group's keys and submit again"
            ) from None

    def progress(self) -> Progress:
        """Counts per outcome and jobs still waiting.

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
            CorruptGroupError: As :meth:`from_id`, and for counts that are not what
                jobwait wrote.
        """
        meta = self._meta()
        try:
            counts = self._store.counts(self.id)
        except _store_errors() as exc:
            raise _unavailable("reading progress", exc) from exc
        finished = sum(counts.values())
        if finished > meta.total:
            raise CorruptGroupError(
                f"wait group {preview(self.id, ID_LIMIT)}: the counts key holds {finished} "
                f"outcomes "
                f"for {meta.total} jobs; delete the group's keys and submit again"
            )
        return Progress(
            total=meta.total,
            waiting=meta.total - finished,
            counts=counts,
            canceled=meta.canceled,
        )

    def results(self) -> dict[str, Any]:
        """Every outcome recorded so far: job id -> the final job (parsed JSON), or
        the ``JobWaitError`` it ended with, rebuilt with its context. Jobs still
        waiting are absent (see :meth:`progress`).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
            CorruptGroupError: A record that is not what jobwait wrote (names the job).
        """
        self._meta()
        try:
            raw = self._store.results(self.id)
        except _store_errors() as exc:
            raise _unavailable("reading results", exc) from exc
        return {job_id: self._outcome(job_id, text) for job_id, text in raw.items()}

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
            CorruptGroupError: A stream entry or record jobwait did not write.
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
        """
        total = self._meta().total
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: set[str] = set()
        after = "0-0"
        while len(seen) < total:
            block = 1000
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GroupTimeoutError(
                        f"wait group {preview(self.id, ID_LIMIT)}: {total - len(seen)} of {total} "
                        f"jobs "
                        f"still waiting after timeout={timeout}s; call again to wait longer"
                    )
                block = max(1, min(block, int(left * 1000)))
            try:
                entries = self._store.read_stream(self.id, after, block_ms=block)
            except _store_errors() as exc:
                raise _unavailable("reading finished jobs", exc) from exc
            fresh: list[str] = []
            for entry_id, job_id in entries:
                after = entry_id
                if job_id not in seen:
                    seen.add(job_id)
                    fresh.append(job_id)
            try:
                texts = self._store.results_of(self.id, fresh)
            except _store_errors() as exc:
                raise _unavailable("reading finished jobs", exc) from exc
            for job_id, text in zip(fresh, texts, strict=True):
                if text is None:
                    self._meta()  # GroupNotFoundError if the group expired meanwhile
                    raise CorruptGroupError(
                        f"wait group {preview(self.id, ID_LIMIT)}: the stream names job "
                        f"{preview(job_id, ID_LIMIT)}, "
                        "which has no outcome in the results key; delete the group's keys "
                        "and submit again"
                    )
                yield job_id, self._outcome(job_id, text)
            if not entries and self._meta().canceled:
                raise GroupCanceledError(
                    f"wait group {preview(self.id, ID_LIMIT)} was canceled with "
                    f"{total - len(seen)} "
                    "jobs waiting"
                )

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        """Block until every job has its outcome and return :meth:`results`.

        Raises:
            GroupTimeoutError, GroupCanceledError, CorruptGroupError: As
                :meth:`as_completed`.
        """
        for _ in self.as_completed(timeout=timeout):
            pass
        return self.results()

    def cancel(self, *, remote: bool = False) -> None:
        """Stop the group: no shard polls again and no outcome is recorded any more
        (a run in progress loses its write). Outcomes recorded stay readable, and their
        ``on_done`` calls still run.

        Args:
            remote: Also cancel the remote jobs still waiting, through the source's
                ``cancel`` in a worker (default ``False``: they keep running).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`from_id`.
            CorruptGroupError: As :meth:`from_id`.
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
        except _store_errors() as exc:
            raise _unavailable("canceling", exc) from exc


# --- the engine -------------------------------------------------------------------------


def _client(url: str) -> redis.Redis:
    try:
        import redis
    except ModuleNotFoundError as missing:
        raise missing_extra(missing, module=__name__, extra="celery") from missing
    return redis.Redis.from_url(
        url, socket_connect_timeout=5.0, socket_timeout=10.0, health_check_interval=30
    )


def _check_ids(job_ids: Iterable[str]) -> list[str]:
    if isinstance(job_ids, str | bytes):
        raise InvalidJobIdsError("job_ids must be a list of ids, not one string")
    ids = list(job_ids)
    if not ids:
        raise InvalidJobIdsError("job_ids is empty: give at least one job id")
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise InvalidJobIdsError(
            f"every job id must be a non-empty string; got {preview(bad[0], ID_LIMIT)}"
        )
    seen: set[str] = set()
    repeated = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if repeated:
        raise InvalidJobIdsError(
            f"{len(repeated)} job id(s) given twice, first {preview(repeated[0], ID_LIMIT)}: each "
            f"job can "
            "have only one outcome; remove the duplicates"
        )
    return ids


def _digest(*parts: object) -> str:
    # What a submit asked for, hashed: a retried submit with the same group_id and the
    # same digest is the same submission (its first try may have been written whole).
    text = json.dumps(parts, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


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
            ``"jobwait"``: tasks ``jobwait.shard``, ``jobwait.notify``,
            ``jobwait.sweep``, ``jobwait.cancel_remote``).
        countdown_cap: Longest countdown a shard task is re-sent with (default: a
            quarter of the broker's ``visibility_timeout``, which is 1 h by default).
            Keep it well below that timeout: a message held longer is delivered again.
        sweep_grace: Seconds a shard may be overdue, or an ``on_done`` call
            unconfirmed, before the sweeper re-sends it (default
            ``2 * countdown_cap + 60``).
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
        # Not shared: a task bound to this instance must not be registered on every
        # other app of the process (Celery's default for @app.task).
        self.shard_task = self._register_shard()
        self.notify_task = self._register(
            "notify", self.run_notify, acks_late=True, reject_on_worker_lost=True
        )
        self.sweep_task = self._register("sweep", self.sweep)
        self.cancel_task = self._register("cancel_remote", self._cancel_remote, acks_late=True)
        from celery.signals import worker_process_shutdown

        worker_process_shutdown.connect(self._close_sources, weak=False)

    # --- set-up ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The Redis store (connected lazily, once per process)."""
        if self._store is None:
            self._store = Store(_client(self._redis_url), self.prefix)
        return self._store

    def register_source(
        self, name: str, factory: SourceFactory | SourceSpec, *, batch: bool | None = None
    ) -> None:
        """Make a source available under ``name`` in this process.

        Call it in the module that producers and workers both import. ``factory()``
        runs in each worker process the first time a shard of that source runs; it
        reads secrets from the worker's environment.

        Args:
            name: What ``submit`` names.
            factory: Returns the :class:`Source` (see :func:`ionq_source`,
                :func:`http_source`), or a :class:`SourceSpec` describing it (an
                ``ApiProfile`` name, URL templates, credentials from the environment).
                With a description (as the built-in factories are), the profile's
                vocabulary becomes each group's unless ``submit`` names its own.
            batch: Whether the source reads many ids per request (default: the
                factory's ``batch`` attribute, else ``True``). ``False`` makes shards
                poll one id per request (``max_batch=1``).

        Raises:
            ValueError: ``name`` is empty or registered already.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("a source name must be a non-empty string")
        if name in self._factories:
            raise ValueError(f"a source named {preview(name, ID_LIMIT)} is registered already")
        if isinstance(factory, SourceSpec):
            factory = SpecFactory(factory)
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
                known = sorted(self._factories)
                raise UnknownSourceError(
                    f"no source named {preview(name, ID_LIMIT)} is registered in this process "
                    f"(known: "
                    f"{preview(known, ID_LIMIT) if known else 'none'}); call register_source() in "
                    f"the "
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

        The group is written in one Redis script, whole or not at all. A submit that
        failed (``StoreUnavailableError``, a broker error while sending) may be retried
        with the same ``group_id`` and the same arguments: if the first try was written
        after all, the retry finds it, sends the tasks of its shards that have not run
        yet again (a duplicate costs at most one status request: one run per
        generation writes) and returns it.

        Args:
            source: A registered source name.
            job_ids: The jobs (distinct, non-empty strings).
            group_id: Your own id for the group (default: a new random one).
            shard_size: Ids per shard (default ``10 * max_batch``, 1,000 by default;
                100 for a one-by-one source). Larger shards keep batches full as jobs
                finish (fewer requests) at the cost of larger snapshots per run.
            on_done: A Celery signature run at least once per finished job as
                ``on_done(group_id, job_id, record)``, ``record`` being the stored
                outcome record (rebuild it with :func:`outcome_of`). It runs inside
                the ``<prefix>.notify`` task, so it must name a task registered in
                this app (defined in the module the workers import), and it must be
                JSON-serialisable (``my_task.s()``). Around a worker's death it may
                run twice for one job: deduplicate on ``(group_id, job_id)``.
            cancel_on_timeout: Cancel each job that times out through the source's
                ``cancel`` (default ``False``).
            **options: :class:`~jobwait.JobFleet` options (``timeout``, ``backoff``,
                ``max_batch``, ``batch_window``, ``max_polls_per_second`` for the
                whole group over all workers, ``max_batch_errors``,
                ``use_predictions``, ...). ``timeout`` counts from now, on the Redis
                clock, however long the shards wait in Redis or in queues. A source
                described by a :class:`SourceSpec` adds its profile's ``statuses`` and
                ``raise_on_cancel`` under them.

        Returns:
            The :class:`WaitGroup`.

        Raises:
            UnknownSourceError: ``source`` is not registered in this process.
            InvalidJobIdsError: ``job_ids`` is empty, or has a repeated or non-string id.
            ForeignFormatError: ``group_id`` names a group of another jobwait version.
            CorruptGroupError: ``group_id`` names keys jobwait did not write.
            ValueError: ``group_id`` exists already for another submission, an invalid
                option value, or ``on_done`` names a task this app does not have.
            TypeError: An unknown option, a callable option, or ``fail_fast``.
            StoreUnavailableError: Redis is unreachable (retry: see above).
        """
        if source not in self._factories:
            self.source(source)  # raises UnknownSourceError with the known names
        ids = _check_ids(job_ids)
        if options.get("fail_fast"):
            raise TypeError(
                "fail_fast is not supported by durable waits: read progress() or "
                "as_completed() and call WaitGroup.cancel() when you want to stop"
            )
        spec = getattr(self._factories[source], "spec", None)
        if isinstance(spec, SourceSpec):
            options = {**spec.waiter_options(), **options}  # the profile's, under the caller's
        # Every option is checked now, in the caller's process, by the core's own rules.
        make_fleet(options, one_by_one=not self._batch[source])
        options.pop("fail_fast", None)
        options.pop("max_concurrency", None)  # each shard runs one request at a time
        # The request budget holds for the whole group, kept in Redis (not per shard).
        budget = options.pop("max_polls_per_second", None)
        if not self._batch[source]:
            options["max_batch"] = 1
        stored = fleet_options_to_json(options)
        size = shard_size
        if size is None:
            size = 10 * options.get("max_batch", 100) if self._batch[source] else 100
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"shard_size={preview(size, ID_LIMIT)} must be an integer >= 1")
        on_done_json = "" if on_done is None else self._on_done_json(on_done)
        group = group_id or f"jw-{uuid.uuid4().hex}"
        digest = _digest(source, ids, stored, budget, size, on_done_json, cancel_on_timeout)
        store = self.store
        try:
            now = store.now()
            blobs = [
                pack(new_fleet_snapshot(options, ids[i : i + size], now))
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
                "digest": digest,
            }
            existing = store.create(group, meta, blobs, now)
            if existing is not None:
                resend = self._existing(group, existing, digest, len(blobs))
            else:
                resend = list(range(len(blobs)))
        except _store_errors() as exc:
            raise _unavailable(
                "submitting (nothing was submitted, or all of it: retry)", exc
            ) from exc
        for n in resend:
            self._send(group, n, 1, 0.0)
        return self.group(group)

    def _on_done_json(self, on_done: Any) -> str:
        from celery import signature

        sig = signature(on_done, app=self.app)
        if sig.task not in self.app.tasks:
            raise ValueError(
                f"on_done names task {preview(sig.task, ID_LIMIT)}, which this app does not have: "
                f"define "
                "it in the module the producer and the workers both import"
            )
        return json.dumps(dict(sig))

    def _existing(self, group: str, found: tuple[str, str], digest: str, shards: int) -> list[int]:
        # A group of that id exists: the same submission written by a try whose answer
        # was lost (its first shard tasks go out again), or another one.
        form, stored = found
        if form != FORMAT:
            if form == "?":
                raise CorruptGroupError(
                    f"wait group {preview(group, ID_LIMIT)}: the meta key holds another kind of "
                    f"Redis "
                    "value: choose another group_id, or delete the key"
                )
            raise ForeignFormatError(
                f"group {preview(group, ID_LIMIT)} exists with format {preview(form, ID_LIMIT)}; "
                f"this jobwait "
                f"writes {FORMAT!r}: choose another group_id"
            )
        if stored != digest:
            raise ValueError(
                f"a wait group {preview(group, ID_LIMIT)} exists already: choose another id"
            )
        unsent = []
        for n in range(shards):
            loaded = self.store.load(group, n)
            if loaded is not None and loaded[0] == 1 and not loaded[2]:
                unsent.append(n)
        return unsent

    def group(self, group_id: str) -> WaitGroup:
        """The :class:`WaitGroup` of an id (from ``submit``, maybe in another process).

        Raises:
            GroupNotFoundError, ForeignFormatError, StoreUnavailableError: As
                :meth:`WaitGroup.from_id`.
            CorruptGroupError: As :meth:`WaitGroup.from_id`.
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
        return self._register("shard", self.run_shard, acks_late=True, reject_on_worker_lost=True)

    def _register(self, name: str, method: Callable[..., Any], **options: Any) -> Task:
        # A plain function (Celery checks a task's arguments against its signature, and
        # a bound method's would count ``self``). Not shared: a task bound to this
        # instance must not be registered on every other app of the process, as
        # Celery's default for @app.task would.
        def task(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        task.__name__ = task.__qualname__ = method.__name__
        task.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
        return self.app.task(
            name=f"{self.prefix}.{name}",
            ignore_result=True,
            serializer="json",
            shared=False,
            **options,
        )(task)

    def run_shard(self, group: str, n: int, gen: int) -> None:
        """One run of the shard task (see the module theory). Called by the task;
        call it by hand only to debug a shard.

        Never raises for bad state: an unknown group, source or snapshot format, and
        any data in Redis jobwait did not write (a corrupted meta, shard or snapshot)
        is logged and the shard is left as it is in Redis, for the sweeper to re-send
        once the cause is fixed. Redis connection errors propagate (the sweeper
        recovers).
        """
        store = self.store
        started = time.monotonic()
        try:
            meta, loaded, base = store.load_run(group, n)
        except (CorruptGroupError, ForeignFormatError) as exc:
            _refused("jobwait shard %s/%d: %s; shard left as is", preview(group, ID_LIMIT), n, exc)
            return
        if meta is None:
            logger.info(
                "jobwait shard %s/%d: group gone (expired or deleted)", preview(group, ID_LIMIT), n
            )
            return
        if meta.canceled:
            return
        if loaded is None:
            logger.error("jobwait shard %s/%d: no such shard", preview(group, ID_LIMIT), n)
            return
        current, blob, done = loaded
        if done or current != gen or blob is None:
            logger.info(
                "jobwait shard %s/%d: stale gen %d (now %d)",
                preview(group, ID_LIMIT),
                n,
                gen,
                current,
            )
            return
        try:
            source = self.source(meta.source)
        except Exception:
            logger.exception(
                "jobwait shard %s/%d: source %s unavailable in this worker; shard left for "
                "the sweeper",
                preview(group, ID_LIMIT), n, preview(meta.source, ID_LIMIT),
            )  # fmt: skip
            return

        def clock() -> float:
            return base + (time.monotonic() - started)

        try:
            fleet = restore_fleet(
                unpack(blob), now=clock(), status_of=source.status_of, failure_of=source.failure_of
            )
        except ValueError as exc:
            _refused(
                "jobwait shard %s/%d: snapshot unusable (%s); shard left as is",
                preview(group, ID_LIMIT),
                n,
                exc,
            )
            return
        try:
            self._drive(group, n, gen, meta, fleet, source, clock)
        except (CorruptGroupError, ForeignFormatError) as exc:  # a key changed meanwhile
            _refused("jobwait shard %s/%d: %s; shard left as is", preview(group, ID_LIMIT), n, exc)

    def _drive(
        self,
        group: str,
        n: int,
        gen: int,
        meta: GroupMeta,
        fleet: JobFleet,
        source: Source,
        clock: Callable[[], float],
    ) -> None:
        store = self.store
        budget = meta.budget
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
                job_kind, record = outcome_record(
                    action.outcome,
                    status_of=source.status_of,
                    polls=fleet.polls(action.job_id),
                )
                outcomes.append((action.job_id, job_kind, record_json(record)))
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
        snapshot = pack(fleet_snapshot(fleet)) if fleet.waiting else None
        notify = meta.on_done is not None
        new_gen = store.save(
            group,
            n,
            gen=gen,
            snapshot=snapshot,
            due=None if not fleet.waiting else due,
            outcomes=outcomes,
            total=meta.total,
            ttl=self.result_ttl,
            notify=notify,
            now=now,
        )
        if new_gen <= 0:
            logger.info(
                "jobwait shard %s/%d: generation %d lost the race; %d request(s) made, write "
                "dropped",
                preview(group, ID_LIMIT), n, gen, requests,
            )  # fmt: skip
            return
        if notify and outcomes:
            self._send_notify(group, [job_id for job_id, _, _ in outcomes])
        if timed_out and meta.cancel_on_timeout and source.cancel is not None:
            for job_id in timed_out:
                try:
                    source.cancel(job_id)
                except Exception:
                    logger.exception(
                        "jobwait: canceling timed-out job %s failed", preview(job_id, ID_LIMIT)
                    )
        if fleet.waiting and due is not None:
            countdown = min(max(0.0, due - now), self.countdown_cap)
            self._send(group, n, new_gen, countdown)

    # --- on_done: at least once -------------------------------------------------------

    def _send_notify(self, group: str, ids: list[str]) -> None:
        self.notify_task.apply_async((group, ids), queue=self.queue)

    def run_notify(self, group: str, ids: list[str]) -> int:
        """The ``<prefix>.notify`` task: run the group's ``on_done`` for each job of
        ``ids`` still pending, in this process, and strike each off only after its call
        returned (or raised: a callback's own failure is logged, not retried).

        Each job is claimed for ``sweep_grace`` seconds first, so a second run holding
        it (the sweeper's re-send, a redelivery) skips it rather than call it at the same
        time. A worker killed between the call and the strike-off leaves the job
        pending: the sweeper sends it again once the claim ran out, and the callback
        runs a second time. Never raises for bad state (logged);
        Redis connection errors propagate (the message comes back, or the sweeper
        re-sends).

        Returns:
            How many callbacks ran.
        """
        store = self.store
        try:
            meta = store.meta(group)
        except (CorruptGroupError, ForeignFormatError) as exc:
            _refused(
                "jobwait notify %s: %s; notifications left pending", preview(group, ID_LIMIT), exc
            )
            return 0
        if meta is None:
            logger.info(
                "jobwait notify %s: group gone (expired or deleted)", preview(group, ID_LIMIT)
            )
            return 0
        if meta.on_done is None:
            for job_id in ids:
                store.confirm(group, job_id)
            return 0
        from celery import signature

        try:
            sig = signature(meta.on_done, app=self.app)
            sig.type  # noqa: B018 - NotRegistered now, not once per job
        except Exception:
            logger.exception(
                "jobwait notify %s: on_done cannot be called in this worker; notifications "
                "left pending for the sweeper",
                preview(group, ID_LIMIT),
            )
            return 0
        ran = 0
        for job_id in ids:
            if store.claim(group, job_id, self.sweep_grace) != 1:
                continue  # confirmed by another run already, or another run holds it
            text = store.result(group, job_id)
            record = None
            if text is not None:
                try:
                    record = load_json(text, "an outcome record")
                    outcome_of(record)  # a record jobwait wrote, or nothing is called
                except (TypeError, ValueError):
                    _refused(
                        "jobwait notify %s: the outcome of job %s is not a record jobwait "
                        "wrote; no on_done call for it",
                        preview(group, ID_LIMIT), preview(job_id, ID_LIMIT),
                    )  # fmt: skip
                    record = None
            if record is not None:
                result = sig.clone(args=(group, job_id, record)).apply()
                ran += 1
                if result.failed():
                    logger.error(
                        "jobwait notify %s: on_done for job %s raised (not retried):\n%s",
                        preview(group, ID_LIMIT), preview(job_id, ID_LIMIT), result.traceback,
                    )  # fmt: skip
            store.confirm(group, job_id)
        return ran

    def sweep(self, grace: float | None = None) -> int:
        """Re-send every shard overdue by more than ``grace`` seconds (default
        ``sweep_grace``) and every ``on_done`` call not confirmed within it. Run it on
        celery beat (task ``<prefix>.sweep``) every ``grace / 2`` or so, or call it by
        hand, e.g. after Redis came back.

        A group whose data jobwait did not write is logged and skipped; the others are
        swept.

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
                try:
                    resent += self._sweep_group(group, now, grace)
                except (CorruptGroupError, ForeignFormatError) as exc:
                    _refused("jobwait sweep: group %s skipped: %s", preview(group, ID_LIMIT), exc)
        except _store_errors() as exc:
            raise _unavailable("sweeping", exc) from exc
        return resent

    def _sweep_group(self, group: str, now: float, grace: float) -> int:
        store = self.store
        meta = store.meta(group)
        if meta is None:
            store.forget(group)
            return 0
        resent = 0
        if not meta.canceled:
            for n in store.overdue(group, now - grace):
                new_gen = store.take_over(group, n, before=now - grace, due=now + grace)
                if new_gen > 0:
                    logger.warning(
                        "jobwait sweep: shard %s/%d overdue by > %.0fs; re-sent as "
                        "generation %d",
                        preview(group, ID_LIMIT), n, grace, new_gen,
                    )  # fmt: skip
                    self._send(group, n, new_gen, 0.0)
                    resent += 1
        # At most _RESEND_MAX per sweep (the rest at the next), _NOTIFY_BATCH per task.
        late = store.resend_notifications(group, now - grace, now, limit=_RESEND_MAX)
        if late:
            logger.warning(
                "jobwait sweep: %d on_done call(s) of group %s unconfirmed after %.0fs; "
                "re-sent",
                len(late), preview(group, ID_LIMIT), grace,
            )  # fmt: skip
        for i in range(0, len(late), _NOTIFY_BATCH):
            self._send_notify(group, late[i : i + _NOTIFY_BATCH])
        if meta.canceled and store.pending_count(group) == 0:
            store.forget(group)
        return resent

    def _cancel_remote(self, group: str) -> int:
        # Runs in a worker: cancel the remote jobs of every shard still waiting.
        try:
            meta = self.store.meta(group)
        except (CorruptGroupError, ForeignFormatError) as exc:
            _refused(
                "jobwait: cannot cancel the jobs of group %s: %s", preview(group, ID_LIMIT), exc
            )
            return 0
        if meta is None:
            return 0
        source = self.source(meta.source)
        if source.cancel is None:
            logger.error(
                "jobwait: source %s cannot cancel remote jobs", preview(meta.source, ID_LIMIT)
            )
            return 0
        canceled = 0
        now = self.store.now()
        for n in range(meta.shards):
            try:
                loaded = self.store.load(group, n)
                if loaded is None or loaded[1] is None or loaded[2]:
                    continue
                fleet = restore_fleet(
                    unpack(loaded[1]),
                    now=now,
                    status_of=source.status_of,
                    failure_of=source.failure_of,
                )
            except (CorruptGroupError, ValueError) as exc:
                _refused(
                    "jobwait: shard %s/%d unreadable, not canceled: %s",
                    preview(group, ID_LIMIT),
                    n,
                    exc,
                )
                continue
            for job_id in fleet.unfinished():
                try:
                    source.cancel(job_id)
                    canceled += 1
                except Exception:
                    logger.exception("jobwait: canceling job %s failed", preview(job_id, ID_LIMIT))
        return canceled
