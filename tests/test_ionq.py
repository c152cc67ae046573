"""jobwait.adapters.ionq: the ionq_core.polling contract, kept, on sync, asyncio and trio.

Parity tests run ``ionq_core.polling.wait_for_job`` itself and our ``wait_for_job`` on
the same scripted board in virtual time, and compare every request time and outcome.
Loopback tests run the adapter against a real ``JobServer`` on each runtime, with a
10 ms schedule, and pass real ionq-core clients to it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
import types
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httpx
import ionq_core
import ionq_core.polling
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from jobwait import Backoff, JobFetchError, JobWaitError
from jobwait.adapters import ionq
from jobwait.adapters.ionq import JobFailedError, JobTimeoutError
from jobwait.adapters.server import JobServer
from jobwait.http import ResponseError
from jobwait.testing import Fault, JobBoard, VirtualClock

realtime = pytest.mark.realtime

KEY = "sk-ionq-test-0123456789abcdef"
TINY = Backoff(initial=0.01, factor=1, max=0.01)
RUNTIMES = ["sync", "asyncio", "trio"]
DONE: dict[str, Any] = {"durations": {"ready": 0.0, "started": 0.0}}
PENDING: dict[str, Any] = {"durations": {"ready": 10_000.0}}
IONQ_URL = "https://api.ionq.co/v0.4"
# One TLS context for every client: building one per client costs ~30 ms (CA bundle).
TLS = ssl.create_default_context()


def wait(runtime: str, server: JobServer, job_id: str, **options: Any) -> Any:
    """``wait_for_job`` on ``runtime`` with a client from ``client()``/``async_client()``;
    returns the Job, or the exception raised."""
    if runtime == "sync":
        with ionq.client(KEY, base_url=server.url, timeout=2.0, verify=TLS) as client:
            try:
                return ionq.wait_for_job(client, job_id, **options)
            except Exception as exc:
                return exc

    async def main() -> Any:
        async with ionq.async_client(KEY, base_url=server.url, timeout=2.0, verify=TLS) as client:
            try:
                return await ionq.async_wait_for_job(client, job_id, **options)
            except Exception as exc:
                return exc

    return run(runtime, main)


def run(runtime: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    if runtime == "asyncio":
        return asyncio.run(fn())  # type: ignore[arg-type]
    return trio.run(fn)


def codes(server: JobServer, job_id: str) -> list[tuple[str, int | None]]:
    return [(r.method, r.status_code) for r in server.requests_for(job_id)]


# --- parity with ionq_core.polling, in virtual time ---------------------------------


class BoardTransport:
    """An ``httpx.MockTransport`` handler serving a JobBoard on a VirtualClock."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.clock = VirtualClock()
        self.board = JobBoard(api_key=KEY)
        self.job_id = self.board.submit(now=0.0, **script)
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.now()
        self.times.append(now)
        target = request.url.raw_path.decode().removeprefix("/v0.4")
        reply = self.board.handle(
            request.method, target, request.headers.items(), request.content, now=now
        )
        return httpx.Response(reply.status_code, headers=list(reply.headers), content=reply.body)


PARITY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "completes": ({"durations": {"ready": 3.0, "started": 4.0}}, {}),
    "fails": ({"durations": {"started": 5.0}, "outcome": "failed"}, {}),
    "fails, returned": (
        {"durations": {"started": 5.0}, "outcome": "failed"},
        {"raise_on_failure": False},
    ),
    "canceled is returned": ({"durations": {"started": 9.0}, "outcome": "canceled"}, {}),
    "times out": ({"durations": {"started": 1000.0}}, {"timeout": 20.0}),
    "times out on the default 300 s": ({"durations": {"started": 1000.0}}, {}),
    "timeout=0, pending: one GET": (PENDING, {"timeout": 0}),
    "timeout=0, finished: one GET": (DONE, {"timeout": 0}),
    "poll_interval=0.5": ({"durations": {"started": 30.0}}, {"poll_interval": 0.5}),
    "poll_interval=20 reaches the cap": (
        {"durations": {"started": 150.0}},
        {"poll_interval": 20.0, "timeout": 200.0},
    ),
}


def outcome(result: Any) -> tuple[Any, ...]:
    """What a caller of either library sees, in comparable terms."""
    if isinstance(result, Exception):
        kind = type(result).__name__
        if kind == "JobFailedError":
            return (kind, result.job_id, result.failure)
        assert kind == "JobTimeoutError", result
        return (kind, result.job_id, result.last_status, result.timeout)
    return ("returned", result.id, str(result.status))


