"""JobWaitOperator's own rules, on a real Airflow 3 operator class: what it accepts when
the DAG is parsed, how templated job ids are read back, how a connection becomes a base
URL, and how outcomes become the task's result or its failure (``fail_on``,
``max_failures``, the message naming the jobs). The end-to-end runs are in
test_airflow_dag.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from jobwait import (
    Backoff,
    JobFailedError,
    JobFetchError,
    JobTimeoutError,
    Statuses,
)
from jobwait._durable import outcome_record
from jobwait.adapters.airflow import (
    EVENT_FORMAT,
    JobsFailedError,
    JobWaitOperator,
    connection_url,
)
from jobwait.adapters.airflow._common import job_ids_from


@dataclass
class Connection:
    host: str | None = None
    schema: str | None = None
    port: int | None = None
    password: str | None = None


@dataclass
class TaskInstance:
    """Records what the operator pushes (the end-to-end test reads Airflow's own)."""

    pushed: dict[str, Any] = field(default_factory=dict)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _op(**options: Any) -> JobWaitOperator:
    options.setdefault("api", "ionq")
    options.setdefault("conn_id", "ionq_default")
    return JobWaitOperator(task_id="wait", job_ids=["x"], **options)


def _record(outcome: Any) -> dict[str, Any]:
    return outcome_record(outcome, polls=3)[1]


def _event(outcomes: dict[str, Any], unfinished: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "format": EVENT_FORMAT,
        "outcomes": {job_id: _record(outcome) for job_id, outcome in outcomes.items()},
        "unfinished": list(unfinished),
        "stopped_by": None,
    }


def _done(job_id: str, status: str = "completed") -> dict[str, Any]:
    return {"id": job_id, "status": status}


MIXED: dict[str, Any] = {
    "ok": _done("ok"),
    "bad": JobFailedError(
        "job failed",
        job_id="bad",
        last_status="failed",
        failure={"code": "QuantumComputerError", "message": "calibration lost"},
    ),
    "gone": _done("gone", "canceled"),
    "late": JobTimeoutError("too slow", job_id="late", last_status="started", timeout=60.0),
    "lost": JobFetchError("HTTP 503 five times", job_id="lost", status_code=503),
}


# --- the job ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "ids"),
    [
        (["a", "b", "a"], ["a", "b"]),
        (("a", 7), ["a", "7"]),
        ("['a', 'b']", ["a", "b"]),  # an XCom pulled by a template, as its text
        ('["a", "b"]', ["a", "b"]),
        ("  job-1 ", ["job-1"]),
        ([], []),
    ],
)
def test_airflow_job_ids_are_read_back_from_what_templates_render(
    given: object, ids: list[str]
) -> None:
    assert job_ids_from(given) == ids


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ("[a, b", ValueError, "not a list literal"),
        ({"a": 1}, TypeError, "list of job ids"),
        ([None], TypeError, "must be a string"),
        ([True], TypeError, "must be a string"),
        (["a", ""], ValueError, "empty id"),
        (3, TypeError, "list of job ids"),
    ],
)
def test_airflow_job_ids_refuse_what_is_not_a_list_of_ids(
    given: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        job_ids_from(given)


# --- connections --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conn", "url"),
    [
        (Connection(host="https://api.ionq.co/v0.4"), "https://api.ionq.co/v0.4"),
        (Connection(host="api.example.com"), "https://api.example.com"),
        (Connection(host="127.0.0.1", schema="http", port=8080), "http://127.0.0.1:8080"),
        (Connection(host="http://127.0.0.1/v1", port=9000), "http://127.0.0.1:9000/v1"),
        (Connection(host="http://127.0.0.1:1234/v1", port=9000), "http://127.0.0.1:1234/v1"),
        (Connection(host=""), None),
        (Connection(), None),
    ],
)
def test_airflow_connection_url_is_built_as_http_hook_builds_it(
    conn: Connection, url: str | None
) -> None:
    assert connection_url(conn) == url


def test_airflow_connection_url_refuses_a_bad_port() -> None:
    with pytest.raises(ValueError, match="port"):
        connection_url(Connection(host="h", port=70000))


# --- what the operator accepts when the DAG is parsed -----------------------------------


def test_airflow_operator_describes_ionq_from_a_connection() -> None:
    spec = _op().spec
    assert spec.api == "ionq"
    assert spec.batch_url == "/jobs{?ids*}"
    assert spec.base_url_conn_id == "ionq_default"
    (credential,) = spec.credentials
    assert (credential.header, credential.scheme, credential.conn_id) == (
        "Authorization",
        "apiKey",
        "ionq_default",
    )


