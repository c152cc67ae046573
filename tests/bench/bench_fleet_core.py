"""Micro benchmark of the JobFleet core (prints figures, asserts nothing).

    .venv/bin/python tests/bench/bench_fleet_core.py [--jobs 10000]

1. Memory per waiting job: tracemalloc over ``add`` plus one round of polls, so every
   job has a sleeping ``JobWaiter``, a timer heap entry and its last payload. Payloads
   the caller built (the fetch's response) are counted separately.
2. Scheduler cost per job-poll: N jobs with lognormal run times (median 5 s, p99 ~30 s)
   driven to the end in virtual time by an in-process driver whose "fetch" is a dict
   lookup. Reported per job-poll (one job in one request) and per request, next to a
   lone ``JobWaiter`` driven by ``jobwait.testing.simulate`` on the same jobs.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
import tracemalloc
from typing import Any

from jobwait import AllDone, BatchObserved, Finished, FleetSleep, JobFleet, JobWaiter, PollBatch
from jobwait.testing import simulate

PENDING = {"status": "ready"}
DONE = {"status": "completed"}


def durations(n: int, seed: int = 1) -> list[float]:
    # lognormal: median 5 s; sigma chosen so that p99 is about 30 s (z_0.99 = 2.326)
    rng = random.Random(seed)
    sigma = math.log(30 / 5) / 2.326
    return [rng.lognormvariate(math.log(5), sigma) for _ in range(n)]


def memory_per_job(n: int, own_payloads: bool) -> tuple[float, float]:
    ids = [f"job-{i:06d}" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fleet = JobFleet(max_concurrency=None)
    fleet.add(ids, now=0.0)
    payload_bytes = 0
    while True:
        action = fleet.next_action(0.0)
        if type(action) is not PollBatch:
            break
        if own_payloads:  # an IonQ-shaped job dict per job, as a JSON decoder builds
            mark = tracemalloc.get_traced_memory()[0]
            jobs = {
                i: {
                    "id": i,
                    "status": "ready",
                    "type": "circuit",
                    "predicted_wait_time_ms": 5000,
                    "predicted_execution_duration_ms": 100,
                }
                for i in action.ids
            }
            payload_bytes += tracemalloc.get_traced_memory()[0] - mark
        else:
            jobs = dict.fromkeys(action.ids, PENDING)
        fleet.handle(BatchObserved(ids=action.ids, jobs=jobs, now=0.0))
        del jobs
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert fleet.waiting == n
    return (used - payload_bytes) / n, payload_bytes / n


def run_fleet(n: int, **options: Any) -> tuple[float, int, int, float]:
    ends = durations(n)
    ids = [f"job-{i:06d}" for i in range(n)]
    end_of = dict(zip(ids, ends, strict=True))
    fleet = JobFleet(**options)
    now = 0.0
    job_polls = 0
    gc.collect()
    started = time.perf_counter()
    fleet.add(ids, now=now)
    while True:
        action = fleet.next_action(now)
        kind = type(action)
        if kind is PollBatch:
            batch = action.ids  # type: ignore[union-attr]
            job_polls += len(batch)
            jobs = {i: (DONE if now >= end_of[i] else PENDING) for i in batch}
            fleet.handle(BatchObserved(ids=batch, jobs=jobs, now=now))
        elif kind is FleetSleep:
            now += action.seconds  # type: ignore[union-attr,operator]
        elif kind is Finished:
            pass
        else:
            assert kind is AllDone, action
            break
    elapsed = time.perf_counter() - started
    assert fleet.finished == n
    return elapsed, job_polls, fleet.requests, now


def run_lone(n: int) -> tuple[float, int]:
    ends = durations(n)
    polls = 0
    started = time.perf_counter()
    for i, end in enumerate(ends):
        trace = simulate(
            JobWaiter(job_id=str(i)),
            lambda now, _k, end=end: DONE if now >= end else PENDING,
        )
        polls += len(trace.polls)
    return time.perf_counter() - started, polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    n = parser.parse_args().jobs

    print(f"# JobFleet core, {n:,} jobs")
    core, _ = memory_per_job(n, own_payloads=False)
    core2, payload = memory_per_job(n, own_payloads=True)
    print(f"memory per waiting job, core (waiter + heap entry + index): {core:,.0f} B")
    print(
        f"memory per waiting job with its own IonQ-shaped payload: {core2 + payload:,.0f} B "
        f"(core {core2:,.0f} B + payload kept as last_job {payload:,.0f} B)"
    )

    lone_s, lone_polls = run_lone(n)
    print(
        f"lone JobWaiter via simulate: {lone_polls:,} polls, "
        f"{lone_s / lone_polls * 1e6:.2f} us per poll"
    )
    for label, options in [
        ("fleet max_batch=100 window=1s", {"max_concurrency": None}),
        ("fleet max_batch=100 window=0", {"max_concurrency": None, "batch_window": 0.0}),
        ("fleet max_batch=1", {"max_batch": 1, "max_concurrency": None}),
        (
            "fleet max_batch=100, 5 req/s, concurrency 10",
            {"max_polls_per_second": 5, "max_concurrency": 10},
        ),
    ]:
        seconds, job_polls, requests, virtual = run_fleet(n, **options)
        print(
            f"{label}: {job_polls:,} job-polls in {requests:,} requests "
            f"({job_polls / n:.2f} per job), {seconds * 1e6 / job_polls:.2f} us per job-poll, "
            f"{seconds * 1e6 / requests:.1f} us per request, {virtual:,.1f} virtual s"
        )


if __name__ == "__main__":
    main()
