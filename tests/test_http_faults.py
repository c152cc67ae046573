"""The httpx adapter against every fault a job API commits, end to end.

Loopback tests run ``wait_for_url`` / ``async_wait_for_url`` against a real
``JobServer`` (h11, real sockets) and assert the documented outcome, the exact
requests the server saw (its request log) and the context each error carries. They
use a 10 ms schedule, so each takes milliseconds; the slowest waits out a 0.2 s
client timeout. ``httpx.MockTransport`` tests pin the pieces that need no network:
classification of every status class, ``Retry-After`` against an injected wall clock,
per-request timeouts on a virtual clock, redirects and runtime detection.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio

from jobwait import Backoff, JobFetchError, JobStatusError, JobTimeoutError
from jobwait.adapters.httpx import async_wait_for_url, current_runtime, wait_for_url
from jobwait.adapters.server import JobServer
from jobwait.http import ResponseError, request_timeout
from jobwait.testing import Fault, VirtualClock

realtime = pytest.mark.realtime

KEY = "fault-matrix-key"
AUTH = {"Authorization": f"apiKey {KEY}"}
TINY = Backoff(initial=0.01, factor=1, max=0.01)
RUNTIMES = ["asyncio", "trio"]
# A job that is completed at its first poll, and one that stays "ready" for ever.
DONE: dict[str, Any] = {"durations": {"ready": 0.0, "started": 0.0}}
PENDING: dict[str, Any] = {"durations": {"ready": 10_000.0}}
# One TLS context for every client: building one per client costs ~30 ms (CA bundle).
TLS = ssl.create_default_context()
WALL = 1_700_000_000.0  # the injected wall clock, for Retry-After HTTP-dates


def codes(server: JobServer, job_id: str) -> list[int | None]:
    """The status of each request the server answered for ``job_id`` (None: reset)."""
    return [record.status_code for record in server.requests_for(job_id)]


def run(runtime: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    if runtime == "asyncio":
        return asyncio.run(fn())  # type: ignore[arg-type]
    return trio.run(fn)


class Sleeps:
    """Records each sleep the waiter asks for, and really sleeps only a millisecond."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seen.append(seconds)
        time.sleep(0.001)

    async def asyncio(self, seconds: float) -> None:
        self.seen.append(seconds)
        await asyncio.sleep(0.001)

    async def trio(self, seconds: float) -> None:
        self.seen.append(seconds)
        await trio.sleep(0.001)


# --- the fault matrix, sync --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One fault: the job, its faults, the wait's options and what must happen."""

    job: dict[str, Any]
    faults: tuple[Fault, ...]
    codes: list[int | None]
    outcome: type[Exception] | str  # "completed", or the error the wait raises
    options: dict[str, Any] = field(default_factory=dict)
    status_code: int | None = None  # on JobFetchError
    cause: type[BaseException] | tuple[type[BaseException], ...] | None = None
    client: dict[str, Any] = field(default_factory=dict)


def burst(kind: str) -> Case:
    return Case(DONE, (Fault(kind, poll=1, count=3),), [int(kind)] * 3 + [200], "completed")


