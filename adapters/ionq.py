"""Wait for IonQ jobs: a drop-in for ``ionq_core.polling``, on jobwait's core.

Replace the import and keep the call::

    from jobwait.adapters.ionq import wait_for_job, JobFailedError, JobTimeoutError

    job = wait_for_job(client, job_id, poll_interval=1.0, timeout=300.0)

Same names, defaults and meaning as ``ionq_core.polling``: terminal statuses are
``completed``, ``failed`` and ``canceled``; a canceled job is returned; ``timeout=0``
makes one GET; ``JobFailedError.failure`` is the raw failure mapping and
``JobTimeoutError.last_status`` the last status seen. What is new: every
:class:`~jobwait.JobWaiter` option and every :func:`jobwait.adapters.httpx.wait_for_url`
option as extra keywords, ``async_wait_for_job`` under trio as well as asyncio, HTTP
failures retried on the deadline's schedule (``Retry-After`` honoured) and reported as
:class:`~jobwait.JobFetchError`, and ``cancel_on_timeout``.

``client`` is an ``httpx.Client`` / ``httpx.AsyncClient`` configured for the IonQ API
(build one with :func:`client` / :func:`async_client`) or an ionq-core client, used
duck-typed through ``get_httpx_client()`` / ``get_async_httpx_client()``: jobwait never
imports ionq-core. ionq-core's ``IonQClient`` raises its own exceptions for HTTP errors
(classified by their ``status_code`` and ``retry_after``; connection errors by the httpx
error they wrap), retries 429 and 5xx itself before jobwait sees them, and sleeps with
``asyncio.sleep`` between those retries, which fails under trio: under trio use
:func:`async_client`, or ``IonQClient(max_retries=0)``. The loop is
:mod:`jobwait.adapters.httpx`'s; this module only builds URLs and wraps the result.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote

from jobwait._advice import missing_extra

try:
    import httpx
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, module=__name__, extra="httpx") from _missing

# JobFailedError and JobTimeoutError are re-exported, as ionq_core.polling exports its
# own: they are jobwait's core classes, so `except jobwait.JobWaitError` catches them.
from jobwait import Backoff, JobFailedError, JobTimeoutError, read_response

from . import httpx as _httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "Job",
    "JobFailedError",
    "JobTimeoutError",
    "async_cancel_job",
    "async_client",
    "async_wait_for_job",
    "async_wait_for_jobs",
    "batch_url",
    "cancel_job",
    "client",
    "is_retryable",
    "job_path",
    "wait_for_job",
    "wait_for_jobs",
]

#: The IonQ API, version 0.4.
DEFAULT_BASE_URL: Final = "https://api.ionq.co/v0.4"
# ionq-core's own client timeout (60 s, 10 s to connect).
_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
_C = TypeVar("_C", httpx.Client, httpx.AsyncClient)


class _PollInterval(float):
    """The type of ``poll_interval``'s default, so passing ``backoff=`` as well is
    detected even when the caller spells out ``poll_interval=1.0``."""

    __slots__ = ()


_DEFAULT_POLL_INTERVAL: Final = _PollInterval(1.0)


class _HasClient(Protocol):
    def get_httpx_client(self) -> httpx.Client: ...


class _HasAsyncClient(Protocol):
    def get_async_httpx_client(self) -> httpx.AsyncClient: ...


class Job(Mapping[str, Any]):
    """A finished IonQ job: the raw JSON payload, with attribute access to the usual keys.

    ``job["status"]``, ``"failure" in job``, ``job.get("results")`` and ``dict(job)``
    work as on the payload; ``job.data`` is the payload itself.
    """

    __slots__ = ("data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data: Mapping[str, Any] = data

    @property
    def id(self) -> str | None:
        """The job id (``data["id"]``), or ``None`` when absent."""
        value = self.data.get("id")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        """The final status: ``completed``, or ``failed`` / ``canceled`` when returned."""
        value = self.data.get("status")
        return value if isinstance(value, str) else None

    @property
    def failure(self) -> Any:
        """The raw failure mapping (``{"code", "message"}``) of a failed job, else ``None``."""
        return self.data.get("failure")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, status={self.status!r})"


def job_path(job_id: str) -> str:
    """The path of a job relative to the API base URL: ``/jobs/{job_id}``, encoded.

    Every character but letters, digits, ``-``, ``_`` and ``~`` is percent-encoded,
    dots included (``%2E``): httpx removes ``.`` and ``..`` segments, so an id such as
    ``..``, ``../x``, ``a/b`` or ``a?b`` could otherwise reach another endpoint.

    Raises:
        TypeError: ``job_id`` is not a string.
        ValueError: ``job_id`` is empty.
    """
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a string, not {type(job_id).__name__}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    return "/jobs/" + quote(job_id, safe="").replace(".", "%2E")


def _api_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("IONQ_API_KEY")
    if not key:
        raise ValueError("no IonQ API key: pass api_key= or set IONQ_API_KEY")
    return key


def _client_kwargs(api_key: str | None, base_url: str, options: dict[str, Any]) -> dict[str, Any]:
    headers = {**options.pop("headers", {}), "Authorization": f"apiKey {_api_key(api_key)}"}
    return {"base_url": base_url, "timeout": _TIMEOUT, **options, "headers": headers}


def client(
    api_key: str | None = None, base_url: str = DEFAULT_BASE_URL, **options: Any
) -> httpx.Client:
    """An ``httpx.Client`` for the IonQ API: base URL, ``Authorization: apiKey <key>``
    and ionq-core's timeouts (60 s, 10 s to connect). Close it when done
    (``with client() as c:``).

    Args:
        api_key: Your IonQ API key; default the ``IONQ_API_KEY`` environment variable.
        base_url: The API root (default ``https://api.ionq.co/v0.4``).
        **options: More ``httpx.Client`` keywords (``timeout``, ``transport``, ...).

    Raises:
        ValueError: No key given and ``IONQ_API_KEY`` is unset or empty.
    """
    return httpx.Client(**_client_kwargs(api_key, base_url, options))


def async_client(
    api_key: str | None = None, base_url: str = DEFAULT_BASE_URL, **options: Any
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` twin of :func:`client` (works under asyncio and trio).

    Raises:
        ValueError: No key given and ``IONQ_API_KEY`` is unset or empty.
    """
    return httpx.AsyncClient(**_client_kwargs(api_key, base_url, options))


def _http(client: object, kind: type[_C], getter: str) -> _C:
    http = client if isinstance(client, kind) else getattr(client, getter, None)
    if callable(http):
        http = http()
    if not isinstance(http, kind):
        raise TypeError(
            f"client must be an {kind.__module__}.{kind.__name__} or have {getter}(), "
            f"got {type(client).__name__}"
        )
    if not str(http.base_url).strip("/"):
        raise ValueError(
            "the client has no base_url; build one with jobwait.adapters.ionq.client()"
        )
    return http


def is_retryable(error: BaseException) -> bool:
    """:func:`jobwait.adapters.httpx.is_retryable`, plus exceptions that wrap an httpx
    transport error without saying whether to retry (ionq-core's ``APIConnectionError``
    and ``APITimeoutError``): those are judged by their ``__cause__``."""
    if _httpx.is_retryable(error):
        return True
    cause = error.__cause__
    return (
        getattr(error, "retryable", None) is None
        and getattr(error, "status_code", None) is None
        and isinstance(cause, httpx.TransportError)
        and _httpx.is_retryable(cause)
    )


def _options(
    job_id: str, poll_interval: float, timeout: float | None, raise_on_failure: bool, options: Any
) -> dict[str, Any]:
    if "backoff" in options:
        if poll_interval is not _DEFAULT_POLL_INTERVAL:
            raise TypeError("pass either poll_interval= or backoff=, not both")
    elif isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise TypeError(f"poll_interval must be a number, not {poll_interval!r}")
    elif not (poll_interval > 0 and math.isfinite(poll_interval)):
        raise ValueError(f"poll_interval={poll_interval!r} must be a finite number > 0")
    else:
        p = float(poll_interval)
        options["backoff"] = Backoff(initial=p, factor=1.5, max=max(30.0, p))
    options.setdefault("is_retryable", is_retryable)
    return {
        "job_id": job_id,
        "timeout": timeout,
        "raise_on_failure": raise_on_failure,
        **options,
    }


def _cancel_callback(cancel: Any, cancel_on_timeout: bool, default: Any) -> Any:
    if cancel is not None and cancel_on_timeout:
        raise TypeError("pass either cancel= or cancel_on_timeout=True, not both")
    return default if cancel_on_timeout else cancel


def wait_for_job(
    client: httpx.Client | _HasClient,
    job_id: str,
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    timeout: float | None = 300.0,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[], object] | None = None,
    **options: Any,
) -> Job:
    """Poll ``GET /jobs/{job_id}`` until the job is completed, failed or canceled.

    Polls at once, then after ``poll_interval`` seconds, growing x1.5 per poll up to
    ``max(30, poll_interval)``, and never past the deadline (the last poll lands on it).

    Args:
        client: An ``httpx.Client`` with the IonQ base URL and auth (:func:`client`),
            or an ionq-core client (its ``get_httpx_client()`` is used).
        job_id: The job's id; any string, percent-encoded into the path.
        poll_interval: First interval in seconds (default 1): ``Backoff(initial=p,
            factor=1.5, max=max(30, p))``. Pass ``backoff=`` instead for another schedule.
        timeout: Seconds until :class:`JobTimeoutError` (default 300); ``0`` makes
            one GET; ``None`` waits until your own cancellation.
        raise_on_failure: Raise :class:`JobFailedError` for a failed job (default);
            when ``False`` the failed job is returned.
        cancel_on_timeout: Send ``PUT /jobs/{job_id}/status/cancel`` when the wait
            times out or is interrupted; its failure is recorded on the error
            (``cancel_error``), never replacing it.
        cancel: Your own cancel callback instead (see :func:`jobwait.adapters.sync.wait`).
        **options: Every :class:`~jobwait.JobWaiter` option (``backoff``,
            ``max_fetch_errors``, ``raise_on_cancel``, ...) and every
            :func:`~jobwait.adapters.httpx.wait_for_url` option (``on_status``, ``on_poll``,
            ``clock``, ``sleep``, ``max_body_size``, ...). ``is_retryable`` defaults
            to this module's :func:`is_retryable`.

    Returns:
        The finished :class:`Job`; check ``job.status`` for ``canceled`` (and
        ``failed`` with ``raise_on_failure=False``).

    Raises:
        JobFailedError: The job failed; ``failure`` is the raw failure mapping.
        JobTimeoutError: Still unfinished at the deadline; ``last_status`` says where
            it was. The job is still running unless you cancelled it.
        JobFetchError: An HTTP status retrying cannot fix (401, 403, 404, ...), a
            body over ``max_body_size``, or ``max_fetch_errors`` failures in a row;
            ``status_code`` and ``request_id`` say which.
        JobStatusError: A job without a usable ``status``, or a body that is not
            JSON with ``retry_invalid_body=False``.
        TypeError: Both ``poll_interval`` and ``backoff``, both ``cancel`` and
            ``cancel_on_timeout``, an unknown option, or an unusable ``client``.
        ValueError: ``poll_interval <= 0``, an empty ``job_id``, a client without a
            base URL, or another invalid option.
    """
    http = _http(client, httpx.Client, "get_httpx_client")
    path = job_path(job_id)
    data = _httpx.wait_for_url(
        http,
        path,
        cancel=_cancel_callback(cancel, cancel_on_timeout, lambda: cancel_job(http, job_id)),
        **_options(job_id, poll_interval, timeout, raise_on_failure, options),
    )
    return Job(data)