@pytest.mark.parametrize("name", list(PARITY))
def test_same_requests_and_outcome_as_ionq_core(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    script, options = PARITY[name]
    theirs, ours = BoardTransport(script), BoardTransport(script)
    fake_time = types.SimpleNamespace(monotonic=theirs.clock.now, sleep=theirs.clock.sleep)
    monkeypatch.setattr(ionq_core.polling, "time", fake_time)
    reference = ionq_core.AuthenticatedClient(
        base_url=IONQ_URL,
        token=KEY,
        prefix="apiKey",
        httpx_args={"transport": httpx.MockTransport(theirs)},
    )
    with reference:
        try:
            expected: Any = ionq_core.polling.wait_for_job(reference, theirs.job_id, **options)
        except ionq_core.IonQError as exc:
            expected = exc
    with ionq.client(KEY, transport=httpx.MockTransport(ours)) as client:
        try:
            got: Any = ionq.wait_for_job(
                client, ours.job_id, clock=ours.clock.now, sleep=ours.clock.sleep, **options
            )
        except JobWaitError as exc:
            got = exc
    assert outcome(got) == outcome(expected)
    assert ours.times == theirs.times
    assert ours.clock.sleeps == theirs.clock.sleeps


def test_poll_interval_above_30_is_the_cap() -> None:
    # The one documented difference: ionq-core sleeps p once, then 30 s; jobwait's
    # Backoff(initial=p, factor=1.5, max=max(30, p)) keeps p.
    transport = BoardTransport(PENDING)
    with (
        ionq.client(KEY, transport=httpx.MockTransport(transport)) as client,
        pytest.raises(JobTimeoutError),
    ):
        ionq.wait_for_job(
            client,
            transport.job_id,
            poll_interval=40,
            timeout=100,
            clock=transport.clock.now,
            sleep=transport.clock.sleep,
        )
    assert transport.clock.sleeps == [40.0, 40.0, 20.0]


def test_poll_interval_is_the_ionq_core_schedule() -> None:
    transport = BoardTransport(PENDING)
    with (
        ionq.client(KEY, transport=httpx.MockTransport(transport)) as client,
        pytest.raises(JobTimeoutError) as caught,
    ):
        ionq.wait_for_job(
            client,
            transport.job_id,
            poll_interval=2.0,
            timeout=60,
            clock=transport.clock.now,
            sleep=transport.clock.sleep,
        )
    # Backoff(initial=2, factor=1.5, max=30), the last sleep clamped to the deadline.
    assert transport.clock.sleeps == [2.0, 3.0, 4.5, 6.75, 10.125, 15.1875, 18.4375]
    assert caught.value.timeout == 60
    assert caught.value.last_status == "ready"
    assert caught.value.polls == 8


# --- argument validation --------------------------------------------------------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request may be sent for invalid arguments")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_poll_interval_must_be_finite(bad: float) -> None:
    # 0 and below are accepted, as ionq-core accepts them (test_ionq_dropin.py).
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(ValueError, match="poll_interval"),
    ):
        ionq.wait_for_job(client, "j", poll_interval=bad)


@pytest.mark.parametrize("bad", ["1", None, True])
def test_poll_interval_must_be_a_number(bad: Any) -> None:
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(TypeError, match="poll_interval"),
    ):
        ionq.wait_for_job(client, "j", poll_interval=bad)


@pytest.mark.parametrize("interval", [1.0, 1, 2.5])
def test_poll_interval_and_backoff_together_is_a_type_error(interval: float) -> None:
    # Even poll_interval=1.0, the default's value, spelled out.
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(TypeError, match="poll_interval"),
    ):
        ionq.wait_for_job(client, "j", poll_interval=interval, backoff=TINY)


def test_backoff_alone_replaces_the_schedule() -> None:
    transport = BoardTransport(PENDING)
    with (
        ionq.client(KEY, transport=httpx.MockTransport(transport)) as client,
        pytest.raises(JobTimeoutError),
    ):
        ionq.wait_for_job(
            client,
            transport.job_id,
            backoff=Backoff(initial=5, factor=1, max=5),
            timeout=12,
            clock=transport.clock.now,
            sleep=transport.clock.sleep,
        )
    assert transport.clock.sleeps == [5.0, 5.0, 2.0]


