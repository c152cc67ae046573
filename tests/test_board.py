"""JobBoard: the pure simulated job API, driven with explicit ``now`` values."""

from __future__ import annotations

import datetime
import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobwait import JobStatusError
from jobwait.http import ResponseError
from jobwait.testing import Fail, Fault, JobBoard, JobScriptError, Reply
from jobwait.testing._board import _iso, _percent_decode, _percent_encode

KEY = "s3cret-key"
AUTH = [("Authorization", f"apiKey {KEY}")]


def get(board: JobBoard, target: str, now: float, headers: Any = AUTH) -> Reply:
    return board.handle("GET", target, headers, b"", now=now)


def status_of(reply: Reply) -> object:
    assert reply.status_code == 200, reply
    return reply.json()["status"]


# -- progression -------------------------------------------------------------------------


def test_default_script_is_ready_one_second_then_started_one_second_then_completed() -> None:
    board = JobBoard()
    job = board.submit(now=100.0)
    assert job == "job-0001"
    seen = [board.status(job, now=t) for t in (100.0, 100.999, 101.0, 101.999, 102.0, 1e9)]
    assert seen == ["ready", "ready", "started", "started", "completed", "completed"]
    assert board.terminal_at(job) == 102.0


def test_time_scale_compresses_scripted_seconds() -> None:
    board = JobBoard(time_scale=6000.0)
    job = board.submit(now=0.0, durations={"submitted": 60.0, "ready": 60.0, "started": 600.0})
    assert board.status(job, now=0.0) == "submitted"
    assert board.status(job, now=0.01) == "ready"
    assert board.status(job, now=0.02) == "started"
    assert board.status(job, now=0.1199) == "started"
    assert board.status(job, now=0.12) == "completed"
    assert board.terminal_at(job) == pytest.approx(0.12)


def test_status_changes_exactly_at_terminal_at() -> None:
    board = JobBoard(time_scale=3.0)
    job = board.submit(now=0.1, durations={"submitted": 0.7, "ready": 0.3, "started": 1.1})
    end = board.terminal_at(job)
    assert board.status(job, now=end) == "completed"
    assert board.status(job, now=end - 1e-9) == "started"


def test_failed_outcome_carries_failure_and_default_code() -> None:
    board = JobBoard()
    job = board.submit(now=0.0, outcome="failed")
    body = get(board, f"/jobs/{job}", 5.0).json()
    assert body["status"] == "failed"
    assert body["failure"]["code"] == "SimulatedFailure"
    custom = board.submit(now=0.0, outcome="failed", failure={"code": "QuotaExhaustedError"})
    assert board.job(custom, now=9.0)["failure"] == {
        "code": "QuotaExhaustedError",
        "message": "the job failed (simulated)",
    }
    assert get(board, "/jobs/job-0001", 0.5).json()["failure"] is None


def test_job_json_has_ionq_shape_and_predictions_in_board_time() -> None:
    board = JobBoard(time_scale=10.0)
    job = board.submit(now=0.0, name="bell", durations={"ready": 20.0, "started": 5.0})
    pending = board.job(job, now=0.5)
    assert pending["name"] == "bell"
    assert pending["type"] == "ionq.circuit.v1"
    assert pending["predicted_wait_time_ms"] == 1500  # 20 s scripted / 10, minus 0.5 s
    assert pending["predicted_execution_duration_ms"] == 500
    running = board.job(job, now=2.25)
    assert running["status"] == "started"
    assert running["predicted_wait_time_ms"] == 0
    assert running["predicted_execution_duration_ms"] == 250
    done = board.job(job, now=3.0)
    assert done["predicted_wait_time_ms"] is None
    assert done["execution_duration_ms"] == 500
    assert done["completed_at"] == "2025-01-01T00:00:02.500Z"
    assert (
        board.job(board.submit(now=0.0, predicted=False), now=0.0)["predicted_wait_time_ms"] is None
    )