async def async_wait_for_job(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_id: str,
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    # The job's own deadline (ionq_core.polling's signature), not a request timeout:
    # it composes with the caller's cancel scopes instead of replacing them.
    timeout: float | None = 300.0,  # noqa: ASYNC109
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[], Awaitable[object]] | None = None,
    **options: Any,
) -> Job:
    """Async :func:`wait_for_job`, under asyncio or trio, with an ``httpx.AsyncClient``
    (:func:`async_client`) or an ionq-core client (``get_async_httpx_client()``).

    Takes the same arguments, async where they do IO, plus
    :func:`~jobwait.adapters.httpx.async_wait_for_url`'s ``cancel_grace``. Cancellation
    (task cancel, cancel scopes) propagates, after ``cancel_on_timeout`` had its chance.

    Raises:
        RuntimeError: Called outside asyncio and trio.
        JobFailedError: As for :func:`wait_for_job`.
        JobTimeoutError: As for :func:`wait_for_job`.
        JobFetchError: As for :func:`wait_for_job`.
        JobStatusError: As for :func:`wait_for_job`.
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")
    path = job_path(job_id)

    async def cancel_remote() -> None:
        await async_cancel_job(http, job_id)

    data = await _httpx.async_wait_for_url(
        http,
        path,
        cancel=_cancel_callback(cancel, cancel_on_timeout, cancel_remote),
        **_options(job_id, poll_interval, timeout, raise_on_failure, options),
    )
    return Job(data)


def _cancel_answer(response: httpx.Response, job_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = read_response(
        response.status_code,
        response.headers.multi_items(),
        response.content,
        wall_now=0.0,
        retry_invalid_body=False,
        job_id=job_id,
    ).job
    return answer


def cancel_job(
    client: httpx.Client | _HasClient, job_id: str, *, timeout: float | None = 10.0
) -> dict[str, Any]:
    """Ask IonQ to cancel a job: ``PUT /jobs/{job_id}/status/cancel``, once.

    A pending job becomes ``canceled``; a finished one is left as it is. Wait for the
    job afterwards to see its final status.

    Args:
        client: As for :func:`wait_for_job`.
        job_id: The job to cancel.
        timeout: Seconds for each phase of the request (default 10).

    Returns:
        IonQ's answer, ``{"id": ..., "status": ...}``.

    Raises:
        jobwait.ResponseError: A non-2xx answer (``status_code``, ``request_id``).
        jobwait.JobStatusError: A 2xx answer that is not a JSON object.
        httpx.HTTPError: The request failed (connection, timeout, ...), or whatever
            an ionq-core client's transport raises instead.
        TypeError: A ``client`` of the wrong kind, or a ``job_id`` that is not a string.
        ValueError: An empty ``job_id``, or a client without a base URL.
    """
    http = _http(client, httpx.Client, "get_httpx_client")
    response = http.put(job_path(job_id) + "/status/cancel", timeout=timeout)
    return _cancel_answer(response, job_id)


async def async_cancel_job(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_id: str,
    *,
    timeout: float | None = 10.0,  # noqa: ASYNC109 - httpx's per-phase timeout, as in cancel_job
) -> dict[str, Any]:
    """Async :func:`cancel_job` (asyncio or trio); same arguments, result and errors."""
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")
    response = await http.put(job_path(job_id) + "/status/cancel", timeout=timeout)
    return _cancel_answer(response, job_id)


# --- many jobs -------------------------------------------------------------------------


def batch_url(ids: tuple[str, ...]) -> httpx.URL:
    """The batch read of these jobs, ``/jobs?ids=a&ids=b``: repeated ``ids``
    parameters, as ionq-core sends them (httpx percent-encodes each id). Relative:
    the client's base URL comes first."""
    return httpx.URL("/jobs", params=[("ids", job_id) for job_id in ids])


