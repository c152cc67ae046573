"""One shared scheduler per client and event loop: concurrent async waits share requests.

Theory of operation
===================

``asyncio.gather(*(async_wait_for_job(client, i) for i in ids))`` (or a trio nursery)
starts thousands of independent waits on one client. Alone, each would poll on its own
schedule and queue its own request into one connection pool. Shared, they join one
:class:`Scheduler` for that client and event loop: every waiting job is one entry of one
:class:`~jobwait.JobFleet`, driven by the core's :class:`~jobwait._plumbing.FleetDriver`
step through the async fleet loop every fleet driver runs
(:func:`~jobwait.adapters._runtime.loop.run_fleet`); this module only routes each job's
news to the caller that waits for it.

Sharing changes how many requests are sent, and nothing else a caller sees:

- Each caller keeps its own rules: its options become its job's own waiter inside the
  fleet (``JobFleet.add(..., options=...)``): its timeout, schedule,
  ``raise_on_failure``, statuses and ``max_fetch_errors``. The fleet runs with
  ``max_batch_errors=None``: a failed request is a failed poll of every job it carried,
  counted against each one's own budget and in its ``polls``, as a failed GET of a lone
  wait is. Polls may be held back to share a request (at most ``batch_window``), never
  brought forward.
- A lone wait sends exactly its own request: a poll of one job alone is a single read
  (``GET /jobs/{id}``), and batch reads start only when two or more jobs are due
  together. A job nearer its deadline than one request may take goes out alone, so each
  request is bounded by its jobs' own time left (``request_timeout``). A batch answer the
  API cannot give (404, 405, 400, 501, another shape) switches this scheduler to single
  reads for its lifetime; a job a batch answer leaves out is read alone, so an unknown id
  ends as it ends alone. The core decides all of this (``FleetDriver``).
- Each caller keeps its own hooks and results: the driver only appends what the fleet
  says about the caller's job (``StatusChanged``, ``PollReport``, ``Finished``) to the
  caller's inbox and wakes it; the caller's own task calls its ``on_status`` and
  ``on_poll``, runs its ``cancel`` on a timeout, and returns or raises. User code never
  runs in the driver. A caller's ``wakeup`` is a push for its job (``Nudged``).
- Each caller keeps its own cancellation: a cancelled caller leaves
  (``JobFleet.discard``), runs its own ``cancel`` shielded as a lone wait does, and
  re-raises; nobody else notices. When the fleet has nothing left (``AllDone``) the
  scheduler unregisters and its driver ends; the next caller starts a new one.
- The driver runs as a task that belongs to no caller (asyncio: a task of the loop;
  trio: a system task), so no caller's cancellation or return can cut a request that
  others wait for. It never raises into the loop: anything unexpected is handed to
  every caller as its error.

A caller that brings its own ``clock``, ``sleep`` or ``waiter``, or waits for a job id
another caller on this client already waits for, waits alone (:func:`shareable`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator, Mapping
from typing import Any, Final

from jobwait import (
    AllDone,
    Finished,
    JobFleet,
    Nudged,
    PollReport,
    StatusChanged,
    Wakeup,
    is_retryable,
)
from jobwait._plumbing import (
    JOB_OPTIONS,
    FleetDriver,
    Read,
    Reads,
    Step,
    Subscription,
    make_fleet,
    retry_after_of,
)

from .loop import Alarm, Event, Parked, Runtime, current_runtime, run_fleet

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

ReadBatch = Callable[[tuple[str, ...], float | None], Awaitable[Any]]
ReadOne = Callable[[str, float | None], Awaitable[Any]]
OwnRead = Callable[[float | None], Awaitable[Any]]

#: The scheduler's own options when the caller gives none: up to 100 ids per request,
#: polls due within 100 ms of each other share one, at most 10 requests in flight, and
#: every job keeps its own error budget (``max_batch_errors=None``).
SHARED_FLEET_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_batch": 100,
    "batch_window": 0.1,
    "max_concurrency": 10,
    "max_polls_per_second": None,
    "max_batch_errors": None,
}
# Options a caller may pass that the scheduler honours per caller (hooks, pushes) or
# per scheduler (classifiers: callers passing the same ones share one scheduler).
_CALLER_OPTIONS: Final = frozenset(
    {
        "on_status",
        "on_poll",
        "wakeup",
        "cancel",
        "cancel_grace",
        "is_retryable",
        "retry_after_of",
    }
)


def shareable(options: Mapping[str, Any]) -> bool:
    """Whether a wait with these options can join a shared scheduler: every option is a
    per-job waiter option, a hook or push the scheduler honours per caller
    (``on_status``, ``on_poll``, ``wakeup``, ``cancel``, ``cancel_grace``) or a
    classifier (``is_retryable``, ``retry_after_of``)."""
    return all(name in JOB_OPTIONS or name in _CALLER_OPTIONS for name in options)


class _Caller:
    """One waiting call with hooks, a push or its own read: its hooks, what the
    driver hands it, and the event that wakes it."""

    __slots__ = (
        "cancel",
        "cancel_grace",
        "event",
        "inbox",
        "job_id",
        "on_poll",
        "on_status",
        "subscription",
    )

    def __init__(
        self,
        job_id: str,
        event: Event,
        on_status: Callable[[Any, str], object] | None,
        on_poll: Callable[[PollReport], object] | None,
        cancel: Callable[[], Awaitable[object]] | None,
        cancel_grace: float,
    ) -> None:
        self.job_id = job_id
        self.event = event
        self.on_status = on_status
        self.on_poll = on_poll
        self.cancel = cancel
        self.cancel_grace = cancel_grace
        self.subscription: Subscription | None = None
        # A list, not a deque: it holds one or two items, and costs 56 B, not 624 B.
        self.inbox: list[StatusChanged | PollReport | Finished | BaseException] = []


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
        "_alarm",
        "_callers",
        "_client",
        "_driver",
        "_key",
        "_loop",
        "_own_reads",
        "_read_batch",
        "_read_one",
        "_rung",
        "_task",
        "_unpark",
    )

    def __init__(
        self,
        key: tuple[int, int, Hashable],
        client: object,
        loop: _Loop,
        *,
        reads: Reads,
        read_batch: ReadBatch | None,
        read_one: ReadOne | None,
        fleet_options: Mapping[str, Any],
        is_retryable: Callable[[BaseException], bool] = is_retryable,
        retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    ) -> None:
        self._key = key
        self._client = client  # keeps id(client) in the key unique while registered
        self._loop = loop
        self._read_batch = read_batch
        self._read_one = read_one
        # Reads of their own (URL waits: each caller's GET of its own URL).
        self._own_reads: dict[str, OwnRead] = {}
        fleet = make_fleet(fleet_options, report_status=True, report_polls=True)
        self._driver = FleetDriver(
            fleet, reads=reads, is_retryable=is_retryable, retry_after_of=retry_after_of
        )
        self._callers: dict[str, _Caller | Parked] = {}
        self._alarm = Alarm(loop.rt)
        self._rung: list[_Caller] = []  # callers whose Wakeup rang since the last round
        self._task: object = None
        # One bound method for every parked caller (a new one per call costs memory).
        self._unpark = self._leave_parked

    @property
    def fleet(self) -> JobFleet:
        """The fleet that decides (for tests and diagnostics)."""
        return self._driver.fleet

    @property
    def loop(self) -> Any:
        """The asyncio event loop (asyncio schedulers only)."""
        return self._loop.token

    def enter(
        self,
        job_id: str,
        options: Mapping[str, Any],
        own_read: OwnRead | None,
        *,
        on_status: Callable[[Any, str], object] | None,
        on_poll: Callable[[PollReport], object] | None,
        cancel: Callable[[], Awaitable[object]] | None,
        cancel_grace: float,
        wakeup: Wakeup | None,
    ) -> Awaitable[Any] | object:
        """Add ``job_id`` with its own waiter ``options`` (``own_read``: its own read,
        for a scheduler of one-job reads) and return what the caller awaits: the final
        job, or its error raised, exactly as a lone wait would end. :data:`ALONE` (nothing
        added) when a caller already waits for ``job_id`` here.

        A caller with no hooks and no push gets the runtime's parked future, where it
        has one (asyncio): it resolves to the job or its error, and leaves when it is
        cancelled; nothing else is kept per waiting call. Others get :meth:`wait`.

        Raises:
            ValueError, TypeError: Invalid waiter options (nothing is added).
        """
        if job_id in self._callers:
            return ALONE
        loop = self._loop
        try:
            self.fleet.add((job_id,), now=loop.rt.clock(), options=options)
        except BaseException:
            if not self._callers:
                self._close()  # a scheduler made for this call alone: drop it
            raise
        if own_read is not None:
            self._own_reads[job_id] = own_read
        bare = on_status is None and on_poll is None and cancel is None and wakeup is None
        parked = loop.rt.park(self._unpark, job_id) if bare else None
        caller: _Caller | Parked
        if parked is not None:
            caller = parked
            self._callers[job_id] = caller
            result: Awaitable[Any] = caller
        else:
            caller = _Caller(job_id, loop.signal(), on_status, on_poll, cancel, cancel_grace)
            self._callers[job_id] = caller
            if wakeup is not None:
                ring = self._ringer(caller)
                caller.subscription = wakeup.subscribe(loop.rt.threadsafe(ring), job_id=job_id)
            result = self.wait(caller)
        if self._task is None:
            self._task = loop.spawn(self._drive)
        self._alarm.set()
        return result

    def _ringer(self, caller: _Caller) -> Callable[[], None]:
        def ring() -> None:  # in the loop, after the caller's Wakeup woke its job
            self._rung.append(caller)
            self._alarm.set()

        return ring

    def _nudges(self, now: float) -> Iterator[Nudged]:
        rung = self._rung
        if not rung:
            return
        self._rung = []
        for caller in rung:
            subscription = caller.subscription
            # A wake for a caller that left is dropped (its subscription is closed).
            if subscription is not None and subscription.take():
                yield Nudged(now=now, job_id=caller.job_id)

    async def wait(self, caller: _Caller) -> Any:
        """The joined caller's wait: its hooks called in its own task, then the final
        job returned or its error raised, exactly as a lone wait would.

        Raises:
            JobWaitError: The job's own error (failed, timed out, fetch error, ...).
        """
        loop = self._loop
        rt = loop.rt
        try:
            while True:
                await caller.event.wait()
                caller.event = loop.signal()
                inbox = caller.inbox
                while inbox:
                    item = inbox.pop(0)
                    if isinstance(item, StatusChanged):
                        await _call(caller.on_status, item.job, item.status)
                    elif isinstance(item, PollReport):
                        await _call(caller.on_poll, item)
                    elif isinstance(item, Finished):
                        outcome = item.outcome
                        if not isinstance(outcome, BaseException):
                            return outcome
                        if item.cancel_job and caller.cancel is not None:
                            await rt.run_cancel(caller.cancel, outcome, caller.cancel_grace)
                        raise outcome
                    else:
                        raise item
        except rt.interrupts as interrupt:
            self._leave(caller.job_id, caller)
            if caller.cancel is not None:
                await rt.run_cancel(caller.cancel, interrupt, caller.cancel_grace)
            raise
        finally:
            self._leave(caller.job_id, caller)

    def leave(self, job_id: str, caller: _Caller | Parked) -> None:
        """``caller`` stops waiting for ``job_id`` (cancelled, or done)."""
        self._leave(job_id, caller)

    def _leave_parked(self, job_id: str) -> None:
        # A parked caller was cancelled: its job leaves the fleet.
        caller = self._callers.get(job_id)
        if caller is not None and not isinstance(caller, _Caller):
            self._leave(job_id, caller)

    def _leave(self, job_id: str, caller: _Caller | Parked) -> None:
        # A job that finished is no longer in the fleet: discarding it is a no-op.
        if self._callers.get(job_id) is caller:
            del self._callers[job_id]
            self._own_reads.pop(job_id, None)
            if isinstance(caller, _Caller) and caller.subscription is not None:
                caller.subscription.close()
            if self.fleet.discard((job_id,), now=self._loop.rt.clock()):
                self._alarm.set()
            if not self._callers:
                # Unregister with the last caller, not only when the driver sees AllDone:
                # a loop that ends now may never run the driver again.
                self._close()

    def _on_action(self, action: Step) -> None:
        # What the fleet says about a job goes to its caller; the driver runs no hook.
        if isinstance(action, StatusChanged | PollReport | Finished):
            job_id = action.job_id
            assert job_id is not None
            caller = self._callers.get(job_id)
            if caller is None:
                return
            if isinstance(caller, _Caller):
                if isinstance(action, StatusChanged):
                    if caller.on_status is None:
                        return
                elif isinstance(action, PollReport) and caller.on_poll is None:
                    return
                caller.inbox.append(action)
                caller.event.set()
            elif isinstance(action, Finished) and not caller.done():
                self._leave(job_id, caller)  # resolved now: no callback will say so
                self._resolve(caller, action.outcome)
        elif isinstance(action, AllDone):
            self._close()  # at once: a caller arriving now starts a new scheduler
        else:  # CancelJobs / Raise come only with fail_fast, never set here
            raise TypeError(f"unexpected fleet action {action!r}")

    @staticmethod
    def _resolve(caller: Parked, outcome: Any) -> None:
        if isinstance(outcome, BaseException):
            caller.set_exception(outcome)
        else:
            caller.set_result(outcome)

    def _close(self) -> None:
        if _SCHEDULERS.get(self._key) is self:
            del _SCHEDULERS[self._key]

    async def _read(self, read: Read) -> Any:
        if read.batch:
            assert self._read_batch is not None
            return await self._read_batch(read.ids, read.time_left)
        job_id = read.ids[0]
        own = self._own_reads.get(job_id)
        if own is not None:
            return await own(read.time_left)
        if self._read_one is None:
            return None  # its caller left since: the fleet ignores the report
        return await self._read_one(job_id, read.time_left)

    async def _drive(self) -> None:
        rt = self._loop.rt
        try:
            await run_fleet(
                self._driver,
                self._read,
                rt=rt,
                clock=rt.clock,
                sleep=None,
                on_action=self._on_action,
                alarm=self._alarm,
                nudges=self._nudges,
            )
        except Exception as exc:  # noqa: BLE001 - handed to every caller, never lost
            self._close()
            for job_id, caller in list(self._callers.items()):
                if isinstance(caller, _Caller):
                    caller.inbox.append(exc)
                    caller.event.set()
                elif not caller.done():
                    self._leave(job_id, caller)
                    caller.set_exception(exc)
        except BaseException:
            self._close()
            raise


async def _call(fn: Callable[..., object] | None, *args: Any) -> None:
    if fn is None:
        return
    result = fn(*args)
    if isinstance(result, Awaitable):
        await result


#: What :func:`join` and :func:`join_url` return when the call should wait alone.
ALONE: Final = object()


def _scheduler(
    kind: str,
    client: Any,
    fleet_options: Mapping[str, Any],
    *,
    reads: Reads,
    read_batch_for: Callable[[Any], ReadBatch] | None,
    read_one_for: Callable[[Any], ReadOne] | None,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
) -> Scheduler:
    loop = _Loop()
    options_key = (kind, tuple(sorted(fleet_options.items())), is_retryable, retry_after_of)
    key = (id(client), id(loop.token), options_key)
    scheduler = _SCHEDULERS.get(key)
    if scheduler is None:
        scheduler = Scheduler(
            key,
            client,
            loop,
            reads=reads,
            read_batch=None if read_batch_for is None else read_batch_for(client),
            read_one=None if read_one_for is None else read_one_for(client),
            fleet_options=fleet_options,
            is_retryable=is_retryable,
            retry_after_of=retry_after_of,
        )
        _SCHEDULERS[key] = scheduler
    return scheduler


def join(
    client: Any,
    job_id: str,
    options: Mapping[str, Any],
    *,
    read_batch_for: Callable[[Any], ReadBatch],
    read_one_for: Callable[[Any], ReadOne],
    fleet_options: Mapping[str, Any] = SHARED_FLEET_DEFAULTS,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
) -> Awaitable[Any] | object:
    """Join ``job_id`` (its own waiter ``options``) to the shared scheduler of
    ``client`` on this event loop, made on first use with ``read_batch_for(client)``
    (``(ids, time_left) ->`` a mapping of id to job) and ``read_one_for(client)``
    (``(job_id, time_left) ->`` the job: the lone wait's own request) as its reads, and
    ``fleet_options``. Returns the wait to await, or :data:`ALONE` (nothing joined) when
    another caller already waits for the same id there.

    A plain function, so the options are handed over before anything waits and no
    frame keeps them: memory per waiting call is a benchmark target.

    Raises:
        RuntimeError: Outside asyncio and trio.
        ValueError, TypeError: Invalid waiter options.
    """
    scheduler = _scheduler(
        "batch",
        client,
        fleet_options,
        reads="both",
        read_batch_for=read_batch_for,
        read_one_for=read_one_for,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
    )
    return scheduler.enter(
        job_id,
        options,
        None,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        wakeup=wakeup,
    )


#: The scheduler options of shared URL waits: one job per request, at most 10 in
#: flight, each job with its own error budget.
URL_FLEET_DEFAULTS: Final[Mapping[str, Any]] = {
    "max_batch": 1,
    "batch_window": 0.0,
    "max_concurrency": 10,
    "max_polls_per_second": None,
    "max_batch_errors": None,
}
_URL_SHARING: Final = frozenset({"max_polls_per_second", "max_concurrency"})


def sharing(shared: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The scheduler options of ``shared=`` given as a mapping, over ``defaults``.

    Raises:
        TypeError: An option that is not a scheduler option (``max_batch_errors`` is a
            fleet option: a shared wait counts failures against its own
            ``max_fetch_errors``).
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
            + (
                " (a shared wait counts each failed request against its own "
                "max_fetch_errors, as a lone wait does)"
                if unknown[0] == "max_batch_errors"
                else ""
            )
        )
    return {**defaults, **shared}


def url_shareable(**arguments: object) -> bool:
    """Whether an ``async_wait_for_url`` call can share: none of its ``waiter``,
    ``clock``, ``sleep`` is given (the scheduler runs on the runtime's own clock)."""
    return all(value is None for value in arguments.values())


def join_url(
    client: Any,
    url: str,
    shared: bool | Mapping[str, Any],
    read: OwnRead,
    options: Mapping[str, Any],
    *,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
) -> Awaitable[Any] | object:
    """Join the job behind ``url`` to the shared URL scheduler of ``client`` on this
    event loop: one ``read(time_left)`` per poll, at most ``max_concurrency`` in flight
    for every caller together. The job is known by its ``job_id`` option, else by its
    URL. Returns the wait to await, or :data:`ALONE` (nothing joined) when another caller
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
    scheduler = _scheduler(
        "url",
        client,
        fleet_options,
        reads="single",
        read_batch_for=None,
        read_one_for=None,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
    )
    # A caller's profile (api=) goes with its options: the fleet merges it per job.
    job_options = {k: v for k, v in options.items() if k in JOB_OPTIONS or k == "api"}
    return scheduler.enter(
        key,
        job_options,
        read,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        wakeup=wakeup,
    )
