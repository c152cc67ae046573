"""API profiles: what a wait needs to know about one real job API, in one object.

Theory of operation
===================

The waiter only knows a vocabulary (:class:`~jobwait.Statuses`) and two readers
(``status_of``, ``failure_of``). Every real job API also has its own habits: where
the status lives (Qiskit's ``state.status``), statuses that must be *derived*
(Google's long-running operations have none: ``done`` plus ``response`` or
``error``), where the failure's reason is, HTTP answers that mean "not there yet"
(Flower's 404 for a task it has not heard of, Azure's 202 in Location polling), its
own Retry-After headers (``retry-after-ms``), and the shape of its batch answer.

An :class:`ApiProfile` bundles all of that. It never does IO: it hands readers and
options to the waiter (:meth:`ApiProfile.options`, usable with every adapter and
fleet), and reads one HTTP answer (:meth:`ApiProfile.read_response`, which the httpx
adapter and the CLI call in place of :func:`jobwait._plumbing.read_response`).

Each built-in profile's states cite the project's own source or service definition
(file and line, with the version read), and ``tests/test_profiles*.py`` check them
against recorded answers shaped like the real API's and, where the SDK installs, against
the SDK's own state list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._http import ResponseError, parse_retry_after, read_response
from ._numbers import describe, finite, usable_seconds
from ._options import JobOptions
from ._protocol import Fetched
from ._statuses import Statuses, default_failure_of, default_status_of, field_reader

__all__ = ["ApiProfile"]

EmptyBody = Literal["error", "pending", "job"]
JobsOf = Callable[[Any], Mapping[str, Any]]

#: The Retry-After headers most APIs send: the standard one, in seconds or an HTTP-date.
_STANDARD_RETRY_AFTER: Final = (("retry-after", 1.0),)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiProfile:
    """Everything a wait needs to know about one job API.

    Get a built-in one with :meth:`named` (``ApiProfile.named("azure")``; see
    :meth:`names`), change one with :meth:`replace`, or build your own. Use it with
    any adapter or fleet through :meth:`options`, and with the httpx adapter and the
    CLI (``--api NAME``) directly, which also apply its HTTP rules.

    Args:
        name: A short name (``"google-lro"``), used in messages.
        statuses: The API's vocabulary, with its case rule and what an unlisted
            status does (``on_unknown``).
        status_of: Reads the raw status from a job; may derive one (default: the
            ``status`` key or attribute).
        failure_of: Reads the failure's reason from a failed job (default: the
            ``failure`` key or attribute, ``None`` when absent).
        raise_on_cancel: Whether a canceled job ends the wait with
            ``JobCanceledError`` (the API's SDK treats a cancel as a failure), or is
            returned (default).
        pending_http: HTTP statuses that mean "not there yet" or "still running"
            whatever the body (Flower's 404, Azure Location polling's 202): such an
            answer is a pending poll, retried on the schedule until the deadline and
            never counted against ``max_fetch_errors``.
        empty_body: What a 2xx answer with an empty body means: ``"error"``
            (default: not a job, retried as an unreadable body), ``"pending"`` (still
            running) or ``"job"`` (finished, and the job is ``{}``).
        retry_after_headers: ``(header, seconds per unit)`` pairs, read in order;
            the first usable one is the server's hint. Default: ``Retry-After`` in
            seconds or as an HTTP-date.
        jobs_of: Reads the API's batch answer as ``{id: job}`` (``None`` when the API
            has no batch read), for the fleet drivers' ``jobs_of=``.
        source: Where the vocabulary comes from (file and line, version), for docs.

    Raises:
        TypeError: If ``name`` is not a non-empty string, ``statuses`` is not a
            :class:`~jobwait.Statuses` or a reader is not callable.
        ValueError: For an ``empty_body`` other than the three values, an HTTP
            status outside 100-599 or a header scale that is not positive.
    """

    name: str
    statuses: Statuses
    status_of: Callable[[Any], Any] = default_status_of
    failure_of: Callable[[Any], Any] = default_failure_of
    raise_on_cancel: bool = False
    pending_http: frozenset[int] = frozenset()
    empty_body: EmptyBody = "error"
    retry_after_headers: tuple[tuple[str, float], ...] = _STANDARD_RETRY_AFTER
    jobs_of: JobsOf | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"ApiProfile(name={self.name!r}) must be a non-empty string")
        if not isinstance(self.statuses, Statuses):
            raise TypeError(
                f"ApiProfile(statuses=...) must be a jobwait.Statuses, got {self.statuses!r}"
            )
        readers = (self.status_of, self.failure_of, self.jobs_of or callable)
        if not all(callable(r) for r in readers):
            raise TypeError("ApiProfile(status_of=, failure_of=, jobs_of=) must be callables")
        codes = frozenset(self.pending_http)
        bad = [
            c for c in codes if isinstance(c, bool) or not isinstance(c, int) or not 100 <= c <= 599
        ]
        if bad:
            raise ValueError(
                f"ApiProfile(pending_http=...) holds {bad[0]!r}, not an HTTP status 100-599"
            )
        object.__setattr__(self, "pending_http", codes)
        if self.empty_body not in ("error", "pending", "job"):
            raise ValueError(
                f"ApiProfile(empty_body={self.empty_body!r}) must be 'error', 'pending' or 'job'"
            )
        headers = []
        for header, scale in self.retry_after_headers:
            number = finite(scale)
            if number is None or number <= 0:
                raise ValueError(
                    f"ApiProfile(retry_after_headers=...) scales must be positive finite "
                    f"numbers; {header!r} has {describe(scale)}"
                )
            headers.append((str(header).lower(), number))
        object.__setattr__(self, "retry_after_headers", tuple(headers))

    # --- the built-in profiles ----------------------------------------------------

    @staticmethod
    def names() -> list[str]:
        """The names :meth:`named` knows, sorted."""
        return sorted(_PROFILES)

    @staticmethod
    def named(name: str) -> ApiProfile:
        """The built-in profile called ``name`` (see :meth:`names`).

        Raises:
            ValueError: For an unknown name; the message lists the known ones.
        """
        profile = _PROFILES.get(name) if isinstance(name, str) else None
        if profile is None:
            raise ValueError(
                f"no API profile named {name!r}; the built-in ones are "
                f"{', '.join(ApiProfile.names())} (or build an ApiProfile of your own)"
            )
        return profile

    def replace(self, **changes: Any) -> ApiProfile:
        """A copy with some fields changed, e.g. ``profile.replace(pending_http={404})``.

        Raises:
            TypeError, ValueError: As the constructor.
        """
        return dataclasses.replace(self, **changes)

    # --- what a wait uses ---------------------------------------------------------

    def options(self, **explicit: Any) -> JobOptions:
        """The waiter options this profile sets, for any adapter or fleet::

            sync.wait(fetch, **ApiProfile.named("google-lro").options(timeout=600))

        Returns ``statuses``, ``status_of``, ``failure_of`` and ``raise_on_cancel``
        from the profile; keywords given here are added and win over the profile's.
        The HTTP rules are not waiter options: the httpx adapter and the CLI take
        the profile itself (``api=``) to apply them.
        """
        options: dict[str, Any] = {
            "statuses": self.statuses,
            "status_of": self.status_of,
            "failure_of": self.failure_of,
            "raise_on_cancel": self.raise_on_cancel,
        }
        options.update(explicit)
        return options  # type: ignore[return-value]

    def retry_after(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str], *, wall_now: float
    ) -> float | None:
        """The server's hint in seconds from this API's Retry-After headers (the
        first usable one in ``retry_after_headers`` order), or ``None``."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        found = {name.lower(): value for name, value in items}
        for header, scale in self.retry_after_headers:
            value = found.get(header)
            if value is None:
                continue
            if scale == 1.0:
                seconds = parse_retry_after(value, wall_now=wall_now)
            else:
                number = parse_retry_after(value, wall_now=wall_now)
                # A millisecond header is a number, never an HTTP-date.
                seconds = None if number is None or not _is_number(value) else number * scale
                seconds = usable_seconds(seconds)  # a product may overflow to inf
            if seconds is not None:
                return seconds
        return None

    def read_response(
        self,
        status_code: int,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        *,
        wall_now: float,
        retry_invalid_body: bool = True,
        job_id: str | None = None,
    ) -> Fetched:
        """Read one HTTP answer to a poll with this API's rules, then
        :func:`jobwait._plumbing.read_response`'s.

        A status in ``pending_http``, or a 2xx with an empty body when
        ``empty_body="pending"``, raises a retryable :class:`~jobwait._plumbing.ResponseError`
        with ``pending = True``: the waiter counts it as a pending poll. A 2xx with an
        empty body is the job ``{}`` when ``empty_body="job"``. The hint comes from
        ``retry_after_headers``.

        Raises:
            ResponseError: A non-2xx status (see :func:`jobwait._plumbing.read_response`), or
                a "not there yet" answer (``pending`` is ``True``).
            JobStatusError: A 2xx body that is not a JSON object.
        """
        hint = self.retry_after(headers, wall_now=wall_now)
        empty = 200 <= status_code < 300 and not body.strip()
        if status_code in self.pending_http or (empty and self.empty_body == "pending"):
            error = ResponseError(
                f"HTTP {status_code}, which {self.name} answers while the job is not there "
                "yet or still running",
                status_code=status_code,
                retry_after=hint,
                retryable=True,
            )
            error.pending = True  # type: ignore[attr-defined]
            raise error
        if empty and self.empty_body == "job":
            return Fetched({}, retry_after=hint)
        try:
            fetched = read_response(
                status_code,
                headers,
                body,
                wall_now=wall_now,
                retry_invalid_body=retry_invalid_body,
                job_id=job_id,
            )
        except ResponseError as exc:
            if exc.retryable:
                exc.retry_after = hint
            raise
        return Fetched(fetched.job, retry_after=hint)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- readers the built-in profiles derive statuses with -----------------------------


