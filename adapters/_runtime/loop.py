"""The async driver loops, shared by the asyncio and trio adapters.

Each runtime adapter supplies only what differs between runtimes, as a
:class:`Runtime`: its cancellation exceptions, how to run the ``cancel=`` callback
shielded from that cancellation, and a task group. The loops perform the core's
actions (``JobWaiter``'s for one job, ``JobFleet``'s for many) and nothing else.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Protocol

from jobwait import (
    AllDone,
    ApiProfile,
    CancelJobs,
    Done,
    Fetched,
    FetchFailed,
    Finished,
    FleetSleep,
    JobFleet,
    JobWaiter,
    Nudged,
    Observed,
    Poll,
    PollReport,
    Raise,
    Sleep,
    Start,
    StatusChanged,
    Wakeup,
    Woke,
    fetch_failed,
    is_retryable,
    observed,
)
from jobwait._plumbing import (
    FleetDriver,
    Read,
    Reads,
    Step,
    Subscription,
    awaitable,
    cancel_failed,
    check_fetch,
    make_fleet,
    make_waiter,
    poll_report,
    retry_after_of,
    with_api,
)

AsyncCancel = Callable[[], Awaitable[object]]


FetchMany = Callable[[tuple[str, ...]], Awaitable[Mapping[str, Any] | Fetched]]
FetchOne = Callable[[str], Awaitable[Any]]


AsyncRead = Callable[[Read], Awaitable[Any]]


def fleet_for(
    fetch_many: FetchMany | None,
    fetch_one: FetchOne | None,
    on_status: object,
    on_poll: object,
    options: Mapping[str, Any],
    where: str = "wait_all",
) -> tuple[JobFleet, AsyncRead, Reads]:
    """The fleet an async fleet driver runs, how it reads (``Read`` -> awaitable), and
    what its source can read, from the driver's arguments.

    Raises:
        TypeError: Both or neither of ``fetch_many`` and ``fetch_one``, one that is not
            callable, or an invalid fleet option (from ``make_fleet``).
        ValueError: An invalid option value.
    """
    if (fetch_many is None) == (fetch_one is None):
        raise TypeError("pass fetch_many, or fetch_one= (for APIs without batch reads), not both")
    if fetch_many is not None:
        check_fetch(fetch_many, where=where, sync=False, name="fetch_many")
    else:
        check_fetch(fetch_one, where=where, sync=False, name="fetch_one")
    fleet = make_fleet(
        options,
        one_by_one=fetch_one is not None,
        report_status=on_status is not None,
        report_polls=on_poll is not None,
    )
    if fetch_many is not None:
        many: FetchMany = fetch_many

        def read_many(read: Read) -> Any:
            return awaitable(many(read.ids))

        return fleet, read_many, "batch"
    one: FetchOne = fetch_one  # type: ignore[assignment]

    def read_one(read: Read) -> Any:
        return awaitable(one(read.ids[0]))

    return fleet, read_one, "single"


class Event(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


class Group(Protocol):
    """A task group: children started with :meth:`start` end before it exits."""

    def start(
        self, fn: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> Callable[[], object]:
        """Start ``fn(*args)`` as a child; return a callable that cancels it."""
        ...

    def cancel(self) -> None:
        """Cancel every child still running."""
        ...


class Parked(Protocol):
    """A waiting call parked on one future of the running loop (asyncio): what the shared
    scheduler hands a caller with no hooks, the cheapest way to wait."""

    def __await__(self) -> Generator[Any, None, Any]: ...

    def done(self) -> bool: ...

    def set_result(self, result: Any) -> None: ...

    def set_exception(self, exception: BaseException) -> None: ...


class Runtime(Protocol):
    """What differs between asyncio and trio, and nothing else: adapters above this
    seam (the loops below, :mod:`jobwait.adapters.httpx`) never ask which one runs.

    A runtime registers itself with :func:`register` when its module is imported;
    :func:`current_runtime` finds it (and imports a built-in one by name the first time
    its library is found running, as anyio finds its backends)."""

    name: str
    interrupts: tuple[type[BaseException], ...]

    def clock(self) -> float:
        """The runtime's own monotonic seconds (``loop.time()``, ``trio.current_time()``,
        so a ``MockClock`` drives the waits)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """The runtime's own sleep."""
        ...

    def limit(self, seconds: float | None) -> AbstractAsyncContextManager[None]:
        """Bound the block to ``seconds`` as a whole (``None``: no bound); when it runs
        out, the block is cancelled and :class:`TimeoutError` raised instead."""
        ...

    def group(self) -> AbstractAsyncContextManager[Group]: ...

    async def run_cancel(self, cancel: AsyncCancel, error: BaseException, grace: float) -> None:
        """Await ``cancel()`` shielded from cancellation, bounded by ``grace`` seconds;
        record its failure on ``error`` (``jobwait.cancel_failed``)."""
        ...

    def threadsafe(self, fn: Callable[[], object]) -> Callable[[], None]:
        """A callable, safe from any thread (this loop's included), that runs ``fn()``
        soon in the running loop; a no-op once the loop has closed."""
        ...

    def loop_token(self) -> object:
        """An object that tells running event loops apart, alive as long as the loop
        (asyncio: the running loop; trio: the run's root task)."""
        ...

    def spawn_system(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> object:
        """Start ``fn()`` in the running loop as a task that belongs to no caller, so no
        caller's cancellation or return cuts it (asyncio: a task of the loop, returned;
        trio: a system task). ``fn`` must not raise."""
        ...

    def signal(self) -> Event:
        """The cheapest one-shot event of the running loop, set once and awaited once
        (asyncio: a bare future, a sixth of an ``asyncio.Event``; trio: ``trio.Event``).
        Create it in the loop that awaits it."""
        ...

    def park(self, leave: Callable[[str], object], key: str) -> Parked | None:
        """A future a caller can await directly, calling ``leave(key)`` when the caller
        is cancelled, or ``None`` where the runtime has none (trio: the caller awaits a
        :meth:`signal` in a coroutine instead)."""
        ...


_RUNTIMES: dict[str, Runtime] = {}
# The built-in runtimes: imported by name the first time their library is found running
# (they register themselves on import), so this module imports neither.
_BUILT_IN: Final = {"asyncio": "jobwait.adapters.asyncio", "trio": "jobwait.adapters.trio"}


def register(runtime: Runtime) -> None:
    """Make ``runtime`` the one :func:`current_runtime` returns while its library runs
    (a runtime adapter calls this when it is imported)."""
    _RUNTIMES[runtime.name] = runtime


def running_library() -> str:
    """``"asyncio"`` or ``"trio"``: the async library running the current task.

    Raises:
        RuntimeError: Outside of both.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return "asyncio"
    trio = sys.modules.get("trio")  # never imported here: if it is not loaded, it is not running
    if trio is not None:
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            pass
        else:
            return "trio"
    raise RuntimeError("jobwait's async adapters run under asyncio or trio")


def current_runtime() -> Runtime:
    """The :class:`Runtime` of the async library running the current task.

    Raises:
        RuntimeError: Outside of asyncio and trio.
    """
    name = running_library()
    runtime = _RUNTIMES.get(name)
    if runtime is None:
        importlib.import_module(_BUILT_IN[name])  # registers itself
        runtime = _RUNTIMES[name]
    return runtime


class Bell:
    """A sleep that a :class:`~jobwait.Wakeup` can cut short, for one async wait."""

    __slots__ = ("_rt", "event", "subscription")

    def __init__(self, rt: Runtime, wakeup: Wakeup, job_id: str | None, fleet: bool) -> None:
        self._rt = rt
        self.event = rt.signal()
        self.subscription: Subscription = wakeup.subscribe(
            rt.threadsafe(self.ring), job_id=job_id, fleet=fleet
        )

    def ring(self) -> None:
        self.event.set()  # in the loop: the current event, whichever it is by then

    async def nap(self, seconds: float, sleep: Callable[[float], Awaitable[object]]) -> bool:
        """Sleep ``seconds`` with ``sleep`` or until woken; ``True`` if a wake is pending."""
        pending = self.subscription.pending
        if pending():
            return True
        slept = False

        async def sleeper() -> None:
            nonlocal slept
            await sleep(seconds)
            slept = True
            self.ring()

        async with self._rt.group() as group:
            stop = group.start(sleeper)
            # A ring whose wake an earlier take already served finds nothing pending:
            # then keep sleeping.
            while not slept and not pending():
                self.event = event = self._rt.signal()
                await event.wait()
            stop()
        return pending()


async def _call(fn: Callable[..., object], *args: Any) -> None:
    result = fn(*args)
    if inspect.isawaitable(result):
        await result


async def drive(
    w: JobWaiter,
    fetch: Callable[[], Awaitable[Any]],
    *,
    rt: Runtime,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
    on_status: Callable[[Any, str], object] | None,
    on_poll: Callable[[PollReport], object] | None,
    cancel: AsyncCancel | None,
    cancel_grace: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]],
    wakeup: Wakeup | None = None,
) -> Any:
    """Drive ``w`` to its end; see :func:`jobwait.adapters.asyncio.wait`."""
    bell = None if wakeup is None else Bell(rt, wakeup, w.job_id, False)
    try:
        action = w.handle(Start(now=clock()))
        while True:
            if isinstance(action, Poll):
                if bell is not None:
                    bell.subscription.take()  # this poll serves every wake before it
                event: Observed | FetchFailed
                try:
                    result = await awaitable(fetch())
                except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
                    event = fetch_failed(exc, clock(), is_retryable, retry_after_of)
                else:
                    event = observed(result, clock())
                nudge = None if bell is None else bell.subscription.during_poll(event.now)
                if nudge is not None:
                    w.handle(nudge)
                action = w.handle(event)
                if on_status is not None and w.status_changed:
                    await _call(on_status, w.last_job, w.last_status or "")
                if on_poll is not None:
                    await _call(on_poll, poll_report(w))
            elif isinstance(action, Sleep):
                if bell is None:
                    await sleep(action.seconds)
                    action = w.handle(Woke(now=clock()))
                elif await bell.nap(action.seconds, sleep):
                    action = w.handle(Nudged(now=clock()))
                else:
                    action = w.handle(Woke(now=clock()))
            elif isinstance(action, Done):
                return action.job
            else:
                if action.cancel_job and cancel is not None:
                    await rt.run_cancel(cancel, action.error, cancel_grace)
                raise action.error
    except rt.interrupts as interrupt:
        if cancel is not None:
            await rt.run_cancel(cancel, interrupt, cancel_grace)
        raise
    finally:
        if bell is not None:
            bell.subscription.close()


async def wait(
    fetch: Callable[[], Awaitable[Any]],
    *,
    rt: Runtime,
    where: str,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: AsyncCancel | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    api: ApiProfile | str | None = None,
    **options: Any,
) -> Any:
    """One async wait under ``rt``: what ``asyncio.wait`` and ``trio.wait`` run (and the
    IonQ adapter, under whichever runs); see :func:`jobwait.adapters.asyncio.wait`.
    ``where`` names the caller in the messages of a misused ``fetch``."""
    check_fetch(fetch, where=where, sync=False)
    return await drive(
        make_waiter(waiter, with_api(api, options)),
        fetch,
        rt=rt,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=clock or rt.clock,
        sleep=sleep or rt.sleep,
        wakeup=wakeup,
    )


async def wait_all(
    fetch_many: FetchMany | None,
    job_ids: Iterable[str],
    *,
    rt: Runtime,
    where: str,
    fetch_one: FetchOne | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    api: ApiProfile | str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Many jobs with one fleet under ``rt``: what ``asyncio.wait_all`` and
    ``trio.wait_all`` run; see :func:`jobwait.adapters.asyncio.wait_all`."""
    fleet, read, reads = fleet_for(
        fetch_many, fetch_one, on_status, on_poll, with_api(api, options), where
    )
    now = clock or rt.clock
    fleet.add(job_ids, now=now())
    return await drive_fleet(
        fleet,
        read,
        reads=reads,
        rt=rt,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=now,
        sleep=sleep or rt.sleep,
        wakeup=wakeup,
    )


def _cancel_each(
    cancel: Callable[[str], Awaitable[object]], ids: Iterable[str], error: BaseException
) -> AsyncCancel:
    async def cancel_all() -> None:
        for job_id in ids:
            try:
                await cancel(job_id)
            except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
                cancel_failed(error, failure)

    return cancel_all


class Alarm:
    """What a fleet loop sleeps on: a fresh event each round (:meth:`arm`), which
    :meth:`set` sets, whichever it is by then. Set it from the loop's own thread (a
    ``Runtime.threadsafe`` wrapper from others): a finished read, a push, a new job."""

    __slots__ = ("_rt", "event")

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.event: Event = rt.signal()

    def arm(self) -> Event:
        self.event = event = self._rt.signal()
        return event

    def set(self) -> None:
        self.event.set()


async def run_fleet(
    driver: FleetDriver,
    read: AsyncRead,
    *,
    rt: Runtime,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]] | None,
    on_action: Callable[[Step], object],
    alarm: Alarm,
    nudges: Callable[[float], Iterable[Nudged]] | None = None,
    on_interrupt: Callable[[BaseException], Awaitable[object]] | None = None,
) -> AllDone | Raise:
    """The async fleet loop: perform what ``driver.step`` says until ``AllDone`` or
    ``Raise``, and return that action.

    Each ``Read`` runs as a child task that reports to the driver and sets ``alarm``;
    ``FleetSleep`` waits for the alarm or the timer: the runtime's own time limit when
    ``sleep`` is ``None`` (no task is left behind when the loop ends), else a child task
    that sleeps with ``sleep`` (an injected sleep, such as a virtual clock's). Every
    other action (the hooks' ``StatusChanged`` / ``PollReport``, ``Finished``,
    ``CancelJobs``, and the final
    ``AllDone`` / ``Raise`` too) goes to ``on_action`` the moment it is handed out (an
    awaitable it returns is awaited; the final one is called synchronously, so a
    shared scheduler can unregister before anything else runs). ``nudges(now)`` gives
    the pushes to hand to the fleet before each step. On ``Raise`` the reads still out
    are cancelled first. When the loop is cancelled (the runtime's interrupts),
    ``on_interrupt(interrupt)`` is awaited inside the task group, then the interrupt
    propagates.
    """

    async def poll(job: Read) -> None:
        try:
            result = await read(job)
        except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
            driver.read_failed(job, exc, clock())
        else:
            driver.read_done(job, result, clock())
        alarm.set()

    async def nap(seconds: float, event: Event) -> None:
        # A read may have reported before this task first ran: then there is nothing
        # to sleep for (and a virtual clock must not be advanced for nothing).
        if not event.is_set():
            await sleep(seconds)  # type: ignore[misc]  # only started with a sleep
            event.set()

    fleet = driver.fleet
    async with rt.group() as group:
        try:
            action = await _loop(
                driver,
                fleet,
                group,
                poll,
                None if sleep is None else nap,
                on_action,
                alarm,
                nudges,
                clock,
                rt,
            )
        except rt.interrupts as interrupt:
            if on_interrupt is not None:
                await on_interrupt(interrupt)
            raise
        if isinstance(action, Raise):
            group.cancel()  # reads still out are no longer wanted
    return action  # returned outside the group, so a Raise is never wrapped