def test_cancel_and_cancel_on_timeout_together_is_a_type_error() -> None:
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(TypeError, match="cancel"),
    ):
        ionq.wait_for_job(client, "j", cancel=lambda: None, cancel_on_timeout=True)


def test_unknown_options_and_job_id_twice_are_type_errors() -> None:
    with ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(TypeError, match="no_such_option"):
            ionq.wait_for_job(client, "j", no_such_option=1)
        with pytest.raises(TypeError, match="job_id"):
            ionq.wait_for_job(client, "j", job_id="k")


@pytest.mark.parametrize("bad", [123, None, b"j"])
def test_job_id_must_be_a_string(bad: Any) -> None:
    with pytest.raises(TypeError, match="job_id"):
        ionq.job_path(bad)


def test_empty_job_id_is_a_value_error() -> None:
    with (
        ionq.client(KEY, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(ValueError, match="empty"),
    ):
        ionq.wait_for_job(client, "")


def test_client_must_be_httpx_or_ionq_core_like() -> None:
    with pytest.raises(TypeError, match="get_httpx_client"):
        ionq.wait_for_job(object(), "j")  # type: ignore[arg-type]


# --- percent-encoding of job ids ---------------------------------------------------

NASTY_IDS = [
    ".",
    "..",
    "../x",
    "../../v0.4/jobs",
    "./x",
    "a/b",
    "a?b",
    "a#b",
    "a b",
    "%2e%2e",
    "%2E%2E",
    "%",
    "a%2Fb",
    "...",
    "~user",
    "ü/ñ",
    "a;b=c",
    "?ids=x",
    "\\..\\",
]


def resolved(job_id: str) -> httpx.URL:
    # With a transport of its own, the client builds no TLS context: cheap per example.
    with httpx.Client(base_url=IONQ_URL, transport=httpx.MockTransport(refuse)) as client:
        return client.build_request("GET", ionq.job_path(job_id)).url


@pytest.mark.parametrize("job_id", NASTY_IDS)
def test_a_job_id_cannot_leave_its_path_segment(job_id: str) -> None:
    url = resolved(job_id)
    assert url.host == "api.ionq.co"
    assert url.query == b""
    assert url.fragment == ""
    segments = url.raw_path.decode("ascii").split("/")
    assert segments[:3] == ["", "v0.4", "jobs"]
    assert len(segments) == 4
    assert unquote(segments[3]) == job_id


@given(st.text(min_size=1))
def test_any_job_id_round_trips_through_httpx_normalisation(job_id: str) -> None:
    url = resolved(job_id)
    segments = url.raw_path.decode("ascii").split("/")
    assert len(segments) == 4
    assert unquote(segments[3], errors="surrogatepass") == job_id


def test_quote_alone_would_not_do() -> None:
    # What ionq-core sends for "..": httpx removes the dot segment, so the request
    # lands on the API root instead of a job.
    with httpx.Client(base_url=IONQ_URL) as client:
        assert client.build_request("GET", "/jobs/..").url.raw_path == b"/v0.4"
    assert ionq.job_path("..") == "/jobs/%2E%2E"
    assert ionq.job_path("job-1.a_b~c") == "/jobs/job-1%2Ea_b~c"


@realtime
def test_nasty_ids_reach_exactly_their_job(server: JobServer) -> None:
    for job_id in NASTY_IDS:
        server.submit(id=job_id, **DONE)
    with ionq.client(KEY, base_url=server.url, timeout=2.0, verify=TLS) as client:
        for job_id in NASTY_IDS:
            job = ionq.wait_for_job(client, job_id, poll_interval=0.01)
            assert job.id == job_id
            assert job.status == "completed"
    assert all(r.status_code == 200 for r in server.requests)
    assert len(server.requests) == len(NASTY_IDS)


# --- the contract on sync, asyncio and trio, over loopback ------------------------


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_completed_job_is_returned(server: JobServer, runtime: str) -> None:
    job_id = server.submit(durations={"ready": 0.1, "started": 0.1})
    job = wait(runtime, server, job_id, poll_interval=0.01)
    assert isinstance(job, ionq.Job)
    assert (job.id, job.status, job.failure) == (job_id, "completed", None)
    assert job["status"] == "completed"
    assert job.data["id"] == job_id
    polls = codes(server, job_id)
    assert polls[-1] == ("GET", 200)
    assert 2 <= len(polls) <= 40


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_failed_job_raises_with_the_raw_failure(server: JobServer, runtime: str) -> None:
    failure = {"code": "QuantumComputerError", "message": "calibration lost"}
    job_id = server.submit(**DONE, outcome="failed", failure=failure)
    error = wait(runtime, server, job_id, poll_interval=0.01)
    assert isinstance(error, JobFailedError)
    assert isinstance(error, ionq.JobFailedError)
    assert error.failure == failure
    assert type(error.failure) is dict
    assert (error.job_id, error.last_status, error.polls) == (job_id, "failed", 1)
    assert error.last_job["failure"] == failure


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_failed_job_is_returned_without_raise_on_failure(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**DONE, outcome="failed")
    job = wait(runtime, server, job_id, poll_interval=0.01, raise_on_failure=False)
    assert job.status == "failed"
    assert job.failure == {"code": "SimulatedFailure", "message": "the job failed (simulated)"}


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_canceled_job_is_returned(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**DONE, outcome="canceled")
    job = wait(runtime, server, job_id)
    assert job.status == "canceled"
    assert codes(server, job_id) == [("GET", 200)]


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_raise_on_cancel_is_available(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**DONE, outcome="canceled")
    error = wait(runtime, server, job_id, raise_on_cancel=True)
    assert type(error).__name__ == "JobCanceledError"


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("script", "expect"), [(PENDING, "timeout"), (DONE, "completed")])
def test_timeout_zero_makes_exactly_one_get(
    server: JobServer, runtime: str, script: dict[str, Any], expect: str
) -> None:
    job_id = server.submit(**script)
    result = wait(runtime, server, job_id, timeout=0)
    if expect == "timeout":
        assert isinstance(result, JobTimeoutError)
        assert (result.last_status, result.timeout, result.polls) == ("ready", 0, 1)
    else:
        assert result.status == "completed"
    assert codes(server, job_id) == [("GET", 200)]


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_timeout_carries_the_last_status(server: JobServer, runtime: str) -> None:
    job_id = server.submit(durations={"ready": 0.0, "started": 10_000.0})
    error = wait(runtime, server, job_id, poll_interval=0.01, timeout=0.05)
    assert isinstance(error, JobTimeoutError)
    assert (error.job_id, error.last_status, error.timeout) == (job_id, "started", 0.05)
    assert error.polls == len(codes(server, job_id)) >= 2
    assert error.last_job["status"] == "started"


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_unknown_status_keeps_waiting(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**DONE, faults=[Fault("unknown_status", poll=1, status="queued")])
    job = wait(runtime, server, job_id, backoff=TINY)
    assert job.status == "completed"
    assert len(codes(server, job_id)) == 2


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_http_trouble_is_retried_and_final_errors_are_job_fetch_errors(
    server: JobServer, runtime: str
) -> None:
    job_id = server.submit(
        **PENDING,
        faults=[
            Fault("503", poll=2, retry_after="0"),
            Fault("reset", poll=3),
            Fault("404", poll=4),
        ],
    )
    error = wait(runtime, server, job_id, backoff=TINY)
    assert isinstance(error, JobFetchError)
    assert (error.status_code, error.request_id, error.polls) == (404, "req-000004", 4)
    assert error.last_status == "ready"
    assert codes(server, job_id) == [("GET", 200), ("GET", 503), ("GET", None), ("GET", 404)]


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_option_passes_through(server: JobServer, runtime: str) -> None:
    seen: list[str] = []
    job_id = server.submit(durations={"ready": 0.2, "started": 0.0})
    job = wait(
        runtime,
        server,
        job_id,
        backoff=TINY,
        on_status=lambda job, status: seen.append(status),
        max_body_size=10_000,
        retry_invalid_body=False,
        timeout_floor=0.5,
    )
    assert job.status == "completed"
    assert seen == ["ready", "completed"]


