"""The driver step: the one loop every fleet driver runs, as a sans-IO object.

Theory of operation
===================

A :class:`~jobwait.JobFleet` decides when each job is polled and which ids share a
request; what is left to a driver is to *read* the jobs, report how the read went and
pass on what the fleet hands out. Left to each driver, that part was written four
times (the sync and async fleet drivers, the scheduler that lets concurrent per-job
waits share requests, the Celery shard run) and drifted: which failures count against
whose budget, what a batch answer that leaves a job out means, when a single read is
sent instead of a batch read. :class:`FleetDriver` is that loop once, in the spirit of
h11's ``next_event`` and httpx's ``auth_flow``: it says "read these ids", the driver
hands back what came, and it never does IO itself.

A driver calls ``driver.step(now)`` in a loop and does what it returns:

- :class:`Read` (``ids``, ``batch``, ``time_left``): read these jobs, with one batch
  read (``batch``) or one single read of ``ids[0]``, bounding the request by
  ``time_left``; then report with :meth:`FleetDriver.read_done` or
  :meth:`FleetDriver.read_failed`. Several reads may be out at once (async drivers
  start a task per read); call ``step`` again at once.
- ``StatusChanged`` / ``PollReport`` / ``Finished`` / ``CancelJobs`` / ``Raise`` /
  ``FleetSleep`` / ``AllDone``: the fleet's own actions, passed on unchanged (see
  :class:`~jobwait.JobFleet`).

What the step decides, so that no driver does:

- **How a read went.** A returned value becomes ``BatchObserved`` (a mapping, or
  ``Fetched(mapping, retry_after=...)``, for a batch read; the job itself for a single
  read); an exception becomes ``BatchFailed``, classified by the driver's
  ``is_retryable`` and ``retry_after_of`` (a classifier that raises makes the failure
  final). Only ``Exception`` is reported: cancellation and ``KeyboardInterrupt`` are the
  driver's to re-raise.
- **Batch or single reads** (``reads``): ``"batch"`` (the source reads batches only),
  ``"single"`` (it reads one job per request: the fleet must have ``max_batch=1``), or
  ``"both"``. With ``"both"`` a poll of one job is a single read, exactly the request a
  lone wait sends, and batch reads start only when two or more jobs are due together.
  A batch answer the source cannot give (:func:`refuses_batch`: HTTP 400, 404, 405 or
  501, or a body that is not a batch answer) is not a poll of anyone: the fleet gets
  ``BatchRefused``, reads one job per request from then on and asks again at once.
- **A job a batch answer left out.** With ``"both"``, the batch is reported at once for
  the jobs it holds, and each job it left out is read alone (``Read(batch=False)``,
  handed out by the next ``step``; ``BatchObserved.unanswered`` keeps it in flight), so
  its own answer decides for it: an unknown id ends with the very error a lone wait
  gets. With ``"batch"`` it is a retryable miss of that job (``JobMissingError``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from ._errors import JobStatusError
from ._fetched import batch_failed, batch_observed, single_job
from ._fetched import is_retryable as default_is_retryable
from ._fetched import retry_after_of as default_retry_after_of
from ._fleet import JobFleet
from ._protocol import (
    AllDone,
    BatchObserved,
    BatchRefused,
    CancelJobs,
    Finished,
    FleetSleep,
    Nudged,
    PollBatch,
    Raise,
    StatusChanged,
)
from ._report import PollReport
from ._waiter import JobWaiter

__all__ = [
    "BATCH_REFUSED_STATUS_CODES",
    "FleetDriver",
    "Read",
    "Reads",
    "Step",
    "make_fleet",
    "make_waiter",
    "refuses_batch",
]

log = logging.getLogger("jobwait")

Reads = Literal["batch", "single", "both"]

#: HTTP answers to a batch read that say the source cannot read batches (no such
#: endpoint, method or query; not implemented), rather than that the jobs are unwell.
BATCH_REFUSED_STATUS_CODES: Final = frozenset({400, 404, 405, 501})


def refuses_batch(error: BaseException) -> bool:
    """Whether ``error``, raised by a batch read, says the source cannot read batches:
    an HTTP answer in :data:`BATCH_REFUSED_STATUS_CODES` (its ``status_code``), or a
    body that is not a batch answer (a :class:`~jobwait.JobStatusError`)."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status in BATCH_REFUSED_STATUS_CODES
    return isinstance(error, JobStatusError)


# --- machines from a driver's keywords -------------------------------------------------


def make_waiter(waiter: JobWaiter | None, options: Mapping[str, Any]) -> JobWaiter:
    """The waiter an adapter should drive: ``waiter`` as given, or a new one built
    from ``options`` (the ``JobWaiter`` keywords the caller passed).

    Raises:
        TypeError: If both are given, or an option is not a ``JobWaiter`` keyword.
        ValueError: If an option's value is invalid (from ``JobWaiter``).
    """
    # "api" is a constructor keyword too, merged by the waiter itself.
    unknown = [name for name in options if name not in JobWaiter.OPTIONS and name != "api"]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    if waiter is not None:
        if options:
            raise TypeError(
                f"pass either waiter= or JobWaiter options, not both (got {sorted(options)})"
            )
        if not isinstance(waiter, JobWaiter):
            raise TypeError(f"waiter= must be a jobwait.JobWaiter, got {waiter!r}")
        return waiter
    return JobWaiter(**options)


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