async def _loop(
    driver: FleetDriver,
    fleet: JobFleet,
    group: Group,
    poll: Callable[[Read], Coroutine[Any, Any, None]],
    nap: Callable[[float, Event], Coroutine[Any, Any, None]] | None,
    on_action: Callable[[Step], object],
    alarm: Alarm,
    nudges: Callable[[float], Iterable[Nudged]] | None,
    clock: Callable[[], float],
    rt: Runtime,
) -> AllDone | Raise:
    while True:
        current = alarm.arm()  # a report from now on wakes this round
        if nudges is not None:
            for nudge in nudges(clock()):
                fleet.handle(nudge)
        action = driver.step(clock())
        if isinstance(action, Read):
            group.start(poll, action)
        elif isinstance(action, FleetSleep):
            seconds = action.seconds
            if nap is None or seconds is None:
                try:
                    async with rt.limit(seconds):
                        await current.wait()
                except TimeoutError:
                    pass  # the timer: step again
            else:
                stop = group.start(nap, seconds, current)
                await current.wait()
                stop()
        elif isinstance(action, AllDone | Raise):
            on_action(action)
            return action
        else:
            result = on_action(action)
            if result is not None:
                await result  # type: ignore[misc]


async def drive_fleet(
    fleet: JobFleet,
    read: AsyncRead,
    *,
    reads: Reads,
    rt: Runtime,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
    on_status: Callable[[str, Any, str], object] | None,
    on_poll: Callable[[PollReport], object] | None,
    cancel: Callable[[str], Awaitable[object]] | None,
    cancel_grace: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]],
    emit: Callable[[tuple[str, Any]], Awaitable[object]] | None = None,
    wakeup: Wakeup | None = None,
) -> dict[str, Any]:
    """Drive ``fleet`` until every job it holds has an outcome; return the results.

    :func:`run_fleet` with the caller's hooks: ``on_status`` / ``on_poll`` for the
    fleet's reports, ``cancel`` for a job that timed out (and, with ``fail_fast`` or
    an interrupt, for every job left), ``emit`` for each ``(job_id, outcome)`` as it
    is known (for ``as_completed``), ``wakeup``'s pushes as ``Nudged``.
    """
    driver = FleetDriver(
        fleet, reads=reads, is_retryable=is_retryable, retry_after_of=retry_after_of
    )
    alarm = Alarm(rt)
    subscription = (
        None if wakeup is None else wakeup.subscribe(rt.threadsafe(alarm.set), fleet=True)
    )
    to_cancel: tuple[str, ...] = ()

    async def on_action(action: Step) -> None:
        nonlocal to_cancel
        kind = type(action)
        if kind is StatusChanged:
            if on_status is not None:
                changed: StatusChanged = action  # type: ignore[assignment]
                await _call(on_status, changed.job_id, changed.job, changed.status)
        elif kind is PollReport:
            if on_poll is not None:
                await _call(on_poll, action)
        elif kind is Finished:
            finished: Finished = action  # type: ignore[assignment]
            if finished.cancel_job and cancel is not None:
                await rt.run_cancel(
                    _cancel_each(cancel, (finished.job_id,), finished.outcome),
                    finished.outcome,
                    cancel_grace,
                )
            if emit is not None:
                await emit((finished.job_id, finished.outcome))
        elif kind is CancelJobs:
            to_cancel = action.ids  # type: ignore[union-attr]  # the fleet's Raise comes next

    def hooks(action: Step) -> Any:
        # The final action needs nothing here; the others may await the hooks.
        return None if type(action) is AllDone or type(action) is Raise else on_action(action)

    async def interrupted(interrupt: BaseException) -> None:
        unfinished = fleet.unfinished()
        if cancel is not None and unfinished:
            await rt.run_cancel(
                _cancel_each(cancel, unfinished, interrupt), interrupt, cancel_grace
            )

    try:
        end = await run_fleet(
            driver,
            read,
            rt=rt,
            clock=clock,
            sleep=sleep,
            on_action=hooks,
            alarm=alarm,
            nudges=None if subscription is None else subscription.nudges,
            on_interrupt=interrupted,
        )
    finally:
        if subscription is not None:
            subscription.close()
    if isinstance(end, AllDone):
        return dict(fleet.results)
    failure = end.error
    if to_cancel and cancel is not None:
        await rt.run_cancel(_cancel_each(cancel, to_cancel, failure), failure, cancel_grace)
    raise failure
