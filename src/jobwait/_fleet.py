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
after a sleep is the wake-up. A sync driver (one request at a time)::

    fleet.add(ids, now=clock())
    while True:
        action = fleet.next_action(clock())
        if type(action) is PollBatch:
            try:
                jobs = fetch_many(action.ids)
            except Exception as exc:
                fleet.handle(batch_failed(action.ids, exc, clock()))
            else:
                fleet.handle(batch_observed(action.ids, jobs, clock()))
        elif type(action) is Finished:
            if action.cancel_job and cancel: cancel(action.job_id)
        elif type(action) is CancelJobs:
            for job_id in action.ids: cancel(job_id)
        elif type(action) is FleetSleep:
            sleep(action.seconds)          # never None here: nothing is in flight
        elif type(action) is Raise:
            raise action.error
        else:                              # AllDone
            return dict(fleet.results)

An async driver starts a task per ``PollBatch`` (the task fetches, calls
``fleet.handle`` and sets a ``wake`` event) and sleeps on ``FleetSleep`` with
``wait_for(wake.wait(), seconds)``, clearing ``wake`` before each ``next_action``. The
fleet counts batches in flight itself, so the driver needs no semaphore and makes no
decision of its own.

The schedule
------------

Every job waiting for its next poll has one entry ``(due, seq, job_id)`` in one timer
heap; ``seq`` breaks ties first-in, first-out. A job whose ``due`` has come moves to the
*ready* queue (oldest due first). A batch of the first ``max_batch`` ready ids goes out
when the ready queue holds ``max_batch`` ids, or the oldest has been held
``batch_window`` seconds, or a ready job reaches its deadline, or no other job comes
due before then (holding back would gain nothing). Polls are only ever *held back*,
never brought forward: no job is polled earlier than a lone wait would poll it. A poll
held back does not push the rest of the job's schedule back: its next poll is due when
its waiter's sleep says, counted from when the held poll was due (a sleep clamped to
the deadline or floored by a server hint stays as it is), so holds never accumulate. A
ready job whose deadline has come goes first. A batch goes out only when a request slot
is free:

- fewer than ``max_concurrency`` batches in flight;
- fewer than ``max_polls_per_second`` requests sent at times ``t`` with
  ``now < t + 1.0`` (at most N requests in any one-second window);
- ``now`` not before a fleet-wide Retry-After hold, except for jobs whose deadline has
  come: they make their last poll, as a lone wait does (its sleep never passes the
  deadline, whatever the hint).

With ``request_timeout`` set (the longest one request may take), a ready job nearer
its deadline than that shares a request only with jobs whose deadlines are within
``batch_window`` of its own, so that every request can be bounded by its jobs' own time
left (``PollBatch.time_left``: the nearest deadline of the batch), as a lone wait
bounds its own; the jobs further from their deadlines share freely.

A ready job that reaches its deadline while no slot is free (the budget or the
concurrency limit) is not polled: it ends at its deadline: its waiter gets ``Expired``
and answers ``JobTimeoutError``, so the budget never delays a timeout. A job in flight
at its deadline ends when its batch reports (the waiter then sees ``now >= deadline``),
as a lone wait does.

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

A job held back past its due time (to share a request, or by the budget) has its next
poll scheduled as if it had not been held: holding polls back never accumulates (a
sleep clamped to the deadline, or floored by a server hint, stays as it is). A job
whose deadline has come goes out before the other ready jobs, and through a
``Retry-After`` hold (not through the budget or the concurrency limit): it has one poll
left, as a lone wait does.

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
decides only what is fleet-wide. It counts the
failure once against ``max_batch_errors`` (consecutive failed batches, fleet-wide;
any ``BatchObserved`` resets the count), and a ``retry_after`` hint (capped at
``max_retry_after``) holds *every* request of the fleet until ``now + hint``. Then
each job of the batch is asked, with ``SharedFetchFailed(error, now, retry_after)``,
and answers exactly as a lone waiter answers a retryable failure: ``Sleep`` for its own
next backoff interval (the hint as a floor, clamped to its deadline), or
``JobTimeoutError`` at its deadline (cause: the error). The failure counts as the
job's poll (every fetch attempt that carried it does), but not against its
``max_fetch_errors``. If this failure spent the
budget (the ``max_batch_errors``-th in a row), the event carries ``spent`` and every
job of the batch ends with ``JobFetchError`` chained to the error, with a note naming
the budget. The count stays spent until a batch is observed, so every later failed
batch ends its jobs. The fleet computes no backoff of its own.

Pushes (``Nudged``)
-------------------

``handle(Nudged(now, job_id))`` says a push (webhook, queue message) concerns that job
(``job_id=None``: every job still waiting). The fleet only decides *when*; what the push
means for the job is its waiter's table. A sleeping job is asked ``Nudged`` (it answers
``Poll`` without advancing its backoff) and goes to the front of the ready queue,
marked *pushed*, while its timer entry stays for the poll that was due (its time keeps
predictions and jitter; if it comes while the extra poll is still out, that poll was
the due one): a ready queue holding a pushed job is not
held back for ``batch_window``, so the job goes out at the next free request slot, and
only then: ``max_concurrency``, ``max_polls_per_second`` and a Retry-After hold still
apply, so a push never brings a request earlier than the budget allows. A job in flight
is asked ``Nudged`` too (the waiter remembers it); when its batch reports it answers
``Poll`` and goes to the front of the ready queue the same way. A job already ready, or
just added, is due anyway; an unknown or finished id, and any push after ``fail_fast``
stopped the fleet, is ignored. After the extra poll each waiter resumes its own
schedule toward the poll that was due.

Jitter, predictions
-------------------

Waiters run without jitter; the fleet draws one factor per batch report
(``Backoff.batch_factor``) and scales the sleep of every job in that batch (never a
sleep clamped to a deadline, never when the report carried ``retry_after``), so jobs
due together stay together: ``"full"``: uniform(0, 1); ``"equal"`` and
``"decorrelated"``: uniform(0.5, 1).

With ``use_predictions=True``, the first pending observation of a job that carries
IonQ's ``predicted_wait_time_ms`` and/or ``predicted_execution_duration_ms`` (p =
their sum in seconds, counted from the observation at ``t``) defers that job's next
poll to ``min(max(t + sleep, t + 0.9 * p), deadline)``. Each job defers at most once:
every later sleep is the waiter's own, within the backoff cap.

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
import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Final, Unpack

