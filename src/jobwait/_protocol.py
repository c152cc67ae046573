"""The vocabulary between a driver and the core: events in, actions out.

Events say what happened (the driver reports them); actions say what to do next (the
core decides them). All are frozen, slotted, keyword-only dataclasses named as nouns.
Every event carries ``now``: monotonic seconds read by the driver from its own clock,
because the core never reads one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ._errors import JobWaitError

__all__ = [
    "Action",
    "Done",
    "EndReason",
    "Event",
    "Expired",
    "FetchFailed",
    "Fetched",
    "Interrupted",
    "Nudged",
    "Observed",
    "Poll",
    "Raise",
    "SharedFetchFailed",
    "Sleep",
    "Start",
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