MATRIX: dict[str, Case] = {
    "429 then success": Case(DONE, (Fault("429", poll=1),), [429, 200], "completed"),
    "500 burst": burst("500"),
    "502 burst": burst("502"),
    "503 burst": burst("503"),
    "504 burst": burst("504"),
    "503 burst spends the fetch budget": Case(
        PENDING,
        (Fault("503", poll=2, count=10),),
        [200, 503, 503, 503],
        JobFetchError,
        {"max_fetch_errors": 3},
        status_code=503,
        cause=ResponseError,
    ),
    "connection reset": Case(DONE, (Fault("reset", poll=1),), [None, 200], "completed"),
    "resets spend the fetch budget": Case(
        PENDING,
        (Fault("reset", poll=2, count=10),),
        [200, None, None],
        JobFetchError,
        {"max_fetch_errors": 2},
        cause=httpx.TransportError,
    ),
    "response slower than the client timeout": Case(
        DONE,
        (Fault("slow", poll=1, delay=2.0),),
        [200, 200],
        "completed",
        client={"timeout": 0.2},
    ),
    "truncated body": Case(DONE, (Fault("truncated", poll=1),), [200, 200], "completed"),
    "malformed JSON, then a good body": Case(
        DONE, (Fault("malformed_json", poll=1),), [200, 200], "completed"
    ),
    "malformed JSON for ever (retry_invalid_body=True)": Case(
        PENDING,
        (Fault("malformed_json", poll=2, count=10),),
        [200, 200, 200, 200],
        JobFetchError,
        {"max_fetch_errors": 3},
        cause=JobStatusError,
    ),
    "malformed JSON (retry_invalid_body=False)": Case(
        PENDING,
        (Fault("malformed_json", poll=2),),
        [200, 200],
        JobStatusError,
        {"retry_invalid_body": False},
        cause=JobStatusError,  # the adapter's, without the wait's context
    ),
    "HTML error page (502)": Case(DONE, (Fault("html", poll=1),), [502, 200], "completed"),
    "HTML page with 200": Case(
        DONE, (Fault("html", poll=1, status_code=200),), [200, 200], "completed"
    ),
    "HTML error page (404)": Case(
        PENDING,
        (Fault("html", poll=2, status_code=404),),
        [200, 404],
        JobFetchError,
        status_code=404,
        cause=ResponseError,
    ),
    "missing status": Case(
        PENDING, (Fault("missing_status", poll=2),), [200, 200], JobStatusError, cause=LookupError
    ),
    "null status": Case(PENDING, (Fault("null_status", poll=2),), [200, 200], JobStatusError),
    "non-string status": Case(
        PENDING, (Fault("nonstring_status", poll=2),), [200, 200], JobStatusError
    ),
    "unknown status keeps waiting": Case(
        DONE, (Fault("unknown_status", poll=1, count=2),), [200, 200, 200], "completed"
    ),
    "status regression keeps waiting": Case(
        DONE, (Fault("regress", poll=1),), [200, 200], "completed"
    ),
    "404 mid-wait": Case(
        PENDING,
        (Fault("404", poll=2),),
        [200, 404],
        JobFetchError,
        status_code=404,
        cause=ResponseError,
    ),
    "401 mid-wait": Case(
        PENDING,
        (Fault("401", poll=2),),
        [200, 401],
        JobFetchError,
        status_code=401,
        cause=ResponseError,
    ),
    "403 mid-wait": Case(
        PENDING,
        (Fault("403", poll=2),),
        [200, 403],
        JobFetchError,
        status_code=403,
        cause=ResponseError,
    ),
    "body over max_body_size": Case(
        DONE,
        (),
        [200],
        JobFetchError,
        {"max_body_size": 100},
        status_code=200,
        cause=ResponseError,
    ),
}


@realtime
@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_matrix_sync(server: JobServer, name: str) -> None:
    case = MATRIX[name]
    job_id = server.submit(**case.job, faults=case.faults)
    options = {"backoff": TINY, "timeout": 5.0, "job_id": job_id, **case.options}
    client_options = {"timeout": 2.0, "verify": TLS, **case.client}
    with httpx.Client(base_url=server.url, headers=AUTH, **client_options) as client:
        if case.outcome == "completed":
            job = wait_for_url(client, f"/jobs/{job_id}", **options)
            assert job["status"] == "completed"
            assert job["id"] == job_id
        else:
            assert isinstance(case.outcome, type)
            with pytest.raises(case.outcome) as caught:
                wait_for_url(client, f"/jobs/{job_id}", **options)
            check_error(caught.value, case, job_id)
    assert codes(server, job_id) == case.codes


def check_error(error: BaseException, case: Case, job_id: str) -> None:
    """The error carries the wait's context: the last job seen, its status, the polls."""
    assert type(error) is case.outcome
    assert isinstance(error, JobFetchError | JobStatusError)
    assert error.job_id == job_id
    assert error.polls == len(case.codes)
    if case.job is PENDING:
        assert error.last_status == "ready"
        assert error.last_job is not None
        assert error.last_job["id"] == job_id
    else:
        assert error.last_status is None
        assert error.last_job is None
    if case.cause is None:
        assert error.__cause__ is None
    else:
        assert isinstance(error.__cause__, case.cause)
    if isinstance(error, JobFetchError):
        assert error.status_code == case.status_code
        if case.status_code is not None and case.status_code != 200:
            assert error.request_id is not None
            assert error.request_id.startswith("req-")
            assert error.body_excerpt is not None
            assert 0 < len(error.body_excerpt) <= 200


