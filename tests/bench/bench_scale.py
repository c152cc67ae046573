"""Scale benchmark (issue 5): waiting for 100, 1,000 and 10,000 jobs over loopback.

Run it directly (it is not a test and pytest skips ``tests/bench``)::

    .venv/bin/python tests/bench/bench_scale.py            # full: N = 100, 1,000, 10,000 (~15 min)
    .venv/bin/python tests/bench/bench_scale.py --quick    # N = 100, time compressed x10 (~30 s)

It prints figures and PASS/MISS per target; it asserts nothing.

Processes. Every run (one approach, one N) gets a fresh ``JobServer`` in its own
process and a fresh client process (both ``multiprocessing`` spawn children), so the
client's CPU time and RSS are its own and start clean. This process only orchestrates:

1. the server child binds loopback and reports its URL;
2. the client child imports what its approach needs, opens its HTTP client and says
   ready;
3. the server child submits the N jobs (``server.submit``, durations drawn from the
   seed) and sends back their ids and ``terminal_at`` times;
4. the client child resets its peak RSS, reads its baseline RSS and CPU time, waits for
   all N jobs, and sends back, per job, the ``time.monotonic()`` at which it learned the
   outcome, plus CPU, peak RSS and wall time;
5. the server child reports its request count, job polls, connections and CPU.

Detection delay = (client learned the outcome) - (server marked it terminal). Both are
``time.monotonic()``, which is CLOCK_MONOTONIC, system-wide on Linux, so the two
processes share it. A secondary figure, "srv p99", uses the server time at which it
first *served* the terminal status: the difference between the two is time the answer
spent queued in the client (event loop or connection pool starvation).

Jobs. Total run time T is lognormal with median 5 s and p99 30 s (sigma = ln 6 / 2.326),
truncated at 50 s (0.14% of draws) to bound the run; a share u ~ U(0.3, 0.9) of T is
queue wait (``ready``), the rest execution (``started``); every job completes. Drawn
from ``--seed``, the same population for every approach at a given N.

Predictions. The board's ``predicted_wait_time_ms`` / ``predicted_execution_duration_ms``
are exact (the true remaining time). Real predictions are estimates, so the server child
multiplies both fields of job j, in every answer, by a factor e_j = exp(g), g ~
N(0, ``--prediction-noise``) (default 0.25: half of the estimates within about -16%/+18%,
one in twenty off by more than -39%/+63%), drawn once per job from the seed: each job's
queue estimate is consistently optimistic or pessimistic, as a queue model's is.
This is done by wrapping the board's private ``_Job.view`` in the server child only; the
same wrapper counts job polls and records the first terminal answer per job.

Approaches (all with a first interval of 0.2 s, x1.5 per poll, capped at 30 s, and a
300 s per-job timeout, as ionq-core's loop with ``poll_interval=0.2``):

- ``threads``: ionq_core.polling's loop shape, one OS thread per job, all threads
  sharing one sync ``httpx.Client(timeout=None)`` (default pool limits), as a user who
  builds one ``IonQClient`` and calls ``wait_for_job`` from a thread pool would. Only
  ``r.json()`` is decoded, not ionq-core's attrs models, which flatters the baseline's
  CPU a little. Skipped above ``--max-threads`` jobs (default 1,000).
- ``gather``: the same loop as coroutines under ``asyncio.gather`` on one
  ``httpx.AsyncClient(timeout=None)`` (default limits), as ionq-core's async client.
- ``jobwait``: ``jobwait.adapters.ionq.async_wait_for_job(..., shared=False)`` per job
  under ``asyncio.gather``, on the same client configuration: each wait alone, as the
  drop-in was before issue 12.
- ``dropin``: the same gather with the drop-in's default, ``shared=True`` (issue 12):
  the concurrent waits join one shared scheduler for the client (batch
  ``GET /jobs?ids=``, its default options: ``max_batch=100``, ``batch_window=0.1`` s,
  ``max_concurrency=10``, no request budget). The learned time is taken when each
  call returns.
- ``fleet``: ``jobwait.adapters.ionq.async_wait_for_jobs`` (batch ``GET /jobs?ids=``),
  ``max_batch=100``, ``batch_window=1``, ``max_polls_per_second=50``,
  ``max_concurrency=4``; ``fleet+pred`` adds ``use_predictions=True``. The learned time
  is taken in ``on_status`` when the status turns terminal.

``--quick`` compresses time by 10: durations, first interval, cap and batch window are
multiplied by 0.1 and the poll budget by 10. Loopback latency does not compress, so the
quick figures are a smoke test, not the benchmark.

Schedule alone. The report also prints, per N, the detection delay the backoff schedule
alone implies: each job polled exactly on schedule from the moment it was submitted,
with answers taking no time (the first poll at or after its run time, minus the run
time). No client can do better without being told.

Budget. Each run has ``--budget`` seconds (default 120): a SIGALRM in the client child
then reports what it learned so far and exits ("over budget", the unlearned jobs
counted), and the orchestrator kills any child that has not answered 60 s later.
``--profile DIR`` writes a cProfile of each client's waits (wall time) to DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import platform
import random
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any

TERMINAL = frozenset({"completed", "failed", "canceled"})
MEDIAN_S = 5.0
P99_S = 30.0
TRUNCATE_S = 50.0
FIRST_INTERVAL_S = 0.2
FACTOR = 1.5
CAP_S = 30.0
JOB_TIMEOUT_S = 300.0
FLEET = {"max_batch": 100, "batch_window": 1.0, "max_polls_per_second": 50, "max_concurrency": 4}
APPROACHES = ("threads", "gather", "jobwait", "dropin", "fleet", "fleet+pred")
KIB = 1024.0


# --- the job population ----------------------------------------------------------------


def draw_jobs(n: int, seed: int, scale: float) -> list[tuple[float, float]]:
    """(queue wait, execution) seconds per job, seeded; see the module docstring."""
    rng = random.Random(seed)
    sigma = math.log(P99_S / MEDIAN_S) / 2.326
    jobs = []
    for _ in range(n):
        total = min(rng.lognormvariate(math.log(MEDIAN_S), sigma), TRUNCATE_S) * scale
        share = rng.uniform(0.3, 0.9)
        jobs.append((total * share, total * (1.0 - share)))
    return jobs


def draw_noise(n: int, seed: int, sigma: float) -> list[float]:
    rng = random.Random(seed * 7919 + 1)
    return [math.exp(rng.gauss(0.0, sigma)) for _ in range(n)]


def job_id_of(i: int) -> str:
    return f"job-{i:05d}"


# --- the server child ------------------------------------------------------------------


def server_main(conn: Connection, noise_sigma: float) -> None:
    """Serve a JobServer on loopback; answer the orchestrator's commands on ``conn``."""
    from jobwait.adapters import server as server_mod
    from jobwait.adapters.server import JobServer
    from jobwait.testing import _board

    polls: dict[str, int] = {}
    first_terminal: dict[str, float] = {}
    noise: dict[str, float] = {}
    connections = [0]
    original_view = _board._Job.view
    original_connection_init = server_mod._Connection.__init__

    def view(self: Any, now: float) -> dict[str, object]:
        data = original_view(self, now)
        job_id = self.id
        polls[job_id] = polls.get(job_id, 0) + 1
        if data["status"] in TERMINAL:
            if job_id not in first_terminal:
                first_terminal[job_id] = now
        else:
            factor = noise.get(job_id)
            if factor is not None:
                for key in ("predicted_wait_time_ms", "predicted_execution_duration_ms"):
                    value = data[key]
                    if isinstance(value, int):
                        data[key] = round(value * factor)
        return data

    def connection_init(self: Any, *args: Any, **kwargs: Any) -> None:
        connections[0] += 1
        original_connection_init(self, *args, **kwargs)

    _board._Job.view = view  # type: ignore[method-assign]
    server_mod._Connection.__init__ = connection_init  # type: ignore[method-assign]

    with JobServer() as server:
        conn.send(("url", server.url))
        cpu0 = _cpu_seconds()
        while True:
            command, *args = conn.recv()
            if command == "submit":
                n, seed, scale = args
                ids = []
                for i, (queue, execution) in enumerate(draw_jobs(n, seed, scale)):
                    job_id = job_id_of(i)
                    server.submit(
                        id=job_id,
                        durations={"submitted": 0.0, "ready": queue, "started": execution},
                    )
                    ids.append(job_id)
                noise.update(zip(ids, draw_noise(n, seed, noise_sigma), strict=True))
                cpu0 = _cpu_seconds()
                conn.send(("jobs", ids, [server.terminal_at(job_id) for job_id in ids]))
            elif command == "stats":
                ids = args[0]
                log = server.requests
                conn.send(
                    (
                        "stats",
                        {
                            "requests": sum(1 for record in log if "/jobs" in record.path),
                            "non_200": sum(
                                1
                                for record in log
                                if "/jobs" in record.path and record.status_code != 200
                            ),
                            "job_polls": sum(polls.values()),
                            "first_terminal": [first_terminal.get(i, math.nan) for i in ids],
                            "connections": connections[0],
                            "cpu": _cpu_seconds() - cpu0,
                        },
                    )
                )
            else:
                break


