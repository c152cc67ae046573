"""What was wrong and what to do: the texts of first-contact mistakes, decided once.

Every driver meets the same mistakes from its callers and the same unhelpful answers
from servers, so the classification lives here, in the core, and the adapters only call
it:

- :func:`http_error_reason`: the message of an HTTP error status, with the server's own
  explanation (bounded, secrets masked, control characters removed) and, for the
  statuses a caller can fix (401, 403, 404, ...), what to check.
- :func:`unreadable_status`: why a fetch result has no readable status, naming the type
  received and the likely fix (a coroutine: use an async adapter; an
  ``httpx.Response``: call ``.json()``; a string or list: return the job, or pass
  ``status_of=``). A stray coroutine is closed so no "never awaited" warning is left.
- :func:`check_fetch`: a fetch that is not callable, or an ``async def`` fetch given to
  a sync wait, is a ``TypeError`` before the first poll.
- :func:`missing_extra`: the ``ImportError`` an adapter raises when its optional
  dependency is not installed, naming the extra to install.

Nothing here does IO or reads a clock.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from ._json import loads
from ._text import SERVER_LIMIT, mask_secrets, preview

__all__ = [
    "awaitable",
    "check_fetch",
    "http_error_reason",
    "job_fields",
    "mask_secrets",
    "missing_extra",
    "server_message",
    "status_candidates",
    "status_hint",
    "unreadable_status",
]

# Bodies larger than this are not parsed as JSON for a message: the excerpt is used.
_PARSE_LIMIT: Final = 64 * 1024
# The fields job APIs put their human explanation in, most specific first
# (IonQ: {"error", "message", "statusCode"}; RFC 9457: "detail", "title"; OAuth:
# "error_description"; FastAPI: "detail"; Google: {"error": {"message"}}).
_MESSAGE_KEYS: Final = ("message", "detail", "error_description", "error", "title", "msg")

# What to check for the HTTP statuses a caller can fix; other statuses get no hint.
_STATUS_HINTS: Final[Mapping[int, str]] = {
    400: "check the URL and its query parameters",
    401: "check the credentials (API key or Authorization header)",
    403: "check that the credentials may read this job",
    404: "check the job id and the URL",
    405: "check the URL: it does not accept GET",
    410: "the job is gone from the server",
}

_TITLE: Final = re.compile(r"(?is)<title[^>]*>(.*?)</title>")


def _clean(text: str) -> str:
    # Control characters (a hostile server's terminal escapes, newlines that would
    # forge log lines) become spaces; runs of whitespace become one.
    # Only the start is ever shown: masking a window ten times as long as what is shown
    # costs little and cannot leave part of a key in what is.
    text = "".join(c if c.isprintable() else " " for c in text[: 10 * SERVER_LIMIT])
    return preview(mask_secrets(" ".join(text.split())), SERVER_LIMIT, quote=False)


def _message_in(value: Any, depth: int = 0) -> str | None:
    if depth > 3:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, Mapping):
        for key in _MESSAGE_KEYS:
            found = _message_in(value.get(key), depth + 1)
            if found is not None:
                return found
        return _message_in(value.get("errors"), depth + 1)
    if isinstance(value, list) and value:
        return _message_in(value[0], depth + 1)
    return None


# A JSON error body cut short (an excerpt) no longer parses: its message fields are
# still read, one quoted string at a time, in the order of _MESSAGE_KEYS.
_CUT_FIELD: Final = {
    key: re.compile(rf'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"') for key in _MESSAGE_KEYS
}


def _message_in_cut_json(text: str) -> str | None:
    for pattern in _CUT_FIELD.values():
        found = pattern.search(text)
        if found is not None:
            try:
                value = json.loads(f'"{found.group(1)}"')
            except ValueError:
                continue
            if isinstance(value, str) and value.strip():
                return value
    return None


def server_message(body: bytes | str) -> str | None:
    """The server's own explanation in an error response body, ready to quote.

    A JSON body gives its first ``message``, ``detail``, ``error_description``,
    ``error``, ``title`` or ``msg`` field (nested objects and ``errors`` lists are
    searched; a body cut short, as an excerpt is, gives the first such string field
    it still holds, never its raw JSON); an HTML page gives its ``<title>``; plain
    text gives its first line.
    The result is on one line, with control characters removed, secrets masked
    (:func:`~jobwait._text.mask_secrets`) and at most 100 characters shown
    (:func:`~jobwait._text.preview`); ``None`` when the body says nothing.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None
    if text[0] in "{[":
        try:
            parsed = loads(text) if len(text) <= _PARSE_LIMIT else None
        except ValueError:  # not JSON, or nested too deep
            parsed = None
        # JSON (whole, or cut short in an excerpt) is never quoted raw: its message
        # fields are, or nothing.
        found = _message_in_cut_json(text) if parsed is None else _message_in(parsed)
        return None if found is None else _clean(found) or None
    if text[0] == "<":
        title = _TITLE.search(text[:_PARSE_LIMIT])
        return _clean(title.group(1)) or None if title else None
    first = text.splitlines()[0]
    return _clean(first) or None