@given(st.floats(min_value=-1e9, max_value=1e10, allow_nan=False))
def test_iso_timestamps_match_datetime(seconds: float) -> None:
    epoch = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    total_ms = round((1_735_689_600 + seconds) * 1000) - 1_735_689_600_000
    expected = epoch + datetime.timedelta(milliseconds=total_ms)
    assert _iso(seconds) == expected.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{expected.microsecond // 1000:03d}Z"
    )


# -- ids, JSON scripts -------------------------------------------------------------------


def test_ids_are_kept_verbatim_and_generated_ids_skip_taken_ones() -> None:
    board = JobBoard()
    assert board.submit(now=0.0, id="job-0001") == "job-0001"
    weird = board.submit(now=0.0, id="a b/c?d%e,ü")
    assert board.submit(now=0.0) == "job-0002"
    assert board.job_ids() == ["job-0001", "a b/c?d%e,ü", "job-0002"]
    assert status_of(get(board, "/jobs/" + urllib.parse.quote(weird, safe=""), 1.0)) == "started"
    with pytest.raises(JobScriptError, match="already exists"):
        board.submit(now=0.0, id=weird)


def test_submit_json_accepts_a_full_script_and_ignores_ionq_submission_keys() -> None:
    board = JobBoard()
    body = {
        "id": "x",
        "name": "n",
        "durations": {"ready": 2},
        "outcome": "failed",
        "failure": {"code": "InternalError", "message": "boom"},
        "faults": [{"kind": "503", "poll": 1, "retry_after": "2"}],
        "predicted": False,
        "metadata": {"k": "v"},
        "type": "ionq.circuit.v1",
        "target": "simulator",
        "input": {"qubits": 2, "circuit": []},
        "shots": 100,
    }
    assert board.submit_json(body, now=0.0) == "x"
    first = get(board, "/jobs/x", 0.0)
    assert first.status_code == 503
    assert first.header("Retry-After") == "2"
    done = get(board, "/jobs/x", 4.0).json()
    assert done["failure"] == {"code": "InternalError", "message": "boom"}
    assert done["metadata"] == {"k": "v"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1], "must be a JSON object"),
        ({"duration": {}}, "unknown job script key"),
        ({"durations": {"running": 1}}, "unknown status 'running'"),
        ({"durations": {"ready": -1}}, "finite number >= 0"),
        ({"durations": {"ready": True}}, "finite number >= 0"),
        ({"outcome": "cancelled"}, "outcome must be one of"),
        ({"failure": {"code": "X"}}, "only allowed with outcome='failed'"),
        ({"outcome": "failed", "failure": {"code": 3}}, "failure\\['code'\\]"),
        ({"id": ""}, "non-empty string"),
        ({"id": 7}, "non-empty string"),
        ({"faults": {"kind": "429"}}, "faults must be a list"),
        ({"faults": [{"kind": "429"}]}, "exactly one of poll= or request="),
        ({"faults": [{"kind": "429", "request": 1}]}, "keyed by poll="),
        ({"faults": [{"kind": "teapot", "poll": 1}]}, "unknown fault kind 'teapot'"),
        ({"faults": [{"kind": 429, "poll": 1}]}, "must be a string"),
        ({"faults": [{"kind": "429", "poll": 1, "when": 2}]}, "unknown fault key"),
        ({"predicted": "yes"}, "predicted must be"),
        ({"name": 5}, "name must be"),
    ],
)
def test_submit_json_rejects_bad_scripts_with_a_clear_message(body: object, message: str) -> None:
    board = JobBoard()
    with pytest.raises(JobScriptError, match=message):
        board.submit_json(body, now=0.0)
    assert board.job_ids() == []


def test_post_jobs_creates_a_job_or_answers_400() -> None:
    board = JobBoard(api_key=KEY)
    created = board.handle("POST", "/jobs", AUTH, b'{"id": "p"}', now=0.0)
    assert created.status_code == 201
    assert created.json() == {"id": "p", "status": "ready"}
    for body in (b"{not json", b'{"outcome": "maybe"}', b"\xff"):
        bad = board.handle("POST", "/jobs", AUTH, body, now=0.0)
        assert bad.status_code == 400
        assert bad.json()["statusCode"] == 400
        assert bad.header("x-request-id")
    assert board.job_ids() == ["p"]


