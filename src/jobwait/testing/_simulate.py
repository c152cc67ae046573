"""Simulated waits: :func:`simulate` drives a waiter against a scripted job in virtual time.

A script is a timeline of statuses or a callable; a scripted fetch fails by returning a
:class:`Fail`. Pure: nothing here reads a clock or sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import JobWaitError
from .._fetched import fetch_failed, observed
from .._protocol import Done, Fetched, FetchFailed, Observed, Poll, Raise, Sleep, Start, Woke
from .._waiter import JobWaiter

__all__ = ["Fail", "Trace", "simulate"]


@dataclass(frozen=True, slots=True)
class Fail:
    """What a scripted fetch returns to fail instead of returning the job.

    Used by :func:`simulate` scripts and returned by ``JobBoard.fetcher``.

    Attributes:
        error: The exception the fetch "raised".
        retryable: Whether retrying may help.
        retry_after: A server hint in seconds, or ``None``.
    """

    error: BaseException
    retryable: bool = True
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """What :func:`simulate` saw.

    Attributes:
        polls: The virtual time of each fetch.
        sleeps: Each sleep the waiter asked for, in seconds.
        outcome: The job returned by ``Done``, the ``JobWaitError`` raised, or ``None``
            if the simulation stopped at ``max_polls`` before the wait finished.
        elapsed: Virtual seconds from start to the end of the simulation.
    """

    polls: list[float] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    outcome: Any = None
    elapsed: float = 0.0

    @property
    def error(self) -> JobWaitError | None:
        """The error the wait ended with, or ``None``."""
        return self.outcome if isinstance(self.outcome, JobWaitError) else None


Script = Sequence[tuple[float, Any]] | Callable[[float, int], Any]


def _timeline(script: Sequence[tuple[float, Any]]) -> Callable[[float, int], Any]:
    entries = sorted(
        ((float(t), {"status": v} if isinstance(v, str) else v) for t, v in script),
        key=lambda e: e[0],
    )
    if not entries:
        raise ValueError("simulate: a timeline needs at least one (time, status) entry")
    times = [t for t, _ in entries]
    jobs = [j for _, j in entries]
    last = len(times) - 1
    cursor = 0

    def at(now: float, _poll: int) -> Any:
        # The job's state at `now` is the last entry at or before it (the first entry
        # before that). Polls move forward in time, so a cursor suffices.
        nonlocal cursor
        i = cursor
        while i < last and times[i + 1] <= now:
            i += 1
        cursor = i
        return jobs[i]

    return at


def simulate(
    waiter: JobWaiter,
    script: Script,
    *,
    latency: float = 0.0,
    start: float = 0.0,
    max_polls: int = 1_000_000,
) -> Trace:
    """Drive ``waiter`` against a scripted job in virtual time.

    Args:
        waiter: A fresh :class:`~jobwait.JobWaiter` (state IDLE).
        script: Either a timeline, a list of ``(time, status_or_job)`` pairs (the job
            at a time is the last entry at or before it; a bare string ``s`` stands
            for ``{"status": s}``), or a callable ``(now, poll_index) -> result``
            where result is a job, a ``Fetched``, a :class:`Fail`, or an exception
            instance (a failed fetch, classified by :func:`jobwait.is_retryable`).
        latency: Virtual seconds each fetch takes.
        start: The virtual time of ``Start``.
        max_polls: Stop after this many polls (``outcome`` is then ``None``).

    Returns:
        The :class:`Trace`: poll times, sleeps, outcome and elapsed time.

    Raises:
        UsageError: If ``waiter`` was already started.
        ValueError: If ``latency`` is negative or the timeline is empty.
    """
    if not latency >= 0:
        raise ValueError(f"simulate(latency={latency!r}) must be >= 0")
    fetch = script if callable(script) else _timeline(script)
    polls: list[float] = []
    sleeps: list[float] = []
    handle = waiter.handle
    now = float(start)
    action = handle(Start(now=now))
    outcome: Any = None
    while True:
        kind = type(action)
        if kind is Sleep:
            seconds = action.seconds  # type: ignore[union-attr]
            sleeps.append(seconds)
            now += seconds
            action = handle(Woke(now=now))
        elif kind is Poll:
            if len(polls) >= max_polls:
                break
            index = len(polls)
            polls.append(now)
            result = fetch(now, index)
            now += latency
            if type(result) is Fail:
                action = handle(
                    FetchFailed(
                        error=result.error,
                        now=now,
                        retryable=result.retryable,
                        retry_after=result.retry_after,
                    )
                )
            elif isinstance(result, Exception):
                action = handle(fetch_failed(result, now))
            elif type(result) is Fetched:
                action = handle(observed(result, now))
            else:
                action = handle(Observed(job=result, now=now))
        elif kind is Done:
            outcome = action.job  # type: ignore[union-attr]
            break
        else:
            assert isinstance(action, Raise)
            outcome = action.error
            break
    return Trace(polls=polls, sleeps=sleeps, outcome=outcome, elapsed=now - start)
