"""What a user sees when something is wrong: the first-contact messages of ``jobwait``
(issue 13's CLI wording, URL checks and 401/403 hints) and secrets masked before any
text is cut (issue 10.6).

End to end against ``JobServer`` on loopback where the server's answer is the point;
the display helpers directly where only the rendering is.
"""

from __future__ import annotations

import io
import re
import secrets
from types import SimpleNamespace

import pytest

from jobwait import Phase
from jobwait.adapters.cli import main
from jobwait.adapters.cli._demo import _DemoProgress
from jobwait.adapters.cli._output import Redactor, describe_failure, shown
from jobwait.adapters.cli._wait import _WaitProgress
from jobwait.adapters.server import JobServer, RequestRecord
from jobwait.http import ResponseError
from jobwait.testing import Fault
from support import free_port

realtime = pytest.mark.realtime
KEY = "s3cret-cli-key-0815"
ENV = "JOBWAIT_TEST_MSG_AUTH"
AUTH = ["--header-env", f"Authorization={ENV}"]
FAST = ["--interval", "0.01", "--max-interval", "0.02", "--timeout", "10"]


SERVER_OPTIONS = {"time_scale": 1000.0}  # the shared ``server`` fixture's


@pytest.fixture(autouse=True)
def _auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, f"apiKey {KEY}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def last_line(err: str) -> str:
    return err.splitlines()[-1]


# --- the final line ---------------------------------------------------------------------


@realtime
def test_a_failure_is_shown_as_json_with_a_context_that_names_no_missing_job_id(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(
        outcome="failed", failure={"code": "QuantumError", "message": "calibration drifted"}
    )
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST, "-q")
    assert code == 1, err
    assert re.fullmatch(
        r'jobwait: job failed: \{"code": "QuantumError", "message": "calibration drifted"\} '
        rf"\(job '{job}', last status 'failed', 1 poll, [\d.]+s elapsed\)",
        last_line(err),
    ), err
    assert "(job," not in err
    assert "None" not in err


@realtime
def test_the_error_budget_is_named_by_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/jobs/1"
    code, _, err = run(capsys, "wait", url, *FAST, "--max-fetch-errors", "2", "-q")
    assert code == 5, err
    assert re.fullmatch(
        r"jobwait: error: 2 polls in a row failed \(--max-fetch-errors 2\); the last: "
        r"ConnectError: .+ \(job '1', no status read, 2 polls, [\d.]+s elapsed\)",
        err.strip(),
    ), err
    assert "max_fetch_errors" not in err


@realtime
def test_quiet_timeout_of_an_unreachable_server_names_the_last_fetch_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jobs/1"
    args = ["--interval", "0.01", "--max-interval", "0.02", "--max-fetch-errors", "1000"]
    code, _, err = run(capsys, "wait", url, *args, "--timeout", "0.1", "-q")
    assert code == 3, err
    assert len(err.splitlines()) == 1, err
    assert "did not finish within the timeout of 0.1s; the last poll failed: ConnectError" in err


@realtime
def test_a_missing_status_field_points_at_status_field(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(faults=[Fault("missing_status", poll=1)])
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST, "-q")
    assert code == 5, err
    line = last_line(err)
    # --api auto (the default) looked in every well-known place; each key is listed once.
    assert "none of the fields jobwait looks for holds a status (status, state, " in line
    assert "name the field that holds it with --status-field PATH, or name its API" in line
    assert "(its fields: 'id'," in line
    assert line.count("'id'") == 1
    assert "status_of" not in line  # Python's advice stays in Python


@realtime
def test_a_status_that_is_not_a_string_points_at_status_field(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(faults=[Fault("null_status", poll=1)])
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST, "-q")
    assert code == 5, err
    assert "--status-field" in err


@realtime
def test_http_errors_show_the_servers_message(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/nope", *AUTH, *FAST, "-q")
    assert code == 5, err
    expected = (
        "retrying cannot fix it: HTTP 404: Job not found: nope; check the job id and the URL "
        "(job 'nope', no status read"
    )
    assert expected in err


@realtime
def test_401_without_credentials_hints_at_the_header_options(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit()
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *FAST, "-q")
    assert code == 5, err
    line = last_line(err)
    assert "HTTP 401: Invalid or missing API key" in line
    assert "none were sent" in line
    assert "--header-env" in line
    assert "--header '" in line


@realtime
@pytest.mark.parametrize("status", ["401", "403"])
def test_401_and_403_with_credentials_name_the_header_never_its_value(
    capsys: pytest.CaptureFixture[str], server: JobServer, status: str
) -> None:
    job = server.submit(faults=[Fault(status, poll=1)])
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST, "-q")
    assert code == 5, err
    assert f"HTTP {status}: " in err
    assert "the credentials sent (Authorization): check the value" in err
    assert KEY not in err