from ._backoff import Backoff, usable_seconds
from ._drive import fetch_failed
from ._drive import is_retryable as default_is_retryable
from ._drive import retry_after_of as default_retry_after_of
from ._errors import (
    FleetFailedError,
    JobWaitError,
    UsageError,
    error_from_json,
    error_to_json,
    is_json,
)
from ._numbers import check_count, check_number, finite, held_to
from ._options import JOB_DEFAULTS, FleetOptions, JobOptions, options_from_json, options_to_json
from ._profiles import ApiProfile, merged
from ._protocol import (
    Done,
    EndReason,
    Expired,
    Fetched,
    FetchFailed,
    Interrupted,
    Nudged,
    Observed,
    Poll,
    Raise,
    SharedFetchFailed,
    Sleep,
    Start,
    Woke,
)
from ._report import PollReport, poll_report
from ._statuses import Phase, default_failure_of, default_status_of, read_field
from ._waiter import JobWaiter, State

__all__ = [
    "FLEET_SNAPSHOT_FORMAT",
    "AllDone",
    "BatchFailed",
    "BatchObserved",
    "CancelJobs",
    "Finished",
    "FleetAction",
    "FleetEvent",
    "FleetFailedError",
    "FleetSleep",
    "FleetState",
    "FleetTransition",
    "JobFleet",
    "JobMissingError",
    "PollBatch",
    "StatusChanged",
    "batch_failed",
    "batch_observed",
    "fleet_transitions",
    "ionq_predicted_seconds",
    "make_fleet",
    "single_job",
]

# --- events (the driver reports) -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchObserved:
    """A batch request returned.

    Attributes:
        ids: The ids of the ``PollBatch`` being reported, exactly as it gave them.
        jobs: The jobs the request returned, keyed by id. An id of the batch that is
            missing here is a retryable fetch failure for that job alone; extra keys
            are ignored.
        now: Monotonic seconds when the response arrived.
        retry_after: A server hint in seconds for every job of the batch: a floor for
            each one's next sleep, capped at ``max_retry_after``.
        unanswered: Ids of the batch the answer left out that the driver now reads
            one by one: they stay in flight, each as a read of its own (counted in
            ``requests``), to be reported by itself (a one-id ``BatchObserved`` or
            ``BatchFailed``). The other ids left out are missing (see ``jobs``).
    """

    ids: tuple[str, ...]
    jobs: Mapping[str, Any]
    now: float
    retry_after: float | None = None
    unanswered: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchFailed:
    """A batch request raised instead of returning jobs.

    Attributes:
        ids: The ids of the ``PollBatch`` being reported.
        error: The exception the request raised; the ``__cause__`` of any job error
            it causes.
        now: Monotonic seconds when the failure was seen.
        retryable: ``True`` if retrying may help (see :func:`jobwait.is_retryable`).
            Retryable failures are retried for the whole batch; others end every job
            of the batch with ``JobFetchError``.
        retry_after: A server hint in seconds: no request of the whole fleet goes out
            before ``now + min(retry_after, max_retry_after)``.
    """

    ids: tuple[str, ...]
    error: BaseException
    now: float
    retryable: bool = True
    retry_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRefused:
    """The source cannot read batches: a batch request came back with an answer that
    is not a batch answer (the endpoint is missing, refuses the method or the query,
    or answers another shape).

    The fleet polls one job per request from then on (``max_batch`` becomes 1) and
    asks for the jobs of this batch again at once, one by one. Their waiters are told
    nothing: the refused request was not a poll of theirs.

    Attributes:
        ids: The ids of the ``PollBatch`` being reported.
        now: Monotonic seconds when the answer arrived.
    """

    ids: tuple[str, ...]
    now: float


FleetEvent = BatchObserved | BatchFailed | BatchRefused | Nudged | Interrupted


# --- actions (the fleet decides) -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PollBatch:
    """Fetch these jobs now, then report ``BatchObserved`` or ``BatchFailed`` with the
    same ``ids``. Call ``next_action`` again without waiting: more may go out.

    Attributes:
        ids: At most ``max_batch`` distinct job ids, oldest due first.
        time_left: Seconds from now to the nearest deadline of these jobs (``None``
            when none has one): bound the request by it, as a lone wait bounds its
            own. With ``request_timeout`` set, a job nearer its deadline than that
            goes out alone, so the bound is every job's own.
    """

    ids: tuple[str, ...]
    # Advice derived from the ids' deadlines, not part of what the action is: two
    # PollBatch actions for the same ids are equal.
    time_left: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """One job is over: record ``outcome`` for ``job_id``.

    Attributes:
        job_id: The id as it was added.
        outcome: The last job observed (terminal), or the ``JobWaitError`` the wait
            ended with (the same error a lone ``JobWaiter`` raises).
        reason: Why it ended (:class:`EndReason`): ``DONE`` for a job in a final
            status (returned, or failed / canceled and raised), ``ERROR`` for fetch
            and status errors, ``TIMEOUT`` at its deadline.
    """

    job_id: str
    outcome: Any
    reason: EndReason = EndReason.DONE

    @property
    def cancel_job(self) -> bool:
        """``True`` when the job timed out and still runs remotely: call
        ``cancel(job_id)`` if the caller gave ``cancel=``."""
        return self.reason.cancels_job

    @property
    def error(self) -> JobWaitError | None:
        """The error the job ended with, or ``None`` if it ended with a job."""
        return self.outcome if isinstance(self.outcome, JobWaitError) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged:
    """A job's status changed (the first observation counts): call
    ``on_status(job_id, job, status)``. Only returned by a fleet created with
    ``report_status=True``, before the job's ``Finished`` if the change ended it.

    Attributes:
        job_id: The id as it was added.
        job: The job payload just observed.
        status: Its new status.
    """

    job_id: str
    job: Any
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelJobs:
    """The fleet stopped before these jobs had an outcome: cancel them remotely (if
    ``cancel=`` was given). After ``fail_fast``, expect ``Raise`` next; after
    ``Interrupted``, the fleet is done.

    Attributes:
        ids: Every job that had no outcome yet, batches in flight included (none
            after ``Interrupted(reason=EndReason.HANDOVER)``: a handover never
            cancels).
        reason: ``EndReason.INTERRUPT`` (``fail_fast``, or ``Interrupted``), or
            ``EndReason.HANDOVER``.
    """

    ids: tuple[str, ...]
    reason: EndReason = EndReason.INTERRUPT


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSleep:
    """Nothing to do now: sleep, then call ``next_action`` again.

    Attributes:
        seconds: Sleep at most this long, and wake early when a batch in flight
            reports. ``None``: no timer is set; wait for a batch in flight to report.
            Never ``None`` when nothing is in flight. Always > 0, and chosen so that
            ``now + seconds`` reaches the moment it stands for in float arithmetic.
    """

    seconds: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AllDone:
    """Every job added has its outcome and no batch is in flight: return
    ``fleet.results``, or ``add`` more jobs and call ``next_action`` again."""


