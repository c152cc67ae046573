"""A fleet's saved form: :meth:`JobFleet.snapshot` and :meth:`JobFleet.restore`.

The snapshot is JSON: the options once, every waiting job's waiter state and where it
stands (its timer, the ready queue, or a batch in flight), the request-budget window,
the fleet-wide hold, every outcome so far, and the outcomes not yet handed out. This
module reads and rebuilds the fleet's private state, and is the only one besides
``_fleet.py`` that does: it is the fleet's own code, kept apart so the machine's module
holds the machine. Every stored time is held to the rule that set it on the way back
in (a snapshot may come from storage anyone could write).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any, Final

from ._errors import JobWaitError, UsageError, error_from_json, error_to_json, is_json
from ._fleet import FleetState, JobFleet
from ._numbers import check_count, check_number, held_to
from ._options import options_from_json, options_to_json
from ._protocol import EndReason, Finished, StatusChanged
from ._waiter import JobWaiter

__all__ = ["FLEET_SNAPSHOT_FORMAT", "restore_into", "snapshot_of"]

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


def snapshot_of(fleet: JobFleet, *, last_jobs: bool = True) -> dict[str, Any]:
    """:meth:`JobFleet.snapshot` (see there)."""
    if fleet._state is not FleetState.RUNNING:
        raise UsageError(
            f"cannot snapshot a fleet that stopped ({fleet._state.name}); "
            "take the snapshot before Interrupted"
        )
    now = fleet._now if math.isfinite(fleet._now) else 0.0
    where: dict[str, tuple[str, float | None, int | None]] = {}
    # A job a push took off its sleep (in _kept) is ready or in flight, and also
    # keeps its timer entry for the poll that was due: both are saved.
    timer_of: dict[str, tuple[float, int]] = {}
    for at, order, job_id in sorted(fleet._timers):
        if job_id not in fleet._waiters:
            continue
        timer_of[job_id] = (at - now, order)
        where[job_id] = ("timer", at - now, order)
    for job_id, at in fleet._ready.items():
        where[job_id] = ("ready", at - now, None)
    for ids in fleet._in_flight:
        for job_id in ids:
            where[job_id] = ("flight", None, None)
    jobs = []
    shared = fleet._prototype.options()
    for job_id, waiter in fleet._waiters.items():
        kind, due, seq = where[job_id]
        entry = {
            "id": job_id,
            "where": kind,
            "due": due,
            "seq": seq,
            "deferred": job_id in fleet._deferred,
            "last": waiter._now - now,
            **waiter._dump(keep_job=last_jobs),
        }
        # Options a job was added with (add(options=...)) that differ from the
        # fleet's; callables cannot be stored: restore passes the fleet's.
        if job_id in fleet._kept and kind != "timer" and job_id in timer_of:
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
    for action in fleet._outbox:
        if type(action) is Finished:
            pending.append({"finished": action.job_id, "reason": action.reason.value})
        elif type(action) is StatusChanged:
            pending.append({"status": action.status, "job_id": action.job_id})
    fleet_options = {name: getattr(fleet, _FLEET_SLOTS[name]) for name in fleet.FLEET_OPTIONS}
    return {
        "format": FLEET_SNAPSHOT_FORMAT,
        "now": now,
        "options": {
            **options_to_json({**fleet._prototype.options(), "backoff": fleet._backoff}),
            **fleet_options,
        },
        "jobs": jobs,
        "ready": list(fleet._ready),  # the ready queue's order: oldest due first
        "pushed": sorted(fleet._pushed),
        "seq": fleet._seq,
        "sent": [t - now for t in fleet._sent],
        "hold": None if fleet._hold_until == -math.inf else fleet._hold_until - now,
        "batch_errors": fleet._batch_errors,
        "requests": fleet._requests,
        "results": {job_id: _outcome_json(o) for job_id, o in fleet._results.items()},
        "polls": dict(fleet._final_polls),
        "pending": pending,
    }


def restore_into(
    cls: type[JobFleet],
    snapshot: Any,
    *,
    now: float,
    same_clock: bool,
    status_of: Any,
    failure_of: Any,
    rng: Any,
    report_status: bool,
    report_polls: bool,
) -> JobFleet:
    """:meth:`JobFleet.restore` (see there)."""
    if not isinstance(snapshot, dict) or snapshot.get("format") != FLEET_SNAPSHOT_FORMAT:
        raise ValueError(
            f"not a JobFleet snapshot of format {FLEET_SNAPSHOT_FORMAT!r}"
            + (f" (format {snapshot.get('format')!r})" if isinstance(snapshot, dict) else "")
        )
    now = check_number("JobFleet.restore(now=...)", now)
    try:
        fleet = _rebuild(
            cls,
            snapshot,
            now=now,
            same_clock=same_clock,
            given={"status_of": status_of, "failure_of": failure_of, "rng": rng},
            flags={"report_status": report_status, "report_polls": report_polls},
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"invalid JobFleet snapshot: {type(exc).__name__}: {exc}") from exc
    return fleet


def _rebuild(
    cls: type[JobFleet],
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
        name: options[name] if name in options or name not in _FLEET_ADDED else _FLEET_ADDED[name]
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