def status_hint(status_code: int) -> str | None:
    """What to check for an HTTP error status a caller can fix (401: the credentials,
    404: the job id and the URL, 3xx: the redirect, ...), or ``None``."""
    hint = _STATUS_HINTS.get(status_code)
    if hint is None and 300 <= status_code < 400:
        hint = "the server redirected: use the final URL, or a client that follows redirects"
    return hint


def http_error_reason(status_code: int, *, retryable: bool, body: bytes | str = b"") -> str:
    """The message of an HTTP error response: the status, whether it is retried, what
    the server said (see :func:`server_message`) and what to check.

    Example: ``HTTP 404 (not retryable): server said "Job not found: nope"; check the
    job id and the URL``.
    """
    reason = f"HTTP {status_code}" + ("" if retryable else " (not retryable)")
    said = server_message(body)
    hint = status_hint(status_code)
    if said is not None:
        reason += f": server said {json.dumps(said, ensure_ascii=False)}"
    if hint is not None:
        reason += f"; {hint}"
    return reason


def _type_name(value: object) -> str:
    cls = type(value)
    module = cls.__module__
    return (
        cls.__qualname__ if module == "builtins" else f"{module.split('.')[0]}.{cls.__qualname__}"
    )


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _is_http_response(value: object) -> bool:
    # httpx.Response, requests.Response, aiohttp's ClientResponse: all carry a status
    # code and a json() method. Duck-typed: the core imports no HTTP library.
    return isinstance(getattr(value, "status_code", getattr(value, "status", None)), int) and (
        callable(getattr(value, "json", None))
    )


def unreadable_status(
    job: Any,
    *,
    problem: BaseException | None = None,
    default_reader: bool,
) -> str | None:
    """Why the status of ``job`` (what a fetch returned) could not be read, and the fix.

    Args:
        job: What the fetch returned. A coroutine is closed here (it will never be
            awaited), so Python leaves no "coroutine was never awaited" warning.
        problem: What the status reader raised; ``None`` when it returned a value that
            is not a string.
        default_reader: ``True`` when the waiter reads ``status`` itself (no
            ``status_of=``), so suggesting ``status_of=`` makes sense.

    Returns:
        The reason, or ``None`` when ``problem`` is ``None`` and ``job`` looks like a
        job: then the status's own error (how to map it) is the better message.
    """
    kind = _type_name(job)
    if inspect.isawaitable(job):
        close = getattr(job, "close", None)
        if inspect.iscoroutine(job) and callable(close):
            close()
        return (
            f"fetch returned {_a(kind)}, not the job: an async call was not awaited. From "
            "sync.wait, pass the async fetch to jobwait.adapters.asyncio.wait (or "
            ".trio.wait) instead; inside an async fetch, return await api.get_job(...)"
        )
    if _is_http_response(job):
        return (
            f"fetch returned an HTTP response ({kind}), not the job: return response.json() "
            "(after checking the status code), or let jobwait.adapters.httpx.wait_for_url "
            "do the request"
        )
    if job is None:
        return "fetch returned None, not the job: make the fetch return the job it read"
    if isinstance(job, str | bytes):
        fix = "; if it is the status itself, pass status_of=str" if default_reader else ""
        return f"fetch returned {_a(kind)} ({preview(job)}), not the job: return the job{fix}"
    if isinstance(job, list | tuple):
        return (
            f"fetch returned a {kind} of {len(job)} item{'s' if len(job) != 1 else ''}, not "
            "one job: return the job itself (for many jobs, use wait_all)"
        )
    if problem is None:
        return None
    detail = str(problem) or type(problem).__name__
    fields = job_fields(job) or f"a {kind}"
    if not default_reader:
        return (
            f"could not read the job's status: status_of raised {type(problem).__name__}: "
            f"{detail} ({fields})"
        )
    found = status_candidates(job)
    example = found[0] if found else "path.to.status"
    return (
        f"could not read the job's status: {detail} ({fields}); pass "
        f"status_of=jobwait.field_reader({example!r}) (or any function of the job) to read "
        "it from there, or api='auto' to let jobwait find it"
    )


_STATUS_WORDS: Final = ("status", "state", "phase", "conclusion")
_PARTS: Final = frozenset({"type", "name", "value"})
_KEYS_SHOWN: Final = 8


