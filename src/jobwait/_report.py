"""The per-poll report: what a wait's ``on_poll`` hook hears after every poll.

Progress bars, metrics and logs want to hear about every poll, not only status changes.
The core builds one small record per poll from what the waiter (or, for many jobs, the
fleet) already knows, so every adapter reports the same thing and decides nothing:
the adapter calls :func:`poll_report` right after the waiter handled the poll's
``Observed`` or ``FetchFailed`` and hands the record to ``on_poll``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._protocol import Poll, Sleep
from ._statuses import Phase
from ._waiter import JobWaiter

__all__ = ["PollReport", "poll_report"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PollReport:
    """One poll of one job, as passed to ``on_poll`` after every poll.

    Attributes:
        job_id: The job's id (``None`` when a single wait was given none).
        status: The last status read: this poll's, or when this poll failed the last
            one known; ``None`` before any was read.
        phase: The :class:`~jobwait.Phase` of ``status``, or ``None`` with it.
        polls: Fetch attempts so far, this one included (successful or not).
        elapsed: Seconds from the start of the wait to this poll's result.
        next_sleep: Seconds until the next poll, or ``None`` when this was the last poll
            (the wait returns or raises next).
        error: The exception the fetch raised if this poll failed, else ``None``.
    """

    job_id: str | None
    status: str | None
    phase: Phase | None
    polls: int
    elapsed: float
    next_sleep: float | None
    error: BaseException | None = None

    @property
    def finished(self) -> bool:
        """``True`` when this was the wait's last poll (``next_sleep is None``)."""
        return self.next_sleep is None


def poll_report(waiter: JobWaiter, *, next_sleep: float | None = None) -> PollReport:
    """The report of the poll ``waiter`` has just handled (``Observed`` or ``FetchFailed``).

    Args:
        waiter: The waiter, right after it answered the poll's event.
        next_sleep: Seconds until the next poll when a scheduler (``JobFleet``) decides
            it rather than the waiter's own ``Sleep``; ignored when the wait is over.
    """
    action = waiter.last_action
    sleep: float | None
    if type(action) is Sleep:
        sleep = action.seconds if next_sleep is None else next_sleep
    elif type(action) is Poll:
        sleep = 0.0  # an extra poll at once (a push woke the wait)
    else:
        sleep = None
    return PollReport(
        job_id=waiter.job_id,
        status=waiter.last_status,
        phase=waiter.phase,
        polls=waiter.polls,
        elapsed=waiter.elapsed,
        next_sleep=sleep,
        error=waiter.last_error,
    )
