"""The paths a wait can take, each run on the scripted server, and what each caller saw.

A path runs one or more *callers* (the scenario's job, and on the ``+20`` paths twenty
neighbours on the same client) and returns one :class:`Seen` per caller: its outcome,
error chain, ``polls`` and ``last_status``, its hooks' calls and its poll times as the
server saw them. Only public APIs are called.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio
import trio.testing

from jobwait import JobWaitError, PollReport, Wakeup
from jobwait.adapters import httpx as jw_httpx
from jobwait.adapters import ionq

from . import _vloop
from ._scenarios import Scenario
from ._server import BASE_URL, ScriptedServer, Step

__all__ = ["PATHS", "Caller", "Path", "Seen", "SyncClock", "callers_of", "run_lone_sync"]

KINDS = ("httpx", "ionq")
API_KEY = "conformance-secret-key"


@dataclass(frozen=True)
class Caller:
    """One wait: its job, script and options, and what the scenario does to it."""

    job_id: str
    script: tuple[Step, ...]
    options: Mapping[str, Any]
    hooks: bool = False
    status_hook: bool = False
    cancel_at: float | None = None
    wake_at: float | None = None
    remote_cancel: bool = False

    @property
    def interruptible(self) -> bool:
        return self.cancel_at is not None


def callers_of(scenario: Scenario, neighbours: list[tuple[str, tuple[Step, ...]]]) -> list[Caller]:
    """The scenario's caller first, then plain neighbours with the default options."""
    from ._scenarios import BACKOFF, TIMEOUT

    subject = Caller(
        "job-1",
        scenario.script,
        scenario.job_options(),
        hooks=scenario.hooks,
        status_hook=scenario.status_hook,
        cancel_at=scenario.cancel_at,
        wake_at=scenario.wake_at,
        remote_cancel=scenario.remote_cancel,
    )
    plain = {"backoff": BACKOFF, "timeout": TIMEOUT}
    return [subject, *(Caller(job_id, steps, plain) for job_id, steps in neighbours)]


@dataclass(frozen=True)
class Seen:
    """What one caller saw, in comparable form (see the package docstring)."""

    outcome: tuple[Any, ...]
    chain: tuple[str, ...]
    polls: int | None
    last_status: str | None
    statuses: tuple[str, ...] | None
    reports: tuple[tuple[Any, ...], ...] | None
    poll_times: tuple[float, ...]
    ended: float
    cancels: tuple[float, ...]
    #: The error's classes, its bases included (short names), for the scenario check.
    kinds: tuple[str, ...] = ()


_SECONDS = re.compile(r"\b\d+(\.\d+)?(e-?\d+)?s\b")
_DECIMAL = re.compile(r"\b\d+\.\d+\b")


def normalized(message: str) -> str:
    """A message with its times (``1.234s``, ``0.8``) replaced by ``#``: times are
    compared as poll times, within the path's tolerance, not as text."""
    return _DECIMAL.sub("#", _SECONDS.sub("#s", message))


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def chain_of(error: BaseException) -> tuple[str, ...]:
    out: list[str] = []
    cause = error.__cause__
    while cause is not None and len(out) < 10:
        type_name = getattr(cause, "type_name", None)  # a Celery RemoteError names its origin
        out.append(type_name if isinstance(type_name, str) else _name(type(cause)))
        cause = cause.__cause__
    return tuple(out)


def _report(report: PollReport) -> tuple[Any, ...]:
    error = None if report.error is None else _name(type(report.error))
    return (report.status, report.polls, error, report.next_sleep is None)