# --- cancel -------------------------------------------------------------------------


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cancel_on_timeout_cancels_the_remote_job(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**PENDING)
    error = wait(runtime, server, job_id, poll_interval=0.01, timeout=0.03, cancel_on_timeout=True)
    assert isinstance(error, JobTimeoutError)
    assert error.cancel_error is None
    assert codes(server, job_id)[-1] == ("PUT", 200)
    assert server.board.status(job_id, now=server.now()) == "canceled"


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_failed_cancel_is_recorded_on_the_timeout(runtime: str) -> None:
    # Request 2 is the PUT: the server answers 403 to it.
    with JobServer(api_key=KEY, faults=[Fault("403", request=2)]) as server:
        job_id = server.submit(**PENDING)
        error = wait(runtime, server, job_id, timeout=0, cancel_on_timeout=True)
        assert isinstance(error, JobTimeoutError)
        assert isinstance(error.cancel_error, ResponseError)
        assert error.cancel_error.status_code == 403
        assert [r.status_code for r in server.requests] == [200, 403]


@realtime
@pytest.mark.parametrize("runtime", ["sync", "asyncio", "trio"])
def test_own_cancel_callback(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**PENDING)
    calls: list[str] = []
    if runtime == "sync":
        cancel: Any = lambda: calls.append("sync")  # noqa: E731
    else:

        async def cancel() -> None:
            calls.append(runtime)

    error = wait(runtime, server, job_id, timeout=0, cancel=cancel)
    assert isinstance(error, JobTimeoutError)
    assert calls == [runtime]
    assert codes(server, job_id) == [("GET", 200)]