FleetAction = (
    PollBatch | StatusChanged | PollReport | Finished | CancelJobs | FleetSleep | AllDone | Raise
)


# --- errors ------------------------------------------------------------------------------


class JobMissingError(LookupError):
    """A batch response did not include a job it was asked for.

    The fleet reports it to that job's waiter as a retryable fetch failure, so it
    becomes the ``__cause__`` of the ``JobFetchError`` raised when the job's
    ``max_fetch_errors`` runs out.

    Attributes:
        job_id: The id that was missing.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"the batch response did not include job {job_id!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id,))


# --- helpers for drivers -----------------------------------------------------------------


def batch_observed(ids: tuple[str, ...], result: Any, now: float) -> BatchObserved | BatchFailed:
    """The event for a batch fetch that returned ``result``: a mapping of id to job,
    or ``Fetched(mapping, retry_after=...)`` to pass a server hint along.

    Anything else is a bug in the fetch (or an API answering something unexpected):
    it becomes a non-retryable ``BatchFailed`` whose error, a ``TypeError``, says what
    came back, so every job of the batch ends with ``JobFetchError`` instead of a raw
    exception escaping the wait.
    """
    jobs, hint = (result.job, result.retry_after) if type(result) is Fetched else (result, None)
    if not isinstance(jobs, Mapping):
        error = TypeError(
            f"a batch fetch must return a mapping of job id to job, got {type(jobs).__name__}"
        )
        return BatchFailed(ids=ids, error=error, now=now, retryable=False)
    return BatchObserved(ids=ids, jobs=jobs, now=now, retry_after=hint)


def single_job(job_id: str, result: Any) -> Any:
    """Wrap what a single-job ``fetch_one(job_id)`` returned as a batch result of one
    (keeping a ``Fetched`` hint), so one-at-a-time APIs drive a fleet unchanged."""
    if type(result) is Fetched:
        return Fetched({job_id: result.job}, retry_after=result.retry_after)
    return {job_id: result}


def make_fleet(
    options: Mapping[str, Any],
    *,
    one_by_one: bool = False,
    report_status: bool = False,
    report_polls: bool = False,
) -> JobFleet:
    """The fleet an adapter should drive, built from the keywords its caller passed.

    Args:
        options: ``JobFleet`` keywords (per-job ``JobWaiter`` options except
            ``job_id``, and the fleet's own).
        one_by_one: The caller polls each job on its own (``fetch_one=``): forces
            ``max_batch=1``.
        report_status: The caller gave ``on_status``: return ``StatusChanged``.
        report_polls: The caller gave ``on_poll``: return a ``PollReport`` per job polled.

    Raises:
        TypeError: An unknown option, or ``max_batch`` other than 1 with ``fetch_one``.
        ValueError: An invalid option value (from ``JobFleet``).
    """
    allowed = {*JobWaiter.OPTIONS, *JobFleet.FLEET_OPTIONS, "api"} - {"job_id"}
    unknown = [name for name in options if name not in allowed]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    if one_by_one:
        if options.get("max_batch", 1) != 1:
            raise TypeError(
                "this source reads one job per request (fetch_one=): max_batch must be 1"
            )
        options = {**options, "max_batch": 1}
    return JobFleet(**options, report_status=report_status, report_polls=report_polls)


def batch_failed(
    ids: tuple[str, ...],
    error: Exception,
    now: float,
    is_retryable: Callable[[BaseException], bool] = default_is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = default_retry_after_of,
) -> BatchFailed:
    """The event for a batch fetch that raised ``error``, classified exactly as
    :func:`jobwait._plumbing.fetch_failed` classifies a single fetch (a classifier that raises
    makes the failure not retryable). Only pass ``Exception``: cancellation must
    propagate."""
    event = fetch_failed(error, now, is_retryable, retry_after_of)
    return BatchFailed(
        ids=ids,
        error=event.error,
        now=now,
        retryable=event.retryable,
        retry_after=event.retry_after,
    )


# --- the scheduler -----------------------------------------------------------------------

_ALL_DONE: Final = AllDone()
_MISSING: Final = object()
# What add(options=) takes: the per-job options and a job's own profile (api=).
_JOB_OPTIONS: Final = frozenset(JobWaiter.OPTIONS) - {"job_id"} | {"api"}
# A deferred poll goes out when this share of the predicted time has passed.
_PREDICTION_SHARE: Final = 0.9


def _positive_int(name: str, value: object) -> int:
    return check_count(f"JobFleet({name}=...)", value, minimum=1)


def _limit(name: str, value: object) -> int | None:
    return None if value is None else check_count(f"JobFleet({name}=...) or None", value, minimum=1)


def _seconds_or_none(name: str, value: object) -> float | None:
    if value is None:
        return None
    seconds = usable_seconds(value)
    if seconds is None or seconds <= 0:
        raise ValueError(f"JobFleet({name}={value!r}) must be a finite number > 0 or None")
    return seconds


def _seconds_until(now: float, target: float) -> float:
    # The driver computes now + seconds (a virtual clock does exactly that); make sure
    # it reaches target, or a float rounding would ask for the same sleep forever.
    seconds = target - now
    while now + seconds < target:
        seconds = math.nextafter(seconds, math.inf)
    return seconds


def ionq_predicted_seconds(job: Any) -> float | None:
    """Seconds until IonQ predicts ``job`` completes: ``(predicted_wait_time_ms +
    predicted_execution_duration_ms) / 1000``, a missing or invalid field counting 0;
    ``None`` when neither field is a finite number >= 0 or the sum is 0."""
    total = 0.0
    found = False
    for name in ("predicted_wait_time_ms", "predicted_execution_duration_ms"):
        value = finite(read_field(job, name, None))
        if value is not None and value >= 0:
            total += value
            found = True
    return total / 1000.0 if found and 0 < total < math.inf else None


FLEET_SNAPSHOT_FORMAT: Final = "jobwait.JobFleet/1"
# Where each of the fleet's own options lives (the names come from FleetOptions).
_FLEET_SLOTS: Final = {
    "max_batch": "_max_batch",
    "batch_window": "_batch_window",
    "max_polls_per_second": "_budget",
    "max_concurrency": "_max_concurrency",
    "max_batch_errors": "_max_batch_errors",
    "fail_fast": "_fail_fast",
    "use_predictions": "_use_predictions",
    "request_timeout": "_request_timeout",
}
# Fleet options added after snapshots were first written: their value when a
# snapshot lacks them.
_FLEET_ADDED: Final[dict[str, Any]] = {"request_timeout": None}


def _held_due(waiter: JobWaiter, due: float, last: float, predicted: bool) -> float:
    # A stored due time (seconds from the snapshot's moment) of a job whose latest event
    # was `last` seconds from it, held to the job's own rules (JobWaiter._held_due).
    after = due - last
    held = waiter._held_due(after, deferred=predicted)
    return due if held == after else last + held


def _outcome_json(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, JobWaitError):
        return {"error": error_to_json(outcome)}
    return {"job": outcome if is_json(outcome) else None}


def _outcome_of(data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"an outcome must be an object, got {type(data).__name__}")
    if not is_json(data):
        raise ValueError("an outcome must be plain JSON data, nested at most 64 deep")
    if "error" in data:
        return error_from_json(data["error"])
    return data["job"]


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


class FleetTransition(tuple[FleetState, str, tuple[str, ...], FleetState]):
    """One edge of the fleet's diagram: (state, input, actions it may hand out, next
    state). ``input`` is ``"add()"``, ``"next_action()"`` or an event name."""

    __slots__ = ()

    def __new__(
        cls, state: FleetState, input: str, actions: tuple[str, ...], next_state: FleetState
    ) -> FleetTransition:
        return super().__new__(cls, (state, input, actions, next_state))


def fleet_transitions() -> list[FleetTransition]:
    """Every edge of the fleet's lifecycle, read from the table it runs on (for docs)."""
    return [
        FleetTransition(
            state,
            f"{key}()" if isinstance(key, str) else key.__name__,
            tuple(action.__name__ for action in actions),
            next_state,
        )
        for (state, key), (_, actions, next_states) in _TABLE.items()
        for next_state in next_states
    ]


