"""Airflow benchmark (issue 22): 1,000 jobs in one deferred task against the in-process
fleet on the same script; the triggerer's memory per waiting job; the size of the
serialized trigger.

Run it directly (it is not a test and pytest skips ``tests/bench``)::

    .venv/bin/python tests/bench/bench_airflow.py            # ~3 min
    .venv/bin/python tests/bench/bench_airflow.py --quick    # time compressed x10 (~1 min)

It prints figures and PASS/MISS per target; it asserts nothing.

1. **Speed** (``tests/bench/bench_scale.py``'s harness, reused: the server and each
   client in a fresh process of its own, the same seeded population of lognormal jobs,
   median 5 s, first interval 0.2 s x1.5 up to 30 s, ``max_batch=100``,
   ``batch_window=1``, ``max_polls_per_second=50``, ``max_concurrency=4``):

   - ``fleet``: ``jobwait.adapters.ionq.async_wait_for_jobs`` in a plain process, the
     learned time taken in ``on_status``;
   - ``trigger``: ``JobWaitTrigger`` as the triggerer runs it: Airflow imported (its
     logging configured as it configures it, the log written to ``/dev/null``), the
     trigger built, serialized, its kwargs passed through Airflow's serde and the
     trigger re-created from them, the key read from an Airflow connection, then
     ``run()`` in an asyncio loop until its one event. The learned time is taken when
     the trigger records the job's outcome (its ``outcome_record`` is wrapped in the
     child);
   - ``trigger+lines``: the same with ``log_status_changes=True``: what the per-job
     status-change lines (INFO, through Airflow's log pipeline) cost.

   Each is run ``--repeat`` times, alternating; the medians are compared. The trigger
   opens its HTTP connections inside the measured run (the fleet's client is warmed up
   first), as a triggerer would.

2. **Memory per waiting job**: a server child holds ``--memory-n`` jobs that stay
   pending; a client child measures its RSS and ``tracemalloc``'s traced bytes before
   the wait and once every job has been read once, for the trigger (Airflow imported)
   and for the in-process fleet, at N and at 1 job: per job = (at N - at 1) / (N - 1).

3. **Serialized size** of the trigger for 1,000 jobs with IonQ-style ids (UUIDs):
   ``json.dumps`` of its kwargs, and of Airflow's serde encoding of them (what the
   triggerer stores), plain and zlib-compressed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
import tracemalloc
import uuid
import zlib
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scale as scale
from bench_scale import (
    FLEET,
    JOB_TIMEOUT_S,
    Plan,
    Session,
    _backoff,
    _rss_now_kib,
)

KEY = "bench-airflow-key-0c4e1d"
CONN_ID = "bench_api"


def _airflow(url: str) -> None:
    """Import Airflow as a triggerer has it: a home of its own, the API's connection,
    its logging configured, the log going to /dev/null."""
    home = tempfile.mkdtemp(prefix="bench-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {"conn_type": "http", "host": url, "password": KEY}
    )
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    # Everything the measured part uses, imported before it starts (as in a triggerer).
    import airflow.sdk.serde  # noqa: F401

    import jobwait.adapters.airflow  # noqa: F401 - imports and configures Airflow


def _options(plan: Plan) -> dict[str, Any]:
    return {
        **FLEET,
        "batch_window": plan.batch_window,
        "max_polls_per_second": plan.max_polls_per_second,
        "backoff": _backoff(plan),
        "timeout": JOB_TIMEOUT_S,
    }


def _trigger(ids: list[str], options: dict[str, Any], log_status_changes: bool = False) -> Any:
    """A trigger as the triggerer gets it: serialized, through Airflow's serde, re-made."""
    from airflow.sdk.serde import deserialize, serialize

    from jobwait.adapters._durable import ionq_spec
    from jobwait.adapters.airflow import JobWaitTrigger

    spec = ionq_spec(api_key_env=None, conn_id=CONN_ID, base_url_conn_id=CONN_ID)
    made = JobWaitTrigger(
        source=spec, job_ids=ids, options=options, log_status_changes=log_status_changes
    )
    _, kwargs = made.serialize()
    return JobWaitTrigger(**deserialize(json.loads(json.dumps(serialize(kwargs)))))


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise RuntimeError("the trigger fired no event")


