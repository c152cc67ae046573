"""Saved waits: the one JSON form of a :class:`~jobwait.JobWaiter` and of a
:class:`~jobwait.JobFleet`, and the restore that reads it back.

:meth:`JobWaiter.snapshot` keeps a wait's state with its options (not the callables),
times relative to its latest event, and that event's clock reading (``"now"``), so a
restore can go on counting on the same clock. :meth:`JobFleet.snapshot` keeps the
options once and, per waiting job, its waiter's state and where it stands (its timer,
the ready queue, or a batch in flight), with the request-budget window, the fleet-wide
hold, every outcome so far and the outcomes not yet handed out.

This module reads and rebuilds the machines' private state, and is the only one
besides their own that does: it is their code, kept apart so each machine's module
holds its machine. Every stored time is held to the rule that set it on the way back
in (``JobWaiter._held_due``, ``held_to``): a snapshot may come from storage anyone
could write, and can delay nothing past what the options allow.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ._errors import JobWaitError, UsageError, error_from_json, error_to_json, is_json
from ._fleet import FleetState, JobFleet
from ._numbers import check_count, check_number, held_to
from ._options import options_from_json, options_to_json
from ._protocol import EndReason, Finished, Sleep, StatusChanged
from ._statuses import Phase
from ._waiter import _FINAL, _POLL, _ROWS, JobWaiter, State, _describe

__all__ = [
    "FLEET_SNAPSHOT_FORMAT",
    "SNAPSHOT_FORMAT",
    "dump_waiter",
    "load_waiter",
    "restore_into",
    "restore_waiter",
    "snapshot_of",
    "waiter_snapshot",
]

SNAPSHOT_FORMAT: Final = "jobwait.JobWaiter/1"


def _opened(snapshot: Any, form: str, what: str, now: float) -> float:
    # Every restore starts here: a snapshot of this machine's format, and a usable now.
    if not isinstance(snapshot, dict) or snapshot.get("format") != form:
        raise ValueError(
            f"not a {what} snapshot of format {form!r}"
            + (f" (format {snapshot.get('format')!r})" if isinstance(snapshot, dict) else "")
        )
    return check_number(f"{what}.restore(now=...)", now)


# --- one wait ---------------------------------------------------------------------------


def waiter_snapshot(waiter: JobWaiter) -> dict[str, Any]:
    """:meth:`JobWaiter.snapshot` (see there)."""
    if waiter._state in _FINAL:
        raise UsageError("cannot snapshot a finished wait", **waiter._context())
    return {
        "format": SNAPSHOT_FORMAT,
        "options": {"job_id": waiter.job_id, **options_to_json(waiter.options())},
        "now": waiter._now,
        **dump_waiter(waiter, keep_job=True),
    }


def dump_waiter(waiter: JobWaiter, *, keep_job: bool) -> dict[str, Any]:
    # The state without options; times relative to the latest event (waiter._now).
    keep = keep_job and is_json(waiter._last_job)
    action = waiter._last_action
    return {
        "state": waiter._state.name,
        "elapsed": waiter._now - waiter._started,
        "time_left": None if waiter._deadline is None else waiter._deadline - waiter._now,
        "sleep": action.seconds if isinstance(action, Sleep) else None,
        "interval": waiter._interval,
        "previous_sleep": waiter._prev_sleep,
        "final_poll": waiter._final_poll,
        "fetch_errors": waiter._fetch_errors,
        "polls": waiter._polls,
        "last_status": waiter._last_status,
        "phase": None if waiter._phase is None else waiter._phase.name,
        "status_changed": waiter._status_changed,
        "last_job": waiter._last_job if keep else None,
        "last_job_kept": keep,
        "unknown_seen": sorted(waiter._unknown_seen or ()),
        # A push in progress: the extra poll it asked for, and the due poll to
        # resume toward after it.
        "extra": waiter._extra,
        "nudged": waiter._nudged,
        "resume_in": waiter._due - waiter._now,
    }


def restore_waiter(
    cls: type[JobWaiter],
    snapshot: Any,
    *,
    now: float,
    same_clock: bool,
    status_of: Callable[[Any], Any],
    failure_of: Callable[[Any], Any],
    rng: Any,
) -> JobWaiter:
    """:meth:`JobWaiter.restore` (see there)."""
    now = _opened(snapshot, SNAPSHOT_FORMAT, "JobWaiter", now)
    try:
        opts = snapshot["options"]
        options = options_from_json(opts, status_of=status_of, failure_of=failure_of, rng=rng)
        waiter = cls(job_id=opts["job_id"], **options)
        moment = now
        if same_clock or "now" in snapshot:  # snapshots before same_clock lack it
            taken = check_number("now", snapshot["now"])
            moment = min(now, taken) if same_clock else now
        load_waiter(waiter, snapshot, moment)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"invalid JobWaiter snapshot: {_describe(exc)}") from exc
    if same_clock:
        _catch_up(waiter, now)
    return waiter


def load_waiter(waiter: JobWaiter, data: Any, moment: float) -> None:
    # Rebuild the state _dump() wrote; `moment` is when its latest event happened.
    # Every stored time is held to the rule that set it (see _held_due): the
    # snapshot may come from storage anyone could write.
    backoff = waiter._backoff
    state = State[data["state"]]
    if state in _FINAL:
        raise ValueError(f"state {state.name} is final")
    elapsed = check_number("elapsed", data["elapsed"], minimum=0.0)
    time_left = data["time_left"]
    waiter._state, waiter._row = state, _ROWS[state]
    waiter._now = moment
    waiter._started = moment - elapsed
    if state is not State.IDLE and waiter._timeout is not None:
        left = check_number("time_left", time_left)
        waiter._deadline = moment + held_to(left, waiter._timeout)  # never a timeout away
    interval = check_number("interval", data["interval"])
    if not backoff.initial <= interval <= backoff.max:
        raise ValueError(
            f"interval {interval!r} is outside the backoff's [{backoff.initial!r}, {backoff.max!r}]"
        )
    waiter._interval = interval
    waiter._prev_sleep = held_to(
        check_number("previous_sleep", data["previous_sleep"], minimum=0.0), backoff.max
    )
    waiter._final_poll = _bool(data["final_poll"])
    waiter._fetch_errors = check_count("fetch_errors", data["fetch_errors"])
    waiter._polls = check_count("polls", data["polls"])
    last_status = data["last_status"]
    if last_status is not None and not isinstance(last_status, str):
        raise TypeError("last_status must be a string or null")
    waiter._last_status = last_status
    phase = data["phase"]
    waiter._phase = None if phase is None else Phase[phase]
    waiter._status_changed = _bool(data["status_changed"])
    last_job = data["last_job"]
    if not is_json(last_job):
        raise ValueError("last_job must be plain JSON data, nested at most 64 deep")
    waiter._last_job = last_job
    unknown = data["unknown_seen"]
    if not isinstance(unknown, list) or not all(isinstance(u, str) for u in unknown):
        raise TypeError("unknown_seen must be a list of strings")
    waiter._unknown_seen = set(unknown) or None
    if state is State.SLEEPING:
        stored = check_number("sleep", data["sleep"], minimum=0.0)
        seconds = max(0.0, waiter._held_due(stored))
        deadline = waiter._deadline
        if seconds != stored and deadline is not None and moment + seconds >= deadline:
            waiter._final_poll = True  # held to the deadline: the poll there is the last
        waiter._last_action = Sleep(seconds=seconds)
        waiter._due = moment + seconds
    elif state is State.POLLING:
        waiter._last_action = _POLL
    if "extra" in data:  # snapshots before pushes existed lack these
        waiter._extra = _bool(data["extra"])
        waiter._nudged = _bool(data["nudged"])
        resume = check_number("resume_in", data["resume_in"])
        if waiter._extra:
            waiter._due = moment + waiter._held_due(resume)


def _catch_up(waiter: JobWaiter, now: float) -> None:
    # Restored on the same clock: time stored counted. A pending sleep is what is
    # left of it; one that ran out while stored (its deadline passed too, perhaps)
    # is over: the poll it led to is owed, as a lone wait that was late makes it,
    # and that poll ends the wait if the deadline has passed.
    if now > waiter._now and waiter._state is State.SLEEPING:
        waiter._last_action = Sleep(seconds=max(0.0, waiter._due - now))


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {value!r}")
    return value


# --- a fleet ----------------------------------------------------------------------------


FLEET_SNAPSHOT_FORMAT: Final = "jobwait.JobFleet/1"
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
    for at, order, job_id in sorted(fleet._plan.timers):
        if job_id not in fleet._waiters:
            continue
        timer_of[job_id] = (at - now, order)
        where[job_id] = ("timer", at - now, order)
    for job_id, at in fleet._plan.ready.items():
        where[job_id] = ("ready", at - now, None)
    for ids in fleet._plan.in_flight:
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
            "deferred": job_id in fleet._plan.deferred,
            "last": waiter._now - now,
            **dump_waiter(waiter, keep_job=last_jobs),
        }
        # Options a job was added with (add(options=...)) that differ from the
        # fleet's; callables cannot be stored: restore passes the fleet's.
        if job_id in fleet._plan.kept and kind != "timer" and job_id in timer_of:
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
    fleet_options = fleet._own_options()
    return {
        "format": FLEET_SNAPSHOT_FORMAT,
        "now": now,
        "options": {
            **options_to_json({**fleet._prototype.options(), "backoff": fleet._backoff}),
            **fleet_options,
        },
        "jobs": jobs,
        "ready": list(fleet._plan.ready),  # the ready queue's order: oldest due first
        "pushed": sorted(fleet._plan.pushed),
        "seq": fleet._plan.seq,
        "sent": [t - now for t in fleet._plan.sent],
        "hold": None if fleet._plan.hold_until == -math.inf else fleet._plan.hold_until - now,
        "batch_errors": fleet._batch_errors,
        "requests": fleet._plan.requests,
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
    now = _opened(snapshot, FLEET_SNAPSHOT_FORMAT, "JobFleet", now)
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
        load_waiter(waiter, entry, base + last)
        waiters[job_id] = waiter
        deferred = entry["deferred"]
        if not isinstance(deferred, bool):
            raise TypeError(f"job {job_id!r}: deferred must be a boolean")
        if deferred:
            fleet._plan.deferred.add(job_id)
        predicted = deferred and fleet._plan.use_predictions
        where = entry["where"]
        if where == "timer":
            seq = check_count("seq", entry["seq"])
            top = max(top, seq + 1)
            due = _held_due(waiter, check_number("due", entry["due"]), last, predicted)
            fleet._plan.timers.append((base + due, seq, job_id))
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
            fleet._plan.timers.append((base + due, seq, job_id))
            fleet._plan.kept.add(job_id)
    order = snapshot["ready"]
    if sorted(order) != sorted(ready):
        raise ValueError("the ready queue does not list the ready jobs")
    for job_id in order:
        fleet._plan.ready[job_id] = ready[job_id]
        deadline = waiters[job_id].deadline
        if deadline is not None:
            fleet._plan.ready_deadlines.append((deadline, job_id))
    pushed = snapshot.get("pushed", [])
    if not set(pushed) <= set(ready):
        raise ValueError("pushed jobs must be ready")
    fleet._plan.pushed = set(pushed)
    fleet._plan.seq = top
    for job_id in again:  # in flight when saved: due now, asked again
        if job_id in fleet._plan.kept:  # a push's extra poll: it stays the pushed one
            fleet._plan.ready[job_id] = base
            fleet._plan.pushed.add(job_id)
            deadline = waiters[job_id].deadline
            if deadline is not None:
                fleet._plan.ready_deadlines.append((deadline, job_id))
            continue
        fleet._plan.timers.append((base, fleet._plan.seq, job_id))
        fleet._plan.seq += 1
    heapq.heapify(fleet._plan.timers)
    heapq.heapify(fleet._plan.ready_deadlines)
    # Requests were sent at or before the snapshot's moment; a hold lasts at most
    # max_retry_after from the failure that set it, which came before that moment.
    fleet._plan.sent = deque(base + held_to(check_number("sent", t), 0.0) for t in snapshot["sent"])
    hold = snapshot["hold"]
    if hold is not None:
        hold = held_to(check_number("hold", hold), fleet._max_retry_after)
        fleet._plan.hold_until = base + hold
    fleet._batch_errors = check_count("batch_errors", snapshot["batch_errors"])
    fleet._plan.requests = check_count("requests", snapshot["requests"])
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
