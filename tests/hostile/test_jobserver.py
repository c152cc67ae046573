"""The job server (``adapters/server.py``, ``jobwait serve``) against hostile scripts
and clients.

The promise (docs/server.md): a ``POST /jobs`` body that is not a valid job script
(not JSON, nested too deep, a number out of range, a fault it cannot carry out) gets
400 with a message naming the field; the server survives any script and any client,
answers everyone else meanwhile, and ``close()`` raises only for a real fault of the
board, never for what a client sent. The same scripts given in Python raise
``JobScriptError``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _hostile import post, talk

from jobwait.adapters.server import JobServer, Webhooks
from jobwait.testing import Fault, JobBoard, JobScriptError

pytestmark = pytest.mark.realtime

HUGE_INT = "1" + "0" * 400  # 10**400 as JSON: a valid int no float can hold


def _port(server: JobServer) -> int:
    return int(server.url.split(":")[2].split("/")[0])


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


@pytest.fixture
def server() -> Iterator[JobServer]:
    server = JobServer()
    server.start()
    try:
        yield server
        # Whatever the test did, the server still answers everyone, on its one thread.
        assert server._thread is not None
        assert server._thread.is_alive()
        answer = talk(_port(server), _get("/v0.4/jobs"))
        assert answer.statuses == [200], answer
    finally:
        server.close()  # raises RuntimeError if the loop died or the board raised


def _script(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _fault(fields: str) -> bytes:
    return b'{"faults": [{"poll": 1, ' + fields.encode() + b"}]}"


def _slow(delay: str) -> bytes:
    return _fault(f'"kind": "slow", "delay": {delay}')


# body -> the answer: 400 for a script refused; else the status its first GET gets.
SCRIPTS: dict[str, tuple[bytes, int]] = {
    "deep-array": (b"[" * 100_000 + b"]" * 100_000, 400),
    "deep-unclosed": (b"[" * 500_000, 400),
    "deep-objects": (b'{"a":' * 100_000, 400),
    "deep-metadata": (b'{"metadata": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001, 400),
    "metadata-nested-50": (b'{"metadata": ' + b'{"a":' * 50 + b"1" + b"}" * 51, 200),
    "slow-delay-1e7": (_slow("1e7"), 400),
    "slow-delay-1e308": (_slow("1e308"), 400),
    "slow-delay-huge-int": (_slow(HUGE_INT), 400),
    "slow-delay-infinity": (_slow("Infinity"), 400),
    "slow-delay-nan": (_slow("NaN"), 400),
    "slow-delay-negative": (_slow("-1"), 400),
    "slow-delay-true": (_slow("true"), 400),
    "slow-delay-0.2": (_slow("0.2"), 200),
    "durations-huge-int": (b'{"durations": {"ready": ' + HUGE_INT.encode() + b"}}", 400),
    "durations-overflow-to-inf": (_script(durations={"ready": 1e308, "started": 1e308}), 400),
    "durations-nan": (b'{"durations": {"ready": NaN}}', 400),
    "number-over-4300-digits": (b'{"durations": {"ready": 1' + b"0" * 5_000 + b"}}", 400),
    "poll-huge-int": (b'{"faults": [{"kind": "500", "poll": ' + HUGE_INT.encode() + b"}]}", 200),
    "count-infinity": (_fault('"kind": "500", "count": 1e400'), 400),
    "retry-after-huge-int": (_fault(f'"kind": "429", "retry_after": {HUGE_INT}'), 400),
    "retry-after-infinity": (_fault('"kind": "429", "retry_after": 1e400'), 400),
    "retry-after-text": (_fault('"kind": "429", "retry_after": "soon"'), 429),
    "truncate-to-huge-int": (_fault(f'"kind": "truncated", "truncate_to": {HUGE_INT}'), 200),
    "invalid-utf8": (b'{"name": "\xff"}', 400),
    "top-level-list": (b"[]", 400),
    "id-not-a-string": (_script(id=7), 400),
    "faults-not-a-list": (_script(faults={"kind": "500"}), 400),
    "fault-not-an-object": (_script(faults=[7]), 400),
    "unknown-key": (_script(colour="red"), 400),
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_any_posted_script_gets_201_or_400_and_the_server_goes_on(
    server: JobServer, name: str
) -> None:
    body, then = SCRIPTS[name]
    answer = talk(_port(server), post("/v0.4/jobs", body))
    assert answer.statuses == [201 if then != 400 else 400], answer
    if then == 400:
        message = json.loads(answer.data.split(b"\r\n\r\n", 1)[1])["message"]
        assert len(message) < 300
        return
    job_id = json.loads(answer.data.split(b"\r\n\r\n", 1)[1])["id"]
    got = talk(_port(server), _get(f"/v0.4/jobs/{job_id}"))
    assert got.statuses == [then], got


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fault("slow", poll=1, delay=1e7),
        lambda: Fault("slow", poll=1, delay=10**400),
        lambda: Fault("429", poll=1, retry_after=10**5000),
        lambda: JobBoard(time_scale=10**400),
        lambda: JobBoard().submit(now=10**400),
        lambda: JobBoard().submit(now=0.0, durations={"ready": 10**400}),
        lambda: JobBoard().submit(now=0.0, durations={"ready": 1e308, "started": 1e308}),
        lambda: JobServer(time_scale=float("nan")),
    ],
    ids=[
        "slow-1e7",
        "slow-huge-int",
        "retry-after-5000-digits",
        "time-scale-huge-int",
        "now-huge-int",
        "durations-huge-int",
        "durations-overflow",
        "time-scale-nan",
    ],
)
def test_the_same_scripts_in_python_raise_job_script_error(make: Any) -> None:
    with pytest.raises(JobScriptError):
        make()


def test_webhooks_with_a_huge_delay_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="delay"):
        Webhooks(url="http://127.0.0.1:9/", delay=10**400)


# --- clients that misbehave -----------------------------------------------------------

CLIENTS: dict[str, tuple[tuple[bytes | float, ...], str, list[int]]] = {
    # steps, how the client finishes, the answers it gets
    "length-5000-digits": ((post("/v0.4/jobs", b"{}", length="9" * 5000),), "read", [400]),
    "length-superscript": ((post("/v0.4/jobs", b"{}", length="\xb2"),), "read", [400]),
    "length-conflict": ((post("/v0.4/jobs", b"{}", "Content-Length: 3"),), "read", [400]),
    "reset-mid-head": ((b"POST /v0.4/jobs HTTP/1.1\r\nContent-Le",), "reset", []),
    "reset-mid-body": ((post("/v0.4/jobs", b"{}", length="100"),), "reset", []),
    "reset-before-reading": ((post("/v0.4/jobs", b"[" * 100_000),), "reset", []),
    "half-close-mid-body": ((post("/v0.4/jobs", b"{}", length="100"),), "half-close", [400]),
    "tls-client-hello": ((b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",), "read", [400]),
    "endless-head": ((b"GET / HTTP/1.1\r\nX-A: " + b"b" * 200_000,), "read", [431]),
    "deep-then-more-on-the-same-connection": (
        (post("/v0.4/jobs", b"[" * 100_000) + _get("/v0.4/jobs"),),
        "read",
        [400, 200],
    ),
}


@pytest.mark.parametrize("name", list(CLIENTS))
def test_a_misbehaving_client_gets_its_answer_and_costs_nothing_else(
    server: JobServer, name: str
) -> None:
    steps, finish, statuses = CLIENTS[name]
    answer = talk(_port(server), *steps, finish=finish, answers=max(1, len(statuses)))
    assert answer.statuses == statuses, answer


def test_a_client_gone_before_its_slow_answer_costs_nothing(server: JobServer) -> None:
    job_id = server.submit(faults=[Fault("slow", poll=1, delay=0.2)])
    talk(_port(server), _get(f"/v0.4/jobs/{job_id}"), finish="reset")
    time.sleep(0.4)  # the delayed answer meets a closed socket


def test_many_clients_at_once_are_all_answered(server: JobServer) -> None:
    job_id = server.submit()
    answers: list[list[int]] = []
    lock = threading.Lock()
    start = threading.Barrier(100, timeout=10)

    def client() -> None:
        start.wait()
        answer = talk(_port(server), _get(f"/v0.4/jobs/{job_id}"))
        with lock:
            answers.append(answer.statuses)

    threads = [threading.Thread(target=client) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert answers == [[200]] * 100


def test_a_slow_fault_at_the_bound_does_not_stop_the_loop(server: JobServer) -> None:
    # The longest delay a script may ask for: answered late, but the loop's timer
    # wait must not overflow, and everyone else is served meanwhile.
    job_id = server.submit(faults=[Fault("slow", poll=1, delay=86_400.0)])
    with socket.create_connection(("127.0.0.1", _port(server))) as sock:
        sock.sendall(_get(f"/v0.4/jobs/{job_id}"))
        time.sleep(0.1)
        answer = talk(_port(server), _get("/v0.4/jobs"))
        assert answer.statuses == [200], answer
