"""One shared scheduler per client and event loop: concurrent async waits share requests.

Theory of operation
===================

``asyncio.gather(*(async_wait_for_job(client, i) for i in ids))`` (or a trio nursery)
starts thousands of independent waits on one client. Alone, each would poll on its own
schedule and queue its own request into one connection pool. Shared, they join one
:class:`Scheduler` for that client and event loop: every waiting job is one entry of one
:class:`~jobwait.JobFleet`, which decides everything (when each job is due, which ids
share a batch request, the request budget, how many requests are in flight); this module
is the short driver loop that performs the fleet's actions, plus the routing of each
job's outcome to the caller that waits for it.

- Each caller keeps its own options: they become its job's own waiter inside the fleet
  (``JobFleet.add(..., options=...)``), so its timeout, schedule, ``raise_on_failure``,
  statuses and error budget are exactly a lone wait's. Polls may be held back to share a
  request, never brought forward (the fleet's rule).
- Each caller keeps its own result, error and hooks: the driver only appends what the
  fleet says about the caller's job (``StatusChanged``, ``Finished``) to the caller's
  inbox and wakes it; the caller's own task calls its ``on_status``, runs its ``cancel``
  on a timeout, and returns or raises. User code never runs in the driver.
- Each caller keeps its own cancellation: a cancelled caller leaves
  (``JobFleet.discard``), runs its own ``cancel`` shielded as a lone wait does, and
  re-raises; nobody else notices. When the fleet has nothing left (``AllDone``) the
  driver unregisters the scheduler and ends; the next caller starts a new one.
- The driver runs as a background task that belongs to no caller (asyncio: a task of
  the loop; trio: a system task), so no caller's cancellation or return can cut a
  request that others wait for. It never raises into the loop: anything unexpected is
  handed to every caller as its error.

A caller whose options the fleet cannot honour per job (its own ``clock``, ``sleep``,
classifiers, hooks other than ``on_status``, a second concurrent wait for the same job id)
waits alone instead: :func:`shareable` says which options can be shared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping
from typing import Any, Final

from jobwait import (
    AllDone,
    Fetched,
    Finished,
    FleetSleep,
    JobFleet,
    PollBatch,
    StatusChanged,
    is_retryable,
)
from jobwait._plumbing import (
    JOB_OPTIONS,
    batch_failed,
    batch_observed,
    make_fleet,
    retry_after_of,
    single_job,
)

from ._async_loop import Event, Runtime, current_runtime

__all__ = [
    "ALONE",
    "SHARED_FLEET_DEFAULTS",
    "URL_FLEET_DEFAULTS",
    "Scheduler",
    "join",
    "join_url",
    "shareable",
    "sharing",
    "url_shareable",
]

FetchMany = Callable[[tuple[str, ...]], Awaitable[Any]]
FetchOne = Callable[[], Awaitable[Any]]

#: The scheduler's own options when the caller gives none: up to 100 ids per request,
#: polls due within 100 ms of each other share one, at most 10 requests in flight.
SHARED_FLEET_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_batch": 100,
    "batch_window": 0.1,
    "max_concurrency": 10,
    "max_polls_per_second": None,
}
# Options a caller may pass that the driver honours per caller (hooks) or per scheduler
# (classifiers: callers passing the same ones share one scheduler).
_CALLER_OPTIONS: Final = frozenset(
    {"on_status", "cancel", "cancel_grace", "is_retryable", "retry_after_of"}
)


def shareable(options: Mapping[str, Any]) -> bool:
    """Whether a wait with these options can join a shared scheduler: every option is a
    per-job waiter option, a hook the driver honours per caller (``on_status``,
    ``cancel``, ``cancel_grace``) or a classifier (``is_retryable``, ``retry_after_of``)."""
    return all(name in JOB_OPTIONS or name in _CALLER_OPTIONS for name in options)


class _Caller:
    """One waiting call: what the driver hands it, and the event that wakes it."""

    __slots__ = ("event", "inbox")

    def __init__(self, event: Event) -> None:
        self.event = event
        # A list, not a deque: it holds one or two items, and costs 56 B, not 624 B.
        self.inbox: list[StatusChanged | Finished | BaseException | object] = []


class _Waiting(asyncio.Future[Any]):
    """What a bare caller awaits: resolved by the driver with the job, its error or
    :data:`ALONE`; cancelled with the caller's task, it takes the job out of the fleet.
    A future of its own kind, not a done-callback, because memory per waiting call is a
    benchmark target (a callback costs a partial, a context and a list per call)."""

    __slots__ = ("_job_id", "_scheduler")

    def __init__(self, scheduler: Scheduler, job_id: str) -> None:
        super().__init__(loop=scheduler.loop)
        self._scheduler = scheduler
        self._job_id = job_id

    def cancel(self, msg: Any = None) -> bool:
        cancelled = super().cancel(msg=msg)
        if cancelled:
            self._scheduler.leave(self._job_id, self)
        return cancelled


class _Loop:
    """What the driver needs from the running event loop: its :class:`Runtime`, a token
    that tells loops apart, how to start a task that belongs to no caller, and the
    one-shot event each caller waits on."""

    __slots__ = ("rt", "signal", "spawn", "token")

    def __init__(self) -> None:
        rt = current_runtime()
        self.rt: Runtime = rt
        self.token: object = rt.loop_token()
        self.spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] = rt.spawn_system
        self.signal: Callable[[], Event] = rt.signal


_SCHEDULERS: dict[tuple[int, int, Hashable], Scheduler] = {}


class Scheduler:
    """The shared scheduler of one client on one event loop (see the module theory)."""

    __slots__ = (
        "_callers",
        "_client",
        "_confirm",
        "_fetch_many",
        "_fetchers",
        "_fleet",
        "_is_retryable",
        "_key",
        "_loop",
        "_retry_after_of",
        "_task",
        "_wake",
    )

    def __init__(
        self,
        key: tuple[int, int, Hashable],
        client: object,
        loop: _Loop,
        fetch_many: FetchMany | None,
        fleet_options: Mapping[str, Any],
        is_retryable: Callable[[BaseException], bool] = is_retryable,
        retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
        confirm: Callable[[str], Awaitable[Any]] | None = None,
    ) -> None:
        self._key = key
        self._confirm = confirm
        self._is_retryable = is_retryable
        self._retry_after_of = retry_after_of
        self._fetchers: dict[str, FetchOne] = {}
        self._client = client  # keeps id(client) in the key unique while registered
        self._loop = loop
        self._fetch_many = fetch_many
        self._fleet: JobFleet = make_fleet(fleet_options, report_status=True)
        self._callers: dict[str, _Caller | _Waiting] = {}
        self._wake: Event = loop.rt.event()
        self._task: object = None

    @property
    def fleet(self) -> JobFleet:
        """The fleet that decides (for tests and diagnostics)."""
        return self._fleet

    def enter(
        self,
        job_id: str,
        options: Mapping[str, Any],
        fetch: FetchOne | None,
        on_status: Callable[[Any, str], object] | None,
        cancel: Callable[[], Awaitable[object]] | None,
        cancel_grace: float,
    ) -> Awaitable[Any] | object:
        """:meth:`join`, then what the caller awaits (or :data:`ALONE` at once): a bare
        future under asyncio without hooks, else :meth:`wait`."""
        bare = on_status is None and cancel is None and self._loop.rt.bare_futures
        caller = self.join(job_id, options, fetch, bare=bare)
        if caller is None:
            return ALONE
        if isinstance(caller, _Caller):
            return self.wait(job_id, caller, on_status, cancel, cancel_grace)
        return caller

    def waiting(self, job_id: str) -> bool:
        """Whether a caller already waits for ``job_id`` here."""
        return job_id in self._callers

    def join(
        self,
        job_id: str,
        options: Mapping[str, Any],
        fetch: FetchOne | None = None,
        *,
        bare: bool = False,
    ) -> _Caller | _Waiting | None:
        """Add ``job_id`` with its own waiter ``options`` (``fetch``: its own fetch, for a
        scheduler without a batch read); ``None`` if a caller already waits for it.

        A ``bare`` caller (asyncio, no hooks) gets one future that resolves to the job,
        its error or :data:`ALONE`, and leaves when it is cancelled: nothing else is
        kept per waiting call. Others get a :class:`_Caller` for :meth:`wait`.

        Raises:
            ValueError, TypeError: Invalid waiter options (nothing is added).
        """
        if job_id in self._callers:
            return None
        loop = self._loop
        try:
            self._fleet.add((job_id,), now=loop.rt.clock(), options=options)
        except BaseException:
            if not self._callers:
                self._close()  # a scheduler made for this call alone: drop it
            raise
        caller: _Caller | _Waiting
        if bare:
            caller = _Waiting(self, job_id)
        else:
            caller = _Caller(loop.signal())
        self._callers[job_id] = caller
        if fetch is not None:
            self._fetchers[job_id] = fetch
        if self._task is None:
            self._task = loop.spawn(self._drive)
        self._wake.set()
        return caller

    async def wait(
        self,
        job_id: str,
        caller: _Caller,
        on_status: Callable[[Any, str], object] | None,
        cancel: Callable[[], Awaitable[object]] | None,
        cancel_grace: float,
    ) -> Any:
        """The joined caller's wait: return the final job or raise its error, exactly as
        a lone wait would, polls possibly held back.

        Raises:
            JobWaitError: The job's own error (failed, timed out, fetch error, ...).
        """
        loop = self._loop
        rt = loop.rt
        try:
            while True:
                await caller.event.wait()
                caller.event = loop.signal()
                while caller.inbox:
                    item = caller.inbox.pop(0)
                    if isinstance(item, StatusChanged):
                        if on_status is not None:
                            result = on_status(item.job, item.status)
                            if isinstance(result, Awaitable):
                                await result
                    elif item is ALONE:
                        return ALONE  # finish alone: see _confirmed
                    elif isinstance(item, Finished):
                        outcome = item.outcome
                        if not isinstance(outcome, BaseException):
                            return outcome
                        if item.cancel_job and cancel is not None:
                            await rt.run_cancel(cancel, outcome, cancel_grace)
                        raise outcome
                    else:
                        assert isinstance(item, BaseException)
                        raise item
        except rt.interrupts as interrupt:
            self._leave(job_id, caller)
            if cancel is not None:
                await rt.run_cancel(cancel, interrupt, cancel_grace)
            raise
        finally:
            self._leave(job_id, caller)

    @property
    def loop(self) -> Any:
        """The asyncio event loop (asyncio schedulers only)."""
        return self._loop.token

    def leave(self, job_id: str, caller: _Caller | _Waiting) -> None:
        """``caller`` stops waiting for ``job_id`` (cancelled, or done)."""
        self._leave(job_id, caller)

    def _leave(self, job_id: str, caller: _Caller | _Waiting) -> None:
        # A job that finished is no longer in the fleet: discarding it is a no-op.
        if self._callers.get(job_id) is caller:
            del self._callers[job_id]
            self._fetchers.pop(job_id, None)
            if self._fleet.discard((job_id,), now=self._loop.rt.clock()):
                self._wake.set()
            if not self._callers:
                # Unregister with the last caller, not only when the driver sees AllDone:
                # a loop that ends now may never run the driver again.
                self._close()

    def _deliver(
        self, job_id: str, item: StatusChanged | Finished | BaseException | object
    ) -> None:
        caller = self._callers.get(job_id)
        if caller is None:
            return
        if isinstance(caller, _Caller):
            caller.inbox.append(item)
            caller.event.set()
        elif not caller.done():
            if not isinstance(item, StatusChanged):
                self._leave(job_id, caller)  # resolved now: no callback will say so
            if isinstance(item, Finished):
                item = item.outcome
            elif isinstance(item, StatusChanged):
                return  # a bare caller has no on_status
            if isinstance(item, BaseException):
                caller.set_exception(item)
            else:
                caller.set_result(item)

    def _close(self) -> None:
        if _SCHEDULERS.get(self._key) is self:
            del _SCHEDULERS[self._key]

    async def _poll(self, ids: tuple[str, ...]) -> None:
        fleet = self._fleet
        clock = self._loop.rt.clock
        alone: tuple[str, ...] = ()
        try:
            if self._fetch_many is None:  # one job per request (max_batch=1)
                fetch = self._fetchers.get(ids[0])
                # None: its caller left since; the fleet ignores its report.
                result = {} if fetch is None else single_job(ids[0], await fetch())
            else:
                result = await self._fetch_many(ids)
                result, alone = await self._confirmed(ids, result)
        except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
            error = batch_failed(ids, exc, clock(), self._is_retryable, self._retry_after_of)
            fleet.handle(error)
        else:
            fleet.handle(batch_observed(ids, result, clock()))
            if alone and fleet.discard(alone, now=clock()):
                for job_id in alone:
                    self._deliver(job_id, ALONE)
        self._wake.set()

    async def _confirmed(self, ids: tuple[str, ...], result: Any) -> tuple[Any, tuple[str, ...]]:
        """A batch answer that leaves jobs out says nothing about why. Ask for each one
        alone (``confirm(id)``, the lone wait's own request): an answer joins the batch's;
        an error retrying cannot fix (a 404 for an unknown id, ...) sends its caller to
        wait alone, so it gets the very error a lone wait gets; anything else leaves the
        job missing (a retryable miss for its waiter)."""
        confirm = self._confirm
        fetched = result if isinstance(result, Fetched) else None
        jobs = result.job if fetched is not None else result
        missing = [job_id for job_id in ids if job_id not in jobs]
        if confirm is None or not missing:
            return result, ()
        found = dict(jobs)
        alone: list[str] = []
        for job_id in missing:
            try:
                job = await confirm(job_id)
            except Exception as exc:  # noqa: BLE001 - classified by the core's rule
                if not self._is_retryable(exc):
                    alone.append(job_id)
            else:
                found[job_id] = job.job if isinstance(job, Fetched) else job
        hint = None if fetched is None else fetched.retry_after
        return Fetched(found, retry_after=hint), tuple(alone)

    async def _nap(self, seconds: float, event: Event) -> None:
        if not event.is_set():
            await self._loop.rt.sleep(seconds)
            event.set()

    async def _drive(self) -> None:
        loop = self._loop
        fleet = self._fleet
        try:
            async with loop.rt.group() as group:
                while True:
                    self._wake = current = loop.rt.event()
                    action = fleet.next_action(loop.rt.clock())
                    if isinstance(action, PollBatch):
                        group.start(self._poll, action.ids)
                    elif isinstance(action, StatusChanged | Finished):
                        self._deliver(action.job_id, action)
                    elif isinstance(action, FleetSleep):
                        seconds = action.seconds
                        stop = None if seconds is None else group.start(self._nap, seconds, current)
                        await current.wait()
                        if stop is not None:
                            stop()
                    elif isinstance(action, AllDone):
                        self._close()  # at once: a caller arriving now starts a new one
                        return
                    else:  # CancelJobs / Raise come only with fail_fast, never set here
                        raise TypeError(f"unexpected fleet action {action!r}")
        except Exception as exc:  # noqa: BLE001 - handed to every caller, never lost
            self._close()
            for job_id in list(self._callers):
                self._deliver(job_id, exc)
        except BaseException:
            self._close()
            raise


#: What :func:`join` and :func:`join_url` return when the call should wait alone.
ALONE: Final = object()


def _scheduler(
    kind: str,
    client: Any,
    fleet_options: Mapping[str, Any],
    fetch_many_for: Callable[[Any], FetchMany] | None,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
    confirm_for: Callable[[Any], Callable[[str], Awaitable[Any]]] | None = None,
) -> Scheduler:
    loop = _Loop()
    options_key = (kind, tuple(sorted(fleet_options.items())), is_retryable, retry_after_of)
    key = (id(client), id(loop.token), options_key)
    scheduler = _SCHEDULERS.get(key)
    if scheduler is None:
        fetch_many = None if fetch_many_for is None else fetch_many_for(client)
        confirm = None if confirm_for is None else confirm_for(client)
        scheduler = Scheduler(
            key, client, loop, fetch_many, fleet_options, is_retryable, retry_after_of, confirm
        )
        _SCHEDULERS[key] = scheduler
    return scheduler


def join(
    client: Any,
    job_id: str,
    options: Mapping[str, Any],
    *,
    fetch_many_for: Callable[[Any], FetchMany],
    confirm_for: Callable[[Any], Callable[[str], Awaitable[Any]]] | None = None,
    fleet_options: Mapping[str, Any] = SHARED_FLEET_DEFAULTS,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
) -> Awaitable[Any] | object:
    """Join ``job_id`` (its own waiter ``options``) to the shared scheduler of
    ``client`` on this event loop, made on first use with ``fetch_many_for(client)`` as
    its batch read, ``confirm_for(client)`` as the single read of a job a batch left
    out, and ``fleet_options``. Returns the wait to await, or :data:`ALONE` (nothing
    joined) when another caller already waits for the same id there. The wait itself
    returns :data:`ALONE` when a batch left the job out and its single read failed in
    a way retrying cannot fix: then wait alone, to end as a lone wait ends.

    A plain function, so the options are handed over before anything waits and no
    frame keeps them: memory per waiting call is a benchmark target.

    Raises:
        RuntimeError: Outside asyncio and trio.
        ValueError, TypeError: Invalid waiter options.
    """
    scheduler = _scheduler(
        "batch", client, fleet_options, fetch_many_for, is_retryable, retry_after_of, confirm_for
    )
    return scheduler.enter(job_id, options, None, on_status, cancel, cancel_grace)


#: The scheduler options of shared URL waits: one job per request, at most 10 in flight.
URL_FLEET_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_batch": 1,
    "batch_window": 0.0,
    "max_concurrency": 10,
    "max_polls_per_second": None,
}
_URL_SHARING: Final = frozenset({"max_polls_per_second", "max_concurrency", "max_batch_errors"})


def sharing(shared: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The scheduler options of ``shared=`` given as a mapping, over ``defaults``.

    Raises:
        TypeError: An option that is not a scheduler option.
    """
    allowed = (
        _URL_SHARING
        if defaults is URL_FLEET_DEFAULTS
        else {*_URL_SHARING, "max_batch", "batch_window"}
    )
    unknown = sorted(set(shared) - allowed)
    if unknown:
        raise TypeError(
            f"shared= takes the scheduler options {sorted(allowed)}, not {unknown[0]!r}"
        )
    return {**defaults, **shared}


def url_shareable(**arguments: object) -> bool:
    """Whether an ``async_wait_for_url`` call can share: none of its ``waiter``,
    ``clock``, ``sleep``, ``on_poll``, ``wakeup`` is given (the scheduler runs on the
    runtime's own clock and has no per-poll or push hook yet)."""
    return all(value is None for value in arguments.values())


def join_url(
    client: Any,
    url: str,
    shared: bool | Mapping[str, Any],
    fetch: FetchOne,
    options: Mapping[str, Any],
    *,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
) -> Awaitable[Any] | object:
    """Join the job behind ``url`` to the shared URL scheduler of ``client`` on this
    event loop: one ``fetch()`` per poll, at most ``max_concurrency`` in flight for
    every caller together. The job is known by its ``job_id`` option, else by its URL.
    Returns the wait to await, or :data:`ALONE` (nothing joined) when another caller
    already waits for the same job there.

    Raises:
        TypeError: ``shared`` names an option that is not a scheduler option, or an
            invalid waiter option.
        ValueError: An invalid waiter option.
    """
    fleet_options = (
        URL_FLEET_DEFAULTS if isinstance(shared, bool) else sharing(shared, URL_FLEET_DEFAULTS)
    )
    key = options.get("job_id") or url
    scheduler = _scheduler("url", client, fleet_options, None, is_retryable, retry_after_of)
    # A caller's profile (api=) goes with its options: the fleet merges it per job.
    job_options = {k: v for k, v in options.items() if k in JOB_OPTIONS or k == "api"}
    return scheduler.enter(key, job_options, fetch, on_status, cancel, cancel_grace)
