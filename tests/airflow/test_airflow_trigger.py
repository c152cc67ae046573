"""JobWaitTrigger on a real Airflow 3 (its BaseTrigger, its serde, its connections from
the environment) against a real JobServer on loopback: the serialized form, run() with
429s, 5xx, resets and a binding budget next to ionq.async_wait_for_jobs on the same
script, a triggerer restart in the middle of a wait, and secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize

from jobwait import Backoff, JobWaitError
from jobwait._durable import Credential, SourceSpec, outcome_of
from jobwait._plumbing import error_to_json
from jobwait.adapters import ionq
from jobwait.adapters._durable import ionq_spec
from jobwait.adapters.airflow import EVENT_FORMAT, JobWaitTrigger
from jobwait.adapters.server import JobServer
from jobwait.testing import Fault

KEY = "airflow-test-secret-key-5f3a9c"  # the server's (tests/conftest.py) and the connection's
QUICK = Backoff(initial=0.05, factor=1.5, max=0.4)


def _spec(conn_id: str) -> SourceSpec:
    return ionq_spec(conn_id=conn_id, base_url_conn_id=conn_id, base_url="http://unused.invalid")


def _event(trigger: JobWaitTrigger) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise AssertionError("the trigger fired no event")

    return asyncio.run(first())


def _recreated(trigger: JobWaitTrigger) -> JobWaitTrigger:
    # What the triggerer does: the kwargs through Airflow's serde (as stored in the
    # metadata database), the class found by its path.
    classpath, kwargs = trigger.serialize()
    stored = json.loads(json.dumps(serialize(kwargs)))
    made = import_string(classpath)(**deserialize(stored))
    assert isinstance(made, JobWaitTrigger)
    return made


def _shape(outcome: Any) -> tuple[str, ...]:
    # An outcome as both drivers give it: the job's status, or the error's core class
    # (the IonQ drop-in words its messages as ionq-core does, and may raise an
    # ionq-core subclass of the same class).
    if isinstance(outcome, JobWaitError):
        return ("error", error_to_json(outcome)["type"])
    return ("job", outcome["status"])


def _d(**phases: float) -> dict[str, float]:
    """Scripted seconds per pending status; the ones not named take none."""
    return {"submitted": 0.0, "ready": 0.0, "started": 0.0, **phases}


def _submit(server: JobServer, scripts: Iterable[dict[str, Any]]) -> list[str]:
    return [server.submit(**script) for script in scripts]


# --- the serialized form ------------------------------------------------------------------


def test_airflow_trigger_serializes_to_json_and_back_through_airflows_serde() -> None:
    trigger = JobWaitTrigger(
        source=_spec("ionq_prod"),
        job_ids=["a", "b/c", "a"],
        options={"timeout": 600, "backoff": QUICK, "max_polls_per_second": 5},
        started=1_800_000_000.0,
        cancel_on_timeout=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "jobwait.adapters.airflow.JobWaitTrigger"
    assert kwargs == {
        "source": _spec("ionq_prod").to_json(),
        "job_ids": ["a", "b/c"],
        "options": {"backoff": QUICK.to_json(), "max_polls_per_second": 5},
        "started": 1_800_000_000.0,
        "deadline": 1_800_000_600.0,  # an instant, never a duration
        "cancel_on_timeout": True,
        "log_status_changes": False,
    }
    again = _recreated(trigger)
    assert again.serialize() == (classpath, kwargs)
    assert again.fleet_options()["timeout"] == 600.0
    assert again.fleet_options()["backoff"] == QUICK
    assert repr(trigger) == (
        "<JobWaitTrigger 2 job(s) at '/jobs{?ids*}', deadline 2027-01-15T08:10:00Z>"
    )


def test_airflow_trigger_checks_its_arguments_where_it_is_made() -> None:
    spec = _spec("c")
    with pytest.raises(TypeError, match="max_bach"):
        JobWaitTrigger(source=spec, job_ids=["a"], options={"max_bach": 5})
    with pytest.raises(ValueError, match="deadline"):
        JobWaitTrigger(source=spec, job_ids=["a"], started=100.0, deadline=50.0)
    with pytest.raises(ValueError, match=r"options\['timeout'\]"):
        JobWaitTrigger(source=spec, job_ids=["a"], options={"timeout": "soon"})
    with pytest.raises(TypeError, match="not both"):
        JobWaitTrigger(source=spec, job_ids=["a"], options={"timeout": 5}, deadline=9e9)
    with pytest.raises(TypeError, match="callable"):
        JobWaitTrigger(source=spec, job_ids=["a"], options={"status_of": lambda job: "x"})
    with pytest.raises(TypeError, match="each job id must be a string"):
        JobWaitTrigger(source=spec, job_ids=[None])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="source description"):
        JobWaitTrigger(source={"url": "/jobs"}, job_ids=["a"])
    one_by_one = SourceSpec(url="/jobs/{id}")
    with pytest.raises(TypeError, match="max_batch must be 1"):
        JobWaitTrigger(source=one_by_one, job_ids=["a"], options={"max_batch": 5})


# --- run() against the job server -------------------------------------------------------

# Per-job faults: reply-level ones shape the whole batch answer that carries the job.
SCRIPT: list[dict[str, Any]] = [
    {"id": "ok-1", "durations": _d(ready=0.2, started=0.2)},
    {
        "id": "ok-2",
        "durations": _d(started=0.5),
        "faults": [Fault("429", poll=2, retry_after="0.3")],
    },
    {"id": "ok-3", "durations": _d(started=0.3), "faults": [Fault("503", poll=3)]},
    {"id": "ok-4", "durations": _d(ready=0.4), "faults": [Fault("reset", poll=2)]},
    {"id": "bad-1", "outcome": "failed", "durations": _d(started=0.3)},
    {"id": "gone-1", "outcome": "canceled", "durations": _d(ready=0.2)},
    {"id": "ok-5", "durations": _d(started=0.6), "faults": [Fault("502", poll=1, count=2)]},
    {"id": "slow-1", "durations": _d(started=600.0)},
    *({"id": f"more-{i}", "durations": _d(started=0.1 * i)} for i in range(4)),
]
BUDGET = 6  # requests per second: binding, with 12 jobs read 2 per request


def _max_in_a_second(times: list[float]) -> int:
    # Most requests the server saw in any 0.9 s: the fleet keeps N in any second of its
    # own clock, at dispatch; the server logs arrival, a few milliseconds later for a
    # request that opened a connection than for one that reused it.
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + 0.9) for i, start in enumerate(times)),
        default=0,
    )


def test_airflow_trigger_run_reads_through_faults_as_the_ionq_fleet_does(
    server: JobServer, connection: str
) -> None:
    options = {"backoff": QUICK, "max_batch": 2, "max_polls_per_second": BUDGET}
    with JobServer(api_key=KEY) as twin:
        # The same script on a second server, waited on by the IonQ drop-in's fleet.
        ids = _submit(twin, SCRIPT)

        async def ionq_fleet() -> dict[str, Any]:
            async with httpx.AsyncClient(
                base_url=twin.url, headers={"Authorization": f"apiKey {KEY}"}
            ) as client:
                return await ionq.async_wait_for_jobs(client, ids, timeout=4.0, **options)

        expected = asyncio.run(ionq_fleet())
        ionq_times = [r.time for r in twin.requests]
    assert _submit(server, SCRIPT) == ids
    trigger = JobWaitTrigger(
        source=_spec(connection), job_ids=ids, options={"timeout": 4.0, **options}
    )
    event = _event(_recreated(trigger))
    requests = server.requests
    assert event["format"] == EVENT_FORMAT
    assert event["unfinished"] == []
    assert event["stopped_by"] is None
    got = {job_id: outcome_of(record) for job_id, record in event["outcomes"].items()}
    assert set(got) == set(ids)
    assert {k: _shape(v) for k, v in got.items()} == {k: _shape(v) for k, v in expected.items()}
    assert _shape(got["bad-1"]) == ("error", "JobFailedError")
    assert _shape(got["gone-1"]) == ("job", "canceled")
    assert _shape(got["slow-1"]) == ("error", "JobTimeoutError")
    # Every fault was met, and the budget held for both.
    faults = {r.fault for r in requests}
    assert {"429", "503", "502", "reset"} <= faults
    assert _max_in_a_second([r.time for r in requests]) <= BUDGET
    assert _max_in_a_second(ionq_times) <= BUDGET
    # Sharing the same fleet rules, the two drivers make about the same requests (a
    # sanity bound: timing moves a few; tests/bench/bench_airflow.py compares them).
    assert abs(len(requests) - len(ionq_times)) <= max(4, len(ionq_times) // 2)
    assert all(r.path.startswith("/v0.4/jobs?ids=") for r in requests)


def test_airflow_trigger_fail_fast_fires_at_the_first_failure_and_cancels_the_rest(
    server: JobServer, connection: str
) -> None:
    ids = _submit(
        server,
        [
            {"id": "done", "durations": _d(started=0.0)},
            {"id": "boom", "outcome": "failed", "durations": _d(started=0.2)},
            {"id": "long-1", "durations": _d(started=600.0)},
            {"id": "long-2", "durations": _d(started=600.0)},
        ],
    )
    trigger = JobWaitTrigger(
        source=_spec(connection),
        job_ids=ids,
        options={"timeout": 30.0, "backoff": QUICK, "fail_fast": True},
        cancel_on_timeout=True,
    )
    started = time.monotonic()
    event = _event(trigger)
    assert time.monotonic() - started < 5.0
    assert event["stopped_by"] == "boom"
    assert sorted(event["unfinished"]) == ["long-1", "long-2"]
    assert set(event["outcomes"]) == {"done", "boom"}
    canceled = sorted(r.path for r in server.requests if r.method == "PUT")
    assert canceled == ["/v0.4/jobs/long-1/status/cancel", "/v0.4/jobs/long-2/status/cancel"]


def test_airflow_trigger_cancels_a_job_that_times_out_when_asked(
    server: JobServer, connection: str
) -> None:
    (job_id,) = _submit(server, [{"durations": _d(started=600.0)}])
    trigger = JobWaitTrigger(
        source=_spec(connection),
        job_ids=[job_id],
        options={"timeout": 0.5, "backoff": QUICK},
        cancel_on_timeout=True,
    )
    event = _event(trigger)
    assert event["outcomes"][job_id]["error"]["type"] == "JobTimeoutError"
    assert [r.method for r in server.requests_for(job_id)][-1] == "PUT"


# --- a triggerer restart ------------------------------------------------------------------


def test_airflow_trigger_restarted_mid_wait_keeps_every_outcome_and_the_deadline(
    server: JobServer, connection: str
) -> None:
    ids = _submit(
        server,
        [
            {"id": "early", "durations": _d(started=0.3)},
            {"id": "broken", "outcome": "failed", "durations": _d(started=0.3)},
            {"id": "late", "durations": _d(started=2.2)},
            {"id": "never", "durations": _d(started=600.0)},
        ],
    )
    schedule = Backoff(initial=0.1, factor=2.0, max=0.8)
    first = JobWaitTrigger(
        source=_spec(connection),
        job_ids=ids,
        options={"timeout": 3.0, "backoff": schedule},
    )

    async def interrupted() -> float:
        task = asyncio.ensure_future(_drain(first))
        await asyncio.sleep(1.5)
        assert not task.done()
        asked = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - asked

    took = asyncio.run(interrupted())
    assert took < 0.5  # a cancelled wait returns promptly
    assert all(r.method == "GET" for r in server.requests)  # a restart cancels nothing
    restarted_at = server.now()
    event = _event(_recreated(first))
    outcomes = {job_id: outcome_of(record) for job_id, record in event["outcomes"].items()}
    assert _shape(outcomes["early"]) == ("job", "completed")
    assert _shape(outcomes["late"]) == ("job", "completed")
    assert _shape(outcomes["broken"]) == ("error", "JobFailedError")
    never = outcomes["never"]
    assert _shape(never) == ("error", "JobTimeoutError")
    # The deadline is the first trigger's: 3 s after it started, not after the restart.
    assert 2.9 <= never.elapsed <= 3.6
    assert time.time() - first.started <= 4.0
    # Each job is read once at the restart, then its schedule goes on at the interval
    # it had reached (0.8 s after 1.5 s of polls at 0.1, 0.2, 0.4, 0.8), not from 0.1.
    assert schedule.interval_after(1.5) == 0.8
    for job_id in ids:
        reads = [r for r in server.requests_for(job_id) if restarted_at <= r.time]
        assert reads, job_id
        soon = [r for r in reads if r.time < restarted_at + 0.6]
        assert len(soon) == 1, (job_id, [round(r.time - restarted_at, 3) for r in reads])


async def _drain(trigger: JobWaitTrigger) -> None:
    async for _ in trigger.run():
        raise AssertionError("fired before the restart")


def test_airflow_trigger_recreated_after_its_deadline_reads_each_job_once_more(
    server: JobServer, connection: str
) -> None:
    # The triggerer was down past the deadline: each job gets its last, owed read; one
    # that finished meanwhile keeps its outcome, the others time out.
    done = server.submit(durations=_d(started=0.0))
    running = _submit(server, [{"durations": _d(started=600.0)} for _ in range(2)])
    ids = [done, *running]
    now = time.time()
    trigger = JobWaitTrigger(
        source=_spec(connection), job_ids=ids, started=now - 60.0, deadline=now - 30.0
    )
    event = _event(_recreated(trigger))
    assert [len(server.requests_for(job_id)) for job_id in ids] == [1, 1, 1]
    assert len(server.requests) == 1  # one batch read
    assert outcome_of(event["outcomes"][done])["status"] == "completed"
    for job_id in running:
        error = outcome_of(event["outcomes"][job_id])
        assert error.job_id == job_id
        assert type(error).__name__ == "JobTimeoutError"
        assert error.elapsed >= 60.0  # counted from when the wait began


# --- secrets ------------------------------------------------------------------------------


def test_airflow_trigger_keeps_the_key_out_of_kwargs_logs_and_the_event(
    server: JobServer,
    connection: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    ids = _submit(
        server,
        [
            {"durations": _d(started=0.1)},
            {"outcome": "failed", "durations": _d(started=0.1)},
            {"durations": _d(started=0.1), "faults": [Fault("401", poll=1)]},
        ],
    )
    spec = SourceSpec(
        api="ionq",
        base_url_conn_id=connection,
        batch_url="/jobs{?ids*}",
        credentials=(Credential(scheme="apiKey", conn_id=connection),),
        headers={"X-Client": "jobwait-airflow-test"},
    )
    trigger = JobWaitTrigger(source=spec, job_ids=ids, options={"timeout": 5.0, "backoff": QUICK})
    event = _event(_recreated(trigger))
    written = capfd.readouterr()
    seen = {
        "kwargs": json.dumps(serialize(trigger.serialize()[1])),
        "repr": repr(trigger),
        "event": json.dumps(event),
        "logs": written.out + written.err + caplog.text,
    }
    for where, text in seen.items():
        assert KEY not in text, where
    assert "jobwait: waiting for 3 job(s)" in seen["logs"]
    # The 401 reached the event as an error record (with the server's answer, redacted).
    assert any("error" in record for record in event["outcomes"].values())


def test_airflow_trigger_names_a_missing_connection(server: JobServer) -> None:
    trigger = JobWaitTrigger(source=_spec("no_such_connection"), job_ids=["a"])
    with pytest.raises(Exception, match="no_such_connection"):
        _event(trigger)


@pytest.mark.parametrize("per_job", [False, True])
def test_airflow_trigger_logs_per_job_lines_only_when_asked(
    server: JobServer, connection: str, caplog: pytest.LogCaptureFixture, per_job: bool
) -> None:
    caplog.set_level("INFO", logger="jobwait")
    ids = _submit(server, [{"durations": _d(started=0.2)} for _ in range(3)])
    trigger = JobWaitTrigger(
        source=_spec(connection),
        job_ids=ids,
        options={"timeout": 5.0, "backoff": QUICK},
        log_status_changes=per_job,
    )
    _event(_recreated(trigger))
    lines = [r.getMessage() for r in caplog.records if r.name == "jobwait"]
    assert all(job_id in " ".join(lines) for job_id in ids) is per_job
    # Outside a quiet wait, the core's lines pass as they always do.
    caplog.clear()
    logging.getLogger("jobwait").info("job %s: status %r -> %r", "x", None, "ready")
    assert [r.getMessage() for r in caplog.records] == ["job x: status None -> 'ready'"]