def _as_jobs(results: dict[str, Any]) -> dict[str, Any]:
    return {k: Job(v) if isinstance(v, dict) else v for k, v in results.items()}


def _fleet_options(
    poll_interval: float, timeout: float | None, raise_on_failure: bool, options: Any
) -> dict[str, Any]:
    merged = _options("", poll_interval, timeout, raise_on_failure, options)
    del merged["job_id"]
    return merged


def wait_for_jobs(
    client: httpx.Client | _HasClient,
    job_ids: Iterable[str],
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    timeout: float | None = 300.0,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[str], object] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Wait for many IonQ jobs at once with batch reads, ``GET /jobs?ids=...``.

    One :class:`~jobwait.JobFleet` in this thread: jobs due close together share one
    request of up to ``max_batch`` ids (default 100), so a sweep of 1,000 circuits
    costs a few requests per poll round instead of 1,000.

    Args:
        client: As for :func:`wait_for_job`.
        job_ids: The jobs to wait for (duplicates ignored).
        poll_interval: First interval per job, as for :func:`wait_for_job`.
        timeout: Per job, seconds until its ``JobTimeoutError`` (default 300).
        raise_on_failure: With ``True`` (default) a failed job's outcome is its
            :class:`JobFailedError`; with ``False`` the failed :class:`Job`. (Use
            ``fail_fast=True`` to stop at the first error instead of collecting.)
        cancel_on_timeout: Cancel each job that times out (and, with ``fail_fast``, the
            jobs left when the fleet stops) with ``PUT /jobs/{id}/status/cancel``.
        cancel: Your own ``cancel(job_id)`` instead.
        **options: Every :class:`~jobwait.JobFleet` option (``max_batch``,
            ``batch_window``, ``max_polls_per_second``, ``use_predictions``, ...) and
            every :func:`jobwait.adapters.httpx.wait_for_batch` option.

    Returns:
        Every id mapped to its :class:`Job` or to its ``JobWaitError``.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error.
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    http = _http(client, httpx.Client, "get_httpx_client")
    results = _httpx.wait_for_batch(
        http,
        job_ids,
        url_for=batch_url,
        cancel=_cancel_callback(cancel, cancel_on_timeout, lambda i: cancel_job(http, i)),
        **_fleet_options(poll_interval, timeout, raise_on_failure, options),
    )
    return _as_jobs(results)


async def async_wait_for_jobs(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_ids: Iterable[str],
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    timeout: float | None = 300.0,  # noqa: ASYNC109 - each job's own deadline, a domain rule
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[str], Awaitable[object]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Async :func:`wait_for_jobs` (asyncio or trio): up to ``max_concurrency``
    batch requests in flight (default 10).

    Raises:
        RuntimeError: Called outside asyncio and trio.
        FleetFailedError: With ``fail_fast``, at the first job error.
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")

    async def cancel_remote(job_id: str) -> None:
        await async_cancel_job(http, job_id)

    results = await _httpx.async_wait_for_batch(
        http,
        job_ids,
        url_for=batch_url,
        cancel=_cancel_callback(cancel, cancel_on_timeout, cancel_remote),
        **_fleet_options(poll_interval, timeout, raise_on_failure, options),
    )
    return _as_jobs(results)
