"""The built-in API profiles: each job API's vocabulary and readers, cited from its SDK.

Every profile below names, next to its vocabulary, the file and line of the project's
own source (or service definition) its states come from, with the version read.
``tests/test_profiles_sdks.py`` checks them against the installed SDK wherever it
installs offline as pure Python; the others are checked against recorded answers
(``tests/data``) and their citation. :meth:`ApiProfile.named` reads :data:`BUILT_IN`
(and ``"auto"``, the universal reading built from these, in ``_auto.py``);
``Statuses.braket()`` and ``Statuses.qiskit()`` read :func:`vocabulary`.

A status reader returns the API's own status string (or enum member), deriving one
where the API has none (Google's operations, Databricks' two-part state, a Kubernetes
Job's conditions); a derived status must mean the same in the universal vocabulary as
in its profile (``_auto.CONFLICTS`` lists the few that do not, and why).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._numbers import finite
from ._profiles import ApiProfile
from ._statuses import MISSING, Statuses, field_reader, read_field

__all__ = ["BUILT_IN", "ionq_predicted_seconds", "vocabulary"]


def _get(job: Any, path: str) -> Any:
    return read_field(job, path, None)


def _text(value: Any) -> Any:
    # An SDK's enum member (databricks-sdk's RunLifeCycleState) compared as its value.
    return value.value if isinstance(value, enum.Enum) else value


def _first(*paths: str) -> Callable[[Any], Any]:
    """A status reader trying ``paths`` in order (a REST answer and the SDK's model
    keep the status at different depths)."""

    def read(job: Any) -> Any:
        for path in paths:
            value = read_field(job, path)
            if value is not MISSING:
                return value
        raise LookupError(f"the job has none of the fields {', '.join(map(repr, paths))}")

    read.__name__ = f"first of {', '.join(paths)}"
    return read


def _present(*paths: str) -> Callable[[Any], Any]:
    """A failure reader: the fields of ``paths`` that are set, as one mapping (or the
    one value when only one is set); ``None`` when none is."""

    def read(job: Any) -> Any:
        found = {p.rsplit(".", 1)[-1]: v for p in paths if (v := _get(job, p)) is not None}
        if len(found) > 1:
            return found
        return next(iter(found.values()), None)

    return read


def _index(body: Any, key: str, id_key: str) -> dict[str, Any]:
    entries = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(entries, list):
        raise TypeError(f"a batch answer must be an object with a {key!r} list")
    out: dict[str, Any] = {}
    for entry in entries:
        job_id = read_field(entry, id_key, None) if isinstance(entry, Mapping) else None
        if isinstance(job_id, int) and not isinstance(job_id, bool):
            job_id = str(job_id)
        if not isinstance(job_id, str):
            raise TypeError(f"every entry of a batch answer's {key!r} needs an {id_key!r}")
        out[job_id] = entry
    return out


def _constant(status: str) -> Callable[[Any], str]:
    def read(job: Any) -> str:
        return status

    read.__name__ = f"always {status!r}"
    return read


# --- Google long-running operations --------------------------------------------------


def _google_status(operation: Any) -> str:
    # google-api-core 2.44.0, google/api_core/operation.py:120-150 and 190-196: not
    # done -> running; `response` set -> result; `error` set -> exception, and
    # error.code == 1 (code_pb2.CANCELLED) is cancelled(); done with neither ->
    # GoogleAPICallError("Unexpected state: ...had neither response nor error set.").
    if not _get(operation, "done"):
        return "RUNNING"
    error = _get(operation, "error")
    if error is not None:
        return "CANCELLED" if _get(error, "code") == 1 else "FAILED"
    if _get(operation, "response") is not None:
        return "SUCCEEDED"
    raise LookupError(
        "the operation is done with neither 'response' nor 'error' set, an unexpected "
        "state (google-api-core raises GoogleAPICallError for it)"
    )


def _google_jobs(body: Any) -> Mapping[str, Any]:
    # ListOperations: {"operations": [{"name": ...}, ...], "nextPageToken": ...}
    return _index(body, "operations", "name")


# --- IBM Qiskit Runtime ----------------------------------------------------------------

_QISKIT_MAX_TIME: Final = "Cancelled - Ran too long"


def _qiskit_state(job: Any) -> Any:
    state = _get(job, "state")
    return state if state is not None else job


def _qiskit_status(job: Any) -> Any:
    # qiskit-ibm-runtime 0.51.0, qiskit_ibm_runtime/runtime_job_v2.py:530-539 reads
    # state.reasonCode (or reason_code); :544-558 maps CANCELLED with reasonCode 1305
    # to ERROR, and :345-348 raises RuntimeJobMaxTimeoutError for it.
    state = _qiskit_state(job)
    status = _get(state, "status")
    if status is None:
        status = _get(job, "status")
    if status is None:
        raise LookupError("the job has neither 'state.status' nor 'status'")
    code = _get(state, "reasonCode") or _get(state, "reason_code")
    if isinstance(status, str) and status.upper() == "CANCELLED" and code == 1305:
        return _QISKIT_MAX_TIME
    return status


def _qiskit_failure(job: Any) -> Any:
    # runtime_job_v2.py:535-538: the SDK's reason is "Error code {code}; {reason}".
    state = _qiskit_state(job)
    reason = _get(state, "reason")
    code = _get(state, "reasonCode") or _get(state, "reason_code")
    if code == 1305:
        reason = f"ran longer than the maximum execution time and was cancelled: {reason}"
    return f"Error code {code}; {reason}" if code else reason


# --- GitHub Actions --------------------------------------------------------------------


def _github_status(run: Any) -> Any:
    # A run's `status` until it is `completed`, then its `conclusion`.
    status = _get(run, "status")
    if status == "completed":
        conclusion = _get(run, "conclusion")
        return conclusion if conclusion is not None else status
    if status is None:
        raise LookupError("the workflow run has no 'status' field")
    return status


def _github_failure(run: Any) -> Any:
    return {k: _get(run, k) for k in ("conclusion", "html_url") if _get(run, k) is not None}


def _flower_jobs(body: Any) -> Mapping[str, Any]:
    # Flower's GET /api/tasks answers {task_id: task_info, ...} (flower/api/tasks.py).
    if not isinstance(body, Mapping) or not all(isinstance(v, Mapping) for v in body.values()):
        raise TypeError("a Flower task list must be an object of task id -> task info")
    return dict(body)


# --- Databricks job runs -----------------------------------------------------------------


def _databricks_status(run: Any) -> Any:
    # databricks-sdk 0.167.0, databricks/sdk/service/jobs.py:7827-7841 (RunState):
    # life_cycle_state always; result_state "only available for terminal lifecycle
    # states". A TERMINATED run's meaning is its result_state; TERMINATED without one
    # is read as TERMINATED, a status no vocabulary lists, so the wait goes on.
    life = _text(_get(run, "state.life_cycle_state"))
    if life is None:
        raise LookupError("the run has no 'state.life_cycle_state' field")
    if life == "TERMINATED":
        result = _text(_get(run, "state.result_state"))
        return life if result is None else result
    return life


def _databricks_jobs(body: Any) -> Mapping[str, Any]:
    # GET /api/2.2/jobs/runs/list answers {"runs": [{"run_id": 1, ...}], ...}.
    return _index(body, "runs", "run_id")


# --- Kubernetes Jobs -----------------------------------------------------------------------

# kubernetes 37.0.3, kubernetes/client/models/v1_job_condition.py:112 ("Type of job
# condition, Complete or Failed"), v1_job_status.py:109 (`active`: "zero for finished
# jobs"); Kubernetes' batch/v1 JobConditionType also has Suspended (a suspended Job
# waits to be resumed) and FailureTarget / SuccessCriteriaMet, which only precede
# Failed / Complete. A Job is never canceled: it is deleted (then the URL answers 404).
_KUBERNETES_FINAL: Final = ("Failed", "Complete")


def _kubernetes_conditions(job: Any) -> dict[str, Any]:
    conditions = _get(job, "status.conditions") or ()
    true = {}
    for condition in conditions if isinstance(conditions, list | tuple) else ():
        if str(_get(condition, "status")) == "True":
            true[str(_get(condition, "type"))] = condition
    return true


def _kubernetes_status(job: Any) -> str:
    true = _kubernetes_conditions(job)
    for kind in _KUBERNETES_FINAL:
        if kind in true:
            return kind
    if "Suspended" in true:
        return "Suspended"
    return "Running" if _get(job, "status.active") else "Pending"


def _kubernetes_failure(job: Any) -> Any:
    failed = _kubernetes_conditions(job).get("Failed")
    if failed is None:
        return None
    reason, message = _get(failed, "reason"), _get(failed, "message")
    return ": ".join(str(part) for part in (reason, message) if part) or None


# --- Dagster runs ---------------------------------------------------------------------------


def _dagster_status(job: Any) -> Any:
    # The Python client's get_run_status() returns the DagsterRunStatus itself; the
    # GraphQL answer is {"data": {"runOrError": {"__typename": "Run", "status": ...}}}
    # or a RunNotFoundError / PythonError with a message.
    if isinstance(job, str | enum.Enum):
        return job
    run = _get(job, "data.runOrError")
    if run is None:
        run = job
    status = _get(run, "status")
    if status is None:
        kind = _get(run, "__typename") or "the answer"
        message = _get(run, "message")
        raise LookupError(f"{kind} has no 'status'" + (f": {message}" if message else ""))
    return status


# --- the vocabularies ------------------------------------------------------------------------

# botocore 1.44.8, botocore/data/braket/2019-09-01/service-2.json.gz, decompressed
# :1658-1668 (QuantumTaskStatus).
_BRAKET = Statuses(
    pending={"CREATED", "QUEUED", "RUNNING", "CANCELLING"},
    succeeded={"COMPLETED"},
    failed={"FAILED"},
    canceled={"CANCELLED"},
)

# qiskit-ibm-runtime 0.51.0, qiskit_ibm_runtime/runtime_job_v2.py:53 (JobStatus),
# :61-67 (API_TO_JOB_STATUS, matched after .upper() at :553).
_QISKIT = Statuses(
    pending={"Queued", "Running", "Initializing", "Validating"},
    succeeded={"Completed", "Done"},
    failed={"Failed", "Error"},
    canceled={"Cancelled"},
    case_sensitive=False,
)

# Celery 5.7.0, celery/states.py:144-147 (READY_STATES, UNREADY_STATES,
# PROPAGATE_STATES); IGNORED (:142) is in none of them and stays unknown.
_CELERY = Statuses(
    pending={"PENDING", "RECEIVED", "STARTED", "REJECTED", "RETRY"},
    succeeded={"SUCCESS"},
    failed={"FAILURE"},
    canceled={"REVOKED"},
)

# azure-core 1.41.0, azure/core/polling/base_polling.py:86-88 (_FINISHED, _FAILED,
# _SUCCEEDED, compared with str(status).lower() at :155-170: anything else is in
# progress); :981-982 raises OperationFailed for Failed *and* Canceled. The pending
# names are the Azure REST guidelines' and ARM's provisioning states.
_AZURE = Statuses(
    pending={
        "NotStarted",
        "Running",
        "InProgress",
        "Accepted",
        "Creating",
        "Updating",
        "Deleting",
        "Provisioning",
    },
    succeeded={"Succeeded"},
    failed={"Failed"},
    canceled={"Canceled"},
    case_sensitive=False,
)
# azure/core/pipeline/policies/_utils.py:79-96: Retry-After, then retry-after-ms, then
# x-ms-retry-after-ms (both in milliseconds).
_AZURE_RETRY_AFTER: Final = (
    ("retry-after", 1.0),
    ("retry-after-ms", 0.001),
    ("x-ms-retry-after-ms", 0.001),
)

_PRESETS: Final[dict[str, Statuses]] = {"ionq": Statuses(), "braket": _BRAKET, "qiskit": _QISKIT}


def vocabulary(name: str) -> Statuses:
    """The vocabulary the API ``name`` (``"braket"``, ``"qiskit"``, ``"ionq"``) spells:
    its profile's, less the statuses the profile's reader derives (Qiskit's
    ``Cancelled - Ran too long``). What ``Statuses.braket()`` and ``qiskit()`` return.

    Raises:
        KeyError: For another name.
    """
    return _PRESETS[name]


def ionq_predicted_seconds(job: Any) -> float | None:
    """Seconds until IonQ predicts ``job`` completes: ``(predicted_wait_time_ms +
    predicted_execution_duration_ms) / 1000``, a missing or invalid field counting 0;
    ``None`` when neither field is a finite number >= 0 or the sum is 0."""
    total = 0.0
    found = False
    for name in ("predicted_wait_time_ms", "predicted_execution_duration_ms"):
        value = finite(read_field(job, name, None))
        if value is not None and value >= 0:
            total += value
            found = True
    return total / 1000.0 if found and 0 < total < math.inf else None


BUILT_IN: Final[dict[str, ApiProfile]] = {
    p.name: p
    for p in (
        ApiProfile(
            name="ionq",
            # ionq-core 0.2.0, ionq_core/models/job_status.py:7 (JobStatus) and
            # ionq_core/polling.py:50 (_TERMINAL); "running" is the legacy name.
            # Endpoints: ionq_core/api/jobs/get_job.py, get_jobs.py (repeated ids=),
            # cancel_job.py (PUT .../status/cancel); the key as "apiKey <key>".
            statuses=_PRESETS["ionq"],
            jobs_of=lambda body: _index(body, "jobs", "id"),
            url="/jobs/{id}",
            batch_url="/jobs{?ids*}",
            cancel_url="/jobs/{id}/status/cancel",
            cancel_method="PUT",
            auth_scheme="apiKey",
            predicted_seconds=ionq_predicted_seconds,
            source="ionq-core 0.2.0: ionq_core/models/job_status.py:7",
        ),
        ApiProfile(
            name="braket",
            # GetQuantumTask's failureReason (:1145 GetQuantumTaskResponse);
            # SearchQuantumTasks answers {"quantumTasks": [{"quantumTaskArn": ...}]}.
            statuses=_BRAKET,
            failure_of=field_reader("failureReason", default=None),
            jobs_of=lambda body: _index(body, "quantumTasks", "quantumTaskArn"),
            source="botocore 1.44.8: data/braket/2019-09-01/service-2.json :1658 QuantumTaskStatus",
        ),
        ApiProfile(
            name="qiskit",
            # :556 (Cancelled + reasonCode 1305 -> ERROR). Enum members of
            # qiskit.providers.JobStatus (DONE, ERROR, ...) read by name.
            statuses=_QISKIT.replace(failed={"Failed", "Error", _QISKIT_MAX_TIME}),
            status_of=_qiskit_status,
            failure_of=_qiskit_failure,
            source="qiskit-ibm-runtime 0.51.0: qiskit_ibm_runtime/runtime_job_v2.py:53-67, 544-558",
        ),
        ApiProfile(
            name="azure",
            # Status monitor (Operation-Location / Azure-AsyncOperation) polling:
            # base_polling.py:433-453 reads body["status"] (an empty body there is
            # BadResponse; only the *initial* empty 202 is in progress, :416-423).
            statuses=_AZURE,
            failure_of=field_reader("error", default=None),
            raise_on_cancel=True,
            retry_after_headers=_AZURE_RETRY_AFTER,
            source="azure-core 1.41.0: azure/core/polling/base_polling.py:86-88, 433-453",
        ),
        ApiProfile(
            name="azure-location",
            # Location polling: base_polling.py:518-535, "InProgress" if the status
            # code is 202 else "Succeeded"; other codes fail (:202-214).
            statuses=_AZURE,
            status_of=_constant("Succeeded"),
            raise_on_cancel=True,
            pending_http=frozenset({202}),
            empty_body="job",
            retry_after_headers=_AZURE_RETRY_AFTER,
            source="azure-core 1.41.0: azure/core/polling/base_polling.py:518-535",
        ),
        ApiProfile(
            name="google-lro",
            statuses=Statuses(
                pending={"RUNNING"},
                succeeded={"SUCCEEDED"},
                failed={"FAILED"},
                canceled={"CANCELLED"},
            ),
            status_of=_google_status,
            failure_of=field_reader("error", default=None),
            jobs_of=_google_jobs,
            source="google-api-core 2.44.0: google/api_core/operation.py:120-150, 190-196",
        ),
        ApiProfile(
            name="celery",
            # celery.result.AsyncResult: .state, and .result holds the exception.
            statuses=_CELERY,
            status_of=field_reader("state"),
            failure_of=field_reader("result", default=None),
            source="celery 5.7.0: celery/states.py:144-147",
        ),
        ApiProfile(
            name="celery-flower",
            # flower 2.2.0, flower/api/tasks.py:643-703: GET /api/task/info/{id}
            # answers the task's "state" and "exception", and 404 "Unknown task"
            # until Flower's event state has seen the task.
            statuses=_CELERY,
            status_of=field_reader("state"),
            failure_of=field_reader("exception", default=None),
            pending_http=frozenset({404}),
            jobs_of=_flower_jobs,
            source="celery 5.7.0: celery/states.py:144-147; flower 2.2.0: flower/api/tasks.py:700",
        ),
        ApiProfile(
            name="github-actions",
            # octokit/octokit.net Octokit/Models/Response/WorkflowRunStatus.cs (status)
            # and WorkflowRunConclusion.cs (conclusion); "pending" is a check-run status.
            # A completed run without a conclusion yet keeps waiting.
            statuses=Statuses(
                pending={"requested", "queued", "in_progress", "waiting", "pending", "completed"},
                succeeded={"success", "neutral", "skipped"},
                failed={"failure", "timed_out", "action_required", "startup_failure", "stale"},
                canceled={"cancelled"},
            ),
            status_of=_github_status,
            failure_of=_github_failure,
            jobs_of=lambda body: _index(body, "workflow_runs", "id"),
            source="octokit.net: Octokit/Models/Response/WorkflowRun{Status,Conclusion}.cs",
        ),
        ApiProfile(
            name="aws-batch",
            # botocore 1.44.8, data/batch/2016-08-10/service-2.json.gz, decompressed
            # :4289-4300 (JobStatus); JobDetail (:4028) has statusReason; a canceled or
            # terminated job ends FAILED. DescribeJobs (:2268) answers {"jobs": [...]}.
            statuses=Statuses(
                pending={"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"},
                succeeded={"SUCCEEDED"},
                failed={"FAILED"},
                canceled=frozenset(),
            ),
            failure_of=field_reader("statusReason", default=None),
            jobs_of=lambda body: _index(body, "jobs", "jobId"),
            source="botocore 1.44.8: data/batch/2016-08-10/service-2.json :4289 JobStatus",
        ),
        ApiProfile(
            name="sagemaker-training",
            # botocore 1.44.8, data/sagemaker/2017-07-24/service-2.json.gz, decompressed
            # :51040-51050 (TrainingJobStatus); waiters-2.json:209-233
            # (TrainingJobCompletedOrStopped: Completed and Stopped end the wait,
            # Failed fails). Stopped (by StopTrainingJob) and Deleting are cancels.
            statuses=Statuses(
                pending={"InProgress", "Stopping"},
                succeeded={"Completed"},
                failed={"Failed"},
                canceled={"Stopped", "Deleting"},
            ),
            status_of=field_reader("TrainingJobStatus"),
            failure_of=field_reader("FailureReason", default=None),
            jobs_of=lambda body: _index(body, "TrainingJobSummaries", "TrainingJobName"),
            source="botocore 1.44.8: data/sagemaker/2017-07-24/service-2.json :51040",
        ),
        ApiProfile(
            name="ray-jobs",
            # ray 2.60.0, ray/dashboard/modules/job/common.py:41-66 (JobStatus;
            # is_terminal(): STOPPED, SUCCEEDED, FAILED); :106 JobInfo.message, set at
            # every stage ("Job is currently running.") and the reason once FAILED.
            # GET /api/jobs/{submission_id}; an unknown id is a text/plain 404.
            statuses=Statuses(
                pending={"PENDING", "RUNNING"},
                succeeded={"SUCCEEDED"},
                failed={"FAILED"},
                canceled={"STOPPED"},
            ),
            failure_of=field_reader("message", default=None),
            source="ray 2.60.0: ray/dashboard/modules/job/common.py:41 JobStatus",
        ),
        ApiProfile(
            name="prefect",
            # prefect 3.9.1, prefect/client/schemas/objects.py:89-100 (StateType),
            # :103 (TERMINAL_STATES: COMPLETED, CANCELLED, FAILED, CRASHED). A flow run's
            # state.type (state.name varies within a type: Pending/Submitting,
            # Scheduled/Late); CRASHED is a failure, CANCELLING and PAUSED wait.
            statuses=Statuses(
                pending={"SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"},
                succeeded={"COMPLETED"},
                failed={"FAILED", "CRASHED"},
                canceled={"CANCELLED"},
            ),
            status_of=field_reader("state.type"),
            failure_of=field_reader("state.message", default=None),
            source="prefect 3.9.1: prefect/client/schemas/objects.py:89 StateType",
        ),
        ApiProfile(
            name="mlflow",
            # mlflow 3.18.0, mlflow/entities/run_status.py:4-15 (RunStatus,
            # _TERMINATED_STATUSES: FINISHED, FAILED, KILLED). The REST answer keeps
            # the status at run.info.status, the client's Run at info.status; a run
            # carries no failure reason.
            statuses=Statuses(
                pending={"SCHEDULED", "RUNNING"},
                succeeded={"FINISHED"},
                failed={"FAILED"},
                canceled={"KILLED"},
            ),
            status_of=_first("run.info.status", "info.status"),
            source="mlflow 3.18.0: mlflow/entities/run_status.py:4 RunStatus",
        ),
        ApiProfile(
            name="databricks-runs",
            # databricks-sdk 0.167.0, databricks/sdk/service/jobs.py:7411-7438
            # (RunLifeCycleState), :7798-7823 (RunResultState); its own waiter
            # (:11843-11866) stops at TERMINATED or SKIPPED and fails on INTERNAL_ERROR.
            # A skipped, excluded or disabled run did not run: canceled.
            statuses=Statuses(
                pending={
                    "QUEUED",
                    "PENDING",
                    "RUNNING",
                    "TERMINATING",
                    "BLOCKED",
                    "WAITING_FOR_RETRY",
                },
                succeeded={"SUCCESS", "SUCCESS_WITH_FAILURES"},
                failed={"FAILED", "TIMEDOUT", "INTERNAL_ERROR", "UPSTREAM_FAILED"},
                canceled={
                    "CANCELED",
                    "UPSTREAM_CANCELED",
                    "SKIPPED",
                    "EXCLUDED",
                    "DISABLED",
                    "MAXIMUM_CONCURRENT_RUNS_REACHED",
                },
            ),
            status_of=_databricks_status,
            failure_of=field_reader("state.state_message", default=None),
            jobs_of=_databricks_jobs,
            source="databricks-sdk 0.167.0: databricks/sdk/service/jobs.py:7411, 7798",
        ),
        ApiProfile(
            name="kubernetes-job",
            statuses=Statuses(
                pending={"Pending", "Running", "Suspended"},
                succeeded={"Complete"},
                failed={"Failed"},
                canceled=frozenset(),
            ),
            status_of=_kubernetes_status,
            failure_of=_kubernetes_failure,
            jobs_of=lambda body: _index(body, "items", "metadata.name"),
            source="kubernetes 37.0.3: kubernetes/client/models/v1_job_condition.py:112",
        ),
        ApiProfile(
            name="airflow-dag-run",
            # apache-airflow-core 3.3.2, airflow/utils/state.py:97-109 (DagRunState),
            # the same values as apache-airflow-client 3.3.2's
            # airflow_client/client/models/dag_run_state.py:21. A DAG run carries no
            # failure reason (its task instances do).
            statuses=Statuses(
                pending={"queued", "running"},
                succeeded={"success"},
                failed={"failed"},
                canceled=frozenset(),
            ),
            status_of=field_reader("state"),
            jobs_of=lambda body: _index(body, "dag_runs", "dag_run_id"),
            source="apache-airflow-core 3.3.2: airflow/utils/state.py:97 DagRunState",
        ),
        ApiProfile(
            name="dagster-run",
            # dagster 1.13.29, dagster/_core/storage/dagster_run.py:55-89
            # (DagsterRunStatus), :118 (FINISHED_STATUSES: SUCCESS, FAILURE, CANCELED);
            # MANAGED runs are in no list there and never finish from Dagster's view.
            statuses=Statuses(
                pending={
                    "QUEUED",
                    "NOT_STARTED",
                    "MANAGED",
                    "STARTING",
                    "STARTED",
                    "SUSPENDED",
                    "CANCELING",
                },
                succeeded={"SUCCESS"},
                failed={"FAILURE"},
                canceled={"CANCELED"},
            ),
            status_of=_dagster_status,
            source="dagster 1.13.29: dagster/_core/storage/dagster_run.py:55 DagsterRunStatus",
        ),
        ApiProfile(
            name="argo-workflows",
            # argo-workflows 6.7.18 (the Python client),
            # argo_workflows/model/io_argoproj_workflow_v1alpha1_workflow_status.py:206:
            # phase "" (unknown, not picked up yet), Pending or Running, then Succeeded,
            # Failed or Error. A stopped or terminated workflow ends Failed with its
            # reason in status.message (hera 7.1.0's WorkflowStatus also names
            # "Terminated", which Argo's WorkflowPhase never is).
            statuses=Statuses(
                pending={"", "Pending", "Running"},
                succeeded={"Succeeded"},
                failed={"Failed", "Error"},
                canceled=frozenset(),
            ),
            status_of=field_reader("status.phase", default=""),
            failure_of=field_reader("status.message", default=None),
            jobs_of=lambda body: _index(body, "items", "metadata.name"),
            source="argo-workflows 6.7.18: io_argoproj_workflow_v1alpha1_workflow_status.py:206",
        ),
        ApiProfile(
            name="aws-step-functions",
            # botocore 1.44.18, data/stepfunctions/2016-11-23/service-2.json.gz,
            # decompressed :1745 (ExecutionStatus); DescribeExecutionOutput (:1153) has
            # error and cause. PENDING_REDRIVE: a redrive will run the execution again.
            statuses=Statuses(
                pending={"RUNNING", "PENDING_REDRIVE"},
                succeeded={"SUCCEEDED"},
                failed={"FAILED", "TIMED_OUT"},
                canceled={"ABORTED"},
            ),
            failure_of=_present("error", "cause"),
            jobs_of=lambda body: _index(body, "executions", "executionArn"),
            source="botocore 1.44.18: data/stepfunctions/2016-11-23/service-2.json :1745",
        ),
        ApiProfile(
            name="vertex-ai",
            # google-cloud-aiplatform 2.7.0, google/cloud/aiplatform_v1/types/job_state.py:31
            # (JobState); google/cloud/aiplatform/jobs.py:70-99: the SDK stops waiting on
            # SUCCEEDED, FAILED, CANCELLED and PAUSED and raises for FAILED and
            # CANCELLED (so the profile raises on a cancel). PAUSED ("stopped, can be
            # resumed") is a cancel here, EXPIRED a failure, PARTIALLY_SUCCEEDED a
            # success (neither ends the SDK's wait); UNSPECIFIED stays unknown.
            statuses=Statuses(
                pending={
                    "JOB_STATE_QUEUED",
                    "JOB_STATE_PENDING",
                    "JOB_STATE_RUNNING",
                    "JOB_STATE_CANCELLING",
                    "JOB_STATE_UPDATING",
                },
                succeeded={"JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"},
                failed={"JOB_STATE_FAILED", "JOB_STATE_EXPIRED"},
                canceled={"JOB_STATE_CANCELLED", "JOB_STATE_PAUSED"},
            ),
            status_of=field_reader("state"),
            failure_of=field_reader("error", default=None),
            raise_on_cancel=True,
            source="google-cloud-aiplatform 2.7.0: aiplatform_v1/types/job_state.py:31 JobState",
        ),
    )
}
