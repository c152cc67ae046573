"""Wait for IonQ jobs: a drop-in for ``ionq_core.polling``, on jobwait's core.

Replace the import and keep the call::

    from jobwait.adapters.ionq import wait_for_job, JobFailedError, JobTimeoutError

    job = wait_for_job(client, job_id, poll_interval=1.0, timeout=300.0)

Same names, defaults and meaning as ``ionq_core.polling``: terminal statuses are
``completed``, ``failed`` and ``canceled``; a canceled job is returned; ``timeout <= 0``
makes one GET; ``poll_interval <= 0`` polls back to back. With an ionq-core client
(``IonQClient()``, ``AuthenticatedClient``) the job is read through ionq-core's own
generated ``get_job`` / ``get_jobs`` functions and returned as ionq-core's own model,
``.failure`` as ionq-core gives it. With ionq-core installed, every error raised here is
also the ionq-core error for that outcome (``IonQError`` always; ``JobFailedError``,
``JobTimeoutError``, ``NotFoundError``, ...) while staying a
:class:`~jobwait.JobWaitError` with its full context.

What is new: every :class:`~jobwait.JobWaiter` option and every
:func:`jobwait.adapters.httpx.wait_for_url` option as extra keywords,
``async_wait_for_job`` under trio as well as asyncio, HTTP failures retried on the
deadline's schedule (``Retry-After`` honoured), and ``cancel_on_timeout``. With a plain
``httpx.Client`` (:func:`client`) the result is a :class:`Job`, the raw payload.

ionq-core is optional: jobwait's core never imports it, and without it this module works
on httpx clients alone. ionq-core's ``IonQClient`` raises its own exceptions for HTTP
errors, retries 429 and 5xx itself before jobwait sees them, and sleeps with
``asyncio.sleep`` between those retries, which fails under trio: under trio use
:func:`async_client`, or ``IonQClient(max_retries=0)``.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Final, NoReturn, Protocol, TypeVar

from jobwait._plumbing import missing_extra

try:
    import httpx
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, module=__name__, extra="httpx") from _missing

from jobwait import ApiProfile, Backoff, Fetched, JobWaitError
from jobwait._plumbing import JOB_OPTIONS
from jobwait._plumbing import retry_after_of as _retry_after_of
from jobwait.http import DEFAULT_MAX_BODY_SIZE

from . import httpx as _httpx
from . import sync as _sync
from ._http import ionq_core as _ionq_core

# JobFailedError and JobTimeoutError are re-exported, as ionq_core.polling exports its
# own: subclasses of jobwait's (so `except jobwait.JobWaitError` catches them) and, with
# ionq-core installed, of ionq_core.polling's, built with ionq-core's positional arguments.
from ._http.ionq_core import JobFailedError, JobTimeoutError
from ._http.request import Answer, arequest, clean_secret, request, whole_request_limit
from ._http.urls import expand
from ._runtime import loop as _loop
from ._runtime import shared as _shared
from ._runtime.loop import current_runtime

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
# What jobwait knows of IonQ is its profile: vocabulary, readers, URLs, cancel, auth.
_PROFILE: Final = ApiProfile.named("ionq")
_URL: Final = _PROFILE.url or "/jobs/{id}"
_BATCH_URL: Final = _PROFILE.batch_url or "/jobs{?ids*}"


def _cancel_path(job_id: str) -> str:
    return expand(_PROFILE.cancel_url or "/jobs/{id}/status/cancel", (_job_id(job_id),))


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


def _job_id(job_id: str | uuid.UUID) -> str:
    if isinstance(job_id, uuid.UUID):
        return str(job_id)
    if not isinstance(job_id, str):
        raise TypeError(f"job_id must be a string or uuid.UUID, not {type(job_id).__name__}")
    if not job_id:
        raise ValueError("job_id must not be empty")
    return job_id


def job_path(job_id: str | uuid.UUID) -> str:
    """The path of a job relative to the API base URL: ``/jobs/{job_id}``, encoded.

    Every character but letters, digits, ``-``, ``_`` and ``~`` is percent-encoded,
    dots included (``%2E``): httpx removes ``.`` and ``..`` segments, so an id such as
    ``..``, ``../x``, ``a/b`` or ``a?b`` could otherwise reach another endpoint. A
    ``uuid.UUID`` is written in its usual hyphenated form, as ionq-core does.

    Raises:
        TypeError: ``job_id`` is neither a string nor a ``uuid.UUID``.
        ValueError: ``job_id`` is empty.
    """
    return expand(_URL, (_job_id(job_id),))


def _api_key(api_key: str | None) -> str:
    # Cleaned where it enters: a key read from a file or a CRLF .env keeps its trailing
    # newline, which httpx would refuse with the key in its message.
    if api_key:
        return clean_secret(api_key, name="api_key")
    key = os.environ.get("IONQ_API_KEY")
    if not key:
        raise ValueError("no IonQ API key: pass api_key= or set IONQ_API_KEY")
    return clean_secret(key, name="IONQ_API_KEY")


def _client_kwargs(api_key: str | None, base_url: str, options: dict[str, Any]) -> dict[str, Any]:
    scheme = _PROFILE.auth_scheme
    headers = {**options.pop("headers", {}), "Authorization": f"{scheme} {_api_key(api_key)}"}
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
        ValueError: No key given and ``IONQ_API_KEY`` is unset or empty, or the key has a
            control or non-ASCII character inside (the error names ``api_key`` or
            ``IONQ_API_KEY``, never the value). Surrounding whitespace (a trailing
            newline from a key file) is stripped.
    """
    return httpx.Client(**_client_kwargs(api_key, base_url, options))