# --- the client child ------------------------------------------------------------------


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_now_kib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return math.nan


def _reset_peak_rss() -> bool:
    # Linux >= 4.0: writing 5 to clear_refs resets the peak RSS (VmHWM, ru_maxrss), so
    # the peak we read afterwards belongs to the waits, not to imports or unpickling.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How one client child waits; times already scaled."""

    approach: str
    url: str
    first_interval: float
    cap: float
    batch_window: float
    max_polls_per_second: int
    budget_s: float
    profile: str | None = None


class Session:
    """The measured part of a client child: everything between :meth:`begin` and
    :meth:`end`. A runner opens its HTTP client and warms it up (one request outside
    ``/jobs``, so imports, TLS context and the first connection are not charged to the
    waits), then calls :meth:`begin` for the ids and :meth:`end` when every wait ended
    (or the budget ran out: then :meth:`finish` reports at once, without the teardown
    of thousands of tasks or threads)."""

    def __init__(self, conn: Connection, plan: Plan) -> None:
        self.conn = conn
        self.plan = plan
        self.ids: list[str] = []
        self.learned: list[float] = []
        self.errors: list[str] = []
        self.measures: dict[str, Any] = {}
        self._profiler: Any = None

    def begin(self) -> list[str]:
        self.conn.send(("ready",))
        _, self.ids = self.conn.recv()
        self.learned = [math.nan] * len(self.ids)
        gc.collect()
        self.measures["peak_reset"] = _reset_peak_rss()
        self.measures["rss_before_kib"] = _rss_now_kib()
        if self.plan.profile:
            import cProfile

            self._profiler = cProfile.Profile()
            self._profiler.enable()
        # The budget is a SIGALRM, handled in the main thread at the next bytecode: an
        # event loop whose every iteration takes seconds (httpcore's pool with 10,000
        # queued requests) would notice an asyncio timeout far too late.
        signal.signal(signal.SIGALRM, lambda _signum, _frame: self.over_budget())
        signal.setitimer(signal.ITIMER_REAL, self.plan.budget_s)
        self._cpu0 = _cpu_seconds()
        self._started = time.monotonic()
        return self.ids

    def end(self) -> None:
        if "wall" in self.measures:
            return
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        self.measures["wall"] = time.monotonic() - self._started
        self.measures["cpu"] = _cpu_seconds() - self._cpu0
        self.measures["peak_kib"] = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        if self._profiler is not None:
            self._profiler.disable()
            self._profiler.dump_stats(self.plan.profile)

    def over_budget(self) -> None:
        """Report what is known and exit, leaving requests, tasks and threads as they
        are (cancelling 10,000 queued requests takes minutes)."""
        self.end()
        self.errors.append("budget exceeded")
        self.finish(f"stopped after the {self.plan.budget_s:.0f} s budget")

    def finish(self, note: str) -> None:
        """Send the measures and exit the process now (never returns)."""
        self.end()
        self.conn.send(
            (
                "done",
                {
                    **self.measures,
                    "learned": self.learned,
                    "errors": len(self.errors),
                    "first_error": self.errors[0] if self.errors else None,
                    "note": note,
                },
            )
        )
        self.conn.close()
        os._exit(0)


