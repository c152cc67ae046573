"""Prefect for real: its server on loopback, real flow runs, ``jobwait wait`` with no
option and with ``--api prefect``.

One module-scoped Prefect server (``prefect server start --no-services --no-ui``, a
SQLite database in a temporary ``PREFECT_HOME``) and one runner process that runs two
flows against it at once, one that returns and one that raises, each printing its
flow run's id as it starts. While they run, ``jobwait wait`` (separate processes) waits
on each, zero-config and with the profile. A third flow run is created through the
REST API and cancelled the way ``prefect flow-run cancel`` does (CANCELLING, then the
CANCELLED a worker reports); an unknown id gets Prefect's 404. Every process is
started here and ended by its own id; the module takes about 15 s on a quiet machine,
most of it the server's start (its database migrations) and ``import prefect``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

prefect = pytest.importorskip("prefect", reason="the live check needs the test extra (prefect)")

from jobwait.adapters.httpx import wait_for_url  # noqa: E402
from support import free_port  # noqa: E402

pytestmark = pytest.mark.realtime

START_TIMEOUT = 90.0  # a loaded CI machine: the migrations alone take seconds
WAIT = ["--interval", "0.1", "--max-interval", "0.3", "--timeout", "60", "--json"]
# The options a Prefect flow run needed before profiles (issue 21: eleven), and now.
BEFORE = [
    *("--status-field", "state.type", "--failure-field", "state.message"),
    *("--pending", "SCHEDULED", "--pending", "PENDING", "--pending", "RUNNING"),
    *("--pending", "PAUSED", "--pending", "CANCELLING", "--success", "COMPLETED"),
    *("--failure", "FAILED", "--failure", "CRASHED", "--canceled", "CANCELLED"),
]
WAYS = [[], ["--api", "prefect"], BEFORE]

# Each flow runs until the test has seen both waits read it RUNNING (a file says so).
RUNNER = """
import os, sys, threading, time, urllib.request
from prefect import flow
from prefect.runtime import flow_run

def hold(name):
    print("RUN", name, flow_run.id, flush=True)
    go = os.path.join(sys.argv[1], name)
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)

@flow(name="jobwait-ok", persist_result=False)
def ok():
    hold("ok")
    return 1

@flow(name="jobwait-boom", persist_result=False)
def boom():
    hold("boom")
    raise ValueError("boom from jobwait's test")

def quietly(f):
    try:
        f()
    except ValueError:
        pass

# Started with the server, so that importing prefect overlaps its start.
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(os.environ["PREFECT_API_URL"] + "/health", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
threads = [threading.Thread(target=quietly, args=(f,)) for f in (ok, boom)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("DONE", flush=True)
"""


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this test started, by its id
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Prefect:
    def __init__(self, api: str, runner: subprocess.Popen[str], go: Path) -> None:
        self.api = api
        self.runner = runner  # the flows, started with the server
        self.go = go  # a file named after a flow here lets it end

    def url(self, run_id: str) -> str:
        return f"{self.api}/flow_runs/{run_id}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prefect]:
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    cli = Path(sys.executable).with_name("prefect")
    command = [str(cli), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-services", "--no-ui"]  # the webserver and its API only
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    go = tmp_path_factory.mktemp("go")
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(go)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "prefect server exited"
            assert time.monotonic() < deadline, "prefect server did not start"
            time.sleep(0.1)
        yield Prefect(f"http://127.0.0.1:{port}/api", runner, go)
    finally:
        _stop(runner)
        if runner.stdout is not None:
            runner.stdout.close()
        _stop(proc)


def jobwait(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobwait", "wait", url, *WAIT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def seen(proc: subprocess.Popen[str], text: str) -> str:
    """Read the wait's progress lines (stderr) until one holds ``text``."""
    assert proc.stderr is not None
    lines = ""
    while text not in lines:
        line = proc.stderr.readline()
        assert line, f"the wait ended before showing {text!r}: {lines}"
        lines += line
    return lines


def finish(proc: subprocess.Popen[str], before: str = "") -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    return proc.returncode, out, before + err


def test_flow_runs_that_succeed_and_fail(server: Prefect) -> None:
    runner = server.runner
    waits: dict[str, list[subprocess.Popen[str]]] = {}
    ids: dict[str, str] = {}
    results: dict[str, list[tuple[int, str, str]]] = {}
    try:
        assert runner.stdout is not None
        while len(waits) < 2:
            line = runner.stdout.readline()
            assert line, "the flow runner ended before both flows started"
            word, name, run_id = line.split()
            assert word == "RUN"
            # While the flow runs: zero-config, with the profile, and as before.
            url = server.url(run_id)
            waits[name] = [jobwait(url, *way) for way in WAYS]
            ids[name] = run_id
        for name, procs in waits.items():
            early = [seen(proc, "status 'RUNNING'") for proc in procs]
            (server.go / name).touch()  # the flow may end now
            results[name] = [finish(p, before) for p, before in zip(procs, early, strict=True)]
        assert runner.stdout.readline().strip() == "DONE"
    finally:
        for procs in waits.values():
            for proc in procs:
                _stop(proc)
    for code, _, err in results["ok"]:
        assert code == 0, err
        assert "job succeeded (status 'COMPLETED'" in err
    auto_err = results["ok"][0][2]
    assert "(read from state.type, as prefect)" in auto_err
    for code, _, err in results["boom"]:
        assert code == 1, err
        assert 'job failed: "Flow run encountered an exception: ValueError: boom' in err
        assert f"job '{ids['boom']}'" in err
    # From Python too, zero-config: the run is named by its URL.
    with httpx.Client() as client:
        job = wait_for_url(client, server.url(ids["ok"]), api="auto", timeout=10)
    assert job["state"]["type"] == "COMPLETED"


def _create_run(server: Prefect) -> str:
    with httpx.Client(base_url=server.api, timeout=10) as client:
        flow = client.post("/flows/", json={"name": "jobwait-cancel"}).json()
        run = client.post(
            "/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "SCHEDULED"}}
        ).json()
    return str(run["id"])


def _set_state(server: Prefect, run_id: str, kind: str) -> None:
    with httpx.Client(base_url=server.api, timeout=10) as client:
        answer = client.post(
            f"/flow_runs/{run_id}/set_state",
            json={"state": {"type": kind, "name": kind.title()}, "force": True},
        )
    assert answer.status_code in (200, 201), answer.text


def test_a_cancelled_flow_run_and_an_unknown_id(server: Prefect) -> None:
    run_id = _create_run(server)
    procs = [jobwait(server.url(run_id), *way) for way in WAYS]
    early = [seen(proc, "status 'SCHEDULED'") for proc in procs]  # the stop comes after
    # What `prefect flow-run cancel` does; a run with no infrastructure is cancelled at
    # once by the server, else its worker reports CANCELLED.
    _set_state(server, run_id, "CANCELLING")
    _set_state(server, run_id, "CANCELLED")
    for code, _, err in (finish(p, b) for p, b in zip(procs, early, strict=True)):
        assert code == 4, err
        assert f"job was canceled (job '{run_id}', last status 'CANCELLED'" in err
    missing = str(uuid.uuid4())
    for way in WAYS:
        code, out, err = finish(jobwait(server.url(missing), *way))
        assert code == 5, err
        assert "HTTP 404: Flow run not found; check the job id and the URL" in err
        assert out.strip() == "null"
