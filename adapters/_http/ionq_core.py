"""ionq-core interop for the IonQ adapter: its errors, its models, its endpoint functions.

ionq-core is optional. When it is installed, every error the IonQ adapter raises is
also the error ``ionq_core`` itself would have raised (a class with both parents, so
``except ionq_core.NotFoundError`` and ``except jobwait.JobFetchError`` both catch it),
and an ionq-core client is read through ionq-core's own generated endpoint functions
(``get_job`` / ``get_jobs``, their ``*_detailed`` forms, so status code, headers and
body reach jobwait's core as they would from plain httpx). When it is not installed,
the classes below have only their jobwait parent and nothing here is used.

Nothing here decides anything: the core reads every answer (:func:`jobwait.http.read_response`
for errors, ``status``/``failure`` for jobs) and this module only translates.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

import jobwait
from jobwait import Fetched, JobStatusError, JobWaitError
from jobwait._plumbing import body_too_large
from jobwait.http import DEFAULT_MAX_BODY_SIZE, parse_retry_after, read_response

try:
    import ionq_core.exceptions as _errors
    import ionq_core.polling as _polling
    from ionq_core.api.default import get_job as _get_job
    from ionq_core.api.default import get_jobs as _get_jobs
    from ionq_core.client import AuthenticatedClient as _AuthenticatedClient
    from ionq_core.client import Client as _Client
    from ionq_core.models import (
        MultiCircuitJob,
        QaoaJob,
        QuantumFunctionJob,
        SingleCircuitJob,
    )
    from ionq_core.types import Unset as _Unset
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = [
    "AVAILABLE",
    "JobFailedError",
    "JobTimeoutError",
    "Reader",
    "as_ionq_error",
    "async_job_fetcher",
    "async_jobs_fetcher",
    "is_core_client",
    "job_fetcher",
    "job_model",
    "jobs_fetcher",
]


# --- errors ---------------------------------------------------------------------------

if TYPE_CHECKING or not AVAILABLE:
    _FailedBase = jobwait.JobFailedError
    _TimeoutBase = jobwait.JobTimeoutError
else:
    # ionq-core's class first: its parents add no __init__ we call, and jobwait's
    # __init__ chains to Exception, so neither constructor runs the other's code.
    _FailedBase = type("_FailedBase", (_polling.JobFailedError, jobwait.JobFailedError), {})
    _TimeoutBase = type("_TimeoutBase", (_polling.JobTimeoutError, jobwait.JobTimeoutError), {})


def _restore(cls: type[JobWaitError] | tuple[type, type], state: dict[str, Any]) -> JobWaitError:
    kind = _dual(*cls) if isinstance(cls, tuple) else cls
    error = kind.__new__(kind)
    error.__dict__.update(state)
    Exception.__init__(error, error._message())
    return error


class JobFailedError(_FailedBase):
    """The job failed (and ``raise_on_failure`` is on): jobwait's
    :class:`~jobwait.JobFailedError` and, with ionq-core installed,
    ``ionq_core.polling.JobFailedError`` (so also ``ionq_core.IonQError``).

    Built as ionq-core builds it, ``JobFailedError(job_id, failure)``; the adapter
    fills in the wait's context (``last_status``, ``last_job``, ``polls``, ``elapsed``).

    Attributes:
        failure: ionq-core's ``Failure`` model (``.code``, ``.message``) when the job
            was read through an ionq-core client; the raw ``{"code", "message"}``
            mapping with a plain httpx client; ``None`` when the job gave none.
    """

    __module__ = "jobwait.adapters.ionq"

    def __init__(self, job_id: str, failure: object = None) -> None:
        jobwait.JobFailedError.__init__(
            self,
            f"Job {job_id} failed: {failure}",
            failure=failure,
            job_id=job_id,
            last_status="failed",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), dict(self.__dict__)))


class JobTimeoutError(_TimeoutBase):
    """The job did not finish in ``timeout`` seconds: jobwait's
    :class:`~jobwait.JobTimeoutError` and, with ionq-core installed,
    ``ionq_core.polling.JobTimeoutError``. The remote job is still running: cancel it
    (``cancel_on_timeout=True``) or wait again.

    Built as ionq-core builds it, ``JobTimeoutError(job_id, timeout, last_status)``.

    Attributes:
        timeout: The ``timeout`` you passed (``0`` or below included).
        last_status: The last status seen, e.g. ``"running"``.
    """

    __module__ = "jobwait.adapters.ionq"

    def __init__(self, job_id: str, timeout: float, last_status: str) -> None:
        jobwait.JobTimeoutError.__init__(
            self,
            f"Job {job_id} did not complete within {timeout}s (last status: {last_status})",
            timeout=timeout,
            job_id=job_id,
            last_status=last_status,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), dict(self.__dict__)))


def _dual_reduce(self: JobWaitError) -> tuple[Any, ...]:
    return (_restore, (self._bases, dict(self.__dict__)))  # type: ignore[attr-defined]


_DUALS: dict[tuple[type, type], type[JobWaitError]] = {}


def _dual(jobwait_class: type, ionq_class: type) -> type[JobWaitError]:
    """The class that is both ``jobwait_class`` and ionq-core's ``ionq_class`` (one per
    pair, so ``type(a) is type(b)`` for two errors of the same kind)."""
    known = _DUALS.get((jobwait_class, ionq_class))
    if known is not None:
        return known
    name = jobwait_class.__name__ if ionq_class is _errors.IonQError else ionq_class.__name__
    kind: type[JobWaitError] = type(
        name,
        (ionq_class, jobwait_class),
        {
            "__module__": "jobwait.adapters.ionq",
            "__init__": getattr(jobwait_class, "__init__"),  # noqa: B009 - mypy: unsound otherwise
            "__reduce__": _dual_reduce,
            "_bases": (jobwait_class, ionq_class),
            "__doc__": f"jobwait's {jobwait_class.__name__} and ionq-core's {ionq_class.__name__}.",
        },
    )
    _DUALS[jobwait_class, ionq_class] = kind
    return kind


def _adopt(kind: type[JobWaitError], error: JobWaitError, reason: str) -> JobWaitError:
    new = kind.__new__(kind)
    new.__dict__.update(error.__dict__)
    new.reason = reason
    Exception.__init__(new, new._message())
    new.__cause__ = error.__cause__
    new.__traceback__ = error.__traceback__
    return new


def _api_class(error: jobwait.JobFetchError) -> type:
    """The ionq-core class for a fetch that failed: the cause's own when ionq-core's
    transport raised it, else what ``ionq_core.exceptions.raise_for_status`` raises for
    the status, else the connection error class for transport trouble."""
    cause = error.__cause__
    if isinstance(cause, _errors.IonQError):
        return type(cause)
    if error.status_code is not None:
        try:
            _errors.raise_for_status(error.status_code)
        except _errors.APIError as raised:
            return type(raised)
    if isinstance(cause, httpx.TimeoutException | TimeoutError):
        return _errors.APITimeoutError
    if isinstance(cause, httpx.TransportError | OSError):
        return _errors.APIConnectionError
    return _errors.IonQError


def _api_fields(new: Any, error: jobwait.JobFetchError) -> None:
    """``body``, ``message`` and ``retry_after`` as ionq-core's APIError has them."""
    cause = error.__cause__
    if isinstance(cause, _errors.APIError):
        new.body, new.message = cause.body, cause.message
        new.retry_after = getattr(cause, "retry_after", None)
        return
    body: Any = error.body_excerpt
    with contextlib.suppress(ValueError):
        body = json.loads(body) if body else None
    message = (body.get("message") or body.get("error")) if isinstance(body, dict) else None
    new.body = body
    new.message = message or f"HTTP {error.status_code}"
    new.retry_after = getattr(cause, "retry_after", None)