class JobFleet:
    """The sans-IO scheduler that waits for many jobs; see the module's theory.

    Add jobs with :meth:`add`, then loop: perform what :meth:`next_action` returns and
    report batch results with :meth:`handle`. All options are keyword-only.

    Args:
        timeout: Per job, seconds from its ``add`` to its deadline (default 300);
            ``None`` never times out. As ``JobWaiter``.
        backoff: Per-job poll schedule (default 1 s, x1.5, cap 30 s). Its jitter is
            applied per batch, not per job. Each job retries a failed batch on its
            own schedule, as a lone waiter would.
        statuses: As ``JobWaiter``, per job.
        api: As ``JobWaiter``: a profile (or its name, or ``"auto"``) for every job,
            under the options given here; a job added with its own ``api`` in
            ``add(options=)`` reads with that one instead.
        raise_on_failure: As ``JobWaiter``, per job.
        raise_on_cancel: As ``JobWaiter``, per job.
        max_fetch_errors: As ``JobWaiter``, per job (a job missing from a batch
            response counts against it; a whole failed batch does not: that counts
            against ``max_batch_errors``).
        max_retry_after: As ``JobWaiter``; also caps a fleet-wide ``Retry-After`` hold.
        status_of: As ``JobWaiter``, per job.
        failure_of: As ``JobWaiter``, per job.
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
        use_predictions: Defer a job's poll by IonQ's predicted completion, once
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
        "_batch_window",
        "_budget",
        "_deferred",
        "_fail_fast",
        "_failure",
        "_final_polls",
        "_held",
        "_hold_until",
        "_in_flight",
        "_kept",
        "_max_batch",
        "_max_batch_errors",
        "_max_concurrency",
        "_max_retry_after",
        "_new_waiter",
        "_now",
        "_outbox",
        "_prototype",
        "_pushed",
        "_ready",
        "_ready_deadlines",
        "_report_polls",
        "_report_status",
        "_request_timeout",
        "_requests",
        "_results",
        "_row",
        "_sent",
        "_seq",
        "_state",
        "_timers",
        "_use_predictions",
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
        window = check_number("JobFleet(batch_window=...)", batch_window, minimum=0.0)

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
        self._max_batch = _positive_int("max_batch", max_batch)
        self._batch_window = window
        self._budget = _limit("max_polls_per_second", max_polls_per_second)
        self._max_concurrency = _limit("max_concurrency", max_concurrency)
        self._max_batch_errors = _limit("max_batch_errors", max_batch_errors)
        self._request_timeout = _seconds_or_none("request_timeout", request_timeout)
        self._fail_fast = bool(fail_fast)
        self._use_predictions = bool(use_predictions)
        self._report_status = bool(report_status)
        self._report_polls = bool(report_polls)
        self._now = -math.inf
        self._seq = 0
        self._waiters: dict[str, JobWaiter] = {}
        self._timers: list[tuple[float, int, str]] = []
        self._ready: OrderedDict[str, float] = OrderedDict()
        self._ready_deadlines: list[tuple[float, str]] = []
        self._in_flight: dict[tuple[str, ...], None] = {}
        self._sent: deque[float] = deque()
        self._hold_until = -math.inf
        self._batch_errors = 0
        self._requests = 0
        self._results: dict[str, Any] = {}
        self._final_polls: dict[str, int] = {}
        self._deferred: set[str] = set()
        # Pushes: ready jobs that go out at the next free slot (no batch_window hold),
        # and jobs a push took off their sleep: their timer entry stands for the poll
        # that was due (its time, predictions and jitter included), and the extra
        # poll's answer adds none.
        self._pushed: set[str] = set()
        self._kept: set[str] = set()
        # How long each job in flight was held back past its due time (to share a
        # request, or by the budget): its next poll is scheduled as if it had not been.
        self._held: dict[str, float] = {}
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
        if batch is not None and batch not in self._in_flight:
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
            del self._in_flight[batch]
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
                self._ready.pop(job_id, None)  # timers and deadlines are dropped lazily
                self._deferred.discard(job_id)
                self._pushed.discard(job_id)
                self._kept.discard(job_id)
                self._held.pop(job_id, None)
                discarded.append(job_id)
        return tuple(discarded)

    def _on_add(
        self, ids: list[str], now: float, options: Mapping[str, Any] | None = None
    ) -> tuple[str, ...]:
        waiters = self._waiters
        results = self._results
        timers = self._timers
        start = Start(now=now)
        added: list[str] = []
        for job_id in ids:
            if job_id in waiters or job_id in results:
                continue
            waiter = self._new_waiter(job_id, options)
            waiter.handle(start)
            waiters[job_id] = waiter
            heapq.heappush(timers, (now, self._seq, job_id))
            self._seq += 1
            added.append(job_id)
        return tuple(added)

    def _next_running(self, now: float) -> FleetAction:
        outbox = self._outbox
        if not outbox:
            self._collect(now)
            batch = self._dispatch(now)
            if batch is not None:
                return batch
            if not self._expire(now):
                if not self._waiters:
                    return _ALL_DONE
                return FleetSleep(seconds=self._sleep_for(now))
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
            self._read_alone(unanswered, now)
        for job_id in event.ids:
            waiter = waiters.get(job_id)
            if waiter is None:
                continue  # discarded while its batch was in flight
            job = jobs.get(job_id, _MISSING)
            if job is _MISSING:
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
            if hold is not None and now + hold > self._hold_until:
                self._hold_until = now + hold
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
            self._answer(job_id, waiter, waiter.handle(failed), now, _MISSING, factor, hint)
        self._check_fail_fast()

    def _read_alone(self, ids: tuple[str, ...], now: float) -> None:
        # Jobs a batch answer left out, read one by one by the driver: each its own read
        # in flight (and request), reported by itself.
        for job_id in ids:
            if job_id in self._waiters:
                self._in_flight[(job_id,)] = None
                self._requests += 1
                if self._budget is not None:
                    self._sent.append(now)

    def _on_refused(self, event: BatchRefused) -> None:
        # Not a poll of any job: the source cannot read batches. From now on one id per
        # request; these jobs go out again at once (pushed), their waiters untouched.
        self._max_batch = 1
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
        self._timers.clear()
        self._ready.clear()
        self._ready_deadlines.clear()
        self._deferred.clear()
        self._pushed.clear()
        self._kept.clear()
        self._held.clear()

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
            if state is State.SLEEPING and target not in self._ready:
                waiter.handle(Nudged(now=now, job_id=target))
                self._kept.add(target)
                self._push(target, now)
            elif state is State.POLLING:
                if flying is None:
                    flying = {i for batch in self._in_flight for i in batch}
                if target in flying:  # its answer may predate the push: one more
                    waiter.handle(Nudged(now=now, job_id=target))
            # Ready (or just added): due now anyway; this poll serves the push.

    def _push(self, job_id: str, now: float) -> None:
        # Due at the next free request slot: the front of the ready queue, no hold.
        ready = self._ready
        ready[job_id] = now
        ready.move_to_end(job_id, last=False)
        self._pushed.add(job_id)
        deadline = self._waiters[job_id].deadline
        if deadline is not None:
            heapq.heappush(self._ready_deadlines, (deadline, job_id))

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
        lag = self._held.pop(job_id, 0.0) if self._held else 0.0
        if type(action) is Sleep:
            if self._kept and job_id in self._kept:
                # After a push's extra poll: the timer entry that stood for the due poll
                # still does (the waiter resumed toward it).
                self._kept.discard(job_id)
                if self._report_polls:
                    self._outbox.append(poll_report(waiter))
                return
            seconds = action.seconds
            if lag and hint is None:
                # Held back to share a request: the rest of the schedule is not pushed
                # back with it (a sleep clamped to the deadline stays as it is).
                deadline = waiter.deadline
                if deadline is None or now + seconds < deadline:
                    seconds = max(0.0, seconds - lag)
            due = self._schedule(job_id, waiter, now, seconds, job, factor)
            if self._report_polls:
                self._outbox.append(poll_report(waiter, next_sleep=due - now))
        elif type(action) is Poll:  # a push came while this poll was in flight
            self._push(job_id, now)
            if self._report_polls:
                self._outbox.append(poll_report(waiter))
        else:
            assert type(action) is Done or type(action) is Raise
            if self._report_polls:
                self._outbox.append(poll_report(waiter))
            self._finish(job_id, action)

    def _schedule(
        self,
        job_id: str,
        waiter: JobWaiter,
        now: float,
        seconds: float,
        job: Any,
        factor: float | None,
    ) -> float:
        """Put the job's next poll on the timer heap; return when it is due."""
        deadline = waiter.deadline
        if factor is not None and (deadline is None or seconds < deadline - now):
            seconds *= factor
        due = now + seconds
        if (
            self._use_predictions
            and job is not _MISSING
            and waiter.phase is Phase.PENDING
            and job_id not in self._deferred
        ):
            predicted = ionq_predicted_seconds(job)
            if predicted is not None:
                target = now + _PREDICTION_SHARE * predicted
                if deadline is not None and target > deadline:
                    target = deadline
                if target > due:
                    due = target
                    self._deferred.add(job_id)
        heapq.heappush(self._timers, (due, self._seq, job_id))
        self._seq += 1
        return due

    def _finish(self, job_id: str, action: Done | Raise) -> None:
        waiter = self._waiters.pop(job_id)
        self._final_polls[job_id] = waiter.polls
        self._deferred.discard(job_id)
        if self._kept:
            self._kept.discard(job_id)
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

    def _collect(self, now: float) -> None:
        # Move every job whose poll is due from the timer heap to the ready queue.
        timers = self._timers
        ready = self._ready
        waiters = self._waiters
        deadlines = self._ready_deadlines
        kept = self._kept
        while timers and timers[0][0] <= now:
            due, _, job_id = heapq.heappop(timers)
            waiter = waiters.get(job_id)
            if waiter is None:
                continue
            if kept and job_id in kept:
                # The due poll came while a push's extra poll is still to go out or
                # in flight: that poll is the due poll (as the waiter counts it).
                kept.discard(job_id)
                continue
            ready[job_id] = due
            deadline = waiter.deadline
            if deadline is not None:
                heapq.heappush(deadlines, (deadline, job_id))
        # Entries of jobs that left the ready queue are dropped lazily; rebuild when
        # they outnumber the live ones, so the heap stays O(ready).
        if len(deadlines) > 2 * len(ready) + 64:
            live: list[tuple[float, str]] = []
            for job_id in ready:
                deadline = waiters[job_id].deadline
                if deadline is not None:
                    live.append((deadline, job_id))
            heapq.heapify(live)
            self._ready_deadlines = live

    def _min_ready_deadline(self) -> float | None:
        deadlines = self._ready_deadlines
        ready = self._ready
        while deadlines and deadlines[0][1] not in ready:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def _flush_at(self) -> float:
        # When the ready queue should go out, ignoring request slots.
        ready = self._ready
        if len(ready) >= self._max_batch or self._pushed:
            return -math.inf
        flush_at = next(iter(ready.values())) + self._batch_window
        deadline = self._min_ready_deadline()
        if deadline is not None and deadline < flush_at:
            flush_at = deadline
        timers = self._timers
        if not timers or timers[0][0] > flush_at:
            return -math.inf  # nobody else comes due in time to join: hold for nothing
        return flush_at

    def _slot_free(self, now: float) -> bool:
        return not (
            now < self._hold_until or self._concurrency_full() or now < self._budget_free_at(now)
        )

    def _concurrency_full(self) -> bool:
        limit = self._max_concurrency
        return limit is not None and len(self._in_flight) >= limit

    def _budget_free_at(self, now: float) -> float:
        # When the request budget next allows a request (-inf: now). A request sent at
        # t counts against every window that holds t, i.e. until now >= t + 1.0.
        budget = self._budget
        if budget is None:
            return -math.inf
        sent = self._sent
        while sent and now >= sent[0] + 1.0:
            sent.popleft()
        return sent[0] + 1.0 if len(sent) >= budget else -math.inf

    def _dispatch(self, now: float) -> PollBatch | None:
        ready = self._ready
        if not ready or now < self._flush_at():
            return None
        dues: dict[str, float] = {}
        if self._slot_free(now):
            # A job whose deadline has come goes first: it has one poll left.
            deadline = self._min_ready_deadline()
            if deadline is not None and deadline <= now:
                self._to_front(now)
            ids = [] if self._request_timeout is None else self._pick(now, dues)
            if not ids:
                for _ in range(min(len(ready), self._max_batch)):
                    job_id, due = ready.popitem(last=False)
                    ids.append(job_id)
                    dues[job_id] = due
        elif (
            now < self._hold_until
            and not self._concurrency_full()
            and now >= self._budget_free_at(now)
        ):
            # Only the server's Retry-After holds the fleet: a job at its deadline still
            # makes its last poll, as a lone wait does (its sleep never passes the
            # deadline, whatever the hint). The budget and concurrency are ours: those
            # end it at its deadline instead (_expire).
            ids = self._at_deadline(now, dues)
            if not ids:
                return None
        else:
            return None
        waiters = self._waiters
        pushed = self._pushed
        held = self._held
        nearest = math.inf
        woke = None
        for job_id in ids:
            lag = now - dues[job_id]
            if lag > 0:
                held[job_id] = lag
            waiter = waiters[job_id]
            if type(waiter.last_action) is Sleep:
                if woke is None:
                    woke = Woke(now=now)
                waiter.handle(woke)
            if pushed:
                pushed.discard(job_id)
            deadline = waiter.deadline
            if deadline is not None and deadline < nearest:
                nearest = deadline
        batch = tuple(ids)
        self._in_flight[batch] = None
        if self._budget is not None:
            self._sent.append(now)
        self._requests += 1
        time_left = None if nearest == math.inf else max(0.0, nearest - now)
        return PollBatch(ids=batch, time_left=time_left)

    def _to_front(self, now: float) -> None:
        # The ready jobs whose deadline has come move to the front of the queue.
        ready = self._ready
        deadlines = sorted(
            (deadline, job_id)
            for deadline, job_id in self._ready_deadlines
            if deadline <= now and job_id in ready
        )
        for _, job_id in reversed(deadlines):
            ready.move_to_end(job_id, last=False)

    def _at_deadline(self, now: float, dues: dict[str, float]) -> list[str]:
        # The ready jobs whose deadline has come, at most max_batch, out of the queue.
        deadlines = self._ready_deadlines
        ready = self._ready
        ids: list[str] = []
        while deadlines and deadlines[0][0] <= now and len(ids) < self._max_batch:
            _, job_id = heapq.heappop(deadlines)
            if job_id in ready:
                dues[job_id] = ready.pop(job_id)
                ids.append(job_id)
        return ids

    def _pick(self, now: float, dues: dict[str, float]) -> list[str]:
        # With request_timeout: a request is bounded by the nearest deadline among its
        # jobs (PollBatch.time_left). Jobs further from their deadline than one request
        # may take share a batch (their bounds are all request_timeout, the client's
        # own); a job nearer its deadline shares only with jobs whose deadlines are
        # within batch_window of its own, so no job's request is cut more than one
        # batch window before its own bound.
        ready = self._ready
        waiters = self._waiters
        near = now + self._request_timeout  # type: ignore[operator]
        window = self._batch_window
        limit = self._max_batch
        ids: list[str] = []
        group: float | None = None  # the first job's deadline when it is near; None: far
        for job_id in ready:
            deadline = waiters[job_id].deadline
            if deadline is not None and deadline < near:
                if ids and (group is None or abs(deadline - group) > window):
                    continue  # a request of its own (or of its own group) comes next
                if not ids:
                    group = deadline
            elif group is not None:
                continue  # a far job does not join a near group
            ids.append(job_id)
            if len(ids) >= limit:
                break
        for job_id in ids:
            dues[job_id] = ready.pop(job_id)
        return ids

    def _expire(self, now: float) -> bool:
        # A ready job at its deadline that could not go out (no request slot) ends now.
        deadlines = self._ready_deadlines
        ready = self._ready
        waiters = self._waiters
        expired = False
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            if job_id not in ready:
                continue
            del ready[job_id]
            self._pushed.discard(job_id)
            self._finish(job_id, waiters[job_id].handle(Expired(now=now)))  # type: ignore[arg-type]
            expired = True
        if expired:
            self._check_fail_fast()
        return expired

    def _sleep_for(self, now: float) -> float | None:
        target = math.inf
        timers = self._timers
        if timers:
            target = timers[0][0]
        if self._ready:
            flush_at = self._flush_at()
            if flush_at > now:
                target = min(target, flush_at)
            elif now < self._hold_until:
                target = min(target, self._hold_until)
            elif not self._concurrency_full():
                target = min(target, self._budget_free_at(now))
            # else: all max_concurrency slots are busy; a report wakes the driver.
            deadline = self._min_ready_deadline()
            if deadline is not None:
                target = min(target, deadline)
        if target == math.inf:
            return None
        return _seconds_until(now, target)

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
        return self._max_batch

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
        return len(self._in_flight)

    @property
    def requests(self) -> int:
        """``PollBatch`` actions handed out so far (one request each)."""
        return self._requests

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

    # --- snapshot / restore --------------------------------------------------------------

    def snapshot(self, *, last_jobs: bool = True) -> dict[str, Any]:
        """The fleet's full state as a JSON-serialisable dict, to resume elsewhere.

        It holds the options (per-job and the fleet's own; not the callables), every
        waiting job's waiter state and where it stands (its timer and due time, the
        ready queue, or a batch in flight), the request-budget window, the fleet-wide
        ``Retry-After`` hold, the count of failed batches in a row, the request count,
        every outcome so far (jobs, and errors as data), the final poll counts, and the
        outcomes and status changes ``next_action`` has not handed out yet (they are
        handed out again after :meth:`restore`; ``PollReport`` s are not kept). Times
        are kept relative to the fleet's latest ``now``, which is kept too (``"now"``).

        Args:
            last_jobs: Keep each waiting job's last payload (default). ``False`` drops
                them to save space (a durable store holding thousands of jobs); errors
                raised later then carry ``last_job=None`` until the next observation.
                Final outcomes are always kept.

        Raises:
            UsageError: The fleet stopped (``fail_fast`` or ``Interrupted``): there is
                nothing to resume.
        """
        if self._state is not FleetState.RUNNING:
            raise UsageError(
                f"cannot snapshot a fleet that stopped ({self._state.name}); "
                "take the snapshot before Interrupted"
            )
        now = self._now if math.isfinite(self._now) else 0.0
        where: dict[str, tuple[str, float | None, int | None]] = {}
        # A job a push took off its sleep (in _kept) is ready or in flight, and also
        # keeps its timer entry for the poll that was due: both are saved.
        timer_of: dict[str, tuple[float, int]] = {}
        for at, order, job_id in sorted(self._timers):
            if job_id not in self._waiters:
                continue
            timer_of[job_id] = (at - now, order)
            where[job_id] = ("timer", at - now, order)
        for job_id, at in self._ready.items():
            where[job_id] = ("ready", at - now, None)
        for ids in self._in_flight:
            for job_id in ids:
                where[job_id] = ("flight", None, None)
        jobs = []
        shared = self._prototype.options()
        for job_id, waiter in self._waiters.items():
            kind, due, seq = where[job_id]
            entry = {
                "id": job_id,
                "where": kind,
                "due": due,
                "seq": seq,
                "deferred": job_id in self._deferred,
                "last": waiter._now - now,
                **waiter._dump(keep_job=last_jobs),
            }
            # Options a job was added with (add(options=...)) that differ from the
            # fleet's; callables cannot be stored: restore passes the fleet's.
            if job_id in self._kept and kind != "timer" and job_id in timer_of:
                entry["kept"] = list(timer_of[job_id])
            own = {
                name: value
                for name, value in waiter.options().items()
                if value != shared[name] and not callable(value)  # type: ignore[literal-required]
            }
            if own:
                entry["options"] = options_to_json(own, partial=True)
            jobs.append(entry)
        pending: list[dict[str, Any]] = []
        for action in self._outbox:
            if type(action) is Finished:
                pending.append({"finished": action.job_id, "reason": action.reason.value})
            elif type(action) is StatusChanged:
                pending.append({"status": action.status, "job_id": action.job_id})
        fleet_options = {name: getattr(self, _FLEET_SLOTS[name]) for name in self.FLEET_OPTIONS}
        return {
            "format": FLEET_SNAPSHOT_FORMAT,
            "now": now,
            "options": {
                **options_to_json({**self._prototype.options(), "backoff": self._backoff}),
                **fleet_options,
            },
            "jobs": jobs,
            "ready": list(self._ready),  # the ready queue's order: oldest due first
            "pushed": sorted(self._pushed),
            "seq": self._seq,
            "sent": [t - now for t in self._sent],
            "hold": None if self._hold_until == -math.inf else self._hold_until - now,
            "batch_errors": self._batch_errors,
            "requests": self._requests,
            "results": {job_id: _outcome_json(o) for job_id, o in self._results.items()},
            "polls": dict(self._final_polls),
            "pending": pending,
        }

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

        The two modes, as for :meth:`JobWaiter.restore`:

        - ``same_clock=False`` (default): ``now`` is taken as the moment of the
          snapshot; every deadline, due time, hold and budget window moves by the time
          spent stored, so that time does not count.
        - ``same_clock=True``: ``now`` comes from the clock the fleet ran on (wall
          time shared by every worker, Redis ``TIME``): deadlines and due times keep
          their absolute times, so time spent stored counts. A job whose next poll came
          due while stored is polled at once; one whose deadline passed while stored
          makes that poll, its last, as a lone wait that ran late does, and ends as a
          lone wait's last poll at its deadline ends (its job, if it finished; else
          ``JobTimeoutError``, handed out as ``Finished(reason=EndReason.TIMEOUT)``). A
          ``now`` earlier than the snapshot's (clock skew between machines) counts as no
          time passed.

        Example (a worker that hands a fleet over to the next one)::

            blob = json.dumps(fleet.snapshot())
            fleet.handle(Interrupted(now=time.time(), reason=EndReason.HANDOVER))
            ...                                   # another process, later
            fleet = JobFleet.restore(json.loads(blob), now=time.time(), same_clock=True)

        Raises:
            ValueError: A corrupted, truncated or foreign snapshot, or an invalid
                option in it (the message names what is wrong).
        """
        if not isinstance(snapshot, dict) or snapshot.get("format") != FLEET_SNAPSHOT_FORMAT:
            raise ValueError(
                f"not a JobFleet snapshot of format {FLEET_SNAPSHOT_FORMAT!r}"
                + (f" (format {snapshot.get('format')!r})" if isinstance(snapshot, dict) else "")
            )
        now = check_number("JobFleet.restore(now=...)", now)
        try:
            fleet = cls._rebuild(
                snapshot,
                now=now,
                same_clock=same_clock,
                given={"status_of": status_of, "failure_of": failure_of, "rng": rng},
                flags={"report_status": report_status, "report_polls": report_polls},
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(f"invalid JobFleet snapshot: {type(exc).__name__}: {exc}") from exc
        return fleet

    @classmethod
    def _rebuild(
        cls,
        snapshot: dict[str, Any],
        *,
        now: float,
        same_clock: bool,
        given: dict[str, Any],
        flags: dict[str, Any],
    ) -> JobFleet:
        # Every stored time is held to the rule that set it (a job's due poll to its
        # waiter's _held_due, a hold to max_retry_after, the budget window to now):
        # the snapshot may come from storage anyone could write.
        taken = check_number("now", snapshot["now"])
        base = min(now, taken) if same_clock else now  # the snapshot's moment, here
        options = snapshot["options"]
        job_options = options_from_json(options, **given)
        fleet_options = {
            name: options[name]
            if name in options or name not in _FLEET_ADDED
            else _FLEET_ADDED[name]
            for name in cls.FLEET_OPTIONS
        }
        fleet = cls(**fleet_options, **job_options, **flags)
        fleet._now = base
        waiters = fleet._waiters
        again: list[str] = []
        ready: dict[str, float] = {}
        top = check_count("seq", snapshot["seq"])
        for entry in snapshot["jobs"]:
            job_id = entry["id"]
            if not isinstance(job_id, str) or job_id in waiters:
                raise ValueError(f"job id {job_id!r} is not a string, or is listed twice")
            own = entry.get("options")
            if own is not None:
                own = options_from_json(own, partial=True, rng=given["rng"])
            waiter = fleet._new_waiter(job_id, own)
            last = check_number("last", entry["last"], maximum=0.0)
            waiter._load(entry, base + last)
            waiters[job_id] = waiter
            deferred = entry["deferred"]
            if not isinstance(deferred, bool):
                raise TypeError(f"job {job_id!r}: deferred must be a boolean")
            if deferred:
                fleet._deferred.add(job_id)
            predicted = deferred and fleet._use_predictions
            where = entry["where"]
            if where == "timer":
                seq = check_count("seq", entry["seq"])
                top = max(top, seq + 1)
                due = _held_due(waiter, check_number("due", entry["due"]), last, predicted)
                fleet._timers.append((base + due, seq, job_id))
            elif where == "ready":  # due at or before the snapshot's moment
                ready[job_id] = base + held_to(check_number("due", entry["due"]), 0.0)
            elif where == "flight":
                again.append(job_id)
            else:
                raise ValueError(f"job {job_id!r}: unknown place {where!r}")
            kept = entry.get("kept")
            if kept is not None and where != "timer":
                seq = check_count("seq", kept[1])
                top = max(top, seq + 1)
                due = _held_due(waiter, check_number("kept", kept[0]), last, predicted)
                fleet._timers.append((base + due, seq, job_id))
                fleet._kept.add(job_id)
        order = snapshot["ready"]
        if sorted(order) != sorted(ready):
            raise ValueError("the ready queue does not list the ready jobs")
        for job_id in order:
            fleet._ready[job_id] = ready[job_id]
            deadline = waiters[job_id].deadline
            if deadline is not None:
                fleet._ready_deadlines.append((deadline, job_id))
        pushed = snapshot.get("pushed", [])
        if not set(pushed) <= set(ready):
            raise ValueError("pushed jobs must be ready")
        fleet._pushed = set(pushed)
        fleet._seq = top
        for job_id in again:  # in flight when saved: due now, asked again
            if job_id in fleet._kept:  # a push's extra poll: it stays the pushed one
                fleet._ready[job_id] = base
                fleet._pushed.add(job_id)
                deadline = waiters[job_id].deadline
                if deadline is not None:
                    fleet._ready_deadlines.append((deadline, job_id))
                continue
            fleet._timers.append((base, fleet._seq, job_id))
            fleet._seq += 1
        heapq.heapify(fleet._timers)
        heapq.heapify(fleet._ready_deadlines)
        # Requests were sent at or before the snapshot's moment; a hold lasts at most
        # max_retry_after from the failure that set it, which came before that moment.
        fleet._sent = deque(base + held_to(check_number("sent", t), 0.0) for t in snapshot["sent"])
        hold = snapshot["hold"]
        if hold is not None:
            hold = held_to(check_number("hold", hold), fleet._max_retry_after)
            fleet._hold_until = base + hold
        fleet._batch_errors = check_count("batch_errors", snapshot["batch_errors"])
        fleet._requests = check_count("requests", snapshot["requests"])
        results = snapshot["results"]
        fleet._results = {str(k): _outcome_of(v) for k, v in results.items()}
        if set(fleet._results) & set(waiters):
            raise ValueError("a job is both waiting and finished")
        polls = snapshot["polls"]
        fleet._final_polls = {str(k): check_count("polls", v) for k, v in polls.items()}
        for item in snapshot["pending"]:
            if "finished" in item:
                job_id = item["finished"]
                fleet._outbox.append(
                    Finished(
                        job_id=job_id,
                        outcome=fleet._results[job_id],
                        reason=EndReason(item["reason"]),
                    )
                )
            elif flags["report_status"]:
                job_id = item["job_id"]
                waiter_now = waiters.get(job_id)
                job = fleet._results.get(job_id) if waiter_now is None else waiter_now.last_job
                fleet._outbox.append(StatusChanged(job_id=job_id, job=job, status=item["status"]))
        fleet._now = now
        return fleet

    def __repr__(self) -> str:
        return (
            f"<JobFleet waiting={len(self._waiters)} finished={len(self._results)} "
            f"in_flight={len(self._in_flight)} requests={self._requests}>"
        )
