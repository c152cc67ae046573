"""Durable-wait benchmark (issue 11): N jobs on Celery workers over Redis vs one
in-process asyncio fleet. Prints figures; asserts nothing (pytest skips tests/bench).

    .venv/bin/python tests/bench/bench_durable.py                 # N = 100,000
    .venv/bin/python tests/bench/bench_durable.py --jobs 20000    # smaller, faster

Workload: JobServer on loopback (in this process), lognormal job times, median 60 s and
p99 5 min of *scripted* time (truncated at 10 min), played ``--time-scale`` times faster
(default 10: median 6 s, p99 30 s of wall time) so a run takes minutes. Every
schedule figure is scaled the same way: first interval 1 s, x1.5, cap 30 s scripted
(0.1 s / 3 s wall at x10),
``max_batch=100``, ``batch_window`` 1 s scripted. Delays are printed in scripted seconds.

Three runs, one after the other, each on fresh jobs with the same drawn times:

- ``in-process``: ``jobwait.adapters.ionq.async_wait_for_jobs`` in a spawned child
  process (one asyncio fleet, up to 10 batch requests in flight);
- ``durable``: ``DurableWaits.submit`` to one ``celery worker`` (prefork, 2 processes)
  on a fresh ``redis-server``; the outcome time of a job is its stream entry's Redis
  timestamp;
- ``durable, kill``: the same, the worker SIGKILLed when 30% of the jobs have their
  outcome and a new one started at once; the sweeper runs every second (as beat would).

Figures: requests/s and job-polls per job (from the server's log), detection delay p50
/ p99 (outcome seen minus job terminal) against the schedule alone (the same backoff
computed with no queueing at all), client CPU seconds (worker process group, or the
child), peak RSS, Redis memory per waiting job (``used_memory`` after submit minus
before, over N), and for the durable runs: lost and doubled outcomes, and doubled
status reads (a job read by the server more often than its recorded wait counts).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "durable"))

MEDIAN_S = 60.0
P99_S = 300.0
TRUNCATE_S = 600.0  # bounds the run; about 0.1% of the draws
FIRST, FACTOR, CAP = 1.0, 1.5, 30.0  # scripted seconds
API_KEY = "bench-key"


def draw(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    sigma = math.log(P99_S / MEDIAN_S) / 2.326
    return [min(rng.lognormvariate(math.log(MEDIAN_S), sigma), TRUNCATE_S) for _ in range(n)]


def schedule_delay(total: float) -> float:
    """Detection delay of a job terminal at ``total`` under the backoff alone."""
    t, interval = 0.0, FIRST
    while t < total:
        t += interval
        interval = min(interval * FACTOR, CAP)
    return t - total


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fleet_options(scale: float) -> dict[str, Any]:
    from jobwait import Backoff

    return {
        "backoff": Backoff(initial=FIRST / scale, factor=FACTOR, max=CAP / scale),
        "batch_window": 1.0 / scale,
        "max_batch": 100,
        "timeout": 3600.0,
    }


def submit_jobs(server: Any, times: list[float], scale: float) -> tuple[list[str], list[float]]:
    ids, terminal = [], []
    for total in times:
        half = total / 2
        job_id = server.submit(durations={"submitted": 0.0, "ready": half, "started": half})
        ids.append(job_id)
        terminal.append(server.terminal_at(job_id))
    return ids, terminal


def job_polls(server: Any, wanted: set[str]) -> tuple[int, Counter[str]]:
    import httpx

    requests, per_job = 0, Counter[str]()
    for record in server.requests:
        if record.method != "GET":
            continue
        ids = [i for i in httpx.URL(record.path).params.get_list("ids") if i in wanted]
        if ids:
            requests += 1
            per_job.update(ids)
    return requests, per_job


# --- the in-process fleet (a spawned child) ---------------------------------------------


def _child(url: str, ids: list[str], scale: float, out: Any) -> None:
    import asyncio
    import resource

    from jobwait.adapters import ionq

    learned: dict[str, float] = {}

    def on_status(job_id: str, _job: Any, status: str) -> None:
        if status in ("completed", "failed", "canceled"):
            learned.setdefault(job_id, time.monotonic())

    async def main() -> None:
        async with ionq.async_client(api_key=API_KEY, base_url=url) as http:
            await ionq.async_wait_for_jobs(http, ids, on_status=on_status, **fleet_options(scale))

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.send(
        {
            "learned": learned,
            "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mib": usage.ru_maxrss / 1024,
        }
    )


def run_in_process(server: Any, times: list[float], scale: float) -> dict[str, Any]:
    ids, terminal = submit_jobs(server, times, scale)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    started = time.monotonic()
    proc = ctx.Process(target=_child, args=(server.url, ids, scale, child))
    proc.start()
    answer = parent.recv()
    wall = time.monotonic() - started
    proc.join(30)
    learned = answer["learned"]
    delays = [(learned[i] - t) * scale for i, t in zip(ids, terminal, strict=True) if i in learned]
    requests, per_job = job_polls(server, set(ids))
    return {
        "name": "in-process asyncio fleet",
        "wall": wall,
        "requests": requests,
        "job_polls": sum(per_job.values()),
        "delays": delays,
        "cpu": answer["cpu"],
        "rss_mib": answer["rss_mib"],
        "n": len(ids),
        "missing": len(ids) - len(learned),
    }


# --- the durable runs ------------------------------------------------------------------


def _group_cpu_rss(pgid: int) -> tuple[float, float]:
    tick = os.sysconf("SC_CLK_TCK")
    cpu, rss = 0.0, 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) != pgid:
            continue
        cpu += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
        rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def run_durable(
    server: Any,
    times: list[float],
    scale: float,
    *,
    kill_at: float | None,
    workdir: Path,
    shard_size: int | None = None,
) -> dict[str, Any]:
    # Countdowns capped at the backoff cap, a visibility timeout 20 times that (at
    # least 30 s), the sweeper's grace 3 times it (at least 5 s).
    cap = CAP / scale
    os.environ["JOBWAIT_DURABLE_VISIBILITY"] = str(int(max(30, 20 * cap)))
    os.environ["JOBWAIT_DURABLE_COUNTDOWN_CAP"] = str(cap)
    os.environ["JOBWAIT_DURABLE_SWEEP_GRACE"] = str(max(5.0, 3 * cap))
    import durable_app  # reads the three variables above
    from procs import processes

    ids, terminal = submit_jobs(server, times, scale)
    n = len(ids)
    with processes(workdir) as procs:
        redis = procs.redis()
        _app, waits = durable_app.make(redis.url)
        env = {
            "JOBWAIT_DURABLE_REDIS": redis.url,
            "JOBWAIT_DURABLE_API": server.url,
            "JOBWAIT_DURABLE_KEY": API_KEY,
            **{
                k: os.environ[k]
                for k in (
                    "JOBWAIT_DURABLE_VISIBILITY",
                    "JOBWAIT_DURABLE_COUNTDOWN_CAP",
                    "JOBWAIT_DURABLE_SWEEP_GRACE",
                )
            },
        }
        client = redis.client()
        before = int(client.info("memory")["used_memory"])
        submit_started = time.monotonic()
        group = waits.submit("board", ids, shard_size=shard_size, **fleet_options(scale))
        submit_s = time.monotonic() - submit_started
        per_job = (int(client.info("memory")["used_memory"]) - before) / n
        worker = procs.worker("durable_app:app", env, name="bench")
        started = time.monotonic()
        cpu_done, peak_rss, killed = 0.0, 0.0, False
        stop = threading.Event()

        def sweeper() -> None:
            while not stop.wait(1.0):
                waits.sweep()

        sweeping = threading.Thread(target=sweeper, daemon=True)
        sweeping.start()
        try:
            while True:
                progress = group.progress()
                cpu, rss = _group_cpu_rss(worker.proc.pid)  # type: ignore[union-attr]
                peak_rss = max(peak_rss, rss)
                if progress.done:
                    cpu_done += cpu
                    break
                if kill_at is not None and not killed and progress.waiting <= n * (1 - kill_at):
                    cpu_done += cpu
                    worker.kill()
                    killed = True
                    worker = procs.worker("durable_app:app", env, name="bench-after-kill")
                if time.monotonic() - started > 3600:
                    raise TimeoutError("durable run not done after an hour")
                time.sleep(0.5)
        finally:
            stop.set()
        wall = time.monotonic() - started
        offset = time.time() - time.monotonic()
        stream = waits.store.client.xrange(waits.store.keys(group.id).stream)
        seen: dict[str, float] = {}
        doubled_outcomes = 0
        for entry_id, fields in stream:
            job_id = fields[b"id"].decode()
            if job_id in seen:
                doubled_outcomes += 1
            seen.setdefault(job_id, int(entry_id.split(b"-")[0]) / 1000 - offset)
        recorded = {}
        for job_id, text in waits.store.results(group.id).items():
            recorded[job_id] = json.loads(text)["polls"]
        requests, served = job_polls(server, set(ids))
        doubled_reads = sum(max(0, served[i] - recorded.get(i, 0)) for i in ids)
        delays = [(seen[i] - t) * scale for i, t in zip(ids, terminal, strict=True) if i in seen]
        client.close()
    return {
        "name": ("durable, worker killed at 30%" if kill_at else "durable (1 worker x 2 procs)")
        + (f", shards of {shard_size}" if shard_size else ""),
        "wall": wall,
        "requests": requests,
        "job_polls": sum(served.values()),
        "delays": delays,
        "cpu": cpu_done,
        "rss_mib": peak_rss,
        "n": n,
        "missing": n - len(seen),
        "doubled": doubled_outcomes,
        "doubled_reads": doubled_reads,
        "redis_b_per_job": per_job,
        "submit_s": submit_s,
        "shards": math.ceil(n / (shard_size or 1000)),
    }


def report(runs: list[dict[str, Any]], times: list[float]) -> None:
    alone = [schedule_delay(t) for t in times]
    polls = sum(1 + _polls(t) for t in times) / len(times)
    print(
        f"\nschedule alone: job-polls/job {polls:.2f}, delay p50 {quantile(alone, 0.5):.2f} s, "
        f"p99 {quantile(alone, 0.99):.2f} s (scripted)"
    )
    header = (
        f"{'run':44} {'req/s':>7} {'requests':>9} {'job-polls/job':>13} "
        f"{'p50 s':>7} {'p99 s':>7} {'CPU s':>7} {'RSS MiB':>8} {'lost':>5} "
        f"{'doubled':>7} {'dbl reads':>9} {'Redis B/job':>11}"
    )
    print(header)
    for r in runs:
        print(
            f"{r['name']:44} {r['requests'] / r['wall']:7.1f} {r['requests']:9d} "
            f"{r['job_polls'] / r['n']:13.2f} {quantile(r['delays'], 0.5):7.2f} "
            f"{quantile(r['delays'], 0.99):7.2f} {r['cpu']:7.1f} {r['rss_mib']:8.0f} "
            f"{r['missing']:5d} {r.get('doubled', 0):7d} {r.get('doubled_reads', 0):9d} "
            f"{r.get('redis_b_per_job', math.nan):11.0f}"
        )
    base = runs[0]
    for r in runs[1:]:
        ratio = quantile(r["delays"], 0.99) / quantile(base["delays"], 0.99)
        print(
            f"{r['name']}: p99 {ratio:.2f}x "
            f"the in-process fleet's, requests {r['requests'] / base['requests']:.2f}x; "
            f"submit took {r['submit_s']:.1f} s for {r['shards']} shards; wall {r['wall']:.0f} s "
            f"(in-process {base['wall']:.0f} s)"
        )
    sys.stdout.flush()


def _polls(total: float) -> int:
    t, interval, k = 0.0, FIRST, 0
    while t < total:
        t += interval
        interval = min(interval * FACTOR, CAP)
        k += 1
    return k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=None,
        help="ids per shard (default: 10 x max_batch, 1,000)",
    )
    args = parser.parse_args()

    from jobwait.adapters.server import JobServer

    times = draw(args.jobs, args.seed)
    print(
        f"N = {args.jobs:,} jobs, lognormal median {MEDIAN_S:.0f} s / p99 {P99_S:.0f} s "
        f"scripted, played x{args.time_scale:g}; Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores"
    )
    runs = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        JobServer(api_key=API_KEY, time_scale=args.time_scale) as server,
    ):
        runs.append(run_in_process(server, times, args.time_scale))
        report(runs, times)  # after every run: a long benchmark keeps what it measured
        for kill_at in (None,) if args.skip_kill else (None, 0.3):
            workdir = Path(tmp) / f"durable-{kill_at}"
            workdir.mkdir()
            run = run_durable(
                server,
                times,
                args.time_scale,
                kill_at=kill_at,
                workdir=workdir,
                shard_size=args.shard_size,
            )
            runs.append(run)
            report(runs, times)


if __name__ == "__main__":
    main()