@realtime
def test_status_faults_keep_the_bad_job_as_last_job(server: JobServer) -> None:
    job_id = server.submit(**PENDING, faults=[Fault("nonstring_status", poll=2, status=7)])
    with (
        httpx.Client(base_url=server.url, headers=AUTH, timeout=2.0, verify=TLS) as client,
        pytest.raises(JobStatusError) as caught,
    ):
        wait_for_url(client, f"/jobs/{job_id}", backoff=TINY)
    assert caught.value.last_job["status"] == 7
    assert caught.value.last_status == "ready"


@realtime
def test_a_wrong_key_is_401_at_once_with_request_id_and_short_excerpt(server: JobServer) -> None:
    job_id = server.submit(**DONE)
    bad = {"Authorization": "apiKey wrong"}
    with (
        httpx.Client(base_url=server.url, headers=bad, timeout=2.0, verify=TLS) as client,
        pytest.raises(JobFetchError) as caught,
    ):
        wait_for_url(client, f"/jobs/{job_id}", backoff=TINY, job_id=job_id)
    error = caught.value
    assert (error.status_code, error.request_id, error.polls) == (401, "req-000001", 1)
    assert error.last_job is None
    assert error.last_status is None
    assert error.body_excerpt is not None
    assert len(error.body_excerpt) <= 200
    assert json.loads(error.body_excerpt)["statusCode"] == 401
    assert "wrong" not in str(error)
    assert "wrong" not in repr(error)
    assert codes(server, job_id) == [401]


@realtime
def test_server_wide_faults_count_requests_not_polls() -> None:
    faults = [Fault("503", request=1, count=2), Fault("reset", request=3)]
    with JobServer(api_key=KEY, faults=faults) as server:
        job_id = server.submit(**DONE)
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=2.0, verify=TLS) as client:
            job = wait_for_url(client, f"/jobs/{job_id}", backoff=TINY)
        assert job["status"] == "completed"
        assert [r.status_code for r in server.requests] == [503, 503, None, 200]
        assert server.board.polls(job_id) == 1


# --- Retry-After over real HTTP: the sleep the waiter chose ------------------------


def http_date(offset: float) -> str:
    return email.utils.formatdate(WALL + offset, usegmt=True)


RETRY_AFTER = {
    "seconds": ("2", 2.0),
    "fractional": ("0.25", 0.25),
    "HTTP-date": (http_date(7), 7.0),
    "HTTP-date in the past": (http_date(-30), 0.01),  # 0, so the schedule's 10 ms
    "garbage": ("soon", 0.01),
    "negative": ("-3", 0.01),
    "above max_retry_after": ("900", 120.0),
}


@realtime
@pytest.mark.parametrize("name", list(RETRY_AFTER))
def test_retry_after_sets_the_next_sleep(server: JobServer, name: str) -> None:
    header, expected = RETRY_AFTER[name]
    job_id = server.submit(**DONE, faults=[Fault("429", poll=1, retry_after=header)])
    sleeps = Sleeps()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=2.0, verify=TLS) as client:
        job = wait_for_url(
            client, f"/jobs/{job_id}", backoff=TINY, sleep=sleeps, wall_clock=lambda: WALL
        )
    assert job["status"] == "completed"
    assert sleeps.seen == [pytest.approx(expected)]
    assert codes(server, job_id) == [429, 200]


@realtime
def test_retry_after_on_a_200_is_a_floor_too(server: JobServer) -> None:
    # A hint on a successful poll delays the next poll as well.
    job_id = server.submit(durations={"ready": 0.3, "started": 0.0})
    hinted = [0.02]

    def transport_hook(response: httpx.Response) -> None:
        if hinted:
            response.headers["retry-after"] = str(hinted.pop())

    sleeps = Sleeps()
    with httpx.Client(
        base_url=server.url,
        headers=AUTH,
        timeout=2.0,
        event_hooks={"response": [transport_hook]},
    ) as client:
        wait_for_url(client, f"/jobs/{job_id}", backoff=TINY, sleep=sleeps, timeout=5.0)
    assert sleeps.seen[0] == pytest.approx(0.02)


# --- the same faults through async_wait_for_url, on asyncio and trio -------------