class _Record:
    """The hooks' calls and the outcome of one caller, as they happen."""

    def __init__(self, caller: Caller, now: Callable[[], float]) -> None:
        self.caller = caller
        self.now = now
        self.statuses: list[str] | None = [] if caller.hooks or caller.status_hook else None
        self.reports: list[tuple[Any, ...]] | None = [] if caller.hooks else None
        self.cancels: list[float] = []
        self.outcome: tuple[Any, ...] = ("nothing",)
        self.error: BaseException | None = None
        self.ended = math.nan

    # hooks of single waits
    def on_status(self, _job: Any, status: str) -> None:
        assert self.statuses is not None
        self.statuses.append(status)

    def on_poll(self, report: PollReport) -> None:
        assert self.reports is not None
        self.reports.append(_report(report))

    # hooks of fleets
    def on_fleet_status(self, job_id: str, job: Any, status: str) -> None:
        if job_id == self.caller.job_id:
            self.on_status(job, status)

    def on_fleet_poll(self, report: PollReport) -> None:
        if report.job_id == self.caller.job_id:
            self.on_poll(report)

    def cancel(self, *_: Any) -> None:
        self.cancels.append(self.now())

    async def acancel(self, *_: Any) -> None:
        self.cancels.append(self.now())

    def finish(self, outcome: Any) -> None:
        self.ended = self.now()
        if isinstance(outcome, JobWaitError):
            self.error = outcome
            self.outcome = ("error", _name(type(outcome)), normalized(str(outcome)))
        elif isinstance(outcome, Mapping):
            self.outcome = ("job", outcome.get("status"), dict(outcome))
        else:
            self.outcome = ("returned", repr(outcome))

    def interrupted(self) -> None:
        self.ended = self.now()
        self.outcome = ("interrupted",)

    def seen(self, server: ScriptedServer) -> Seen:
        error = self.error
        return Seen(
            outcome=self.outcome,
            chain=() if error is None else chain_of(error),
            polls=getattr(error, "polls", None),
            last_status=getattr(error, "last_status", None),
            statuses=None if self.statuses is None else tuple(self.statuses),
            reports=None if self.reports is None else tuple(self.reports),
            poll_times=tuple(server.polls.get(self.caller.job_id, ())),
            ended=self.ended,
            cancels=tuple(self.cancels),
            kinds=() if error is None else tuple(k.__name__ for k in type(error).__mro__),
        )


def _hooks(record: _Record, *, fleet: bool, is_async: bool) -> dict[str, Any]:
    caller = record.caller
    out: dict[str, Any] = {}
    if record.statuses is not None:
        out["on_status"] = record.on_fleet_status if fleet else record.on_status
    if record.reports is not None:
        out["on_poll"] = record.on_fleet_poll if fleet else record.on_poll
    if caller.remote_cancel:
        out["cancel"] = record.acancel if is_async else record.cancel
    return out


# --- sync, on a virtual clock ----------------------------------------------------------------


class SyncClock:
    """A virtual clock for the sync paths, with timers: ``at(t, fn)`` runs ``fn`` when a
    sleep passes ``t`` (a wake, or a ``KeyboardInterrupt`` for a cancellation)."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Time spent in a request (a stalled answer): timers fire in it too."""
        self.sleep(seconds)

    def at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, len(self._timers), fn))

    def sleep(self, seconds: float) -> None:
        end = self.t + seconds
        while self._timers and self._timers[0][0] <= end + 1e-9:
            when, _, fn = heapq.heappop(self._timers)
            self.t = max(self.t, when)
            fn()
        self.t = end


def _interrupt() -> None:
    raise KeyboardInterrupt


def _sync_client(kind: str, transport: httpx.BaseTransport) -> httpx.Client:
    if kind == "ionq":
        return ionq.client(api_key=API_KEY, base_url=BASE_URL, transport=transport)
    return httpx.Client(base_url=BASE_URL, transport=transport)


