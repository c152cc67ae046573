"""The vocabulary between a driver and the core: events in, actions out.

Events say what happened (the driver reports them); actions say what to do next (the
core decides them). All are frozen, slotted, keyword-only dataclasses named as nouns.
Every event carries ``now``: monotonic seconds read by the driver from its own clock,
because the core never reads one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import JobWaitError

__all__ = [
    "Action",
    "AllDone",
    "BatchFailed",
    "BatchObserved",
    "BatchRefused",
    "CancelJobs",
    "Done",
    "EndReason",
    "Event",
    "Expired",
    "FetchFailed",
    "Fetched",
    "Finished",
    "FleetEvent",
    "FleetSleep",
    "Interrupted",
    "Nudged",
    "Observed",
    "Poll",
    "PollBatch",
    "Raise",
    "SharedFetchFailed",
    "Sleep",
    "Start",
    "StatusChanged",
    "Woke",
]


class EndReason(enum.Enum):
    """Why a wait ended: part of what the core tells the driver, so that the one
    decision that reaches outside (cancel the remote job or not) is never the
    driver's.

    Only ``TIMEOUT`` and ``INTERRUPT`` cancel the remote job (:attr:`cancels_job`): a
    worker that hands a wait over to another process (``HANDOVER``) never does.
    """

    DONE = "done"
    """The job reached a final status (returned, or raised as ``JobFailedError`` /
    ``JobCanceledError``): there is nothing left to cancel."""
    ERROR = "error"
    """A fetch or status error ended the wait (``JobFetchError``, ``JobStatusError``):
    the job may still run, but jobwait cannot tell, so it is left alone."""
    TIMEOUT = "timeout"
    """The deadline passed (``JobTimeoutError``): the job still runs; cancel it."""
    INTERRUPT = "interrupt"
    """The caller stopped the wait (Ctrl-C, a cancelled task) or ``fail_fast``
    stopped the fleet: cancel the jobs still running."""
    HANDOVER = "handover"
    """The wait moves to another process (worker shutdown, redelivery, rebalancing):
    save a snapshot first; never cancel the remote job."""

    @property
    def cancels_job(self) -> bool:
        """``True`` for ``TIMEOUT`` and ``INTERRUPT``: call ``cancel``."""
        return self is EndReason.TIMEOUT or self is EndReason.INTERRUPT


# --- events (inputs) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """The wait begins. The waiter answers :class:`Poll`.

    Attributes:
        now: Monotonic seconds; the timeout counts from here.
    """

    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """A fetch returned the job.

    Attributes:
        job: The raw job payload, a mapping or any object; read with ``status_of``.
        now: Monotonic seconds when the response arrived.
        retry_after: A server hint in seconds (``Retry-After``): a floor for the next
            sleep, capped at ``max_retry_after``. Negative, NaN or infinite is ignored.
    """

    job: Any
    now: float
    retry_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchFailed:
    """A fetch raised instead of returning the job.

    Attributes:
        error: The exception the fetch raised; it becomes the ``__cause__`` of the
            error the wait ends with, if it ends because of it.
        now: Monotonic seconds when the failure was seen.
        retryable: ``True`` if retrying may help (network error, 429, 5xx). A
            non-retryable failure ends the wait at once with ``JobFetchError``.
        retry_after: A server hint in seconds, as for :class:`Observed`.
    """

    error: BaseException
    now: float
    retryable: bool = True
    retry_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedFetchFailed:
    """A request that fetched this job together with others (a ``JobFleet`` batch)
    failed in a way retrying may fix. Only a scheduler sends it; a lone driver sends
    :class:`FetchFailed`.

    The scheduler counts such failures against its own shared budget (the fleet's
    ``max_batch_errors``), so this one does not count against ``max_fetch_errors``; it
    is a poll of this job (``polls`` counts every fetch attempt). The waiter answers as
    for a retryable ``FetchFailed``: its
    own next backoff interval (a ``retry_after`` hint is a floor), or
    ``JobTimeoutError`` at the deadline, with ``error`` as the cause.

    Attributes:
        error: The exception the shared request raised.
        now: Monotonic seconds when the failure was seen.
        retry_after: A server hint in seconds, as for :class:`Observed`.
        spent: Set when this failure spent the shared budget: what was spent (e.g.
            ``"5 batch requests in a row failed (max_batch_errors=5)"``). The wait
            then ends with ``JobFetchError`` chained to ``error``, with a note naming
            the budget, and the failure counts as a poll.
    """

    error: BaseException
    now: float
    retry_after: float | None = None
    spent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Woke:
    """The sleep the waiter asked for is over. The waiter answers :class:`Poll`.

    Attributes:
        now: Monotonic seconds after the sleep.
    """

    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Expired:
    """The deadline passed while the poll due was held back (by a scheduler that
    shares a request budget among many waiters, such as ``JobFleet``). The waiter
    answers ``Raise(JobTimeoutError)``, exactly as a lone wait ends at its deadline.

    A lone driver never sends it: it always polls at the deadline.

    Attributes:
        now: Monotonic seconds, at or past the deadline.
        cause: The last fetch error, if the last attempt failed; it becomes the
            ``JobTimeoutError``'s ``__cause__``.
    """

    now: float
    cause: BaseException | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted:
    """The driver stops waiting before every job has an outcome. Only a
    ``JobFleet`` takes it (it knows which jobs are unfinished, in flight included);
    a lone driver interrupted while waiting cancels its job exactly when
    ``reason.cancels_job``.

    The fleet stops: its next ``next_action`` returns ``CancelJobs(ids, reason)``,
    listing every unfinished job for ``INTERRUPT`` and none for ``HANDOVER``. Take
    ``fleet.snapshot()`` *before* a handover: the snapshot carries the wait on.

    Attributes:
        now: Monotonic seconds (the driver's clock).
        reason: ``EndReason.INTERRUPT`` (default) or ``EndReason.HANDOVER``.
    """

    now: float
    reason: EndReason = EndReason.INTERRUPT


@dataclass(frozen=True, slots=True, kw_only=True)
class Nudged:
    """A push (a webhook, a queue message, a long poll's answer) says the job may have
    changed: look now instead of waiting out the sleep. Drivers send it when a
    :class:`~jobwait.Wakeup` was woken for this job.

    While SLEEPING the waiter answers :class:`Poll` at once, without advancing its
    backoff: after that extra poll the schedule continues toward the poll that was
    due. While POLLING it answers :class:`Poll` (the poll in flight stands) and
    remembers the nudge: one more poll follows right after, since the answer in
    flight may predate the push. Nudges before a poll starts are one.

    Attributes:
        now: Monotonic seconds when the driver acted on the wake.
        job_id: The job the wake was for, or ``None`` (a fleet routes by it; a lone
            waiter only checks it matches its own ``job_id``).
    """

    now: float
    job_id: str | None = None


Event = Start | Observed | FetchFailed | SharedFetchFailed | Woke | Expired | Nudged


# --- actions (outputs) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Poll:
    """Fetch the job now, then report :class:`Observed` or :class:`FetchFailed`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    """Sleep this many seconds, then report :class:`Woke`.

    Attributes:
        seconds: Never negative, never past the deadline.
    """

    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """The wait is over: return this job to the caller.

    Attributes:
        job: The last job observed, in a terminal status.
    """

    job: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Raise:
    """The wait is over: raise this error.

    Attributes:
        error: The :class:`JobWaitError` to raise (its ``__cause__`` is already set).
        reason: Why the wait ended (``DONE`` for a failed or canceled job, ``ERROR``
            for fetch and status errors, ``TIMEOUT`` at the deadline).
    """

    error: JobWaitError
    reason: EndReason = EndReason.ERROR

    @property
    def cancel_job(self) -> bool:
        """``True`` when the remote job still runs and should be canceled (the
        deadline passed): drivers given ``cancel=`` call it once."""
        return self.reason.cancels_job


Action = Poll | Sleep | Done | Raise


# --- fetch results -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a ``fetch`` callable may return instead of the bare job, to pass a server
    hint along with it. Adapters unwrap it into :class:`Observed`.

    Attributes:
        job: The job payload.
        retry_after: Seconds the server asked to wait before the next poll, or ``None``.
    """

    job: Any
    retry_after: float | None = None


# --- the fleet's events (the driver reports) ------------------------------------------


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


# --- the fleet's actions (the fleet decides) ------------------------------------------


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
