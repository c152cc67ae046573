"""First contact: every mistake a new user makes ends with a message that says what was
wrong and what to do (issue 13). Each test pins the words a user reads."""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from jobwait import JobFetchError, JobStatusError
from jobwait._advice import http_error_reason, mask_secrets, server_message
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import httpx as jw_httpx
from jobwait.adapters import sync
from jobwait.adapters import trio as jw_trio
from jobwait.http import ResponseError, read_response
from jobwait.testing import VirtualClock

# --- HTTP errors keep the server's explanation ------------------------------------------


def _error(status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> ResponseError:
    with pytest.raises(ResponseError) as info:
        read_response(status, headers, body, wall_now=0.0)
    return info.value


def test_404_shows_the_servers_message_and_what_to_check() -> None:
    body = b'{"error": "Not Found", "message": "Job not found: nope", "statusCode": 404}'
    error = _error(404, body)
    assert str(error) == (
        'HTTP 404 (not retryable): server said "Job not found: nope"; check the job id and the URL'
    )
    assert error.body_excerpt == body.decode()


def test_401_hints_at_credentials() -> None:
    body = b'{"error": "Unauthorized", "message": "Invalid or missing API key"}'
    assert str(_error(401, body)) == (
        'HTTP 401 (not retryable): server said "Invalid or missing API key"; '
        "check the credentials (API key or Authorization header)"
    )


def test_retryable_status_has_message_but_no_hint() -> None:
    assert str(_error(503, b'{"detail": "down for maintenance"}')) == (
        'HTTP 503: server said "down for maintenance"'
    )


def test_an_empty_body_says_only_the_status() -> None:
    assert str(_error(500, b"")) == "HTTP 500"
    assert str(_error(403, b"")) == (
        "HTTP 403 (not retryable); check that the credentials may read this job"
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"error": {"code": 404, "message": "no such op"}}', "no such op"),
        (b'{"errors": [{"msg": "first"}, {"msg": "second"}]}', "first"),
        (b'{"detail": "Not authenticated"}', "Not authenticated"),
        (b'{"statusCode": 404}', None),
        (b"<html><head><title>502 Bad Gateway</title></head></html>", "502 Bad Gateway"),
        (b"<html><body>oops</body></html>", None),
        (b"upstream timed out\nstack trace...", "upstream timed out"),
        (b"   ", None),
        (b"\xff\xfe not utf-8", "\ufffd\ufffd not utf-8"),
    ],
)
def test_server_message_reads_common_error_shapes(body: bytes, said: str | None) -> None:
    assert server_message(body) == said


def test_server_message_is_bounded_one_line_and_without_control_characters() -> None:
    said = server_message(b'{"message": "line one\\n\\u001b[31mred\\u001b[0m ' + b"x" * 500 + b'"}')
    assert said is not None
    # The one preview: 99 characters, an ellipsis and the full length.
    assert said.endswith("\u2026 (521 characters)")
    assert len(said.partition("\u2026")[0]) == 99
    assert "\n" not in said
    assert "\x1b" not in said
    assert said.startswith("line one [31mred [0m x")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Invalid key: Authorization: Bearer abcdef123456", "Invalid key: Authorization: *** ***"),
        ("header was apiKey s3cr3t-token-value", "header was apiKey ***"),
        ('{"api_key": "abc123"}', '{"api_key": "***"}'),
        ("GET /jobs?token=xyz789&x=1 failed", "GET /jobs?token=***&x=1 failed"),
        ("password=hunter2", "password=***"),
        ("Invalid or missing API key", "Invalid or missing API key"),
        ("Job not found: nope", "Job not found: nope"),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_a_secret_echoed_by_the_server_is_masked_in_the_error() -> None:
    body = b'{"message": "key apiKey sk-live-0123456789 was revoked"}'
    error = _error(401, body)
    assert "sk-live" not in str(error)
    assert 'server said "key apiKey *** was revoked"' in str(error)


def test_redirects_say_what_to_do() -> None:
    assert http_error_reason(302, retryable=False) == (
        "HTTP 302 (not retryable); the server redirected: use the final URL, or a client "
        "that follows redirects"
    )


def test_job_fetch_error_shows_the_servers_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": "Not Found", "message": "Job not found: nope", "statusCode": 404}
        )

    vc = VirtualClock()
    transport = httpx.MockTransport(handler)
    with (
        httpx.Client(base_url="http://jobs.test", transport=transport) as c,
        pytest.raises(JobFetchError) as info,
    ):
        jw_httpx.wait_for_url(c, "/jobs/nope", job_id="nope", clock=vc.now, sleep=vc.sleep)
    assert str(info.value) == (
        "fetching the job failed and retrying cannot fix it: ResponseError: HTTP 404 "
        '(not retryable): server said "Job not found: nope"; check the job id and the URL '
        "(job 'nope', last status None, 1 poll, 0.000s elapsed)"
    )
    assert info.value.status_code == 404


