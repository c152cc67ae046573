"""Sources: how a worker reads job statuses, registered by name in every worker.

A task message carries a source *name* and job ids, never a callable, a URL with a key
or a header: each worker process builds the source itself the first time it needs it,
from a factory registered under that name (reading API keys from its own environment).
The built-in factories are descriptions (:class:`~jobwait._durable.SourceSpec`: an
:class:`~jobwait.ApiProfile` name, URL templates and where the credentials come from),
built by the engine-neutral :func:`jobwait.adapters._durable.build_source`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobwait._durable import Credential, SourceSpec
from jobwait._plumbing import ID_LIMIT, preview
from jobwait.http import DEFAULT_MAX_BODY_SIZE

from .._durable import Source, SourceFactory, build_source, ionq_spec
from ..ionq import DEFAULT_BASE_URL

__all__ = ["Source", "SourceFactory", "SpecFactory", "http_source", "ionq_source"]


@dataclass(frozen=True, slots=True)
class SpecFactory:
    """A factory that builds its source from a description: the producer reads
    ``batch`` and ``spec`` (the profile's vocabulary goes into the group's options)
    without building the source, which needs the worker's secrets.

    Attributes:
        spec: The description.
        overrides: Reader overrides and ``httpx.Client`` keywords for
            :func:`~jobwait.adapters._durable.build_source`.
    """

    spec: SourceSpec
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def batch(self) -> bool:
        return self.spec.batch

    def __call__(self) -> Source:
        return build_source(self.spec, **self.overrides)


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
    ``PUT /jobs/{id}/status/cancel``, read with the ``"ionq"``
    :class:`~jobwait.ApiProfile`.

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
    spec = ionq_spec(
        api_key_env=api_key_env,
        base_url=base_url,
        base_url_env=base_url_env,
        max_body_size=max_body_size,
    )
    return SpecFactory(spec, client_options)


def http_source(
    url: str,
    *,
    batch: bool = False,
    api: str | None = None,
    headers_env: Mapping[str, str] | None = None,
    jobs_of: Callable[[Any], Mapping[str, Any]] | None = None,
    status_of: Callable[[Any], Any] | None = None,
    failure_of: Callable[[Any], Any] | None = None,
    max_body_size: int = 16 * DEFAULT_MAX_BODY_SIZE,
    **client_options: Any,
) -> SourceFactory:
    """A factory for any HTTP JSON job API, read with httpx (bounded bodies, 429 and
    5xx retried with ``Retry-After``, as :mod:`jobwait.adapters.httpx`).

    Args:
        url: A URL template. One by one (``batch=False``): ``{id}`` is replaced by
            the percent-encoded job id, e.g. ``"https://api.example.com/jobs/{id}"``.
            Batch (``batch=True``): ``{ids}`` is replaced by the comma-separated
            encoded ids, e.g. ``"https://api.example.com/jobs?ids={ids}"``, or
            ``{?ids*}`` by one ``ids=`` parameter per id.
        batch: Whether one request reads many jobs (its answer read by ``jobs_of``).
        api: A built-in :class:`~jobwait.ApiProfile` name (``"azure"``, ...): its
            vocabulary becomes the group's, its readers and HTTP rules read every
            answer (default ``None``: jobwait's defaults).
        headers_env: Request headers whose values come from the worker's
            environment: header name -> variable name, e.g.
            ``{"Authorization": "EXAMPLE_AUTH"}``.
        jobs_of: Reads a batch answer as ``{id: job}`` (default: the profile's, else
            IonQ's ``{"jobs": [...]}`` shape).
        status_of: Reads a job's status (default: the profile's, else its ``status``
            field).
        failure_of: Reads a failed job's failure payload (default: the profile's).
        max_body_size: Largest answer read (default 16 MiB).
        **client_options: More ``httpx.Client`` keywords.

    Raises:
        ValueError: The template lacks ``{id}`` (one by one) or ``{ids}`` (batch), or
            ``api`` is not a built-in profile.
        LookupError: (when the worker builds it) a header's variable is not set.
    """
    marker = "{ids}" if batch else "{id}"
    if not isinstance(url, str) or marker not in url:
        raise ValueError(
            f"http_source(url={preview(url, ID_LIMIT)}, batch={batch}) must contain {marker}"
        )
    spec = SourceSpec(
        api=api,
        url=None if batch else url,
        batch_url=url if batch else None,
        credentials=tuple(
            Credential(header=name, env=var) for name, var in (headers_env or {}).items()
        ),
        max_body_size=max_body_size,
    )
    overrides = {
        name: value
        for name, value in (
            ("jobs_of", jobs_of),
            ("status_of", status_of),
            ("failure_of", failure_of),
        )
        if value is not None
    }
    return SpecFactory(spec, {**overrides, **client_options})