@realtime
def test_an_answer_over_max_body_size_names_the_flag(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit()
    args = ["--max-body-size", "64", "-q"]
    code, _, err = run(capsys, "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST, *args)
    assert code == 5, err
    assert "response body is larger than --max-body-size 64 (after decompression)" in err
    assert "max_body_size" not in err


# --- usage ---------------------------------------------------------------------------------


def test_bare_jobwait_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2
    assert out.startswith("usage: jobwait")
    assert "jobwait COMMAND --help" in out
    assert err == ""


def test_a_mistyped_option_points_at_the_commands_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "wait", "http://x/jobs/1", "--jsn")
    assert code == 2
    assert err == (
        "jobwait: error: unrecognized arguments: --jsn; did you mean --json? "
        "(see 'jobwait wait --help')\n"
    )
    code, _, err = run(capsys, "serve", "--quite")
    assert "did you mean --quiet? (see 'jobwait serve --help')" in err


def test_max_fetch_errors_must_be_a_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-1", "1.5", "x"):
        code, _, err = run(capsys, "wait", "http://x/jobs/1", "--max-fetch-errors", bad)
        assert code == 2, err
        assert "expected a whole number >= 1" in err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://", "the URL has no host after http://; expected e.g. http://example.com/jobs/42"),
        (
            "http:///jobs/1",
            (
                "the URL has no host after http:// (http:/// has three slashes); "
                "expected e.g. http://example.com/jobs/42"
            ),
        ),
        ("http://127.0.0.1:99999/x", "the URL's port 99999 is out of range (expected 1-65535)"),
        ("http://127.0.0.1:0/x", "the URL's port 0 is out of range (expected 1-65535)"),
        ("http://host:8o/x", "the URL's port '8o' is not a number (expected 1-65535)"),
        ("ftp://host/x", "the URL must start with http:// or https:// (it starts with ftp://)"),
        ("host/jobs/1", "the URL must start with http:// or https://"),
        ("https://user:pw@/x", "the URL has no host after https://"),
    ],
)
def test_urls_that_can_never_work_are_usage_errors(
    capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    code, out, err = run(capsys, "wait", url, "--timeout", "1")
    assert code == 2, err
    assert err.startswith(f"jobwait: error: argument URL: {message}"), err
    assert err.endswith("(see 'jobwait wait --help')\n")
    assert out == ""
    assert "pw" not in err


# --- the displays ----------------------------------------------------------------------


def test_the_live_line_says_an_unknown_status_in_words() -> None:
    stream = io.StringIO()
    progress = _WaitProgress(stream, mode="live", colour=False, redact=Redactor())
    watch = SimpleNamespace(
        reading=None,
        status="warming_up",
        phase=Phase.UNKNOWN,
        polls=2,
        retrying=False,
        failure=None,
    )
    progress._draw(watch, 0.5)  # type: ignore[arg-type]
    assert "warming_up, not a known status, still waiting, " in stream.getvalue()
    assert "\x1b[3" not in stream.getvalue()  # no colour, yet it is said


class _OneRequestServer:
    def __init__(self) -> None:
        self.requests = [RequestRecord(method="GET", path="/jobs?ids=a", time=0.0, status_code=200)]

    def requests_for(self, job_id: str) -> list[RequestRecord]:
        return self.requests


def test_the_demo_board_counts_one_request_and_says_unknown_in_words() -> None:
    stream = io.StringIO()
    server = _OneRequestServer()
    progress = _DemoProgress(stream, server, mode="live", colour=False, ids=["a"])  # type: ignore[arg-type]
    progress.on_status("a", {}, "calibrating")
    progress._draw()
    text = stream.getvalue()
    assert "1 request for 1 job poll" in text
    assert "calibrating    (unknown status)    1 poll  calibrating" in text


# --- secrets: masked before any cut (issue 10.6) ---------------------------------------------


def _runs_of(key: str, text: str, length: int = 8) -> list[str]:
    return [
        key[i : i + length] for i in range(len(key) - length + 1) if key[i : i + length] in text
    ]


@realtime
def test_a_long_key_echoed_in_a_long_status_and_failure_never_reaches_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_hex(32)  # 64 characters
    monkeypatch.setenv(ENV, f"apiKey {key}")
    with JobServer(api_key=key, time_scale=1000.0) as server:
        # The status is cut at 60 characters in progress lines and the failure at 200:
        # each echoes the key across the cut.
        status = "s" * 40 + key
        failure = {"code": "E", "message": "m" * 150 + key + " and more text after it"}
        job = server.submit(
            durations={"ready": 50.0},
            outcome="failed",
            failure=failure,
            faults=[Fault("unknown_status", poll=1, status=status)],
        )
        url = f"{server.url}/jobs/{job}"
        code, _out, err = run(capsys, "wait", url, *AUTH, *FAST)
    assert code == 1, err
    assert "status 'ssss" in err
    assert "m" * 100 in err
    assert _runs_of(key, err) == [], err


def test_the_redactor_masks_whole_keys_runs_and_a_partial_key_at_a_cut() -> None:
    key = secrets.token_hex(32)
    redact = Redactor([f"apiKey {key}"])
    assert redact(f"a apiKey {key} b") == "a *** b"
    assert redact(f"status {key[5:40]}!") == "status ***!"
    assert redact(f"cut here {key[:6]}...") == "cut here ***..."
    assert redact(f"cut here {key[:5]}") == "cut here ***"
    assert redact("nothing secret apiKey") == "nothing secret apiKey"
    # Masked first, cut second: the cut never leaves part of the key.
    text = shown("x" * 50 + key, redact, 60)
    assert _runs_of(key, text, 4) == []
    assert text.startswith("x" * 50)


def test_a_short_secret_is_masked_whole_only() -> None:
    redact = Redactor(["tok1"])
    assert redact("a tok1 b tok") == "a *** b tok"


def test_a_failed_poll_is_described_with_the_servers_message() -> None:
    def described(body: str, **extra: float) -> str:
        return describe_failure(ResponseError("x", status_code=503, body_excerpt=body, **extra))

    assert described('{"message": "busy"}', retry_after=2) == "HTTP 503: busy, Retry-After 2s"
    assert described("<html><title>502 Bad Gateway</title>") == "HTTP 503: 502 Bad Gateway"
    assert described("") == "x"  # no words from the server: the library's reason