ASYNC_MATRIX = [
    "503 burst",
    "503 burst spends the fetch budget",
    "connection reset",
    "response slower than the client timeout",
    "truncated body",
    "malformed JSON for ever (retry_invalid_body=True)",
    "malformed JSON (retry_invalid_body=False)",
    "HTML error page (502)",
    "null status",
    "unknown status keeps waiting",
    "404 mid-wait",
    "401 mid-wait",
    "body over max_body_size",
]


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("name", ASYNC_MATRIX)
def test_fault_matrix_async(server: JobServer, runtime: str, name: str) -> None:
    case = MATRIX[name]
    job_id = server.submit(**case.job, faults=case.faults)
    options = {"backoff": TINY, "timeout": 5.0, "job_id": job_id, **case.options}
    client_options = {"timeout": 2.0, "verify": TLS, **case.client}

    async def main() -> Any:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, **client_options) as client:
            try:
                return await async_wait_for_url(client, f"/jobs/{job_id}", **options)
            except Exception as exc:
                return exc

    result = run(runtime, main)
    if case.outcome == "completed":
        assert result["status"] == "completed"
    else:
        check_error(result, case, job_id)
    assert codes(server, job_id) == case.codes


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_retry_after_async(server: JobServer, runtime: str) -> None:
    job_id = server.submit(**DONE, faults=[Fault("503", poll=1, retry_after=http_date(3))])
    sleeps = Sleeps()

    async def main() -> Any:
        async with httpx.AsyncClient(
            base_url=server.url, headers=AUTH, timeout=2.0, verify=TLS
        ) as client:
            return await async_wait_for_url(
                client,
                f"/jobs/{job_id}",
                backoff=TINY,
                wall_clock=lambda: WALL,
                sleep=getattr(sleeps, runtime),
            )

    assert run(runtime, main)["status"] == "completed"
    assert sleeps.seen == [pytest.approx(3.0)]
    assert codes(server, job_id) == [503, 200]


# --- httpx.MockTransport: classification ---------------------------------------------


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **options: Any) -> httpx.Client:
    return httpx.Client(
        base_url="https://jobs.example", transport=httpx.MockTransport(handler), **options
    )


RETRYABLE = [429, 500, 502, 503, 504, *range(520, 530)]
FINAL = [100, 101, 199, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 410]
FINAL += [418, 422, 451, 499, 501, 505, 507, 511, 519, 530, 599]


@pytest.mark.parametrize("status", RETRYABLE + FINAL)
def test_classification_of_every_status_class(status: int) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, json={"error": "x"}, headers={"x-request-id": "r-1"})

    vc = VirtualClock()
    with mock_client(handler) as client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/jobs/a", max_fetch_errors=3, clock=vc.now, sleep=vc.sleep)
    error = caught.value
    retryable = status in RETRYABLE
    assert len(requests) == error.polls == (3 if retryable else 1)
    assert error.status_code == status
    assert error.request_id == "r-1"
    assert isinstance(error.__cause__, ResponseError)
    assert error.__cause__.retryable is retryable


@pytest.mark.parametrize("status", [200, 201, 202, 203, 299])
def test_every_2xx_is_an_observation(status: int) -> None:
    with mock_client(lambda r: httpx.Response(status, json={"status": "completed"})) as client:
        assert wait_for_url(client, "/jobs/a")["status"] == "completed"


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.PoolTimeout("pool"), True),
        (httpx.RemoteProtocolError("peer closed"), True),
        (httpx.ReadError("reset"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (httpx.LocalProtocolError("bad header"), False),
        (httpx.TooManyRedirects("loop"), False),
        (ValueError("no idea"), False),
    ],
)
def test_transport_errors(error: Exception, retryable: bool) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise error

    vc = VirtualClock()
    with mock_client(handler) as client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/jobs/a", max_fetch_errors=2, clock=vc.now, sleep=vc.sleep)
    assert len(calls) == (2 if retryable else 1)
    assert caught.value.__cause__ is error
    assert caught.value.status_code is None


def test_an_invalid_url_is_not_retried() -> None:
    with httpx.Client() as client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/no/base/url", sleep=lambda s: None)
    assert caught.value.polls == 1
    assert isinstance(caught.value.__cause__, httpx.UnsupportedProtocol)


def test_non_object_json_bodies() -> None:
    bodies = iter([b"[1, 2]", b'"completed"', b"null", b'{"status": "completed"}'])
    vc = VirtualClock()
    with mock_client(lambda r: httpx.Response(200, content=next(bodies))) as client:
        job = wait_for_url(client, "/jobs/a", clock=vc.now, sleep=vc.sleep)
    assert job == {"status": "completed"}
    assert len(vc.sleeps) == 3