def _async_client(kind: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    if kind == "ionq":
        return ionq.async_client(api_key=API_KEY, base_url=BASE_URL, transport=transport)
    return httpx.AsyncClient(base_url=BASE_URL, transport=transport)


def run_lone_sync(kind: str, callers: list[Caller], *, fleet: bool = False) -> list[Seen]:
    """``ionq.wait_for_job`` / ``httpx.wait_for_url`` (or with ``fleet``,
    ``ionq.wait_for_jobs`` / ``httpx.wait_for_batch`` of one job) on a virtual clock."""
    (caller,) = callers
    clock = SyncClock()
    server = ScriptedServer({caller.job_id: caller.script}, clock.now)
    record = _Record(caller, lambda: clock.now() - server.origin)
    wakeup = None
    if caller.wake_at is not None:
        wakeup = Wakeup()
        clock.at(caller.wake_at, lambda: wakeup.wake(caller.job_id))
    if caller.cancel_at is not None:
        clock.at(caller.cancel_at, _interrupt)
    extra: dict[str, Any] = {"clock": clock.now, "sleep": clock.sleep, **caller.options}
    extra.update(_hooks(record, fleet=fleet, is_async=False))
    if wakeup is not None:
        extra["wakeup"] = wakeup
    with _sync_client(kind, server.sync_transport(clock.advance)) as client:
        server.start()
        try:
            if fleet:
                results = _sync_fleet(kind, client, caller.job_id, extra)
                outcome = results[caller.job_id]
            elif kind == "ionq":
                outcome = ionq.wait_for_job(client, caller.job_id, **extra)
            else:
                url = ionq.job_path(caller.job_id)
                outcome = jw_httpx.wait_for_url(client, url, job_id=caller.job_id, **extra)
        except JobWaitError as error:
            outcome = error
        except KeyboardInterrupt:
            if not caller.interruptible:
                raise
            record.interrupted()
        else:
            pass
        if record.outcome == ("nothing",):
            record.finish(outcome)
    return [record.seen(server)]


FLEET_WINDOW = 0.1


def _sync_fleet(kind: str, client: httpx.Client, job_id: str, extra: dict[str, Any]) -> Any:
    if kind == "ionq":
        return ionq.wait_for_jobs(client, [job_id], batch_window=FLEET_WINDOW, **extra)
    return jw_httpx.wait_for_batch(
        client, [job_id], url_for=ionq.batch_url, batch_window=FLEET_WINDOW, **extra
    )


# --- async: asyncio (virtual-time loop) and trio (MockClock) ----------------------------------


async def _one_async(
    kind: str,
    client: httpx.AsyncClient,
    record: _Record,
    mode: str,
    cancelled: Callable[[BaseException], bool],
) -> None:
    """One caller's wait: ``mode`` is ``lone`` (``shared=False``), ``shared`` (the
    default) or ``fleet`` (the async fleet API, with this one job)."""
    caller = record.caller
    extra: dict[str, Any] = dict(caller.options)
    extra.update(_hooks(record, fleet=mode == "fleet", is_async=True))
    if caller.wake_at is not None:
        extra["wakeup"] = record.wakeup  # type: ignore[attr-defined]
    if mode == "lone":
        extra["shared"] = False
    try:
        if mode == "fleet":
            if kind == "ionq":
                results = await ionq.async_wait_for_jobs(
                    client, [caller.job_id], batch_window=FLEET_WINDOW, **extra
                )
            else:
                results = await jw_httpx.async_wait_for_batch(
                    client,
                    [caller.job_id],
                    url_for=ionq.batch_url,
                    batch_window=FLEET_WINDOW,
                    **extra,
                )
            outcome = results[caller.job_id]
        elif kind == "ionq":
            outcome = await ionq.async_wait_for_job(client, caller.job_id, **extra)
        else:
            url = ionq.job_path(caller.job_id)
            outcome = await jw_httpx.async_wait_for_url(client, url, job_id=caller.job_id, **extra)
    except JobWaitError as error:
        record.finish(error)
    except BaseException as exc:
        if caller.interruptible and cancelled(exc):
            record.interrupted()
        raise
    else:
        record.finish(outcome)


def _trio_cancelled(exc: BaseException) -> bool:
    # A wait that runs a nursery inside (the fleet driver) lets the cancellation out
    # wrapped in a group; the caller's cancel scope catches it all the same.
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(trio.Cancelled)[1]
        return rest is None
    return isinstance(exc, trio.Cancelled)


def run_trio(kind: str, callers: list[Caller], mode: str) -> list[Seen]:
    """The callers' waits in one trio run on ``MockClock(autojump_threshold=0)``.

    With neighbours, the scenario's caller joins once they have joined and every task
    is blocked (at time 0 still, after their first poll): trio shuffles the tasks it runs
    in one batch, and who joins first or shares the first request must not change from
    run to run. (On asyncio, which runs tasks in order, the caller starts last and
    shares its neighbours' first request: the other interleaving.)
    """
    seen: list[Seen] = []

    async def main() -> None:
        server = ScriptedServer({c.job_id: c.script for c in callers}, trio.current_time)
        async with _async_client(kind, server.async_transport()) as client:
            server.start()
            records = [_Record(c, server.now) for c in callers]

            async def one(record: _Record) -> None:
                caller = record.caller
                deadline = (
                    math.inf if caller.cancel_at is None else server.origin + caller.cancel_at
                )
                with trio.CancelScope(deadline=deadline):
                    if record is records[0] and len(records) > 1:
                        # after its neighbours joined and were polled (see run_trio)
                        await trio.testing.wait_all_tasks_blocked()
                    await _one_async(kind, client, record, mode, _trio_cancelled)

            async def wake(record: _Record) -> None:
                await trio.sleep_until(server.origin + record.caller.wake_at)  # type: ignore[operator]
                record.wakeup.wake(record.caller.job_id)  # type: ignore[attr-defined]

            with trio.fail_after(120):
                async with trio.open_nursery() as nursery:
                    for record in records[1:] + records[:1]:
                        if record.caller.wake_at is not None:
                            record.wakeup = Wakeup()  # type: ignore[attr-defined]
                            nursery.start_soon(wake, record)
                        nursery.start_soon(one, record)
            seen.extend(record.seen(server) for record in records)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seen


def run_asyncio(kind: str, callers: list[Caller], mode: str) -> list[Seen]:
    """The callers' waits in one asyncio run on a virtual-time loop (the scenario's
    caller started last, as in :func:`run_trio`)."""

    async def main() -> list[Seen]:
        loop = asyncio.get_running_loop()
        server = ScriptedServer({c.job_id: c.script for c in callers}, loop.time)
        async with _async_client(kind, server.async_transport()) as client:
            server.start()
            records = [_Record(c, server.now) for c in callers]
            tasks = []
            for record in records[1:] + records[:1]:
                caller = record.caller
                if caller.wake_at is not None:
                    record.wakeup = Wakeup()  # type: ignore[attr-defined]
                    loop.call_at(
                        server.origin + caller.wake_at,
                        record.wakeup.wake,  # type: ignore[attr-defined]
                        caller.job_id,
                    )
                task = asyncio.create_task(
                    _one_async(
                        kind,
                        client,
                        record,
                        mode,
                        lambda e: isinstance(e, asyncio.CancelledError),
                    )
                )
                if caller.cancel_at is not None:
                    loop.call_at(server.origin + caller.cancel_at, task.cancel)
                tasks.append(task)
            async with asyncio.timeout(120):
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in tasks:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            return [record.seen(server) for record in records]

    result: list[Seen] = _vloop.run(main())
    return result


# --- the paths ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """One way to wait.

    Attributes:
        name: The test id.
        run: ``run(kind, callers) -> [Seen]``.
        window: How late a poll may be against the lone wait's (a batch window).
        neighbours: Whether twenty neighbours wait on the same client.
        fleet: A fleet API: its documented fleet-wide error budget applies.
    """

    name: str
    run: Callable[[str, list[Caller]], list[Seen]]
    window: float = 0.0
    neighbours: bool = False
    fleet: bool = False
    interruptible: bool = True
    tags: frozenset[str] = field(default_factory=frozenset)

    def __str__(self) -> str:
        return self.name


SHARED_WINDOW = 0.1  # the shared scheduler's default batch window

PATHS: list[Path] = [
    Path("asyncio-lone", lambda k, c: run_asyncio(k, c, "lone")),
    Path("trio-lone", lambda k, c: run_trio(k, c, "lone")),
    Path("asyncio-shared", lambda k, c: run_asyncio(k, c, "shared"), SHARED_WINDOW),
    Path("trio-shared", lambda k, c: run_trio(k, c, "shared"), SHARED_WINDOW),
    Path(
        "asyncio-shared+20",
        lambda k, c: run_asyncio(k, c, "shared"),
        SHARED_WINDOW,
        neighbours=True,
    ),
    Path("trio-shared+20", lambda k, c: run_trio(k, c, "shared"), SHARED_WINDOW, neighbours=True),
    Path("sync-fleet", lambda k, c: run_lone_sync(k, c, fleet=True), FLEET_WINDOW, fleet=True),
    Path("asyncio-fleet", lambda k, c: run_asyncio(k, c, "fleet"), FLEET_WINDOW, fleet=True),
    Path("trio-fleet", lambda k, c: run_trio(k, c, "fleet"), FLEET_WINDOW, fleet=True),
]
