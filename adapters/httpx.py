"""Wait for a job behind any HTTP JSON endpoint, with the caller's httpx client.

The caller owns the client (base URL, auth, TLS, proxies, transports, redirects), so
``httpx.MockTransport`` and real servers both work. Each poll is one GET; the pure
core reads the response (:func:`jobwait.http.read_response`: 2xx JSON object -> job, 429
and 5xx gateway trouble -> retry with ``Retry-After``, other statuses -> ``JobFetchError``)
and the runtime adapters (:mod:`jobwait.adapters.sync`, ``.asyncio``, ``.trio``) run the
loop. Nothing here decides anything the core could.

Example::

    with httpx.Client(base_url="https://api.example.com", headers=auth) as client:
        job = wait_for_url(client, "/jobs/abc", timeout=600)
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Unpack

from jobwait._plumbing import missing_extra

try:
    import httpx
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, module=__name__, extra="httpx") from _missing

import jobwait
from jobwait import ApiProfile, Fetched, JobStatusError, JobWaiter, PollReport, Wakeup
from jobwait._plumbing import (
    FleetOptions,
    Read,
    WaiterOptions,
    api_profile,
    make_fleet,
    make_waiter,
    retry_after_of,
    with_api,
)
from jobwait.http import DEFAULT_MAX_BODY_SIZE, read_response

from . import sync as _sync
from ._http.request import arequest, job_name, request
from ._runtime import shared as _shared
from ._runtime.loop import current_runtime as _current_runtime
from ._runtime.loop import drive, drive_fleet

__all__ = [
    "async_wait_for_batch",
    "async_wait_for_url",
    "current_runtime",
    "fetch_url",
    "is_retryable",
    "jobs_by_id",
    "wait_for_batch",
    "wait_for_url",
]

Job = dict[str, Any]
Api = ApiProfile | str | None
Reader = Callable[..., Fetched]


_api = api_profile


def _reader(api: Api) -> Reader:
    # An API profile reads its own HTTP quirks ("not there yet" statuses, its
    # Retry-After headers) before the core's rules.
    profile = _api(api)
    return read_response if profile is None else profile.read_response


def _options(api: Api, waiter: JobWaiter | None, options: Any, url: Any = None) -> Any:
    # The caller's options and profile, for the core to merge; a job named by its URL
    # (its id-like query parameter or last meaningful segment) unless the caller named it.
    if waiter is not None:
        return options
    if url is not None and "job_id" not in options:
        options = {**options, "job_id": job_name(str(url))}
    return with_api(api, options)


def is_retryable(error: BaseException) -> bool:
    """The httpx classifier: may retrying the request that raised ``error`` help?

    Transport trouble is retryable: timeouts, network errors (connect, read, write,
    resets), remote protocol errors (a truncated body, a dropped connection), proxy
    errors and undecodable bodies. Errors that retrying cannot fix are not: an
    unsupported protocol, an invalid URL, a local protocol error, too many redirects.
    Everything else falls back to :func:`jobwait.is_retryable` (which honours
    ``ResponseError.retryable``).
    """
    if isinstance(
        error,
        httpx.UnsupportedProtocol
        | httpx.LocalProtocolError
        | httpx.InvalidURL
        | httpx.TooManyRedirects,
    ):
        return False
    if isinstance(
        error,
        httpx.TimeoutException
        | httpx.NetworkError
        | httpx.RemoteProtocolError
        | httpx.ProxyError
        | httpx.DecodingError,
    ):
        return True
    return jobwait.is_retryable(error)


def fetch_url(
    client: httpx.Client,
    url: str,
    waiter: JobWaiter,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    retry_invalid_body: bool = True,
    timeout_floor: float = 1.0,
    api: Api = None,
) -> Callable[[], Fetched]:
    """A sync ``fetch`` for :func:`jobwait.adapters.sync.wait`: one bounded GET of ``url``,
    read by :func:`jobwait.http.read_response` (or by ``api``'s
    :meth:`~jobwait.ApiProfile.read_response`). Used by :func:`wait_for_url`; build your
    own loop around it when you need to."""
    read = _reader(api)

    def fetch() -> Fetched:
        answer = request(
            client,
            "GET",
            url,
            max_body_size=max_body_size,
            time_left=waiter.time_left(clock()),
            timeout_floor=timeout_floor,
            clock=clock,
        )
        return answer.read(
            reader=read,
            wall_now=wall_clock(),
            retry_invalid_body=retry_invalid_body,
            job_id=waiter.job_id,
        )

    return fetch


def wait_for_url(
    client: httpx.Client,
    url: str,
    *,
    api: Api = None,
    waiter: JobWaiter | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    retry_invalid_body: bool = True,
    timeout_floor: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], object] | None = None,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    **options: Unpack[WaiterOptions],
) -> Job:
    """GET ``url`` with ``client`` until the job it returns finishes; return its JSON.

    Args:
        client: Your ``httpx.Client``: it owns base URL, auth, TLS, proxies, transport
            and whether redirects are followed (not by default).
        url: The job's URL, absolute or relative to the client's base URL. Unless you
            pass ``job_id``, it names the job in errors and logs: its id-like query
            parameter (``run_id``, ``job_id``, ``id``, ...) or its last path segment
            that is not an operation's name (``get``, ``status``, ``info``, ...).
        api: An :class:`~jobwait.ApiProfile`, a built-in profile's name
            (``"azure"``), or ``"auto"`` to find the status and its meaning in any
            answer: its status vocabulary and readers become the waiter's options
            (options you pass win), and its HTTP rules read each answer.
        waiter: A ready :class:`~jobwait.JobWaiter`, or pass its options instead
            (``job_id``, ``timeout=300``, ``backoff``, ``statuses``, ``status_of``, ...).
        max_body_size: Largest body read, error bodies included (default 1 MiB);
            a larger one ends the wait with a non-retryable ``JobFetchError``.
        retry_invalid_body: When ``True`` (default), a 2xx body that is not a JSON
            object is a retryable failure (``JobStatusError`` as the cause); when
            ``False`` the wait raises ``JobStatusError`` at once.
        timeout_floor: Least seconds any request may take (default 1), so the final
            poll at the deadline still gets a fair answer. Each request's timeouts are
            the client's own, lowered to the time left to the deadline, not below this;
            the whole request is bounded by ``min(T, max(time_left, timeout_floor))``
            (``T``: the client's largest phase timeout), checked after each read.
        wall_clock: Unix seconds, for ``Retry-After`` HTTP-dates (default ``time.time``).
        is_retryable: Exception -> may retrying help? Default: this module's
            :func:`is_retryable` (transport trouble, 429, 5xx gateway errors).
        retry_after_of: Exception -> hint in seconds (default reads ``retry_after``).
        on_status: ``on_status(job, status)`` once per status change.
        on_poll: ``on_poll(report)`` after every poll, with a
            :class:`~jobwait.PollReport` (see :func:`jobwait.adapters.sync.wait`).
        cancel: Called once to cancel the remote job on timeout or interrupt.
        wakeup: A :class:`~jobwait.Wakeup` whose ``wake()`` makes the wait poll at once
            (see :func:`jobwait.adapters.sync.wait` and "Push and long poll").
        clock: Monotonic seconds (default ``time.monotonic``).
        sleep: Sleep function (default ``time.sleep``).
        **options: ``JobWaiter`` options, when ``waiter`` is not given.

    Returns:
        The job's JSON object, in its final status.

    Raises:
        JobFetchError: An HTTP status retrying cannot fix (with ``status_code``,
            ``request_id``, ``body_excerpt``), a body over ``max_body_size``, an
            unusable URL, or ``max_fetch_errors`` retryable failures in a row.
        JobStatusError: A body that is not a JSON object (``retry_invalid_body=False``),
            or a job whose status is missing or not a string.
        JobFailedError, JobCanceledError, JobTimeoutError: As for
            :func:`jobwait.adapters.sync.wait`.
    """
    w = make_waiter(waiter, _options(api, waiter, options, url))
    fetch = fetch_url(
        client,
        url,
        w,
        clock=clock,
        wall_clock=wall_clock,
        max_body_size=max_body_size,
        retry_invalid_body=retry_invalid_body,
        timeout_floor=timeout_floor,
        api=api,
    )
    job: Job = _sync.wait(
        fetch,
        waiter=w,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        wakeup=wakeup,
        clock=clock,
        sleep=sleep,
    )
    return job


def current_runtime() -> str:
    """``"asyncio"`` or ``"trio"``: the async library running the current task.

    Raises:
        RuntimeError: Outside of both.
    """
    return _current_runtime().name


async def async_wait_for_url(
    client: httpx.AsyncClient,
    url: str,
    *,
    api: Api = None,
    waiter: JobWaiter | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    retry_invalid_body: bool = True,
    timeout_floor: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    shared: bool | Mapping[str, Any] = True,
    **options: Unpack[WaiterOptions],
) -> Job:
    """Async :func:`wait_for_url` for an ``httpx.AsyncClient``, under asyncio or trio.

    Runs the loop :func:`jobwait.adapters.asyncio.wait` and
    :func:`jobwait.adapters.trio.wait` share, with the running library's ``Runtime``
    (its clock, sleep and cancel scopes); takes the same arguments as
    :func:`wait_for_url`, async where they do IO, plus ``cancel_grace``. Each request
    is also cancelled as a whole (not only per phase) after
    ``min(T, max(time_left, timeout_floor))`` seconds, ``T`` being the client's largest
    phase timeout (see ``docs/http.md``, "Timeouts"): with ``timeout=None`` the client's
    timeout still bounds every request. ``clock`` and ``sleep`` default to the
    runtime's own.

    Concurrent calls on one client share one scheduler (``shared=True``, the default;
    see ``docs/http.md``, "Many waits on one client"): at most ``max_concurrency``
    (default 10) of their requests are in flight together, so the pool never queues
    thousands. Sharing changes nothing else a call sees: each keeps its own options,
    result, error (class, message, cause, ``polls``), ``max_fetch_errors``, deadline and
    request bound, hooks (``on_status``, ``on_poll``), ``wakeup`` and cancellation, and
    its polls are only ever held back, never brought forward. ``shared=False`` waits
    alone; a mapping sets ``max_concurrency`` and ``max_polls_per_second`` for the calls
    passing the same mapping. A call with its own ``waiter``, ``clock`` or ``sleep``, or
    for a job (its ``job_id``, else its URL) another call on this client already waits
    for, waits alone.

    Raises:
        RuntimeError: When called outside asyncio and trio.
        JobWaitError: As for :func:`wait_for_url`.
    """
    rt = _current_runtime()
    now = clock or rt.clock
    job_options = _options(api, waiter, options, url)
    w = make_waiter(waiter, job_options)
    read = _reader(api)

    async def get(time_left: float | None) -> Fetched:
        answer = await arequest(
            client,
            "GET",
            url,
            max_body_size=max_body_size,
            time_left=time_left,
            timeout_floor=timeout_floor,
            runtime=rt,
        )
        return answer.read(
            reader=read,
            wall_now=wall_clock(),
            retry_invalid_body=retry_invalid_body,
            job_id=w.job_id,
        )

    if shared is not False and _shared.url_shareable(waiter=waiter, clock=clock, sleep=sleep):
        joined = _shared.join_url(
            client,
            url,
            shared,
            get,
            job_options,
            is_retryable=is_retryable,
            retry_after_of=retry_after_of,
            on_status=on_status,
            on_poll=on_poll,
            cancel=cancel,
            cancel_grace=cancel_grace,
            wakeup=wakeup,
        )
        if joined is not _shared.ALONE:
            return await joined  # type: ignore[no-any-return,misc]

    async def fetch() -> Fetched:
        return await get(w.time_left(now()))

    job: Job = await drive(
        w,
        fetch,
        rt=rt,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=now,
        sleep=sleep or rt.sleep,
        wakeup=wakeup,
    )
    return job


# --- many jobs: batch status reads ----------------------------------------------------

UrlFor = Callable[[tuple[str, ...]], "str | httpx.URL"]
JobsOf = Callable[[Any], Mapping[str, Any]]


def jobs_by_id(body: Any) -> dict[str, Any]:
    """Read an IonQ-style batch answer, ``{"jobs": [{"id": ..., ...}, ...]}``, as a
    mapping of id to job (the default ``jobs_of``). Any ``next`` cursor is ignored:
    keep ``max_batch`` within the API's page size.

    Raises:
        TypeError: The body is not of that shape (says what is missing).
    """
    jobs = body.get("jobs") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise TypeError("a batch answer must be an object with a 'jobs' list")
    out: dict[str, Any] = {}
    for job in jobs:
        if not isinstance(job, dict) or not isinstance(job.get("id"), str):
            raise TypeError("every entry of a batch answer's 'jobs' must have a string 'id'")
        out[job["id"]] = job
    return out


def _jobs_of(api: Api, jobs_of: JobsOf | None) -> JobsOf:
    profile = _api(api)
    if jobs_of is None and profile is not None:
        jobs_of = profile.jobs_of
    return jobs_by_id if jobs_of is None else jobs_of


def _batch(fetched: Fetched, jobs_of: JobsOf, retry_invalid_body: bool) -> Fetched:
    try:
        jobs = jobs_of(fetched.job)
    except Exception as exc:
        error = JobStatusError(f"the batch answer could not be read: {exc}")
        error.retryable = retry_invalid_body
        raise error from exc
    return Fetched(jobs, retry_after=fetched.retry_after)


def wait_for_batch(
    client: httpx.Client,
    job_ids: Iterable[str],
    *,
    url_for: UrlFor,
    api: Api = None,
    jobs_of: JobsOf | None = None,
    max_body_size: int = 16 * DEFAULT_MAX_BODY_SIZE,
    retry_invalid_body: bool = True,
    timeout_floor: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], object] | None = None,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    **options: Unpack[FleetOptions],
) -> dict[str, Any]:
    """Wait for many jobs with batch GETs: one request reads up to ``max_batch`` jobs.

    Runs :func:`jobwait.adapters.sync.wait_all` (one thread, one request at a time)
    with a fetch that GETs ``url_for(ids)`` and reads the answer with
    :func:`jobwait.http.read_response` and ``jobs_of``.

    Args:
        client: Your ``httpx.Client`` (base URL, auth, ...).
        job_ids: The ids to wait for.
        url_for: ``url_for(ids)`` -> the batch URL, e.g.
            ``lambda ids: httpx.URL("/jobs", params=[("ids", i) for i in ids])``.
        api: An :class:`~jobwait.ApiProfile` or a built-in profile's name: its
            vocabulary and readers become the jobs' options (options you pass win),
            its HTTP rules read each answer and its ``jobs_of`` the batch.
        jobs_of: Reads the parsed JSON answer as ``{id: job}`` (default: the
            profile's, else :func:`jobs_by_id`, the IonQ shape). A job missing from
            it is a retryable failure for that job alone.
        max_body_size: Largest answer read, after decompression (default 16 MiB).
        timeout_floor: Least seconds any batch request may take (default 1). Each
            request's timeouts are the client's own lowered to the time left before the
            jobs' deadline (they share one ``timeout``), and the whole request is bounded
            by ``min(T, max(time_left, timeout_floor))`` (``T``: the client's largest phase
            timeout), so no job's deadline is overshot by more than one request.
        retry_invalid_body: Whether an answer that is not JSON, or that ``jobs_of``
            cannot read, is retried (default) or ends the batch's jobs at once.
        wall_clock: Unix seconds, for ``Retry-After`` HTTP-dates.
        is_retryable: Default: this module's :func:`is_retryable`.
        retry_after_of: Exception -> hint in seconds; it holds the whole fleet.
        on_status: ``on_status(job_id, job, status)`` once per status change.
        on_poll: ``on_poll(report)`` for every job of every batch reported (a
            :class:`~jobwait.PollReport`).
        cancel: ``cancel(job_id)``, as :func:`jobwait.adapters.sync.wait_all`.
        wakeup: A :class:`~jobwait.Wakeup`, as :func:`jobwait.adapters.sync.wait_all`:
            ``wake(job_id)`` polls that job at the next free request slot.
        clock: Monotonic seconds.
        sleep: Sleep function.
        **options: :class:`~jobwait.JobFleet` options (``max_batch``, ``timeout``, ...).

    Returns:
        Every id mapped to its final job (parsed JSON) or to its ``JobWaitError``.

    Raises:
        FleetFailedError: With ``fail_fast``, at the first job error.
    """

    read, batch_of = _reader(api), _jobs_of(api, jobs_of)

    def read_batch(job: Read) -> Fetched:
        answer = request(
            client,
            "GET",
            url_for(job.ids),
            max_body_size=max_body_size,
            time_left=job.time_left,
            timeout_floor=timeout_floor,
            clock=clock,
        )
        fetched = answer.read(
            reader=read,
            wall_now=wall_clock(),
            retry_invalid_body=retry_invalid_body,
        )
        return _batch(fetched, batch_of, retry_invalid_body)

    return _sync.drive_fleet(
        read_batch,
        job_ids,
        reads="batch",
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        wakeup=wakeup,
        clock=clock,
        sleep=sleep,
        options=_options(api, None, options),
    )


async def async_wait_for_batch(
    client: httpx.AsyncClient,
    job_ids: Iterable[str],
    *,
    url_for: UrlFor,
    api: Api = None,
    jobs_of: JobsOf | None = None,
    max_body_size: int = 16 * DEFAULT_MAX_BODY_SIZE,
    retry_invalid_body: bool = True,
    timeout_floor: float = 1.0,
    wall_clock: Callable[[], float] = time.time,
    is_retryable: Callable[[BaseException], bool] = is_retryable,
    retry_after_of: Callable[[BaseException], float | None] = retry_after_of,
    on_status: Callable[[str, Any, str], object] | None = None,
    on_poll: Callable[[PollReport], object] | None = None,
    cancel: Callable[[str], Awaitable[object]] | None = None,
    cancel_grace: float = 10.0,
    wakeup: Wakeup | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    **options: Unpack[FleetOptions],
) -> dict[str, Any]:
    """Async :func:`wait_for_batch` for an ``httpx.AsyncClient``, under asyncio or trio.

    Runs the running library's fleet loop (through its ``Runtime``); up to
    ``max_concurrency`` batch requests run at once (default 10). Each is cancelled as a
    whole after ``min(T, max(time_left, timeout_floor))`` seconds, as in
    :func:`wait_for_batch`, headers included.

    Raises:
        RuntimeError: When called outside asyncio and trio.
        FleetFailedError: With ``fail_fast``, at the first job error.
    """

    read, batch_of = _reader(api), _jobs_of(api, jobs_of)
    fleet_options = _options(api, None, options)
    rt = _current_runtime()
    now = clock or rt.clock

    async def read_batch(job: Read) -> Fetched:
        answer = await arequest(
            client,
            "GET",
            url_for(job.ids),
            max_body_size=max_body_size,
            time_left=job.time_left,
            timeout_floor=timeout_floor,
            runtime=rt,
        )
        fetched = answer.read(
            reader=read,
            wall_now=wall_clock(),
            retry_invalid_body=retry_invalid_body,
        )
        return _batch(fetched, batch_of, retry_invalid_body)

    fleet = make_fleet(
        fleet_options, report_status=on_status is not None, report_polls=on_poll is not None
    )
    fleet.add(job_ids, now=now())
    return await drive_fleet(
        fleet,
        read_batch,
        reads="batch",
        rt=rt,
        is_retryable=is_retryable,
        retry_after_of=retry_after_of,
        on_status=on_status,
        on_poll=on_poll,
        cancel=cancel,
        cancel_grace=cancel_grace,
        clock=now,
        sleep=sleep or rt.sleep,
        wakeup=wakeup,
    )
