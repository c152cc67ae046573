"""Webhooks over real loopback sockets: ``WebhookReceiver`` and ``JobServer(webhooks=)``.

Every test here is ``realtime``: bounded in time (the whole file takes about 2 s) and
on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobwait import Backoff, Wakeup
from jobwait.adapters import httpx as jw_httpx
from jobwait.adapters.server import JobServer, Webhooks
from jobwait.adapters.webhook import SIGNATURE_HEADER, WebhookReceiver, notice_id, sign
from jobwait.testing import JobBoard

pytestmark = pytest.mark.realtime


def post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST") -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(method, parts.path or "/", body=body, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def wait_until(predicate: Any, seconds: float = 3.0) -> None:
    end = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


# --- the receiver ---------------------------------------------------------------------


def test_receiver_wakes_with_the_notices_job_id_and_answers_202() -> None:
    wakeup = Wakeup()
    rung = threading.Event()
    with (
        wakeup.subscribe(rung.set, job_id="j1") as sub,
        WebhookReceiver(wakeup, path="/hooks") as hooks,
    ):
        assert post(hooks.url, json.dumps({"id": "j1", "status": "completed"}).encode()) == 202
        assert rung.wait(3)
        assert sub.take() == ["j1"]
        assert hooks.received == 1
        assert "received=1" in repr(hooks)


@pytest.mark.parametrize(
    ("body", "headers", "method", "path", "status"),
    [
        (b"not json", None, "POST", "/hooks", 400),
        (b'["j1"]', None, "POST", "/hooks", 400),
        (b'{"id": 7}', None, "POST", "/hooks", 400),
        (b'{"id": "j1"}', None, "POST", "/elsewhere", 404),
        (b"", None, "GET", "/hooks", 405),
        (b"x" * 5000, None, "POST", "/hooks", 413),
    ],
)
def test_receiver_refuses_what_names_no_job(
    body: bytes, headers: dict[str, str] | None, method: str, path: str, status: int
) -> None:
    wakeup = Wakeup()
    with wakeup.subscribe(lambda: None) as sub, WebhookReceiver(wakeup, path="/hooks") as hooks:
        base = hooks.url.rsplit("/", 1)[0]
        assert post(base + path, body, headers, method) == status
        assert not sub.pending()
        assert hooks.rejected == 1


def test_receiver_with_a_secret_takes_only_signed_notices() -> None:
    wakeup = Wakeup()
    body = b'{"id": "j1"}'
    with (
        wakeup.subscribe(lambda: None) as sub,
        WebhookReceiver(wakeup, secret="s3cret") as hooks,
    ):
        assert post(hooks.url, body) == 401
        assert post(hooks.url, body, {SIGNATURE_HEADER: sign("wrong", body)}) == 401
        assert not sub.pending()
        assert post(hooks.url, body, {SIGNATURE_HEADER: sign("s3cret", body)}) == 202
        assert sub.take() == ["j1"]
        assert "s3cret" not in repr(hooks)


def test_receiver_refuses_a_remote_address_unless_allowed() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        WebhookReceiver(Wakeup(), host="0.0.0.0")


def test_notice_id_says_what_is_wrong() -> None:
    assert notice_id(b'{"job": "x"}', field="job") == "x"
    with pytest.raises(ValueError, match="no job id"):
        notice_id(b'{"id": ""}')


# --- the server sends -------------------------------------------------------------------


def test_board_timeline_lists_each_change_and_a_cancel_cuts_it() -> None:
    board = JobBoard()
    a = board.submit(now=10.0, durations={"submitted": 0.0, "ready": 1.0, "started": 2.0})
    assert board.timeline(a) == [(10.0, "ready"), (11.0, "started"), (13.0, "completed")]
    board.cancel(a, now=11.5)
    assert board.timeline(a) == [(10.0, "ready"), (11.0, "started"), (11.5, "canceled")]


def test_server_posts_a_notice_per_status_change() -> None:
    wakeup = Wakeup()
    seen: list[str | None] = []
    done = threading.Event()

    def ring() -> None:
        seen.extend(sub.take())
        if len(seen) >= 3:
            done.set()

    sub = wakeup.subscribe(ring, fleet=True)
    with (
        WebhookReceiver(wakeup, secret="k") as hooks,
        JobServer(time_scale=100.0, webhooks=Webhooks(url=hooks.url, secret="k")) as server,
    ):
        job_id = server.submit(durations={"submitted": 1.0, "ready": 1.0, "started": 1.0})
        assert done.wait(3)
        wait_until(lambda: len(server.notices) == 3)
    notices = server.notices
    assert [(n.status, n.outcome) for n in notices] == [
        ("ready", "delivered"),
        ("started", "delivered"),
        ("completed", "delivered"),
    ]
    assert seen == [job_id] * 3
    assert all(n.sent_at is not None and n.sent_at >= n.changed_at for n in notices)
    shown = repr(Webhooks(url="http://127.0.0.1:9/", secret="hunter2"))
    assert "hunter2" not in shown
    assert "signed" in shown


def test_server_scripts_drops_duplicates_and_a_cancel() -> None:
    wakeup = Wakeup()
    with (
        WebhookReceiver(wakeup) as hooks,
        JobServer(
            time_scale=100.0,
            webhooks=Webhooks(url=hooks.url, drop=0.3, duplicate=0.3, delay=0.02, seed=7),
        ) as server,
    ):
        ids = [server.submit(durations={"ready": 1.0, "started": 1.0}) for _ in range(20)]
        slow = server.submit(durations={"ready": 0.0, "started": 300.0})
        server.cancel(slow)
        board = server.board
        wait_until(lambda: all(board.status(i, now=server.now()) == "completed" for i in ids))
        wait_until(lambda: server.notices_pending == 0)  # the last delays run out
    notices = server.notices
    outcomes = {n.outcome for n in notices}
    assert outcomes <= {"delivered", "dropped"}
    dropped = sum(n.outcome == "dropped" for n in notices)
    copies = sum(n.copy == 1 for n in notices)
    assert 0 < dropped < len(notices)
    assert copies > 0
    assert [(n.status, n.outcome) for n in notices if n.job_id == slow][-1][0] == "canceled"
    assert hooks.received == sum(n.outcome == "delivered" for n in notices)


def test_webhooks_refuse_a_remote_callback_and_bad_odds() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        Webhooks(url="http://example.com/hook")
    with pytest.raises(ValueError, match="probability"):
        Webhooks(url="http://127.0.0.1:1/", drop=1.5)


# --- hybrid waits end to end ------------------------------------------------------------


def test_a_job_is_noticed_at_its_webhook_not_at_the_next_poll() -> None:
    wakeup = Wakeup()
    with (
        WebhookReceiver(wakeup) as hooks,
        JobServer(time_scale=10.0, webhooks=Webhooks(url=hooks.url)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        job_id = server.submit(durations={"ready": 0.0, "started": 1.0})  # 0.1 s
        job = jw_httpx.wait_for_url(
            client,
            f"/jobs/{job_id}",
            job_id=job_id,
            backoff=Backoff(initial=5.0, factor=1.0),
            timeout=3.0,
            wakeup=wakeup,
        )
        noticed = server.now()
        assert job["status"] == "completed"
        polls = server.requests_for(job_id)
    assert len(polls) == 2  # at the start, and at the push
    assert noticed - server.terminal_at(job_id) < 2.0  # not the 3 s of the clamped sleep


def test_thirty_percent_dropped_every_job_ends_with_one_poll_per_push_at_most() -> None:
    async def main(server: JobServer, wakeup: Wakeup, ids: list[str]) -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            return await asyncio.gather(
                *(
                    jw_httpx.async_wait_for_url(
                        client,
                        f"/jobs/{i}",
                        job_id=i,
                        backoff=Backoff(initial=1.0, factor=1.0),
                        timeout=5.0,
                        wakeup=wakeup,
                    )
                    for i in ids
                )
            )

    wakeup = Wakeup()
    with (
        WebhookReceiver(wakeup) as hooks,
        JobServer(
            time_scale=10.0,
            webhooks=Webhooks(url=hooks.url, drop=0.3, duplicate=0.2, delay=0.05, seed=3),
        ) as server,
    ):
        ids = [
            server.submit(durations={"ready": 1.0 + i % 3, "started": 1.0 + i % 4})
            for i in range(24)
        ]
        started = server.now()
        jobs = asyncio.run(main(server, wakeup, ids))
        ended = server.now()
        notices = server.notices
        requests = {i: server.requests_for(i) for i in ids}
    assert [job["status"] for job in jobs] == ["completed"] * len(ids)
    for job_id in ids:
        received = sum(n.job_id == job_id and n.outcome == "delivered" for n in notices)
        scheduled = 1 + int(ended - started)  # flat 1 s schedule, from the start
        assert len(requests[job_id]) <= scheduled + received, job_id
