"""API profiles against recorded answers shaped exactly like each real API's.

Each case is a sequence of answers one job really goes through (field names, nesting
and casing as the API sends them), driven through a real adapter on a virtual clock;
the HTTP quirks go through ``wait_for_url`` with ``httpx.MockTransport``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwait import (
    ApiProfile,
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaiter,
    JobWaitError,
    Observed,
    Phase,
    Raise,
    Start,
    Statuses,
    Woke,
    field_reader,
)
from jobwait.adapters import sync
from jobwait.adapters.httpx import wait_for_batch, wait_for_url
from jobwait.http import ResponseError
from jobwait.testing import VirtualClock


def wait_through(profile: ApiProfile, answers: Sequence[Any], **options: Any) -> Any:
    """Wait on a job whose successive answers are ``answers`` (the last repeats)."""
    seen = iter(answers)
    last: list[Any] = []

    def fetch() -> Any:
        last[:] = [next(seen, last[0] if last else None)]
        return last[0]

    vc = VirtualClock()
    return sync.wait(fetch, clock=vc.now, sleep=vc.sleep, **profile.options(**options))


def outcome(profile: ApiProfile, answers: Sequence[Any], **options: Any) -> Any:
    try:
        return wait_through(profile, answers, **options)
    except JobWaitError as exc:
        return exc


# --- recorded answers, one list per job ----------------------------------------------

IONQ = {"id": "0d4a-ion", "type": "ionq.circuit.v1", "target": "qpu.aria-1"}
BRAKET = {
    "quantumTaskArn": "arn:aws:braket:us-east-1:123456789012:quantum-task/5d8f",
    "deviceArn": "arn:aws:braket:::device/quantum-simulator/amazon/sv1",
    "shots": 100,
    "outputS3Bucket": "amazon-braket-results",
    "outputS3Directory": "tasks/5d8f",
    "createdAt": "2026-11-28T09:00:00Z",
}
QISKIT = {"id": "d1kq9", "backend": "ibm_brisbane", "program": {"id": "sampler"}}
GOOGLE = {
    "name": "projects/p/locations/us-central1/operations/8274",
    "metadata": {
        "@type": "type.googleapis.com/google.cloud.aiplatform.v1.GenericOperationMetadata"
    },
}
FLOWER = {"task-id": "91396550-c228", "name": "tasks.add", "args": "[2, 2]", "kwargs": "{}"}
RUN = {"id": 30433642, "name": "Build", "head_branch": "main", "run_number": 562}
BATCH_JOB = {
    "jobName": "example",
    "jobId": "876da822-4198-45f2-a252-6cea32512ea8",
    "jobQueue": "arn:aws:batch:us-east-1:012345678910:job-queue/HighPriority",
    "jobDefinition": "sleep30:1",
    "createdAt": 1480460782010,
}
TRAINING = {
    "TrainingJobName": "xgb-2026-11-28",
    "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/xgb-2026-11-28",
    "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/out/model.tar.gz"},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
}

# Answers of the systems issue 21 added, shaped as each API sends them (Ray, MLflow and
# Prefect as recorded from real servers here: tests/data and tests/test_profiles_live.py).
RAY = {"type": "SUBMISSION", "submission_id": "raysubmit_tjqiDjG8", "entrypoint": "python t.py"}
PREFECT = {"id": "fc2c07c2-c698", "name": "supportive-goshawk", "flow_id": "9a1f"}
MLFLOW_INFO = {"run_id": "6617df86", "experiment_id": "1", "run_name": "train"}
DATABRICKS = {"job_id": 11223344, "run_id": 455644833, "run_name": "nightly"}
KUBE_JOB = {"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "pi"}}
DAG_RUN = {"dag_id": "etl", "dag_run_id": "manual__2026-12-08T00:00:00+00:00"}
ARGO = {"metadata": {"name": "hello-x7k2p", "namespace": "argo"}, "spec": {"entrypoint": "main"}}
SFN = {
    "executionArn": "arn:aws:states:us-east-1:123456789012:execution:Hello:run-1",
    "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Hello",
    "name": "run-1",
}
VERTEX = {"name": "projects/123/locations/us-central1/customJobs/456", "displayName": "train"}


def prefect(kind: str, message: str | None = None) -> dict[str, Any]:
    name = kind.title()
    state = {"type": kind, "name": name, "message": message}
    return {**PREFECT, "state_type": kind, "state_name": name, "state": state}


def mlflow(status: str) -> dict[str, Any]:
    return {"run": {"info": {**MLFLOW_INFO, "status": status}, "data": {}, "inputs": {}}}


def databricks(life: str, result: str | None = None, message: str = "") -> dict[str, Any]:
    state = {"life_cycle_state": life, "state_message": message}
    return {**DATABRICKS, "state": state if result is None else {**state, "result_state": result}}


def kube(**status: Any) -> dict[str, Any]:
    return {**KUBE_JOB, "status": status}


def condition(kind: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def dagster(status: str) -> dict[str, Any]:
    return {"data": {"runOrError": {"__typename": "Run", "runId": "d41f", "status": status}}}


def qiskit(status: str, **state: Any) -> dict[str, Any]:
    return {**QISKIT, "status": status, "state": {"status": status, **state}}


# (profile, answers, expected): expected is the final job's key fields, or an
# (error type, text the error must show) pair.
CASES: list[tuple[str, list[dict[str, Any]], Any]] = [
    (
        "ionq",
        [{**IONQ, "status": s} for s in ("submitted", "ready", "started", "completed")],
        {"status": "completed"},
    ),
    (
        "ionq",
        [
            {**IONQ, "status": "started"},
            {
                **IONQ,
                "status": "failed",
                "failure": {"code": "SimulationTimeout", "message": "ran over"},
            },
        ],
        (JobFailedError, "SimulationTimeout"),
    ),
    ("ionq", [{**IONQ, "status": "canceled"}], {"status": "canceled"}),
    (
        "braket",
        [{**BRAKET, "status": s} for s in ("CREATED", "QUEUED", "RUNNING", "COMPLETED")],
        {"status": "COMPLETED"},
    ),
    (
        "braket",
        [
            {**BRAKET, "status": "RUNNING"},
            {**BRAKET, "status": "FAILED", "failureReason": "Device is offline"},
        ],
        (JobFailedError, "Device is offline"),
    ),
    (
        "braket",
        [{**BRAKET, "status": "CANCELLING"}, {**BRAKET, "status": "CANCELLED"}],
        {"status": "CANCELLED"},
    ),
    (
        "qiskit",
        [qiskit("Queued"), qiskit("Running"), qiskit("Completed")],
        {"status": "Completed"},
    ),
    (
        "qiskit",
        [qiskit("Running"), qiskit("Failed", reason="Circuit too deep", reasonCode=1517)],
        (JobFailedError, "Error code 1517; Circuit too deep"),
    ),
    (
        "qiskit",
        [qiskit("Running"), qiskit("Cancelled", reason="Ran too long", reasonCode=1305)],
        (JobFailedError, "maximum execution time"),
    ),
    ("qiskit", [qiskit("Cancelled", reason="Cancelled by user")], {"status": "Cancelled"}),
    (
        "azure",
        [{"id": "op-1", "status": s} for s in ("NotStarted", "Running", "Succeeded")],
        {"status": "Succeeded"},
    ),
    # azure-core compares case-insensitively (str(status).lower()).
    ("azure", [{"id": "op-1", "status": "running"}, {"status": "succeeded"}], {}),
    (
        "azure",
        [
            {"id": "op-1", "status": "Running"},
            {
                "id": "op-1",
                "status": "Failed",
                "error": {
                    "code": "QuotaExceeded",
                    "message": "Operation results in exceeding quota",
                },
            },
        ],
        (JobFailedError, "Operation results in exceeding quota"),
    ),
    ("azure", [{"id": "op-1", "status": "Canceled"}], (JobCanceledError, "canceled")),
    ("google-lro", [GOOGLE, GOOGLE, {**GOOGLE, "done": True, "response": {"x": 1}}], {}),
    (
        "google-lro",
        [GOOGLE, {**GOOGLE, "done": True, "error": {"code": 3, "message": "Bad dataset"}}],
        (JobFailedError, "Bad dataset"),
    ),
    (
        "google-lro",
        [{**GOOGLE, "done": True, "error": {"code": 1, "message": "Operation cancelled"}}],
        {"error": {"code": 1, "message": "Operation cancelled"}},
    ),
    (
        "google-lro",
        [GOOGLE, {**GOOGLE, "done": True}],
        (JobStatusError, "neither 'response' nor 'error'"),
    ),
    (
        "celery-flower",
        [{**FLOWER, "state": s} for s in ("PENDING", "RECEIVED", "STARTED", "RETRY", "SUCCESS")],
        {"state": "SUCCESS"},
    ),
    (
        "celery-flower",
        [
            {**FLOWER, "state": "STARTED", "exception": None},
            {
                **FLOWER,
                "state": "FAILURE",
                "exception": "ValueError('boom')",
                "traceback": "Traceback (most recent call last): ...",
            },
        ],
        (JobFailedError, "ValueError('boom')"),
    ),
    ("celery-flower", [{**FLOWER, "state": "REVOKED"}], {"state": "REVOKED"}),
    (
        "github-actions",
        [
            {**RUN, "status": "queued", "conclusion": None},
            {**RUN, "status": "in_progress", "conclusion": None},
            {**RUN, "status": "completed", "conclusion": None},
            {**RUN, "status": "completed", "conclusion": "success"},
        ],
        {"conclusion": "success"},
    ),
    (
        "github-actions",
        [
            {**RUN, "status": "waiting", "conclusion": None},
            {
                **RUN,
                "status": "completed",
                "conclusion": "timed_out",
                "html_url": "https://github.com/o/r/actions/runs/30433642",
            },
        ],
        (JobFailedError, "timed_out"),
    ),
    (
        "github-actions",
        [{**RUN, "status": "completed", "conclusion": "cancelled"}],
        {"conclusion": "cancelled"},
    ),
    (
        "aws-batch",
        [
            {**BATCH_JOB, "status": s}
            for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED")
        ],
        {"status": "SUCCEEDED"},
    ),
    (
        "aws-batch",
        [
            {**BATCH_JOB, "status": "RUNNING"},
            {
                **BATCH_JOB,
                "status": "FAILED",
                "statusReason": "Essential container in task exited",
            },
        ],
        (JobFailedError, "Essential container in task exited"),
    ),
    (
        "sagemaker-training",
        [
            {**TRAINING, "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"},
            {**TRAINING, "TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
            {**TRAINING, "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed"},
        ],
        {"TrainingJobStatus": "Completed"},
    ),
    (
        "sagemaker-training",
        [
            {**TRAINING, "TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
            {
                **TRAINING,
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": "AlgorithmError: out of memory",
            },
        ],
        (JobFailedError, "AlgorithmError: out of memory"),
    ),
    (
        "sagemaker-training",
        [
            {**TRAINING, "TrainingJobStatus": "Stopping", "SecondaryStatus": "Stopping"},
            {**TRAINING, "TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped"},
        ],
        {"TrainingJobStatus": "Stopped"},
    ),
    (
        "ray-jobs",
        [
            {**RAY, "status": "PENDING", "message": "Job has not started yet."},
            {**RAY, "status": "RUNNING", "message": "Job is currently running."},
            {**RAY, "status": "SUCCEEDED", "message": "Job finished successfully."},
        ],
        {"status": "SUCCEEDED"},
    ),
    (
        "ray-jobs",
        [
            {**RAY, "status": "RUNNING", "message": "Job is currently running."},
            {
                **RAY,
                "status": "FAILED",
                "message": "Job entrypoint command failed with exit code 3",
                "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR",
            },
        ],
        (JobFailedError, "failed with exit code 3"),
    ),
    (
        "ray-jobs",
        [{**RAY, "status": "STOPPED", "message": "Job was intentionally stopped."}],
        {"status": "STOPPED"},
    ),
    (
        "prefect",
        [prefect("SCHEDULED"), prefect("PENDING"), prefect("RUNNING"), prefect("COMPLETED")],
        {"state_type": "COMPLETED"},
    ),
    (
        "prefect",
        [prefect("RUNNING"), prefect("CRASHED", "Execution was aborted by an interrupt")],
        (JobFailedError, "aborted by an interrupt"),
    ),
    ("prefect", [prefect("CANCELLING"), prefect("CANCELLED")], {"state_type": "CANCELLED"}),
    ("mlflow", [mlflow("SCHEDULED"), mlflow("RUNNING"), mlflow("FINISHED")], mlflow("FINISHED")),
    ("mlflow", [mlflow("RUNNING"), mlflow("FAILED")], (JobFailedError, "job failed")),
    ("mlflow", [mlflow("RUNNING"), mlflow("KILLED")], mlflow("KILLED")),
    (
        "databricks-runs",
        [
            databricks("PENDING", message="Waiting for cluster"),
            databricks("RUNNING"),
            databricks("TERMINATING"),
            databricks("TERMINATED", "SUCCESS"),
        ],
        {"run_id": 455644833},
    ),
    (
        "databricks-runs",
        [
            databricks("RUNNING"),
            databricks("TERMINATED", "FAILED", "Task nightly failed with message: boom"),
        ],
        (JobFailedError, "Task nightly failed"),
    ),
    (
        "databricks-runs",
        [databricks("INTERNAL_ERROR", message="Cluster could not start")],
        (JobFailedError, "Cluster could not start"),
    ),
    ("databricks-runs", [databricks("SKIPPED")], {"run_id": 455644833}),
    (
        "kubernetes-job",
        [
            kube(),
            kube(active=1, ready=1, startTime="2026-12-08T00:00:00Z"),
            kube(
                conditions=[condition("SuccessCriteriaMet"), condition("Complete")],
                succeeded=1,
            ),
        ],
        {"kind": "Job"},
    ),
    (
        "kubernetes-job",
        [
            kube(active=1),
            kube(
                failed=7,
                conditions=[
                    condition("FailureTarget", "BackoffLimitExceeded"),
                    condition(
                        "Failed",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    ),
                ],
            ),
        ],
        (JobFailedError, "BackoffLimitExceeded: Job has reached the specified backoff limit"),
    ),
    (
        "airflow-dag-run",
        [{**DAG_RUN, "state": s} for s in ("queued", "running", "success")],
        {"state": "success"},
    ),
    (
        "airflow-dag-run",
        [{**DAG_RUN, "state": "running"}, {**DAG_RUN, "state": "failed"}],
        (JobFailedError, "job failed"),
    ),
    (
        "dagster-run",
        [dagster("QUEUED"), dagster("STARTED"), dagster("SUCCESS")],
        dagster("SUCCESS"),
    ),
    ("dagster-run", [dagster("STARTED"), dagster("FAILURE")], (JobFailedError, "job failed")),
    (
        "dagster-run",
        [{"data": {"runOrError": {"__typename": "RunNotFoundError", "message": "Run x?"}}}],
        (JobStatusError, "RunNotFoundError has no 'status': Run x?"),
    ),
    (
        "argo-workflows",
        [
            {**ARGO, "status": {}},
            {**ARGO, "status": {"phase": "Pending"}},
            {**ARGO, "status": {"phase": "Running", "progress": "0/1"}},
            {**ARGO, "status": {"phase": "Succeeded", "progress": "1/1"}},
        ],
        {"status": {"phase": "Succeeded", "progress": "1/1"}},
    ),
    (
        "argo-workflows",
        [
            {**ARGO, "status": {"phase": "Running"}},
            {**ARGO, "status": {"phase": "Failed", "message": "Stopped with strategy 'Terminate'"}},
        ],
        (JobFailedError, "Stopped with strategy"),
    ),
    (
        "aws-step-functions",
        [{**SFN, "status": "RUNNING"}, {**SFN, "status": "SUCCEEDED", "output": "{}"}],
        {"status": "SUCCEEDED"},
    ),
    (
        "aws-step-functions",
        [
            {**SFN, "status": "RUNNING"},
            {**SFN, "status": "FAILED", "error": "States.TaskFailed", "cause": "Lambda threw"},
        ],
        (JobFailedError, "States.TaskFailed"),
    ),
    ("aws-step-functions", [{**SFN, "status": "ABORTED"}], {"status": "ABORTED"}),
    (
        "vertex-ai",
        [
            {**VERTEX, "state": "JOB_STATE_QUEUED"},
            {**VERTEX, "state": "JOB_STATE_RUNNING"},
            {**VERTEX, "state": "JOB_STATE_SUCCEEDED"},
        ],
        {"state": "JOB_STATE_SUCCEEDED"},
    ),
    (
        "vertex-ai",
        [
            {**VERTEX, "state": "JOB_STATE_RUNNING"},
            {
                **VERTEX,
                "state": "JOB_STATE_FAILED",
                "error": {"code": 3, "message": "The replica workerpool0-0 exited with 1"},
            },
        ],
        (JobFailedError, "workerpool0-0 exited"),
    ),
    (
        "vertex-ai",
        [{**VERTEX, "state": "JOB_STATE_CANCELLED"}],
        (JobCanceledError, "job was canceled"),
    ),
    (
        "auto",
        [{"id": "r1", "state": "Queued"}, {"id": "r1", "state": "Done", "result": 42}],
        {"result": 42},
    ),
    (
        "auto",
        [{"id": "r2", "status": "RUNNING"}, {"id": "r2", "status": "ERRORED", "error": "disk"}],
        (JobFailedError, "disk"),
    ),
]


@pytest.mark.parametrize(("name", "answers", "expected"), CASES)
def test_profile_reads_recorded_answers(name: str, answers: list[Any], expected: Any) -> None:
    result = outcome(ApiProfile.named(name), answers)
    if isinstance(expected, tuple):
        error_type, text = expected
        assert type(result) is error_type, result
        assert text in str(result)
        assert result.last_job == answers[-1]
        assert result.polls == len(answers)
    else:
        assert isinstance(result, dict), result
        assert result == answers[-1]
        assert {k: result[k] for k in expected} == expected


def test_every_built_in_profile_has_a_case_and_a_source() -> None:
    covered = {name for name, _, _ in CASES}
    assert set(ApiProfile.names()) - covered == {"azure-location", "celery"}
    for name in ApiProfile.names():
        assert ":" in ApiProfile.named(name).source, name


def test_failure_payloads_are_the_apis_own() -> None:
    error = outcome(
        ApiProfile.named("azure"),
        [{"status": "Failed", "error": {"code": "Conflict", "message": "busy"}}],
    )
    assert error.failure == {"code": "Conflict", "message": "busy"}
    error = outcome(
        ApiProfile.named("google-lro"), [{"done": True, "error": {"code": 9, "message": "m"}}]
    )
    assert error.failure == {"code": 9, "message": "m"}
    error = outcome(
        ApiProfile.named("github-actions"),
        [{"status": "completed", "conclusion": "failure", "html_url": "https://x/runs/1"}],
    )
    assert error.failure == {"conclusion": "failure", "html_url": "https://x/runs/1"}


def test_qiskit_max_time_is_a_failure_naming_the_reason_code() -> None:
    error = outcome(
        ApiProfile.named("qiskit"), [qiskit("CANCELLED", reason="Ran too long", reason_code=1305)]
    )
    assert isinstance(error, JobFailedError)
    assert error.last_status == "Cancelled - Ran too long"
    assert error.failure.startswith("Error code 1305; ran longer than the maximum execution time")


def test_profile_options_lose_to_explicit_ones() -> None:
    profile = ApiProfile.named("azure")
    assert profile.options()["raise_on_cancel"] is True
    assert profile.options(raise_on_cancel=False, timeout=5)["raise_on_cancel"] is False
    job = wait_through(profile, [{"status": "Canceled"}], raise_on_cancel=False)
    assert job == {"status": "Canceled"}


def test_named_rejects_unknown_names_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="google-lro") as caught:
        ApiProfile.named("gooogle")
    assert "no API profile named 'gooogle'" in str(caught.value)


def test_profile_validates_its_fields() -> None:
    base = ApiProfile.named("ionq")
    with pytest.raises(ValueError, match="pending_http"):
        base.replace(pending_http={99})
    with pytest.raises(ValueError, match="empty_body"):
        base.replace(empty_body="maybe")
    with pytest.raises(TypeError, match="Statuses"):
        base.replace(statuses={"pending": ["a"]})
    with pytest.raises(TypeError, match="callables"):
        base.replace(status_of="status")
    with pytest.raises(TypeError, match="non-empty string"):
        base.replace(name=" ")
    with pytest.raises(ValueError, match="positive"):
        base.replace(retry_after_headers=(("x-wait", 0),))


# --- batch answers -------------------------------------------------------------------

BATCHES = [
    ("ionq", {"jobs": [{"id": "a", "status": "completed"}], "next": None}, "a"),
    (
        "braket",
        {"quantumTasks": [{"quantumTaskArn": "arn:q/1", "status": "QUEUED"}], "nextToken": "t"},
        "arn:q/1",
    ),
    (
        "google-lro",
        {"operations": [{"name": "operations/1", "done": True, "response": {}}]},
        "operations/1",
    ),
    ("celery-flower", {"91396550": {"state": "SUCCESS", "uuid": "91396550"}}, "91396550"),
    ("github-actions", {"total_count": 1, "workflow_runs": [{"id": 7, "status": "queued"}]}, "7"),
    ("aws-batch", {"jobs": [{"jobId": "876da822", "status": "RUNNING"}]}, "876da822"),
    (
        "sagemaker-training",
        {"TrainingJobSummaries": [{"TrainingJobName": "xgb", "TrainingJobStatus": "InProgress"}]},
        "xgb",
    ),
]


@pytest.mark.parametrize(("name", "body", "job_id"), BATCHES)
def test_batch_readers(name: str, body: dict[str, Any], job_id: str) -> None:
    jobs_of = ApiProfile.named(name).jobs_of
    assert jobs_of is not None
    assert list(jobs_of(body)) == [job_id]
    with pytest.raises(TypeError, match=r"batch answer|task list"):
        jobs_of({"unexpected": []})


def test_batch_wait_uses_the_profiles_reader() -> None:
    answers = iter([[("a", "RUNNING"), ("b", "RUNNABLE")], [("a", "SUCCEEDED"), ("b", "FAILED")]])

    def handler(request: httpx.Request) -> httpx.Response:
        jobs = [{"jobId": i, "status": s, "statusReason": "exit 1"} for i, s in next(answers)]
        return httpx.Response(200, json={"jobs": jobs})

    vc = VirtualClock()
    with httpx.Client(
        base_url="https://batch.example", transport=httpx.MockTransport(handler)
    ) as c:
        results = wait_for_batch(
            c,
            ["a", "b"],
            url_for=lambda ids: "/v1/describejobs",
            api="aws-batch",
            clock=vc.now,
            sleep=vc.sleep,
        )
    assert results["a"]["status"] == "SUCCEEDED"
    assert isinstance(results["b"], JobFailedError)
    assert results["b"].failure == "exit 1"


# --- HTTP quirks ---------------------------------------------------------------------


def serve(answers: Sequence[httpx.Response]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    client = httpx.Client(base_url="https://api.example", transport=httpx.MockTransport(handler))
    return client, seen


def test_flower_404_is_not_there_yet_beyond_max_fetch_errors() -> None:
    not_yet = httpx.Response(404, text="<html><title>404: Not Found</title></html>")
    answers = [not_yet] * 8 + [httpx.Response(200, json={**FLOWER, "state": "SUCCESS"})]
    client, seen = serve(answers)
    vc = VirtualClock()
    with client:
        job = wait_for_url(
            client,
            "/api/task/info/91396550-c228",
            api="celery-flower",
            max_fetch_errors=3,
            clock=vc.now,
            sleep=vc.sleep,
        )
    assert job["state"] == "SUCCESS"
    assert len(seen) == 9
    assert vc.sleeps[:3] == [1.0, 1.5, 2.25]  # the normal schedule


def test_not_there_yet_forever_times_out_with_the_404_as_cause() -> None:
    client, _seen = serve([httpx.Response(404, text="Unknown task")])
    vc = VirtualClock()
    with client, pytest.raises(JobTimeoutError) as caught:
        wait_for_url(
            client,
            "/api/task/info/x",
            api="celery-flower",
            timeout=20,
            clock=vc.now,
            sleep=vc.sleep,
        )
    cause = caught.value.__cause__
    assert isinstance(cause, ResponseError)
    assert cause.status_code == 404
    assert vc.now() == 20


def test_without_a_profile_404_still_ends_the_wait() -> None:
    client, seen = serve([httpx.Response(404, text="Unknown task")])
    with client, pytest.raises(JobFetchError):
        wait_for_url(client, "/api/task/info/x", statuses=ApiProfile.named("celery").statuses)
    assert len(seen) == 1


def test_azure_location_polling_202_then_the_resource() -> None:
    resource = {"id": "/subscriptions/s/resourceGroups/g/providers/P/vms/vm1", "name": "vm1"}
    client, _seen = serve(
        [
            httpx.Response(
                202, headers={"Location": "https://api.example/op/1", "Retry-After": "2"}
            ),
            httpx.Response(202, content=b"", headers={"retry-after-ms": "500"}),
            httpx.Response(200, json=resource),
        ]
    )
    vc = VirtualClock()
    with client:
        job = wait_for_url(client, "/op/1", api="azure-location", clock=vc.now, sleep=vc.sleep)
    assert job == resource
    assert vc.sleeps == [2.0, 1.5]  # Retry-After floors the first sleep; 0.5 s does not


def test_azure_location_polling_204_is_done_with_no_resource() -> None:
    client, _ = serve([httpx.Response(202), httpx.Response(204)])
    vc = VirtualClock()
    with client:
        assert wait_for_url(client, "/op", api="azure-location", clock=vc.now, sleep=vc.sleep) == {}


def test_azure_location_polling_error_status_fails() -> None:
    client, _ = serve([httpx.Response(202), httpx.Response(409, json={"error": {"code": "C"}})])
    vc = VirtualClock()
    with client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/op", api="azure-location", clock=vc.now, sleep=vc.sleep)
    assert caught.value.status_code == 409


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"retry-after-ms": "2500"}, 2.5),
        ({"x-ms-retry-after-ms": "4000"}, 4.0),
        ({"Retry-After": "7", "retry-after-ms": "2500"}, 7.0),  # azure-core reads it first
        ({"retry-after-ms": "soon", "x-ms-retry-after-ms": "3000"}, 3.0),
        ({"retry-after-ms": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # never a date
        ({}, None),
    ],
)
def test_azure_retry_after_headers(headers: dict[str, str], hint: float | None) -> None:
    profile = ApiProfile.named("azure")
    assert profile.retry_after(headers, wall_now=0.0) == hint
    fetched = profile.read_response(200, headers, b'{"status": "Running"}', wall_now=0.0)
    assert fetched.retry_after == hint
    with pytest.raises(ResponseError) as caught:
        profile.read_response(429, headers, b"", wall_now=0.0)
    assert caught.value.retry_after == hint


def test_azure_retry_after_ms_drives_the_sleep() -> None:
    running = httpx.Response(
        200, json={"status": "Running"}, headers={"x-ms-retry-after-ms": "4000"}
    )
    client, _ = serve([running, httpx.Response(200, json={"status": "Succeeded"})])
    vc = VirtualClock()
    with client:
        wait_for_url(client, "/operations/1", api="azure", clock=vc.now, sleep=vc.sleep)
    assert vc.sleeps == [4.0]


def test_empty_body_pending_and_error() -> None:
    pending = ApiProfile.named("ionq").replace(empty_body="pending")
    with pytest.raises(ResponseError) as caught:
        pending.read_response(202, {}, b"  ", wall_now=0.0)
    assert caught.value.pending is True
    assert caught.value.retryable is True
    with pytest.raises(JobStatusError, match="not JSON"):
        ApiProfile.named("ionq").read_response(202, {}, b"", wall_now=0.0)


# --- statuses that are not plain strings ---------------------------------------------


class QiskitJobStatus(enum.Enum):
    """Shaped like qiskit.providers.JobStatus: names are the statuses, values prose."""

    INITIALIZING = "job is being initialized"
    QUEUED = "job is queued"
    RUNNING = "job is actively running"
    CANCELLED = "job has been cancelled"
    DONE = "job has successfully run"
    ERROR = "job incurred error"


class Lower(enum.StrEnum):
    SUBMITTED = "submitted"
    COMPLETED = "completed"


class Job:
    def __init__(self, status: Any) -> None:
        self._status = status

    def status(self) -> Any:
        return self._status


def test_enum_statuses_read_by_name_or_value() -> None:
    profile = ApiProfile.named("qiskit")
    statuses = profile.statuses
    assert statuses.text(QiskitJobStatus.DONE) == "DONE"
    assert statuses.phase(QiskitJobStatus.ERROR).name == "FAILED"
    assert Statuses().text(Lower.COMPLETED) == "completed"
    assert type(Statuses().text(Lower.COMPLETED)) is str
    jobs = [Job(QiskitJobStatus.QUEUED), Job(QiskitJobStatus.RUNNING), Job(QiskitJobStatus.DONE)]
    final = wait_through(profile, jobs, status_of=lambda job: job.status())
    assert final is jobs[-1]
    done = wait_through(
        ApiProfile.named("ionq"), [{"status": Lower.SUBMITTED}, {"status": Lower.COMPLETED}]
    )
    assert done["status"] is Lower.COMPLETED


def test_an_int_status_gets_an_error_saying_how_to_map_it() -> None:
    error = outcome(ApiProfile.named("ionq"), [{"status": 3}])
    assert isinstance(error, JobStatusError)
    assert "got 3 (int)" in str(error)
    assert "status_of=" in str(error)
    mapped = wait_through(
        ApiProfile.named("ionq"),
        [{"status": 0}, {"status": 2}],
        status_of=lambda job: {0: "submitted", 2: "completed"}[job["status"]],
    )
    assert mapped == {"status": 2}


def test_strict_mode_names_the_status_and_the_known_ones() -> None:
    statuses = ApiProfile.named("celery-flower").statuses.replace(on_unknown="raise")
    waiter = JobWaiter(statuses=statuses, status_of=field_reader("state"), job_id="t1")
    waiter.handle(Start(now=0.0))
    action = waiter.handle(Observed(job={"state": "success"}, now=0.0))
    message = str(action.error)  # type: ignore[union-attr]
    assert "unknown status 'success'" in message
    assert "succeeded: SUCCESS" in message
    assert "pending: PENDING, RECEIVED" in message
    assert "on_unknown='wait'" in message


def test_case_insensitive_statuses() -> None:
    statuses = Statuses(succeeded={"SUCCESS"}, pending={"PENDING"}, case_sensitive=False)
    job = wait_through(
        ApiProfile(name="mine", statuses=statuses), [{"status": "pending"}, {"status": "Success"}]
    )
    assert job == {"status": "Success"}


def test_field_reader_default() -> None:
    read = field_reader("error.message", default=None)
    assert read({"error": {"message": "m"}}) == "m"
    assert read({"error": None}) is None
    assert read({}) is None
    with pytest.raises(LookupError, match=r"error\.message"):
        field_reader("error.message")({})


# --- writing your own profile ---------------------------------------------------------


def test_a_profile_of_your_own() -> None:
    def status_of(job: dict[str, Any]) -> str:
        return "finished" if job["progress"] == 100 else "working"

    profile = ApiProfile(
        name="render-farm",
        statuses=Statuses(pending={"working"}, succeeded={"finished"}, failed=(), canceled=()),
        status_of=status_of,
        pending_http=frozenset({404, 409}),
    )
    client, seen = serve(
        [
            httpx.Response(409),
            httpx.Response(200, content=json.dumps({"progress": 40}).encode()),
            httpx.Response(200, json={"progress": 100}),
        ]
    )
    vc = VirtualClock()
    with client:
        assert wait_for_url(client, "/r/1", api=profile, clock=vc.now, sleep=vc.sleep) == {
            "progress": 100
        }
    assert len(seen) == 3


# --- every runtime and every fleet takes a profile's options --------------------------


def _runs() -> dict[str, Any]:
    return {
        "7": iter(
            [
                {"id": 7, "status": "queued", "conclusion": None},
                {"id": 7, "status": "completed", "conclusion": "success"},
            ]
        ),
        "8": iter(
            [
                {"id": 8, "status": "in_progress", "conclusion": None},
                {"id": 8, "status": "completed", "conclusion": "failure"},
            ]
        ),
    }


@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_profile_options_work_on_every_runtime_and_fleet(runtime: str) -> None:
    import asyncio

    import trio

    from jobwait.adapters import asyncio as aio
    from jobwait.adapters import trio as tri

    options = ApiProfile.named("github-actions").options(timeout=60)
    vc = VirtualClock()
    runs = _runs()

    def fetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
        return {i: next(runs[i]) for i in ids}

    async def afetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
        return fetch_many(ids)

    one = _runs()["7"]

    async def afetch() -> Any:
        return next(one)

    if runtime == "sync":
        single = sync.wait(lambda: next(one), clock=vc.now, sleep=vc.sleep, **options)
        many = sync.wait_all(fetch_many, ["7", "8"], clock=vc.now, sleep=vc.sleep, **options)
    else:
        module: Any = aio if runtime == "asyncio" else tri

        async def main() -> tuple[Any, Any]:
            single = await module.wait(afetch, clock=vc.now, sleep=vc.asleep, **options)
            many = await module.wait_all(
                afetch_many, ["7", "8"], clock=vc.now, sleep=vc.asleep, **options
            )
            return single, many

        single, many = asyncio.run(main()) if runtime == "asyncio" else trio.run(main)
    assert single["conclusion"] == "success"
    assert many["7"]["conclusion"] == "success"
    assert isinstance(many["8"], JobFailedError)
    assert many["8"].failure == {"conclusion": "failure"}


def test_a_profiled_wait_survives_snapshot_and_restore() -> None:
    profile = ApiProfile.named("google-lro")
    waiter = JobWaiter(job_id="operations/42", **profile.options(timeout=60))
    waiter.handle(Start(now=0.0))
    waiter.handle(Observed(job={"name": "operations/42"}, now=0.1))
    snapshot = json.loads(json.dumps(waiter.snapshot()))
    restored = JobWaiter.restore(
        snapshot, now=100.0, status_of=profile.status_of, failure_of=profile.failure_of
    )
    assert restored.statuses == profile.statuses
    restored.handle(Woke(now=101.0))
    ended = restored.handle(
        Observed(job={"done": True, "error": {"code": 3, "message": "bad input"}}, now=101.1)
    )
    assert isinstance(ended, Raise)
    assert isinstance(ended.error, JobFailedError)
    assert ended.error.failure == {"code": 3, "message": "bad input"}


@given(
    values=st.lists(st.sampled_from(["queued", "Running", "DONE", "failed", "x"]), unique=True),
    case_sensitive=st.booleans(),
)
def test_enum_members_read_as_the_string_the_vocabulary_lists(
    values: list[str], case_sensitive: bool
) -> None:
    statuses = Statuses(
        pending=set(values[:2]),
        succeeded=set(values[2:3]),
        failed=(),
        canceled=(),
        case_sensitive=case_sensitive,
    )
    by_value = enum.Enum("ByValue", {f"M{i}": v for i, v in enumerate(values)})
    by_name = enum.Enum("ByName", {v: f"prose {i}" for i, v in enumerate(values)})
    listed = values[:3]
    for member in [*by_value, *by_name]:
        text = statuses.text(member)
        assert type(text) is str
        if member.value in listed or member.name in listed:
            assert text in listed
            assert statuses.phase(member) is not Phase.UNKNOWN
        else:  # unlisted: the string value, as it would be shown
            assert text == member.value
            assert statuses.phase(member) is Phase.UNKNOWN
        assert statuses.phase(member) is statuses.phase(text)
