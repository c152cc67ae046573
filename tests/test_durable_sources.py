"""Sources built from their description (``jobwait.adapters._durable``), against a real
JobServer on loopback: the URL templates, credentials resolved where the wait runs (an
environment variable, or an engine's resolver for a connection id), the profile reading
every answer, sync and async (asyncio and trio) alike."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import trio

from jobwait import Fetched
from jobwait._durable import Credential, SourceSpec
from jobwait.adapters._durable import (
    AsyncSource,
    Source,
    build_async_source,
    build_source,
    env_credential,
    ionq_spec,
)
from jobwait.adapters._http.urls import expand
from jobwait.adapters.server import JobServer
from jobwait.http import ResponseError

pytestmark = pytest.mark.realtime

KEY = "sources-test-secret-key"
QUICK = {"submitted": 0.0, "ready": 0.0, "started": 0.0}


def _jobs(result: Any) -> dict[str, Any]:
    return dict(result.job if isinstance(result, Fetched) else result)


def test_durable_expand_fills_each_marker_encoded() -> None:
    assert expand("/jobs/{id}", ("a/b.c",)) == "/jobs/a%2Fb%2Ec"
    assert expand("/jobs?ids={ids}", ("a", "b c")) == "/jobs?ids=a,b%20c"
    assert expand("/jobs{?ids*}", ("a", "b&c")) == "/jobs?ids=a&ids=b%26c"
    assert expand("/jobs?x=1{&id*}", ("a",)) == "/jobs?x=1&id=a"
    assert expand("/jobs/{id}/of/{id}", ("a",)) == "/jobs/a/of/a"


def test_durable_ionq_source_reads_batches_with_the_key_from_the_environment(
    server: JobServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCES_KEY", f"  {KEY}\n")  # a key file's newline is stripped
    monkeypatch.setenv("SOURCES_API", server.url)
    ids = [server.submit(durations=QUICK, id=f"j.{i}") for i in range(3)]
    spec = ionq_spec(
        api_key_env="SOURCES_KEY", base_url="http://unused.invalid", base_url_env="SOURCES_API"
    )
    source = build_source(spec)
    try:
        jobs = _jobs(source.fetch_many(tuple(ids)))
        assert {k: v["status"] for k, v in jobs.items()} == dict.fromkeys(ids, "completed")
        assert [r.path for r in server.requests] == ["/v0.4/jobs?ids=j.0&ids=j.1&ids=j.2"]
        assert source.batch
        assert source.spec is spec
        pending = server.submit(durations={"started": 600.0})
        answer = source.cancel(pending)  # type: ignore[misc]
        assert answer["status"] == "canceled"
        assert server.requests[-1].method == "PUT"
        assert server.requests[-1].path == f"/v0.4/jobs/{pending}/status/cancel"
    finally:
        source.close()  # type: ignore[misc]
    assert KEY not in repr(spec.to_json())


def test_durable_single_reads_and_an_engine_resolver_for_a_connection(
    server: JobServer,
) -> None:
    seen: list[Credential] = []

    def resolve(credential: Credential) -> str:
        seen.append(credential)
        return KEY

    spec = SourceSpec(
        api="ionq",
        base_url=server.url,
        url="/jobs/{id}",
        credentials=(Credential(scheme="apiKey", conn_id="ionq_default"),),
    )
    job_id = server.submit(durations=QUICK, id="a/b")
    with pytest.raises(LookupError, match="connection ionq_default: pass the engine's resolver"):
        build_source(spec)
    source = build_source(spec, resolve=resolve)
    try:
        assert _jobs(source.fetch_many((job_id,)))[job_id]["status"] == "completed"
        assert [r.path for r in server.requests] == ["/v0.4/jobs/a%2Fb"]
        assert seen == [spec.credentials[0]]
        assert not source.batch
        assert source.cancel is None
    finally:
        source.close()  # type: ignore[misc]


def test_durable_a_missing_secret_names_its_variable_not_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SOURCES_NOPE", raising=False)
    spec = SourceSpec(url="https://x.invalid/{id}", credentials=(Credential(env="SOURCES_NOPE"),))
    with pytest.raises(LookupError, match="SOURCES_NOPE is not set"):
        build_source(spec)
    monkeypatch.setenv("SOURCES_NOPE", "bad\x01secret-value")
    with pytest.raises(ValueError, match="SOURCES_NOPE has a control") as caught:
        env_credential(spec.credentials[0])
    assert "secret-value" not in str(caught.value)


def test_durable_the_profile_reads_every_answer(server: JobServer) -> None:
    """Flower answers 404 until it has heard of a task: with the ``celery-flower``
    profile that answer is "not there yet" (retryable, pending), where jobwait's default
    rules make it a failure retrying cannot fix."""
    headers = {"Authorization": f"apiKey {KEY}"}
    plain = build_source(SourceSpec(base_url=server.url, url="/jobs/{id}"), headers=headers)
    flower = build_source(
        SourceSpec(api="celery-flower", base_url=server.url, url="/jobs/{id}"), headers=headers
    )
    try:
        with pytest.raises(ResponseError) as caught:
            plain.fetch_many(("unknown",))
        assert (caught.value.status_code, caught.value.retryable) == (404, False)
        with pytest.raises(ResponseError) as caught:
            flower.fetch_many(("unknown",))
        assert caught.value.retryable
        assert getattr(caught.value, "pending", False)
        assert flower.status_of({"state": "SUCCESS"}) == "SUCCESS"
    finally:
        plain.close()  # type: ignore[misc]
        flower.close()  # type: ignore[misc]


def test_durable_batch_answers_are_read_by_the_profiles_reader(server: JobServer) -> None:
    def transport_answers(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/ops"
        names = request.url.params.get_list("name")
        body = {"operations": [{"name": n, "done": True, "response": {}} for n in names]}
        return httpx.Response(200, json=body)

    spec = SourceSpec(api="google-lro", base_url="https://lro.invalid", batch_url="/ops{?name*}")
    source = build_source(spec, transport=httpx.MockTransport(transport_answers))
    try:
        jobs = _jobs(source.fetch_many(("op/1", "op/2")))
        assert sorted(jobs) == ["op/1", "op/2"]
        assert {source.status_of(job) for job in jobs.values()} == {"SUCCEEDED"}
    finally:
        source.close()  # type: ignore[misc]


def _in(runtime: str, fn: Callable[[], Awaitable[Any]]) -> Any:
    if runtime == "asyncio":
        return asyncio.run(fn())  # type: ignore[arg-type]
    return trio.run(fn)


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_durable_async_sources_read_and_cancel_alike(server: JobServer, runtime: str) -> None:
    ids = [server.submit(durations=QUICK) for _ in range(2)]
    pending = server.submit(durations={"started": 600.0})
    spec = ionq_spec(conn_id="ionq_default", base_url=server.url)

    async def run() -> tuple[dict[str, Any], Any]:
        source: AsyncSource = build_async_source(spec, resolve=lambda credential: KEY)
        try:
            jobs = _jobs(await source.fetch_many(tuple(ids)))
            assert source.cancel is not None
            return jobs, await source.cancel(pending)
        finally:
            assert source.aclose is not None
            await source.aclose()

    jobs, canceled = _in(runtime, run)
    assert sorted(jobs) == sorted(ids)
    assert canceled["status"] == "canceled"
    assert [r.method for r in server.requests] == ["GET", "PUT"]


def test_durable_source_defaults_are_the_cores() -> None:
    source = Source(fetch_many=dict)
    assert source.batch
    assert source.status_of({"status": "x"}) == "x"


def test_durable_core_imports_without_celery_or_redis() -> None:
    """An engine-neutral user (the Airflow adapter) imports the durable core, and the
    Celery adapter's data names, with neither Celery nor redis-py installed; what needs
    them says which extra to install."""
    code = """
import sys
for name in ("celery", "redis", "kombu"):
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
import jobwait._durable
import jobwait.adapters._durable
from jobwait.adapters.celery import (
    CorruptGroupError, DurableWaits, Source, SourceSpec, WaitGroup, http_source,
    ionq_source, outcome_of,
)
ionq_source()
try:
    WaitGroup.from_id("g", redis_url="redis://127.0.0.1:1/0")
except ModuleNotFoundError as exc:
    print(exc)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("celery", "redis", "kombu")))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "pip install 'jobwait[celery]'" in lines[0]
    assert lines[1] == "['celery', 'kombu', 'redis']"  # only the blocked entries
