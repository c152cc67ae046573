"""The IO half of the durable core: a :class:`~jobwait._durable.SourceSpec` turned into
HTTP reads, in the process that runs the wait.

Engine-neutral: no Celery, Redis or Airflow import. The Celery adapter
(:mod:`jobwait.adapters.celery`) builds its sources here; an Airflow trigger builds the
async twin (:func:`build_async_source`). Every request goes through the bounded request
layer (:mod:`jobwait.adapters._http.request`: decoded-size cap, whole-request bound,
credentials redacted from bodies and errors) and every answer is read by the spec's
:class:`~jobwait.ApiProfile` (its "not there yet" statuses, Retry-After headers and
batch shape).

Secrets are resolved here, once, when the source is built: by default from this
process's environment (:func:`env_credential`); an engine passes ``resolve=`` to read
its own connections (Airflow: ``conn_id``), and ``base_url_of=`` to read a base URL from
one (``SourceSpec.base_url_conn_id``). They go into the HTTP client's headers and
nowhere else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

import jobwait
import jobwait._plumbing
from jobwait import ApiProfile
from jobwait._durable import Credential, SourceSpec
from jobwait._plumbing import default_failure_of, default_status_of, single_job
from jobwait.http import read_response

from .. import httpx as _httpx
from .._http.request import Answer, arequest, clean_secret, request
from .._http.urls import expand
from ..ionq import DEFAULT_BASE_URL

__all__ = [
    "AsyncSource",
    "BaseUrlResolver",
    "CredentialResolver",
    "Source",
    "SourceFactory",
    "build_async_source",
    "build_source",
    "env_credential",
    "expand",
    "ionq_spec",
    "no_base_url",
]

#: Resolves one :class:`~jobwait._durable.Credential` to its secret, in the process that
#: runs the wait. Raises ``LookupError`` when the secret is not available there.
CredentialResolver = Callable[[Credential], str]

#: Reads the base URL an engine's connection names (``SourceSpec.base_url_conn_id``), in
#: the process that runs the wait: the URL, or ``None`` when the connection has no host.
#: Raises ``LookupError`` when the connection cannot be read there.
BaseUrlResolver = Callable[[str], "str | None"]

_CANCEL_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """How one process reads (and may cancel) jobs of one API.

    Attributes:
        fetch_many: ``fetch_many(ids)`` -> a mapping of id to job, or
            ``jobwait.Fetched(mapping, retry_after=...)``; raises on failure. An id left
            out of the mapping is a retryable failure for that job alone. The sources
            built here also take ``time_left=`` (``Read.time_left``: the request is
            bounded by it, never under one second).
        batch: ``True`` if one ``fetch_many`` call is one request for many ids;
            ``False`` if it reads one id per request (the fleet then asks for one id at
            a time, ``max_batch=1``).
        is_retryable: Classifies a ``fetch_many`` exception (default
            :func:`jobwait.is_retryable`).
        retry_after_of: A server hint in seconds from an exception (default
            :func:`jobwait._plumbing.retry_after_of`).
        status_of: Reads a job's status (default: its ``status`` field).
        failure_of: Reads a failed job's failure payload (default: ``failure``).
        cancel: ``cancel(job_id)`` cancels a remote job; only called for a job that
            timed out in a group submitted with ``cancel_on_timeout=True``, or by
            ``WaitGroup.cancel(remote=True)``. Never on a worker's shutdown.
        close: Called when the worker process exits.
        spec: The description it was built from, if any.
    """

    fetch_many: Callable[[tuple[str, ...]], Any]
    batch: bool = True
    is_retryable: Callable[[BaseException], bool] = jobwait.is_retryable
    retry_after_of: Callable[[BaseException], float | None] = jobwait._plumbing.retry_after_of
    status_of: Callable[[Any], Any] = field(default=default_status_of)
    failure_of: Callable[[Any], Any] = field(default=default_failure_of)
    cancel: Callable[[str], object] | None = None
    close: Callable[[], object] | None = None
    spec: SourceSpec | None = None


#: What an engine registers: called once per worker process, returns the source.
SourceFactory = Callable[[], Source]


@dataclass(frozen=True, slots=True, kw_only=True)
class AsyncSource:
    """The async twin of :class:`Source` (asyncio or trio), for an engine whose waits
    run in an event loop (an Airflow trigger): the same fields, ``fetch_many``,
    ``cancel`` and ``aclose`` awaitable."""

    fetch_many: Callable[[tuple[str, ...]], Awaitable[Any]]
    batch: bool = True
    is_retryable: Callable[[BaseException], bool] = jobwait.is_retryable
    retry_after_of: Callable[[BaseException], float | None] = jobwait._plumbing.retry_after_of
    status_of: Callable[[Any], Any] = field(default=default_status_of)
    failure_of: Callable[[Any], Any] = field(default=default_failure_of)
    cancel: Callable[[str], Awaitable[object]] | None = None
    aclose: Callable[[], Awaitable[object]] | None = None
    spec: SourceSpec | None = None


def env_credential(credential: Credential) -> str:
    """The default :data:`CredentialResolver`: the secret from this process's
    environment, surrounding whitespace stripped.

    Raises:
        LookupError: The variable is not set (or empty), or the credential names a
            connection id, which only an engine's resolver can read.
        ValueError: The value has a control or non-ASCII character inside (names the
            variable, never the value).
    """
    if credential.env is None:
        raise LookupError(
            f"the credential comes from {credential.where}: pass the engine's resolver "
            "(resolve=...) to read it; this process reads environment variables only"
        )
    value = os.environ.get(credential.env)
    if not value:
        raise LookupError(f"environment variable {credential.env} is not set in this process")
    return clean_secret(value, name=credential.env)


def no_base_url(conn_id: str) -> str | None:
    """The default :data:`BaseUrlResolver`: this process reads no engine connections.

    Raises:
        LookupError: Always; it names the connection and what to pass.
    """
    raise LookupError(
        f"the base URL comes from connection {conn_id}: pass the engine's resolver "
        "(base_url_of=...) to read it"
    )


def _headers(spec: SourceSpec, resolve: CredentialResolver) -> dict[str, str]:
    headers: dict[str, str] = {}
    for credential in spec.credentials:
        secret = clean_secret(resolve(credential), name=credential.where)
        headers[credential.header] = (
            f"{credential.scheme} {secret}" if credential.scheme else secret
        )
    return headers


def _base_url(spec: SourceSpec, base_url_of: BaseUrlResolver) -> str:
    # In order: the variable where the wait runs, the connection's host, the spec's own.
    if spec.base_url_env and (found := os.environ.get(spec.base_url_env)):
        return found
    if spec.base_url_conn_id is not None and (found := base_url_of(spec.base_url_conn_id)):
        return found
    return spec.base_url


def _client_options(
    spec: SourceSpec,
    resolve: CredentialResolver,
    base_url_of: BaseUrlResolver,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    base = _base_url(spec, base_url_of)
    out: dict[str, Any] = {"timeout": httpx.Timeout(spec.timeout, connect=spec.connect_timeout)}
    out.update(options)
    # The spec's own headers, under the caller's, under the secrets.
    out["headers"] = {
        **dict(spec.headers),
        **dict(options.get("headers") or {}),
        **_headers(spec, resolve),
    }
    if base:
        out["base_url"] = base
    return out


@dataclass(frozen=True, slots=True)
class _Reading:
    # What the sync and async sources of one spec share: their URLs, how every answer
    # is read (the profile's rules, then the batch shape) and their readers.
    spec: SourceSpec
    jobs_of: Callable[[Any], Mapping[str, Any]]
    status_of: Callable[[Any], Any]
    failure_of: Callable[[Any], Any]

    def url(self, ids: tuple[str, ...]) -> str:
        if self.spec.batch_url is not None:
            return expand(self.spec.batch_url, ids)
        (job_id,) = ids  # a one-by-one source runs with max_batch=1
        assert self.spec.url is not None
        return expand(self.spec.url, (job_id,))

    def cancel(self, job_id: str) -> tuple[str, str]:
        assert self.spec.cancel_url is not None
        return expand(self.spec.cancel_url, (job_id,)), self.spec.cancel_method

    def read(self, answer: Answer, ids: tuple[str, ...]) -> Any:
        profile = self.spec.profile
        reader = read_response if profile is None else profile.read_response
        if self.spec.batch_url is not None:
            fetched = answer.read(reader=reader, wall_now=time.time())
            return _httpx._batch(fetched, self.jobs_of, True)
        return single_job(ids[0], answer.read(reader=reader, wall_now=time.time(), job_id=ids[0]))

    def fields(self) -> dict[str, Any]:
        return {
            "batch": self.spec.batch,
            "is_retryable": _httpx.is_retryable,
            "status_of": self.status_of,
            "failure_of": self.failure_of,
            "spec": self.spec,
        }


def _reading(
    spec: SourceSpec,
    jobs_of: Callable[[Any], Mapping[str, Any]] | None,
    status_of: Callable[[Any], Any] | None,
    failure_of: Callable[[Any], Any] | None,
) -> _Reading:
    profile = spec.profile
    if jobs_of is None and profile is not None:
        jobs_of = profile.jobs_of
    return _Reading(
        spec,
        jobs_of or _httpx.jobs_by_id,
        status_of or spec.status_of,
        failure_of or spec.failure_of,
    )


def _cancelled(answer: Answer, job_id: str) -> Any:
    return answer.read(wall_now=time.time(), retry_invalid_body=False, job_id=job_id).job


def build_source(
    spec: SourceSpec,
    *,
    resolve: CredentialResolver = env_credential,
    base_url_of: BaseUrlResolver = no_base_url,
    status_of: Callable[[Any], Any] | None = None,
    failure_of: Callable[[Any], Any] | None = None,
    jobs_of: Callable[[Any], Mapping[str, Any]] | None = None,
    **client_options: Any,
) -> Source:
    """The :class:`Source` ``spec`` describes, with its own ``httpx.Client``: call it in
    the process that runs the wait (it reads the secrets there).

    Args:
        spec: What to read.
        resolve: Reads each credential's secret (default :func:`env_credential`).
        base_url_of: Reads the base URL of ``spec.base_url_conn_id`` (default
            :func:`no_base_url`: this process reads no connections).
        status_of, failure_of, jobs_of: Override the profile's readers (a callable
            cannot travel in the description; the process that builds the source may
            still bring its own).
        **client_options: More ``httpx.Client`` keywords (``transport``, ``verify``,
            ``headers`` for non-secret headers, ...).

    Raises:
        LookupError: A credential's secret, or the base URL's connection, is not
            available here.
        ValueError: A secret with a control or non-ASCII character inside.
    """
    client = httpx.Client(**_client_options(spec, resolve, base_url_of, client_options))
    reading = _reading(spec, jobs_of, status_of, failure_of)

    def fetch_many(ids: tuple[str, ...], *, time_left: float | None = None) -> Any:
        answer = request(
            client, "GET", reading.url(ids), max_body_size=spec.max_body_size, time_left=time_left
        )
        return reading.read(answer, ids)

    def cancel(job_id: str) -> Any:
        url, method = reading.cancel(job_id)
        return _cancelled(request(client, method, url, timeout=_CANCEL_TIMEOUT), job_id)

    return Source(
        fetch_many=fetch_many,
        cancel=None if spec.cancel_url is None else cancel,
        close=client.close,
        **reading.fields(),
    )


def build_async_source(
    spec: SourceSpec,
    *,
    resolve: CredentialResolver = env_credential,
    base_url_of: BaseUrlResolver = no_base_url,
    status_of: Callable[[Any], Any] | None = None,
    failure_of: Callable[[Any], Any] | None = None,
    jobs_of: Callable[[Any], Mapping[str, Any]] | None = None,
    **client_options: Any,
) -> AsyncSource:
    """The :class:`AsyncSource` ``spec`` describes, with its own ``httpx.AsyncClient``
    (asyncio or trio); same arguments and errors as :func:`build_source`. Await
    ``aclose()`` when done."""
    client = httpx.AsyncClient(**_client_options(spec, resolve, base_url_of, client_options))
    reading = _reading(spec, jobs_of, status_of, failure_of)

    async def fetch_many(ids: tuple[str, ...], *, time_left: float | None = None) -> Any:
        answer = await arequest(
            client, "GET", reading.url(ids), max_body_size=spec.max_body_size, time_left=time_left
        )
        return reading.read(answer, ids)

    async def cancel(job_id: str) -> Any:
        url, method = reading.cancel(job_id)
        answer = await arequest(client, method, url, timeout=_CANCEL_TIMEOUT)
        return _cancelled(answer, job_id)

    return AsyncSource(
        fetch_many=fetch_many,
        cancel=None if spec.cancel_url is None else cancel,
        aclose=client.aclose,
        **reading.fields(),
    )


def ionq_spec(
    *,
    api_key_env: str | None = "IONQ_API_KEY",
    conn_id: str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    base_url_env: str | None = None,
    base_url_conn_id: str | None = None,
    max_body_size: int = 16 * 1024 * 1024,
) -> SourceSpec:
    """IonQ v0.4 as a :class:`~jobwait._durable.SourceSpec`: batch reads
    ``GET /jobs?ids=a&ids=b``, cancel by ``PUT /jobs/{id}/status/cancel``, the key sent
    as ``Authorization: apiKey <key>``, read from ``api_key_env`` or, when given, from
    the engine's connection ``conn_id``; the base URL from ``base_url_env`` where the
    wait runs, else the host of the engine's connection ``base_url_conn_id`` (when it
    has one), else ``base_url``; ionq-core's timeouts (60 s, 10 s to connect).

    Raises:
        ValueError: As :class:`~jobwait._durable.SourceSpec`.
    """
    where = {"conn_id": conn_id} if conn_id is not None else {"env": api_key_env}
    profile = ApiProfile.named("ionq")  # its URLs, cancel request and auth scheme
    return SourceSpec(
        api="ionq",
        base_url=base_url,
        base_url_env=base_url_env,
        base_url_conn_id=base_url_conn_id,
        url=profile.url or "/jobs/{id}",
        batch_url=profile.batch_url,
        cancel_url=profile.cancel_url,
        cancel_method=profile.cancel_method,
        credentials=(Credential(header="Authorization", scheme=profile.auth_scheme, **where),),
        max_body_size=max_body_size,
        timeout=60.0,
        connect_timeout=10.0,
    )
