"""Wait for one job, or many, from plain synchronous code.

The loops below only perform the action the core returns and report what happened;
every decision (schedule, deadline, retries, errors) is :class:`jobwait.JobWaiter`'s,
or for many jobs :class:`jobwait.JobFleet`'s. One thread does all the waiting.

Example::

    from jobwait.adapters import sync

    job = sync.wait(lambda: api.get_job("j1"), job_id="j1", timeout=600)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, Unpack

from jobwait import (
    ApiProfile,
    CancelJobs,
    Done,
    Fetched,
    FetchFailed,
    Finished,
    FleetSleep,
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
    FleetOptions,
    Read,
    Reads,
    Subscription,
    WaiterOptions,
    cancel_failed,
    check_fetch,
    make_fleet,
    make_waiter,
    poll_report,
    retry_after_of,
    with_api,
)

__all__ = ["wait", "wait_all"]

# With wakeup=, an injected sleep is called in slices this long at most, so a wake
# is acted on within about this long.
_SLICE = 0.05

J = TypeVar("J")


def wait(
    fetch: Callable[[], J | Fetched],
    *,
    waiter: JobWaiter | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], object] | None = None,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[WaiterOptions],
) -> J:
    """Poll ``fetch()`` until the job finishes, and return the final job.

    Args:
        fetch: Returns the job (or ``jobwait.Fetched(job, retry_after=...)`` to pass a
            server hint). An exception it raises is a failed poll, classified by
            ``is_retryable`` and ``retry_after_of``; it never escapes raw.
        waiter: A ready :class:`~jobwait.JobWaiter`; or pass its options instead
            (``job_id``, ``timeout=300``, ``backoff``, ``statuses``, ...).
        is_retryable: Exception -> may retrying help? Default: :func:`jobwait.is_retryable`
            (``OSError``, including ``ConnectionError`` and ``TimeoutError``, is retryable).
        retry_after_of: Exception -> server hint in seconds, or ``None``.
        on_status: Called as ``on_status(job, status)`` once per status change, the
            first observation included. Its exceptions propagate unchanged.
        on_poll: Called as ``on_poll(report)`` after every poll, failed ones included,
            with a :class:`~jobwait.PollReport` (status, polls, elapsed, the next
            sleep or ``None`` after the last poll, the fetch error). Called after
            ``on_status``; its exceptions propagate unchanged.
        cancel: Called once, with no arguments, to cancel the remote job when the wait
            times out or is interrupted (``KeyboardInterrupt``). It runs plainly: a
            blocking call cannot be bounded safely from sync code, so give your cancel
            request its own timeout. If it raises, the failure is attached to the error
            being raised (``error.cancel_error`` and a note), never replacing it.
        wakeup: A :class:`~jobwait.Wakeup`: ``wakeup.wake()`` (or ``wake(job_id)``)
            from any thread makes the wait poll at once without advancing its backoff;
            a wake during a poll causes one more poll after it. See "Push and long
            poll" in the docs.
        clock: Monotonic seconds (default ``time.monotonic``).
        sleep: Sleeps the given seconds (default ``time.sleep``). Inject
            ``jobwait.testing.VirtualClock``'s ``now`` and ``sleep`` to test instantly.
            With ``wakeup``, the default sleep is a wait on a ``threading.Event`` that
            a wake cuts short; an injected sleep cannot be cut short, so it is called
            in slices of at most 0.05 s that add up to the same sleep, and a wake is
            acted on between two slices.
        api: An :class:`~jobwait.ApiProfile` or a built-in profile's name
            (``"azure"``, see :meth:`~jobwait.ApiProfile.names`): its vocabulary,
            status and failure readers and ``raise_on_cancel`` as options; explicit
            options win. Not with ``waiter``. Default ``None`` (no profile).
        **options: ``JobWaiter`` options, when ``waiter`` is not given.

    Returns:
        The job in its final status (``completed``; or ``failed`` / ``canceled`` when
        the waiter is configured to return those).

    Raises:
        JobFailedError: The job failed (with ``raise_on_failure``, the default).
        JobCanceledError: The job was canceled and ``raise_on_cancel`` is on.
        JobTimeoutError: The deadline passed; the remote job may still be running.
        JobFetchError: The job could not be fetched (error budget spent, or an error
            retrying cannot fix); the fetch's exception is the ``__cause__``.
        JobStatusError: The job's status could not be read or is unknown (with
            ``on_unknown="raise"``).
        TypeError: ``fetch`` is not callable or is an ``async def`` function, ``waiter``
            given together with options, or an unknown option.
        ValueError: An invalid option value, or ``api`` names no built-in profile
            (the message lists them).
    """
    check_fetch(fetch, where="sync.wait", sync=True)
    w = make_waiter(waiter, with_api(api, options))
    bell = None if wakeup is None else _Bell(wakeup, w.job_id, False, clock, sleep)
    try:
        action = w.handle(Start(now=clock()))
        while True:
            if isinstance(action, Poll):
                if bell is not None:
                    bell.subscription.take()  # this poll serves every wake before it
                event: Observed | FetchFailed
                try:
                    result = fetch()
                except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
                    event = fetch_failed(exc, clock(), is_retryable, retry_after_of)
                else:
                    event = observed(result, clock())
                nudge = None if bell is None else bell.subscription.during_poll(event.now)
                if nudge is not None:
                    w.handle(nudge)
                action = w.handle(event)
                if on_status is not None and w.status_changed:
                    on_status(w.last_job, w.last_status or "")
                if on_poll is not None:
                    on_poll(poll_report(w))
            elif isinstance(action, Sleep):
                if bell is None:
                    sleep(action.seconds)
                    action = w.handle(Woke(now=clock()))
                elif bell.nap(action.seconds):
                    action = w.handle(Nudged(now=clock()))
                else:
                    action = w.handle(Woke(now=clock()))
            elif isinstance(action, Done):
                job: J = action.job
                return job
            else:
                if action.cancel_job and cancel is not None:
                    _cancel(cancel, action.error)
                raise action.error
    except KeyboardInterrupt as interrupt:
        if cancel is not None:
            _cancel(cancel, interrupt)
        raise
    finally:
        if bell is not None:
            bell.subscription.close()


class _Bell:
    """A sleep that a :class:`~jobwait.Wakeup` can cut short, for one sync wait."""

    __slots__ = ("_clock", "_event", "_sleep", "subscription")

    def __init__(
        self,
        wakeup: Wakeup,
        job_id: str | None,
        fleet: bool,
        clock: Callable[[], float],
        sleep: Callable[[float], object],
    ) -> None:
        self._event = threading.Event()
        self._clock = clock
        self._sleep = sleep
        self.subscription: Subscription = wakeup.subscribe(
            self._event.set, job_id=job_id, fleet=fleet
        )

    def nap(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until woken; ``True`` if a wake is pending."""
        pending = self.subscription.pending
        if self._sleep is not time.sleep:
            # An injected sleep cannot be cut short: call it in slices of at most
            # _SLICE seconds (adding up to `seconds` exactly) and look in between.
            slices = max(1, math.ceil(seconds / _SLICE))
            for _ in range(slices):
                if pending():
                    return True
                self._sleep(seconds / slices)
            return pending()
        until = self._clock() + seconds
        left = seconds
        while not pending():
            self._event.clear()
            if pending():  # rung before the clear
                break
            if not self._event.wait(left):
                return pending()
            # A ring whose wake an earlier take already served: keep sleeping.
            left = until - self._clock()
            if left <= 0:
                return pending()
        return True


