"""The Celery app the durable-wait tests run in real ``celery worker`` processes.

Configured from the environment (the test process imports it and calls :func:`make`
with the same values): broker and store on the test's redis-server, the job API on the
test's JobServer. Timings are short so a test run takes seconds: a 6 s visibility
timeout (a killed worker's messages come back after 6 s), countdowns capped at 1 s
(the benchmark sets longer ones through ``JOBWAIT_DURABLE_*`` variables).
"""

from __future__ import annotations

import os
import time

from celery import Celery

from jobwait.adapters.celery import DurableWaits, ionq_source, outcome_of

# The benchmark sets these three for a production-like shape.
VISIBILITY_TIMEOUT = int(os.environ.get("JOBWAIT_DURABLE_VISIBILITY", "6"))
COUNTDOWN_CAP = float(os.environ.get("JOBWAIT_DURABLE_COUNTDOWN_CAP", "1.0"))
SWEEP_GRACE = float(os.environ.get("JOBWAIT_DURABLE_SWEEP_GRACE", "2.0"))
# Seconds each on_done call of record_done sleeps (the kill test sets it).
ON_DONE_DELAY = float(os.environ.get("JOBWAIT_DURABLE_ON_DONE_DELAY", "0"))


def make(redis_url: str) -> tuple[Celery, DurableWaits]:
    app = Celery("durable_app", broker=redis_url)
    app.conf.update(
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        worker_redirect_stdouts=False,
    )
    waits = DurableWaits(
        app, redis_url=redis_url, countdown_cap=COUNTDOWN_CAP, sweep_grace=SWEEP_GRACE
    )
    waits.register_source(
        "board",
        ionq_source(base_url_env="JOBWAIT_DURABLE_API", api_key_env="JOBWAIT_DURABLE_KEY"),
    )

    @app.task(name="durable_app.record_done", ignore_result=True, shared=False)
    def record_done(group: str, job_id: str, record: dict[str, object]) -> None:
        # Counts on_done calls per job that ran to their end (a kill inside one loses
        # its effect, as it would a real callback's): each must arrive at least once,
        # and the record is one jobwait wrote.
        outcome_of(record)
        if ON_DONE_DELAY:
            time.sleep(ON_DONE_DELAY)  # widens the window a kill can land in
        waits.store.client.hincrby(f"test:{group}:on_done", job_id, 1)

    @app.task(name="durable_app.fail_done", ignore_result=True, shared=False)
    def fail_done(group: str, job_id: str, record: dict[str, object]) -> None:
        waits.store.client.hincrby(f"test:{group}:on_done", job_id, 1)
        raise RuntimeError(f"on_done failed for {job_id}")

    return app, waits


if "JOBWAIT_DURABLE_REDIS" in os.environ:
    app, waits = make(os.environ["JOBWAIT_DURABLE_REDIS"])