# --- the fleet step -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Read:
    """Read these jobs now, then report with :meth:`FleetDriver.read_done` (what the
    read returned) or :meth:`FleetDriver.read_failed` (what it raised).

    Attributes:
        ids: The job ids to read.
        batch: ``True``: one batch read of every id; ``False``: one single read of
            ``ids[0]`` (``ids`` holds exactly one id).
        time_left: Seconds to the nearest deadline of these jobs (``None``: none has
            one): bound the request by it, as a lone wait bounds its own.
    """

    ids: tuple[str, ...]
    batch: bool
    # Advice, as PollBatch.time_left: two reads of the same ids the same way are equal.
    time_left: float | None = field(default=None, compare=False)


Step = Read | StatusChanged | PollReport | Finished | CancelJobs | FleetSleep | AllDone | Raise


class FleetDriver:
    """Drive a :class:`~jobwait.JobFleet`: the one step every fleet driver runs.

    See the module's theory of operation. Add jobs to :attr:`fleet` (or with
    :meth:`add`), then loop on :meth:`step`.

    Args:
        fleet: The fleet to drive. With ``reads="single"`` it must have ``max_batch=1``.
        reads: What the source can read: ``"batch"`` (default), ``"single"`` or
            ``"both"``.
        is_retryable: Exception -> may retrying the read help? (default
            :func:`jobwait.is_retryable`).
        retry_after_of: Exception -> a server hint in seconds, or ``None``.

    Raises:
        ValueError: An unknown ``reads``, or ``"single"`` with a fleet that batches.
    """

    __slots__ = ("_fleet", "_is_retryable", "_queue", "_reads", "_retry")

    def __init__(
        self,
        fleet: JobFleet,
        *,
        reads: Reads = "batch",
        is_retryable: Callable[[BaseException], bool] = default_is_retryable,
        retry_after_of: Callable[[BaseException], float | None] = default_retry_after_of,
    ) -> None:
        if reads not in ("batch", "single", "both"):
            raise ValueError(f"FleetDriver(reads={reads!r}) must be 'batch', 'single' or 'both'")
        if reads == "single" and fleet.max_batch != 1:
            raise ValueError("FleetDriver(reads='single') needs a fleet with max_batch=1")
        self._fleet = fleet
        self._reads = reads
        self._is_retryable = is_retryable
        self._retry = retry_after_of
        # Single reads of jobs a batch answer left out, to hand out next.
        self._queue: deque[Read] = deque()

    @property
    def fleet(self) -> JobFleet:
        """The fleet being driven (add jobs, read results, snapshot it)."""
        return self._fleet

    def step(self, now: float) -> Step:
        """What the driver should do now (see the module theory).

        Raises:
            UsageError: From the fleet: ``now`` went backwards, or ``Raise`` was
                already returned.
        """
        if self._queue:
            return self._queue.popleft()
        action = self._fleet.next_action(now)
        if isinstance(action, PollBatch):
            ids = action.ids
            batch = self._reads == "batch" or (self._reads == "both" and len(ids) > 1)
            return Read(ids=ids, batch=batch, time_left=action.time_left)
        return action

    def read_done(self, read: Read, result: Any, now: float) -> None:
        """Report what ``read`` returned: for a batch read a mapping of id to job (or
        ``Fetched(mapping, retry_after=...)``), for a single read the job (or
        ``Fetched(job, ...)``). Then call :meth:`step`.

        Raises:
            UsageError: From the fleet: ``read`` is not out, or ``now`` went backwards.
        """
        ids = read.ids
        if not read.batch:
            self._fleet.handle(batch_observed(ids, single_job(ids[0], result), now))
            return
        event = batch_observed(ids, result, now)
        if self._reads == "both" and type(event) is BatchObserved:
            jobs = event.jobs
            missing = tuple(job_id for job_id in ids if job_id not in jobs)
            if missing:
                # Reported at once for the jobs it holds; each job it left out is read
                # alone, so its own answer (an unknown id's 404) decides for it.
                event = replace(event, unanswered=missing)
                self._fleet.handle(event)
                fleet = self._fleet
                self._queue.extend(
                    Read(ids=(job_id,), batch=False, time_left=fleet.time_left(job_id, now))
                    for job_id in missing
                    if fleet.is_waiting(job_id)
                )
                return
        self._fleet.handle(event)

    def read_failed(self, read: Read, error: Exception, now: float) -> None:
        """Report that ``read`` raised ``error``, then call :meth:`step`. Only pass
        ``Exception``: cancellation and ``KeyboardInterrupt`` must propagate.

        Raises:
            UsageError: From the fleet: ``read`` is not out, or ``now`` went backwards.
        """
        ids = read.ids
        if read.batch and self._reads == "both" and refuses_batch(error):
            log.debug(
                "jobwait: a batch read was refused (%s: %s); reading one job per request "
                "from now on",
                type(error).__name__,
                error,
            )
            self._fleet.handle(BatchRefused(ids=ids, now=now))
            return
        self._fleet.handle(batch_failed(ids, error, now, self._is_retryable, self._retry))

    def nudge(self, job_id: str | None, now: float) -> None:
        """A push concerns ``job_id`` (``None``: every job still waiting): hand it to
        the fleet as ``Nudged``. Call :meth:`step` next."""
        self._fleet.handle(Nudged(now=now, job_id=job_id))

    def __repr__(self) -> str:
        return f"<FleetDriver reads={self._reads!r} {self._fleet!r}>"
