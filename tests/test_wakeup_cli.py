"""``jobwait wait --listen`` and ``jobwait serve --webhook``, in process, over loopback.

Realtime and bounded: the whole file takes about a second.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from jobwait.adapters.cli import main
from jobwait.adapters.server import JobServer, Webhooks
from support import free_port

pytestmark = pytest.mark.realtime


@pytest.fixture
def pushed() -> Iterator[tuple[JobServer, int]]:
    port = free_port()
    with JobServer(time_scale=10.0, webhooks=Webhooks(url=f"http://127.0.0.1:{port}/")) as s:
        yield s, port


def submit_once_listening(server: JobServer, port: int, **script: object) -> list[str]:
    """Submit the job from a thread as soon as ``port`` accepts connections (the
    wait's receiver is up), so no notice is sent before anyone listens."""
    job_ids: list[str] = []

    def submit() -> None:
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                time.sleep(0.005)
                continue
            job_ids.append(server.submit(id="j1", **script))  # type: ignore[arg-type]
            return

    threading.Thread(target=submit, daemon=True).start()
    return job_ids


def test_wait_listen_polls_at_once_on_each_notice(
    pushed: tuple[JobServer, int], capsys: pytest.CaptureFixture[str]
) -> None:
    server, port = pushed
    submit_once_listening(server, port, durations={"ready": 1.0, "started": 2.0})
    code = main(
        [
            "wait",
            f"{server.url}/jobs/j1",
            "--interval",
            "5",
            "--timeout",
            "4",
            "--retry-http",
            "404",  # until the job is submitted
            "--listen",
            f"127.0.0.1:{port}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"taking webhook notices at http://127.0.0.1:{port}/" in err
    polls = server.requests_for("j1")
    # Each poll is the first one or follows a notice ("started", "completed"); the
    # 4 s sleep to the deadline never ran out.
    assert len(polls) <= 4
    assert polls[-1].time - server.terminal_at("j1") < 1.0


def test_wait_listen_with_a_secret_ignores_unsigned_notices(
    pushed: tuple[JobServer, int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, port = pushed  # its notices are not signed: the wait must ignore them
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    job_id = server.submit(durations={"ready": 2.0, "started": 1e6})  # starts at 0.2 s
    code = main(
        [
            "wait",
            f"{server.url}/jobs/{job_id}",
            "--interval",
            "5",
            "--timeout",
            "1",
            "--listen",
            str(port),
            "--listen-secret-env",
            "HOOK_SECRET",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3, err  # timed out: polled at 0 and at the deadline only
    assert "(signed only)" in err
    assert "s3cret" not in err
    assert len(server.requests_for(job_id)) == 2
    assert "delivered" not in {n.outcome for n in server.notices}  # 401 (or not up yet)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "10.1.2.3:80"], "not a loopback address"),
        (["--listen", "nonsense:x"], "expected PORT or HOST:PORT"),
        (["--listen-secret-env", "NOPE_NOT_SET", "--listen", "0"], "is not set"),
        (["--listen-secret-env", "X"], "needs --listen"),
    ],
)
def test_wait_listen_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["wait", "http://127.0.0.1:9/jobs/x", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err


def test_wait_listen_on_a_busy_port_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["wait", "http://127.0.0.1:9/jobs/x", "--listen", f"127.0.0.1:{port}"])
    assert code == 2
    assert "cannot listen there" in capsys.readouterr().err


def test_serve_webhook_posts_notices_and_shows_the_listen_command(
    capsys: pytest.CaptureFixture[str], ctrl_c: Callable[[], None]
) -> None:
    from jobwait import Wakeup
    from jobwait.adapters.webhook import WebhookReceiver

    wakeup = Wakeup()
    rung = threading.Event()
    with wakeup.subscribe(rung.set) as sub, WebhookReceiver(wakeup) as hooks:
        url = hooks.url

        def stop_soon() -> None:
            rung.wait(10)
            ctrl_c()  # a real SIGINT: stops `jobwait serve` as Ctrl-C does

        stopper = threading.Thread(target=stop_soon)
        stopper.start()
        started = time.monotonic()
        code = main(["serve", "--no-auth", "-q", "--time-scale", "50", "--webhook", hooks.url])
        stopper.join(10)
        assert time.monotonic() - started < 5
        assert sub.take() == ["example-1"]
    out = capsys.readouterr().out
    assert code == 0
    assert f"posting a webhook notice to {url}" in out
    assert f"--listen 127.0.0.1:{url.split(':')[2].rstrip('/')}" in out


def test_serve_webhook_options_need_webhook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--webhook-drop", "0.3"]) == 2
    assert "needs --webhook" in capsys.readouterr().err
