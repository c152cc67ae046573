"""The fleet's plan: when each waiting job is polled, and which jobs share a request.

A :class:`~jobwait.JobFleet` is two things: a lifecycle with per-job answers (its own
module, ``_fleet.py``: it feeds each job's ``JobWaiter`` and hands out outcomes), and
this plan. The plan holds the timer heap, the ready queue and the request budget, and
decides only *when*: which ready jobs go out together, when a request slot is free,
how long the driver may sleep. It never decides what a poll means for a job: that is
the job's waiter's, asked by the fleet. The rules are written in the fleet's theory of
operation ("The schedule", "Pushes"); this module is where they run.

The plan reads each job's deadline from its waiter (``waiters``, the fleet's map of
waiting jobs), and never changes a waiter.

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

Jitter, predictions
-------------------

Waiters run without jitter; the fleet draws one factor per batch report
(``Backoff.batch_factor``) and scales the sleep of every job in that batch (never a
sleep clamped to a deadline, never when the report carried ``retry_after``), so jobs
due together stay together: ``"full"``: uniform(0, 1); ``"equal"`` and
``"decorrelated"``: uniform(0.5, 1).

With ``use_predictions=True``, the first pending observation of a job for which the
API predicts ``p`` more seconds (its profile's ``predicted_seconds``: for IonQ, the
default, ``predicted_wait_time_ms`` plus ``predicted_execution_duration_ms``), counted
from the observation at ``t``, defers that job's next poll to
``min(max(t + sleep, t + 0.9 * p), deadline)``. Each job defers at most once: every
later sleep is the waiter's own, within the backoff cap. The fleet knows no API: the
prediction is the profile's (``api=``).
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._numbers import check_count, check_number, usable_seconds
from ._statuses import Phase
from ._text import preview
from ._waiter import JobWaiter

__all__ = ["NO_JOB", "PREDICTION_SHARE", "Plan", "limit", "seconds_until"]

#: A deferred poll goes out when this share of the predicted time has passed.
PREDICTION_SHARE: Final = 0.9
# What the fleet passes for a poll that returned no job (a failure): no prediction.
NO_JOB: Final = object()


def limit(name: str, value: object) -> int | None:
    """A fleet's optional limit: ``None``, or an integer >= 1.

    Raises:
        ValueError: Anything else (the message names the ``JobFleet`` keyword).
    """
    return None if value is None else check_count(f"JobFleet({name}=...) or None", value, minimum=1)


def seconds_until(now: float, target: float) -> float:
    """Seconds from ``now`` to ``target`` such that ``now + seconds`` reaches ``target``
    in float arithmetic: the driver computes exactly that sum (a virtual clock does), and
    a rounding that falls short would ask for the same sleep forever."""
    seconds = target - now
    while now + seconds < target:
        seconds = math.nextafter(seconds, math.inf)
    return seconds


class Plan:
    """The timer heap, ready queue, batches in flight and request budget of one fleet.

    Every waiting job has one entry ``(due, seq, job_id)`` on the timer heap, is in the
    ready queue (due, oldest first), or is in a batch in flight. Entries of jobs that
    left are dropped lazily.
    """

    __slots__ = (
        "batch_window",
        "budget",
        "deferred",
        "held",
        "hold_until",
        "in_flight",
        "kept",
        "max_batch",
        "max_concurrency",
        "predict",
        "pushed",
        "ready",
        "ready_deadlines",
        "request_timeout",
        "requests",
        "sent",
        "seq",
        "timers",
        "use_predictions",
    )

    def __init__(
        self,
        *,
        max_batch: object,
        batch_window: object,
        budget: object,
        max_concurrency: object,
        request_timeout: object,
        use_predictions: bool,
        predict: Callable[[Any], float | None] | None,
    ) -> None:
        """The fleet's own options, checked here (the message names each as the
        ``JobFleet`` keyword).

        Raises:
            ValueError: An option out of its range, or not a number.
        """
        self.max_batch = check_count("JobFleet(max_batch=...)", max_batch, minimum=1)
        self.batch_window = check_number("JobFleet(batch_window=...)", batch_window, minimum=0.0)
        self.budget = limit("max_polls_per_second", budget)
        self.max_concurrency = limit("max_concurrency", max_concurrency)
        seconds = None if request_timeout is None else usable_seconds(request_timeout)
        if request_timeout is not None and (seconds is None or seconds <= 0):
            raise ValueError(
                f"JobFleet(request_timeout={preview(request_timeout)}) must be a finite "
                "number > 0 or None"
            )
        self.request_timeout = seconds
        self.use_predictions = use_predictions
        self.predict = predict
        self.seq = 0
        self.requests = 0
        self.timers: list[tuple[float, int, str]] = []
        self.ready: OrderedDict[str, float] = OrderedDict()
        self.ready_deadlines: list[tuple[float, str]] = []
        self.in_flight: dict[tuple[str, ...], None] = {}
        self.sent: deque[float] = deque()
        self.hold_until = -math.inf
        self.deferred: set[str] = set()
        # Pushes: ready jobs that go out at the next free slot (no batch_window hold),
        # and jobs a push took off their sleep: their timer entry stands for the poll
        # that was due (its time, predictions and jitter included), and the extra
        # poll's answer adds none.
        self.pushed: set[str] = set()
        self.kept: set[str] = set()
        # How long each job in flight was held back past its due time (to share a
        # request, or by the budget): its next poll is scheduled as if it had not been.
        self.held: dict[str, float] = {}

    # --- jobs coming and going ---------------------------------------------------------

    def due_now(self, job_id: str, now: float) -> None:
        """A job just added: due at once."""
        heapq.heappush(self.timers, (now, self.seq, job_id))
        self.seq += 1

    def forget(self, job_id: str) -> None:
        """A job that left (finished, or discarded): timers and deadlines go lazily."""
        self.ready.pop(job_id, None)
        self.deferred.discard(job_id)
        self.pushed.discard(job_id)
        if self.kept:
            self.kept.discard(job_id)
        if self.held:
            self.held.pop(job_id, None)

    def clear(self) -> None:
        """Every job left (the fleet stopped)."""
        self.timers.clear()
        self.ready.clear()
        self.ready_deadlines.clear()
        self.deferred.clear()
        self.pushed.clear()
        self.kept.clear()
        self.held.clear()

    def hold(self, now: float, seconds: float) -> None:
        """No request goes out before ``now + seconds`` (a server's ``Retry-After``)."""
        if now + seconds > self.hold_until:
            self.hold_until = now + seconds

    def push(self, job_id: str, now: float, deadline: float | None) -> None:
        """Due at the next free request slot: the front of the ready queue, no hold."""
        ready = self.ready
        ready[job_id] = now
        ready.move_to_end(job_id, last=False)
        self.pushed.add(job_id)
        if deadline is not None:
            heapq.heappush(self.ready_deadlines, (deadline, job_id))

    def read_alone(self, ids: tuple[str, ...], now: float) -> None:
        """Jobs a batch answer left out, read one by one: each its own read in flight."""
        for job_id in ids:
            self.in_flight[(job_id,)] = None
            self.requests += 1
            if self.budget is not None:
                self.sent.append(now)

    def schedule(
        self,
        job_id: str,
        waiter: JobWaiter,
        now: float,
        seconds: float,
        job: Any,
        factor: float | None,
        hint: float | None,
    ) -> float:
        """Put the job's next poll on the timer heap, ``seconds`` after ``now`` (its
        waiter's sleep); return when it is due. A poll held back to share a request does
        not push the rest of the schedule back (unless the sleep was clamped to the
        deadline or floored by a server hint); a batch's jitter ``factor`` and the API's
        prediction (once per job) stretch it."""
        deadline = waiter.deadline
        lag = self.held.pop(job_id, 0.0) if self.held else 0.0
        if lag and hint is None and (deadline is None or now + seconds < deadline):
            seconds = max(0.0, seconds - lag)
        if factor is not None and (deadline is None or seconds < deadline - now):
            seconds *= factor
        due = now + seconds
        if (
            self.use_predictions
            and job is not NO_JOB
            and waiter.phase is Phase.PENDING
            and job_id not in self.deferred
        ):
            predicted = self.predict(job) if self.predict is not None else None
            if predicted is not None:
                target = now + PREDICTION_SHARE * predicted
                if deadline is not None and target > deadline:
                    target = deadline
                if target > due:
                    due = target
                    self.deferred.add(job_id)
        heapq.heappush(self.timers, (due, self.seq, job_id))
        self.seq += 1
        return due

    # --- what is due -------------------------------------------------------------------

    def collect(self, now: float, waiters: Mapping[str, JobWaiter]) -> None:
        """Move every job whose poll is due from the timer heap to the ready queue."""
        timers = self.timers
        ready = self.ready
        deadlines = self.ready_deadlines
        kept = self.kept
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
            self.ready_deadlines = live

    def take(self, now: float, waiters: Mapping[str, JobWaiter]) -> list[str] | None:
        """The ids of the batch that goes out now (out of the ready queue, counted as
        a request in flight), or ``None`` when none may go now."""
        ready = self.ready
        if not ready or now < self._flush_at():
            return None
        dues: dict[str, float] = {}
        if self._slot_free(now):
            # A job whose deadline has come goes first: it has one poll left.
            deadline = self._min_ready_deadline()
            if deadline is not None and deadline <= now:
                self._to_front(now)
            ids = [] if self.request_timeout is None else self._pick(now, dues, waiters)
            if not ids:
                for _ in range(min(len(ready), self.max_batch)):
                    job_id, due = ready.popitem(last=False)
                    ids.append(job_id)
                    dues[job_id] = due
        elif (
            now < self.hold_until
            and not self._concurrency_full()
            and now >= self._budget_free_at(now)
        ):
            # Only the server's Retry-After holds the fleet: a job at its deadline still
            # makes its last poll, as a lone wait does (its sleep never passes the
            # deadline, whatever the hint). The budget and concurrency are ours: those
            # end it at its deadline instead (expired).
            ids = self._at_deadline(now, dues)
            if not ids:
                return None
        else:
            return None
        pushed = self.pushed
        held = self.held
        for job_id in ids:
            lag = now - dues[job_id]
            if lag > 0:
                held[job_id] = lag
            if pushed:
                pushed.discard(job_id)
        self.in_flight[tuple(ids)] = None
        if self.budget is not None:
            self.sent.append(now)
        self.requests += 1
        return ids

    def expired(self, now: float) -> list[str]:
        """The ready jobs at their deadline that could not go out (no request slot):
        out of the ready queue; the fleet ends each one."""
        deadlines = self.ready_deadlines
        ready = self.ready
        ids: list[str] = []
        while deadlines and deadlines[0][0] <= now:
            _, job_id = heapq.heappop(deadlines)
            if job_id in ready:
                del ready[job_id]
                self.pushed.discard(job_id)
                ids.append(job_id)
        return ids

    def sleep_for(self, now: float) -> float | None:
        """How long the driver may sleep before something is due (``None``: until a
        batch in flight reports)."""
        target = math.inf
        timers = self.timers
        if timers:
            target = timers[0][0]
        if self.ready:
            flush_at = self._flush_at()
            if flush_at > now:
                target = min(target, flush_at)
            elif now < self.hold_until:
                target = min(target, self.hold_until)
            elif not self._concurrency_full():
                target = min(target, self._budget_free_at(now))
            # else: all max_concurrency slots are busy; a report wakes the driver.
            deadline = self._min_ready_deadline()
            if deadline is not None:
                target = min(target, deadline)
        if target == math.inf:
            return None
        return seconds_until(now, target)

    # --- the rules -----------------------------------------------------------------------

    def _min_ready_deadline(self) -> float | None:
        deadlines = self.ready_deadlines
        ready = self.ready
        while deadlines and deadlines[0][1] not in ready:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    def _flush_at(self) -> float:
        # When the ready queue should go out, ignoring request slots.
        ready = self.ready
        if len(ready) >= self.max_batch or self.pushed:
            return -math.inf
        flush_at = next(iter(ready.values())) + self.batch_window
        deadline = self._min_ready_deadline()
        if deadline is not None and deadline < flush_at:
            flush_at = deadline
        timers = self.timers
        if not timers or timers[0][0] > flush_at:
            return -math.inf  # nobody else comes due in time to join: hold for nothing
        return flush_at

    def _slot_free(self, now: float) -> bool:
        return not (
            now < self.hold_until or self._concurrency_full() or now < self._budget_free_at(now)
        )

    def _concurrency_full(self) -> bool:
        limit = self.max_concurrency
        return limit is not None and len(self.in_flight) >= limit

    def _budget_free_at(self, now: float) -> float:
        # When the request budget next allows a request (-inf: now). A request sent at
        # t counts against every window that holds t, i.e. until now >= t + 1.0.
        budget = self.budget
        if budget is None:
            return -math.inf
        sent = self.sent
        while sent and now >= sent[0] + 1.0:
            sent.popleft()
        return sent[0] + 1.0 if len(sent) >= budget else -math.inf

    def _to_front(self, now: float) -> None:
        # The ready jobs whose deadline has come move to the front of the queue.
        ready = self.ready
        due = sorted(
            (deadline, job_id)
            for deadline, job_id in self.ready_deadlines
            if deadline <= now and job_id in ready
        )
        for _, job_id in reversed(due):
            ready.move_to_end(job_id, last=False)

    def _at_deadline(self, now: float, dues: dict[str, float]) -> list[str]:
        # The ready jobs whose deadline has come, at most max_batch, out of the queue.
        deadlines = self.ready_deadlines
        ready = self.ready
        ids: list[str] = []
        while deadlines and deadlines[0][0] <= now and len(ids) < self.max_batch:
            _, job_id = heapq.heappop(deadlines)
            if job_id in ready:
                dues[job_id] = ready.pop(job_id)
                ids.append(job_id)
        return ids

    def _pick(
        self, now: float, dues: dict[str, float], waiters: Mapping[str, JobWaiter]
    ) -> list[str]:
        # With request_timeout: a request is bounded by the nearest deadline among its
        # jobs (PollBatch.time_left). Jobs further from their deadline than one request
        # may take share a batch (their bounds are all request_timeout, the client's
        # own); a job nearer its deadline shares only with jobs whose deadlines are
        # within batch_window of its own, so no job's request is cut more than one
        # batch window before its own bound.
        ready = self.ready
        near = now + self.request_timeout  # type: ignore[operator]
        window = self.batch_window
        limit = self.max_batch
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
