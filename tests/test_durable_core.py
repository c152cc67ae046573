"""The engine-neutral durable core (``jobwait._durable``), without Redis or Celery:
outcome records, source descriptions, fleet state; and hostile stored data turned into
the documented errors."""

from __future__ import annotations

import contextlib
import json
import pickle
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwait import (
    Backoff,
    BatchFailed,
    BatchObserved,
    Finished,
    FleetFailedError,
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobFleet,
    JobStatusError,
    JobTimeoutError,
    JobWaitError,
    PollBatch,
    Statuses,
)
from jobwait._durable import (
    Credential,
    SourceSpec,
    fleet_options_from_json,
    fleet_options_to_json,
    fleet_snapshot,
    load_json,
    new_fleet_snapshot,
    outcome_of,
    outcome_record,
    pack,
    record_json,
    restore_fleet,
    unpack,
)
from jobwait._plumbing import RemoteError, error_from_json, error_to_json


def _through_json(outcome: Any, polls: int | None = 3) -> tuple[str, Any]:
    kind, record = outcome_record(outcome, polls=polls)
    return kind, outcome_of(record_json(record))


# --- outcome records ----------------------------------------------------------------------


class AdapterTimeoutError(JobTimeoutError):
    """A subclass an adapter defines (as the IonQ adapter does): restored exactly."""


class OddFetchError(JobFetchError):
    """A subclass whose constructor takes other arguments: restored as its base."""

    def __init__(self, code: int) -> None:
        super().__init__(f"odd {code}")


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [
        (JobFailedError("f", job_id="a", failure={"code": "X"}, polls=2), "JobFailedError"),
        (JobCanceledError("c", job_id="a", last_status="canceled"), "JobCanceledError"),
        (JobTimeoutError("t", job_id="a", timeout=3.5, elapsed=3.6), "JobTimeoutError"),
        (JobFetchError("x", status_code=503, request_id="r", body_excerpt="b"), "JobFetchError"),
        (JobStatusError("s", job_id="a", last_job={"status": None}), "JobStatusError"),
        (AdapterTimeoutError("late", job_id="a", timeout=1.0), "AdapterTimeoutError"),
    ],
)
def test_durable_error_records_round_trip_with_class_context_and_cause(
    outcome: JobWaitError, kind: str
) -> None:
    outcome.__cause__ = ConnectionResetError("peer reset")
    outcome.add_note("a note")
    got_kind, back = _through_json(outcome)
    assert got_kind == kind
    assert type(back) is type(outcome)
    assert str(back) == str(outcome)
    assert back._context() == outcome._context()
    assert back._extra() == outcome._extra()
    assert back.__notes__ == ["a note"]
    assert isinstance(back.__cause__, RemoteError)
    assert (back.__cause__.type_name, back.__cause__.message) == (
        "builtins.ConnectionResetError",
        "peer reset",
    )
    pickle.loads(pickle.dumps(back))


def test_durable_job_records_keep_status_and_polls_and_drop_what_is_not_json() -> None:
    job = {"id": "j", "status": "completed", "data": [1, 2.5, None]}
    kind, record = outcome_record(job, polls=4)
    assert (kind, record) == ("completed", {"job": job, "status": "completed", "polls": 4})
    assert outcome_of(record) == job
    kind, record = outcome_record({"status": "failed", "when": object()})
    assert (kind, record["job"]) == ("failed", None)
    assert outcome_record({"id": 1}, status_of=lambda job: 1 / 0)[0] == "done"


