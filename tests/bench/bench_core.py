"""Benchmark of the pure core: cost of one poll cycle, and simulate's throughput.

Run it directly (it is not a test and pytest skips ``tests/bench``)::

    python tests/bench/bench_core.py [--cycles N] [--repeats R]

A poll cycle is the four steps a driver goes through for each poll of a pending job:
``handle(Observed) -> Sleep``, then ``handle(Woke) -> Poll``. The "core" figures build
the events inside the timed loop, as a real driver does. Each figure is the best of
several repeats (the least disturbed run), timed with ``time.perf_counter``.
Target (issue 2): at least 300,000 cycles per second on one core.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Callable

from jobwait import Backoff, JobWaiter, Observed, Poll, Sleep, Start, Woke
from jobwait.testing import simulate

TARGET = 300_000
JOB = {"status": "ready"}


def core_cycles(make: Callable[[], JobWaiter], cycles: int) -> float:
    """Seconds for ``cycles`` poll cycles of one waiter, events built in the loop."""
    waiter = make()
    handle = waiter.handle
    now = 0.0
    handle(Start(now=now))
    start = time.perf_counter()
    for _ in range(cycles):
        action = handle(Observed(job=JOB, now=now))
        now += action.seconds  # type: ignore[union-attr]
        handle(Woke(now=now))
    elapsed = time.perf_counter() - start
    assert waiter.polls == cycles
    assert isinstance(waiter.last_action, Poll)
    return elapsed


def core_cycles_prebuilt(make: Callable[[], JobWaiter], cycles: int) -> float:
    """As core_cycles, but with every event built before the clock starts: the cost of
    ``handle`` alone. The schedule is known up front because jitter is off."""
    probe = make()
    probe.handle(Start(now=0.0))
    events: list[object] = []
    now = 0.0
    for _ in range(cycles):
        events.append(Observed(job=JOB, now=now))
        action = probe.handle(events[-1])  # type: ignore[arg-type]
        assert isinstance(action, Sleep)
        now += action.seconds
        events.append(Woke(now=now))
        probe.handle(events[-1])  # type: ignore[arg-type]
    waiter = make()
    handle = waiter.handle
    handle(Start(now=0.0))
    start = time.perf_counter()
    for event in events:
        handle(event)  # type: ignore[arg-type]
    return time.perf_counter() - start


def simulate_cycles(cycles: int) -> float:
    """Seconds for simulate() to run a timeline whose job finishes after ``cycles`` polls."""
    waiter = JobWaiter(timeout=None, backoff=Backoff(initial=1.0, max=1.0))
    timeline = [
        (0.0, "submitted"),
        (10.0, "ready"),
        (100.0, "started"),
        (cycles - 1.0, "completed"),
    ]
    start = time.perf_counter()
    trace = simulate(waiter, timeline)
    elapsed = time.perf_counter() - start
    assert len(trace.polls) == cycles, len(trace.polls)
    return elapsed


def best(run: Callable[[], float], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        times.append(run())
    return min(times)


def report(name: str, seconds: float, cycles: int) -> None:
    per_second = cycles / seconds
    print(
        f"  {name:<44} {seconds / cycles * 1e6:7.3f} µs/cycle  "
        f"{per_second:>11,.0f} cycles/s  {per_second / TARGET:5.2f}x target"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n, repeats = args.cycles, args.repeats

    python = f"{platform.python_implementation()} {sys.version.split()[0]}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"python {python} on {platform.machine()}, {os.cpu_count()} CPUs, load average {load}")
    print(f"{n:,} cycles per run, best of {repeats}; target {TARGET:,} cycles/s\n")

    jobwait_logger = logging.getLogger("jobwait")
    print("core (Observed -> Sleep -> Woke -> Poll):")
    # Default logging: no handler configured, the effective level is WARNING, so
    # the per-poll DEBUG record is skipped by one isEnabledFor() check.
    report(
        "plain waiter (no deadline)",
        best(lambda: core_cycles(lambda: JobWaiter(timeout=None), n), repeats),
        n,
    )
    report(
        "with a deadline (timeout=1e12)",
        best(lambda: core_cycles(lambda: JobWaiter(timeout=1e12), n), repeats),
        n,
    )
    report(
        "handle() only (events built beforehand)",
        best(lambda: core_cycles_prebuilt(lambda: JobWaiter(timeout=None), n), repeats),
        n,
    )
    logging.disable(logging.CRITICAL)
    report(
        "logging disabled (logging.disable)",
        best(lambda: core_cycles(lambda: JobWaiter(timeout=None), n), repeats),
        n,
    )
    logging.disable(logging.NOTSET)
    for jitter in ("full", "equal", "decorrelated"):
        report(
            f"jitter={jitter!r} (seeded random.Random)",
            best(
                lambda j=jitter: core_cycles(
                    lambda: JobWaiter(
                        timeout=None, backoff=Backoff(jitter=j, rng=random.Random(1))
                    ),
                    n,
                ),
                repeats,
            ),
            n,
        )
    # For information: the price of turning DEBUG on (a record per poll, to a handler
    # that drops it).
    handler = logging.NullHandler()
    jobwait_logger.addHandler(handler)
    jobwait_logger.setLevel(logging.DEBUG)
    try:
        small = max(n // 10, 1000)
        report(
            "DEBUG enabled (NullHandler), for information",
            best(lambda: core_cycles(lambda: JobWaiter(timeout=None), small), repeats),
            small,
        )
    finally:
        jobwait_logger.setLevel(logging.NOTSET)
        jobwait_logger.removeHandler(handler)

    print("\nsimulate() on a long timeline (one cycle = one poll):")
    report("simulate, 4-entry timeline", best(lambda: simulate_cycles(n), repeats), n)


if __name__ == "__main__":
    main()