def _cancel(cancel: Callable[[], object], error: BaseException) -> None:
    try:
        cancel()
    except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
        cancel_failed(error, failure)


def _cancel_each(cancel: Callable[[str], object], ids: Iterable[str], error: BaseException) -> None:
    for job_id in ids:
        try:
            cancel(job_id)
        except Exception as failure:  # noqa: BLE001 - recorded on the error being raised
            cancel_failed(error, failure)


def wait_all(
    fetch_many: Callable[[tuple[str, ...]], Mapping[str, Any] | Fetched] | None,
    job_ids: Iterable[str],
    *,
    fetch_one: Callable[[str], Any] | None = None,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], object] | None = None,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    api: ApiProfile | str | None = None,
    **options: Unpack[FleetOptions],
) -> dict[str, Any]:
    """Wait for many jobs in this one thread with a :class:`~jobwait.JobFleet`.

    Jobs due close together share one ``fetch_many`` request; one request runs at a
    time. See :func:`jobwait.adapters.asyncio.wait_all` for every option.

    Args:
        fetch_many: ``fetch_many(ids) -> {id: job}`` (or ``Fetched(mapping,
            retry_after=...)``); pass ``None`` with ``fetch_one=``.
        job_ids: The ids to wait for (duplicates are ignored).
        fetch_one: ``fetch_one(id) -> job``, for APIs without a batch read.
        is_retryable: Exception -> may retrying help?
        retry_after_of: Exception -> hint in seconds; it holds the whole fleet.
        on_status: ``on_status(job_id, job, status)`` once per status change.
        on_poll: ``on_poll(report)`` for every job of every batch reported, with a
            :class:`~jobwait.PollReport` (``report.job_id`` says which).
        cancel: ``cancel(job_id)``, called plainly for a job that timed out, for every
            unfinished job when ``fail_fast`` stops the fleet or on
            ``KeyboardInterrupt``. Its failures are attached to the error.
        wakeup: A :class:`~jobwait.Wakeup`: ``wakeup.wake(job_id)`` from any thread
            makes that job due at the fleet's next free request slot (still within
            its budget and concurrency); ``wake()`` every job still waiting.
        clock: Monotonic seconds (default ``time.monotonic``).
        sleep: Sleep function (default ``time.sleep``).
        api: An :class:`~jobwait.ApiProfile` or a built-in profile's name
            (``"azure"``, see :meth:`~jobwait.ApiProfile.names`): its vocabulary,
            status and failure readers and ``raise_on_cancel`` as options; explicit
            options win, for every job. Default ``None`` (no profile).
        **options: :class:`~jobwait.JobFleet` options.

    Returns:
        A dict mapping every id to its final job or to its ``JobWaitError``.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error.
        ValueError: ``api`` names no built-in profile (the message lists them).
        TypeError: Both or neither of ``fetch_many`` and ``fetch_one``, one that is
            not callable, or an unknown option.
    """
    if (fetch_many is None) == (fetch_one is None):
        raise TypeError("pass fetch_many, or fetch_one= (for APIs without batch reads), not both")
    if fetch_one is not None:
        check_fetch(fetch_one, where="sync.wait_all", sync=True, name="fetch_one")
        one = fetch_one

        def read(job: Read) -> Any:
            return one(job.ids[0])

    else:
        check_fetch(fetch_many, where="sync.wait_all", sync=True, name="fetch_many")
        many = fetch_many

        def read(job: Read) -> Any:
            return many(job.ids)  # type: ignore[misc]

    return drive_fleet(
        read,
        job_ids,
        reads="batch" if fetch_one is None else "single",
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        wakeup=wakeup,
        clock=clock,
        sleep=sleep,
        options=with_api(api, options),
    )