def run_trigger(plan: Plan, session: Session) -> str:
    """JobWaitTrigger.run() as the triggerer runs it (see the module docstring)."""
    _airflow(plan.url)
    from jobwait import JobWaitError
    from jobwait.adapters.airflow import _trigger as trigger_module

    original = trigger_module.outcome_record
    index: dict[str, int] = {}

    def recorded(outcome: Any, **options: Any) -> Any:
        job_id = outcome.job_id if isinstance(outcome, JobWaitError) else outcome["id"]
        session.learned[index[job_id]] = time.monotonic()
        return original(outcome, **options)

    trigger_module.outcome_record = recorded  # type: ignore[assignment]
    ids = session.begin()
    index.update((job_id, i) for i, job_id in enumerate(ids))
    lines = plan.approach == "trigger+lines"
    payload = asyncio.run(_first_event(_trigger(ids, _options(plan), log_status_changes=lines)))
    session.end()
    session.errors.extend(
        f"{job_id}: {record['error']['type']}"
        for job_id, record in payload["outcomes"].items()
        if "error" in record
    )
    return "JobWaitTrigger.run() after Airflow's serde, key from a connection"


scale._RUNNERS["trigger"] = run_trigger
scale._RUNNERS["trigger+lines"] = run_trigger


# --- memory per waiting job ---------------------------------------------------------------


def memory_server(conn: Connection, n: int) -> None:
    from jobwait.adapters.server import JobServer

    with JobServer() as server:
        ids = [
            server.submit(id=f"job-{i:05d}", durations={"submitted": 0.0, "ready": 3600.0})
            for i in range(n)
        ]
        conn.send(("ready", server.url, ids))
        while True:
            command = conn.recv()
            if command == "polled":
                conn.send(("polled", len({r.path for r in server.requests})))
            else:
                break


def memory_client(conn: Connection, url: str, ids: list[str], approach: str) -> None:
    try:
        if approach == "trigger":
            _airflow(url)
        else:
            import httpx

            from jobwait.adapters import ionq  # noqa: F401
        reads = math.ceil(len(ids) / 100)
        gc.collect()
        rss0 = _rss_now_kib()
        tracemalloc.start()
        traced0 = tracemalloc.get_traced_memory()[0]

        async def main() -> tuple[float, int]:
            if approach == "trigger":
                task = asyncio.ensure_future(
                    _first_event(_trigger(ids, {"timeout": 7200.0, "max_concurrency": 10}))
                )
            else:
                from jobwait.adapters import ionq

                client = httpx.AsyncClient(base_url=url)
                task = asyncio.ensure_future(
                    ionq.async_wait_for_jobs(client, ids, timeout=7200.0, max_concurrency=10)
                )
            # Every job read once (a batch of 100 per request, so at least N / 100
            # distinct requests), then a moment for the answers to be handled.
            while True:
                await asyncio.sleep(0.2)
                conn.send("polled")
                (_, seen) = conn.recv()
                if seen >= reads:
                    break
            await asyncio.sleep(0.5)
            gc.collect()
            measured = (_rss_now_kib(), tracemalloc.get_traced_memory()[0])
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return measured

        rss, traced = asyncio.run(main())
        conn.send(("stop",))
        conn.send(("done", (rss - rss0) * 1024.0, traced - traced0))
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("crash", traceback.format_exc()))
        raise


def measure_memory(ctx: Any, approach: str, n: int) -> tuple[float, float]:
    """(RSS bytes, traced bytes) grown while waiting for n pending jobs."""
    server_conn, server_end = ctx.Pipe()
    server = ctx.Process(target=memory_server, args=(server_end, n), daemon=True)
    server.start()
    server_end.close()
    try:
        _, url, ids = server_conn.recv()
        client_conn, client_end = ctx.Pipe()
        client = ctx.Process(
            target=memory_client, args=(client_end, url, ids, approach), daemon=True
        )
        client.start()
        client_end.close()
        while True:
            message = client_conn.recv()
            if message == "polled":
                server_conn.send("polled")
                client_conn.send(server_conn.recv())
            elif message[0] == "stop":
                server_conn.send("stop")
            elif message[0] == "crash":
                raise RuntimeError(message[1])
            else:
                _, rss, traced = message
                break
        client.join(30)
        return rss, traced
    finally:
        scale._stop(server)


# --- serialized size ----------------------------------------------------------------------


def size_child(conn: Connection) -> None:
    try:
        _airflow("https://api.ionq.co/v0.4")
        from airflow.sdk.serde import serialize

        from jobwait import Backoff
        from jobwait.adapters._durable import ionq_spec
        from jobwait.adapters.airflow import JobWaitTrigger

        ids = [str(uuid.UUID(int=i + 1, version=4)) for i in range(1000)]
        trigger = JobWaitTrigger(
            source=ionq_spec(api_key_env=None, conn_id="ionq_default"),
            job_ids=ids,
            options={"timeout": 3600.0, "backoff": Backoff(initial=0.2), **FLEET},
        )
        _, kwargs = trigger.serialize()
        plain = json.dumps(kwargs).encode()
        stored = json.dumps(serialize(kwargs)).encode()
        # The event: every job's outcome record, IonQ v0.4 job payloads (the job
        # server's, as IonQ answers them) once each job completed.
        from jobwait._durable import outcome_record
        from jobwait.adapters.airflow._common import event_payload
        from jobwait.testing import JobBoard

        board = JobBoard()
        for job_id in ids:
            board.submit(now=0.0, id=job_id)
        records = {i: outcome_record(board.job(i, now=100.0), polls=7)[1] for i in ids}
        event = json.dumps(serialize(event_payload(records))).encode()
        conn.send(
            (
                len(plain),
                len(stored),
                len(zlib.compress(stored)),
                len(json.dumps(ids).encode()),
                len(event),
            )
        )
    except BaseException:
        conn.send(traceback.format_exc())
        raise