def as_ionq_error(error: JobWaitError, *, timeout: float | None) -> JobWaitError:
    """``error`` as the IonQ adapter raises it: the same context, and with ionq-core
    installed also the ionq-core error class ``ionq_core.polling`` or ionq-core's
    transport would have raised. ``timeout`` is the caller's own value, kept on
    ``JobTimeoutError.timeout``. Already converted errors are returned unchanged."""
    if isinstance(error, JobFailedError | JobTimeoutError) or (
        AVAILABLE and isinstance(error, _errors.IonQError)
    ):
        return error
    job_id = error.job_id
    if isinstance(error, jobwait.JobFailedError):
        new = _adopt(JobFailedError, error, f"Job {job_id} failed: {error.failure}")
    elif isinstance(error, jobwait.JobTimeoutError):
        reason = (
            f"Job {job_id} did not complete within {timeout}s (last status: {error.last_status})"
        )
        new = _adopt(JobTimeoutError, error, reason)
        new.timeout = timeout  # type: ignore[attr-defined]
    elif not AVAILABLE:
        return error
    elif isinstance(error, jobwait.JobFetchError):
        new = _adopt(
            _dual(type(error), _api_class(error)),
            error,
            f"Failed to fetch job {job_id}: {error.reason}",
        )
        _api_fields(new, error)
    else:
        new = _adopt(_dual(type(error), _errors.IonQError), error, error.reason)
    if isinstance(new, jobwait.FleetFailedError):  # results are FleetFailedError's own
        new.results = convert_results(new.results, timeout=timeout)
    return new