def drive_fleet(
    read: Callable[[Read], Any],
    job_ids: Iterable[str],
    *,
    reads: Reads,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
    on_status: Callable[[str, Any, str], object] | None,
    on_poll: Callable[[PollReport], object] | None,
    cancel: Callable[[str], object] | None,
    wakeup: Wakeup | None,
    clock: Callable[[], float],
    sleep: Callable[[float], object],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The sync fleet loop: perform what the :class:`~jobwait._plumbing.FleetDriver`
    step says, one read at a time, until every job has its outcome; see
    :func:`wait_all`. ``read(Read)`` performs one read (HTTP adapters bound it by
    ``Read.time_left``)."""
    fleet = make_fleet(
        options,
        one_by_one=reads == "single",
        report_status=on_status is not None,
        report_polls=on_poll is not None,
    )
    driver = FleetDriver(
        fleet, reads=reads, is_retryable=is_retryable, retry_after_of=retry_after_of
    )
    to_cancel: tuple[str, ...] = ()
    bell = None if wakeup is None else _Bell(wakeup, None, True, clock, sleep)
    try:
        fleet.add(job_ids, now=clock())
        while True:
            if bell is not None:
                for nudge in bell.subscription.nudges(clock()):
                    fleet.handle(nudge)
            action = driver.step(clock())
            if isinstance(action, Read):
                try:
                    result = read(action)
                except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
                    driver.read_failed(action, exc, clock())
                else:
                    driver.read_done(action, result, clock())
            elif isinstance(action, StatusChanged):
                if on_status is not None:
                    on_status(action.job_id, action.job, action.status)
            elif isinstance(action, PollReport):
                if on_poll is not None:
                    on_poll(action)
            elif isinstance(action, Finished):
                if action.cancel_job and cancel is not None:
                    _cancel_each(cancel, (action.job_id,), action.outcome)
            elif isinstance(action, CancelJobs):
                to_cancel = action.ids  # the fleet's Raise comes next
            elif isinstance(action, FleetSleep):
                seconds = action.seconds or 0.0  # never None here: nothing is in flight
                if bell is None:
                    sleep(seconds)
                else:
                    bell.nap(seconds)  # the wakes are handed to the fleet above
            elif isinstance(action, Raise):
                if cancel is not None:
                    _cancel_each(cancel, to_cancel, action.error)
                raise action.error
            else:  # AllDone
                return dict(fleet.results)
    except KeyboardInterrupt as interrupt:
        if cancel is not None:
            _cancel_each(cancel, fleet.unfinished(), interrupt)
        raise
    finally:
        if bell is not None:
            bell.subscription.close()