# --- the report ---------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="time compressed x10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory-n", type=int, default=10_000)
    parser.add_argument("--budget", type=float, default=240.0)
    args = parser.parse_args(argv)
    harness = argparse.Namespace(
        time_scale=0.1 if args.quick else 1.0,
        seed=args.seed,
        budget=args.budget,
        prediction_noise=0.25,
        profile=None,
    )
    ctx = multiprocessing.get_context("spawn")
    print("# jobwait Airflow benchmark (issue 22)")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        + ", ".join(
            f"{name} {scale._version(name)}"
            for name in ("apache-airflow", "apache-airflow-task-sdk", "httpx", "jobwait")
        )
    )
    print(
        f"N={args.n}, seed {args.seed}, x{harness.time_scale:g} time, {args.repeat} runs "
        f"of each, alternating; fleet options {FLEET}"
    )

    approaches = ("fleet", "trigger", "trigger+lines")
    runs: dict[str, list[scale.Run]] = {a: [] for a in approaches}
    for r in range(args.repeat):
        for approach in approaches:
            run = scale.run_one(ctx, approach, args.n, harness)
            runs[approach].append(run)
            print(
                f"  run {r + 1} {approach:<14} {run.status}: {run.requests} requests, "
                f"p50 {run.p(0.5):.2f} s, p99 {run.p(0.99):.2f} s, CPU {run.cpu:.2f} s, "
                f"errors {run.errors}, unlearned {run.unlearned}"
            )
    print()
    print("| approach | requests | delay p50 | delay p99 | client CPU s | wall s |")
    print("|---|---|---|---|---|---|")
    medians: dict[str, dict[str, float]] = {}
    for approach in approaches:
        done = runs[approach]
        m = {
            "requests": _median([float(r.requests) for r in done]),
            "p50": _median([r.p(0.5) for r in done]),
            "p99": _median([r.p(0.99) for r in done]),
            "cpu": _median([r.cpu for r in done]),
            "wall": _median([r.wall for r in done]),
        }
        medians[approach] = m
        print(
            f"| {approach} | {m['requests']:.0f} | {m['p50']:.2f} s | {m['p99']:.2f} s | "
            f"{m['cpu']:.2f} | {m['wall']:.1f} |"
        )
    fleet = medians["fleet"]
    for approach in ("trigger", "trigger+lines"):
        got = medians[approach]
        print(f"{approach} against the fleet (goal: within 10%):")
        for name in ("requests", "p50", "p99", "cpu"):
            ratio = got[name] / fleet[name] if fleet[name] else math.nan
            verdict = "PASS" if ratio <= 1.10 else "MISS"
            print(f"  {name}: x{ratio:.3f} {verdict}")

    print()
    n = args.memory_n
    print(f"memory per waiting job ({n:,} jobs pending, each read once; minus 1 job):")
    for approach in ("fleet", "trigger"):
        rss_n, traced_n = measure_memory(ctx, approach, n)
        rss_1, traced_1 = measure_memory(ctx, approach, 1)
        print(
            f"  {approach:<8} RSS {(rss_n - rss_1) / (n - 1):,.0f} B/job, "
            f"traced (tracemalloc) {(traced_n - traced_1) / (n - 1):,.0f} B/job"
        )

    print()
    parent, child = ctx.Pipe()
    process = ctx.Process(target=size_child, args=(child,), daemon=True)
    process.start()
    sizes = parent.recv()
    process.join(30)
    if isinstance(sizes, str):
        raise RuntimeError(sizes)
    plain, stored, packed, ids_only, event = sizes
    print("serialized trigger, 1,000 jobs with UUID ids:")
    print(f"  kwargs as JSON {plain:,} B (the ids alone {ids_only:,} B)")
    print(f"  Airflow serde encoding, as stored {stored:,} B; zlib {packed:,} B")
    print(f"  per job {(stored - (plain - ids_only)) / 1000:.1f} B")
    print(f"  the event for 1,000 completed IonQ jobs (outcome records): {event:,} B")


if __name__ == "__main__":
    main()