@realtime
def test_cancel_job_then_wait_returns_the_canceled_job(server: JobServer) -> None:
    job_id = server.submit(**PENDING)
    with ionq.client(KEY, base_url=server.url, timeout=2.0, verify=TLS) as client:
        assert ionq.cancel_job(client, job_id) == {"id": job_id, "status": "canceled"}
        assert ionq.wait_for_job(client, job_id).status == "canceled"
        with pytest.raises(ResponseError) as caught:
            ionq.cancel_job(client, "no-such-job")
    assert caught.value.status_code == 404
    assert not caught.value.retryable
    assert codes(server, job_id) == [("PUT", 200), ("GET", 200)]


@realtime
@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_async_cancel_job(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**PENDING, id="a/../b")

    async def main() -> dict[str, Any]:
        async with ionq.async_client(KEY, base_url=server.url, timeout=2.0, verify=TLS) as client:
            return await ionq.async_cancel_job(client, job_id)

    assert run(runtime, main) == {"id": job_id, "status": "canceled"}
    assert [r.path for r in server.requests] == ["/v0.4/jobs/a%2F%2E%2E%2Fb/status/cancel"]


# --- client() and async_client() ---------------------------------------------------


def test_client_reads_ionq_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IONQ_API_KEY", "from-env")
    with ionq.client() as client:
        assert client.headers["authorization"] == "apiKey from-env"
        assert str(client.base_url) == IONQ_URL + "/"
        assert client.timeout == httpx.Timeout(60.0, connect=10.0)
    with ionq.client("explicit") as client:
        assert client.headers["authorization"] == "apiKey explicit"


@pytest.mark.parametrize("value", [None, ""])
def test_client_without_a_key_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("IONQ_API_KEY", raising=False)
    else:
        monkeypatch.setenv("IONQ_API_KEY", value)
    with pytest.raises(ValueError, match="IONQ_API_KEY"):
        ionq.client()
    with pytest.raises(ValueError, match="IONQ_API_KEY"):
        ionq.async_client()


