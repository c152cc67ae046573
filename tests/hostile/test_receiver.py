"""The webhook receiver (``adapters/webhook.py``) against hostile senders.

The promise (docs/push.md, "What the receiver guarantees"): every request gets an
answer, 202 for a notice taken or a 4xx that says what was wrong, whatever the sender
does; the receiver prints nothing (no traceback, whatever a peer does) and goes on
serving; a burst of senders is served at once; a connection that stalls is dropped
after the receiver's ``timeout`` (408 mid-body), and the connections served at once
are bounded by ``max_connections``. ``notice_id`` turns any body into a job id or a
``ValueError``, never a ``RecursionError``. ``jobwait wait --listen`` shows no
traceback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from _hostile import Exchange, post, talk

from jobwait import Wakeup
from jobwait.adapters.server import JobServer
from jobwait.adapters.webhook import WebhookReceiver, notice_id
from support import free_port

pytestmark = pytest.mark.realtime

STALL = 0.3  # the receiver's timeout in these tests
SLACK = 2.0  # a loaded CI machine; a broken bound overshoots by the default 10 s
MAX_BODY = 16_384
CONNECTIONS = 4
NOTICE = b'{"id": "j1", "status": "completed"}'


@dataclass
class Hooks:
    receiver: WebhookReceiver
    port: int
    woken: list[str | None]
    subscription: object

    def take(self) -> list[str | None]:
        self.woken += self.subscription.take()  # type: ignore[attr-defined]
        return self.woken


@pytest.fixture
def hooks(capfd: pytest.CaptureFixture[str]) -> Iterator[Hooks]:
    wakeup = Wakeup()
    with (
        wakeup.subscribe(lambda: None, fleet=True) as subscription,
        WebhookReceiver(
            wakeup, timeout=STALL, max_body=MAX_BODY, max_connections=CONNECTIONS
        ) as receiver,
    ):
        port = int(receiver.url.rsplit(":", 1)[1].rstrip("/"))
        state = Hooks(receiver, port, [], subscription)
        yield state
        # Whatever the test did, the receiver still takes a notice...
        after = talk(port, post("/", b'{"id": "after"}'))
        assert after.statuses == [202], after
        assert "after" in state.take()
    # ... and nothing was printed: no traceback from a handler thread.
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# --- Content-Length: the one framing the receiver reads --------------------------------

LENGTHS: dict[str, tuple[str | bool, int]] = {
    "superscript-two": ("\xb2", 400),  # str.isdigit() says yes; int() says no
    "superscript-digits": ("\xb9\xb2\xb3", 400),
    "5000-digits": ("9" * 5000, 413),
    "over-max-body": (str(MAX_BODY + 1), 413),
    "negative": ("-1", 400),
    "plus-sign": ("+36", 400),
    "decimal-point": ("36.0", 400),
    "hex": ("0x24", 400),
    "inner-space": ("3 6", 400),
    "empty": ("", 400),
    "missing": (False, 411),
}


@pytest.mark.parametrize("name", list(LENGTHS))
def test_a_bad_content_length_gets_a_4xx(hooks: Hooks, name: str) -> None:
    length, status = LENGTHS[name]
    answer = talk(hooks.port, post("/", NOTICE, length=length))
    assert answer.statuses == [status], answer
    assert "j1" not in hooks.take()


@pytest.mark.parametrize(
    ("name", "headers", "status"),
    [
        ("two-lengths-that-differ", ("Content-Length: 35", "Content-Length: 36"), 400),
        ("two-lengths-that-agree", ("Content-Length: 35", "Content-Length: 35"), 202),
        ("chunked", ("Transfer-Encoding: chunked",), 411),
        ("chunked-and-length", ("Transfer-Encoding: chunked", "Content-Length: 35"), 411),
    ],
)
def test_framing_other_than_one_content_length_is_refused(
    hooks: Hooks, name: str, headers: tuple[str, ...], status: int
) -> None:
    refused = status != 202
    # A refusal closes the connection (where the body ends is unknown): read to the end.
    answer = talk(hooks.port, post("/", NOTICE, *headers, length=False), answers=1 + refused)
    assert answer.statuses == [status], answer
    assert answer.closed == refused


# --- bodies ----------------------------------------------------------------------------

BODIES: dict[str, tuple[bytes, str | None]] = {
    # body -> the id woken, or None for a 400
    "deep-array": (b"[" * 10_000 + b"]" * 6_000, None),
    "deep-unclosed": (b"[" * MAX_BODY, None),
    "deep-objects": (b'{"a":' * 3_000, None),
    "deep-after-the-id": (b'{"id": "j1", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", None),
    "number-over-4300-digits": (b'{"id": "j1", "n": 1' + b"0" * 5_000 + b"}", None),
    "invalid-utf8": (b'{"id": "\xff\xfe"}', None),
    "truncated": (b'{"id": "j', None),
    "empty": (b"", None),
    "top-level-list": (b'["j1"]', None),
    "top-level-string": (b'"j1"', None),
    "id-number": (b'{"id": 7}', None),
    "id-huge-number": (b'{"id": 1' + b"0" * 3_000 + b"}", None),
    "id-null": (b'{"id": null}', None),
    "id-empty": (b'{"id": ""}', None),
    "id-object": (b'{"id": {"id": "j1"}}', None),
    "brackets-inside-the-id": (b'{"id": "' + b"[" * 10_000 + b'"}', "[" * 10_000),
    "byte-order-mark": (b'\xef\xbb\xbf{"id": "bom"}', "bom"),
    "utf-16": ('{"id": "wide"}'.encode("utf-16"), "wide"),
    "lone-surrogate-id": (b'{"id": "\\ud800"}', "\ud800"),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_any_body_is_a_202_for_a_job_id_or_a_400(hooks: Hooks, name: str) -> None:
    body, job_id = BODIES[name]
    answer = talk(hooks.port, post("/", body))
    assert answer.statuses == [400 if job_id is None else 202], answer
    woken = hooks.take()
    assert woken == ([] if job_id is None else [job_id])


NOT_NOTICES: dict[str, bytes] = {
    "array-100k-deep": b"[" * 100_000 + b"]" * 100_000,
    "object-100k-deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unclosed-1m-deep": b"[" * 1_000_000,
    "mixed-50k-deep": b'[{"a":' * 50_000,
}


@pytest.mark.parametrize("name", list(NOT_NOTICES))
def test_notice_id_turns_deep_nesting_into_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        notice_id(NOT_NOTICES[name])


# --- peers that misbehave on the wire ----------------------------------------------------


def test_a_reset_mid_head_is_dropped_quietly(hooks: Hooks) -> None:
    talk(hooks.port, b"POST / HTTP/1.1\r\nContent-Le", finish="reset")


def test_a_reset_mid_body_is_dropped_quietly(hooks: Hooks) -> None:
    talk(hooks.port, post("/", NOTICE, length="100"), 0.05, finish="reset")
    assert hooks.take() == []


def test_a_reset_before_the_answer_is_read_is_dropped_quietly(hooks: Hooks) -> None:
    # The answer (400) is written to a socket the peer already reset.
    talk(hooks.port, post("/", b"[" * 10_000), finish="reset")
    time.sleep(0.1)  # let the handler try to answer


def test_a_body_cut_short_gets_400(hooks: Hooks) -> None:
    answer = talk(hooks.port, post("/", NOTICE, length="100"), finish="half-close", answers=2)
    assert answer.statuses == [400], answer
    assert answer.closed
    assert hooks.take() == []


def test_a_stall_mid_body_gets_408_after_the_timeout(hooks: Hooks) -> None:
    answer = talk(
        hooks.port, post("/", NOTICE, length="100"), answers=2, read_for=STALL + SLACK + 1
    )
    assert answer.statuses == [408], answer
    assert answer.closed
    assert STALL <= answer.seconds < STALL + SLACK


@pytest.mark.parametrize(
    "steps",
    [(), (b"POST / HTTP/1.1\r\n",), (post("/", NOTICE),)],
    ids=["idle", "stall-mid-head", "idle-after-a-notice"],
)
def test_a_silent_connection_is_dropped_after_the_timeout(
    hooks: Hooks, steps: tuple[bytes, ...]
) -> None:
    answer = talk(hooks.port, *steps, answers=len(steps) + 1, read_for=STALL + SLACK + 1)
    assert answer.closed, answer
    assert answer.statuses == ([202] if steps and steps[0].endswith(NOTICE) else [])
    assert STALL <= answer.seconds < STALL + SLACK


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        ("huge-request-line", b"POST /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
        ("too-many-headers", b"POST / HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431),
        ("huge-header", b"POST / HTTP/1.1\r\nX-A: " + b"b" * 70_000 + b"\r\n\r\n", 431),
        ("get", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        ("another-path", post("/elsewhere", NOTICE), 404),
    ],
)
def test_requests_that_are_no_notice_get_a_4xx(
    hooks: Hooks, name: str, data: bytes, status: int
) -> None:
    answer = talk(hooks.port, data)
    assert answer.statuses == [status], answer
    assert hooks.take() == []


def test_pipelined_notices_are_each_answered(hooks: Hooks) -> None:
    two = post("/", b'{"id": "a"}') + post("/", b'{"id": "b"}')
    answer = talk(hooks.port, two, answers=2)
    assert answer.statuses == [202, 202], answer
    assert hooks.take() == ["a", "b"]


def test_expect_100_continue_is_answered(hooks: Hooks) -> None:
    head = post("/", b"", "Expect: 100-continue", length=str(len(NOTICE)))
    answer = talk(hooks.port, head, 0.05, NOTICE, answers=2)
    assert answer.statuses == [100, 202], answer


# --- many senders ----------------------------------------------------------------------


def test_connections_served_at_once_are_bounded_and_stalls_cannot_lock_it(
    hooks: Hooks,
) -> None:
    base = threading.active_count()
    most = 0
    done = threading.Event()

    def watch() -> None:  # one thread serves one connection: count them all along
        nonlocal most
        while not done.wait(0.005):
            most = max(most, threading.active_count() - base - 1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    idle = [socket.create_connection(("127.0.0.1", hooks.port)) for _ in range(4 * CONNECTIONS)]
    try:
        # A real sender is served once the stalled ones time out, not refused.
        answer = talk(hooks.port, post("/", NOTICE), read_for=4 * STALL + SLACK)
        assert answer.statuses == [202], answer
    finally:
        done.set()
        watcher.join(10)
        for sock in idle:
            sock.close()
    assert 0 < most <= CONNECTIONS


def test_a_burst_of_senders_is_served_at_once(hooks: Hooks) -> None:
    # A listen backlog of 5 dropped SYNs from a burst: the senders it dropped waited
    # for the kernel's 1 s retransmit. 30 senders at once must all get in first time.
    senders = 30
    start = threading.Barrier(senders, timeout=10)
    answers: list[Exchange] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        start.wait()
        answer = talk(hooks.port, post("/", f'{{"id": "s{i}"}}'.encode()))
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.statuses[0] if a.statuses else 0 for a in answers) == [202] * senders
    assert max(a.seconds for a in answers) < 1.0  # no sender waited on a dropped SYN
    assert sorted(hooks.take()) == sorted(f"s{i}" for i in range(senders))


# --- jobwait wait --listen ---------------------------------------------------------------


PEERS: dict[str, tuple[bytes | float, ...]] = {
    "reset-mid-body": (post("/", NOTICE, length="100"), 0.05),
    "superscript-length": (post("/", NOTICE, length="\xb2"),),
    "deep-json": (post("/", b"[" * 3000),),
}


@pytest.mark.parametrize("peer", list(PEERS))
def test_wait_listen_prints_no_traceback(peer: str, capsys: pytest.CaptureFixture[str]) -> None:
    from jobwait.adapters.cli import main

    port = free_port()

    def misbehave() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                talk(port, *PEERS[peer], finish="reset", read_for=2)
                break
            except OSError:  # not listening yet
                time.sleep(0.02)
        time.sleep(0.1)

    with JobServer(time_scale=20.0) as server:
        job_id = server.submit(durations={"ready": 4.0, "started": 4.0})  # 0.4 s
        peer_thread = threading.Thread(target=misbehave)
        peer_thread.start()
        try:
            code = main(
                ["wait", f"{server.url}/jobs/{job_id}", "--listen", str(port), "--interval", "0.1"]
            )
        finally:
            peer_thread.join(15)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err + out
    assert "Error" not in err
