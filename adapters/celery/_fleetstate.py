"""The one place that turns a shard's fleet into a snapshot and back.

Durable waits run every fleet on the group clock (Redis server time, wall seconds) and
restore it with ``JobFleet.restore(..., same_clock=True)``, so deadlines keep counting:
a job given ``timeout=3600`` times out an hour after it was submitted, however long its
shard sat in Redis, and a job whose deadline passed while stored ends with
``JobTimeoutError`` at the next run without another request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jobwait import JobFleet

from ._sources import Source

__all__ = ["new_snapshot", "restore_fleet", "snapshot_of"]


def new_snapshot(options: Mapping[str, Any], ids: Iterable[str], now: float) -> dict[str, Any]:
    """The snapshot of a new shard: a fleet with ``options`` and ``ids`` added at ``now``.

    Raises:
        TypeError, ValueError: Invalid options (from ``JobFleet``).
    """
    fleet = JobFleet(**options)
    fleet.add(ids, now=now)
    return snapshot_of(fleet)


def snapshot_of(fleet: JobFleet) -> dict[str, Any]:
    """``fleet.snapshot()`` without the outcomes already recorded.

    The run that saves a snapshot records every outcome the fleet handed out in the
    same compare-and-set script, so the group's results hash holds them all: the
    snapshot keeps only the jobs still waiting (and any outcome not handed out yet).
    """
    snapshot = fleet.snapshot()
    if not snapshot.get("pending"):
        snapshot["results"] = {}
        snapshot["polls"] = {}
    return snapshot


def restore_fleet(snapshot: Any, now: float, source: Source) -> JobFleet:
    """The fleet saved in ``snapshot``, on the group clock at ``now``.

    Raises:
        ValueError: A corrupted, truncated or foreign snapshot (names what is wrong).
    """
    return JobFleet.restore(
        snapshot,
        now=now,
        same_clock=True,
        status_of=source.status_of,
        failure_of=source.failure_of,
    )