@pytest.mark.parametrize(
    "raw", ["sk-secret-key-1234\n", " sk-secret-key-1234\r\n", "\tsk-secret-key-1234 "]
)
def test_client_strips_whitespace_around_the_key(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    # A key from open("key").read() or a CRLF .env file: stripped where it enters.
    monkeypatch.setenv("IONQ_API_KEY", raw)
    with ionq.client() as client:
        assert client.headers["authorization"] == "apiKey sk-secret-key-1234"
    monkeypatch.delenv("IONQ_API_KEY")
    aclient = ionq.async_client(raw)
    assert aclient.headers["authorization"] == "apiKey sk-secret-key-1234"
    trio.run(aclient.aclose)


@pytest.mark.parametrize(("where", "name"), [("env", "IONQ_API_KEY"), ("arg", "api_key")])
def test_a_key_with_a_control_character_inside_names_where_not_the_value(
    monkeypatch: pytest.MonkeyPatch, where: str, name: str
) -> None:
    bad = "sk-secret\nkey-1234"
    monkeypatch.setenv("IONQ_API_KEY", bad)
    with pytest.raises(ValueError, match=name) as caught:
        ionq.client() if where == "env" else ionq.client(bad)
    assert "sk-secret" not in str(caught.value)
    assert "key-1234" not in repr(caught.value)


def test_async_client_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IONQ_API_KEY", raising=False)

    async def main() -> None:
        async with ionq.async_client(
            "k", base_url="https://example.test/v9", headers={"X-Extra": "1"}, timeout=3.0
        ) as client:
            assert isinstance(client, httpx.AsyncClient)
            assert client.headers["authorization"] == "apiKey k"
            assert client.headers["x-extra"] == "1"
            assert str(client.base_url) == "https://example.test/v9/"
            assert client.timeout == httpx.Timeout(3.0)

    asyncio.run(main())


def test_a_client_without_base_url_is_refused() -> None:
    with httpx.Client() as client, pytest.raises(ValueError, match="base_url"):
        ionq.wait_for_job(client, "j")


def test_the_wrong_kind_of_client_is_refused() -> None:
    with ionq.client(KEY) as client, pytest.raises(TypeError, match="AsyncClient"):
        asyncio.run(ionq.async_wait_for_job(client, "j"))  # type: ignore[arg-type]


# --- Job ---------------------------------------------------------------------------


def test_job_is_a_read_only_mapping_with_attributes() -> None:
    data = {"id": "j1", "status": "failed", "failure": {"code": "E", "message": "m"}}
    job = ionq.Job(data)
    assert (job.id, job.status, job.failure, job.data) == ("j1", "failed", data["failure"], data)
    assert job["status"] == "failed"
    assert "failure" in job
    assert "results" not in job
    assert job.get("results") is None
    assert job.get("results", 7) == 7
    assert dict(job) == data
    assert len(job) == 3
    assert list(job) == ["id", "status", "failure"]
    assert job == data
    assert repr(job) == "Job(id='j1', status='failed')"
    with pytest.raises(KeyError):
        job["results"]
    with pytest.raises(AttributeError):
        job.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(job, "__dict__")
    odd = ionq.Job({"status": 3})
    assert (odd.id, odd.status, odd.failure) == (None, None, None)


# --- ionq-core clients -------------------------------------------------------------


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_interop_with_ionq_core_authenticated_client(server: JobServer, runtime: str) -> None:
    failure = {"code": "E", "message": "boom"}
    done = server.submit(durations={"ready": 0.02, "started": 0.0})
    failed = server.submit(**DONE, outcome="failed", failure=failure)
    client = ionq_core.AuthenticatedClient(
        base_url=server.url, token=KEY, prefix="apiKey", timeout=httpx.Timeout(2.0)
    )
    if runtime == "sync":
        with client:
            job = ionq.wait_for_job(client, done, poll_interval=0.01)
            with pytest.raises(JobFailedError) as caught:
                ionq.wait_for_job(client, failed, poll_interval=0.01)
    else:

        async def main() -> Any:
            async with client:
                job = await ionq.async_wait_for_job(client, done, poll_interval=0.01)
                with pytest.raises(JobFailedError) as caught:
                    await ionq.async_wait_for_job(client, failed, poll_interval=0.01)
            return job, caught

        job, caught = run(runtime, main)
    assert job.status == "completed"
    assert caught.value.failure == failure
    assert all(r.status_code == 200 for r in server.requests)


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ionq_client_exceptions_are_classified(server: JobServer, runtime: str) -> None:
    # IonQClient's transport raises RateLimitError / ServerError / APIConnectionError /
    # NotFoundError instead of returning responses; max_retries=0 keeps its own retries
    # (and their asyncio.sleep) out of the way.
    job_id = server.submit(
        **PENDING,
        faults=[
            Fault("429", poll=2, retry_after="0.02"),
            Fault("503", poll=3),
            Fault("reset", poll=4),
            Fault("404", poll=5),
        ],
    )
    with pytest.warns(UserWarning, match="HTTPS"):
        client = ionq_core.IonQClient(api_key=KEY, base_url=server.url, max_retries=0)
    sleeps: list[float] = []
    if runtime == "sync":
        with client, pytest.raises(JobFetchError) as caught:
            ionq.wait_for_job(client, job_id, backoff=TINY, sleep=sleeps.append)
    else:
        runtime_sleep = asyncio.sleep if runtime == "asyncio" else trio.sleep

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            await runtime_sleep(0)

        async def main() -> Any:
            async with client:
                with pytest.raises(JobFetchError) as caught:
                    await ionq.async_wait_for_job(client, job_id, backoff=TINY, sleep=sleep)
            return caught

        caught = run(runtime, main)
    error = caught.value
    assert type(error.__cause__) is ionq_core.NotFoundError
    assert (error.status_code, error.request_id, error.polls) == (404, "req-000005", 5)
    assert sleeps == [0.01, 0.02, 0.01, 0.01]  # the 429's Retry-After is the floor
    assert codes(server, job_id) == [
        ("GET", 200),
        ("GET", 429),
        ("GET", 503),
        ("GET", None),
        ("GET", 404),
    ]


@realtime
def test_ionq_client_retrying_under_trio_fails_cleanly(server: JobServer) -> None:
    # Documented interaction: IonQClient retries with asyncio.sleep, which has no loop
    # under trio. The wait ends with a JobFetchError caused by that RuntimeError.
    job_id = server.submit(**DONE, faults=[Fault("503", poll=1)])
    with pytest.warns(UserWarning, match="HTTPS"):
        client = ionq_core.IonQClient(api_key=KEY, base_url=server.url)

    async def main() -> Any:
        async with client:
            with pytest.raises(JobFetchError) as caught:
                await ionq.async_wait_for_job(client, job_id, backoff=TINY)
        return caught

    error = trio.run(main).value
    assert isinstance(error.__cause__, RuntimeError)
    assert error.polls == 1
    assert codes(server, job_id) == [("GET", 503)]


def test_is_retryable_judges_wrapped_transport_errors_by_their_cause() -> None:
    def wrapped(cause: Exception) -> Exception:
        try:
            raise cause
        except Exception as exc:
            try:
                raise ionq_core.APIConnectionError(str(exc)) from exc
            except ionq_core.APIConnectionError as outer:
                return outer

    assert ionq.is_retryable(wrapped(httpx.ConnectError("refused")))
    assert ionq.is_retryable(wrapped(httpx.ReadTimeout("slow")))
    assert not ionq.is_retryable(wrapped(httpx.UnsupportedProtocol("ftp")))
    assert not ionq.is_retryable(wrapped(ValueError("odd")))
    assert not ionq.is_retryable(ionq_core.APIConnectionError("no cause"))
    assert ionq.is_retryable(ionq_core.RateLimitError(retry_after=1.0))
    assert ionq.is_retryable(ionq_core.ServerError(502))
    assert not ionq.is_retryable(ionq_core.AuthenticationError(401))
    # An error that states its status is judged by it, whatever it wraps.
    error = ionq_core.NotFoundError(404)
    error.__cause__ = httpx.ConnectError("x")
    assert not ionq.is_retryable(error)


# --- secrets -------------------------------------------------------------------------


def everything_said(error: BaseException) -> str:
    """Message, repr and notes of an error and its whole cause/context chain."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), *getattr(seen, "__notes__", [])]
        parts += [repr(getattr(seen, name, None)) for name in ("last_job", "body_excerpt")]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_api_key_never_leaks(
    server: JobServer, runtime: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: jobwait, httpx, httpcore, ...
    completed = server.submit(durations={"ready": 0.02, "started": 0.0})
    failed = server.submit(**DONE, outcome="failed")
    unauthorized = server.submit(**PENDING, faults=[Fault("503", poll=1), Fault("401", poll=3)])
    pending = server.submit(**PENDING)
    said: list[str] = []
    job = wait(runtime, server, completed, backoff=TINY)
    said.append(repr(job))
    said.append(str(job.data))
    for job_id, options in [
        (failed, {}),
        (unauthorized, {"backoff": TINY}),
        (pending, {"timeout": 0.03, "cancel_on_timeout": True}),
        ("no-such-job", {}),
    ]:
        error = wait(runtime, server, job_id, **options)
        assert isinstance(error, JobWaitError)
        said.append(everything_said(error))
    with ionq.client(KEY, base_url=server.url, verify=TLS) as client:
        said += [repr(client), repr(client.headers), str(client.headers)]
        with pytest.raises(ResponseError) as caught:
            ionq.cancel_job(client, "x")
        said.append(everything_said(caught.value))
    said += [repr(server), repr(server.board), *map(repr, server.requests)]
    said.append(caplog.text)
    assert any("completed" in text for text in said)  # the net caught something
    assert any("GET" in record.getMessage() for record in caplog.records)
    leaks = [text for text in said if KEY in text]
    assert leaks == []