def test_durable_an_error_of_a_class_not_loaded_here_is_its_nearest_core_class() -> None:
    described = error_to_json(AdapterTimeoutError("late", timeout=2.0))
    described["class"] = "elsewhere.AdapterTimeoutError"
    back = error_from_json(described)
    assert type(back) is JobTimeoutError
    assert back.timeout == 2.0
    odd = OddFetchError(7)
    back = error_from_json(error_to_json(odd))
    assert type(back) is JobFetchError  # OddFetchError(reason, **context) cannot be called
    assert back.reason == "odd 7"
    fleet = FleetFailedError("stop", results={"a": 1}, unfinished=("b",), job_id="a")
    back = error_from_json(json.loads(json.dumps(error_to_json(fleet))))
    assert (type(back), back.job_id, back.results) == (FleetFailedError, "a", {})


def test_durable_the_error_form_is_the_one_fleet_snapshots_use() -> None:
    fleet = JobFleet(timeout=10.0)
    fleet.add(["a"], now=0.0)
    fleet.next_action(0.0)
    fleet.handle(BatchFailed(ids=("a",), error=OSError("gone"), retryable=False, now=0.1))
    stored = fleet.snapshot()["results"]["a"]["error"]
    assert set(stored) == {"type", "class", "reason", "context", "notes", "cause"}
    assert stored["cause"] == {"type": "builtins.OSError", "message": "gone"}
    finished = fleet.next_action(0.1)
    assert isinstance(finished, Finished)
    assert outcome_record(finished.outcome)[1]["error"] == stored


def test_durable_error_descriptions_of_older_versions_still_read() -> None:
    old = {  # jobwait.JobFleet/1 snapshots before this version: the cause as a string
        "type": "JobFetchError",
        "reason": "r",
        "context": {"job_id": "a", "polls": 1, "elapsed": 0.5, "status_code": 500},
        "notes": ["n"],
        "cause": "JobMissingError: not in the answer",
    }
    back = error_from_json(old)
    assert (type(back), back.status_code, back.__notes__) == (JobFetchError, 500, ["n"])
    assert (back.__cause__.type_name, back.__cause__.message) == (  # type: ignore[union-attr]
        "JobMissingError",
        "not in the answer",
    )


HOSTILE_RECORDS = {
    "nested 100000 deep": "[" * 100_000,
    "nested object 5000 deep": '{"job": ' + '{"a": ' * 5000 + "1" + "}" * 5001,
    "job nested past 64": json.dumps({"job": json.loads("[" * 70 + "]" * 70)}),
    "NaN": '{"job": NaN}',
    "Infinity elapsed": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"elapsed": Infinity}}}',
    "1e400 elapsed": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"elapsed": 1e400}}}',
    "huge int elapsed": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"elapsed": 1' + "0" * 400 + "}}}",
    "huge int polls": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"polls": 1' + "0" * 30 + "}}}",
    "5000-digit int": '{"job": 1' + "0" * 5000 + "}",
    "negative polls": '{"job": 1, "polls": -1}',
    "polls a bool": '{"job": 1, "polls": true}',
    "status not a string": '{"job": 1, "status": 5}',
    "elapsed a string": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"elapsed": "x"}}}',
    "job id a list": '{"error": {"type": "JobWaitError", "reason": "r", '
    '"context": {"job_id": []}}}',
    "unknown core class": '{"error": {"type": "KeyError", "reason": "r", "context": {}}}',
    "type not a string": '{"error": {"type": [], "reason": "r", "context": {}}}',
    "reason missing": '{"error": {"type": "JobWaitError", "context": {}}}',
    "notes not strings": '{"error": {"type": "JobWaitError", "reason": "r", "context": {}, '
    '"notes": [1]}}',
    "cause a number": '{"error": {"type": "JobWaitError", "reason": "r", "context": {}, '
    '"cause": 5}}',
    "legacy context a list": '{"error": "JobWaitError", "reason": "r", "context": []}',
    "neither job nor error": '{"neither": 1}',
    "not UTF-8": b"\xff\xfe{}",
    "empty": "",
}


@pytest.mark.parametrize("text", HOSTILE_RECORDS.values(), ids=HOSTILE_RECORDS.keys())
def test_durable_hostile_records_raise_value_error_only(text: str | bytes) -> None:
    with pytest.raises(ValueError, match="stored outcome") as caught:
        outcome_of(text)
    assert len(str(caught.value)) <= 500


