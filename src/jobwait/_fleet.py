"""The JobFleet scheduler: waiting for many jobs with one timer heap and shared requests.

Theory of operation
===================

A fleet waits for many jobs at once. Each job keeps its own :class:`JobWaiter`, so
every per-job rule (statuses, backoff, timeout, fetch error budget, Retry-After,
raise_on_failure / raise_on_cancel, the errors and their context) is exactly the lone
waiter's: the fleet feeds each waiter ``Start``, ``Woke``, ``Observed`` and
``FetchFailed`` and reads back its ``Sleep``, ``Done`` or ``Raise``. What the fleet adds
is *when* polls happen and *which ids share a request*. Like the waiter it never reads a
clock, sleeps or does IO: every call takes ``now``.

The protocol (pull, like h11's ``next_event``)
----------------------------------------------

The fleet's own lifecycle (``FleetState``: RUNNING, then with ``fail_fast`` STOPPING
and STOPPED) is the table ``_TABLE`` below: ``add``, ``next_action`` and ``handle``
dispatch through it, and any other (state, input) pair is a ``UsageError``.

The driver calls ``fleet.next_action(now)`` in a loop and performs what it returns:

- ``PollBatch(ids)``: fetch these ids (one request if the source batches). The batch is
  now *in flight*; report it later with ``fleet.handle(BatchObserved(...))`` or
  ``fleet.handle(BatchFailed(...))``. Call ``next_action`` again at once: several
  batches may go out in a row, never more than ``max_concurrency`` in flight.
- ``StatusChanged`` / ``PollReport``: only with ``report_status`` / ``report_polls``
  (drivers given ``on_status`` / ``on_poll``): pass them on, then call again.
- ``Finished(job_id, outcome, cancel_job)``: one job is over; ``outcome`` is the job
  or its ``JobWaitError``. Call ``cancel(job_id)`` if ``cancel_job`` (it timed out).
- ``CancelJobs(ids)``: ``fail_fast`` stopped the fleet; cancel these remote jobs.
- ``Raise(error)``: ``fail_fast`` stopped the fleet: raise ``error`` (a
  ``FleetFailedError``). Any further ``next_action`` is a ``UsageError``.
- ``FleetSleep(seconds)``: nothing to do now. Sleep ``seconds`` (``None``: no timer)
  *or until a batch in flight reports*, whichever comes first, then call again.
- ``AllDone()``: every job added has its outcome and nothing is in flight. Return the
  results, or ``add`` more jobs and carry on.

Jobs come in through ``fleet.add(ids, now=...)`` at any time (duplicates, also of jobs
already finished, are ignored). There is no ``Woke`` event: calling ``next_action``
after a sleep is the wake-up. Drivers do not write this loop: they run the driver step
(``FleetDriver``, ``_driver.py``), which performs the reading of every ``PollBatch``
and reports it, and hands every other action on; its module shows the loop.

The schedule
------------

When each job is polled and which jobs share a request is the fleet's plan
(``_schedule.py``, whose theory has the rules): a timer heap, a ready queue held back
at most ``batch_window`` to fill a batch, and request slots (``max_concurrency``,
``max_polls_per_second``, a ``Retry-After`` hold). Polls are only ever held back,
never brought forward, and holds never add up. A ready job that reaches its deadline
while the budget or the concurrency limit holds it ends there (``Expired``), so the
budget never delays a timeout.

Reports
-------

``BatchObserved``: each id gets ``Observed(job)`` from ``jobs[id]``; an id missing
from ``jobs`` gets a retryable ``FetchFailed(JobMissingError)`` (its own
``max_fetch_errors`` counts it). The batch's ``retry_after`` goes to every job in it.
Any ``BatchObserved`` resets the fleet's count of failed batches.

``BatchObserved.unanswered``: a driver that reads the jobs a batch answer left out one
by one (the driver step does, when the source reads single jobs too) names them here:
they stay in flight, each as a read of its own, and are reported one by one, so an
unknown id ends with the single read's own error, as a lone wait's does.

``BatchFailed``, not retryable: each job in the batch gets the same non-retryable
``FetchFailed`` and ends with ``JobFetchError`` (the error is its ``__cause__``).

``BatchFailed``, retryable, with ``max_batch_errors=None``: each job of the batch gets
the retryable ``FetchFailed`` itself, exactly as a lone wait's failed GET: a poll (in
``polls``), counted against its own ``max_fetch_errors``, the hint a floor for its own
next sleep only. No fleet-wide count and no fleet-wide hold: sharing a request changes
nothing a job's waiter sees (shared per-job waits run so).

``BatchRefused``: the source cannot read batches (the driver step sends it for a batch
read the source answered with 400, 404, 405, 501 or another shape). Not a poll of any
job: from then on ``max_batch`` is 1, and the batch's jobs go to the front of the ready
queue, due at once, their waiters untouched.

``BatchFailed``, retryable (``max_batch_errors`` set, the default 5): the fleet
decides only what is fleet-wide. It counts the failure once against
``max_batch_errors`` (consecutive failed batches; any ``BatchObserved`` resets the
count), and a ``retry_after`` hint (capped at ``max_retry_after``) holds every request
of the fleet until ``now + hint``. Each job of the batch is asked with
``SharedFetchFailed(error, now, retry_after)`` and answers as a lone waiter answers a
retryable failure (its own next sleep, the hint a floor; ``JobTimeoutError`` at its
deadline); it counts as the job's poll, not against its ``max_fetch_errors``. The
``max_batch_errors``-th failure in a row carries ``spent``: every job of the batch
ends with ``JobFetchError`` chained to the error, and so do the jobs of every later
failed batch until one is observed. The fleet computes no backoff of its own.

Pushes (``Nudged``)
-------------------

``handle(Nudged(now, job_id))`` says a push (webhook, queue message) concerns that job
(``job_id=None``: every job still waiting). The fleet only decides *when*; what the push
means for the job is its waiter's table. A sleeping job is asked ``Nudged`` (it answers
``Poll`` without advancing its backoff) and goes to the front of the ready queue,
*pushed* (not held for ``batch_window``; the budget, concurrency and a hold still
apply), while its timer entry stays for the poll that was due (if that comes while the
extra poll is still out, that poll was the due one). A job in flight is asked
``Nudged`` too; when its batch reports it answers ``Poll`` and is pushed the same way.
A job already ready, or just added, is due anyway; an unknown or finished id, and any
push after the fleet stopped, is ignored. After the extra poll each waiter resumes its
own schedule toward the poll that was due.

Jitter, predictions
-------------------

Waiters run without jitter: the fleet draws one factor per batch report
(``Backoff.batch_factor``), so jobs due together stay together; with
``use_predictions``, the API's predicted completion defers a job's next poll once.
The rules are the plan's (``_schedule.py``).

Fail fast
---------

With ``fail_fast=True`` the first outcome that is a ``JobWaitError`` stops the fleet:
every outcome of the same report is still recorded and returned as ``Finished``; then
``CancelJobs`` lists the jobs still waiting (in flight included), then ``Raise``
carries a ``FleetFailedError`` (``results``: every outcome known; ``unfinished``: the
ids canceled; ``__cause__``: the first job error). Reports of batches still in flight
are accepted and ignored.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any, ClassVar, Final, Unpack

from ._backoff import Backoff, usable_seconds
from ._errors import FleetFailedError, JobMissingError, JobWaitError, UsageError
from ._options import JOB_DEFAULTS, FleetOptions, JobOptions
from ._profiles import ApiProfile, api_profile, merged
from ._protocol import (
    AllDone,
    BatchFailed,
    BatchObserved,
    BatchRefused,
    CancelJobs,
    Done,
    EndReason,
    Expired,
    FetchFailed,
    Finished,
    FleetEvent,
    FleetSleep,
    Interrupted,
    Nudged,
    Observed,
    Poll,
    PollBatch,
    Raise,
    SharedFetchFailed,
    Sleep,
    Start,
    StatusChanged,
    Woke,
)
from ._report import PollReport, poll_report
from ._schedule import NO_JOB, Plan, limit
from ._statuses import default_failure_of, default_status_of
from ._waiter import JobWaiter, State

__all__ = ["FleetAction", "FleetState", "JobFleet"]

FleetAction = (
    PollBatch | StatusChanged | PollReport | Finished | CancelJobs | FleetSleep | AllDone | Raise
)

# --- the scheduler -----------------------------------------------------------------------

_ALL_DONE: Final = AllDone()
# What add(options=) takes: the per-job options and a job's own profile (api=).
_JOB_OPTIONS: Final = frozenset(JobWaiter.OPTIONS) - {"job_id"} | {"api"}


class FleetState(enum.Enum):
    """Where a :class:`JobFleet` is in its lifecycle (each job's own state is its
    waiter's :class:`State`)."""

    RUNNING = "running"
    """Accepts ``add`` and batch reports; ``next_action`` hands out polls, outcomes
    and sleeps."""
    STOPPING = "stopping"
    """``fail_fast`` stopped the fleet: ``next_action`` hands out the outcomes already
    known, ``CancelJobs``, then ``Raise``. ``add`` is refused; reports of batches still
    in flight are accepted and ignored."""
    STOPPED = "stopped"
    """The ``Raise`` was handed out: only late batch reports are accepted (and
    ignored)."""


# (state, input) -> (handler method, actions it may return, states it may leave the
# fleet in). The inputs are the two calls a driver makes ("add", "next_action") and the
# event types handle() takes. Like the waiter's _TABLE, this *is* the lifecycle: add(),
# next_action() and handle() dispatch through it, any other pair is a UsageError, the
# docs draw the diagram from it, and the property tests check every move against it.
# Each job's own decisions stay with its JobWaiter.
_TABLE: Final[
    dict[
        tuple[FleetState, type[Any] | str],
        tuple[str, tuple[type[Any], ...], tuple[FleetState, ...]],
    ]
] = {
    (FleetState.RUNNING, "add"): ("_on_add", (), (FleetState.RUNNING,)),
    (FleetState.RUNNING, "discard"): ("_on_discard", (), (FleetState.RUNNING,)),
    (FleetState.RUNNING, "next_action"): (
        "_next_running",
        (PollBatch, StatusChanged, PollReport, Finished, FleetSleep, AllDone),
        (FleetState.RUNNING, FleetState.STOPPING),
    ),
    (FleetState.RUNNING, BatchObserved): (
        "_on_observed",
        (),
        (FleetState.RUNNING, FleetState.STOPPING),
    ),
    (FleetState.RUNNING, BatchFailed): (
        "_on_failed",
        (),
        (FleetState.RUNNING, FleetState.STOPPING),
    ),
    (FleetState.RUNNING, BatchRefused): ("_on_refused", (), (FleetState.RUNNING,)),
    (FleetState.RUNNING, Interrupted): ("_on_interrupted", (), (FleetState.STOPPING,)),
    (FleetState.STOPPING, Interrupted): ("_on_interrupted", (), (FleetState.STOPPING,)),
    (FleetState.STOPPED, Interrupted): ("_on_late", (), (FleetState.STOPPED,)),
    (FleetState.STOPPING, "next_action"): (
        "_next_stopping",
        (StatusChanged, PollReport, Finished, CancelJobs, Raise),
        (FleetState.STOPPING, FleetState.STOPPED),
    ),
    (FleetState.RUNNING, Nudged): ("_on_nudged", (), (FleetState.RUNNING,)),
    (FleetState.STOPPING, "discard"): ("_on_discard", (), (FleetState.STOPPING,)),
    (FleetState.STOPPING, BatchObserved): ("_on_late", (), (FleetState.STOPPING,)),
    (FleetState.STOPPING, BatchFailed): ("_on_late", (), (FleetState.STOPPING,)),
    (FleetState.STOPPING, BatchRefused): ("_on_late", (), (FleetState.STOPPING,)),
    (FleetState.STOPPING, Nudged): ("_on_late", (), (FleetState.STOPPING,)),
    (FleetState.STOPPED, "discard"): ("_on_discard", (), (FleetState.STOPPED,)),
    (FleetState.STOPPED, BatchObserved): ("_on_late", (), (FleetState.STOPPED,)),
    (FleetState.STOPPED, BatchFailed): ("_on_late", (), (FleetState.STOPPED,)),
    (FleetState.STOPPED, BatchRefused): ("_on_late", (), (FleetState.STOPPED,)),
    (FleetState.STOPPED, Nudged): ("_on_late", (), (FleetState.STOPPED,)),
}
_ROWS: Final[dict[FleetState, dict[type[Any] | str, str]]] = {state: {} for state in FleetState}
for (_state, _input), (_handler, _actions, _next) in _TABLE.items():
    _ROWS[_state][_input] = _handler


class JobFleet:
    """The sans-IO scheduler that waits for many jobs; see the module's theory.

    Add jobs with :meth:`add`, then loop: perform what :meth:`next_action` returns and
    report batch results with :meth:`handle`. All options are keyword-only.

    Args:
        timeout, backoff, statuses, raise_on_failure, raise_on_cancel,
            max_fetch_errors, max_retry_after, status_of, failure_of: The per-job
            options, as ``JobWaiter``: every job's own waiter applies them (a job
            added with ``add(options=...)`` has its own). The backoff's jitter is
            applied per batch, not per job; a job missing from a batch answer counts
            against its ``max_fetch_errors``, a whole failed batch against
            ``max_batch_errors``; ``max_retry_after`` also caps a fleet-wide hold.
        api: As ``JobWaiter``: a profile (or its name, or ``"auto"``) for every job,
            under the options given here; a job added with its own ``api`` in
            ``add(options=)`` reads with that one instead. Its ``predicted_seconds`` is
            what ``use_predictions`` reads.
        max_batch: Ids per request (default 100); ``1`` polls each job on its own.
        batch_window: Seconds a due job may be held back so that jobs due soon after
            share its request (default 1.0; ``0`` never holds). Never past a deadline.
        max_polls_per_second: At most this many requests in any one-second window
            (default ``None``: unlimited).
        max_concurrency: At most this many batches in flight (default 10; ``None``:
            unlimited). A sync driver has at most one in flight anyway.
        max_batch_errors: The n-th consecutive retryable batch failure ends the jobs
            of that batch with ``JobFetchError``, chained to the real error (default 5).
            ``None``: no fleet-wide budget; a failed request is a failed poll of each
            job it carried, against its own ``max_fetch_errors`` (as a lone wait).
        request_timeout: The longest one request may take (default ``None``: no
            rule). A job nearer its deadline than this is polled alone, so each
            request can be bounded by its jobs' own time left.
        fail_fast: Stop at the first job error with ``FleetFailedError`` (default
            ``False``: collect every outcome).
        use_predictions: Defer a job's poll by the completion its API predicts
            (``ApiProfile.predicted_seconds``; IonQ's without ``api=``), once
            (default ``False``; rule in the module theory).
        report_status: Return a ``StatusChanged`` action whenever a job's status
            changes (default ``False``), for drivers given ``on_status``.
        report_polls: Return a :class:`~jobwait.PollReport` for every job of every
            batch reported (default ``False``), for drivers given ``on_poll``: after
            the job's ``StatusChanged``, before its ``Finished``. Its ``next_sleep`` is
            the fleet's schedule (batching, jitter and predictions included). A failed
            batch the fleet retries is reported with ``error`` set and, as in
            :meth:`polls`, counted in ``polls``.

    Raises:
        ValueError, TypeError: For an invalid option (the message names it).
    """

    __slots__ = (
        "_backoff",
        "_batch_errors",
        "_fail_fast",
        "_failure",
        "_final_polls",
        "_max_batch_errors",
        "_max_retry_after",
        "_new_waiter",
        "_now",
        "_outbox",
        "_plan",
        "_prototype",
        "_report_polls",
        "_report_status",
        "_results",
        "_row",
        "_state",
        "_waiters",
    )

    #: The fleet's own options: the names ``FleetOptions`` adds to ``JobOptions``.
    FLEET_OPTIONS: ClassVar[tuple[str, ...]] = tuple(
        name for name in FleetOptions.__annotations__ if name not in JOB_DEFAULTS
    )

    def __init__(
        self,
        *,
        max_batch: int = 100,
        batch_window: float = 1.0,
        max_polls_per_second: int | None = None,
        max_concurrency: int | None = 10,
        max_batch_errors: int | None = 5,
        fail_fast: bool = False,
        use_predictions: bool = False,
        request_timeout: float | None = None,
        report_status: bool = False,
        report_polls: bool = False,
        api: ApiProfile | str | None = None,
        **job_options: Unpack[JobOptions],
    ) -> None:
        if api is not None:
            job_options = merged(api, job_options)  # type: ignore[assignment]
        unknown = [name for name in job_options if name not in JOB_DEFAULTS]
        if unknown:
            raise TypeError(f"JobFleet() got an unexpected keyword argument {unknown[0]!r}")
        backoff = job_options.get("backoff", JOB_DEFAULTS["backoff"])
        if not isinstance(backoff, Backoff):
            raise TypeError(f"JobFleet(backoff=...) must be a jobwait.Backoff, got {backoff!r}")
        # Waiters never jitter (the fleet jitters whole batches); they all share one
        # Backoff, one Statuses and the same callables.
        job_backoff = backoff if backoff.jitter is None else replace(backoff, jitter=None)
        options: dict[str, Any] = {**job_options, "backoff": job_backoff}
        prototype = JobWaiter(**options)  # validates every per-job option once

        def new_waiter(job_id: str, own: Mapping[str, Any] | None = None) -> JobWaiter:
            if not own:
                return JobWaiter(job_id=job_id, **options)
            # A job's own profile comes between the fleet's options and its own.
            mixed = merged(
                own.get("api"), {k: v for k, v in own.items() if k != "api"}, base=options
            )
            backoff = mixed["backoff"]
            if isinstance(backoff, Backoff) and backoff.jitter is not None:
                mixed["backoff"] = replace(backoff, jitter=None)  # the fleet jitters batches
            return JobWaiter(job_id=job_id, **mixed)

        self._new_waiter = new_waiter
        self._prototype = prototype
        self._max_retry_after = prototype.options()["max_retry_after"]
        self._backoff = backoff
        # What the API predicts of a pending job is its profile's knowledge (IonQ's
        # predicted_wait_time_ms, ...); without api=, the default vocabulary's: IonQ's.
        profile = api_profile("ionq" if api is None else api)
        self._plan = Plan(  # validates the fleet's own options
            max_batch=max_batch,
            batch_window=batch_window,
            budget=max_polls_per_second,
            max_concurrency=max_concurrency,
            request_timeout=request_timeout,
            use_predictions=bool(use_predictions),
            predict=None if profile is None else profile.predicted_seconds,
        )
        self._max_batch_errors = limit("max_batch_errors", max_batch_errors)
        self._fail_fast = bool(fail_fast)
        self._report_status = bool(report_status)
        self._report_polls = bool(report_polls)
        self._now = -math.inf
        self._waiters: dict[str, JobWaiter] = {}
        self._batch_errors = 0
        self._results: dict[str, Any] = {}
        self._final_polls: dict[str, int] = {}
        self._outbox: deque[FleetAction] = deque()
        self._failure: JobWaitError | None = None
        self._state = FleetState.RUNNING
        self._row = _ROWS[FleetState.RUNNING]

    # --- the entry points ----------------------------------------------------------------

    def add(
        self,
        job_ids: Iterable[str],
        *,
        now: float,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[str, ...]:
        """Start waiting for more jobs; each one's timeout counts from ``now``.

        Ids already added (waiting or finished) are ignored, as are repeats. New jobs
        are due at once: call :meth:`next_action` next. ``options`` (per-job
        ``JobWaiter`` options, ``job_id`` excepted) override the fleet's for these jobs'
        waiters: each keeps its own timeout, schedule and rules (the fleet still
        jitters whole batches, not jobs).

        Returns:
            The ids actually added, in the order given.

        Raises:
            TypeError: ``job_ids`` is a string, or holds a non-string; an unknown
                option.
            ValueError: An invalid option value (as ``JobWaiter`` raises it).
            UsageError: The fleet stopped (``fail_fast``), or ``now`` is earlier than
                a previous call's. Nothing is added.
        """
        if isinstance(job_ids, str):
            raise TypeError("JobFleet.add() takes a collection of job ids, not one string")
        ids = list(job_ids)
        for job_id in ids:
            if not isinstance(job_id, str):
                raise TypeError(f"job ids must be strings, got {job_id!r}")
        if options:
            unknown = [name for name in options if name not in _JOB_OPTIONS]
            if unknown:
                raise TypeError(f"unexpected per-job option {unknown[0]!r}")
            self._new_waiter("", options)  # validates before anything is added
        handler = self._row.get("add")
        if handler is None:
            raise self._refuse("add")
        self._tick(now, "add")
        added: tuple[str, ...] = getattr(self, handler)(ids, now, options)
        return added

    def discard(self, job_ids: Iterable[str], *, now: float) -> tuple[str, ...]:
        """Stop waiting for these jobs, without an outcome: their callers left.

        They are no longer polled and get no ``Finished``; a batch in flight that holds
        one reports for the others as usual. Ids unknown or already finished are
        ignored. Cancel the remote jobs yourself if you want them cancelled.

        Returns:
            The ids discarded.

        Raises:
            TypeError: ``job_ids`` is a string.
            UsageError: ``now`` is earlier than a previous call's.
        """
        if isinstance(job_ids, str):
            raise TypeError("JobFleet.discard() takes a collection of job ids, not one string")
        self._tick(now, "discard")
        discarded: tuple[str, ...] = getattr(self, self._row["discard"])(job_ids)
        return discarded

    def next_action(self, now: float) -> FleetAction:
        """What the driver should do now; see the module theory for each action.

        Returns:
            ``Finished`` / ``StatusChanged`` / ``CancelJobs`` / ``Raise`` (outcomes, in
            order), else ``PollBatch`` if a batch may go out now, else ``FleetSleep``
            or ``AllDone``.

        Raises:
            UsageError: ``now`` is earlier than a previous call's, or ``Raise`` was
                already returned.
        """
        handler = self._row.get("next_action")
        if handler is None:
            raise self._refuse("next_action")
        self._tick(now, "next_action")
        action: FleetAction = getattr(self, handler)(now)
        return action

    def handle(self, event: FleetEvent) -> None:
        """Report how a ``PollBatch`` went (``BatchObserved`` / ``BatchFailed``), or
        stop the fleet (``Interrupted``); then call :meth:`next_action`.

        Raises:
            UsageError: ``event`` is not one the fleet's table takes now, a report's
                ``ids`` are not a batch in flight, ``jobs`` is not a mapping, or its
                ``now`` is earlier than a previous call's. The fleet is unchanged.
        """
        kind = type(event)
        handler = self._row.get(kind)
        if handler is None:
            raise self._refuse(event)
        # A batch report must name a batch in flight; other events (a push, Nudged;
        # Interrupted) name no batch, and their handlers check them.
        batch = event.ids if isinstance(event, BatchObserved | BatchFailed | BatchRefused) else None
        if batch is not None and batch not in self._plan.in_flight:
            raise UsageError(
                f"{kind.__name__} reports ids {batch!r}, which are not a batch in "
                "flight; pass the ids of the PollBatch exactly"
            )
        if isinstance(event, BatchObserved) and not isinstance(event.jobs, Mapping):
            raise UsageError(
                f"BatchObserved(jobs=...) must be a mapping of id to job, got "
                f"{type(event.jobs).__name__}"
            )
        self._tick(event.now, kind.__name__)
        if batch is not None:
            del self._plan.in_flight[batch]
        getattr(self, handler)(event)

    def _refuse(self, what: object) -> UsageError:
        state = self._state
        why = "fail_fast" if self._failure is not None else "Interrupted"
        if what == "add":
            return UsageError(f"cannot add jobs: {why} stopped the fleet ({state.name})")
        if what == "next_action":
            last = "Raise" if self._failure is not None else "CancelJobs"
            return UsageError(
                f"{why} stopped the fleet ({state.name}); its {last} was already returned"
            )
        accepted = [key.__name__ for key in self._row if not isinstance(key, str)]
        return UsageError(
            f"JobFleet.handle() takes {' or '.join(accepted)} while {state.name}, got {what!r}"
        )

    # --- transitions (the handlers _TABLE names) -------------------------------------------

    def _on_discard(self, ids: Iterable[str]) -> tuple[str, ...]:
        discarded: list[str] = []
        for job_id in ids:
            if self._waiters.pop(job_id, None) is not None:
                self._plan.forget(job_id)
                discarded.append(job_id)
        return tuple(discarded)

    def _on_add(
        self, ids: list[str], now: float, options: Mapping[str, Any] | None = None
    ) -> tuple[str, ...]:
        waiters = self._waiters
        results = self._results
        plan = self._plan
        start = Start(now=now)
        added: list[str] = []
        for job_id in ids:
            if job_id in waiters or job_id in results:
                continue
            waiter = self._new_waiter(job_id, options)
            waiter.handle(start)
            waiters[job_id] = waiter
            plan.due_now(job_id, now)
            added.append(job_id)
        return tuple(added)

    def _next_running(self, now: float) -> FleetAction:
        outbox = self._outbox
        if not outbox:
            self._plan.collect(now, self._waiters)
            batch = self._dispatch(now)
            if batch is not None:
                return batch
            if not self._expire(now):
                if not self._waiters:
                    return _ALL_DONE
                return FleetSleep(seconds=self._plan.sleep_for(now))
        return outbox.popleft()

    def _next_stopping(self, now: float) -> FleetAction:
        outbox = self._outbox
        action = outbox.popleft()
        if not outbox:  # the Raise after fail_fast, or the CancelJobs after Interrupted
            self._move(FleetState.STOPPED)
        return action

    def _batch_factor(self, hint: float | None) -> float | None:
        # One jitter draw per batch (its jobs keep their relative schedule), unless the
        # server's hint sets the time.
        jittered = self._backoff.jitter is not None and hint is None
        return self._backoff.batch_factor() if jittered else None

    def _on_observed(self, event: BatchObserved) -> None:
        now = event.now
        jobs = event.jobs
        hint = event.retry_after
        waiters = self._waiters
        self._batch_errors = 0
        factor = self._batch_factor(hint)
        unanswered = event.unanswered
        if unanswered:
            self._plan.read_alone(tuple(i for i in unanswered if i in waiters), now)
        for job_id in event.ids:
            waiter = waiters.get(job_id)
            if waiter is None:
                continue  # discarded while its batch was in flight
            job = jobs.get(job_id, NO_JOB)
            if job is NO_JOB:
                if unanswered and job_id in unanswered:
                    continue  # still in flight, read alone
                missing = JobMissingError(job_id)
                action = waiter.handle(
                    FetchFailed(error=missing, now=now, retryable=True, retry_after=hint)
                )
            else:
                action = waiter.handle(Observed(job=job, now=now, retry_after=hint))
                if self._report_status and waiter.status_changed:
                    status = waiter.last_status
                    assert status is not None  # a change is always to a read status
                    self._outbox.append(StatusChanged(job_id=job_id, job=job, status=status))
            self._answer(job_id, waiter, action, now, job, factor, hint)
        self._check_fail_fast()

    def _on_failed(self, event: BatchFailed) -> None:
        # The fleet decides only what is fleet-wide (the consecutive-failure budget and
        # the Retry-After hold); every job's waiter answers the failure itself, exactly
        # as a lone waiter answers the same FetchFailed.
        now = event.now
        hint = event.retry_after
        failed: SharedFetchFailed | FetchFailed
        budget = self._max_batch_errors
        if event.retryable and budget is None:
            # Every job keeps its own budget: the failed request was a failed poll of
            # each job it carried, exactly as a failed GET of a lone wait.
            failed = FetchFailed(error=event.error, now=now, retryable=True, retry_after=hint)
        elif event.retryable:
            self._batch_errors += 1
            hold = usable_seconds(hint, self._max_retry_after)
            if hold is not None:
                self._plan.hold(now, hold)
            spent = None
            if budget is not None and self._batch_errors >= budget:
                spent = (
                    f"{self._batch_errors} batch requests in a row failed "
                    f"(max_batch_errors={self._max_batch_errors})"
                )
            failed = SharedFetchFailed(error=event.error, now=now, retry_after=hint, spent=spent)
        else:
            failed = FetchFailed(error=event.error, now=now, retryable=False)
        factor = self._batch_factor(hint)
        waiters = self._waiters
        for job_id in event.ids:
            waiter = waiters.get(job_id)
            if waiter is None:
                continue  # discarded while its batch was in flight
            self._answer(job_id, waiter, waiter.handle(failed), now, NO_JOB, factor, hint)
        self._check_fail_fast()

    def _on_refused(self, event: BatchRefused) -> None:
        # Not a poll of any job: the source cannot read batches. From now on one id per
        # request; these jobs go out again at once (pushed), their waiters untouched.
        self._plan.max_batch = 1
        for job_id in reversed(event.ids):
            if job_id in self._waiters:
                self._push(job_id, event.now)

    def _on_interrupted(self, event: Interrupted) -> None:
        reason = event.reason
        if reason is not EndReason.INTERRUPT and reason is not EndReason.HANDOVER:
            raise UsageError(
                f"Interrupted(reason={reason!r}) must be EndReason.INTERRUPT or HANDOVER"
            )
        unfinished = tuple(self._waiters) if reason.cancels_job else ()
        self._clear()
        self._outbox.clear()  # outcomes already known stay in results
        self._outbox.append(CancelJobs(ids=unfinished, reason=reason))
        self._move(FleetState.STOPPING)

    def _clear(self) -> None:
        self._waiters.clear()
        self._plan.clear()

    def _on_late(self, event: FleetEvent) -> None:
        """A batch reported (or a push came) after fail_fast settled its jobs."""

    def _on_nudged(self, event: Nudged) -> None:
        now = event.now
        waiters = self._waiters
        job_id = event.job_id
        if job_id is None:
            targets: Iterable[str] = list(waiters)
        elif job_id in waiters:
            targets = (job_id,)
        else:
            return  # finished, or never added: nothing to wake
        flying: set[str] | None = None
        for target in targets:
            waiter = waiters[target]
            state = waiter.state
            if state is State.SLEEPING and target not in self._plan.ready:
                waiter.handle(Nudged(now=now, job_id=target))
                self._plan.kept.add(target)
                self._push(target, now)
            elif state is State.POLLING:
                if flying is None:
                    flying = {i for batch in self._plan.in_flight for i in batch}
                if target in flying:  # its answer may predate the push: one more
                    waiter.handle(Nudged(now=now, job_id=target))
            # Ready (or just added): due now anyway; this poll serves the push.

    def _push(self, job_id: str, now: float) -> None:
        self._plan.push(job_id, now, self._waiters[job_id].deadline)

    def _own_options(self) -> dict[str, Any]:
        # The fleet's own options as they stand (FLEET_OPTIONS, in order): what a
        # snapshot keeps. max_batch is 1 after a BatchRefused.
        plan = self._plan
        values = {
            "max_batch": plan.max_batch,
            "batch_window": plan.batch_window,
            "max_polls_per_second": plan.budget,
            "max_concurrency": plan.max_concurrency,
            "max_batch_errors": self._max_batch_errors,
            "fail_fast": self._fail_fast,
            "use_predictions": plan.use_predictions,
            "request_timeout": plan.request_timeout,
        }
        return {name: values[name] for name in self.FLEET_OPTIONS}

    def _move(self, state: FleetState) -> None:
        self._state = state
        self._row = _ROWS[state]

    # --- shared decisions ----------------------------------------------------------------------

    def _answer(
        self,
        job_id: str,
        waiter: JobWaiter,
        action: Poll | Sleep | Done | Raise,
        now: float,
        job: Any,
        factor: float | None,
        hint: float | None = None,
    ) -> None:
        plan = self._plan
        if type(action) is Sleep:
            if plan.kept and job_id in plan.kept:
                # After a push's extra poll: the timer entry that stood for the due poll
                # still does (the waiter resumed toward it).
                plan.kept.discard(job_id)
                plan.held.pop(job_id, None)
                if self._report_polls:
                    self._outbox.append(poll_report(waiter))
                return
            due = plan.schedule(job_id, waiter, now, action.seconds, job, factor, hint)
            if self._report_polls:
                self._outbox.append(poll_report(waiter, next_sleep=due - now))
        elif type(action) is Poll:  # a push came while this poll was in flight
            plan.held.pop(job_id, None)
            self._push(job_id, now)
            if self._report_polls:
                self._outbox.append(poll_report(waiter))
        else:
            assert type(action) is Done or type(action) is Raise
            if self._report_polls:
                self._outbox.append(poll_report(waiter))
            self._finish(job_id, action)

    def _finish(self, job_id: str, action: Done | Raise) -> None:
        waiter = self._waiters.pop(job_id)
        self._final_polls[job_id] = waiter.polls
        self._plan.forget(job_id)
        if type(action) is Done:
            outcome: Any = action.job
            reason = EndReason.DONE
        else:
            assert isinstance(action, Raise)
            outcome = action.error
            reason = action.reason
            if self._fail_fast and self._failure is None:
                self._failure = action.error
        self._results[job_id] = outcome
        self._outbox.append(Finished(job_id=job_id, outcome=outcome, reason=reason))

    def _check_fail_fast(self) -> None:
        first = self._failure
        if first is None or self._state is not FleetState.RUNNING:
            return
        self._move(FleetState.STOPPING)
        unfinished = tuple(self._waiters)
        self._clear()
        if unfinished:
            self._outbox.append(CancelJobs(ids=unfinished))
        error = FleetFailedError(
            f"fail_fast: job {first.job_id!r} ended with {type(first).__name__}: {first.reason}; "
            f"{len(self._results)} outcome(s) known, {len(unfinished)} job(s) unfinished",
            results=self._results,
            unfinished=unfinished,
            **first._context(),
        )
        error.__cause__ = first
        error.__suppress_context__ = True
        self._outbox.append(Raise(error=error))

    # --- the schedule ------------------------------------------------------------------------

    def _tick(self, now: float, what: str) -> None:
        if not now >= self._now:  # also catches NaN
            raise UsageError(
                f"{what}(now={now!r}) is earlier than the previous now={self._now!r}; "
                "now must come from a monotonic clock"
            )
        self._now = now

    def _dispatch(self, now: float) -> PollBatch | None:
        plan = self._plan
        waiters = self._waiters
        ids = plan.take(now, waiters)
        if ids is None:
            return None
        nearest = math.inf
        woke = None
        for job_id in ids:
            waiter = waiters[job_id]
            if type(waiter.last_action) is Sleep:
                if woke is None:
                    woke = Woke(now=now)
                waiter.handle(woke)
            deadline = waiter.deadline
            if deadline is not None and deadline < nearest:
                nearest = deadline
        time_left = None if nearest == math.inf else max(0.0, nearest - now)
        return PollBatch(ids=tuple(ids), time_left=time_left)

    def _expire(self, now: float) -> bool:
        # A ready job at its deadline that could not go out (no request slot) ends now.
        ids = self._plan.expired(now)
        waiters = self._waiters
        for job_id in ids:
            self._finish(job_id, waiters[job_id].handle(Expired(now=now)))  # type: ignore[arg-type]
        if ids:
            self._check_fail_fast()
        return bool(ids)

    # --- read-only state ---------------------------------------------------------------------

    def unfinished(self) -> tuple[str, ...]:
        """The ids that have no outcome yet (in flight included), in the order added:
        what a driver cancels remotely when the whole wait is interrupted."""
        return tuple(self._waiters)

    @property
    def waiting(self) -> int:
        """Jobs added that have no outcome yet (in flight included)."""
        return len(self._waiters)

    @property
    def finished(self) -> int:
        """Jobs with an outcome (``len(results)``)."""
        return len(self._results)

    @property
    def max_batch(self) -> int:
        """Ids per request at most: the ``max_batch`` option, or 1 after a
        ``BatchRefused``."""
        return self._plan.max_batch

    def is_waiting(self, job_id: str) -> bool:
        """Whether ``job_id`` was added and has no outcome yet."""
        return job_id in self._waiters

    def time_left(self, job_id: str, now: float) -> float | None:
        """Seconds from ``now`` to a waiting job's deadline (never negative); ``None``
        without a deadline, or for a job that is not waiting."""
        waiter = self._waiters.get(job_id)
        return None if waiter is None else waiter.time_left(now)

    @property
    def in_flight(self) -> int:
        """Batches handed out with ``PollBatch`` and not reported yet."""
        return len(self._plan.in_flight)

    @property
    def requests(self) -> int:
        """``PollBatch`` actions handed out so far (one request each)."""
        return self._plan.requests

    @property
    def results(self) -> Mapping[str, Any]:
        """A read-only live view: job id -> the job, or its ``JobWaitError``."""
        return MappingProxyType(self._results)

    @property
    def stopped(self) -> bool:
        """``True`` once ``fail_fast`` stopped the fleet."""
        return self._state is not FleetState.RUNNING

    def polls(self, job_id: str) -> int:
        """Fetch attempts reported for one job, failed or not (as ``JobWaiter.polls``):
        every request that carried it counts.

        Raises:
            KeyError: The id was never added (or was unfinished when the fleet stopped).
        """
        waiter = self._waiters.get(job_id)
        if waiter is not None:
            return waiter.polls
        return self._final_polls[job_id]

    def last_status(self, job_id: str) -> str | None:
        """The last status read for a waiting job, ``None`` before the first.

        Raises:
            KeyError: The job is not waiting (never added, or finished: see
                ``results``).
        """
        return self._waiters[job_id].last_status

    # --- snapshot / restore ------------------------------------------------------------

    def snapshot(self, *, last_jobs: bool = True) -> dict[str, Any]:
        """The fleet's full state as a JSON-serialisable dict, to resume elsewhere: the
        options (not the callables), every waiting job's state and place, the request
        budget and hold, every outcome so far and those not handed out yet (handed out
        again after :meth:`restore`; ``PollReport`` s are not kept); times relative to
        the fleet's latest ``now``, kept as ``"now"`` (see ``_snapshots.py``).

        Args:
            last_jobs: Keep each waiting job's last payload (default). ``False`` drops
                them to save space (a durable store holding thousands of jobs); errors
                raised later then carry ``last_job=None`` until the next observation.
                Final outcomes are always kept.

        Raises:
            UsageError: The fleet stopped (``fail_fast`` or ``Interrupted``): there is
                nothing to resume.
        """
        # The saved form lives in _snapshots, which imports this module.
        from ._snapshots import snapshot_of

        return snapshot_of(self, last_jobs=last_jobs)

    @classmethod
    def restore(
        cls,
        snapshot: Any,
        *,
        now: float,
        same_clock: bool = False,
        status_of: Callable[[Any], Any] = default_status_of,
        failure_of: Callable[[Any], Any] = default_failure_of,
        rng: Any = None,
        report_status: bool = False,
        report_polls: bool = False,
    ) -> JobFleet:
        """Continue a fleet from :meth:`snapshot`, maybe in another process.

        Pass the callables again (``status_of``, ``failure_of``, ``rng`` for a
        jittered backoff) and the driver flags (``report_status``, ``report_polls``).
        A batch that was in flight when the snapshot was taken is restored as due: it
        is asked again (at-least-once, harmless for a status read). Then drive the
        fleet as before: ``next_action(now)`` first hands out the outcomes and status
        changes the snapshot still held.

        The two modes are :meth:`JobWaiter.restore`'s. ``same_clock=False`` (default):
        ``now`` is the snapshot's moment, so time spent stored does not count.
        ``same_clock=True``: ``now`` comes from the clock the fleet ran on (wall time,
        Redis ``TIME``), so it counts: a job whose poll came due while stored is polled
        at once, and one whose deadline passed makes that poll, its last, as a late
        lone wait does (then its job, or ``JobTimeoutError`` handed out as
        ``Finished(reason=EndReason.TIMEOUT)``). A ``now`` behind the snapshot's (clock
        skew) counts as no time passed.

        Example (a worker that hands a fleet over to the next one)::

            blob = json.dumps(fleet.snapshot())
            fleet.handle(Interrupted(now=time.time(), reason=EndReason.HANDOVER))
            ...                                   # another process, later
            fleet = JobFleet.restore(json.loads(blob), now=time.time(), same_clock=True)

        Raises:
            ValueError: A corrupted, truncated or foreign snapshot, or an invalid
                option in it (the message names what is wrong).
        """
        from ._snapshots import restore_into

        return restore_into(
            cls,
            snapshot,
            now=now,
            same_clock=same_clock,
            status_of=status_of,
            failure_of=failure_of,
            rng=rng,
            report_status=report_status,
            report_polls=report_polls,
        )

    def __repr__(self) -> str:
        return (
            f"<JobFleet waiting={len(self._waiters)} finished={len(self._results)} "
            f"in_flight={len(self._plan.in_flight)} requests={self._plan.requests}>"
        )