def status_candidates(job: Any, *, limit: int = 4) -> list[str]:
    """Dotted paths inside ``job`` (a mapping, up to four levels deep) whose last key
    names a status (it contains ``status``, ``state``, ``phase`` or ``conclusion``, or
    is the ``type``, ``name`` or ``value`` of such a key) and whose value is a string,
    shallowest first, at most ``limit``: what to suggest when the status was not found
    where it was looked for."""
    found: list[tuple[int, str]] = []

    def named(key: str) -> bool:
        return any(word in key.lower() for word in _STATUS_WORDS)

    def walk(value: Any, prefix: str, parent: str, depth: int) -> None:
        if depth > 4 or not isinstance(value, Mapping):
            return
        for key, child in value.items():
            if not isinstance(key, str):
                continue
            path = f"{prefix}{key}"
            # "state": {"type": ...} (Prefect) names its status by its parent.
            if isinstance(child, str) and (named(key) or (named(parent) and key in _PARTS)):
                found.append((depth, path))
            walk(child, f"{path}.", key, depth + 1)

    walk(job, "", "", 1)
    return [path for _, path in sorted(found, key=lambda item: item[0])[:limit]]


def job_fields(job: Any) -> str:
    """What a job holds, for a message that could not read it: ``its fields: 'id',
    'state' (12 in all); status-like fields inside: 'state.type'`` (each key once; the
    second part when :func:`status_candidates` finds any); ``""`` for a job that is
    not a mapping."""
    if not isinstance(job, Mapping):
        return ""
    if not job:
        return "it is an empty object"
    keys = [preview(key) for key in list(job)[:_KEYS_SHOWN]]
    more = f", ... ({len(job)} in all)" if len(job) > _KEYS_SHOWN else ""
    text = f"its fields: {', '.join(keys)}{more}"
    nested = [path for path in status_candidates(job) if "." in path]
    if nested:
        text += f"; status-like fields inside: {', '.join(map(repr, nested))}"
    return text


_FETCH_EXAMPLES: Final = {
    "fetch": "lambda: api.get_job(job_id)",
    "fetch_one": "lambda job_id: api.get_job(job_id)",
    "fetch_many": "lambda ids: api.get_jobs(ids)",
}


def check_fetch(fetch: object, *, where: str, sync: bool, name: str = "fetch") -> None:
    """Reject a fetch that cannot work before the first poll.

    Args:
        fetch: What the caller passed.
        where: The function it was passed to, for the message (``"sync.wait"``).
        sync: ``True`` for sync waits, which cannot await an ``async def`` fetch.
        name: The parameter's name (``fetch``, ``fetch_many``, ``fetch_one``).

    Raises:
        TypeError: ``fetch`` is not callable, or is an ``async def`` function given to
            a sync wait (the message says what to pass instead).
    """
    if not callable(fetch):
        example = _FETCH_EXAMPLES.get(name, _FETCH_EXAMPLES["fetch"])
        raise TypeError(
            f"{where}({name}=...) must be a function, got {_a(_type_name(fetch))} "
            f"({preview(fetch)}); pass a callable, for example {name}={example}"
        )
    if sync and inspect.iscoroutinefunction(fetch):
        raise TypeError(
            f"{where}({name}=...) got an async function "
            f"({getattr(fetch, '__qualname__', fetch)!s}), "
            "which a sync wait cannot await: use jobwait.adapters.asyncio.wait (or "
            "jobwait.adapters.trio.wait) from async code, or pass a plain function"
        )


def missing_extra(error: ModuleNotFoundError, *, module: str, extra: str) -> ModuleNotFoundError:
    """The error an adapter raises when its optional dependency is missing.

    Args:
        error: The ``ModuleNotFoundError`` the adapter's import raised.
        module: The adapter (``"jobwait.adapters.trio"``), for the message.
        extra: The extra that installs what is missing (``"trio"``, ``"httpx"``).

    Returns:
        A ``ModuleNotFoundError`` (an ``ImportError``) with the same ``name``, saying
        which extra to install; raise it ``from error``.
    """
    missing = error.name or "a dependency"
    return ModuleNotFoundError(
        f"{module} needs {missing!r}, which is not installed: pip install 'jobwait[{extra}]' "
        f"(from a checkout: pip install '.[{extra}]')",
        name=error.name,
    )


def awaitable(result: Any) -> Any:
    """``result`` itself if it can be awaited (what an async fetch returns).

    Async waits call this on what ``fetch()`` returned, inside the poll's ``try``, so a
    plain function given to an async wait ends the wait with a ``JobFetchError`` that
    says what to do, instead of "object dict can't be used in 'await' expression".

    Raises:
        TypeError: ``result`` is not awaitable (the fetch is a plain function).
    """
    if inspect.isawaitable(result):
        return result
    raise TypeError(
        f"the fetch returned {_a(_type_name(result))} instead of an awaitable: it is a plain "
        "function, so make it async def (or return the coroutine of your async client), "
        "or use jobwait.adapters.sync.wait"
    )