def client_main(conn: Connection, plan: Plan) -> None:
    """Wait for the jobs the orchestrator sends, the way ``plan.approach`` says."""
    session = Session(conn, plan)
    try:
        session.finish(_RUNNERS[plan.approach](plan, session))
    except BaseException:
        with contextlib.suppress(Exception):
            conn.send(("crash", traceback.format_exc()))
        raise


WARM_UP_PATH = "/"  # the API root: a 404 outside /jobs, not counted as a poll


def run_threads(plan: Plan, session: Session) -> str:
    """ionq_core.polling.wait_for_job's loop shape, one thread per job, one shared client."""
    import httpx

    http = httpx.Client(base_url=plan.url, timeout=None)
    http.get(WARM_UP_PATH)
    ids = session.begin()
    learned, errors = session.learned, session.errors

    def wait_for_job(index: int, job_id: str) -> None:
        try:
            deadline = time.monotonic() + JOB_TIMEOUT_S
            interval = plan.first_interval
            while True:
                job = http.get(f"/jobs/{job_id}").raise_for_status().json()
                if job["status"] in TERMINAL:
                    learned[index] = time.monotonic()
                    return
                if time.monotonic() >= deadline:
                    errors.append(f"{job_id}: timeout")
                    return
                time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
                interval = min(interval * FACTOR, plan.cap)
        except Exception as exc:
            errors.append(f"{job_id}: {exc!r}")

    threads = [
        threading.Thread(target=wait_for_job, args=(i, job_id), daemon=True)
        for i, job_id in enumerate(ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session.end()
    return "one thread per job, one shared httpx.Client(timeout=None)"


def _run_async(
    plan: Plan, session: Session, body: Callable[[Any, list[str]], Awaitable[str]]
) -> str:
    """Open an ``httpx.AsyncClient(timeout=None)`` (default limits), warm it up, then
    run ``body(http, ids)`` between ``session.begin()`` and ``session.end()``."""
    import httpx

    async def main() -> str:
        async with httpx.AsyncClient(base_url=plan.url, timeout=None) as http:
            await http.get(WARM_UP_PATH)
            ids = session.begin()
            note = await body(http, ids)
            session.end()
            return note

    return asyncio.run(main())


def run_gather(plan: Plan, session: Session) -> str:
    """ionq_core.polling.async_wait_for_job's loop shape under asyncio.gather."""

    async def wait_for_job(http: Any, index: int, job_id: str) -> None:
        try:
            deadline = time.monotonic() + JOB_TIMEOUT_S
            interval = plan.first_interval
            while True:
                job = (await http.get(f"/jobs/{job_id}")).raise_for_status().json()
                if job["status"] in TERMINAL:
                    session.learned[index] = time.monotonic()
                    return
                if time.monotonic() >= deadline:
                    session.errors.append(f"{job_id}: timeout")
                    return
                await asyncio.sleep(max(0.0, min(interval, deadline - time.monotonic())))
                interval = min(interval * FACTOR, plan.cap)
        except Exception as exc:
            session.errors.append(f"{job_id}: {exc!r}")

    async def body(http: Any, ids: list[str]) -> str:
        await asyncio.gather(*(wait_for_job(http, i, job_id) for i, job_id in enumerate(ids)))
        return "asyncio.gather, one httpx.AsyncClient(timeout=None)"

    return _run_async(plan, session, body)


def _backoff(plan: Plan) -> Any:
    from jobwait import Backoff

    return Backoff(initial=plan.first_interval, factor=FACTOR, max=plan.cap)


def run_jobwait(plan: Plan, session: Session) -> str:
    """jobwait.adapters.ionq.async_wait_for_job per job under asyncio.gather: alone
    (``jobwait``, ``shared=False``) or sharing one scheduler (``dropin``, the default)."""
    from jobwait.adapters import ionq

    backoff = _backoff(plan)
    shared = plan.approach == "dropin"

    async def wait_for_job(http: Any, index: int, job_id: str) -> None:
        try:
            await ionq.async_wait_for_job(
                http, job_id, backoff=backoff, timeout=JOB_TIMEOUT_S, shared=shared
            )
        except Exception as exc:
            session.errors.append(f"{job_id}: {exc!r}")
        else:
            session.learned[index] = time.monotonic()

    async def body(http: Any, ids: list[str]) -> str:
        await asyncio.gather(*(wait_for_job(http, i, job_id) for i, job_id in enumerate(ids)))
        return f"ionq.async_wait_for_job per job, asyncio.gather, shared={shared}"

    return _run_async(plan, session, body)


def run_fleet(plan: Plan, session: Session) -> str:
    """jobwait.adapters.ionq.async_wait_for_jobs (batch GET /jobs?ids=...); the learned
    time is taken in ``on_status`` when a job's status turns terminal."""
    from jobwait.adapters import ionq

    options = {
        **FLEET,
        "batch_window": plan.batch_window,
        "max_polls_per_second": plan.max_polls_per_second,
        "backoff": _backoff(plan),
        "timeout": JOB_TIMEOUT_S,
        "use_predictions": plan.approach == "fleet+pred",
    }
    index: dict[str, int] = {}
    learned = session.learned

    def on_status(job_id: str, _job: Any, status: str) -> None:
        if status in TERMINAL:
            learned[index[job_id]] = time.monotonic()

    async def body(http: Any, ids: list[str]) -> str:
        nonlocal learned
        learned = session.learned
        index.update((job_id, i) for i, job_id in enumerate(ids))
        results = await ionq.async_wait_for_jobs(http, ids, on_status=on_status, **options)
        session.errors.extend(
            f"{job_id}: {outcome!r}"
            for job_id, outcome in results.items()
            if isinstance(outcome, BaseException)
        )
        return "ionq.async_wait_for_jobs, batch GET /jobs?ids="

    return _run_async(plan, session, body)


_RUNNERS: dict[str, Callable[..., str]] = {
    "threads": run_threads,
    "gather": run_gather,
    "jobwait": run_jobwait,
    "dropin": run_jobwait,
    "fleet": run_fleet,
    "fleet+pred": run_fleet,
}


# --- the orchestrator ------------------------------------------------------------------


class ChildFailedError(RuntimeError):
    """A child process crashed, died or did not answer in time."""


@dataclass(slots=True, kw_only=True)
class Run:
    """What one (approach, N) run measured."""

    approach: str
    n: int
    status: str = "ok"
    note: str = ""
    requests: int = 0
    non_200: int = 0
    job_polls: int = 0
    connections: int = 0
    delays: tuple[float, ...] = ()
    served_delays: tuple[float, ...] = ()
    unlearned: int = 0
    errors: int = 0
    first_error: str | None = None
    cpu: float = math.nan
    wall: float = math.nan
    peak_kib: float = math.nan
    rss_before_kib: float = math.nan
    server_cpu: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.unlearned == 0 and self.errors == 0

    @property
    def ran(self) -> bool:
        return not self.status.startswith(("skipped", "crash"))

    def p(self, q: float, served: bool = False) -> float:
        return quantile(self.served_delays if served else self.delays, q)

    @property
    def bytes_per_job(self) -> float:
        return (self.peak_kib - self.rss_before_kib) * KIB / self.n


def schedule_delays(n: int, args: argparse.Namespace) -> list[float]:
    """Per job, the delay of the backoff schedule alone (see the module docstring)."""
    scale = args.time_scale
    delays = []
    for queue, execution in draw_jobs(n, args.seed, scale):
        total = queue + execution
        at, interval = 0.0, FIRST_INTERVAL_S * scale
        while at < total:
            at += interval
            interval = min(interval * FACTOR, CAP_S * scale)
        delays.append(at - total)
    return delays


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _receive(conn: Connection, seconds: float, expected: str, who: str) -> tuple[Any, ...]:
    if not conn.poll(seconds):
        raise ChildFailedError(f"{who} sent no {expected!r} within {seconds:.0f} s")
    try:
        message = conn.recv()
    except EOFError:
        raise ChildFailedError(f"{who} exited before sending {expected!r}") from None
    if message[0] == "crash":
        raise ChildFailedError(f"{who} crashed:\n{message[1]}")
    if message[0] != expected:
        raise ChildFailedError(f"{who} sent {message[0]!r}, expected {expected!r}")
    return tuple(message)


def _stop(process: multiprocessing.process.BaseProcess | None) -> None:
    if process is None or process.pid is None:
        return
    process.join(5.0)
    if process.is_alive():
        process.terminate()
        process.join(5.0)
    if process.is_alive():
        process.kill()
        process.join(5.0)


def run_one(ctx: Any, approach: str, n: int, args: argparse.Namespace) -> Run:
    """One approach for N jobs: a fresh server child and a fresh client child."""
    scale = args.time_scale
    run = Run(approach=approach, n=n)
    server = client = None
    server_conn, server_end = ctx.Pipe()
    client_conn, client_end = ctx.Pipe()
    try:
        server = ctx.Process(
            target=server_main, args=(server_end, args.prediction_noise), daemon=True
        )
        server.start()
        server_end.close()
        (_, url) = _receive(server_conn, 60.0, "url", "server")
        plan = Plan(
            approach=approach,
            url=url,
            first_interval=FIRST_INTERVAL_S * scale,
            cap=CAP_S * scale,
            batch_window=FLEET["batch_window"] * scale,
            max_polls_per_second=max(1, round(FLEET["max_polls_per_second"] / scale)),
            budget_s=args.budget,
            profile=(os.path.join(args.profile, f"{approach}-{n}.prof") if args.profile else None),
        )
        client = ctx.Process(target=client_main, args=(client_end, plan), daemon=True)
        client.start()
        client_end.close()
        _receive(client_conn, 60.0, "ready", "client")
        server_conn.send(("submit", n, args.seed, scale))
        _, ids, terminal = _receive(server_conn, 60.0, "jobs", "server")
        client_conn.send(("go", ids))
        _, done = _receive(client_conn, args.budget + 60.0, "done", "client")
        server_conn.send(("stats", ids))
        _, stats = _receive(server_conn, 60.0, "stats", "server")
        server_conn.send(("stop",))
    except ChildFailedError as exc:
        run.status = f"crash: {exc}"
        return run
    finally:
        _stop(client)
        _stop(server)
        server_conn.close()
        client_conn.close()
    learned = done["learned"]
    run.delays = tuple(t - end for t, end in zip(learned, terminal, strict=True) if t == t)
    run.served_delays = tuple(
        t - end for t, end in zip(stats["first_terminal"], terminal, strict=True) if t == t
    )
    run.unlearned = sum(1 for t in learned if t != t)
    run.errors = done["errors"]
    run.first_error = done["first_error"]
    run.note = done["note"]
    if "budget" in run.note:
        run.status = "over budget"
    run.cpu = done["cpu"]
    run.wall = done["wall"]
    run.peak_kib = done["peak_kib"]
    run.rss_before_kib = done["rss_before_kib"]
    run.requests = stats["requests"]
    run.non_200 = stats["non_200"]
    run.job_polls = stats["job_polls"]
    run.connections = stats["connections"]
    run.server_cpu = stats["cpu"]
    return run


# --- the report ------------------------------------------------------------------------


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_machine(args: argparse.Namespace) -> None:
    print("# jobwait scale benchmark (issue 5)")
    print(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )
    print(
        "packages: "
        + ", ".join(
            f"{name} {_version(name)}"
            for name in ("jobwait", "httpx", "httpcore", "anyio", "h11", "sniffio", "ionq-core")
        )
    )
    mode = "quick (smoke test)" if args.quick else "full"
    print(
        f"mode: {mode}; time scale x{args.time_scale:g}; seed {args.seed}; "
        f"per-run budget {args.budget:.0f} s"
    )
    s = args.time_scale
    print(
        f"jobs: lognormal run time, median {MEDIAN_S * s:g} s, p99 {P99_S * s:g} s, "
        f"truncated at {TRUNCATE_S * s:g} s; queue share U(0.3, 0.9); all submitted at once"
    )
    print(
        f"schedule (all approaches): first interval {FIRST_INTERVAL_S * s:g} s, "
        f"x{FACTOR:g}, cap {CAP_S * s:g} s, per-job timeout {JOB_TIMEOUT_S:g} s"
    )
    budget = max(1, round(FLEET["max_polls_per_second"] / s))
    print(
        f"fleet: max_batch={FLEET['max_batch']}, batch_window={FLEET['batch_window'] * s:g}, "
        f"max_polls_per_second={budget}, max_concurrency={FLEET['max_concurrency']}; "
        f"predictions x exp(N(0, {args.prediction_noise:g})) per job"
    )
    print()


def print_population(sizes: Sequence[int], args: argparse.Namespace) -> None:
    for n in sizes:
        totals = [queue + run for queue, run in draw_jobs(n, args.seed, args.time_scale)]
        noise = draw_noise(n, args.seed, args.prediction_noise)
        print(
            f"N={n:,}: run time p50 {quantile(totals, 0.5):.2f} s, p99 "
            f"{quantile(totals, 0.99):.2f} s, max {max(totals):.2f} s; prediction factor "
            f"p1 {quantile(noise, 0.01):.2f}, p50 {quantile(noise, 0.5):.2f}, "
            f"p99 {quantile(noise, 0.99):.2f}"
        )
    print()


HEADER = (
    f"{'approach':<11}{'N':>7}{'requests':>10}{'req/job':>9}{'polls/job':>10}"
    f"{'delay p50':>10}{'p99':>7}{'srv p99':>8}{'CPU s':>8}{'ms/req':>8}"
    f"{'peak RSS':>9}{'B/job':>8}{'wall s':>8}{'conns':>7}{'srv CPU':>8}  status"
)


def _f(value: float, spec: str) -> str:
    return "-" if value != value else format(value, spec)


def row(run: Run) -> str:
    if not run.ran:
        return f"{run.approach:<11}{run.n:>7,}  {run.status}"
    status = "ok" if run.ok else run.status
    if run.unlearned or run.errors:
        status += f"; {run.unlearned} not learned, {run.errors} errors"
        if run.first_error:
            status += f" (first: {run.first_error[:80]})"
    return (
        f"{run.approach:<11}{run.n:>7,}{run.requests:>10,}{run.requests / run.n:>9.2f}"
        f"{run.job_polls / run.n:>10.2f}{_f(run.p(0.5), '.2f'):>10}{_f(run.p(0.99), '.2f'):>7}"
        f"{_f(run.p(0.99, served=True), '.2f'):>8}{run.cpu:>8.2f}"
        f"{_f(run.cpu * 1e3 / run.requests if run.requests else math.nan, '.2f'):>8}"
        f"{run.peak_kib / KIB:>7.0f}Mi{_f(run.bytes_per_job, ',.0f'):>8}{run.wall:>8.1f}"
        f"{run.connections:>7,}{_f(run.server_cpu / run.wall * 100, '.0f'):>7}%  {status}"
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def print_report(runs: dict[tuple[str, int], Run], sizes: Sequence[int]) -> None:
    print(HEADER)
    for n in sizes:
        for approach in APPROACHES:
            run = runs.get((approach, n))
            if run is not None:
                print(row(run))
    print(
        "\ndelay: client learned the outcome - server marked it terminal (s); srv p99: "
        "first terminal answer served - terminal (s); polls/job: job views served "
        "(a batch of 100 is 100 polls, 1 request); B/job: (peak RSS - RSS before the "
        "waits) / N; srv CPU: server CPU / client wall (near 100% means the one-thread "
        "server was the bottleneck)"
    )

    print("\n## Ratios, fleet / baseline (below 1 is better)")
    print(f"{'N':>7}  {'baseline':<9}{'requests':>10}{'p99 delay':>11}{'CPU':>8}{'B/job':>8}")
    for n in sizes:
        fleet = runs.get(("fleet", n))
        for base_name in ("gather", "threads"):
            base = runs.get((base_name, n))
            if fleet is None or base is None or not fleet.ran or not base.ran:
                continue
            print(
                f"{n:>7,}  {base_name:<9}{_ratio(fleet.requests, base.requests):>10.4f}"
                f"{_ratio(fleet.p(0.99), base.p(0.99)):>11.2f}{_ratio(fleet.cpu, base.cpu):>8.3f}"
                f"{_ratio(fleet.bytes_per_job, base.bytes_per_job):>8.2f}"
            )

    print("\n## Predictions: fleet without / with use_predictions=True")
    print(
        f"{'N':>7}{'job polls':>12}{'with':>9}{'ratio':>7}{'requests':>10}{'with':>7}"
        f"{'p50 delay':>11}{'with':>7}{'p99 delay':>11}{'with':>7}"
    )
    for n in sizes:
        plain, pred = runs.get(("fleet", n)), runs.get(("fleet+pred", n))
        if plain is None or pred is None or not plain.ran or not pred.ran:
            continue
        print(
            f"{n:>7,}{plain.job_polls:>12,}{pred.job_polls:>9,}"
            f"{_ratio(plain.job_polls, pred.job_polls):>7.2f}{plain.requests:>10,}"
            f"{pred.requests:>7,}{plain.p(0.5):>11.2f}{pred.p(0.5):>7.2f}"
            f"{plain.p(0.99):>11.2f}{pred.p(0.99):>7.2f}"
        )


def print_targets(runs: dict[tuple[str, int], Run], sizes: Sequence[int]) -> None:
    print("\n## Targets (issue 5)")

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "MISS"

    big = max(sizes)
    fleet_big = runs.get(("fleet", big))
    if big < 10_000 or fleet_big is None:
        print("NOT RUN  the fleet handles 10,000 concurrent jobs in one process (N=10,000 not run)")
    else:
        print(
            f"{verdict(fleet_big.ok)}  the fleet handles 10,000 concurrent jobs in one process: "
            f"{len(fleet_big.delays):,} outcomes learned, {fleet_big.errors} errors, "
            f"wall {fleet_big.wall:.1f} s, CPU {fleet_big.cpu:.2f} s, "
            f"peak RSS {fleet_big.peak_kib / KIB:.0f} MiB ({fleet_big.status})"
        )
    for n in sizes:
        fleet = runs.get(("fleet", n))
        for base_name in ("gather", "threads"):
            base = runs.get((base_name, n))
            if fleet is None or base is None or not fleet.ran or not base.ran:
                continue
            fewer = _ratio(base.requests, fleet.requests)
            passed = fewer >= 20 and fleet.p(0.99) <= base.p(0.99) and fleet.ok
            print(
                f"{verdict(passed)}  N={n:,}: batching >= 20x fewer requests than {base_name} "
                f"at no worse p99 delay: {fewer:.1f}x fewer ({fleet.requests:,} vs "
                f"{base.requests:,}), p99 {fleet.p(0.99):.2f} s vs {base.p(0.99):.2f} s"
            )
    for n in sizes:
        fleet = runs.get(("fleet", n))
        if fleet is None or not fleet.ran:
            continue
        others = ", ".join(
            f"{name} {runs[(name, n)].bytes_per_job:,.0f} B"
            for name in ("gather", "threads", "jobwait")
            if (name, n) in runs and runs[(name, n)].ran
        )
        print(
            f"{verdict(fleet.bytes_per_job < 2000)}  N={n:,}: fleet peak memory per waiting "
            f"job < 2 KB: {fleet.bytes_per_job:,.0f} B (baselines: {others or 'not run'})"
            + ("  [fixed costs dominate at this N]" if n < 10_000 else "")
        )
    for n in sizes:
        plain, pred = runs.get(("fleet", n)), runs.get(("fleet+pred", n))
        if plain is None or pred is None or not plain.ran or not pred.ran:
            continue
        fewer = _ratio(plain.job_polls, pred.job_polls)
        passed = fewer >= 2 and pred.p(0.99) <= plain.p(0.99) and pred.ok
        print(
            f"{verdict(passed)}  N={n:,}: predictions >= 2x fewer polls at no worse p99 delay: "
            f"{fewer:.2f}x fewer job polls ({pred.job_polls:,} vs {plain.job_polls:,}), "
            f"p99 {pred.p(0.99):.2f} s vs {plain.p(0.99):.2f} s"
        )


def print_dropin(
    runs: dict[tuple[str, int], Run], sizes: Sequence[int], args: argparse.Namespace
) -> None:
    """Issue 12's bars: the drop-in gather (shared scheduler) against the fleet and the
    schedule alone, beside the seed's loop (``gather``) and the lone drop-in."""
    print("\n## Issue 12: the drop-in gather, side by side")
    print(
        f"{'N':>7}  {'approach':<10}{'requests':>10}{'delay p50':>10}{'p99':>7}"
        f"{'CPU s':>8}{'B/job':>8}"
    )
    for n in sizes:
        schedule = schedule_delays(n, args)
        print(
            f"{n:>7,}  {'schedule':<10}{'-':>10}{quantile(schedule, 0.5):>10.2f}"
            f"{quantile(schedule, 0.99):>7.2f}{'-':>8}{'-':>8}"
        )
        for name in ("gather", "jobwait", "dropin", "fleet"):
            run = runs.get((name, n))
            if run is None or not run.ran:
                continue
            print(
                f"{n:>7,}  {name:<10}{run.requests:>10,}{_f(run.p(0.5), '.2f'):>10}"
                f"{_f(run.p(0.99), '.2f'):>7}{run.cpu:>8.2f}{_f(run.bytes_per_job, ',.0f'):>8}"
            )

    def verdict(passed: bool) -> str:
        return "PASS" if passed else "MISS"

    for n in sizes:
        dropin, fleet = runs.get(("dropin", n)), runs.get(("fleet", n))
        if dropin is None or fleet is None or not dropin.ran or not fleet.ran:
            continue
        schedule = schedule_delays(n, args)
        requests = _ratio(dropin.requests, fleet.requests)
        print(
            f"{verdict(requests <= 1.2)}  N={n:,}: drop-in requests <= 1.2x the fleet's: "
            f"{requests:.2f}x ({dropin.requests:,} vs {fleet.requests:,})"
        )
        for q in (0.5, 0.99):
            alone = quantile(schedule, q)
            ratio = _ratio(dropin.p(q), alone)
            print(
                f"{verdict(ratio <= 1.1)}  N={n:,}: drop-in delay p{q * 100:g} within 10% of "
                f"the schedule alone: {dropin.p(q):.2f} s vs {alone:.2f} s ({ratio:.2f}x)"
            )
        cpu = _ratio(dropin.cpu, fleet.cpu)
        print(
            f"{verdict(cpu <= 2.0)}  N={n:,}: drop-in CPU <= 2x the fleet's: {cpu:.2f}x "
            f"({dropin.cpu:.2f} s vs {fleet.cpu:.2f} s)"
        )
        extra = dropin.bytes_per_job - fleet.bytes_per_job
        print(
            f"{verdict(extra <= 1024)}  N={n:,}: drop-in memory per job <= the fleet's + 1 KB: "
            f"{dropin.bytes_per_job:,.0f} B vs {fleet.bytes_per_job:,.0f} B (+{extra:,.0f} B)"
        )


# --- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=100 only, time x0.1 (~30 s)")
    parser.add_argument("--sizes", help="comma-separated N (default 100,1000,10000)")
    parser.add_argument("--approaches", help=f"comma-separated subset of {','.join(APPROACHES)}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prediction-noise", type=float, default=0.25)
    parser.add_argument("--max-threads", type=int, default=1_000)
    parser.add_argument("--time-scale", type=float, help="default 1 (0.1 with --quick)")
    parser.add_argument("--budget", type=float, help="seconds per run (default 120; quick 40)")
    parser.add_argument(
        "--profile", metavar="DIR", help="write a cProfile of each client's waits to DIR"
    )
    args = parser.parse_args(argv)
    default_sizes = "100" if args.quick else "100,1000,10000"
    args.sizes = [int(size) for size in (args.sizes or default_sizes).split(",")]
    args.approaches = (args.approaches or ",".join(APPROACHES)).split(",")
    unknown = set(args.approaches) - set(APPROACHES)
    if unknown:
        parser.error(f"unknown approaches: {', '.join(sorted(unknown))}")
    if args.time_scale is None:
        args.time_scale = 0.1 if args.quick else 1.0
    if args.budget is None:
        args.budget = 40.0 if args.quick else 120.0
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    print_machine(args)
    print_population(args.sizes, args)
    sys.stdout.flush()
    plan = [
        (approach, n) for n in args.sizes for approach in APPROACHES if approach in args.approaches
    ]
    runs: dict[tuple[str, int], Run] = {}
    started = time.monotonic()
    for number, (approach, n) in enumerate(plan, 1):
        if approach == "threads" and n > args.max_threads:
            runs[(approach, n)] = Run(
                approach=approach,
                n=n,
                status=f"skipped: {n:,} OS threads on 2 cores, all contending for the GIL and "
                f"one 100-connection pool, would not finish within the run budget "
                f"(--max-threads {args.max_threads:,})",
            )
            continue
        print(f"[{number}/{len(plan)}] {approach} N={n:,} ...", file=sys.stderr, flush=True)
        run = run_one(ctx, approach, n, args)
        runs[(approach, n)] = run
        print(
            f"    {run.status}, {run.note}, wall {run.wall:.1f} s "
            f"({time.monotonic() - started:.0f} s so far)",
            file=sys.stderr,
            flush=True,
        )
    print_report(runs, args.sizes)
    print_targets(runs, args.sizes)
    print_dropin(runs, args.sizes, args)
    print(f"\ntotal benchmark time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
