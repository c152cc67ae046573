"""Each profile against the real project's own state list or code, where it installs
offline as pure Python (the ``test`` extra): a state added upstream fails here.

qiskit-ibm-runtime is not checked this way: it needs qiskit itself (large, compiled).
Its profile cites the source read instead (qiskit_ibm_runtime/runtime_job_v2.py).
"""

from __future__ import annotations

from typing import Any

import botocore.session
import celery.states
import pytest
from azure.core.polling import base_polling
from google.api_core import exceptions, operation
from google.longrunning import operations_pb2
from google.protobuf import json_format
from ionq_core import polling as ionq_polling
from ionq_core.models import job_status as ionq_status

from jobwait import ApiProfile, Phase, Statuses


def listed(statuses: Statuses) -> set[str]:
    return {*statuses.pending, *statuses.succeeded, *statuses.failed, *statuses.canceled}


def terminal(statuses: Statuses) -> set[str]:
    return {*statuses.succeeded, *statuses.failed, *statuses.canceled}


# --- AWS: botocore's service definitions ---------------------------------------------

AWS = [
    ("braket", "braket", "QuantumTaskStatus"),
    ("aws-batch", "batch", "JobStatus"),
    ("sagemaker-training", "sagemaker", "TrainingJobStatus"),
]


@pytest.mark.parametrize(("name", "service", "shape"), AWS)
def test_aws_profiles_list_exactly_the_service_enum(name: str, service: str, shape: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    enum = set(model.shape_for(shape).enum)
    assert listed(ApiProfile.named(name).statuses) == enum


@pytest.mark.parametrize(
    ("name", "service", "output", "member"),
    [
        ("braket", "braket", "GetQuantumTaskResponse", "failureReason"),
        ("aws-batch", "batch", "JobDetail", "statusReason"),
        ("sagemaker-training", "sagemaker", "DescribeTrainingJobResponse", "FailureReason"),
    ],
)
def test_aws_failure_fields_exist(name: str, service: str, output: str, member: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    assert member in model.shape_for(output).members
    assert ApiProfile.named(name).failure_of({member: "why"}) == "why"


def test_sagemaker_matches_botocores_waiter() -> None:
    # TrainingJobCompletedOrStopped: Completed and Stopped end the wait, Failed fails.
    loader = botocore.session.get_session().get_component("data_loader")
    waiter = loader.load_service_model("sagemaker", "waiters-2")["waiters"]
    acceptors = waiter["TrainingJobCompletedOrStopped"]["acceptors"]
    statuses = ApiProfile.named("sagemaker-training").statuses
    for acceptor in acceptors:
        if acceptor["matcher"] != "path":
            continue
        phase = statuses.phase(acceptor["expected"])
        assert phase.terminal
        assert (phase is Phase.FAILED) == (acceptor["state"] == "failure")


# --- Celery --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["celery", "celery-flower"])
def test_celery_profiles_match_celery_states(name: str) -> None:
    statuses = ApiProfile.named(name).statuses
    assert statuses.pending == celery.states.UNREADY_STATES
    assert terminal(statuses) == celery.states.READY_STATES
    assert statuses.failed | statuses.canceled == celery.states.PROPAGATE_STATES
    assert statuses.phase(celery.states.IGNORED) is Phase.UNKNOWN


# --- IonQ ----------------------------------------------------------------------------


def test_ionq_profile_matches_ionq_core() -> None:
    statuses = ApiProfile.named("ionq").statuses
    assert set(ionq_status.JOB_STATUS_VALUES) <= listed(statuses)
    assert terminal(statuses) == set(ionq_polling._TERMINAL)


# --- Azure: azure-core's own predicates and Location polling ---------------------------

AZURE_SEEN = ["Succeeded", "SUCCEEDED", "failed", "Canceled", "canceled", "Running", "InProgress"]
AZURE_SEEN += ["NotStarted", "Accepted", "Updating"]


@pytest.mark.parametrize("status", AZURE_SEEN)
def test_azure_phases_agree_with_azure_core(status: str) -> None:
    phase = ApiProfile.named("azure").statuses.phase(status)
    assert phase.terminal == base_polling._finished(status)
    assert (phase is Phase.SUCCEEDED) == base_polling._succeeded(status)
    # azure-core's OperationFailed covers Failed and Canceled; the profile raises on both.
    assert (phase in (Phase.FAILED, Phase.CANCELED)) == base_polling._failed(status)
    assert ApiProfile.named("azure").raise_on_cancel is True


class _Response:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


class _Pipeline:
    def __init__(self, status_code: int) -> None:
        self.http_response = _Response(status_code)


@pytest.mark.parametrize("code", [200, 201, 202, 204])
def test_azure_location_agrees_with_location_polling(code: int) -> None:
    theirs = base_polling.LocationPolling().get_status(_Pipeline(code))  # type: ignore[arg-type]
    profile = ApiProfile.named("azure-location")
    if code in profile.pending_http:
        ours = "InProgress"
    else:
        job = profile.read_response(code, {}, b"", wall_now=0.0).job
        ours = profile.status_of(job)
    assert ours == theirs


# --- Google: google-api-core's Operation future --------------------------------------

GOOGLE_ANSWERS: list[dict[str, Any]] = [
    {"name": "operations/1"},
    {"name": "operations/1", "done": False},
    {
        "name": "operations/1",
        "done": True,
        "response": {"@type": "type.googleapis.com/google.protobuf.Empty"},
    },
    {"name": "operations/1", "done": True, "error": {"code": 3, "message": "bad"}},
    {"name": "operations/1", "done": True, "error": {"code": 1, "message": "cancelled"}},
    {"name": "operations/1", "done": True},
]


@pytest.mark.parametrize("answer", GOOGLE_ANSWERS)
def test_google_lro_agrees_with_google_api_core(answer: dict[str, Any]) -> None:
    from google.protobuf import empty_pb2

    proto = json_format.ParseDict(answer, operations_pb2.Operation())
    future = operation.Operation(
        proto, refresh=lambda: proto, cancel=lambda: None, result_type=empty_pb2.Empty
    )
    profile = ApiProfile.named("google-lro")
    try:
        status = profile.status_of(answer)
    except LookupError:
        # Ours refuses to call it anything; theirs calls it an unexpected state.
        assert future.done()
        error = future.exception()
        assert isinstance(error, exceptions.GoogleAPICallError)
        assert "Unexpected state" in str(error)
        return
    phase = profile.statuses.phase(status)
    assert future.done() == phase.terminal
    assert future.cancelled() == (phase is Phase.CANCELED)
    if phase is Phase.SUCCEEDED:
        assert future.exception() is None
    if phase is Phase.FAILED:
        assert future.exception() is not None


# --- the profiles of issue 21 ----------------------------------------------------------
# prefect (the live test's server), databricks-sdk, hera and apache-airflow-client are
# in the test extra; ray, mlflow, dagster, kubernetes and google-cloud-aiplatform are
# not (too heavy, or compiled): their profiles cite the file read, and Ray and MLflow
# are checked against answers recorded from their real servers (tests/data).


def test_aws_step_functions_lists_exactly_the_service_enum() -> None:
    model = botocore.session.get_session().get_service_model("stepfunctions")
    assert listed(ApiProfile.named("aws-step-functions").statuses) == set(
        model.shape_for("ExecutionStatus").enum
    )
    members = model.shape_for("DescribeExecutionOutput").members
    assert {"error", "cause"} <= set(members)
    failure = ApiProfile.named("aws-step-functions").failure_of
    assert failure({"error": "States.Timeout", "cause": "ran 300s"}) == {
        "error": "States.Timeout",
        "cause": "ran 300s",
    }
    assert failure({"error": "States.Timeout"}) == "States.Timeout"


def test_prefect_matches_its_state_types() -> None:
    from prefect.client.schemas.objects import TERMINAL_STATES, StateType
    from prefect.client.schemas.objects import State as PrefectState

    statuses = ApiProfile.named("prefect").statuses
    assert listed(statuses) == {t.value for t in StateType}
    assert terminal(statuses) == {t.value for t in TERMINAL_STATES}
    for kind in StateType:
        state = PrefectState(type=kind)
        phase = statuses.phase(kind)  # the enum member itself, as the SDK's model holds it
        assert phase.terminal == state.is_final()
        assert (phase is Phase.FAILED) == (state.is_failed() or state.is_crashed())
        assert (phase is Phase.CANCELED) == state.is_cancelled()
        assert (phase is Phase.SUCCEEDED) == state.is_completed()


def test_databricks_runs_match_the_sdk() -> None:
    from databricks.sdk.service import jobs

    profile = ApiProfile.named("databricks-runs")
    statuses = profile.statuses
    # TERMINATED's meaning is its result_state: the reader replaces it.
    life = {s.value for s in jobs.RunLifeCycleState} - {"TERMINATED"}
    assert listed(statuses) == life | {s.value for s in jobs.RunResultState}
    # The SDK's own waiter: TERMINATED and SKIPPED end it, INTERNAL_ERROR fails it.
    assert statuses.phase("SKIPPED").terminal
    assert statuses.phase("INTERNAL_ERROR") is Phase.FAILED
    for life_state in jobs.RunLifeCycleState:
        if life_state.value in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            continue
        assert statuses.phase(life_state.value) is Phase.PENDING
    # The SDK's own model, with its enum members, reads as its JSON does.
    run = jobs.Run(
        run_id=1,
        state=jobs.RunState(
            life_cycle_state=jobs.RunLifeCycleState.TERMINATED,
            result_state=jobs.RunResultState.TIMEDOUT,
            state_message="timed out",
        ),
    )
    assert profile.status_of(run) == "TIMEDOUT"
    assert profile.status_of(run.as_dict()) == "TIMEDOUT"
    assert profile.failure_of(run.as_dict()) == "timed out"


def test_argo_workflows_match_hera() -> None:
    from hera.workflows import WorkflowStatus

    statuses = ApiProfile.named("argo-workflows").statuses
    # hera's placeholder enum also names "Terminated", which Argo's WorkflowPhase never
    # is (a terminated workflow ends Failed); "" is Argo's phase before the controller
    # picks the workflow up.
    assert listed(statuses) == {s.value for s in WorkflowStatus} - {"Terminated"} | {""}
    for status in WorkflowStatus:
        if status.value != "Terminated":
            phase = statuses.phase(status.value)
            assert phase.terminal == (status.value in ("Succeeded", "Failed", "Error"))


def test_airflow_dag_run_matches_the_client() -> None:
    from airflow_client.client.models.dag_run_state import DagRunState

    statuses = ApiProfile.named("airflow-dag-run").statuses
    assert listed(statuses) == {s.value for s in DagRunState}
    assert statuses.phase("success") is Phase.SUCCEEDED
