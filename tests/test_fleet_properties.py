"""Property tests of JobFleet in virtual time: random fleets, job scripts and faults.

``run_fleet`` (from test_fleet.py) is a tiny pure driver that models an async driver
with request latency. Each job's script is compared with a lone ``JobWaiter`` driven
by ``jobwait.testing.simulate`` over the same script: the fleet may poll a job later
than the lone waiter would (batch window, budget, concurrency, batch retries), never
earlier and never more often.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobwait import Backoff, JobFleet, JobTimeoutError, JobWaiter, JobWaitError
from jobwait._errors import FleetFailedError
from jobwait._plumbing import JobMissingError
from jobwait.testing import Fail, simulate
from test_fleet import Run, run_fleet

TOLERANCE = 1e-9


@dataclass(frozen=True)
class JobSpec:
    """A scripted job: pending until ``finish`` (never if ``None``), then ``final``;
    polls whose index is in ``missing`` are left out of the response."""

    finish: float | None
    final: str
    missing: frozenset[int]
    predicted_ms: float | None

    def script(self, job_id: str) -> Any:
        def at(now: float, index: int) -> Any:
            if index in self.missing:
                return Fail(JobMissingError(job_id))
            done = self.finish is not None and now >= self.finish
            job: dict[str, Any] = {"status": self.final if done else "ready"}
            if self.predicted_ms is not None:
                job["predicted_wait_time_ms"] = self.predicted_ms
            return job

        return at


jobs_st = st.builds(
    JobSpec,
    finish=st.none() | st.floats(0.0, 40.0),
    final=st.sampled_from(["completed", "completed", "failed", "canceled"]),
    missing=st.frozensets(st.integers(0, 6), max_size=3),
    predicted_ms=st.none() | st.floats(0.0, 60_000.0),
)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    initial = draw(st.floats(0.1, 3.0))
    return Backoff(
        initial=initial,
        factor=draw(st.floats(1.0, 2.0)),
        max=initial * draw(st.floats(1.0, 10.0)),
    )


@dataclass(frozen=True)
class Scenario:
    jobs: list[JobSpec]
    waves: list[float]  # add time of each wave; job i joins wave i % len(waves)
    per_job: dict[str, Any]
    fleet: dict[str, Any]
    latency: float
    faults: dict[int, Fail]

    def ids(self) -> list[str]:
        return [f"j{i}" for i in range(len(self.jobs))]

    def add_time(self, i: int) -> float:
        return self.waves[i % len(self.waves)]

    def run(self) -> tuple[JobFleet, Run]:
        fleet = JobFleet(**self.per_job, **self.fleet)
        ids = self.ids()
        scripts = {job_id: spec.script(job_id) for job_id, spec in zip(ids, self.jobs, strict=True)}
        first = [job_id for i, job_id in enumerate(ids) if self.add_time(i) == 0.0]
        adds: dict[float, list[str]] = {}
        for i, job_id in enumerate(ids):
            if self.add_time(i) > 0.0:
                adds.setdefault(self.add_time(i), []).append(job_id)
        run = run_fleet(
            fleet,
            scripts,
            ids=first,
            latency=self.latency,
            batch_faults=lambda index, now: self.faults.get(index),
            adds=sorted(adds.items()),
        )
        return fleet, run


@st.composite
def scenarios(draw: st.DrawFn, *, plain: bool = False) -> Scenario:
    jobs = draw(st.lists(jobs_st, min_size=1, max_size=10))
    waves = [0.0, *draw(st.lists(st.floats(0.0, 20.0), max_size=2))]
    timeout = draw(st.none() | st.just(0.0) | st.floats(0.5, 60.0))
    if timeout is None:  # every wait must end: without a timeout, every job finishes
        jobs = [spec if spec.finish is not None else replace(spec, finish=30.0) for spec in jobs]
    per_job = {
        "timeout": timeout,
        "backoff": draw(backoffs()),
        "max_fetch_errors": draw(st.integers(1, 4)),
        "raise_on_failure": draw(st.booleans()),
        "raise_on_cancel": draw(st.booleans()),
    }
    if plain:
        fleet: dict[str, Any] = {
            "max_batch": draw(st.integers(1, 6)),
            "batch_window": 0.0,
            "max_polls_per_second": None,
            "max_concurrency": None,
        }
        faults: dict[int, Fail] = {}
    else:
        fleet = {
            "max_batch": draw(st.integers(1, 6)),
            "batch_window": draw(st.sampled_from([0.0, 0.3, 1.0, 2.5])),
            "max_polls_per_second": draw(st.none() | st.integers(1, 3)),
            "max_concurrency": draw(st.none() | st.integers(1, 3)),
            "max_batch_errors": draw(st.integers(1, 4)),
            "fail_fast": draw(st.booleans()),
            "use_predictions": draw(st.booleans()),
        }
        faults = draw(
            st.dictionaries(
                st.integers(0, 30),
                st.builds(
                    Fail,
                    st.builds(ConnectionError),
                    retryable=st.booleans(),
                    retry_after=st.none() | st.floats(0.0, 5.0),
                ),
                max_size=6,
            )
        )
    latency = draw(st.sampled_from([0.0, 0.0, 0.2, 1.3]))
    return Scenario(jobs, waves, per_job, fleet, latency, faults)


def lone_polls(scenario: Scenario, i: int) -> tuple[list[float], Any]:
    waiter = JobWaiter(job_id=f"j{i}", **scenario.per_job)
    trace = simulate(
        waiter,
        scenario.jobs[i].script(f"j{i}"),
        latency=scenario.latency,
        start=scenario.add_time(i),
    )
    return trace.polls, trace.outcome


@settings(max_examples=250)
@given(scenarios())
def test_fleet_invariants(scenario: Scenario) -> None:
    fleet, run = scenario.run()
    ids = scenario.ids()
    options = scenario.fleet

    # Every job gets exactly one outcome (or, after fail_fast, is listed unfinished).
    finished = [f.job_id for f in run.finished]
    assert len(finished) == len(set(finished))
    assert dict(fleet.results) == run.outcomes
    if run.error is None:
        assert sorted(finished) == sorted(ids)
        assert fleet.waiting == 0
    else:
        assert options["fail_fast"]
        unfinished = run.error.unfinished
        assert run.cancels == ([unfinished] if unfinished else [])
        added = set(finished) | set(unfinished)
        assert not set(finished) & set(unfinished)
        assert added <= set(ids)
        assert run.error.results == run.outcomes
        assert isinstance(run.error.__cause__, JobWaitError)
        assert run.outcomes[run.error.job_id] is run.error.__cause__
    if not options["fail_fast"]:
        assert all(not isinstance(o, FleetFailedError) for o in run.outcomes.values())

    # Batches: at most max_batch distinct ids, at most max_concurrency in flight.
    for _, batch in run.batches:
        assert 1 <= len(batch) <= options["max_batch"]
        assert len(set(batch)) == len(batch)
    if options["max_concurrency"] is not None:
        assert run.max_in_flight <= options["max_concurrency"]
    assert fleet.requests == len(run.batches)

    # The global budget: at most N requests in any one-second window.
    budget = options["max_polls_per_second"]
    times = run.times
    assert times == sorted(times)
    if budget is not None:
        for a, b in zip(times, times[budget:], strict=False):
            assert b >= a + 1.0

    # Timeouts are never delayed by the budget: at most one request latency late.
    timeout = scenario.per_job["timeout"]
    for outcome in run.outcomes.values():
        if isinstance(outcome, JobTimeoutError):
            assert timeout is not None
            assert outcome.elapsed <= timeout + scenario.latency + TOLERANCE

    # No job is polled earlier or more often than a lone waiter on the same script.
    for i, job_id in enumerate(ids):
        polls = run.job_polls.get(job_id, [])
        lone, _ = lone_polls(scenario, i)
        assert len(polls) <= len(lone), (job_id, polls, lone)
        for fleet_at, lone_at in zip(polls, lone, strict=False):
            assert fleet_at >= lone_at - TOLERANCE, (job_id, polls, lone)


@settings(max_examples=150)
@given(scenarios(plain=True))
def test_an_unconstrained_fleet_polls_exactly_like_lone_waiters(scenario: Scenario) -> None:
    # No window, budget, concurrency cap or batch faults: batching changes nothing.
    fleet, run = scenario.run()
    assert run.error is None
    for i, job_id in enumerate(scenario.ids()):
        lone, outcome = lone_polls(scenario, i)
        polls = run.job_polls.get(job_id, [])
        assert len(polls) == len(lone)
        for fleet_at, lone_at in zip(polls, lone, strict=True):
            assert math.isclose(fleet_at, lone_at, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
        mine = run.outcomes[job_id]
        assert type(mine) is type(outcome)
        if isinstance(outcome, JobWaitError):
            assert (mine.job_id, mine.polls, mine.last_status, mine.reason) == (
                outcome.job_id,
                outcome.polls,
                outcome.last_status,
                outcome.reason,
            )
            assert math.isclose(mine.elapsed, outcome.elapsed, rel_tol=1e-9, abs_tol=1e-9)
            assert type(mine.__cause__) is type(outcome.__cause__)
        else:
            assert mine == outcome
    # and jobs due together did share requests
    assert fleet.requests <= sum(len(p) for p in run.job_polls.values())
