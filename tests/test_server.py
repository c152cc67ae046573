"""JobServer over real loopback sockets: few, short, bounded tests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from jobwait.adapters.server import JobServer, RequestRecord
from jobwait.testing import Fault, JobScriptError

pytestmark = pytest.mark.realtime

KEY = "s3cret-key"
AUTH = {"Authorization": f"apiKey {KEY}"}
TIMEOUT = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before]
    assert leaked == []


def raw_request(server: JobServer, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    host, port = server.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_serves_the_board_over_http_and_logs_requests(no_leaked_threads: None) -> None:
    clock = FakeClock()
    with (
        JobServer(api_key=KEY, time_scale=10.0, clock=clock) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=TIMEOUT) as client,
    ):
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/v0.4")
        job = server.submit(durations={"ready": 10.0, "started": 10.0})
        assert client.get(f"/jobs/{job}").json()["status"] == "ready"
        clock.now += 1.5
        assert client.get(f"/jobs/{job}").json()["status"] == "started"
        created = client.post("/jobs", json={"id": "a b/c", "outcome": "failed"})
        assert created.status_code == 201
        batch = client.get("/jobs", params={"ids": ["a b/c", job, "missing"]}).json()
        assert {j["id"] for j in batch["jobs"]} == {"a b/c", job}
        clock.now += 5.0
        assert client.get("/jobs/a%20b%2Fc").json()["failure"]["code"] == "SimulatedFailure"
        assert client.put(f"/jobs/{job}/status/cancel").json() == {"id": job, "status": "completed"}
        outside = client.get(server.url.removesuffix("/v0.4") + "/jobs/" + job)
        assert outside.status_code == 404
        log = server.requests
        assert [(r.method, r.status_code) for r in log] == [
            ("GET", 200),
            ("GET", 200),
            ("POST", 201),
            ("GET", 200),
            ("GET", 200),
            ("PUT", 200),
            ("GET", 404),
        ]
        assert log[0] == RequestRecord(
            method="GET", path=f"/v0.4/jobs/{job}", time=1000.0, status_code=200
        )
        assert [r.path for r in server.requests_for("a b/c")] == [
            "/v0.4/jobs?ids=a+b%2Fc&ids=job-0001&ids=missing",
            "/v0.4/jobs/a%20b%2Fc",
        ]
        assert len(server.requests_for(job)) == 4
        assert server.board.polls(job) == 3
        assert server.terminal_at(job) == pytest.approx(1002.0)


def test_auth_401_and_the_key_is_never_logged(no_leaked_threads: None) -> None:
    with JobServer(api_key=KEY) as server, httpx.Client(timeout=TIMEOUT) as client:
        job = server.submit()
        for headers in ({}, {"Authorization": "apiKey nope"}):
            reply = client.get(f"{server.url}/jobs/{job}", headers=headers)
            assert reply.status_code == 401
            assert reply.json()["statusCode"] == 401
            assert reply.headers["x-request-id"]
        ok = client.get(f"{server.url}/jobs/{job}?key={KEY[:3]}", headers=AUTH)
        assert ok.status_code == 200
        assert KEY not in repr(server.requests) + repr(server) + repr(server.board)
        assert [r.status_code for r in server.requests] == [401, 401, 200]


def test_malformed_request_gets_400_and_the_server_keeps_serving(
    no_leaked_threads: None,
) -> None:
    with JobServer() as server:
        job = server.submit()
        answer = raw_request(server, b"GARBAGE\x00 nonsense\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")
        too_big = raw_request(
            server, b"POST /v0.4/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
        )
        assert too_big.startswith(b"HTTP/1.1 413 ")
        head = b"GET /v0.4/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        assert raw_request(server, head).startswith(b"HTTP/1.1 431 ")
        with httpx.Client(timeout=TIMEOUT) as client:
            assert client.get(f"{server.url}/jobs/{job}").status_code == 200
        assert [r.status_code for r in server.requests] == [400, 413, 431, 200]


def test_keep_alive_and_pipelining_on_one_connection(no_leaked_threads: None) -> None:
    with JobServer() as server:
        job = server.submit()
        request = f"GET /v0.4/jobs/{job} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        last = f"GET /v0.4/jobs/{job} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        answer = raw_request(server, request * 3 + last)
        assert answer.count(b"HTTP/1.1 200 ") == 4
        assert server.board.polls(job) == 4


def test_reset_truncated_and_slow_faults_on_the_wire(no_leaked_threads: None) -> None:
    script = [
        Fault("reset", poll=1),
        Fault("truncated", poll=2, truncate_to=7),
        Fault("slow", poll=3, delay=30.0),
    ]
    with JobServer() as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        job = server.submit(faults=script)
        with pytest.raises(httpx.ReadError):
            client.get(f"/jobs/{job}")
        with pytest.raises(httpx.RemoteProtocolError, match="received 7 bytes"):
            client.get(f"/jobs/{job}")
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"/jobs/{job}", timeout=0.2)
        assert client.get(f"/jobs/{job}").json()["status"] == "ready"
        assert [(r.status_code, r.fault) for r in server.requests] == [
            (None, "reset"),
            (200, "truncated"),
            (200, "slow"),
            (200, None),
        ]
    # leaving the block with the slow reply still scheduled must not hang or leak


def test_many_concurrent_keep_alive_connections(no_leaked_threads: None) -> None:
    with JobServer() as server:
        job = server.submit()
        host, port = server.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
        request = f"GET /v0.4/jobs/{job} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        socks = [socket.create_connection((host, int(port)), timeout=TIMEOUT) for _ in range(300)]
        try:
            for sock in socks:
                sock.sendall(request)
            for sock in socks:
                head = sock.recv(65536)
                assert head.startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in socks:
                sock.close()
        assert server.board.polls(job) == 300


def test_close_with_open_connections_joins_the_thread(no_leaked_threads: None) -> None:
    server = JobServer()
    with server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        job = server.submit()
        assert client.get(f"/jobs/{job}").status_code == 200
        server.close()  # the client's keep-alive connection is still open
        with pytest.raises(httpx.TransportError):
            client.get(f"/jobs/{job}")
    server.close()  # closing twice is fine


def test_server_wide_faults_and_json_submission(no_leaked_threads: None) -> None:
    faults = [Fault("503", request=1, retry_after="1"), Fault("html", request=2)]
    with (
        JobServer(faults=faults, prefix="") as server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as client,
    ):
        body = {"id": "j", "faults": [Fault("429", poll=1, retry_after="0.5").to_json()]}
        first = client.post("/jobs", json=body)
        assert (first.status_code, first.headers["retry-after"]) == (503, "1")
        assert client.post("/jobs", json=body).headers["content-type"].startswith("text/html")
        assert client.post("/jobs", json=body).status_code == 201
        limited = client.get("/jobs/j")
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "0.5")
        assert json.loads(client.get("/jobs/j").content)["id"] == "j"


def test_refuses_non_loopback_hosts_and_bad_scripts() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        JobServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="non-loopback"):
        JobServer(host="example.com")
    with pytest.raises(JobScriptError):
        JobServer(faults=[Fault("500", poll=1)])
    with pytest.raises(ValueError, match="prefix"):
        JobServer(prefix="v0.4/")


def test_a_board_error_answers_500_and_is_raised_at_close(
    monkeypatch: pytest.MonkeyPatch, no_leaked_threads: None
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("board bug")

    server = JobServer()
    with (  # noqa: PT012 - the error surfaces when the server block exits
        pytest.raises(RuntimeError, match="failed while serving") as caught,
        server,
        httpx.Client(base_url=server.url, timeout=TIMEOUT) as client,
    ):
        monkeypatch.setattr(type(server.board), "handle", broken)
        assert client.get("/jobs/x").status_code == 500
        assert client.get("/jobs/y").status_code == 500
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert [r.status_code for r in server.requests] == [500, 500]
