"""The one place that turns a shard's fleet into a snapshot and back.

Durable waits run every fleet on the group clock (Redis server time, wall seconds) and
restore it on the same clock, so deadlines keep counting: a job given ``timeout=3600``
times out an hour after it was submitted, however long its shard sat in Redis.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any, Final

from jobwait import Expired, JobFleet, JobWaiter

from ._sources import Source

__all__ = ["new_snapshot", "restore_fleet", "snapshot_of"]

# Until JobFleet.snapshot()/restore() land in the core, a shard is saved as one
# JobWaiter snapshot per waiting job plus its due time (this format).
_INTERIM: Final = "jobwait.celery.shard/0"
_CORE: Final = hasattr(JobFleet, "snapshot")


def new_snapshot(options: Mapping[str, Any], ids: Iterable[str], now: float) -> dict[str, Any]:
    """The snapshot of a new shard: a fleet with ``options`` and ``ids`` added at ``now``.

    Raises:
        TypeError, ValueError: Invalid options (from ``JobFleet``).
    """
    fleet = JobFleet(**options)
    fleet.add(ids, now=now)
    return snapshot_of(fleet, options)


def snapshot_of(fleet: JobFleet, options: Mapping[str, Any]) -> dict[str, Any]:
    """The fleet as JSON-serialisable data."""
    if _CORE:
        return fleet.snapshot()
    due: dict[str, float] = {}
    for when, _, job_id in fleet._timers:
        due[job_id] = min(when, due.get(job_id, when))
    for job_id, when in fleet._ready.items():
        due[job_id] = min(when, due.get(job_id, when))
    jobs = [
        [waiter.snapshot(), due.get(job_id, fleet._now)]
        for job_id, waiter in fleet._waiters.items()
    ]
    return {"format": _INTERIM, "now": fleet._now, "jobs": jobs}


def restore_fleet(
    snapshot: Any, now: float, source: Source, options: Mapping[str, Any]
) -> JobFleet:
    """The fleet saved in ``snapshot``, on the group clock at ``now``.

    Raises:
        ValueError: A corrupted, truncated or foreign snapshot (names what is wrong).
    """
    if _CORE:
        return JobFleet.restore(
            snapshot,
            now=now,
            same_clock=True,
            status_of=source.status_of,
            failure_of=source.failure_of,
        )
    if not isinstance(snapshot, dict) or snapshot.get("format") != _INTERIM:
        raise ValueError(f"not a shard snapshot of format {_INTERIM!r}")
    try:
        taken = float(snapshot["now"])
        fleet = JobFleet(**options)
        fleet._now = taken
        for waiter_snapshot, due in snapshot["jobs"]:
            waiter = JobWaiter.restore(
                waiter_snapshot,
                now=taken,
                status_of=source.status_of,
                failure_of=source.failure_of,
            )
            assert waiter.job_id is not None
            fleet._waiters[waiter.job_id] = waiter
            heapq.heappush(fleet._timers, (float(due), fleet._seq, waiter.job_id))
            fleet._seq += 1
    except (KeyError, TypeError) as exc:
        raise ValueError(f"invalid shard snapshot: {exc!r}") from exc
    moment = max(now, taken)
    fleet._now = moment
    for job_id, waiter in list(fleet._waiters.items()):
        deadline = waiter.deadline
        if deadline is not None and moment >= deadline:
            fleet._finish(job_id, waiter.handle(Expired(now=moment)))  # type: ignore[arg-type]
    return fleet
