"""Saved fleets and waiters (issue 11, Part 1): snapshot, JSON, restore, continue.

The property: snapshot at any point of a random run, restore through
``json.dumps``/``json.loads`` (in either mode, with no time passing), continue: the
same polls and the same outcomes as the uninterrupted run, for fleets and for lone
waiters, without jitter. Then the two restore modes with time passing, the end reason,
and bad snapshots.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait import (
    AllDone,
    Backoff,
    BatchFailed,
    BatchObserved,
    CancelJobs,
    EndReason,
    Finished,
    FleetSleep,
    Interrupted,
    JobFetchError,
    JobFleet,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    Nudged,
    Observed,
    Poll,
    PollBatch,
    Raise,
    Sleep,
    Start,
    StatusChanged,
    UsageError,
    Woke,
)
from jobwait._plumbing import JobMissingError, RemoteError, error_from_json, error_to_json

# --- a deterministic world and a tiny driver -------------------------------------------


@dataclass(frozen=True)
class World:
    """Job i finishes at ``finish[i]`` with ``final[i]``; the k-th batch
    request fails when ``k in failures`` (retryable unless in ``fatal``); poll number
    n of a job is left out of the answer when ``(job, n) in missing``."""

    finish: tuple[float | None, ...]
    final: tuple[str, ...]
    failures: frozenset[int]
    fatal: frozenset[int]
    missing: frozenset[tuple[int, int]]
    hints: frozenset[int]
    pushes: frozenset[int] = frozenset()  # after batch k's report: a push for one job

    def answer(self, k: int, ids: tuple[str, ...], now: float, seen: dict[str, int]) -> Any:
        if k in self.failures:
            return ("fail", k not in self.fatal, 2.0 if k in self.hints else None)
        jobs = {}
        for job_id in ids:
            i = int(job_id[1:])
            n = seen.get(job_id, 0)
            seen[job_id] = n + 1
            if (i, n) in self.missing:
                continue
            done = self.finish[i] is not None and now >= self.finish[i]  # type: ignore[operator]
            jobs[job_id] = {"status": self.final[i] if done else "ready", "n": n}
        return ("ok", jobs, 1.5 if k in self.hints else None)


worlds = st.integers(1, 5).flatmap(
    lambda n: st.builds(
        World,
        finish=st.tuples(*[st.floats(0.0, 60.0) for _ in range(n)]),
        final=st.tuples(*[st.sampled_from(["completed", "failed", "canceled"]) for _ in range(n)]),
        failures=st.frozensets(st.integers(0, 30), max_size=8),
        fatal=st.frozensets(st.integers(0, 30), max_size=2),
        missing=st.frozensets(st.tuples(st.integers(0, n - 1), st.integers(0, 8)), max_size=4),
        hints=st.frozensets(st.integers(0, 30), max_size=4),
        pushes=st.frozensets(st.integers(0, 30), max_size=4),
    )
)

fleet_options = st.fixed_dictionaries(
    {
        "timeout": st.none() | st.sampled_from([5.0, 30.0, 90.0]),
        "backoff": st.sampled_from([Backoff(), Backoff(initial=0.5, factor=2.0, max=8.0)]),
        "max_fetch_errors": st.integers(1, 4),
        "max_batch": st.integers(1, 3),
        "batch_window": st.sampled_from([0.0, 0.7]),
        "max_polls_per_second": st.none() | st.integers(1, 3),
        "max_concurrency": st.none() | st.integers(1, 2),
        "max_batch_errors": st.integers(1, 4),
        "use_predictions": st.booleans(),
    }
)


@dataclass
class Log:
    polls: list[tuple[float, tuple[str, ...]]]
    outcomes: dict[str, Any]
    changes: list[tuple[str, str]]


def drive(
    fleet: JobFleet,
    world: World,
    *,
    now: float,
    k: int = 0,
    seen: dict[str, int] | None = None,
    log: Log | None = None,
    stop_at: int | None = None,
) -> tuple[Log, float, int, dict[str, int], bool]:
    """A synchronous driver (a batch reports at once, 0.25 s later). Stops after
    ``stop_at`` steps (between a report and the next ``next_action``, nothing in
    flight) and says whether it stopped early."""
    log = log or Log([], {}, [])
    seen = {} if seen is None else seen
    for step in range(2_000):
        if stop_at is not None and step == stop_at:
            return log, now, k, seen, True
        action = fleet.next_action(now)
        if isinstance(action, AllDone):
            return log, now, k, seen, False
        if isinstance(action, Finished):
            log.outcomes[action.job_id] = action.outcome
        elif isinstance(action, StatusChanged):
            log.changes.append((action.job_id, action.status))
        elif isinstance(action, FleetSleep):
            assert action.seconds is not None
            now += action.seconds
        elif isinstance(action, PollBatch):
            log.polls.append((now, action.ids))
            answer = world.answer(k, action.ids, now, seen)
            k += 1
            now += 0.25
            if answer[0] == "fail":
                fleet.handle(
                    BatchFailed(
                        ids=action.ids,
                        error=ConnectionError(f"batch {k}"),
                        now=now,
                        retryable=answer[1],
                        retry_after=answer[2],
                    )
                )
            else:
                fleet.handle(
                    BatchObserved(ids=action.ids, jobs=answer[1], now=now, retry_after=answer[2])
                )
            if k - 1 in world.pushes:  # a webhook says one job may have changed
                target = f"j{(k - 1) % len(world.finish)}"
                fleet.handle(Nudged(now=now, job_id=target))
        else:  # pragma: no cover - no fail_fast here
            raise AssertionError(action)
    raise AssertionError("the fleet did not finish")


def same_outcome(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, JobWaitError):
        assert (a.job_id, a.reason, a.polls, a.last_status) == (
            b.job_id,
            b.reason,
            b.polls,
            b.last_status,
        )
        assert math.isclose(a.elapsed, b.elapsed, abs_tol=1e-9)
    else:
        assert a == b


@settings(max_examples=200, deadline=None)
@given(worlds, fleet_options, st.integers(0, 60), st.booleans(), st.booleans())
def test_a_restored_fleet_continues_exactly_like_the_uninterrupted_one(
    world: World, options: dict[str, Any], cut: int, same_clock: bool, last_jobs: bool
) -> None:
    ids = [f"j{i}" for i in range(len(world.finish))]
    whole = JobFleet(**options, report_status=True)
    whole.add(ids, now=0.0)
    expected, *_ = drive(whole, world, now=0.0)

    first = JobFleet(**options, report_status=True)
    first.add(ids, now=0.0)
    log, now, k, seen, stopped = drive(first, world, now=0.0, stop_at=cut)
    if stopped:
        saved = json.loads(json.dumps(first.snapshot(last_jobs=last_jobs)))
        taken = saved["now"]
        assert math.isclose(taken, first._now)
        # Default mode: `now` stands for the moment of the snapshot (the fleet's latest
        # now); on the same clock, the driver's clock as it reads now.
        at = now if same_clock else taken
        second = JobFleet.restore(saved, now=at, same_clock=same_clock, report_status=True)
        log, *_ = drive(second, world, now=now, k=k, seen=seen, log=log)
        assert second.requests == whole.requests
    assert [(round(t, 9), b) for t, b in log.polls] == [(round(t, 9), b) for t, b in expected.polls]
    assert log.changes == expected.changes
    assert set(log.outcomes) == set(expected.outcomes)
    for job_id, outcome in expected.outcomes.items():
        if last_jobs or not isinstance(outcome, JobWaitError):
            same_outcome(log.outcomes[job_id], outcome)


@st.composite
def lone_runs(draw: st.DrawFn) -> tuple[dict[str, Any], list[Any], int]:
    options = {
        "timeout": draw(st.none() | st.sampled_from([0.0, 4.0, 30.0])),
        "backoff": draw(st.sampled_from([Backoff(), Backoff(initial=0.3, factor=2.0, max=5.0)])),
        "max_fetch_errors": draw(st.integers(1, 4)),
    }
    script = draw(
        st.lists(
            st.sampled_from(["ready", "ready", "completed", "failed", "fail", "hint"]),
            min_size=1,
            max_size=12,
        )
    )
    return options, script, draw(st.integers(0, 30))


def run_lone(
    waiter: JobWaiter, script: list[Any], now: float, action: Any, start: int, stop: int | None
) -> tuple[list[float], Any, float, int, Any]:
    polls: list[float] = []
    i = start
    for step in range(200):
        if not isinstance(action, Poll | Sleep):
            return polls, action, now, i, action
        if stop is not None and step == stop:
            return polls, None, now, i, action
        if isinstance(action, Poll):
            polls.append(now)
            what = script[i] if i < len(script) else "completed"
            i += 1
            now += 0.1
            if what == "fail":
                action = waiter.handle(
                    __import__("jobwait").FetchFailed(error=OSError("x"), now=now)
                )
            else:
                job = {"status": "ready" if what == "hint" else what}
                action = waiter.handle(
                    Observed(job=job, now=now, retry_after=3.0 if what == "hint" else None)
                )
        else:
            now += action.seconds
            action = waiter.handle(Woke(now=now))
    raise AssertionError("no end")


@settings(max_examples=200, deadline=None)
@given(lone_runs(), st.booleans())
def test_a_restored_waiter_continues_exactly_like_the_uninterrupted_one(
    run: tuple[dict[str, Any], list[Any], int], same_clock: bool
) -> None:
    options, script, cut = run
    whole = JobWaiter(job_id="a", **options)
    polls, end, *_ = run_lone(whole, script, 0.0, whole.handle(Start(now=0.0)), 0, None)

    first = JobWaiter(job_id="a", **options)
    head, end1, now, i, action = run_lone(first, script, 0.0, first.handle(Start(now=0.0)), 0, cut)
    if end1 is None:
        saved = json.loads(json.dumps(first.snapshot()))
        second = JobWaiter.restore(
            saved, now=now if same_clock else saved["now"], same_clock=same_clock
        )
        assert second.last_action == action
        tail, end2, *_ = run_lone(second, script, now, second.last_action, i, None)
        head += tail
        end1 = end2
    assert [round(t, 9) for t in head] == [round(t, 9) for t in polls]
    assert type(end1) is type(end)
    if isinstance(end, Raise):
        assert isinstance(end1, Raise)
        same_outcome(end1.error, end.error)
        assert end1.reason is end.reason
    else:
        assert end1 == end


# --- the two restore modes, with time passing ------------------------------------------


def _sleeping_fleet(now: float = 1_000.0) -> JobFleet:
    fleet = JobFleet(timeout=60.0, batch_window=0.0)
    fleet.add(["a", "b"], now=now)
    batch = fleet.next_action(now)
    assert isinstance(batch, PollBatch)
    jobs = {"a": {"status": "ready"}, "b": {"status": "ready"}}
    fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=now))
    return fleet  # both sleep 1 s; deadlines at now + 60


def test_default_restore_does_not_count_time_spent_stored() -> None:
    saved = json.loads(json.dumps(_sleeping_fleet().snapshot()))
    fleet = JobFleet.restore(saved, now=5.0)  # another process, another clock
    assert fleet.next_action(5.0) == FleetSleep(seconds=1.0)
    assert fleet.next_action(6.0) == PollBatch(ids=("a", "b"))
    assert fleet._waiters["a"].deadline == pytest.approx(65.0)


def test_same_clock_restore_keeps_counting_and_makes_the_last_poll_owed() -> None:
    saved = json.loads(json.dumps(_sleeping_fleet().snapshot()))
    # 30 s later on the same clock: the sleep is long over, the deadline still ahead
    fleet = JobFleet.restore(saved, now=1_030.0, same_clock=True)
    assert fleet._waiters["a"].deadline == pytest.approx(1_060.0)
    assert fleet.next_action(1_030.0) == PollBatch(ids=("a", "b"))
    # 2 hours later: both deadlines passed while stored; the poll each was owed is its
    # last, as a lone wait that ran late makes it
    fleet = JobFleet.restore(saved, now=8_200.0, same_clock=True)
    last = fleet.next_action(8_200.0)
    assert last == PollBatch(ids=("a", "b"))
    answers = {"a": {"status": "completed"}, "b": {"status": "ready"}}
    fleet.handle(BatchObserved(ids=("a", "b"), jobs=answers, now=8_200.0))
    done, end = fleet.next_action(8_200.0), fleet.next_action(8_200.0)
    assert fleet.next_action(8_200.0) == AllDone()
    assert fleet.requests == 2  # one before the snapshot, the last one after
    assert isinstance(done, Finished)
    assert done.outcome == {"status": "completed"}  # it finished while stored
    assert isinstance(end, Finished)
    assert isinstance(end.outcome, JobTimeoutError)
    assert end.reason is EndReason.TIMEOUT
    assert end.cancel_job
    assert end.outcome.polls == 2


def test_same_clock_restore_on_a_clock_behind_counts_no_time() -> None:
    saved = json.loads(json.dumps(_sleeping_fleet().snapshot()))
    fleet = JobFleet.restore(saved, now=990.0, same_clock=True)  # skew: 10 s behind
    assert fleet.next_action(990.0) == FleetSleep(seconds=1.0)


def test_waiter_same_clock_restore() -> None:
    waiter = JobWaiter(job_id="a", timeout=60.0)
    waiter.handle(Start(now=1_000.0))
    assert waiter.handle(Observed(job={"status": "ready"}, now=1_000.0)) == Sleep(seconds=1.0)
    saved = json.loads(json.dumps(waiter.snapshot()))
    paused = JobWaiter.restore(saved, now=3.0)
    assert paused.last_action == Sleep(seconds=1.0)
    assert paused.deadline == pytest.approx(63.0)
    later = JobWaiter.restore(saved, now=1_000.4, same_clock=True)
    assert later.last_action == Sleep(seconds=pytest.approx(0.6))
    assert later.deadline == pytest.approx(1_060.0)
    # The deadline passed while stored: the poll it was owed comes at once, its last.
    late = JobWaiter.restore(saved, now=2_000.0, same_clock=True)
    assert late.last_action == Sleep(seconds=0.0)
    assert late.handle(Woke(now=2_000.0)) == Poll()
    end = late.handle(Observed(job={"status": "ready"}, now=2_000.1))
    assert isinstance(end, Raise)
    assert isinstance(end.error, JobTimeoutError)
    assert end.reason is EndReason.TIMEOUT
    assert end.cancel_job
    assert end.error.polls == 2
    old = {k: v for k, v in saved.items() if k != "now"}
    assert JobWaiter.restore(old, now=1.0).last_action == Sleep(seconds=1.0)
    with pytest.raises(ValueError, match="now"):
        JobWaiter.restore(old, now=1.0, same_clock=True)


def test_a_batch_in_flight_is_restored_as_due() -> None:
    fleet = JobFleet(batch_window=0.0)
    fleet.add(["a", "b"], now=0.0)
    assert fleet.next_action(0.0) == PollBatch(ids=("a", "b"))
    saved = json.loads(json.dumps(fleet.snapshot()))
    again = JobFleet.restore(saved, now=50.0)
    assert again.next_action(50.0) == PollBatch(ids=("a", "b"))  # asked again
    jobs = {"a": {"status": "completed"}, "b": {"status": "ready"}}
    again.handle(BatchObserved(ids=("a", "b"), jobs=jobs, now=50.1))
    finished = again.next_action(50.1)
    assert isinstance(finished, Finished)
    assert finished.job_id == "a"
    assert again.polls("a") == 1


def test_outcomes_and_pending_actions_survive_as_json() -> None:
    fleet = JobFleet(max_fetch_errors=1, report_status=True, batch_window=0.0)
    fleet.add(["ok", "gone", "wait"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, PollBatch)
    jobs = {"ok": {"status": "completed"}, "wait": {"status": "ready"}}
    fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=0.5))
    saved = json.loads(json.dumps(fleet.snapshot()))
    again = JobFleet.restore(saved, now=0.5, report_status=True)
    out = []
    while not isinstance(action := again.next_action(0.5), FleetSleep):
        out.append(action)
    assert [type(a).__name__ for a in out] == [
        "StatusChanged",
        "Finished",
        "Finished",
        "StatusChanged",
    ]
    gone = again.results["gone"]
    assert isinstance(gone, JobFetchError)
    assert gone.polls == 1
    assert "JobMissingError" in str(gone.__cause__)  # a RemoteError naming it
    assert again.results["ok"] == {"status": "completed"}
    assert again.last_status("wait") == "ready"


def test_errors_round_trip_through_json() -> None:
    error = JobFetchError("5 fetches failed", job_id="a", polls=5, status_code=503, elapsed=2.5)
    error.__cause__ = JobMissingError("a")
    error.add_note("a note")
    back = error_from_json(json.loads(json.dumps(error_to_json(error))))
    assert type(back) is JobFetchError
    assert (back.job_id, back.polls, back.status_code, back.elapsed) == ("a", 5, 503, 2.5)
    assert back.__notes__ == ["a note"]
    assert isinstance(back.__cause__, RemoteError)
    assert back.__cause__.type_name == "jobwait._errors.JobMissingError"

    class CustomError(JobTimeoutError):
        pass

    late = CustomError("late", timeout=1.0)
    assert type(error_from_json(error_to_json(late))) is CustomError  # loaded here
    described = error_to_json(late)
    described["class"] = "elsewhere.CustomError"  # not loaded: its nearest core class
    assert type(error_from_json(described)) is JobTimeoutError
    with pytest.raises(ValueError, match="not a jobwait error"):
        error_from_json({"type": "KeyError"})


# --- the end reason ----------------------------------------------------------------------


def test_end_reasons_say_when_to_cancel() -> None:
    assert {r for r in EndReason if r.cancels_job} == {EndReason.TIMEOUT, EndReason.INTERRUPT}
    waiter = JobWaiter(timeout=0.0)
    waiter.handle(Start(now=0.0))
    end = waiter.handle(Observed(job={"status": "ready"}, now=0.0))
    assert isinstance(end, Raise)
    assert end.reason is EndReason.TIMEOUT
    waiter = JobWaiter()
    waiter.handle(Start(now=0.0))
    end = waiter.handle(Observed(job={"status": "failed"}, now=0.0))
    assert isinstance(end, Raise)
    assert (end.reason, end.cancel_job) == (EndReason.DONE, False)
    waiter = JobWaiter()
    waiter.handle(Start(now=0.0))
    end = waiter.handle(__import__("jobwait").FetchFailed(error=OSError(), now=0, retryable=False))
    assert isinstance(end, Raise)
    assert (end.reason, end.cancel_job) == (EndReason.ERROR, False)
    assert isinstance(
        JobWaiter().handle(Start(now=0.0)), Poll
    )  # Done needs no reason: nothing runs


@pytest.mark.parametrize(
    ("reason", "cancelled"),
    [(EndReason.INTERRUPT, ("a", "b")), (EndReason.HANDOVER, ())],
)
def test_an_interrupted_fleet_cancels_only_when_not_handed_over(
    reason: EndReason, cancelled: tuple[str, ...]
) -> None:
    fleet = _sleeping_fleet(now=0.0)
    saved = fleet.snapshot()
    fleet.handle(Interrupted(now=0.5, reason=reason))
    assert fleet.next_action(0.5) == CancelJobs(ids=cancelled, reason=reason)
    assert fleet.stopped
    with pytest.raises(UsageError, match="Interrupted stopped the fleet"):
        fleet.next_action(0.6)
    with pytest.raises(UsageError, match="Interrupted stopped the fleet"):
        fleet.add(["c"], now=0.6)
    with pytest.raises(UsageError, match="before Interrupted"):
        fleet.snapshot()
    # the snapshot taken before the handover carries the wait on
    again = JobFleet.restore(saved, now=0.5)
    assert again.waiting == 2
    with pytest.raises(UsageError, match="INTERRUPT or HANDOVER"):
        again.handle(Interrupted(now=0.6, reason=EndReason.TIMEOUT))


def test_late_reports_after_an_interruption_are_ignored() -> None:
    fleet = JobFleet()
    fleet.add(["a"], now=0.0)
    batch = fleet.next_action(0.0)
    assert isinstance(batch, PollBatch)
    fleet.handle(Interrupted(now=0.1))
    fleet.handle(BatchObserved(ids=batch.ids, jobs={"a": {"status": "completed"}}, now=0.2))
    assert fleet.next_action(0.2) == CancelJobs(ids=("a",))
    assert dict(fleet.results) == {}


# --- bad snapshots -------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    saved: dict[str, Any] = json.loads(json.dumps(_sleeping_fleet().snapshot()))
    return saved


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda s: s.update(format="jobwait.JobFleet/0"), "format"),
        (lambda s: s.pop("jobs"), "jobs"),
        (lambda s: s["jobs"][0].update(where="nowhere"), "place"),
        (lambda s: s["jobs"][0].update(due="soon"), "due"),
        (lambda s: s["jobs"][1].update(id="a"), "twice"),
        (lambda s: s["options"].update(max_batch=0), "max_batch"),
        (lambda s: s["options"]["backoff"].update(factor=0.1), "factor"),
        (lambda s: s.update(results={"x": 3}), "outcome"),
        (lambda s: s.update(now=float("nan")), "now"),
        (lambda s: s.update(sent="x"), "sent"),
    ],
)
def test_a_damaged_snapshot_raises_a_value_error_naming_the_problem(
    damage: Any, match: str
) -> None:
    saved = _good()
    damage(saved)
    with pytest.raises(ValueError, match=match):
        JobFleet.restore(saved, now=0.0)


def test_truncated_and_foreign_snapshots() -> None:
    # A cut text is the caller's JSONDecodeError; what reaches restore is a truncated
    # object: the first keys of a good snapshot only.
    good = _good()
    for cut in (1, 2, len(good) // 2, len(good) - 1):
        with pytest.raises(ValueError):
            JobFleet.restore(dict(list(good.items())[:cut]), now=0.0)
    with pytest.raises(ValueError, match="not a JobFleet snapshot"):
        JobFleet.restore(JobWaiter().snapshot(), now=0.0)
    with pytest.raises(ValueError, match="not a JobFleet snapshot"):
        JobFleet.restore([1, 2], now=0.0)
    with pytest.raises(ValueError, match="finite"):
        JobFleet.restore(_good(), now=float("inf"))


def test_a_fleet_with_pushed_jobs_restores_to_the_same_schedule() -> None:
    world = World(
        finish=(9.0, 14.0, 30.0),
        final=("completed",) * 3,
        failures=frozenset({4}),
        fatal=frozenset(),
        missing=frozenset(),
        hints=frozenset(),
    )

    def start() -> JobFleet:
        fleet = JobFleet(batch_window=0.0, max_batch=2)
        fleet.add(["j0", "j1", "j2"], now=0.0)
        return fleet

    def prefix(fleet: JobFleet) -> tuple[Log, float, int, dict[str, int]]:
        log, now, k, seen, _ = drive(fleet, world, now=0.0, stop_at=4)
        fleet.handle(Nudged(now=now, job_id="j1"))  # pushed: due at once, its timer kept
        log, now, k, seen, _ = drive(fleet, world, now=now, k=k, seen=seen, log=log, stop_at=1)
        return log, now, k, seen

    whole = start()
    log, now, k, seen = prefix(whole)
    expected, *_ = drive(
        whole,
        world,
        now=now,
        k=k,
        seen=dict(seen),
        log=Log(list(log.polls), dict(log.outcomes), []),
    )
    first = start()
    log, now, k, seen = prefix(first)
    saved = json.loads(json.dumps(first.snapshot()))
    again = JobFleet.restore(saved, now=saved["now"])
    got, *_ = drive(again, world, now=now, k=k, seen=seen, log=log)
    assert got.polls == expected.polls
    assert set(got.outcomes) == set(expected.outcomes) == {"j0", "j1", "j2"}


def test_a_jobs_own_options_survive_the_snapshot() -> None:
    fleet = JobFleet(timeout=600.0)
    fleet.add(["shared"], now=0.0)
    fleet.add(["quick"], now=0.0, options={"timeout": 5.0, "backoff": Backoff(initial=2.0)})
    saved = json.loads(json.dumps(fleet.snapshot()))
    assert "options" not in saved["jobs"][0]
    assert saved["jobs"][1]["options"] == {
        "timeout": 5.0,
        "backoff": {"initial": 2.0, "factor": 1.5, "max": 30.0, "jitter": None},
    }
    again = JobFleet.restore(saved, now=0.0)
    assert again._waiters["quick"].deadline == 5.0
    assert again._waiters["quick"].backoff.initial == 2.0
    assert again._waiters["shared"].deadline == 600.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


@settings(max_examples=300, deadline=None)
@given(st.data(), json_values)
def test_any_damage_to_a_snapshot_is_a_value_error_or_harmless(data: Any, junk: Any) -> None:
    fleet = _sleeping_fleet()
    fleet.add(["c"], now=1_000.5, options={"timeout": 5.0})
    saved: Any = json.loads(json.dumps(fleet.snapshot()))
    path = data.draw(st.sampled_from(_paths(saved)[1:]))
    target = saved
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = junk
    for same_clock in (False, True):
        try:
            again = JobFleet.restore(saved, now=1_000.5, same_clock=same_clock)
        except ValueError:
            continue
        now = 1_000.5
        for _ in range(200):  # whatever it restored, it keeps its protocol
            action = again.next_action(now)
            if isinstance(action, AllDone):
                break
            if isinstance(action, FleetSleep):
                now += action.seconds or 0.0
            elif isinstance(action, PollBatch):
                jobs = {i: {"status": "completed"} for i in action.ids}
                again.handle(BatchObserved(ids=action.ids, jobs=jobs, now=now))
        else:
            raise AssertionError("the restored fleet did not finish")


@pytest.mark.parametrize("in_flight", [False, True])
def test_a_push_in_progress_survives_the_snapshot(in_flight: bool) -> None:
    def start() -> tuple[JobFleet, float]:
        fleet = JobFleet(batch_window=0.0, max_batch=3)
        fleet.add(["j0", "j1"], now=0.0)
        batch = fleet.next_action(0.0)
        assert isinstance(batch, PollBatch)
        jobs = {i: {"status": "ready"} for i in batch.ids}
        fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=0.0))
        fleet.handle(Nudged(now=0.4, job_id="j1"))  # due at once; its 1 s timer kept
        return fleet, 0.4

    def finish(fleet: JobFleet, now: float, batch: Any = None) -> list[Any]:
        seen = []
        for _ in range(50):
            if batch is None:
                batch = fleet.next_action(now)
            if isinstance(batch, AllDone):
                return seen
            if isinstance(batch, FleetSleep):
                now += batch.seconds or 0.0
            elif isinstance(batch, PollBatch):
                seen.append((round(now, 9), batch.ids))
                done = "completed" if now >= 3.0 else "ready"
                jobs = {i: {"status": done} for i in batch.ids}
                fleet.handle(BatchObserved(ids=batch.ids, jobs=jobs, now=now))
            batch = None
        raise AssertionError("no end")

    whole, now = start()
    first, _ = start()
    pending = None
    if in_flight:
        pending = whole.next_action(now)
        assert first.next_action(now) == pending == PollBatch(ids=("j1",))
    assert first._plan.kept == {"j1"}
    saved = json.loads(json.dumps(first.snapshot()))
    again = JobFleet.restore(saved, now=saved["now"])
    assert again._plan.kept == {"j1"}
    assert finish(again, now) == finish(whole, now, pending)
