"""Push benchmark (issue 14): hybrid waiting (webhooks + polling) against polling alone.

Run it directly (it is not a test; pytest skips ``tests/bench``)::

    python tests/bench/bench_push.py                 # 1,000 jobs, three runs (~1.5 min)
    python tests/bench/bench_push.py --jobs 200 --time-scale 4   # a quick look (~15 s)

It prints figures and PASS/MISS per goal; it asserts nothing.

Set-up. For each run a ``JobServer`` runs in its own process (``multiprocessing``
spawn), so the client's event loop does not share a GIL with the server; the client
is this process: one asyncio fleet, ``jobwait.adapters.ionq.async_wait_for_jobs`` over
an ``httpx.AsyncClient`` (batch ``GET /jobs?ids=``, ``max_batch=100``,
``batch_window=1``, ``max_polls_per_second=50``, ``max_concurrency=4``, first interval
0.2 s x1.5 capped at 30 s: the fleet of ``bench_scale.py``). With pushes, the client
also runs a ``WebhookReceiver`` on loopback, the server's ``Webhooks`` POST a notice
to it on each status change, and the fleet gets ``wakeup=``.

Runs, on the same job population (seeded):

- ``polling``: no webhooks;
- ``push 0%``: every notice delivered;
- ``push 30%``: 30% of notices dropped and 10% of the others sent twice (with
  ``--delay S`` each delivery is also up to S seconds late, so some arrive out of
  order; default 0).

Jobs: total run time lognormal, median 5 s and p99 30 s (sigma = ln 6 / 2.326),
truncated at 40 s; a share U(0.3, 0.9) of it ``ready``, the rest ``started``. Divided
by ``--time-scale`` (default 1). Every job completes.

Figures per run: detection delay p50 / p90 / p99 / max (client ``on_status`` seeing the
terminal status, minus the server's terminal time; both ``time.monotonic()``, which is
system-wide on Linux); HTTP requests per job; job polls per job (ids read, summed over
requests); notices delivered per job; and, against the polling run, extra job polls per
notice delivered.

Goals (issue 14): p50 under 50 ms with pushes; p99 with 30% dropped no worse than
polling alone; at most one extra request (job poll) per received push.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import random
import statistics
import sys
import time
from multiprocessing.connection import Connection
from typing import Any


def population(n: int, seed: int, scale: float) -> list[dict[str, float]]:
    rng = random.Random(seed)
    sigma = math.log(6) / 2.326
    jobs = []
    for _ in range(n):
        total = min(40.0, 5.0 * math.exp(rng.gauss(0.0, sigma))) / scale
        share = rng.uniform(0.3, 0.9)
        jobs.append({"submitted": 0.0, "ready": total * share, "started": total * (1 - share)})
    return jobs


def serve(
    conn: Connection, hook_url: str | None, drop: float, delay: float, seed: int, jobs: list[Any]
) -> None:
    from jobwait.adapters.server import JobServer, Webhooks
    from jobwait.testing import JobBoard

    hooks = None
    if hook_url is not None:
        hooks = Webhooks(
            url=hook_url,
            drop=drop,
            duplicate=0.1 if drop else 0.0,
            delay=delay if drop else 0.0,
            seed=seed,
        )
    with JobServer(webhooks=hooks) as server:
        conn.send(server.url)
        conn.recv()  # the client is ready
        ids = [server.submit(durations=durations) for durations in jobs]
        conn.send([(i, server.terminal_at(i)) for i in ids])
        conn.recv()  # the client is done
        requests = server.requests
        polls = 0
        for record in requests:
            polls += len(JobBoard.job_ids_in(record.path.removeprefix("/v0.4")))
        notices = server.notices
        conn.send(
            {
                "requests": len(requests),
                "job_polls": polls,
                "delivered": sum(n.outcome == "delivered" for n in notices),
                "dropped": sum(n.outcome == "dropped" for n in notices),
                "failed": sum(n.outcome in ("failed", "rejected") for n in notices),
            }
        )


async def wait_all(url: str, ids: list[str], wakeup: Any, scale: float) -> dict[str, float]:
    import httpx

    from jobwait import Backoff
    from jobwait.adapters import ionq

    learned: dict[str, float] = {}

    def on_status(job_id: str, job: Any, status: str) -> None:
        if status in ("completed", "failed", "canceled"):
            learned.setdefault(job_id, time.monotonic())

    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        await ionq.async_wait_for_jobs(
            client,
            ids,
            backoff=Backoff(initial=0.2 / scale, factor=1.5, max=30.0 / scale),
            timeout=300.0,
            max_batch=100,
            batch_window=1.0 / scale,
            max_polls_per_second=int(50 * scale),
            max_concurrency=4,
            on_status=on_status,
            wakeup=wakeup,
        )
    return learned


def run(name: str, drop: float | None, jobs: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    from jobwait import Wakeup
    from jobwait.adapters.webhook import WebhookReceiver

    ctx = multiprocessing.get_context("spawn")
    wakeup = Wakeup() if drop is not None else None
    receiver = WebhookReceiver(wakeup) if wakeup is not None else None
    if receiver is not None:
        receiver.start()
    parent, child = ctx.Pipe()
    hook_url = receiver.url if receiver is not None else None
    process = ctx.Process(
        target=serve, args=(child, hook_url, drop or 0.0, args.delay, args.seed, jobs)
    )
    process.start()
    try:
        url = parent.recv()
        # Warm up (imports, first connection) before the jobs exist, so the first run
        # does not pay for them in its first polls.
        asyncio.run(wait_all(url, [], None, args.time_scale))
        parent.send("ready")
        terminal = dict(parent.recv())
        started = time.monotonic()
        learned = asyncio.run(wait_all(url, list(terminal), wakeup, args.time_scale))
        wall = time.monotonic() - started
        parent.send("done")
        stats = parent.recv()
    finally:
        process.join(30)
        if receiver is not None:
            receiver.close()
    delays = sorted(learned[i] - terminal[i] for i in terminal)
    return {
        "name": name,
        "delays": delays,
        "wall": wall,
        "n": len(terminal),
        **stats,
    }


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--delay", type=float, default=0.0, help="late deliveries, seconds")
    args = parser.parse_args()
    jobs = population(args.jobs, args.seed, args.time_scale)
    print(
        f"{args.jobs} jobs, run time median {5 / args.time_scale:g} s "
        f"(lognormal, p99 {30 / args.time_scale:g} s), seed {args.seed}; "
        f"python {sys.version.split()[0]}"
    )
    results = [
        run("polling", None, jobs, args),
        run("push 0%", 0.0, jobs, args),
        run("push 30%", 0.3, jobs, args),
    ]
    head = (
        f"{'run':<10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'req/job':>8} {'polls/job':>9} {'notices/job':>11} {'extra/notice':>12} {'wall s':>7}"
    )
    print(head)
    print("-" * len(head))
    base = results[0]
    for r in results:
        d = r["delays"]
        n = r["n"]
        extra = ""
        if r["delivered"]:
            extra = f"{(r['job_polls'] - base['job_polls']) / r['delivered']:.3f}"
        print(
            f"{r['name']:<10} {1000 * quantile(d, 0.5):8.1f} {1000 * quantile(d, 0.9):8.1f} "
            f"{1000 * quantile(d, 0.99):8.1f} {1000 * d[-1]:8.1f} {r['requests'] / n:8.3f} "
            f"{r['job_polls'] / n:9.2f} {r['delivered'] / n:11.2f} {extra:>12} {r['wall']:7.1f}"
        )
    push0, push30 = results[1], results[2]
    print()
    print(
        f"push 30%: {push30['dropped']} notices dropped, {push30['delivered']} delivered "
        f"(duplicates included), {push30['failed']} failed"
    )
    goals = [
        ("p50 under 50 ms with pushes (0%)", quantile(push0["delays"], 0.5) < 0.05),
        ("p50 under 50 ms with pushes (30% dropped)", quantile(push30["delays"], 0.5) < 0.05),
        (
            "p99 with 30% dropped no worse than polling alone",
            quantile(push30["delays"], 0.99) <= quantile(base["delays"], 0.99),
        ),
        (
            "at most one extra job poll per received push",
            all(r["job_polls"] - base["job_polls"] <= r["delivered"] for r in (push0, push30)),
        ),
    ]
    for text, ok in goals:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print(f"(median of delays, polling alone: {statistics.median(base['delays']):.3f} s)")


if __name__ == "__main__":
    main()
