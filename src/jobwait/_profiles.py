"""API profiles: what a wait needs to know about one real job API, in one object.

Theory of operation
===================

The waiter only knows a vocabulary (:class:`~jobwait.Statuses`) and two readers
(``status_of``, ``failure_of``). Every real job API also has its own habits: where
the status lives (Qiskit's ``state.status``), statuses that must be *derived*
(Google's long-running operations have none: ``done`` plus ``response`` or
``error``), where the failure's reason is, HTTP answers that mean "not there yet"
(Flower's 404 for a task it has not heard of, Azure's 202 in Location polling), its
own Retry-After headers (``retry-after-ms``), and the shape of its batch answer.

An :class:`ApiProfile` bundles all of that. It never does IO: it hands readers and
options to the waiter (:meth:`ApiProfile.options`, usable with every adapter and
fleet), and reads one HTTP answer (:meth:`ApiProfile.read_response`, which the httpx
adapter and the CLI call in place of :func:`jobwait.http.read_response`).

The built-in profiles live in ``_apis.py``, each citing the project's own source or
service definition (file and line, with the version read); ``tests/test_profiles*.py``
check them against recorded answers shaped like the real API's and, where the SDK
installs, against the SDK's own state list. ``auto`` (``_auto.py``) reads an answer
with all of them at once.

``api=`` is an option of :class:`~jobwait.JobWaiter` and :class:`~jobwait.JobFleet`
themselves; :func:`merged` is the one place a profile's options meet the explicit ones.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._http import ResponseError, parse_retry_after, read_response
from ._numbers import finite, usable_seconds
from ._options import JobOptions
from ._protocol import Fetched
from ._statuses import Statuses, default_failure_of, default_status_of
from ._text import ID_LIMIT, preview

__all__ = ["ApiProfile", "api_profile", "merged", "with_api"]

EmptyBody = Literal["error", "pending", "job"]
JobsOf = Callable[[Any], Mapping[str, Any]]

#: Profile names that name no API (zero-config, and the CLI's own vocabulary): messages
#: say "the API" for them.
_NO_API: Final = frozenset({"auto", "job"})

#: The Retry-After headers most APIs send: the standard one, in seconds or an HTTP-date.
_STANDARD_RETRY_AFTER: Final = (("retry-after", 1.0),)


# --- URL templates ----------------------------------------------------------------------

_MARKER: Final = re.compile(r"\{([^{}]*)\}")
_EXPLODED: Final = re.compile(r"[?&][A-Za-z_][A-Za-z0-9_.-]*\*")


def template_markers(template: str) -> list[str]:
    """The ``{...}`` markers of a URL template, in order.

    Raises:
        ValueError: A ``{`` or ``}`` outside a marker.
    """
    rest = _MARKER.sub("", template)
    if "{" in rest or "}" in rest:
        raise ValueError(f"unbalanced braces in the URL template {preview(template, ID_LIMIT)}")
    return _MARKER.findall(template)


def check_template(what: str, template: object, *, batch: bool) -> None:
    """Check a URL template of an API (``ApiProfile`` and ``SourceSpec`` take them):
    ``{id}`` for one job; exactly one ``{ids}`` (comma-separated path segments) or
    ``{?name*}`` / ``{&name*}`` (one ``name=id`` query parameter per id) for a batch.

    Raises:
        ValueError: A template that is not such a string (the message names ``what``).
    """
    if not isinstance(template, str) or not template or len(template) > 4096:
        raise ValueError(f"{what} must be a URL template string")
    markers = template_markers(template)
    if batch:
        ok = len(markers) == 1 and (markers[0] == "ids" or _EXPLODED.fullmatch(markers[0]))
        want = "exactly one {ids}, {?name*} or {&name*}"
    else:
        ok = bool(markers) and all(m == "id" for m in markers)
        want = "{id} (and no other marker)"
    if not ok:
        raise ValueError(f"{what} {preview(template, ID_LIMIT)} must contain {want}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiProfile:
    """Everything a wait needs to know about one job API.

    Get a built-in one with :meth:`named` (``ApiProfile.named("azure")``; see
    :meth:`names`), change one with :meth:`replace`, or build your own. Use it with
    any adapter or fleet through :meth:`options`, and with the httpx adapter and the
    CLI (``--api NAME``) directly, which also apply its HTTP rules.

    Args:
        name: A short name (``"google-lro"``), used in messages.
        statuses: The API's vocabulary, with its case rule and what an unlisted
            status does (``on_unknown``).
        status_of: Reads the raw status from a job; may derive one (default: the
            ``status`` key or attribute).
        failure_of: Reads the failure's reason from a failed job (default: the
            ``failure`` key or attribute, ``None`` when absent).
        raise_on_cancel: Whether a canceled job ends the wait with
            ``JobCanceledError`` (the API's SDK treats a cancel as a failure), or is
            returned (default).
        pending_http: HTTP statuses that mean "not there yet" or "still running"
            whatever the body (Flower's 404, Azure Location polling's 202): such an
            answer is a pending poll, retried on the schedule until the deadline and
            never counted against ``max_fetch_errors``.
        empty_body: What a 2xx answer with an empty body means: ``"error"``
            (default: not a job, retried as an unreadable body), ``"pending"`` (still
            running) or ``"job"`` (finished, and the job is ``{}``).
        retry_after_headers: ``(header, seconds per unit)`` pairs, read in order;
            the first usable one is the server's hint. Default: ``Retry-After`` in
            seconds or as an HTTP-date.
        jobs_of: Reads the API's batch answer as ``{id: job}`` (``None`` when the API
            has no batch read), for the fleet drivers' ``jobs_of=``.
        url: Where one job is read, relative to the API's base URL: a template with
            ``{id}`` (``"/jobs/{id}"``), or ``None`` when the URL is the caller's.
        batch_url: Where many jobs are read at once: ``{ids}`` (comma-separated path
            segments) or ``{?name*}`` (one ``name=id`` query parameter per id), e.g.
            ``"/jobs{?ids*}"``; ``None`` when the API has no batch read.
        cancel_url: Where a job is cancelled (with ``cancel_method``), or ``None``.
        cancel_method: The HTTP method of a cancel request (default ``"PUT"``).
        auth_scheme: The word before the key in its ``Authorization`` header
            (IonQ's ``"apiKey"``; ``""``: the key alone).
        predicted_seconds: Reads from a pending job how many seconds the API predicts
            it still needs (``None`` when it does not say): what a fleet's
            ``use_predictions`` defers a poll by.
        source: Where the vocabulary comes from (file and line, version), for docs.

    Raises:
        TypeError: If ``name`` is not a non-empty string, ``statuses`` is not a
            :class:`~jobwait.Statuses` or a reader is not callable.
        ValueError: For an ``empty_body`` other than the three values, an HTTP
            status outside 100-599 or a header scale that is not positive.
    """

    name: str
    statuses: Statuses
    status_of: Callable[[Any], Any] = default_status_of
    failure_of: Callable[[Any], Any] = default_failure_of
    raise_on_cancel: bool = False
    pending_http: frozenset[int] = frozenset()
    empty_body: EmptyBody = "error"
    retry_after_headers: tuple[tuple[str, float], ...] = _STANDARD_RETRY_AFTER
    jobs_of: JobsOf | None = None
    url: str | None = None
    batch_url: str | None = None
    cancel_url: str | None = None
    cancel_method: str = "PUT"
    auth_scheme: str = ""
    predicted_seconds: Callable[[Any], float | None] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"ApiProfile(name={self.name!r}) must be a non-empty string")
        if not isinstance(self.statuses, Statuses):
            raise TypeError(
                f"ApiProfile(statuses=...) must be a jobwait.Statuses, got {self.statuses!r}"
            )
        readers = (
            self.status_of,
            self.failure_of,
            self.jobs_of or callable,
            self.predicted_seconds or callable,
        )
        if not all(callable(r) for r in readers):
            raise TypeError(
                "ApiProfile(status_of=, failure_of=, jobs_of=, predicted_seconds=) must be "
                "callables"
            )
        for name in ("url", "batch_url", "cancel_url"):
            value = getattr(self, name)
            if value is not None:
                check_template(f"ApiProfile({name}=...)", value, batch=name == "batch_url")
        codes = frozenset(self.pending_http)
        bad = [
            c for c in codes if isinstance(c, bool) or not isinstance(c, int) or not 100 <= c <= 599
        ]
        if bad:
            raise ValueError(
                f"ApiProfile(pending_http=...) holds {bad[0]!r}, not an HTTP status 100-599"
            )
        object.__setattr__(self, "pending_http", codes)
        if self.empty_body not in ("error", "pending", "job"):
            raise ValueError(
                f"ApiProfile(empty_body={self.empty_body!r}) must be 'error', 'pending' or 'job'"
            )
        headers = []
        for header, scale in self.retry_after_headers:
            number = finite(scale)
            if number is None or number <= 0:
                raise ValueError(
                    f"ApiProfile(retry_after_headers=...) scales must be positive finite "
                    f"numbers; {header!r} has {preview(scale)}"
                )
            headers.append((str(header).lower(), number))
        object.__setattr__(self, "retry_after_headers", tuple(headers))

    # --- the built-in profiles ----------------------------------------------------

    @staticmethod
    def names() -> list[str]:
        """The names :meth:`named` knows, sorted: the built-in profiles and ``"auto"``."""
        from ._auto import PROFILES  # the profiles are built from this class

        return sorted(PROFILES)

    @staticmethod
    def named(name: str) -> ApiProfile:
        """The built-in profile called ``name`` (see :meth:`names`).

        Raises:
            ValueError: For an unknown name; the message lists the known ones.
        """
        from ._auto import PROFILES  # the profiles are built from this class

        profile = PROFILES.get(name) if isinstance(name, str) else None
        if profile is None:
            raise ValueError(
                f"no API profile named {name!r}; the built-in ones are "
                f"{', '.join(ApiProfile.names())} (or build an ApiProfile of your own)"
            )
        return profile

    def replace(self, **changes: Any) -> ApiProfile:
        """A copy with some fields changed, e.g. ``profile.replace(pending_http={404})``.

        Raises:
            TypeError, ValueError: As the constructor.
        """
        return dataclasses.replace(self, **changes)

    # --- what a wait uses ---------------------------------------------------------

    def options(self, **explicit: Any) -> JobOptions:
        """The waiter options this profile sets, for any adapter or fleet::

            sync.wait(fetch, **ApiProfile.named("google-lro").options(timeout=600))

        Returns ``statuses``, ``status_of``, ``failure_of`` and ``raise_on_cancel``
        from the profile; keywords given here are added and win over the profile's.
        The HTTP rules are not waiter options: the httpx adapter and the CLI take
        the profile itself (``api=``) to apply them.
        """
        options: dict[str, Any] = {
            "statuses": self.statuses,
            "status_of": self.status_of,
            "failure_of": self.failure_of,
            "raise_on_cancel": self.raise_on_cancel,
        }
        options.update(explicit)
        return options  # type: ignore[return-value]

    def retry_after(
        self, headers: Iterable[tuple[str, str]] | Mapping[str, str], *, wall_now: float
    ) -> float | None:
        """The server's hint in seconds from this API's Retry-After headers (the
        first usable one in ``retry_after_headers`` order), or ``None``."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        found = {name.lower(): value for name, value in items}
        for header, scale in self.retry_after_headers:
            value = found.get(header)
            if value is None:
                continue
            if scale == 1.0:
                seconds = parse_retry_after(value, wall_now=wall_now)
            else:
                number = parse_retry_after(value, wall_now=wall_now)
                # A millisecond header is a number, never an HTTP-date.
                seconds = None if number is None or not _is_number(value) else number * scale
                seconds = usable_seconds(seconds)  # a product may overflow to inf
            if seconds is not None:
                return seconds
        return None

    def read_response(
        self,
        status_code: int,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        *,
        wall_now: float,
        retry_invalid_body: bool = True,
        job_id: str | None = None,
    ) -> Fetched:
        """Read one HTTP answer to a poll with this API's rules, then
        :func:`jobwait.http.read_response`'s.

        A status in ``pending_http``, or a 2xx with an empty body when
        ``empty_body="pending"``, raises a retryable :class:`~jobwait.http.ResponseError`
        with ``pending = True``: the waiter counts it as a pending poll. A 2xx with an
        empty body is the job ``{}`` when ``empty_body="job"``. The hint comes from
        ``retry_after_headers``.

        Raises:
            ResponseError: A non-2xx status (see :func:`jobwait.http.read_response`), or
                a "not there yet" answer (``pending`` is ``True``).
            JobStatusError: A 2xx body that is not a JSON object.
        """
        hint = self.retry_after(headers, wall_now=wall_now)
        empty = 200 <= status_code < 300 and not body.strip()
        if status_code in self.pending_http or (empty and self.empty_body == "pending"):
            who = "the API" if self.name in _NO_API else self.name
            error = ResponseError(
                f"HTTP {status_code}, which {who} answers while the job is not there "
                "yet or still running",
                status_code=status_code,
                retry_after=hint,
                retryable=True,
            )
            error.pending = True  # type: ignore[attr-defined]
            raise error
        if empty and self.empty_body == "job":
            return Fetched({}, retry_after=hint)
        try:
            fetched = read_response(
                status_code,
                headers,
                body,
                wall_now=wall_now,
                retry_invalid_body=retry_invalid_body,
                job_id=job_id,
            )
        except ResponseError as exc:
            if exc.retryable:
                exc.retry_after = hint
            raise
        return Fetched(fetched.job, retry_after=hint)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def api_profile(api: ApiProfile | str | None) -> ApiProfile | None:
    """The profile an adapter's ``api=`` names: an :class:`ApiProfile`, a built-in
    profile's name, or ``None`` (no profile).

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
        TypeError: For anything else than a profile, a string or ``None``.
    """
    if api is None or isinstance(api, ApiProfile):
        return api
    if isinstance(api, str):
        return ApiProfile.named(api)
    raise TypeError(
        f"api= takes an ApiProfile or a built-in profile's name, not {type(api).__name__}"
    )


def merged(
    api: ApiProfile | str | None,
    options: Mapping[str, Any],
    *,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The per-job options ``api`` and ``options`` make together: ``base`` (a fleet's
    own options, for a job added with its own ``api``), under the profile's waiter
    options (:meth:`ApiProfile.options`), under ``options`` (explicit keywords win).
    The one merge of ``api=``: ``JobWaiter`` and ``JobFleet`` call it.

    Raises:
        ValueError, TypeError: As :func:`api_profile`.
    """
    profile = api_profile(api)
    below = dict(base or {})
    if profile is None:
        return {**below, **options}
    return {**below, **profile.options(**options)}


def with_api(api: ApiProfile | str | None, options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with ``api`` among them, for an adapter to hand to the core
    (``make_waiter``, ``make_fleet``, ``JobFleet.add``), which merges it
    (:func:`merged`). ``options`` unchanged without ``api``."""
    return options if api is None else {**options, "api": api}
