"""``JobWaitOperator``: a task that waits for many jobs of one API, deferred to the
triggerer (``JobWaitTrigger``) or in the worker with the sync adapter, and turns their
outcomes into XCom and into the task's success or failure."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from airflow.sdk import BaseHook, BaseOperator

from jobwait import (
    Backoff,
    FleetFailedError,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
    JobWaitError,
    PollReport,
    Statuses,
)
from jobwait._durable import Credential, SourceSpec, outcome_of, outcome_record
from jobwait._plumbing import JOB_DEFAULTS, Read, preview

from .. import sync as _sync
from .._durable import build_source, ionq_spec
from ..ionq import DEFAULT_BASE_URL
from ._common import (
    DEFER_GRACE,
    EVENT_FORMAT,
    FAIL_ON,
    VERDICTS,
    checked_fail_on,
    conn_ids,
    event_payload,
    job_ids_from,
    per_job_lines,
    resolvers,
    verdict,
)
from ._trigger import JobWaitTrigger

# How many ids of each kind a failure message names before "and N more".
_NAMED: Final = 10


class JobsFailedError(JobWaitError):
    """Jobs ended in a way the operator counts as a failure of its task (``fail_on``),
    more of them than ``max_failures`` allows.

    The context attributes (``job_id``, ``last_status``, ...) are those of the first
    such job. The outcomes are also pushed to XCom under the key ``"outcomes"``.

    Attributes:
        verdicts: Each job id mapped to how its outcome counts (``"succeeded"``,
            ``"failed"``, ``"canceled"``, ``"timed_out"``, ``"error"``,
            ``"unfinished"``).
        outcomes: Each finished job id mapped to its outcome record (JSON).
    """

    def __init__(
        self,
        reason: str,
        *,
        verdicts: Mapping[str, str] | None = None,
        outcomes: Mapping[str, Any] | None = None,
        **context: Any,
    ) -> None:
        self.verdicts = dict(verdicts or {})
        self.outcomes = dict(outcomes or {})
        super().__init__(reason, **context)

    def _extra(self) -> dict[str, Any]:
        return {"verdicts": self.verdicts, "outcomes": self.outcomes}


class JobWaitOperator(BaseOperator):
    """Wait for many jobs of one job API, then succeed, or fail naming the jobs that
    did not succeed.

    With ``deferrable=True`` (default) the task defers to :class:`JobWaitTrigger`: the
    worker slot is freed and the triggerer waits, reading every job through one fleet
    (batch reads, one request budget, Retry-After, bounded requests). With
    ``deferrable=False`` it waits in the worker with the sync adapter, with the same
    options, outcomes and failure rules.

    The source is described by ``api`` / ``url`` / ``batch_url`` / ``base_url`` /
    ``conn_id`` (or given whole as ``source``): with ``api="ionq"`` and no URL, IonQ
    v0.4 (batch reads, the key as ``Authorization: apiKey <key>``). Credentials come
    from the Airflow connection ``conn_id`` (its password; its host, when set, is the
    base URL), read in the triggerer or worker, never written into the trigger's
    arguments, the task's log or XCom.

    The task returns (XCom ``return_value``) every job's outcome record, JSON:
    ``{job_id: {"job": {...}, "status": "completed", "polls": 4}}`` or
    ``{job_id: {"error": {"type": "JobTimeoutError", ...}, "polls": 9}}``
    (``outcome_of`` rebuilds the job or its error). When more than
    ``max_failures`` jobs end in a verdict of ``fail_on``, it pushes the records under
    the XCom key ``"outcomes"`` and fails with :class:`JobsFailedError`, whose message
    names those jobs by verdict.

    Args:
        job_ids: The jobs; templated. A list, an upstream task's ``.output`` (XComArg),
            or a template such as ``"{{ ti.xcom_pull(task_ids='submit') }}"`` (its
            rendered text is read back as a list literal).
        api: An :class:`~jobwait.ApiProfile` name (``"ionq"``, ``"azure"``, ...) or
            ``"package.module:NAME"``: the API's vocabulary and quirks.
        url: Template of a single read, ``{id}`` the job id (``"/jobs/{id}"``).
        batch_url: Template of a batch read (``"/jobs?ids={ids}"``, ``"/jobs{?ids*}"``).
        base_url: Root of relative templates (the connection's host wins when set).
        conn_id: The Airflow connection holding the API key in its password and,
            optionally, the base URL in its host (scheme, host, port).
        auth_header: The header the key is sent in (default ``Authorization``).
        auth_scheme: Written before the key: default ``"apiKey"`` for IonQ, else
            ``"Bearer"``; ``""`` sends the key alone.
        headers: Non-secret headers sent with every request.
        source: A whole :class:`SourceSpec` instead of the above.
        timeout: Seconds each job may take from when the task starts waiting
            (default 3600); ``None`` waits without a deadline. The deadline is a
            wall-clock instant: time in the triggerer's queue or a triggerer restart
            counts.
        backoff: The poll schedule (:class:`~jobwait.Backoff`; default 1 s, x1.5, up to
            30 s).
        max_batch: Ids per batch read (default 100).
        max_polls_per_second: The request budget of the whole task (default none).
        fail_fast: Stop at the first job that ends in error (its outcome and the ones
            known so far are kept; the others are ``"unfinished"``).
        options: Any other :class:`~jobwait.JobFleet` option (``statuses``,
            ``raise_on_cancel``, ``max_fetch_errors``, ``batch_window``,
            ``max_concurrency``, ``use_predictions``, ...).
        fail_on: The verdicts that fail the task (default every one but
            ``"succeeded"``: ``"failed"``, ``"canceled"``, ``"timed_out"``,
            ``"error"``, ``"unfinished"``).
        max_failures: How many such jobs are tolerated (default 0).
        cancel_on_timeout: Cancel each job that times out (needs ``cancel_url``, which
            the IonQ source has).
        log_status_changes: Log each job's status changes in the task's log (default
            ``False``: a line when the wait starts and one with the counts when it
            ends; the per-job lines add about two thirds to the wait's CPU).
        deferrable: Wait in the triggerer (default) or in the worker.
        **kwargs: ``BaseOperator`` arguments (``task_id``, ``retries``, ...).

    Raises:
        ValueError, TypeError: An invalid source description or option, found when the
            DAG is parsed.
    """

    template_fields: Sequence[str] = ("job_ids",)

    def __init__(
        self,
        *,
        job_ids: Any,
        api: str | None = None,
        url: str | None = None,
        batch_url: str | None = None,
        base_url: str = "",
        conn_id: str | None = None,
        auth_header: str = "Authorization",
        auth_scheme: str | None = None,
        headers: Mapping[str, str] | None = None,
        source: SourceSpec | None = None,
        timeout: float | None = 3600.0,
        backoff: Backoff | None = None,
        max_batch: int | None = None,
        max_polls_per_second: float | None = None,
        fail_fast: bool = False,
        options: Mapping[str, Any] | None = None,
        fail_on: Iterable[str] = FAIL_ON,
        max_failures: int = 0,
        cancel_on_timeout: bool = False,
        log_status_changes: bool = False,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_ids = job_ids
        self.spec = source or _spec(
            api, url, batch_url, base_url, conn_id, auth_header, auth_scheme, headers
        )
        chosen: dict[str, Any] = dict(options or {})
        for name, value in (
            ("backoff", backoff),
            ("max_batch", max_batch),
            ("max_polls_per_second", max_polls_per_second),
        ):
            if value is not None:
                chosen[name] = value
        if fail_fast:
            chosen["fail_fast"] = True
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0
        ):
            raise ValueError(f"timeout={preview(timeout, 40)} must be seconds >= 0, or None")
        if "timeout" in chosen:
            raise TypeError("pass timeout= itself, not in options")
        self.timeout = timeout
        self.options = chosen
        self.fail_on = checked_fail_on(fail_on)
        if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
            raise ValueError(f"max_failures={preview(max_failures, 40)} must be an integer >= 0")
        self.max_failures = max_failures
        self.cancel_on_timeout = cancel_on_timeout
        self.log_status_changes = log_status_changes
        self.deferrable = deferrable
        # Every option is checked now, when the DAG is parsed (one id stands in for the
        # templated ones).
        self._trigger(["-"], time.time())

    def _trigger(self, ids: list[str], started: float) -> JobWaitTrigger:
        return JobWaitTrigger(
            source=self.spec,
            job_ids=ids,
            options=self.options,
            started=started,
            deadline=None if self.timeout is None else started + self.timeout,
            cancel_on_timeout=self.cancel_on_timeout,
            log_status_changes=self.log_status_changes,
        )

    def execute(self, context: Any) -> Any:
        """Start waiting: defer to the triggerer, or wait here (``deferrable=False``)."""
        ids = job_ids_from(self.job_ids)
        if not ids:
            self.log.info("jobwait: no job ids: nothing to wait for")
            return {}
        trigger = self._trigger(ids, time.time())
        if not self.deferrable:
            return self._conclude(context, wait_in_worker(trigger))
        limit = None
        if trigger.deadline is not None:
            limit = timedelta(seconds=max(0.0, trigger.deadline - time.time()) + DEFER_GRACE)
        # defer() raises TaskDeferred; the task resumes in execute_complete.
        return self.defer(trigger=trigger, method_name="execute_complete", timeout=limit)

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        """Resume after the trigger fired: return the outcomes, or fail (see the class).

        Raises:
            JobsFailedError: More than ``max_failures`` jobs with a verdict in
                ``fail_on``.
            ValueError: An event this version did not write.
        """
        if not isinstance(event, Mapping) or event.get("format") != EVENT_FORMAT:
            raise ValueError(
                f"not a jobwait event ({EVENT_FORMAT}): {preview(event)}; was the trigger "
                "written by another jobwait version?"
            )
        return self._conclude(context, event)

    def _conclude(self, context: Any, event: Mapping[str, Any]) -> dict[str, Any]:
        records: dict[str, Any] = dict(event["outcomes"])
        statuses, status_of = self._reading()
        outcomes = {job_id: outcome_of(record) for job_id, record in records.items()}
        verdicts: dict[str, str] = {
            job_id: verdict(outcome, statuses, status_of) for job_id, outcome in outcomes.items()
        }
        for job_id in event.get("unfinished") or ():
            verdicts[job_id] = "unfinished"
        counts = dict.fromkeys(VERDICTS, 0)
        for kind in verdicts.values():
            counts[kind] += 1
        self.log.info(
            "jobwait: %d job(s): %s",
            len(verdicts),
            ", ".join(f"{n} {kind}" for kind, n in counts.items() if n),
        )
        failing = [job_id for job_id, kind in verdicts.items() if kind in self.fail_on]
        if len(failing) <= self.max_failures:
            return records
        context["ti"].xcom_push(key="outcomes", value=records)
        first = outcomes.get(failing[0])
        context_of = (
            {
                "job_id": first.job_id,
                "last_status": first.last_status,
                "last_job": first.last_job,
                "polls": first.polls,
                "elapsed": first.elapsed,
            }
            if isinstance(first, JobWaitError)
            else {"job_id": failing[0], "last_status": _status(records.get(failing[0]))}
        )
        raise JobsFailedError(
            _failure_message(verdicts, failing, self.max_failures, outcomes, self.spec.failure_of),
            verdicts=verdicts,
            outcomes=records,
            **context_of,
        )

    def _reading(self) -> tuple[Statuses, Any]:
        # The vocabulary the wait ran with: the options', over the profile's, over the
        # waiter's default.
        statuses = self._trigger(["-"], time.time()).fleet_options().get("statuses")
        if not isinstance(statuses, Statuses):
            statuses = JOB_DEFAULTS["statuses"]
        return statuses, self.spec.status_of


def _spec(
    api: str | None,
    url: str | None,
    batch_url: str | None,
    base_url: str,
    conn_id: str | None,
    auth_header: str,
    auth_scheme: str | None,
    headers: Mapping[str, str] | None,
) -> SourceSpec:
    if api == "ionq" and url is None and batch_url is None:
        spec = ionq_spec(
            api_key_env=None if conn_id is not None else "IONQ_API_KEY",
            conn_id=conn_id,
            base_url_conn_id=conn_id,
            base_url=base_url or DEFAULT_BASE_URL,
        )
        (key,) = spec.credentials
        credential = dataclasses.replace(
            key, header=auth_header, scheme=key.scheme if auth_scheme is None else auth_scheme
        )
        return dataclasses.replace(
            spec, credentials=(credential,), headers=tuple((headers or {}).items())
        )
    if url is None and batch_url is None:
        raise ValueError(
            "JobWaitOperator needs a job API: api='ionq', url='/jobs/{id}' (one job per "
            "request), batch_url='/jobs?ids={ids}' (many), or source=SourceSpec(...)"
        )
    credentials: tuple[Credential, ...] = ()
    if conn_id is not None:
        scheme = (
            auth_scheme if auth_scheme is not None else ("apiKey" if api == "ionq" else "Bearer")
        )
        credentials = (Credential(header=auth_header, scheme=scheme, conn_id=conn_id),)
    return SourceSpec(
        api=api,
        base_url=base_url,
        base_url_conn_id=conn_id,
        url=url,
        batch_url=batch_url,
        credentials=credentials,
        headers=tuple((headers or {}).items()),
    )


def _status(record: Any) -> str | None:
    status = record.get("status") if isinstance(record, Mapping) else None
    return status if isinstance(status, str) else None


_LABELS: Final = {
    "failed": "failed",
    "canceled": "canceled",
    "timed_out": "timed out",
    "error": "could not be read",
    "unfinished": "left unfinished",
    "succeeded": "succeeded",
}


def _failure_message(
    verdicts: Mapping[str, str],
    failing: list[str],
    max_failures: int,
    outcomes: Mapping[str, Any],
    failure_of: Any,
) -> str:
    groups: dict[str, list[str]] = {}
    for job_id in failing:
        groups.setdefault(verdicts[job_id], []).append(job_id)
    parts = []
    for kind in VERDICTS:
        ids = groups.get(kind)
        if not ids:
            continue
        named = ", ".join(
            _named(job_id, outcomes.get(job_id), failure_of) for job_id in ids[:_NAMED]
        )
        more = f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else ""
        parts.append(f"{_LABELS[kind]}: {named}{more}")
    allowed = f" (max_failures={max_failures})" if max_failures else ""
    return (
        f"{len(failing)} of {len(verdicts)} job(s) did not succeed{allowed}: "
        + "; ".join(parts)
        + ". Every outcome is in XCom 'outcomes'; fail_on= and max_failures= choose what "
        "fails the task"
    )


def _named(job_id: str, outcome: Any, failure_of: Any) -> str:
    # The id, and what went wrong in a few words: the failure's code, the HTTP status,
    # or the error's class.
    detail: Any = None
    if isinstance(outcome, JobFailedError):
        detail = outcome.failure
    elif isinstance(outcome, JobFetchError) and outcome.status_code is not None:
        detail = f"HTTP {outcome.status_code}"
    elif isinstance(outcome, JobWaitError):
        detail = None if isinstance(outcome, JobTimeoutError) else type(outcome).__name__
    elif outcome is not None:
        try:
            detail = failure_of(outcome)
        except Exception:  # noqa: BLE001 - a reader that raises only loses the detail
            detail = None
    if isinstance(detail, Mapping):
        detail = detail.get("code") or detail.get("message")
    text = preview(job_id, 80)
    if detail is None or detail == "":
        return text
    said = detail if isinstance(detail, str) else preview(detail)
    return f"{text} ({said[:60]})"


# --- the worker's wait (deferrable=False) ------------------------------------------------


def wait_in_worker(trigger: JobWaitTrigger) -> dict[str, Any]:
    """The trigger's wait, run in this process with the sync adapter: the same
    source, options and deadline, the same event payload. Connections are read with
    ``BaseHook.get_connection``."""
    spec = trigger.spec
    connections = {conn_id: BaseHook.get_connection(conn_id) for conn_id in conn_ids(spec)}
    resolve, base_url_of = resolvers(connections)
    source = build_source(spec, resolve=resolve, base_url_of=base_url_of)
    polls: dict[str, int] = {}

    def counted(report: PollReport) -> None:
        if report.job_id is not None:
            polls[report.job_id] = report.polls

    def read(job: Read) -> Any:
        return source.fetch_many(job.ids, time_left=job.time_left)  # type: ignore[call-arg]

    now = time.time()
    options = trigger.fleet_options()
    if trigger.deadline is not None:  # counted from now: the deadline is an instant
        options["timeout"] = max(0.0, trigger.deadline - now)
    unfinished: tuple[str, ...] = ()
    stopped_by = None
    try:
        with per_job_lines(trigger.log_status_changes):
            results = _sync.drive_fleet(
                read,
                trigger.job_ids,
                reads="batch" if source.batch else "single",
                is_retryable=source.is_retryable,
                retry_after_of=source.retry_after_of,
                on_status=None,
                on_poll=counted,
                cancel=source.cancel if trigger.cancel_on_timeout else None,
                wakeup=None,
                clock=time.monotonic,
                sleep=time.sleep,
                options=options,
            )
    except FleetFailedError as error:
        results, unfinished, stopped_by = error.results, error.unfinished, error.job_id
    finally:
        if source.close is not None:
            source.close()
    records = {
        job_id: outcome_record(outcome, status_of=source.status_of, polls=polls.get(job_id))[1]
        for job_id, outcome in results.items()
    }
    return event_payload(records, unfinished, stopped_by)