# -- faults: construction ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "418", "poll": 1}, "unknown fault kind '418'"),
        ({"kind": "429", "poll": 0}, "poll must be an int >= 1"),
        ({"kind": "429", "poll": 1, "request": 1}, "exactly one"),
        ({"kind": "429", "poll": 1, "count": 0}, "count must be"),
        ({"kind": "reset", "poll": 1, "retry_after": "1"}, "does not take retry_after"),
        ({"kind": "429", "poll": 1, "delay": 1.0}, "does not take delay"),
        ({"kind": "slow", "poll": 1, "delay": -1.0}, "delay must be"),
        ({"kind": "slow", "poll": 1, "delay": float("inf")}, "delay must be"),
        ({"kind": "html", "poll": 1, "status_code": 99}, "status_code must be"),
        ({"kind": "429", "poll": 1, "retry_after": "1\r\nx: y"}, "cannot be sent"),
        ({"kind": "unknown_status", "poll": 1, "status": "ready"}, "no job API uses"),
        ({"kind": "nonstring_status", "poll": 1, "status": "3"}, "must not be a str"),
        ({"kind": "regress", "poll": 1, "status": "queued"}, "must be one of"),
    ],
)
def test_fault_validation_names_the_problem(kwargs: dict[str, Any], message: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(JobScriptError, match=message):
        Fault(kind, **kwargs)


def test_fault_json_round_trip() -> None:
    for fault in (
        Fault("429", poll=2, count=3, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        Fault("slow", request=1, delay=2.5),
        Fault("html", poll=1, status_code=200),
        Fault("nonstring_status", poll=4, status=[1]),
    ):
        assert Fault.from_json(json.loads(json.dumps(fault.to_json()))) == fault


def test_board_wide_faults_must_be_keyed_by_request() -> None:
    with pytest.raises(JobScriptError, match="keyed by request="):
        JobBoard(faults=[Fault("500", poll=1)])
    with pytest.raises(JobScriptError, match="time_scale"):
        JobBoard(time_scale=0)


# -- faults: what each kind produces -------------------------------------------------------


def faulted(fault: Fault, *, now: float = 0.5) -> tuple[JobBoard, Reply]:
    """Submit one job with ``fault`` on poll 1 and return its first GET."""
    board = JobBoard()
    board.submit(now=0.0, id="j", faults=[fault])
    return board, get(board, "/jobs/j", now)


@pytest.mark.parametrize("retry_after", ["3", "1.5", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_429_passes_retry_after_through_verbatim(retry_after: str) -> None:
    _, reply = faulted(Fault("429", poll=1, retry_after=retry_after))
    assert reply.status_code == 429
    assert reply.header("retry-after") == retry_after
    assert reply.json() == {
        "error": "Too Many Requests",
        "message": "Rate limit exceeded",
        "statusCode": 429,
    }
    assert reply.header("x-request-id") == "req-000001"
    assert reply.fault == "429"


def test_numeric_retry_after_is_sent_as_str() -> None:
    assert faulted(Fault("429", poll=1, retry_after=2))[1].header("retry-after") == "2"
    assert faulted(Fault("503", poll=1, retry_after=0.25))[1].header("retry-after") == "0.25"
    assert faulted(Fault("503", poll=1))[1].header("retry-after") is None


@pytest.mark.parametrize("kind", ["500", "502", "503", "504", "404", "401", "403"])
def test_status_faults_answer_that_status_with_an_ionq_error_body(kind: str) -> None:
    _, reply = faulted(Fault(kind, poll=1))
    assert reply.status_code == int(kind)
    assert reply.json()["statusCode"] == int(kind)
    assert reply.header("x-request-id") is not None


def test_reset_slow_truncated_are_transport_instructions() -> None:
    _, reset = faulted(Fault("reset", poll=1))
    assert (reset.reset, reset.status_code, reset.body) == (True, 0, b"")
    _, slow = faulted(Fault("slow", poll=1, delay=30.0))
    assert (slow.delay, slow.status_code, slow.json()["status"]) == (30.0, 200, "ready")
    _, default_slow = faulted(Fault("slow", poll=1))
    assert default_slow.delay == 10.0
    _, cut = faulted(Fault("truncated", poll=1))
    assert cut.truncate_to == len(cut.body) // 2
    _, cut_at = faulted(Fault("truncated", poll=1, truncate_to=10))
    assert cut_at.truncate_to == 10
    _, cut_over = faulted(Fault("truncated", poll=1, truncate_to=10**6))
    assert cut_over.truncate_to == len(cut_over.body) - 1


def test_malformed_json_and_html() -> None:
    _, broken = faulted(Fault("malformed_json", poll=1))
    assert broken.status_code == 200
    assert broken.header("content-type") == "application/json"
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    _, page = faulted(Fault("html", poll=1))
    assert page.status_code == 502
    assert (page.header("content-type") or "").startswith("text/html")
    assert page.body.startswith(b"<html>")
    _, ok_page = faulted(Fault("html", poll=1, status_code=200))
    assert ok_page.status_code == 200


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("null_status", poll=1), None),
        (Fault("nonstring_status", poll=1), 3),
        (Fault("nonstring_status", poll=1, status={"s": 1}), {"s": 1}),
        (Fault("unknown_status", poll=1), "warming_up"),
        (Fault("unknown_status", poll=1, status="QUEUED"), "QUEUED"),
        (Fault("regress", poll=1), "ready"),  # started -> ready
        (Fault("regress", poll=1, status="submitted"), "submitted"),
    ],
)
def test_status_view_faults(fault: Fault, expected: object) -> None:
    _, reply = faulted(fault, now=1.5)
    assert reply.status_code == 200
    assert reply.json()["status"] == expected
    assert reply.fault == fault.kind


def test_missing_status_and_regress_from_terminal() -> None:
    _, missing = faulted(Fault("missing_status", poll=1))
    assert "status" not in missing.json()
    assert missing.json()["id"] == "j"
    board = JobBoard()
    board.submit(now=0.0, id="f", outcome="failed", faults=[Fault("regress", poll=1)])
    back = get(board, "/jobs/f", 10.0).json()
    assert (back["status"], back["failure"]) == ("started", None)


def test_fault_fires_on_its_poll_for_count_polls_only() -> None:
    board = JobBoard()
    board.submit(now=0.0, id="j", faults=[Fault("503", poll=2, count=3)])
    codes = [get(board, "/jobs/j", 0.0).status_code for _ in range(6)]
    assert codes == [200, 503, 503, 503, 200, 200]
    assert board.polls("j") == 6


def test_first_matching_fault_wins() -> None:
    board = JobBoard()
    board.submit(now=0.0, id="j", faults=[Fault("429", poll=1), Fault("500", poll=1, count=2)])
    assert [get(board, "/jobs/j", 0.0).status_code for _ in range(3)] == [429, 500, 200]


def test_server_wide_faults_key_on_request_number_and_answer_before_auth() -> None:
    board = JobBoard(
        api_key=KEY,
        faults=[Fault("502", request=2), Fault("slow", request=3, delay=1.0)],
    )
    board.submit(now=0.0, id="j")
    first = get(board, "/jobs/j", 0.0)
    no_auth = get(board, "/jobs/j", 0.0, headers=[])
    third = get(board, "/jobs/j", 0.0)
    assert (first.status_code, no_auth.status_code, third.status_code) == (200, 502, 200)
    assert third.delay == 1.0
    assert board.polls("j") == 2  # the 502 never reached the job
    assert board.request_count == 3


# -- routes, auth, batch, cancel -----------------------------------------------------------


def test_auth_is_enforced_and_the_key_never_leaks() -> None:
    board = JobBoard(api_key=KEY)
    board.submit(now=0.0, id="j")
    for headers in ([], [("authorization", "apiKey wrong")], [("Authorization", f"Bearer {KEY}")]):
        reply = get(board, "/jobs/j", 0.0, headers=headers)
        assert reply.status_code == 401
        assert reply.json()["statusCode"] == 401
        assert KEY.encode() not in reply.body
        assert all(KEY not in value for _, value in reply.headers)
    assert (
        get(board, "/jobs/j", 0.0, headers=[("AUTHORIZATION", f"apikey {KEY}")]).status_code == 200
    )
    assert KEY not in repr(board)
    assert board.polls("j") == 1


def test_unknown_job_route_and_method() -> None:
    board = JobBoard()
    board.submit(now=0.0, id="j")
    missing = get(board, "/jobs/nope", 0.0)
    assert missing.status_code == 404
    assert missing.json()["message"] == "Job not found: nope"
    assert get(board, "/other", 0.0).status_code == 404
    assert get(board, "/jobs/j/results", 0.0).status_code == 404
    assert get(board, "/jobs/", 0.0).status_code == 404
    wrong = board.handle("DELETE", "/jobs/j", [], now=0.0)
    assert (wrong.status_code, wrong.header("allow")) == (405, "GET")
    assert board.handle("PATCH", "/jobs", [], now=0.0).header("allow") == "GET, POST"
    assert board.handle("GET", "/jobs/j/status/cancel", [], now=0.0).status_code == 405


def test_batch_get_leaves_out_unknown_ids_and_counts_polls() -> None:
    board = JobBoard()
    for job_id in ("a", "b,c", "d"):
        board.submit(now=0.0, id=job_id)
    reply = get(board, "/jobs?ids=a,zz,d,a", 0.0)
    body = reply.json()
    assert [job["id"] for job in body["jobs"]] == ["a", "d"]
    assert body["next"] is None
    repeated = get(board, "/jobs?limit=5&ids=d&ids=a%2Czz", 0.0).json()
    assert [job["id"] for job in repeated["jobs"]] == ["d", "a"]
    assert [job["id"] for job in get(board, "/jobs", 0.0).json()["jobs"]] == ["a", "b,c", "d"]
    assert get(board, "/jobs?ids=", 0.0).json()["jobs"] == []
    assert (board.polls("a"), board.polls("b,c"), board.polls("d")) == (3, 1, 3)


def test_batch_faults_drop_alter_or_replace_the_answer() -> None:
    board = JobBoard()
    board.submit(now=0.0, id="a", faults=[Fault("drop", poll=1), Fault("503", poll=3)])
    board.submit(now=0.0, id="b", faults=[Fault("null_status", poll=1), Fault("slow", poll=2)])
    first = get(board, "/jobs?ids=a,b", 0.0)
    assert [(job["id"], job["status"]) for job in first.json()["jobs"]] == [("b", None)]
    assert first.fault == "drop"
    second = get(board, "/jobs?ids=a,b", 0.0)
    assert second.delay == 10.0
    assert len(second.json()["jobs"]) == 2
    assert get(board, "/jobs?ids=a,b", 0.0).status_code == 503
    single = JobBoard()
    single.submit(now=0.0, id="s", faults=[Fault("drop", poll=1)])
    assert get(single, "/jobs/s", 0.0).status_code == 404


def test_cancel_pending_and_terminal_jobs() -> None:
    board = JobBoard(api_key=KEY)
    board.submit(now=0.0, id="p")
    board.submit(now=0.0, id="t", durations={"ready": 0.0, "started": 0.0})
    reply = board.handle("PUT", "/jobs/p/status/cancel", AUTH, now=0.5)
    assert reply.json() == {"id": "p", "status": "canceled"}
    assert board.terminal_at("p") == 0.5
    assert board.status("p", now=0.4) == "ready"
    assert board.status("p", now=5.0) == "canceled"
    assert board.cancel("t", now=1.0) == {"id": "t", "status": "completed"}
    assert board.terminal_at("t") == 0.0
    assert board.handle("PUT", "/jobs/zz/status/cancel", AUTH, now=0.0).status_code == 404
    with pytest.raises(KeyError):
        board.cancel("zz", now=0.0)
    assert board.polls("p") == 0


def test_every_reply_has_a_request_id() -> None:
    board = JobBoard(api_key=KEY, faults=[Fault("html", request=1)])
    replies = [
        get(board, "/jobs", 0.0),
        get(board, "/jobs/x", 0.0, headers=[]),
        get(board, "/jobs/x", 0.0),
        board.handle("POST", "/jobs", AUTH, b"[]", now=0.0),
    ]
    assert [r.header("x-request-id") for r in replies] == [f"req-00000{i}" for i in range(1, 5)]


# -- percent-decoding matches urllib -------------------------------------------------------


@given(st.text())
def test_percent_encoding_round_trips_like_urllib(text: str) -> None:
    encoded = _percent_encode(text)
    assert encoded == urllib.parse.quote(text, safe="")
    assert _percent_decode(encoded) == text


@given(st.text(alphabet="%0aF+g/é,"))
def test_percent_decode_agrees_with_urllib_on_junk(text: str) -> None:
    assert _percent_decode(text) == urllib.parse.unquote(text)
    assert _percent_decode(text, plus_is_space=True) == urllib.parse.unquote_plus(text)


def test_job_ids_in_a_request_target() -> None:
    assert JobBoard.job_ids_in("/jobs/a%2Fb") == ("a/b",)
    assert JobBoard.job_ids_in("/jobs/a/status/cancel") == ("a",)
    assert JobBoard.job_ids_in("/jobs?ids=a,b&ids=c") == ("a", "b", "c")
    assert JobBoard.job_ids_in("/jobs") == ()
    assert JobBoard.job_ids_in("/other/a") == ()


# -- the fetcher: a reply translated as an HTTP adapter would ------------------------------


def test_fetcher_returns_jobs_and_fails_like_an_http_adapter() -> None:
    board = JobBoard(api_key=KEY)
    script = [
        Fault("429", poll=1, retry_after="2.5"),
        Fault("503", poll=2, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        Fault("reset", poll=3),
        Fault("slow", poll=4, delay=60.0),
        Fault("truncated", poll=5),
        Fault("malformed_json", poll=6),
        Fault("html", poll=7, status_code=200),
        Fault("404", poll=8),
        Fault("401", poll=9),
        Fault("null_status", poll=10),
        Fault("429", poll=11, retry_after="-3"),
        Fault("slow", poll=12, delay=1.0),
    ]
    board.submit(now=0.0, id="j", faults=script)
    fetch = board.fetcher("j", timeout=5.0)
    results = [fetch(0.5, index) for index in range(13)]

    def failure(index: int) -> tuple[type[BaseException], bool, float | None]:
        result = results[index]
        assert isinstance(result, Fail), result
        return type(result.error), result.retryable, result.retry_after

    assert failure(0) == (ResponseError, True, 2.5)
    assert failure(1) == (ResponseError, True, 0.0)  # an HTTP-date in the past means 0
    assert failure(2) == (ConnectionResetError, True, None)
    assert failure(3) == (TimeoutError, True, None)
    assert failure(4) == (ConnectionError, True, None)
    assert failure(5) == (JobStatusError, True, None)
    assert failure(6) == (JobStatusError, True, None)
    assert failure(7) == (ResponseError, False, None)
    assert failure(8) == (ResponseError, False, None)
    assert results[9]["status"] is None
    assert failure(10) == (ResponseError, True, None)
    assert results[11]["status"] == "ready"  # 1 s delay is within the 5 s timeout
    assert results[12]["status"] == "ready"
    error = results[0].error
    assert isinstance(error, ResponseError)
    assert (error.status_code, error.retry_after, error.request_id) == (429, 2.5, "req-000001")
    assert board.polls("j") == 13


def test_fetcher_without_timeout_ignores_slow_and_tracks_time() -> None:
    board = JobBoard(time_scale=2.0)
    board.submit(now=0.0, id="j", faults=[Fault("slow", poll=1, delay=100.0)])
    fetch = board.fetcher("j")
    assert [fetch(t, i)["status"] for i, t in enumerate((0.0, 0.5, 1.0))] == [
        "ready",
        "started",
        "completed",
    ]
