"""The ``jobwait`` command end to end, against ``JobServer`` on loopback.

In-process (``main([...])`` with capsys) wherever possible; subprocesses only where a
real terminal, a signal or ``python -m`` is the point. Jobs run at large server time
scales and the CLI polls at tiny intervals, so each test takes well under a second;
every server, client and process is closed in ``finally`` / ``with``.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from jobwait.adapters.cli import EXIT_CODES, main
from jobwait.adapters.server import JobServer
from jobwait.testing import Fault
from support import free_port

realtime = pytest.mark.realtime
# Pseudo-terminals and SIGINT to a child are POSIX things.
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX pty and signals")

KEY = "s3cret-cli-key-4711"
SECRET_ENV = "JOBWAIT_TEST_AUTH"
AUTH = ["--header-env", f"Authorization={SECRET_ENV}"]
FAST = ["--interval", "0.01", "--max-interval", "0.02"]
# Scripted seconds at a time scale of 1000: pending for 0.2 s, a few polls.
VISIBLE = {"submitted": 50.0, "ready": 50.0, "started": 100.0}
FOREVER = {"started": 1e9}
# Ready for 0.3 s from submission, then started for 0.2 s: an in-process wait sees both.
READY_THEN_STARTED = {"ready": 300.0, "started": 200.0}
PROCESS_TIMEOUT = 20.0


SERVER_OPTIONS = {"time_scale": 1000.0}  # the shared ``server`` fixture's


@pytest.fixture(autouse=True)
def _auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, f"apiKey {KEY}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def wait(
    capsys: pytest.CaptureFixture[str], server: JobServer, job_id: str, *extra: str
) -> tuple[int, str, str]:
    # A generous --timeout first, so a test that goes wrong fails instead of hanging;
    # a --timeout in ``extra`` comes later and wins.
    url = f"{server.url}/jobs/{job_id}"
    return run(capsys, "wait", url, *AUTH, *FAST, "--timeout", "10", *extra)


def assert_one_error_line(err: str, code: int, expected: int) -> None:
    assert code == expected, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("jobwait: "), err
    assert "Traceback" not in err
    assert "usage:" not in err


# --- exit codes ------------------------------------------------------------------------


@realtime
def test_succeeded_exits_0(capsys: pytest.CaptureFixture[str], server: JobServer) -> None:
    job = server.submit(durations=VISIBLE)
    code, out, err = wait(capsys, server, job)
    assert code == 0, err
    assert out == ""
    assert err.splitlines()[-1].startswith("jobwait: job succeeded (status 'completed'")


@realtime
def test_failed_exits_1_and_prints_the_failure(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(outcome="failed", failure={"code": "CalibrationLost"})
    code, _, err = wait(capsys, server, job)
    assert code == 1, err
    assert "job failed" in err
    assert "CalibrationLost" in err


@realtime
def test_timed_out_exits_3(capsys: pytest.CaptureFixture[str], server: JobServer) -> None:
    job = server.submit(durations=FOREVER)
    code, _, err = wait(capsys, server, job, "--timeout", "0.05")
    assert code == 3, err
    assert "did not finish within the timeout of 0.05s" in err


@realtime
def test_canceled_exits_4(capsys: pytest.CaptureFixture[str], server: JobServer) -> None:
    job = server.submit(durations=FOREVER)
    server.cancel(job)
    code, _, err = wait(capsys, server, job)
    assert code == 4, err
    assert "canceled" in err


@realtime
def test_unreachable_exits_5_once_the_retries_are_spent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/jobs/1"
    code, _, err = run(capsys, "wait", url, *FAST)
    assert code == 5, err
    assert "5 polls in a row failed (--max-fetch-errors 5); the last: ConnectError" in err
    assert "ConnectError" in err


@realtime
def test_unreachable_exits_3_when_the_deadline_comes_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Whichever error ends the wait decides: here the deadline, before the error budget.
    url = f"http://127.0.0.1:{free_port()}/jobs/1"
    code, _, err = run(capsys, "wait", url, *FAST, "--timeout", "0")
    assert code == 3, err


@realtime
def test_http_404_exits_5(capsys: pytest.CaptureFixture[str], server: JobServer) -> None:
    code, _, err = wait(capsys, server, "no-such-job")
    assert code == 5, err
    assert "HTTP 404" in err


@realtime
@pytest.mark.parametrize(
    "fault",
    [
        Fault("malformed_json", poll=1, count=10),
        Fault("html", poll=1, count=10, status_code=200),
    ],
    ids=["malformed-json", "html-200"],
)
def test_a_body_that_is_not_json_exits_5(
    capsys: pytest.CaptureFixture[str], server: JobServer, fault: Fault
) -> None:
    job = server.submit(durations=FOREVER, faults=[fault])
    code, _, err = wait(capsys, server, job)
    assert code == 5, err
    assert "not JSON" in err


@realtime
@pytest.mark.parametrize(
    ("fault", "field"),
    [(Fault("missing_status", poll=1), "status"), (None, "state.phase")],
    ids=["missing-status", "missing-status-field-path"],
)
def test_a_missing_status_field_exits_5(
    capsys: pytest.CaptureFixture[str], server: JobServer, fault: Fault | None, field: str
) -> None:
    job = server.submit(faults=[fault] if fault else [])
    code, _, err = wait(capsys, server, job, "--status-field", field)
    assert code == 5, err
    assert f"the job has no {field!r} field" in err


@pytest.mark.parametrize(
    "args",
    [
        ["wiat"],
        ["wait"],
        ["wait", "localhost:8080/jobs/1"],
        ["wait", "http://x/jobs/1", "--interval", "abc"],
        ["wait", "http://x/jobs/1", "--interval", "0"],
        ["wait", "http://x/jobs/1", "--timeout", "-1"],
        ["wait", "http://x/jobs/1", "--factor", "0.5"],
        ["wait", "http://x/jobs/1", "--max-interval", "nan"],
        ["wait", "http://x/jobs/1", "--status-field", "a..b"],
        ["wait", "http://x/jobs/1", "--success", "done", "--failure", "done"],
        ["wait", "http://x/jobs/1", "--header", "no colon here"],
        ["wait", "http://x/jobs/1", "--header-env", "Authorization"],
        ["wait", "http://x/jobs/1", "--header-env", "Authorization=JOBWAIT_TEST_UNSET_VAR"],
        ["wait", "http://x/jobs/1", "--no-such-option"],
        ["serve", "--port", "70000"],
        ["serve", "--api-key", "k", "--no-auth"],
        ["demo", "--time-scale", "0"],
    ],
)
def test_bad_usage_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert_one_error_line(err, code, 2)
    assert err.startswith("jobwait: error: ")
    assert out == ""


def test_every_exit_code_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "wait", "--help")
    assert code == 0
    section = out[out.index("exit codes:") :]
    for number, meaning in EXIT_CODES:
        assert re.search(rf"^  {number} +{re.escape(meaning[:30])}", section, re.M), number


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert re.fullmatch(r"jobwait \S+\n", out)


# --- statuses and schedule options -----------------------------------------------------


@realtime
@pytest.mark.parametrize(
    ("option", "status", "expected"),
    [("--success", "started", 0), ("--failure", "ready", 1), ("--canceled", "ready", 4)],
)
def test_outcome_options_replace_the_defaults_and_leave_pending(
    capsys: pytest.CaptureFixture[str], server: JobServer, option: str, status: str, expected: int
) -> None:
    # The job stays in the status under test, so the wait cannot miss it.
    durations = {"ready": 1e9} if status == "ready" else {"ready": 1.0, "started": 1e9}
    job = server.submit(durations=durations)
    code, _, err = wait(capsys, server, job, option, status)
    assert code == expected, err
    assert f"status {status!r}" in err


@realtime
def test_a_dotted_status_field(capsys: pytest.CaptureFixture[str], server: JobServer) -> None:
    job = server.submit(outcome="failed", failure={"code": "Overheated"})
    server_time = server.terminal_at(job) - server.now()
    time.sleep(max(0.0, server_time))
    code, _, err = wait(
        capsys, server, job, "--status-field", "failure.code", "--failure", "Overheated"
    )
    assert code == 1, err


@realtime
def test_the_backoff_cap_follows_a_larger_interval(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    # --interval 5 above --max-interval 1 is not an error: the cap becomes 5, so the one
    # sleep is cut to the deadline and the second poll is the last.
    job = server.submit(durations=FOREVER)
    url = f"{server.url}/jobs/{job}"
    code, _, err = run(
        capsys, "wait", url, *AUTH, "--interval", "5", "--max-interval", "1", "--timeout", "0.1"
    )
    assert code == 3, err
    assert "2 polls" in err


# --- --json ----------------------------------------------------------------------------


@realtime
def test_json_prints_only_the_final_job(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(durations=VISIBLE)
    code, out, _ = wait(capsys, server, job, "--json")
    assert code == 0
    assert json.loads(out)["status"] == "completed"
    assert json.loads(out)["id"] == job


@realtime
@pytest.mark.parametrize(
    ("script", "job_id", "expected_code", "expected_status"),
    [
        ({"outcome": "failed"}, None, 1, "failed"),
        ({"outcome": "canceled"}, None, 4, "canceled"),
        ({"durations": FOREVER}, None, 3, "started"),
        ({"faults": [Fault("missing_status", poll=1)]}, None, 5, "<missing>"),
        (None, "no-such-job", 5, None),
    ],
    ids=["failed", "canceled", "timed-out", "missing-status", "404"],
)
def test_json_on_an_unhappy_ending_prints_the_last_job_seen_or_null(
    capsys: pytest.CaptureFixture[str],
    server: JobServer,
    script: dict[str, Any] | None,
    job_id: str | None,
    expected_code: int,
    expected_status: str | None,
) -> None:
    if script is not None:
        job_id = server.submit(**script)
    assert job_id is not None
    code, out, err = wait(capsys, server, job_id, "--json", "--timeout", "0.05")
    assert code == expected_code, err
    job = json.loads(out)  # stdout is pure JSON
    if expected_status is None:
        assert job is None
    else:
        assert job["id"] == job_id
        assert job.get("status", "<missing>") == expected_status


@realtime
def test_json_is_null_when_nothing_was_seen(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "wait", f"http://127.0.0.1:{free_port()}/j", *FAST, "--json")
    assert code == 5
    assert json.loads(out) is None


# --- secrets ---------------------------------------------------------------------------


@realtime
@pytest.mark.parametrize(
    ("script", "extra"),
    [
        ({}, []),
        ({"outcome": "failed"}, ["--json"]),
        ({"durations": FOREVER}, ["--timeout", "0.05", "--json"]),
        ({"faults": [Fault("503", poll=1), Fault("401", poll=2)]}, []),
        ({"faults": [Fault("unknown_status", poll=1, status=f"apiKey {KEY}")]}, []),
    ],
    ids=["succeeded", "failed", "timed-out", "http-errors", "status-quotes-the-secret"],
)
def test_header_env_secrets_are_never_echoed(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    server: JobServer,
    script: dict[str, Any],
    extra: list[str],
) -> None:
    caplog.set_level("DEBUG")
    job = server.submit(**script)
    code, out, err = wait(capsys, server, job, *extra)
    assert code in (0, 1, 3, 5), err
    for text in (out, err, caplog.text):
        assert KEY not in text


@realtime
def test_a_server_status_quoting_the_secret_is_masked(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(
        durations=VISIBLE, faults=[Fault("unknown_status", poll=1, status=f"apiKey {KEY}")]
    )
    code, _, err = wait(capsys, server, job)
    assert code == 0
    assert "status '***'" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--header", f"Authorization apiKey {KEY}"],
        ["--header", f"Author ization: apiKey {KEY}"],
        ["--header", f"Authorization: apiKey {KEY}\r\nX-Evil: 1"],
        ["--header", f"Authorization: apiKey {KEY}\u00e9"],
        ["--header-env", f"Authorization=apiKey {KEY}"],
        ["--haeder", f"Authorization: apiKey {KEY}"],
        [f"--haeder=Authorization: apiKey {KEY}"],
    ],
    ids=["no-colon", "bad-name", "crlf", "non-ascii", "env-syntax", "typo", "typo-equals"],
)
def test_a_malformed_header_is_not_echoed(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run(capsys, "wait", "http://127.0.0.1:9/jobs/1", *args)
    assert_one_error_line(err, code, 2)
    assert KEY not in err + out


def test_a_header_env_value_that_cannot_be_sent_is_not_echoed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, f"apiKey {KEY}\n")
    monkeypatch.setenv("JOBWAIT_TEST_BAD", f"apiKey\x01{KEY}")
    code, out, err = run(
        capsys, "wait", "http://127.0.0.1:9/j", "--header-env", "Authorization=JOBWAIT_TEST_BAD"
    )
    assert_one_error_line(err, code, 2)
    assert KEY not in err + out
    assert "JOBWAIT_TEST_BAD" in err


# --- progress --------------------------------------------------------------------------


@realtime
def test_progress_on_a_pipe_is_plain_lines(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    job = server.submit(
        durations=READY_THEN_STARTED, faults=[Fault("503", poll=2, retry_after="0.01")]
    )
    code, _, err = wait(capsys, server, job)
    assert code == 0
    assert "\r" not in err
    assert "\x1b" not in err
    lines = err.splitlines()
    statuses = [
        re.match(
            r"jobwait: status '(\w+)' after [\d.]+s, \d+ polls?( \(read from status\))?$", line
        )
        for line in lines
    ]
    seen = [m[1] for m in statuses if m]
    assert seen == sorted(set(seen), key=seen.index)  # one line per change, no repeats
    assert {"ready", "started"} <= set(seen)
    assert any(
        re.fullmatch(
            r"jobwait: poll 2 failed \(HTTP 503: Simulated server error, Retry-After 0.01s\); "
            r"retrying in [\d.]+s",
            line,
        )
        for line in lines
    ), err
    assert lines[-1].startswith("jobwait: job succeeded")


@realtime
def test_quiet_prints_nothing_but_the_final_error(
    capsys: pytest.CaptureFixture[str], server: JobServer
) -> None:
    ok = server.submit(durations=VISIBLE, faults=[Fault("503", poll=2)])
    code, out, err = wait(capsys, server, ok, "--quiet")
    assert (code, out, err) == (0, "", "")
    failed = server.submit(durations=VISIBLE, outcome="failed")
    code, _, err = wait(capsys, server, failed, "-q")
    assert_one_error_line(err, code, 1)


def _child_env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({SECRET_ENV: f"apiKey {KEY}", "TERM": "xterm-256color"})
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class Terminal:
    """A child ``python -m jobwait`` whose stderr is a pseudo-terminal we read."""

    def __init__(self, proc: subprocess.Popen[bytes], master: int) -> None:
        self.proc = proc
        self.master = master
        self.text = ""

    def read_until(self, marker: str | None) -> str:
        """Read until ``marker`` shows (``None``: until the child closes the terminal)."""
        deadline = time.monotonic() + PROCESS_TIMEOUT
        while marker is None or marker not in self.text:
            assert time.monotonic() < deadline, self.text
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                data = b""
            if not data:
                assert marker is None, self.text
                break
            self.text += data.decode()
        return self.text


@contextmanager
def stderr_on_a_terminal(args: Sequence[str], env: dict[str, str]) -> Iterator[Terminal]:
    import pty

    master, slave = pty.openpty()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "jobwait", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=env,
        ) as proc:
            os.close(slave)
            slave = -1
            try:
                yield Terminal(proc, master)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.communicate(timeout=PROCESS_TIMEOUT)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)


@posix_only
@realtime
@pytest.mark.parametrize("no_color", [None, "1"], ids=["colour", "NO_COLOR"])
def test_progress_on_a_terminal_is_one_rewritten_line(
    server: JobServer, no_color: str | None
) -> None:
    # The job runs until the test cancels it, once the live line has shown a retry: no
    # race with the child's start-up time.
    job = server.submit(durations=FOREVER, faults=[Fault("503", poll=3)])
    url = f"{server.url}/jobs/{job}"
    args = ["wait", url, *AUTH, "--interval", "0.05", "--max-interval", "0.1", "--timeout", "20"]
    with stderr_on_a_terminal(args, _child_env(NO_COLOR=no_color)) as terminal:
        terminal.read_until("retry in ")
        terminal.read_until("next poll in ")  # a poll after the retry
        server.cancel(job)
        text = terminal.read_until(None)
        code = terminal.proc.wait(timeout=PROCESS_TIMEOUT)
    assert code == 4, text
    # One line, rewritten in place: the only newline ends the final line (the terminal
    # turns "\n" into "\r\n").
    assert text.count("\n") == 1, text
    assert text.endswith("\r\n")
    live = re.findall(r"\r\x1b\[2Kjobwait: ([^\r]*)", text)
    assert live[-1].startswith("job was canceled"), text
    paint = "\x1b[36m" if no_color is None else ""
    reset = "\x1b[0m" if no_color is None else ""
    # --api auto (the default) says where it read the status, right after it.
    status = re.escape(f"{paint}started{reset} (status)")
    assert any(
        re.fullmatch(rf"{status}, [\d.]+s, \d+ polls, next poll in \d\.\ds", x) for x in live
    )
    # The server's words come last, cut at the terminal's width (80 columns here).
    retry = rf"{status}, [\d.]+s, 3 polls, retry in \d\.\ds, HTTP 503: Simulated.*"
    assert any(re.fullmatch(retry, x) for x in live), text
    assert ("\x1b[3" in text) == (no_color is None)  # colours only without NO_COLOR


@realtime
def test_library_warnings_never_reach_the_terminal(server: JobServer) -> None:
    # The waiter logs an unknown status at WARNING; with no handler configured, logging's
    # last resort would print it raw. The CLI shows it in its own words instead.
    job = server.submit(durations=VISIBLE, faults=[Fault("unknown_status", poll=1)])
    with subprocess.Popen(
        [sys.executable, "-m", "jobwait", "wait", f"{server.url}/jobs/{job}", *AUTH, *FAST],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    ) as proc:
        try:
            _, err = proc.communicate(timeout=PROCESS_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = err.decode()
    assert proc.returncode == 0, text
    assert "status 'warming_up' after" in text
    assert "not a known status; still waiting" in text
    assert "list it in Statuses" not in text  # the library's own log message


@posix_only
@realtime
@pytest.mark.usefixtures("ctrl_c")  # the child starts with SIGINT handled, even under nohup
def test_ctrl_c_during_a_wait_exits_130_with_one_line(server: JobServer) -> None:
    job = server.submit(durations=FOREVER)
    with subprocess.Popen(
        [sys.executable, "-m", "jobwait", "wait", f"{server.url}/jobs/{job}", *AUTH, "--json"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    ) as proc:
        try:
            assert proc.stderr is not None
            seen = _read_until(proc.stderr.fileno(), b"status 'started'")
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, seen + err
    assert err.decode() == "jobwait: interrupted\n"
    assert json.loads(out)["status"] == "started"


def _read_until(fd: int, marker: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while marker not in data:
        assert time.monotonic() < deadline, data
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, data
            data += chunk
    return data


# --- python -m, serve, demo ------------------------------------------------------------


@realtime
def test_python_m_jobwait_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jobwait", "--help"],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: jobwait" in result.stdout
    for command in ("wait", "serve", "demo"):
        assert command in result.stdout
    assert "exit codes" in result.stdout


@posix_only
@realtime
@pytest.mark.usefixtures("ctrl_c")  # the child starts with SIGINT handled, even under nohup
@pytest.mark.parametrize("passed_key", [None, "my-own-key-0815"], ids=["generated", "passed"])
def test_serve_prints_its_url_and_stops_on_sigint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, passed_key: str | None
) -> None:
    args = ["serve", "--time-scale", "100"]
    if passed_key is not None:
        args += ["--api-key", passed_key]
    with subprocess.Popen(
        [sys.executable, "-m", "jobwait", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
    ) as proc:
        try:
            assert proc.stdout is not None
            banner = _read_until(proc.stdout.fileno(), b"Ctrl-C").decode()
            url = re.search(
                r"serving the simulated job API at (http://127\.0\.0\.1:\d+/v0\.4)$", banner, re.M
            )
            assert url, banner
            generated = re.search(r"API key for this session: (\S+)", banner)
            assert (generated is None) == (passed_key is not None), banner
            key = passed_key or (generated[1] if generated else "")
            assert "--header-env Authorization=JOBWAIT_AUTH" in banner
            if passed_key is not None:
                assert passed_key not in banner
            # The example command in the banner works.
            monkeypatch.setenv("JOBWAIT_AUTH", f"apiKey {key}")
            code, _, err = run(
                capsys, "wait", f"{url[1]}/jobs/example-1", "--header-env",
                "Authorization=JOBWAIT_AUTH", "--interval", "0.02", "--quiet",
            )  # fmt: skip
            assert code == 0, err
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err_bytes = proc.communicate(timeout=PROCESS_TIMEOUT)
            assert time.monotonic() - started < 5
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err_bytes
    assert err_bytes.decode() == "jobwait: stopped\n"
    assert "GET /v0.4/jobs/example-1 -> 200" in out.decode()


@realtime
def test_serve_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert_one_error_line(err, code, 1)
    assert f"cannot listen on 127.0.0.1:{port}" in err


# A table row: job, its own trouble (words), expected, actual, polls, detection delay.
DEMO_ROW = re.compile(
    r"^(?P<job>\S+) +(?P<trouble>.+?) +(?P<expected>\S+) +(?P<actual>\S+) +(?P<polls>\d+) +"
    r"(?P<delay>-?[\d.]+)s$",
    re.M,
)
DEMO_TOTALS = re.compile(
    r"(?P<requests>\d+) requests \((?P<faulted>\d+) met a scripted fault\) carried "
    r"(?P<polls>\d+) job polls"
)


def demo_summary(out: str) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The demo's table rows, and its totals as numbers (the line may be wrapped)."""
    rows = [match.groupdict() for match in DEMO_ROW.finditer(out)]
    totals = DEMO_TOTALS.search(" ".join(out.split()))
    assert totals, out
    return rows, {name: int(value) for name, value in totals.groupdict().items()}


