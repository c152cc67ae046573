"""The scripted scenarios of the matrix, and the neighbours that share a client with them.

Every scenario is one job's script plus the options, hooks and events of its wait, and
what its lone wait must give (``expect``, ``polls``): the lone sync cell checks those,
so the reference every other path is compared with is itself pinned down.

Times: the waits poll at 0, 0.2, 0.6, 1.4, 2.2, 3.0, 3.8 s (``BACKOFF``) until a 4 s
deadline, unless a scenario sets its own. They are virtual seconds on every path but
the Celery shard's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobwait import Backoff, Statuses

from ._server import Step, body, http, job, reset, stall, text

__all__ = ["BACKOFF", "NEIGHBOURS", "SCENARIOS", "Scenario", "neighbour"]

BACKOFF = Backoff(initial=0.2, factor=2.0, max=0.8)
TIMEOUT = 4.0
FAILURE = {"code": "CircuitError", "message": "the circuit failed to compile"}


@dataclass(frozen=True)
class Scenario:
    """One job's wait.

    Attributes:
        name: The test id.
        script: The job's steps (the last one repeats).
        expect: What the lone wait gives: a returned job's status, an error class name
            (``"JobFetchError"``), or ``"interrupted"`` (the waiting task was cancelled).
        polls: How many steps the lone wait meets.
        options: Per-job options over ``backoff=BACKOFF, timeout=4.0``.
        hooks: Pass ``on_status`` and ``on_poll`` (their calls are compared).
        status_hook: Pass ``on_status`` alone.
        cancel_at: The caller cancels its wait at this time (sync: ``KeyboardInterrupt``).
        wake_at: A ``Wakeup`` given to the wait is woken at this time.
        remote_cancel: Pass a ``cancel=`` callback (its calls are compared).
        celery: Also run through the Celery shard on a real redis-server.
    """

    name: str
    script: tuple[Step, ...]
    expect: str
    polls: int
    options: dict[str, Any] = field(default_factory=dict)
    hooks: bool = False
    status_hook: bool = False
    cancel_at: float | None = None
    wake_at: float | None = None
    remote_cancel: bool = False
    celery: bool = False

    def job_options(self) -> dict[str, Any]:
        return {"backoff": BACKOFF, "timeout": TIMEOUT, **self.options}

    def __str__(self) -> str:
        return self.name


def _s(*steps: Step) -> tuple[Step, ...]:
    return steps


RUNNING = job("running")
DONE = job("completed", result={"0": 0.5, "1": 0.5})

SCENARIOS: list[Scenario] = [
    # --- status sequences ---------------------------------------------------------------
    Scenario("completes", _s(job("submitted"), RUNNING, DONE), "completed", 3, celery=True),
    Scenario("completes-at-once", _s(DONE), "completed", 1),
    Scenario(
        "long-pending",
        _s(job("submitted"), job("ready"), job("started"), RUNNING, RUNNING, DONE),
        "completed",
        6,
    ),
    Scenario(
        "fails", _s(RUNNING, job("failed", failure=FAILURE)), "JobFailedError", 2, celery=True
    ),
    Scenario(
        "fails-returned",
        _s(RUNNING, job("failed", failure=FAILURE)),
        "failed",
        2,
        {"raise_on_failure": False},
    ),
    Scenario("canceled-returned", _s(RUNNING, job("canceled")), "canceled", 2),
    Scenario(
        "canceled-raises",
        _s(RUNNING, job("canceled")),
        "JobCanceledError",
        2,
        {"raise_on_cancel": True},
        celery=True,
    ),
    Scenario("unknown-status-waits", _s(RUNNING, job("paused"), DONE), "completed", 3),
    Scenario(
        "unknown-status-raises",
        _s(RUNNING, job("paused")),
        "JobStatusError",
        2,
        {"statuses": Statuses(on_unknown="raise")},
    ),
    Scenario(
        "status-goes-back",
        _s(RUNNING, job("submitted"), RUNNING, DONE),
        "completed",
        4,
    ),
    Scenario("times-out", _s(RUNNING), "JobTimeoutError", 4, {"timeout": 1.0}, celery=True),
    Scenario("timeout-0-pending", _s(RUNNING), "JobTimeoutError", 1, {"timeout": 0}),
    Scenario("timeout-0-done", _s(DONE), "completed", 1, {"timeout": 0}),
    # --- 429 and 5xx runs -----------------------------------------------------------------
    Scenario(
        "429-retry-after",
        _s(http(429, 1), http(429, 1), RUNNING, DONE),
        "completed",
        4,
        celery=True,
    ),
    Scenario("429-no-retry-after", _s(http(429), http(429), DONE), "completed", 3),
    Scenario("429-retry-after-over-cap", _s(http(429, 1.5), DONE), "completed", 2),
    Scenario(
        "429-retry-after-past-deadline",
        _s(RUNNING, http(429, 5)),
        "JobTimeoutError",
        3,
        {"timeout": 1.5},
    ),
    Scenario(
        "503-run-shorter-than-budget",
        _s(http(503), http(503), http(503), RUNNING, DONE),
        "completed",
        5,
        celery=True,
    ),
    Scenario("503-run-longer-than-budget", _s(http(503)), "JobFetchError", 5, celery=True),
    Scenario(
        "5xx-mix-just-under-budget",
        _s(http(502), http(504), http(503), http(502), DONE),
        "completed",
        5,
    ),
    Scenario("500s-then-done", _s(RUNNING, http(500), http(500), DONE), "completed", 4),
    Scenario("400-is-final", _s(RUNNING, http(400)), "JobFetchError", 2),
    Scenario(
        "max-fetch-errors-2",
        _s(http(503)),
        "JobFetchError",
        2,
        {"max_fetch_errors": 2},
        celery=True,
    ),
    Scenario(
        "max-fetch-errors-2-apart",
        _s(http(503), RUNNING, http(503), RUNNING, DONE),
        "completed",
        5,
        {"max_fetch_errors": 2},
    ),
    # --- transport trouble and bodies ---------------------------------------------------
    Scenario("resets-then-done", _s(reset(), reset(), RUNNING, DONE), "completed", 4),
    Scenario("resets-for-ever", _s(reset()), "JobFetchError", 5),
    Scenario("non-json-once", _s(text(), RUNNING, DONE), "completed", 3),
    Scenario("non-json-for-ever", _s(text()), "JobFetchError", 5),
    Scenario("list-body-once", _s(body([{"status": "completed"}]), RUNNING, DONE), "completed", 3),
    Scenario("no-status", _s(RUNNING, job(None, state="done")), "JobStatusError", 2),
    Scenario(
        "deadline-mid-request",
        _s(RUNNING, stall(10.0, DONE)),
        "JobTimeoutError",
        2,
        {"timeout": 1.0},
    ),
    Scenario("slow-answer-in-time", _s(stall(0.3, RUNNING), DONE), "completed", 2),
    Scenario("unknown-id-404", _s(http(404)), "JobFetchError", 1, celery=True),
    Scenario("vanishes-404", _s(RUNNING, RUNNING, http(404)), "JobFetchError", 3),
    # --- per-job options ----------------------------------------------------------------
    Scenario(
        "own-timeout-and-backoff",
        _s(RUNNING),
        "JobTimeoutError",
        5,
        {"backoff": Backoff(initial=0.3, factor=1.5, max=1.0), "timeout": 2.0},
    ),
    # --- hooks --------------------------------------------------------------------------
    Scenario(
        "hooks",
        _s(job("submitted"), http(503, 0.5), RUNNING, RUNNING, DONE),
        "completed",
        5,
        hooks=True,
    ),
    Scenario(
        "hooks-on-failure",
        _s(RUNNING, reset(), job("failed", failure=FAILURE)),
        "JobFailedError",
        3,
        hooks=True,
    ),
    Scenario(
        "on-status-only", _s(job("submitted"), RUNNING, DONE), "completed", 3, status_hook=True
    ),
    # --- cancellation, push, remote cancel ------------------------------------------------
    Scenario(
        "cancelled-mid-wait", _s(RUNNING), "interrupted", 3, cancel_at=1.0, remote_cancel=True
    ),
    Scenario(
        "cancelled-mid-request",
        _s(RUNNING, stall(5.0, DONE)),
        "interrupted",
        2,
        cancel_at=0.5,
        remote_cancel=True,
    ),
    Scenario(
        "push-between-polls",
        _s(RUNNING, DONE),
        "completed",
        2,
        {"backoff": Backoff(initial=2.0, factor=2.0, max=4.0)},
        wake_at=0.5,
    ),
    Scenario(
        "timeout-cancels-remote",
        _s(RUNNING),
        "JobTimeoutError",
        4,
        {"timeout": 1.0},
        remote_cancel=True,
    ),
]

NEIGHBOURS = 20


def neighbour(n: int) -> tuple[str, tuple[Step, ...]]:
    """The ``n``-th neighbour: a plain job that runs ``n % 6`` polls before completing,
    on the default schedule (so it is due together with the scenario's job)."""
    steps = (job("submitted"), *(RUNNING for _ in range(n % 6)), DONE)
    return f"n{n:02d}", steps
