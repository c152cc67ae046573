"""Zero-config reading (``api="auto"``) and ``api=`` as an option of the machines.

The universal vocabulary is derived from the built-in profiles: these tests check the
derivation (every disagreement between two profiles is in the conflict table, with the
reason; nothing else differs), that auto reads every recorded answer of
``tests/test_profiles.py`` to the same end as the API's own profile, and where it finds
the status and the failure's reason in answers of APIs nobody wrote a profile for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from jobwait import (
    ApiProfile,
    Backoff,
    JobFailedError,
    JobFleet,
    JobStatusError,
    JobTimeoutError,
    JobWaiter,
    Observed,
    Phase,
    Start,
    Statuses,
    Woke,
)
from jobwait._apis import BUILT_IN
from jobwait._auto import CONFLICTS, FAILURE_PATHS, STATUS_PATHS, UNIVERSAL, reading
from jobwait._plumbing import make_waiter
from jobwait.adapters import sync
from jobwait.adapters.httpx import async_wait_for_url, wait_for_url
from jobwait.testing import VirtualClock
from test_profiles import CASES

AUTO = ApiProfile.named("auto")


def meanings() -> dict[str, dict[str, Phase]]:
    """Every status a built-in profile lists (case-folded) -> {profile: phase}."""
    out: dict[str, dict[str, Phase]] = {}
    for name, profile in BUILT_IN.items():
        for phase, values in (
            (Phase.PENDING, profile.statuses.pending),
            (Phase.SUCCEEDED, profile.statuses.succeeded),
            (Phase.FAILED, profile.statuses.failed),
            (Phase.CANCELED, profile.statuses.canceled),
        ):
            for value in values:
                out.setdefault(value.casefold(), {})[name] = phase
    return out


# --- the universal vocabulary -------------------------------------------------------------


def test_every_conflict_in_the_table_is_real_and_resolved_to_one_side() -> None:
    found = meanings()
    for status, conflict in CONFLICTS.items():
        phases = set(found[status].values())
        assert len(phases) > 1, f"{status!r} is no conflict: {found[status]}"
        assert conflict.phase in phases
        assert all(name in conflict.why for name in found[status] if name != "celery"), status
        assert UNIVERSAL.phase(status) is conflict.phase


def test_the_universal_vocabulary_agrees_with_every_profile_elsewhere() -> None:
    for status, by_profile in meanings().items():
        if status in CONFLICTS:
            continue
        for name, phase in by_profile.items():
            assert UNIVERSAL.phase(status) is phase, (status, name)
            assert UNIVERSAL.phase(status.upper()) is phase  # case does not matter


def test_ionqs_vocabulary_is_a_part_of_it() -> None:
    default = Statuses()
    for phase_name in ("pending", "succeeded", "failed", "canceled"):
        for status in getattr(default, phase_name):
            assert UNIVERSAL.phase(status) is default.phase(status)


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("succeeded", Phase.SUCCEEDED),
        ("Complete", Phase.SUCCEEDED),
        ("FINISHED", Phase.SUCCEEDED),
        ("done", Phase.SUCCEEDED),
        ("errored", Phase.FAILED),
        ("CRASHED", Phase.FAILED),
        ("Killed", Phase.CANCELED),
        ("aborted", Phase.CANCELED),
        ("REVOKED", Phase.CANCELED),
        ("stopped", Phase.CANCELED),
        ("cancelling", Phase.PENDING),
        ("CANCELING", Phase.PENDING),
        ("stopping", Phase.PENDING),
        ("deleting", Phase.PENDING),
        ("TERMINATED", Phase.UNKNOWN),  # ended, but how? the wait goes on and says so
    ],
)
def test_words_of_the_issue(status: str, phase: Phase) -> None:
    assert UNIVERSAL.phase(status) is phase


# --- auto reads what each profile reads, to the same end -------------------------------------


def final_phase(answers: Sequence[Any], **options: Any) -> Phase | None:
    waiter = JobWaiter(timeout=None, **options)
    now = 0.0
    action = waiter.handle(Start(now=now))
    for answer in answers:
        now += 1.0
        action = waiter.handle(Observed(job=answer, now=now))
        if type(action).__name__ != "Sleep":
            break
        waiter.handle(Woke(now=now))
    return waiter.phase


@pytest.mark.parametrize(("name", "answers", "expected"), CASES)
def test_auto_ends_every_recorded_job_as_its_profile_does(
    name: str, answers: list[Any], expected: Any
) -> None:
    try:
        ours = final_phase(answers, api=name)
    except Exception:
        ours = None
    last = answers[-1]
    auto = final_phase(answers, api="auto") if ours is not None else None
    try:
        status = BUILT_IN[name].status_of(last) if name in BUILT_IN else None
    except LookupError:  # an answer the profile itself cannot read
        status = None
    if isinstance(status, str) and status.casefold() in CONFLICTS:
        assert auto is CONFLICTS[status.casefold()].phase
    else:
        assert auto is ours, (name, last)


# --- where auto finds the status and the reason --------------------------------------------------


@pytest.mark.parametrize(
    ("job", "where"),
    [
        ({"id": 1, "status": "RUNNING"}, "status"),
        ({"state": "queued"}, "state"),
        ({"job": {"status": "done"}}, "job.status"),
        ({"status": {"phase": "Running"}}, "status.phase"),
        ({"status": {"state": "RUNNING"}, "id": "x"}, "status.state"),
        ({"phase": "Succeeded"}, "phase"),
        ({"state": {"type": "RUNNING"}}, "state.type, as prefect"),
        ({"run": {"info": {"status": "RUNNING"}}}, "run.info.status, as mlflow"),
        ({"submission_id": "r", "entrypoint": "x", "status": "RUNNING"}, "status, as ray-jobs"),
        (
            {"run_id": 1, "state": {"life_cycle_state": "RUNNING"}},
            "state.life_cycle_state, then state.result_state, as databricks-runs",
        ),
        ({"kind": "Job", "status": {}}, "status.conditions, as kubernetes-job"),
        ({"state": "JOB_STATE_RUNNING", "name": "p/1"}, "state, as vertex-ai"),
        ({"executionArn": "arn:x", "status": "RUNNING"}, "status, as aws-step-functions"),
        ({"name": "operations/7"}, "done, then response or error, as google-lro"),
        ({"status": "queued", "conclusion": None}, "status, then conclusion, as github-actions"),
    ],
)
def test_reading_names_the_field_and_the_profile(job: dict[str, Any], where: str) -> None:
    found = reading(job)
    assert found is not None
    assert str(found) == where
    AUTO.status_of(job)  # and reads it


def test_no_status_anywhere_is_a_status_error_naming_where_it_looked() -> None:
    waiter = JobWaiter(api="auto", job_id="j")
    waiter.handle(Start(now=0.0))
    action = waiter.handle(Observed(job={"id": "j", "status": None, "result": {}}, now=0.0))
    error = action.error  # type: ignore[union-attr]
    assert isinstance(error, JobStatusError)
    text = str(error)
    assert "none of the fields jobwait looks for holds a status (status, state, phase" in text
    assert "its 'status' field holds null, not a status" in text
    assert "(its fields: 'id', 'status', 'result')" in text
    assert reading({"id": "j"}) is None
    assert set(STATUS_PATHS[:3]) == {"status", "state", "phase"}


@pytest.mark.parametrize(
    ("job", "reason"),
    [
        ({"status": "failed", "failure": {"code": "E"}}, {"code": "E"}),
        ({"status": "failed", "error": "disk full", "message": "later"}, "disk full"),
        ({"status": "ERROR", "message": "exit code 3"}, "exit code 3"),
        ({"status": "FAILED", "exception": "ValueError()"}, "ValueError()"),
        ({"state": "failed", "errors": [], "reason": "OOMKilled"}, "OOMKilled"),
        ({"status": "failed"}, None),
    ],
)
def test_the_reason_is_the_first_field_set(job: dict[str, Any], reason: Any) -> None:
    assert AUTO.failure_of(job) == reason
    assert "failure" in FAILURE_PATHS


def test_an_unknown_status_times_out_saying_it_was_never_recognised() -> None:
    vc = VirtualClock()
    with pytest.raises(JobTimeoutError) as caught:
        sync.wait(
            lambda: {"status": "ENDED_OK"}, api="auto", timeout=5, clock=vc.now, sleep=vc.sleep
        )
    assert "its last status 'ENDED_OK' was never recognised" in str(caught.value)
    assert "list it in Statuses, or pass api=" in str(caught.value)


def test_a_failure_with_no_reason_says_so() -> None:
    vc = VirtualClock()
    with pytest.raises(JobFailedError) as caught:
        sync.wait(lambda: {"status": "FAILED"}, api="auto", clock=vc.now, sleep=vc.sleep)
    assert caught.value.failure is None
    assert "job failed, giving no reason" in str(caught.value)


# --- api= is an option of the machines themselves ----------------------------------------------


def test_the_waiter_takes_api_and_explicit_options_win() -> None:
    waiter = JobWaiter(api="prefect")
    assert waiter.options()["status_of"] is BUILT_IN["prefect"].status_of
    assert waiter.statuses is BUILT_IN["prefect"].statuses
    mine = Statuses(pending={"a"}, succeeded={"b"})
    assert JobWaiter(api="prefect", statuses=mine).statuses is mine
    assert JobWaiter(api="azure").options()["raise_on_cancel"] is True
    assert JobWaiter(api="azure", raise_on_cancel=False).options()["raise_on_cancel"] is False
    assert JobWaiter(api=ApiProfile.named("auto")).statuses is UNIVERSAL
    with pytest.raises(ValueError, match="no API profile named 'prefekt'"):
        JobWaiter(api="prefekt")
    with pytest.raises(TypeError, match="api= takes an ApiProfile"):
        JobWaiter(api=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        make_waiter(JobWaiter(), {"api": "auto"})


def test_the_fleet_takes_api_for_all_and_per_job() -> None:
    fleet = JobFleet(api="mlflow", timeout=60)
    fleet.add(["a"], now=0.0)
    fleet.add(["b"], now=0.0, options={"api": "ray-jobs"})
    fleet.add(["c"], now=0.0, options={"api": "ray-jobs", "timeout": 5})
    waiters = fleet._waiters
    assert waiters["a"].statuses is BUILT_IN["mlflow"].statuses
    assert waiters["b"].statuses is BUILT_IN["ray-jobs"].statuses
    assert waiters["b"].timeout == 60  # the fleet's own options stay under a job's profile
    assert waiters["c"].timeout == 5
    with pytest.raises(ValueError, match="no API profile"):
        fleet.add(["d"], now=0.0, options={"api": "nope"})


def test_presets_read_the_profiles() -> None:
    assert Statuses.braket() is BUILT_IN["braket"].statuses
    qiskit = BUILT_IN["qiskit"].statuses
    assert Statuses.qiskit().pending == qiskit.pending
    assert Statuses.qiskit().failed == qiskit.failed - {"Cancelled - Ran too long"}
    assert Statuses.qiskit().case_sensitive is False


def test_wait_for_url_names_the_job_by_its_url() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"run": {"info": {"status": "FAILED"}}})

    vc = VirtualClock()
    transport = httpx.MockTransport(answer)
    with (
        httpx.Client(base_url="http://mlflow", transport=transport) as c,
        pytest.raises(JobFailedError) as caught,
    ):
        wait_for_url(c, "/runs/get?run_id=6617df86", api="auto", clock=vc.now, sleep=vc.sleep)
    assert caught.value.job_id == "6617df86"
    assert "(job '6617df86', last status 'FAILED'" in str(caught.value)


def test_shared_async_waits_read_with_their_own_profile() -> None:
    # Concurrent waits on one client share a scheduler; each keeps its own api=.
    answers = {
        "/api/flow_runs/a": [{"state": {"type": "RUNNING"}}, {"state": {"type": "COMPLETED"}}],
        "/runs/get": [
            {"run": {"info": {"status": "RUNNING"}}},
            {"run": {"info": {"status": "KILLED"}}},
        ],
    }
    seen: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        n = seen[request.url.path] = seen.get(request.url.path, -1) + 1
        bodies = answers[request.url.path]
        return httpx.Response(200, json=bodies[min(n, len(bodies) - 1)])

    async def main() -> list[Any]:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(base_url="http://x", transport=transport) as client:
            fast = {"backoff": Backoff(initial=0.01, max=0.01)}
            return await asyncio.gather(
                async_wait_for_url(client, "/api/flow_runs/a", api="prefect", **fast),
                async_wait_for_url(client, "/runs/get?run_id=b", api="auto", **fast),
            )

    prefect_run, mlflow_run = asyncio.run(main())
    assert prefect_run["state"]["type"] == "COMPLETED"
    assert mlflow_run["run"]["info"]["status"] == "KILLED"
    assert seen == {"/api/flow_runs/a": 1, "/runs/get": 1}  # two polls each


def test_the_unknown_status_warning_names_the_job_or_no_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    vc = VirtualClock()
    answers = iter([{"status": "WARMING"}, {"status": "DONE"}])
    with caplog.at_level("WARNING", logger="jobwait"):
        sync.wait(lambda: next(answers), api="auto", clock=vc.now, sleep=vc.sleep)
    assert "job: unknown status 'WARMING'; still waiting" in caplog.text
    assert "None" not in caplog.text