_KEYS = ["job", "error", "type", "reason", "context", "polls", "elapsed", "cause", "notes"]
_KEYS += ["class", "status", "job_id", "timeout", "failure", "last_job"]
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(_JSONISH)
def test_durable_any_json_value_is_an_outcome_or_a_typed_error(value: Any) -> None:
    # Whatever the shape, reading it raises ValueError or TypeError, or returns.
    with contextlib.suppress(ValueError, TypeError):
        outcome_of(value if isinstance(value, dict) else {"error": value})


def test_durable_load_json_refuses_what_jobwait_never_writes() -> None:
    assert load_json(b'{"a": [1, 2.5]}', "x") == {"a": [1, 2.5]}
    for text in ("[" * 100_000, "NaN", "-Infinity", "1" * 5000, "{", b"\xff"):
        with pytest.raises(ValueError, match=r"^x is"):
            load_json(text, "x")


# --- source descriptions ------------------------------------------------------------------


def test_durable_source_spec_round_trips_as_json_without_a_secret() -> None:
    spec = SourceSpec(
        api="azure",
        base_url="https://api.example.com/v1",
        url="/jobs/{id}",
        batch_url="/jobs{?id*}",
        cancel_url="/jobs/{id}:cancel",
        cancel_method="POST",
        credentials=(
            Credential(env="ACME_TOKEN", scheme="Bearer"),
            Credential(header="X-Api-Key", conn_id="acme_default"),
        ),
        timeout=12.0,
    )
    data = json.loads(json.dumps(spec.to_json()))
    assert SourceSpec.from_json(data) == spec
    assert data["credentials"] == [
        {"header": "Authorization", "scheme": "Bearer", "env": "ACME_TOKEN"},
        {"header": "X-Api-Key", "scheme": "", "conn_id": "acme_default"},
    ]
    assert spec.batch
    assert spec.profile is not None
    assert spec.profile.name == "azure"
    assert spec.waiter_options() == {
        "statuses": spec.profile.statuses,
        "raise_on_cancel": True,
    }
    assert spec.status_of is spec.profile.status_of
    assert SourceSpec(url="https://x/{id}").waiter_options() == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "url= .* or batch_url="),
        ({"url": "/jobs"}, r"must contain \{id\}"),
        ({"url": "/jobs/{id}/{other}"}, r"must contain \{id\}"),
        ({"batch_url": "/jobs/{id}"}, "exactly one"),
        ({"batch_url": "/jobs?a={ids}&b={ids}"}, "exactly one"),
        ({"url": "/jobs/{id"}, "unbalanced"),
        ({"url": "/{id}", "api": "nope"}, "no API profile named 'nope'"),
        ({"url": "/{id}", "cancel_method": "GET"}, "cancel_method"),
        ({"url": "/{id}", "timeout": 0}, "timeout"),
        ({"url": "/{id}", "timeout": float("nan")}, "timeout"),
        ({"url": "/{id}", "max_body_size": -1}, "max_body_size"),
        ({"url": "/{id}", "base_url_env": "not a name"}, "base_url_env"),
        (
            {"url": "/{id}", "credentials": (Credential(env="A"), Credential(env="B"))},
            "one header twice",
        ),
    ],
)
def test_durable_source_spec_refuses_what_it_cannot_run(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SourceSpec(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"env": "A", "conn_id": "b"},
        {"env": "1A"},
        {"env": "A", "header": "Bad Header"},
        {"env": "A", "scheme": "two words"},
        {"conn_id": "x" * 300},
        {"conn_id": "has space"},
    ],
)
def test_durable_credentials_name_exactly_one_place(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Credential"):
        Credential(**fields)


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"url": "/{id}", "password": "x"},
        {"url": "/{id}", "credentials": {"env": "A"}},
        {"url": "/{id}", "credentials": [{"env": "A", "secret": "s"}]},
        {"url": "/{id}", "credentials": ["A"]},
        {"url": 5},
    ],
)
def test_durable_source_spec_from_json_raises_value_error(data: Any) -> None:
    with pytest.raises(ValueError, match="not a jobwait source description"):
        SourceSpec.from_json(data)


