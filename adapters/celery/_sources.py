"""Sources: how a worker reads job statuses, registered by name in every worker.

A task message carries a source *name* and job ids, never a callable, a URL with a key
or a header: each worker process builds the source itself the first time it needs it,
from a factory registered under that name (reading API keys from its own environment).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

import jobwait
import jobwait._plumbing
from jobwait._plumbing import DEFAULT_MAX_BODY_SIZE, single_job
from jobwait._statuses import default_failure_of, default_status_of

from .. import httpx as _httpx
from .. import ionq as _ionq
from .._request import clean_secret, request
from ..httpx import jobs_by_id
from ..ionq import DEFAULT_BASE_URL

__all__ = ["Source", "SourceFactory", "http_source", "ionq_source"]

_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """How one worker process reads (and may cancel) jobs of one API.

    Attributes:
        fetch_many: ``fetch_many(ids)`` -> a mapping of id to job, or
            ``jobwait.Fetched(mapping, retry_after=...)``; raises on failure. An id left
            out of the mapping is a retryable failure for that job alone.
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
    """

    fetch_many: Callable[[tuple[str, ...]], Any]
    batch: bool = True
    is_retryable: Callable[[BaseException], bool] = jobwait.is_retryable
    retry_after_of: Callable[[BaseException], float | None] = jobwait._plumbing.retry_after_of
    status_of: Callable[[Any], Any] = field(default=default_status_of)
    failure_of: Callable[[Any], Any] = field(default=default_failure_of)
    cancel: Callable[[str], object] | None = None
    close: Callable[[], object] | None = None


#: What ``register_source`` takes: called once per worker process, returns the source.
SourceFactory = Callable[[], Source]


@dataclass(frozen=True, slots=True)
class _Factory:
    # A factory that says whether its source reads many ids per request, so the
    # producer knows without building the source (which needs the worker's secrets).
    build: Callable[[], Source]
    batch: bool

    def __call__(self) -> Source:
        return self.build()


def _env(name: str | None) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise LookupError(f"environment variable {name} is not set in this worker process")
    return clean_secret(value, name=name)


def _batch_fetch(
    client: httpx.Client,
    url_for: Callable[[tuple[str, ...]], str | httpx.URL],
    max_body_size: int,
    jobs_of: Callable[[Any], Mapping[str, Any]],
) -> Callable[[tuple[str, ...]], Any]:
    # The httpx adapter's one bounded request (decoded-body cap, whole-request bound,
    # credentials redacted) and its batch reader.
    def fetch_many(ids: tuple[str, ...]) -> Any:
        answer = request(client, "GET", url_for(ids), max_body_size=max_body_size)
        return _httpx._batch(answer.read(wall_now=time.time()), jobs_of, True)

    return fetch_many


def _one_fetch(
    client: httpx.Client, url_for: Callable[[str], str], max_body_size: int
) -> Callable[[tuple[str, ...]], Any]:
    def fetch_many(ids: tuple[str, ...]) -> Any:
        (job_id,) = ids  # a one-by-one source runs with max_batch=1
        answer = request(client, "GET", url_for(job_id), max_body_size=max_body_size)
        return single_job(job_id, answer.read(wall_now=time.time(), job_id=job_id))

    return fetch_many


def ionq_source(
    *,
    base_url: str = DEFAULT_BASE_URL,
    api_key_env: str = "IONQ_API_KEY",
    base_url_env: str | None = None,
    max_body_size: int = 16 * DEFAULT_MAX_BODY_SIZE,
    **client_options: Any,
) -> SourceFactory:
    """A factory for IonQ batch reads, ``GET /jobs?ids=a&ids=b`` (see
    :func:`jobwait.adapters.ionq.batch_url`), with cancel by
    ``PUT /jobs/{id}/status/cancel``.

    The key is read in the worker from ``api_key_env`` when the source is first used;
    it never travels in a task message or Redis.

    Args:
        base_url: The API root (default ``https://api.ionq.co/v0.4``).
        api_key_env: The environment variable holding the key (default
            ``IONQ_API_KEY``).
        base_url_env: If given, the environment variable holding the API root
            (overrides ``base_url`` when set).
        max_body_size: Largest batch answer read (default 16 MiB).
        **client_options: More ``httpx.Client`` keywords (``timeout``, ...).

    Raises:
        LookupError: (when the worker builds it) the key's variable is not set.
    """

    def build() -> Source:
        root = (os.environ.get(base_url_env) if base_url_env else None) or base_url
        http = _ionq.client(api_key=_env(api_key_env), base_url=root, **client_options)
        return Source(
            fetch_many=_batch_fetch(http, _ionq.batch_url, max_body_size, jobs_by_id),
            is_retryable=_ionq.is_retryable,
            cancel=lambda job_id: _ionq.cancel_job(http, job_id),
            close=http.close,
        )

    return _Factory(build, True)


def http_source(
    url: str,
    *,
    batch: bool = False,
    headers_env: Mapping[str, str] | None = None,
    jobs_of: Callable[[Any], Mapping[str, Any]] = jobs_by_id,
    status_of: Callable[[Any], Any] = default_status_of,
    failure_of: Callable[[Any], Any] = default_failure_of,
    max_body_size: int = 16 * DEFAULT_MAX_BODY_SIZE,
    **client_options: Any,
) -> SourceFactory:
    """A factory for any HTTP JSON job API, read with httpx (bounded bodies, 429 and
    5xx retried with ``Retry-After``, as :mod:`jobwait.adapters.httpx`).

    Args:
        url: A URL template. One by one (``batch=False``): ``{id}`` is replaced by
            the percent-encoded job id, e.g. ``"https://api.example.com/jobs/{id}"``.
            Batch (``batch=True``): ``{ids}`` is replaced by the comma-separated
            encoded ids, e.g. ``"https://api.example.com/jobs?ids={ids}"``.
        batch: Whether one request reads many jobs (its answer read by ``jobs_of``).
        headers_env: Request headers whose values come from the worker's
            environment: header name -> variable name, e.g.
            ``{"Authorization": "EXAMPLE_AUTH"}``.
        jobs_of: Reads a batch answer as ``{id: job}`` (default: IonQ's
            ``{"jobs": [...]}`` shape).
        status_of: Reads a job's status (default: its ``status`` field).
        failure_of: Reads a failed job's failure payload.
        max_body_size: Largest answer read (default 16 MiB).
        **client_options: More ``httpx.Client`` keywords.

    Raises:
        ValueError: The template lacks ``{id}`` (one by one) or ``{ids}`` (batch).
        LookupError: (when the worker builds it) a header's variable is not set.
    """
    marker = "{ids}" if batch else "{id}"
    if marker not in url:
        raise ValueError(f"http_source(url={url!r}, batch={batch}) must contain {marker}")

    def build() -> Source:
        headers = {name: _env(var) for name, var in (headers_env or {}).items()}
        options = {"timeout": _TIMEOUT, **client_options}
        options["headers"] = {**options.get("headers", {}), **headers}
        client = httpx.Client(**options)
        if batch:
            fetch = _batch_fetch(
                client,
                lambda ids: url.replace("{ids}", ",".join(_ionq.path_segment(i) for i in ids)),
                max_body_size,
                jobs_of,
            )
        else:
            fetch = _one_fetch(
                client, lambda i: url.replace("{id}", _ionq.path_segment(i)), max_body_size
            )
        return Source(
            fetch_many=fetch,
            batch=batch,
            is_retryable=_httpx.is_retryable,
            status_of=status_of,
            failure_of=failure_of,
            close=client.close,
        )

    return _Factory(build, batch)