def _get(job: Any, name: str) -> Any:
    if isinstance(job, Mapping):
        return job.get(name)
    return getattr(job, name, None)


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


def _index(body: Any, key: str, id_key: str) -> dict[str, Any]:
    entries = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(entries, list):
        raise TypeError(f"a batch answer must be an object with a {key!r} list")
    out: dict[str, Any] = {}
    for entry in entries:
        job_id = entry.get(id_key) if isinstance(entry, Mapping) else None
        if isinstance(job_id, int) and not isinstance(job_id, bool):
            job_id = str(job_id)
        if not isinstance(job_id, str):
            raise TypeError(f"every entry of a batch answer's {key!r} needs an {id_key!r}")
        out[job_id] = entry
    return out


def _flower_jobs(body: Any) -> Mapping[str, Any]:
    # Flower's GET /api/tasks answers {task_id: task_info, ...} (flower/api/tasks.py).
    if not isinstance(body, Mapping) or not all(isinstance(v, Mapping) for v in body.values()):
        raise TypeError("a Flower task list must be an object of task id -> task info")
    return dict(body)


def _constant(status: str) -> Callable[[Any], str]:
    def read(job: Any) -> str:
        return status

    read.__name__ = f"always {status!r}"
    return read


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

_PROFILES: Final[dict[str, ApiProfile]] = {
    p.name: p
    for p in (
        ApiProfile(
            name="ionq",
            # ionq-core 0.2.0, ionq_core/models/job_status.py:7 (JobStatus) and
            # ionq_core/polling.py:50 (_TERMINAL); "running" is the legacy name.
            statuses=Statuses.ionq(),
            jobs_of=lambda body: _index(body, "jobs", "id"),
            source="ionq-core 0.2.0: ionq_core/models/job_status.py:7",
        ),
        ApiProfile(
            name="braket",
            # botocore 1.44.8, botocore/data/braket/2019-09-01/service-2.json.gz,
            # decompressed :1658-1668 (QuantumTaskStatus); GetQuantumTask's
            # failureReason (:1145 GetQuantumTaskResponse); SearchQuantumTasks
            # answers {"quantumTasks": [{"quantumTaskArn": ...}]}.
            statuses=Statuses.braket(),
            failure_of=field_reader("failureReason", default=None),
            jobs_of=lambda body: _index(body, "quantumTasks", "quantumTaskArn"),
            source="botocore 1.44.8: data/braket/2019-09-01/service-2.json :1658 QuantumTaskStatus",
        ),
        ApiProfile(
            name="qiskit",
            # qiskit-ibm-runtime 0.51.0, qiskit_ibm_runtime/runtime_job_v2.py:53
            # (JobStatus), :61-67 (API_TO_JOB_STATUS, matched after .upper() at :553),
            # :556 (Cancelled + reasonCode 1305 -> ERROR). Enum members of
            # qiskit.providers.JobStatus (DONE, ERROR, ...) read by name.
            statuses=Statuses.qiskit().replace(failed={"Failed", "Error", _QISKIT_MAX_TIME}),
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
    )
}


def api_profile(api: ApiProfile | str | None) -> ApiProfile | None:
    """The profile an adapter's ``api=`` names: an :class:`ApiProfile`, a built-in
    profile's name, or ``None`` (no profile).

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
        TypeError: For anything else than a profile, a string or ``None``.
    """
    if api is None or isinstance(api, ApiProfile):
        return api
    if isinstance(api, str):
        return ApiProfile.named(api)
    raise TypeError(
        f"api= takes an ApiProfile or a built-in profile's name, not {type(api).__name__}"
    )


def with_api(api: ApiProfile | str | None, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with ``api``'s waiter options under them (explicit keywords win):
    the one merge every adapter's ``api=`` uses. ``options`` unchanged without ``api``.

    Raises:
        ValueError, TypeError: As :func:`api_profile`.
    """
    profile = api_profile(api)
    return options if profile is None else profile.options(**options)