def async_client(
    api_key: str | None = None, base_url: str = DEFAULT_BASE_URL, **options: Any
) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` twin of :func:`client` (works under asyncio and trio).

    Raises:
        ValueError: No key given and ``IONQ_API_KEY`` is unset or empty, or the key has a
            control or non-ASCII character inside (the error names ``api_key`` or
            ``IONQ_API_KEY``, never the value). Surrounding whitespace (a trailing
            newline from a key file) is stripped.
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


# poll_interval <= 0: ionq-core polls back to back (its interval stays 0); a Backoff
# must be > 0, so this is the least interval, 1 microsecond, kept for every poll.
_BACK_TO_BACK: Final = Backoff(initial=1e-6, factor=1.0, max=1e-6)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name}=nan is not a number of seconds")
    return float(value)


def _deadline(timeout: float | None) -> float | None:
    """ionq-core's ``timeout`` as a ``JobWaiter`` timeout: ``<= 0`` is ``0`` (one poll,
    then ``JobTimeoutError``), ``inf`` and ``None`` wait without a deadline."""
    if timeout is None:
        return None
    seconds = _number("timeout", timeout)
    return None if seconds == math.inf else max(0.0, seconds)


def _options(
    job_id: str, poll_interval: float, timeout: float | None, raise_on_failure: bool, options: Any
) -> dict[str, Any]:
    if "backoff" in options:
        if poll_interval is not _DEFAULT_POLL_INTERVAL:
            raise TypeError("pass either poll_interval= or backoff=, not both")
    else:
        p = _number("poll_interval", poll_interval)
        if p == math.inf:
            raise ValueError("poll_interval=inf: pass a finite number of seconds")
        options["backoff"] = (
            _BACK_TO_BACK if p <= 0 else Backoff(initial=p, factor=1.5, max=max(30.0, p))
        )
    options.setdefault("is_retryable", is_retryable)
    return {
        "job_id": job_id,
        "timeout": _deadline(timeout),
        "raise_on_failure": raise_on_failure,
        **options,
    }


def _raise_as_ionq(error: JobWaitError, timeout: float | None) -> NoReturn:
    converted = _ionq_core.as_ionq_error(error, timeout=timeout)
    if converted is error:
        raise error
    raise converted from error.__cause__


# The httpx reading options that an ionq-core client's generated functions replace.
_READ_OPTIONS: Final = ("max_body_size", "retry_invalid_body", "wall_clock")


def _core_reader(options: dict[str, Any], single: bool) -> _ionq_core.Reader:
    """Split off the options the ionq-core fetchers take. ``timeout_floor`` has no
    effect there (the generated functions use the client's own timeout)."""
    read: dict[str, Any] = {name: options.pop(name) for name in _READ_OPTIONS if name in options}
    options.pop("timeout_floor", None)
    if not single:
        read.setdefault("max_body_size", 16 * DEFAULT_MAX_BODY_SIZE)  # as wait_for_batch
    if single and "waiter" not in options:
        options.setdefault("failure_of", _ionq_core.failure_of)
    return _ionq_core.Reader(**read)


def _cancel_callback(cancel: Any, cancel_on_timeout: bool, default: Any) -> Any:
    if cancel is not None and cancel_on_timeout:
        raise TypeError("pass either cancel= or cancel_on_timeout=True, not both")
    return default if cancel_on_timeout else cancel


def wait_for_job(
    client: httpx.Client | _HasClient,
    job_id: str | uuid.UUID,
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    timeout: float | None = 300.0,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[], object] | None = None,
    **options: Any,
) -> Any:
    """Poll the job until it is completed, failed or canceled, as ``ionq_core.polling``
    does.

    Polls at once, then after ``poll_interval`` seconds, growing x1.5 per poll up to
    ``max(30, poll_interval)``, and never past the deadline (the last poll lands on it).

    Args:
        client: An ionq-core client (``IonQClient()``, ``AuthenticatedClient``): the job
            is read with ionq-core's ``get_job.sync_detailed`` and returned as its model.
            Or an ``httpx.Client`` with the IonQ base URL and auth (:func:`client`):
            ``GET /jobs/{job_id}``, returned as a :class:`Job`.
        job_id: The job's id, a string or ``uuid.UUID``; percent-encoded into the path.
        poll_interval: First interval in seconds (default 1): ``Backoff(initial=p,
            factor=1.5, max=max(30, p))``. ``0`` or below polls back to back (each poll
            right after the previous answer), as ionq-core does. ``nan`` and ``inf`` are
            refused. Pass ``backoff=`` instead for another schedule.
        timeout: Seconds until :class:`JobTimeoutError` (default 300). ``0`` or below
            makes one GET, then raises it unless the job had finished (the error's
            ``timeout`` is the value you passed). ``None`` or ``inf`` waits until your
            own cancellation.
        raise_on_failure: Raise :class:`JobFailedError` for a failed job (default);
            when ``False`` the failed job is returned.
        cancel_on_timeout: Send ``PUT /jobs/{job_id}/status/cancel`` when the wait
            times out or is interrupted; its failure is recorded on the error
            (``cancel_error``), never replacing it.
        cancel: Your own cancel callback instead (see :func:`jobwait.adapters.sync.wait`).
        **options: Every :class:`~jobwait.JobWaiter` option (``backoff``,
            ``max_fetch_errors``, ``raise_on_cancel``, ...) and every
            :func:`~jobwait.adapters.httpx.wait_for_url` option (``on_status``, ``on_poll``,
            ``wakeup``, ``clock``, ``sleep``, ``max_body_size``, ...). ``is_retryable`` defaults
            to this module's :func:`is_retryable`. With an ionq-core client the body is
            read whole by ionq-core and checked against ``max_body_size`` afterwards, and
            ``timeout_floor`` has no effect (the client's own timeout applies).

    Returns:
        The finished job: ionq-core's model (``SingleCircuitJob``, ...) with an
        ionq-core client, else a :class:`Job`. Check ``job.status`` for ``canceled``
        (and ``failed`` with ``raise_on_failure=False``).

    Raises:
        JobFailedError: The job failed; ``failure`` is ionq-core's ``Failure`` model
            with an ionq-core client, the raw mapping with an httpx client. Also
            ``ionq_core.polling.JobFailedError``.
        JobTimeoutError: Still unfinished at the deadline; ``last_status`` says where
            it was. The job is still running unless you cancelled it. Also
            ``ionq_core.polling.JobTimeoutError``.
        JobFetchError: An HTTP status retrying cannot fix (401, 403, 404, ...), a
            body over ``max_body_size``, or ``max_fetch_errors`` failures in a row;
            ``status_code`` and ``request_id`` say which. With ionq-core installed also
            the ``ionq_core`` class for it (``NotFoundError``, ``ServerError``,
            ``APIConnectionError``, ... or ``IonQError``), with ``body`` and
            ``message``; its message starts ``Failed to fetch job {job_id}``.
        JobStatusError: A job without a usable ``status``, or a body that is not
            JSON with ``retry_invalid_body=False`` (also an ``IonQError``).
        TypeError: Both ``poll_interval`` and ``backoff``, both ``cancel`` and
            ``cancel_on_timeout``, an unknown option, a ``job_id`` that is neither a
            string nor a UUID, or an unusable ``client``.
        ValueError: ``poll_interval`` or ``timeout`` ``nan``, ``poll_interval`` ``inf``,
            an empty ``job_id``, a client without a base URL, or another invalid option.
    """
    job_id = _job_id(job_id)
    merged = _options(job_id, poll_interval, timeout, raise_on_failure, options)
    merged["cancel"] = _cancel_callback(
        cancel, cancel_on_timeout, lambda: cancel_job(client, job_id)
    )
    try:
        if _ionq_core.is_core_client(client):
            reader = _core_reader(merged, single=True)
            return _sync.wait(_ionq_core.job_fetcher(client, job_id, reader), **merged)
        http = _http(client, httpx.Client, "get_httpx_client")
        return Job(_httpx.wait_for_url(http, job_path(job_id), **merged))
    except JobWaitError as error:
        _raise_as_ionq(error, timeout)


async def async_wait_for_job(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_id: str | uuid.UUID,
    *,
    poll_interval: float = _DEFAULT_POLL_INTERVAL,
    # The job's own deadline (ionq_core.polling's signature), not a request timeout:
    # it composes with the caller's cancel scopes instead of replacing them.
    timeout: float | None = 300.0,  # noqa: ASYNC109
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = False,
    cancel: Callable[[], Awaitable[object]] | None = None,
    shared: bool | Mapping[str, Any] = True,
    **options: Any,
) -> Any:
    """Async :func:`wait_for_job`, under asyncio or trio, with an ionq-core client (read
    with ``get_job.asyncio_detailed``) or an ``httpx.AsyncClient`` (:func:`async_client`).

    Takes the same arguments, async where they do IO, plus
    :func:`~jobwait.adapters.httpx.async_wait_for_url`'s ``cancel_grace``. Cancellation
    (task cancel, cancel scopes) propagates, after ``cancel_on_timeout`` had its chance.

    Concurrent calls on one client share their requests (``shared=True``, the default),
    and sharing changes how many requests are sent, nothing else: they join one
    scheduler for that client and event loop, a :class:`~jobwait.JobFleet`. A poll of
    one job alone is the lone wait's own ``GET /jobs/{id}``; when two or more jobs are
    due within 100 ms of each other they share one batch read (``GET /jobs?ids=...``, up
    to 100 ids), at most 10 requests in flight. Each call keeps its own options, result,
    error (class, message, cause, ``polls``), ``max_fetch_errors`` (a failed request
    counts against the budget of every job it carried), deadline and request bound,
    hooks (``on_status``, ``on_poll``), ``wakeup`` and cancellation; its polls may be
    held back to share a request, never brought forward. A batch answer the API cannot
    give (404, 405, 400, 501, or another shape) switches the scheduler to single reads
    for its lifetime (a DEBUG log line says so). ``shared=False`` waits alone; a mapping
    of scheduler options (``max_batch``, ``batch_window``, ``max_polls_per_second``,
    ``max_concurrency``) shares with the calls that pass the same mapping. A call with
    its own ``waiter``, ``clock``, ``sleep`` or request options (``max_body_size``,
    ``timeout_floor``, ``retry_invalid_body``, ``wall_clock``), or for a job id another
    call on this client already waits for, waits alone.

    Raises:
        RuntimeError: Called outside asyncio and trio.
        JobFailedError: As for :func:`wait_for_job`.
        JobTimeoutError: As for :func:`wait_for_job`.
        JobFetchError: As for :func:`wait_for_job`.
        JobStatusError: As for :func:`wait_for_job`.
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    job_id = _job_id(job_id)
    if shared is not False and _shared.shareable(options):
        # The sync helper hands the options to the scheduler: this frame keeps none of
        # them while it waits (memory per waiting call is a benchmark target).
        joined = _join_shared(
            client, job_id, poll_interval, timeout, raise_on_failure, cancel_on_timeout,
            cancel, shared, options,
        )  # fmt: skip
        if joined is not _shared.ALONE:
            try:
                job = await joined
            except JobWaitError as error:
                _raise_as_ionq(error, timeout)
            if job is not _shared.ALONE:
                return Job(job) if isinstance(job, dict) else job
    merged = _options(job_id, poll_interval, timeout, raise_on_failure, dict(options))
    merged["cancel"] = _async_cancel(client, job_id, cancel, cancel_on_timeout)
    try:
        if _ionq_core.is_core_client(client):
            fetch = _ionq_core.async_job_fetcher(client, job_id, _core_reader(merged, True))
            return await _loop.wait(
                fetch, rt=current_runtime(), where="ionq.async_wait_for_job", **merged
            )
        http = _http(client, httpx.AsyncClient, "get_async_httpx_client")
        return Job(await _httpx.async_wait_for_url(http, job_path(job_id), shared=False, **merged))
    except JobWaitError as error:
        _raise_as_ionq(error, timeout)


# --- concurrent waits share requests (adapters/_runtime/shared.py) ----------------------------

_SHARED_DEFAULTS: Final = _shared.SHARED_FLEET_DEFAULTS
_BATCH_BODY: Final = 16 * DEFAULT_MAX_BODY_SIZE  # as wait_for_batch


def _job_options(merged: Mapping[str, Any], core: bool) -> dict[str, Any]:
    """The per-job waiter options of one call (its own timeout, schedule, rules)."""
    job = {k: v for k, v in merged.items() if k in JOB_OPTIONS}
    if core:
        job.setdefault("failure_of", _ionq_core.failure_of)
    return job


def _async_cancel(
    client: Any, job_id: str, cancel: Any, cancel_on_timeout: bool
) -> Callable[[], Awaitable[object]] | None:
    """The ``cancel=`` callback of one async wait (a closure only when one is needed)."""
    if not cancel_on_timeout:
        return cancel  # type: ignore[no-any-return]

    async def cancel_remote() -> None:
        await async_cancel_job(client, job_id)

    return _cancel_callback(cancel, True, cancel_remote)  # type: ignore[no-any-return]


def _join_shared(
    client: Any,
    job_id: str,
    poll_interval: float,
    timeout: float | None,
    raise_on_failure: bool,
    cancel_on_timeout: bool,
    cancel: Any,
    shared: bool | Mapping[str, Any],
    options: dict[str, Any],
) -> Any:
    """Join one async wait to its client's shared scheduler (``_shared.join``)."""
    merged = _options(job_id, poll_interval, timeout, raise_on_failure, dict(options))
    core = _ionq_core.is_core_client(client)
    fleet_options = (
        _SHARED_DEFAULTS if isinstance(shared, bool) else _shared.sharing(shared, _SHARED_DEFAULTS)
    )
    if not core:
        # Jobs nearer their deadline than one request may take are read alone, each
        # request bounded by its own job's time left, as a lone wait bounds its own.
        bound = whole_request_limit(
            _http(client, httpx.AsyncClient, "get_async_httpx_client").timeout, None
        )
        fleet_options = {**fleet_options, "request_timeout": bound}
    return _shared.join(
        client,
        job_id,
        _job_options(merged, core),
        read_batch_for=_async_read_batch,
        read_one_for=_async_read_one,
        fleet_options=fleet_options,
        is_retryable=merged["is_retryable"],
        retry_after_of=merged.get("retry_after_of", _retry_after_of),
        on_status=merged.get("on_status"),
        on_poll=merged.get("on_poll"),
        cancel=_async_cancel(client, job_id, cancel, cancel_on_timeout),
        cancel_grace=merged.get("cancel_grace", 10.0),
        wakeup=merged.get("wakeup"),
    )


def _async_read_one(client: Any) -> Callable[[str, float | None], Awaitable[Any]]:
    """The shared scheduler's single read: the lone wait's own request,
    ``GET /jobs/{id}`` (``get_job`` for an ionq-core client), bounded as the lone
    wait bounds it."""
    if _ionq_core.is_core_client(client):
        reader = _ionq_core.Reader()

        async def read_core(job_id: str, time_left: float | None) -> Fetched:
            return await _ionq_core.async_job_fetcher(client, job_id, reader)()

        return read_core
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")

    async def read(job_id: str, time_left: float | None) -> Fetched:
        answer = await arequest(http, "GET", job_path(job_id), time_left=time_left)
        return answer.read(wall_now=time.time(), job_id=job_id)

    return read


def _async_read_batch(client: Any) -> Callable[[tuple[str, ...], float | None], Awaitable[Any]]:
    """The shared scheduler's batch read: ``GET /jobs?ids=...``, through ionq-core's
    ``get_jobs.asyncio_detailed`` for an ionq-core client."""
    if _ionq_core.is_core_client(client):
        reader = _ionq_core.Reader(max_body_size=_BATCH_BODY)
        fetch_many = _ionq_core.async_jobs_fetcher(client, reader)

        async def read_core(ids: tuple[str, ...], time_left: float | None) -> Any:
            return await fetch_many(ids)

        return read_core
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")

    async def read(ids: tuple[str, ...], time_left: float | None) -> Fetched:
        answer = await arequest(
            http, "GET", batch_url(ids), max_body_size=_BATCH_BODY, time_left=time_left
        )
        return _httpx._batch(answer.read(wall_now=time.time()), _httpx.jobs_by_id, True)

    return read


def _cancel_answer(answer: Answer, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = answer.read(wall_now=0.0, retry_invalid_body=False, job_id=job_id).job
    return job


def cancel_job(
    client: httpx.Client | _HasClient, job_id: str, *, timeout: float | None = 10.0
) -> dict[str, Any]:
    """Ask IonQ to cancel a job: ``PUT /jobs/{job_id}/status/cancel``, once.

    A pending job becomes ``canceled``; a finished one is left as it is. Wait for the
    job afterwards to see its final status.

    Args:
        client: As for :func:`wait_for_job`.
        job_id: The job to cancel.
        timeout: Seconds for each phase of the request (default 10); the whole request
            is bounded too, and the answer read is capped at 1 MiB after decoding, as
            every request jobwait sends.

    Returns:
        IonQ's answer, ``{"id": ..., "status": ...}``.

    Raises:
        jobwait.http.ResponseError: A non-2xx answer (``status_code``, ``request_id``),
            or an answer over 1 MiB.
        TimeoutError: The whole request took longer than its bound.
        jobwait.JobStatusError: A 2xx answer that is not a JSON object.
        httpx.HTTPError: The request failed (connection, timeout, ...), or whatever
            an ionq-core client's transport raises instead.
        TypeError: A ``client`` of the wrong kind, or a ``job_id`` that is not a string.
        ValueError: An empty ``job_id``, or a client without a base URL.
    """
    http = _http(client, httpx.Client, "get_httpx_client")
    answer = request(http, _PROFILE.cancel_method, _cancel_path(job_id), timeout=timeout)
    return _cancel_answer(answer, job_id)


async def async_cancel_job(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_id: str,
    *,
    timeout: float | None = 10.0,  # noqa: ASYNC109 - httpx's per-phase timeout, as in cancel_job
) -> dict[str, Any]:
    """Async :func:`cancel_job` (asyncio or trio); same arguments, result and errors."""
    http = _http(client, httpx.AsyncClient, "get_async_httpx_client")
    answer = await arequest(http, _PROFILE.cancel_method, _cancel_path(job_id), timeout=timeout)
    return _cancel_answer(answer, job_id)


# --- many jobs -------------------------------------------------------------------------


def batch_url(ids: tuple[str, ...]) -> httpx.URL:
    """The batch read of these jobs, ``/jobs?ids=a&ids=b``: repeated ``ids``
    parameters, as ionq-core sends them, each id percent-encoded (the ``ionq``
    profile's ``batch_url``). Relative: the client's base URL comes first."""
    return httpx.URL(expand(_BATCH_URL, ids))


def _as_jobs(results: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """Each outcome as the single wait would give it: a :class:`Job` for a payload (an
    ionq-core client's models are already what ``get_job`` returns), errors converted."""
    out: dict[str, Any] = {}
    for job_id, outcome in results.items():
        if isinstance(outcome, JobWaitError):
            out[job_id] = _ionq_core.as_ionq_error(outcome, timeout=timeout)
        else:
            out[job_id] = Job(outcome) if isinstance(outcome, dict) else outcome
    return out


def _fleet_options(
    poll_interval: float, timeout: float | None, raise_on_failure: bool, options: Any
) -> dict[str, Any]:
    merged = _options("", poll_interval, timeout, raise_on_failure, options)
    del merged["job_id"]
    return merged


def wait_for_jobs(
    client: httpx.Client | _HasClient,
    job_ids: Iterable[str | uuid.UUID],
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
        client: As for :func:`wait_for_job`; an ionq-core client reads each batch with
            ``get_jobs.sync_detailed(ids=...)``.
        job_ids: The jobs to wait for, strings or ``uuid.UUID`` (duplicates ignored);
            the results are keyed by the string form.
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
        Every id mapped to its job (ionq-core's model with an ionq-core client, the
        very type :func:`wait_for_job` returns; else a :class:`Job`) or to its error,
        converted as :func:`wait_for_job` would raise it.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error (also an
            ``IonQError`` with ionq-core installed).
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    ids = [_job_id(job_id) for job_id in job_ids]
    merged = _fleet_options(poll_interval, timeout, raise_on_failure, options)
    merged["cancel"] = _cancel_callback(cancel, cancel_on_timeout, lambda i: cancel_job(client, i))
    try:
        if _ionq_core.is_core_client(client):
            fetch_many = _ionq_core.jobs_fetcher(client, _core_reader(merged, False))
            results = _sync.wait_all(fetch_many, ids, **merged)
        else:
            http = _http(client, httpx.Client, "get_httpx_client")
            results = _httpx.wait_for_batch(http, ids, url_for=batch_url, **merged)
    except JobWaitError as error:
        _raise_as_ionq(error, timeout)
    return _as_jobs(results, timeout)


async def async_wait_for_jobs(
    client: httpx.AsyncClient | _HasAsyncClient,
    job_ids: Iterable[str | uuid.UUID],
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
        FleetFailedError: As for :func:`wait_for_jobs`.
        TypeError: As for :func:`wait_for_job`.
        ValueError: As for :func:`wait_for_job`.
    """
    ids = [_job_id(job_id) for job_id in job_ids]
    merged = _fleet_options(poll_interval, timeout, raise_on_failure, options)

    async def cancel_remote(job_id: str) -> None:
        await async_cancel_job(client, job_id)

    merged["cancel"] = _cancel_callback(cancel, cancel_on_timeout, cancel_remote)
    try:
        if _ionq_core.is_core_client(client):
            fetch = _ionq_core.async_jobs_fetcher(client, _core_reader(merged, False))
            results = await _loop.wait_all(
                fetch, ids, rt=current_runtime(), where="ionq.async_wait_for_jobs", **merged
            )
        else:
            http = _http(client, httpx.AsyncClient, "get_async_httpx_client")
            results = await _httpx.async_wait_for_batch(http, ids, url_for=batch_url, **merged)
    except JobWaitError as error:
        _raise_as_ionq(error, timeout)
    return _as_jobs(results, timeout)