def test_airflow_operator_describes_any_api_by_its_urls() -> None:
    spec = _op(
        api="azure",
        url="/operations/{id}",
        base_url="https://management.example",
        conn_id="azure_mgmt",
        headers={"Accept": "application/json"},
    ).spec
    assert spec.url == "/operations/{id}"
    assert spec.headers == (("Accept", "application/json"),)
    assert spec.credentials[0].scheme == "Bearer"
    assert not spec.batch


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"api": None}, ValueError, "needs a job API"),
        ({"options": {"max_bach": 3}}, TypeError, "max_bach"),
        ({"options": {"timeout": 3}}, TypeError, "timeout= itself"),
        ({"timeout": -1}, ValueError, "seconds >= 0"),
        ({"backoff": 2.0}, TypeError, "Backoff"),
        ({"fail_on": ["failed", "exploded"]}, ValueError, "exploded"),
        ({"max_failures": -1}, ValueError, "max_failures"),
        ({"api": "azure", "url": "/ops/{id}", "max_batch": 5}, TypeError, "max_batch must be 1"),
    ],
)
def test_airflow_operator_refuses_bad_options_when_the_dag_is_parsed(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _op(**options)


# --- outcomes into the task's result --------------------------------------------------------


def test_airflow_operator_returns_the_records_when_every_job_succeeded() -> None:
    ti = TaskInstance()
    event = _event({"a": _done("a"), "b": _done("b")})
    assert _op().execute_complete({"ti": ti}, event) == event["outcomes"]
    assert ti.pushed == {}


def test_airflow_operator_fails_naming_every_job_that_did_not_succeed() -> None:
    ti = TaskInstance()
    event = _event(MIXED, unfinished=("left",))
    with pytest.raises(JobsFailedError) as caught:
        _op().execute_complete({"ti": ti}, event)
    error = caught.value
    assert error.reason == (
        "5 of 6 job(s) did not succeed: failed: 'bad' (QuantumComputerError); canceled: "
        "'gone'; timed out: 'late'; could not be read: 'lost' (HTTP 503); left unfinished: "
        "'left'. Every outcome is in XCom 'outcomes'; fail_on= and max_failures= choose "
        "what fails the task"
    )
    assert (error.job_id, error.last_status) == ("bad", "failed")
    assert error.verdicts == {
        "ok": "succeeded",
        "bad": "failed",
        "gone": "canceled",
        "late": "timed_out",
        "lost": "error",
        "left": "unfinished",
    }
    assert ti.pushed == {"outcomes": event["outcomes"]}


def test_airflow_operator_fail_on_and_max_failures_choose_what_fails_the_task() -> None:
    event = _event(MIXED)
    tolerant = _op(fail_on=["timed_out", "error"], max_failures=2)
    assert tolerant.execute_complete({"ti": TaskInstance()}, event) == event["outcomes"]
    strict = _op(fail_on="canceled")
    with pytest.raises(JobsFailedError, match=r"1 of 5 job\(s\) did not succeed: canceled: 'gone'"):
        strict.execute_complete({"ti": TaskInstance()}, event)


def test_airflow_operator_names_ten_jobs_of_a_kind_and_counts_the_rest() -> None:
    event = _event({f"j{i:02}": _done(f"j{i:02}", "canceled") for i in range(25)})
    with pytest.raises(JobsFailedError) as caught:
        _op().execute_complete({"ti": TaskInstance()}, event)
    assert "'j08', 'j09' and 15 more." in caught.value.reason
    assert "'j10'" not in caught.value.reason


def test_airflow_operator_reads_statuses_with_the_vocabulary_it_waited_with() -> None:
    vocabulary = Statuses(
        pending={"RUNNING"}, succeeded={"DONE"}, failed={"BROKEN"}, canceled={"KILLED"}
    )
    op = _op(api=None, url="/jobs/{id}", options={"statuses": vocabulary})
    event = _event({"a": _done("a", "DONE"), "b": _done("b", "KILLED")})
    with pytest.raises(JobsFailedError, match=r"1 of 2 job\(s\) did not succeed: canceled: 'b'\."):
        op.execute_complete({"ti": TaskInstance()}, event)


def test_airflow_operator_refuses_an_event_it_did_not_write() -> None:
    with pytest.raises(ValueError, match="not a jobwait event"):
        _op().execute_complete({"ti": TaskInstance()}, {"outcomes": {}})


def test_airflow_operator_keeps_its_options_for_the_trigger() -> None:
    op = _op(backoff=Backoff(initial=2.0), max_batch=50, max_polls_per_second=4, fail_fast=True)
    assert op.options == {
        "backoff": Backoff(initial=2.0),
        "max_batch": 50,
        "max_polls_per_second": 4,
        "fail_fast": True,
    }