def test_declared_content_length_over_the_limit_fails_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, content=b"x" * 5000, headers={"x-request-id": "big"})

    with mock_client(handler) as client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/jobs/a", max_body_size=1000)
    assert caught.value.polls == 1  # an oversized error body is final, even for a 503
    assert (caught.value.status_code, caught.value.request_id) == (503, "big")


# --- Retry-After parsing with an injected wall clock ---------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 1.0),  # a zero hint leaves the schedule's own interval
        (http_date(10), 10.0),
        (http_date(-10), 1.0),
        (email.utils.formatdate(WALL + 10), 1.0),  # not GMT: "-0000" has no zone
        ("Wed, 99 Foo 2015 07:28:00 GMT", 1.0),
        ("garbage", 1.0),
        ("-1", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        ("", 1.0),
        ("1e9", 120.0),  # capped by max_retry_after
    ],
)
def test_retry_after_parsing(header: str, expected: float) -> None:
    replies = iter(
        [
            httpx.Response(429, headers={"retry-after": header}),
            httpx.Response(200, json={"status": "completed"}),
        ]
    )
    vc = VirtualClock()
    with mock_client(lambda r: next(replies)) as client:
        wait_for_url(client, "/jobs/a", clock=vc.now, sleep=vc.sleep, wall_clock=lambda: WALL)
    assert vc.sleeps == [pytest.approx(expected)]


def test_retry_after_never_passes_the_deadline() -> None:
    replies = iter([httpx.Response(429, headers={"retry-after": "100"})] * 2)
    vc = VirtualClock()
    with mock_client(lambda r: next(replies)) as client, pytest.raises(JobTimeoutError) as caught:
        wait_for_url(client, "/jobs/a", timeout=10, clock=vc.now, sleep=vc.sleep)
    assert vc.sleeps == [10.0]
    assert caught.value.polls == 2
    assert isinstance(caught.value.__cause__, ResponseError)


# --- per-request timeouts ---------------------------------------------------------


def test_each_request_timeout_is_the_client_timeout_lowered_to_the_time_left() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"status": "started"})

    vc = VirtualClock()
    with (
        mock_client(handler, timeout=httpx.Timeout(2.5, connect=0.5)) as client,
        pytest.raises(JobTimeoutError),
    ):
        wait_for_url(
            client,
            "/jobs/a",
            timeout=5,
            backoff=Backoff(initial=1, factor=1, max=1),
            clock=vc.now,
            sleep=vc.sleep,
        )
    # Polls at t = 0..5: time left 5, 4, 3, 2, 1, 0; the floor of 1 s holds the last two.
    assert [t["read"] for t in seen] == [2.5, 2.5, 2.5, 2.0, 1.0, 1.0]
    assert {t["connect"] for t in seen} == {0.5}
    assert [t["pool"] for t in seen] == [2.5, 2.5, 2.5, 2.0, 1.0, 1.0]


def test_request_timeout_rules() -> None:
    assert request_timeout(None, None) is None
    assert request_timeout(7.0, None) == 7.0
    assert request_timeout(None, 3.0) == 3.0
    assert request_timeout(7.0, 3.0) == 3.0
    assert request_timeout(7.0, 0.0) == 1.0
    assert request_timeout(0.5, 0.0) == 0.5
    assert request_timeout(7.0, 0.0, floor=0.1) == 0.1


def test_timeout_floor_is_configurable() -> None:
    seen: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"status": "started"})

    vc = VirtualClock()
    with mock_client(handler, timeout=None) as client, pytest.raises(JobTimeoutError):
        wait_for_url(client, "/jobs/a", timeout=0, timeout_floor=0.25, clock=vc.now)
    assert seen == [{"connect": 0.25, "read": 0.25, "write": 0.25, "pool": 0.25}]


@realtime
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_async_bounds_the_whole_request_not_only_each_phase(runtime: str) -> None:
    # MockTransport ignores per-phase timeouts, as a slow-drip server defeats them:
    # only the bound around the whole request can end this one.
    async def handler(request: httpx.Request) -> httpx.Response:
        if runtime == "asyncio":
            await asyncio.sleep(30)
        else:
            await trio.sleep(30)
        return httpx.Response(200, json={"status": "completed"})

    async def main() -> BaseException:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(base_url="https://x", transport=transport) as client:
            with pytest.raises(JobTimeoutError) as caught:
                await async_wait_for_url(client, "/jobs/a", timeout=0.1, timeout_floor=0.05)
            return caught.value

    started = time.monotonic()
    error = run(runtime, main)
    assert time.monotonic() - started < 2.0
    assert error.polls == 1
    assert isinstance(error.__cause__, TimeoutError)