@realtime
def test_demo_waits_with_one_fleet_and_every_job_ends_as_scripted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Scale 50, not more: the 503 burst (requests #10-11) must go out before the last
    # job finishes, with room to spare on a busy machine.
    started = time.monotonic()
    code, out, err = run(capsys, "demo", "--time-scale", "50")
    assert code == 0, out + err
    assert time.monotonic() - started < 10
    rows, totals = demo_summary(out)
    assert len(rows) == 12, out
    assert [row["actual"] for row in rows] == [row["expected"] for row in rows], out
    assert {row["actual"] for row in rows} == {"completed", "failed", "canceled"}
    assert all(float(row["delay"]) >= 0 for row in rows), out  # never before the fact
    assert "12/12 jobs ended as scripted" in out
    # Polls are counted from the server's log, so the totals add up; one fleet shares
    # requests, so they are far fewer than the job polls they carried.
    assert sum(int(row["polls"]) for row in rows) == totals["polls"]
    assert totals["requests"] * 2 < totals["polls"], out
    assert totals["faulted"] >= 8, out  # every server-wide fault was met
    # Progress on a pipe: plain lines, one per request served and per status change.
    assert "\x1b" not in err
    assert re.search(r"request #1: 12 jobs -> 200$", err, re.M), err
    assert len(re.findall(r"-> 429 \(scripted: 429\)$", err, re.M)) == 3, err
    assert len(re.findall(r"-> 503 \(scripted: 503\)$", err, re.M)) == 2, err
    for fault in ("reset", "truncated", "malformed_json", "drop", "regress"):
        assert re.search(rf"\(scripted: {fault}\)$", err, re.M), (fault, err)
    assert re.search(
        r"qwalk +ready -> calibrating \(not a known status; still waiting\)$", err, re.M
    ), err
    assert re.search(r"vqe-h2 +started -> ready$", err, re.M), err  # the regression
    assert re.search(r"shor-15 +\S+ -> failed$", err, re.M), err
    assert re.search(r"teleport +\S+ -> canceled$", err, re.M), err


@realtime
def test_demo_without_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--time-scale", "200", "--no-progress")
    assert code == 0, out
    assert err == ""
    assert "12/12 jobs ended as scripted" in out
    rows, totals = demo_summary(out)
    assert len(rows) == 12
    assert totals["requests"] < totals["polls"]