def test_response_error_pickles_with_its_message() -> None:
    import pickle

    error = _error(404, b'{"message": "Job not found: nope"}')
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error)


# --- a fetch of the wrong kind ------------------------------------------------------------


def _sync_wait(fetch: Callable[[], Any], **options: Any) -> Any:
    vc = VirtualClock()
    return sync.wait(fetch, clock=vc.now, sleep=vc.sleep, job_id="j1", **options)


async def _fetch_job() -> dict[str, str]:
    return {"status": "completed"}


def test_async_def_fetch_in_sync_wait_is_a_type_error_up_front() -> None:
    with pytest.raises(TypeError) as info:
        _sync_wait(_fetch_job)
    assert str(info.value) == (
        "sync.wait(fetch=...) got an async function (_fetch_job), which a sync wait "
        "cannot await: use jobwait.adapters.asyncio.wait (or jobwait.adapters.trio.wait) "
        "from async code, or pass a plain function"
    )


def test_a_coroutine_returned_by_a_lambda_is_named_and_closed() -> None:
    made: list[Any] = []

    def fetch() -> Any:
        made.append(_fetch_job())
        return made[-1]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "never awaited" RuntimeWarning would fail here
        with pytest.raises(JobStatusError) as info:
            _sync_wait(fetch)
        assert made[0].cr_frame is None  # closed: no warning when it is collected
        del made[:]
        info.value.last_job = None
        gc.collect()
    assert info.value.reason == (
        "fetch returned a coroutine, not the job: an async call was not awaited. From "
        "sync.wait, pass the async fetch to jobwait.adapters.asyncio.wait (or "
        ".trio.wait) instead; inside an async fetch, return await api.get_job(...)"
    )


@pytest.mark.parametrize(
    ("returned", "reason"),
    [
        (
            "completed",
            (
                "fetch returned a str ('completed'), not the job: return the job; if it is the "
                "status itself, pass status_of=str"
            ),
        ),
        (None, "fetch returned None, not the job: make the fetch return the job it read"),
        (
            [{"status": "completed"}],
            (
                "fetch returned a list of 1 item, not one job: return the job itself "
                "(for many jobs, use wait_all)"
            ),
        ),
        (
            httpx.Response(200, json={"status": "completed"}),
            (
                "fetch returned an HTTP response (httpx.Response), not the job: return "
                "response.json() (after checking the status code), or let "
                "jobwait.adapters.httpx.wait_for_url do the request"
            ),
        ),
        (
            {"id": "j1", "state": "done"},
            (
                "could not read the job's status: the job has no 'status' field (its fields: "
                "'id', 'state'); pass status_of=jobwait.field_reader('state') (or any "
                "function of the job) to read it from there, or api='auto' to let jobwait "
                "find it"
            ),
        ),
        (
            {"status": 3},
            (
                "the job's status must be a string, got 3 (int); map it to a status listed "
                "in Statuses with status_of=, e.g. status_of=lambda job: {0: 'queued', "
                "1: 'completed'}[job['status']], or use an ApiProfile that reads this API"
            ),
        ),
    ],
    ids=["str", "None", "list", "httpx.Response", "no-status-key", "int-status"],
)
def test_a_fetch_returning_the_wrong_thing_names_it_and_the_fix(returned: Any, reason: str) -> None:
    with pytest.raises(JobStatusError) as info:
        _sync_wait(lambda: returned)
    assert info.value.reason == reason
    assert info.value.last_job is returned


def test_status_of_given_drops_the_status_of_hint() -> None:
    def status_of(job: Any) -> Any:
        return job["state"]["status"]

    with pytest.raises(JobStatusError) as info:
        _sync_wait(lambda: {"state": {}}, status_of=status_of)
    assert (
        info.value.reason
        == "could not read the job's status: status_of raised KeyError: 'status' (its fields: "
        "'state')"
    )
    with pytest.raises(JobStatusError) as info:
        _sync_wait(lambda: "completed", status_of=lambda job: 1)
    assert info.value.reason == "fetch returned a str ('completed'), not the job: return the job"