# --- fleet state --------------------------------------------------------------------------


def test_durable_fleet_state_keeps_deadlines_on_one_wall_clock() -> None:
    options = {"timeout": 60.0, "backoff": Backoff(initial=1.0), "statuses": Statuses.braket()}
    blob = pack(new_fleet_snapshot(options, ["a", "b"], now=1000.0))
    assert not blob.startswith(b"\x80")  # never pickle
    fleet = restore_fleet(unpack(blob), now=1030.0)
    assert isinstance(fleet.next_action(1030.0), PollBatch)  # 30 s left
    assert sorted(fleet.unfinished()) == ["a", "b"]
    # Past the deadline while stored: each makes the poll it was owed, its last (as a
    # lone wait that ran late), and once handed out (the engine records them) they are
    # not saved again.
    fleet = restore_fleet(unpack(blob), now=1061.0)
    last = fleet.next_action(1061.0)
    assert isinstance(last, PollBatch)
    pending = {job_id: {"status": "RUNNING"} for job_id in last.ids}
    fleet.handle(BatchObserved(ids=last.ids, jobs=pending, now=1061.0))
    ended = [fleet.next_action(1061.0) for _ in range(2)]
    assert all(isinstance(a, Finished) for a in ended)
    assert all(isinstance(a.outcome, JobTimeoutError) for a in ended)  # type: ignore[union-attr]
    assert not fleet.waiting
    assert fleet_snapshot(fleet)["results"] == {}
    stored = json.loads(json.dumps(fleet_options_to_json(options)))
    assert fleet_options_from_json(stored) == options


def test_durable_fleet_options_refuse_what_cannot_be_stored() -> None:
    with pytest.raises(TypeError, match="status_of= is a callable"):
        fleet_options_to_json({"status_of": lambda job: "x"})
    with pytest.raises(TypeError, match="backoff must be"):
        fleet_options_to_json({"backoff": 1.0})
    with pytest.raises(ValueError, match="not plain JSON"):
        fleet_options_to_json({"timeout": float("inf")})
    with pytest.raises(ValueError, match="malformed"):
        fleet_options_from_json({"backoff": {"initial": "x", "nope": 1}})
    with pytest.raises(ValueError, match="must be an object"):
        fleet_options_from_json([])


def test_durable_unpack_refuses_bombs_and_foreign_blobs() -> None:
    bomb = zlib.compress(b"[" + b" " * 2_000_000 + b"]")
    with pytest.raises(ValueError, match="inflates past 1000000 bytes"):
        unpack(bomb, max_size=1_000_000)
    assert unpack(bomb, max_size=3_000_000) == []
    for blob, message in (
        (b"plain", "not zlib"),
        (zlib.compress(b"[" * 100_000), "nested too deeply"),
        (zlib.compress(b"{"), "not JSON"),
        ("text", "must be bytes"),
    ):
        with pytest.raises(ValueError, match=message):
            unpack(blob)  # type: ignore[arg-type]


def test_durable_restore_fleet_turns_huge_numbers_into_value_error() -> None:
    snapshot = new_fleet_snapshot({"timeout": 5.0}, ["a"], now=0.0)
    snapshot["now"] = 10**400
    with pytest.raises(ValueError):
        restore_fleet(snapshot, now=1.0)
    snapshot = new_fleet_snapshot({"timeout": 5.0}, ["a"], now=0.0)
    snapshot["jobs"][0]["due"] = 10**400
    with pytest.raises(ValueError):
        restore_fleet(snapshot, now=1.0)