def convert_results(results: Mapping[str, Any], *, timeout: float | None) -> dict[str, Any]:
    """A fleet's results with every error as :func:`as_ionq_error` makes it."""
    return {
        job_id: as_ionq_error(outcome, timeout=timeout)
        if isinstance(outcome, JobWaitError)
        else outcome
        for job_id, outcome in results.items()
    }


# --- ionq-core clients -------------------------------------------------------------------


def is_core_client(client: object) -> bool:
    """Whether ``client`` is ionq-core's ``Client`` / ``AuthenticatedClient`` (what
    ``IonQClient()`` returns)."""
    return AVAILABLE and isinstance(client, _Client | _AuthenticatedClient)


def _unset_to_none(value: Any) -> Any:
    return None if AVAILABLE and isinstance(value, _Unset) else value


def failure_of(job: Any) -> Any:
    """The failure of an ionq-core job model, as ``ionq_core.polling`` gives it: the
    ``Failure`` model, or ``None`` when unset."""
    return _unset_to_none(getattr(job, "failure", None))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reader:
    """How the fetchers read a ``*_detailed`` response: the httpx adapter's reading
    options, applied after ionq-core's generated function has read the body whole."""

    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    retry_invalid_body: bool = True
    wall_clock: Callable[[], float] = time.time

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Around a generated call: its parser's exceptions on a body it cannot read
        become a ``JobStatusError``, retryable as ``retry_invalid_body`` says."""
        try:
            yield
        except _PARSE_ERRORS as exc:
            error = JobStatusError(
                f"ionq-core could not read the answer as a job: {type(exc).__name__}: {exc}"
            )
            error.retryable = self.retry_invalid_body
            raise error from exc

    def one(self, response: Any, job_id: str | None) -> Fetched:
        """The parsed model of a ``*_detailed`` response, or the error the core
        classifies: a ``ResponseError`` for an error status (via
        :func:`jobwait.http.read_response`, so ``Retry-After``, ``x-request-id`` and the body
        excerpt are kept) or an oversized body; a ``JobStatusError`` for a 2xx answer
        ionq-core did not parse."""
        status = int(response.status_code)
        content: bytes = response.content
        wall_now = self.wall_clock()
        if len(content) > self.max_body_size:
            raise body_too_large(
                status, self.max_body_size, request_id=response.headers.get("x-request-id")
            )
        if not 200 <= status < 300 or response.parsed is None:
            # Error statuses raise here; a 2xx ionq-core did not parse is read as jobwait
            # reads any body, so the error says what the body was.
            read_response(
                status,
                response.headers.items(),
                content,
                wall_now=wall_now,
                retry_invalid_body=self.retry_invalid_body,
                job_id=job_id,
            )
            error = JobStatusError(f"ionq-core did not read the HTTP {status} answer as a job")
            error.retryable = self.retry_invalid_body
            raise error
        hint = parse_retry_after(response.headers.get("retry-after"), wall_now=wall_now)
        return Fetched(response.parsed, retry_after=hint)

    def many(self, response: Any) -> Fetched:
        """``{id: model}`` from a batch answer: each entry as the model ``get_job``
        returns for it, read from the raw entry (``BaseJob`` drops keys such as
        ``child_job_ids`` that the per-type models require)."""
        fetched = self.one(response, None)
        parsed = {job.id: job for job in fetched.job.jobs}
        with self.parsing():
            raw = json.loads(response.content).get("jobs", ())
        jobs = {
            entry["id"]: job_model(entry, parsed[entry["id"]])
            for entry in raw
            if isinstance(entry, dict) and entry.get("id") in parsed
        }
        return Fetched(jobs, retry_after=fetched.retry_after)


_PARSE_ERRORS = (TypeError, ValueError, KeyError, AttributeError)


def job_fetcher(client: Any, job_id: str, reader: Reader) -> Callable[[], Fetched]:
    """A sync fetch for ``jobwait.adapters.sync.wait``: one ``get_job.sync_detailed``."""

    def fetch() -> Fetched:
        with reader.parsing():
            response = _get_job.sync_detailed(uuid=job_id, client=client)
        return reader.one(response, job_id)

    return fetch


def async_job_fetcher(client: Any, job_id: str, reader: Reader) -> Callable[[], Awaitable[Fetched]]:
    """The async :func:`job_fetcher`: one ``get_job.asyncio_detailed``."""

    async def fetch() -> Fetched:
        with reader.parsing():
            response = await _get_job.asyncio_detailed(uuid=job_id, client=client)
        return reader.one(response, job_id)

    return fetch


def jobs_fetcher(client: Any, reader: Reader) -> Callable[[tuple[str, ...]], Fetched]:
    """A batch fetch for a fleet: one ``get_jobs.sync_detailed(ids=...)``."""

    def fetch_many(ids: tuple[str, ...]) -> Fetched:
        with reader.parsing():
            response = _get_jobs.sync_detailed(client=client, ids=list(ids))
        return reader.many(response)

    return fetch_many


def async_jobs_fetcher(
    client: Any, reader: Reader
) -> Callable[[tuple[str, ...]], Awaitable[Fetched]]:
    """The async :func:`jobs_fetcher`: one ``get_jobs.asyncio_detailed(ids=...)``."""

    async def fetch_many(ids: tuple[str, ...]) -> Fetched:
        with reader.parsing():
            response = await _get_jobs.asyncio_detailed(client=client, ids=list(ids))
        return reader.many(response)

    return fetch_many


def job_model(data: Mapping[str, Any], fallback: Any) -> Any:
    """A batch entry as the model ``get_job`` (and so ``ionq_core.polling``) returns
    for it: ``SingleCircuitJob``, ``MultiCircuitJob``, ``QaoaJob`` or
    ``QuantumFunctionJob``, tried in ``get_job``'s order. An entry none of them reads
    stays ``fallback``, the ``BaseJob`` ionq-core's batch endpoint gave."""
    for model in (SingleCircuitJob, MultiCircuitJob, QaoaJob, QuantumFunctionJob):
        try:
            return model.from_dict(data)
        except _PARSE_ERRORS:
            continue
    return fallback