def test_async_wait_names_a_coroutine_returned_through_an_awaitable() -> None:
    async def fetch() -> Any:
        return _fetch_job()  # forgot the inner await

    async def main() -> None:
        vc = VirtualClock()
        with pytest.raises(JobStatusError, match="fetch returned a coroutine"):
            await jw_asyncio.wait(fetch, clock=vc.now, sleep=vc.asleep)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asyncio.run(main())
        gc.collect()


# --- a fetch that is not callable ---------------------------------------------------------


def _run_async(rt: str, make: Callable[[], Any]) -> None:
    if rt == "asyncio":
        asyncio.run(make())
    else:
        trio.run(make)


WAITS: dict[str, Callable[[Any], Any]] = {
    "sync.wait": lambda f: sync.wait(f),
    "sync.wait_all(fetch_many=...)": lambda f: sync.wait_all(f, ["a"]),
    "sync.wait_all(fetch_one=...)": lambda f: sync.wait_all(None, ["a"], fetch_one=f),
}


@pytest.mark.parametrize("where", list(WAITS))
def test_a_non_callable_fetch_is_a_type_error_in_sync_waits(where: str) -> None:
    with pytest.raises(TypeError, match=r"must be a function, got a str \('j1'\)"):
        WAITS[where]("j1")


@pytest.mark.parametrize("rt", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["wait", "wait_all", "wait_all_one", "as_completed"])
def test_a_non_callable_fetch_is_a_type_error_in_async_waits(rt: str, kind: str) -> None:
    module: Any = jw_asyncio if rt == "asyncio" else jw_trio

    async def main() -> None:
        if kind == "wait":
            await module.wait("j1")
        elif kind == "wait_all":
            await module.wait_all("j1", ["a"])
        elif kind == "wait_all_one":
            await module.wait_all(None, ["a"], fetch_one="j1")
        else:
            async with module.as_completed("j1", ["a"]) as results:
                async for _ in results:
                    pass

    name = {"wait": "wait", "wait_all": "wait_all", "wait_all_one": "wait_all"}.get(
        kind, "as_completed"
    )
    param = "fetch_one" if kind == "wait_all_one" else "fetch_many" if "wait_all" in kind else ""
    with pytest.raises(TypeError) as info:
        _run_async(rt, main)
    assert str(info.value).startswith(f"{rt}.{name}(")
    assert "must be a function, got a str ('j1')" in str(info.value)
    if param:
        assert f"({param}=...)" in str(info.value)


# --- missing extras -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "missing", "extra"),
    [
        ("jobwait.adapters.trio", "trio", "trio"),
        ("jobwait.adapters.httpx", "httpx", "httpx"),
        ("jobwait.adapters.ionq", "httpx", "httpx"),
        ("jobwait.adapters.server", "h11", "httpx"),
    ],
)
def test_a_missing_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, adapter: str, missing: str, extra: str
) -> None:
    # None in sys.modules makes `import <missing>` raise ModuleNotFoundError, as when
    # the package is not installed; the adapter is imported afresh and then restored.
    monkeypatch.setitem(sys.modules, missing, None)
    for name in [adapter, "jobwait.adapters.httpx", "jobwait.adapters.ionq"]:
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ImportError) as info:
        importlib.import_module(adapter)
    assert isinstance(info.value, ModuleNotFoundError)
    assert info.value.name == missing
    assert str(info.value) == (
        f"{adapter} needs {missing!r}, which is not installed: pip install "
        f"'jobwait[{extra}]' (from a checkout: pip install '.[{extra}]')"
    )


# --- a plain function given to an async wait ------------------------------------------------


@pytest.mark.parametrize("rt", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["wait", "wait_all"])
def test_a_plain_fetch_in_an_async_wait_says_to_make_it_async(rt: str, kind: str) -> None:
    module: Any = jw_asyncio if rt == "asyncio" else jw_trio

    async def main() -> Any:
        if kind == "wait":
            return await module.wait(lambda: {"status": "completed"}, job_id="j1")
        return await module.wait_all(lambda ids: {"j1": {"status": "completed"}}, ["j1"])

    expected = (
        "fetching the job failed and retrying cannot fix it: TypeError: the fetch returned "
        "a dict instead of an awaitable: it is a plain function, so make it async def (or "
        "return the coroutine of your async client), or use jobwait.adapters.sync.wait"
    )
    if kind == "wait":
        with pytest.raises(JobFetchError) as info:
            _run_async(rt, main)
        assert info.value.reason == expected
    else:
        results: Any = asyncio.run(main()) if rt == "asyncio" else trio.run(main)
        assert isinstance(results["j1"], JobFetchError)
        assert results["j1"].reason == expected