# --- redirects -------------------------------------------------------------------


def redirecting(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/jobs/old":
        return httpx.Response(302, headers={"location": "/jobs/new"}, text="moved")
    return httpx.Response(200, json={"status": "completed", "id": "new"})


def test_redirects_are_not_followed_unless_the_client_does() -> None:
    with mock_client(redirecting) as client, pytest.raises(JobFetchError) as caught:
        wait_for_url(client, "/jobs/old")
    assert caught.value.status_code == 302
    assert caught.value.polls == 1
    assert caught.value.body_excerpt == "moved"


def test_a_client_that_follows_redirects_gets_the_job() -> None:
    with mock_client(redirecting, follow_redirects=True) as client:
        assert wait_for_url(client, "/jobs/old")["id"] == "new"


# --- runtime detection ------------------------------------------------------------


def test_current_runtime() -> None:
    async def which() -> str:
        return current_runtime()

    assert asyncio.run(which()) == "asyncio"
    assert trio.run(which) == "trio"
    with pytest.raises(RuntimeError, match="asyncio or trio"):
        current_runtime()


def test_async_wait_for_url_outside_a_runtime_is_refused() -> None:
    async def call() -> None:
        with mock_client(redirecting) as client:
            await async_wait_for_url(client, "/jobs/new")  # type: ignore[arg-type]

    coroutine = call()
    with pytest.raises(RuntimeError, match="asyncio or trio"):
        coroutine.send(None)
    coroutine.close()


# --- the core rule behind retry_invalid_body=False ---------------------------------


def test_a_non_retryable_status_error_from_a_fetch_ends_the_wait_with_a_status_error() -> None:
    from jobwait import FetchFailed, JobWaiter, Raise, Start

    waiter = JobWaiter(job_id="j")
    waiter.handle(Start(now=0.0))
    bad = JobStatusError("HTTP 200 response body is not JSON")
    bad.retryable = False
    action = waiter.handle(FetchFailed(error=bad, now=0.5, retryable=False))
    assert isinstance(action, Raise)
    assert type(action.error) is JobStatusError
    assert action.error.__cause__ is bad
    assert not action.cancel_job
    assert (action.error.reason, action.error.job_id, action.error.polls) == (bad.reason, "j", 1)
    assert action.error.elapsed == 0.5


# --- the bounded decoder (adapters/_http/request.py) ----------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jobwait.adapters._http.request import Decoder, _BodyTooLargeError  # noqa: E402

_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: _compress(b, 31),
    "deflate": lambda b: _compress(b, 15),
    "identity": lambda b: b,
}
try:
    import brotli as _brotli_mod
except ImportError:  # pragma: no cover - br is optional, as in httpx
    pass
else:
    _ENCODERS["br"] = _brotli_mod.compress


def _compress(data: bytes, wbits: int) -> bytes:
    import zlib

    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


@given(
    data=st.binary(max_size=3000).map(lambda b: b * 50),  # up to 150 KB, compressible
    encodings=st.lists(st.sampled_from(sorted(_ENCODERS)), max_size=3),
    cuts=st.lists(st.integers(min_value=1, max_value=5000), max_size=20),
)
def test_the_decoder_undoes_any_stack_of_encodings_across_any_chunking(
    data: bytes, encodings: list[str], cuts: list[int]
) -> None:
    wire = data
    for name in encodings:
        wire = _ENCODERS[name](wire)
    decoder = Decoder(encodings, limit=len(data))
    start = 0
    for size in [*cuts, len(wire)]:
        decoder.feed(wire[start : start + size])
        start += size
    assert bytes(decoder.body) == data


def test_the_decoder_stops_at_the_limit_with_bounded_memory() -> None:
    import tracemalloc

    wire = _compress(_compress(bytes(64 << 20), 31), 31)  # gzip, gzip: 64 MiB of zeros
    tracemalloc.start()
    try:
        decoder = Decoder(["gzip", "gzip"], limit=1 << 20)
        with pytest.raises(_BodyTooLargeError):
            decoder.feed(wire)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 1 << 20 < len(decoder.body) <= (1 << 20) + 64 * 1024
    assert peak < 3 << 20, f"{peak >> 10} KiB"
