"""What ``jobwait wait`` says when a wait ends badly: one line that names what was wrong
and what to do, built from the error's type and attributes (not by rewording its text).

Every piece that came from the server (a status, a failure, a message) is masked before
it is cut to its limit (:func:`~._output.shown`), so a cut never leaves part of a key.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from jobwait import (
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaitError,
    Phase,
    Statuses,
    field_reader,
)

from ._output import Redactor, describe_failure, plural, shown

_STATUS_LIMIT: Final = 60
_FAILURE_LIMIT: Final = 200
_KEYS_SHOWN: Final = 8


def context(error: JobWaitError, redact: Redactor) -> str:
    """``(job 'abc', last status 'x', 3 polls, 1.250s elapsed)``; ``no status read`` when
    none was; no job part when the URL names no job."""
    if error.last_status is None:
        status = "no status read"
    else:
        status = f"last status {shown(repr(error.last_status), redact, _STATUS_LIMIT)}"
    job = "" if error.job_id is None else f"job {shown(repr(error.job_id), redact, 60)}, "
    return f"({job}{status}, {plural(error.polls, 'poll')}, {error.elapsed:.3f}s elapsed)"


def failure_text(failure: object) -> str:
    """The failure as JSON (as the server sent it); ``repr`` if it is not JSON-able."""
    try:
        return json.dumps(failure, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(failure)


_LIBRARY_SETTING: Final = re.compile(r"\bmax_body_size=(\d+)")


def _describe(error: BaseException) -> str:
    # A body that is not a job: the library's own description says what it was.
    text = error.reason if isinstance(error, JobStatusError) else describe_failure(error)
    # Name the flag that changes a setting, not the library's keyword.
    return _LIBRARY_SETTING.sub(r"--max-body-size \1", text)


def _auth_hint(status_code: int, header_names: Sequence[str]) -> str:
    if not header_names:
        return (
            "; the server wants credentials and none were sent: pass "
            "them with --header-env NAME=ENVVAR (e.g. --header-env Authorization=API_AUTH) "
            "or --header 'NAME: VALUE'"
        )
    names = ", ".join(dict.fromkeys(header_names))
    what = "did not accept" if status_code == 401 else "does not allow this request with"
    return (
        f"; the server {what} the credentials sent ({names}): check "
        "the value given with --header or --header-env"
    )


def _fetch_line(
    error: JobFetchError,
    args: argparse.Namespace,
    header_names: Sequence[str],
    classify: Callable[[BaseException], bool],
    redact: Redactor,
) -> str:
    cause = error.__cause__
    if cause is None:
        return f"jobwait: error: {error.reason}"
    last = shown(_describe(cause), redact, _FAILURE_LIMIT)
    if classify(cause):
        # Only a retryable failure lets the wait go on, so ending on one means the
        # budget of failed polls in a row was spent.
        count = args.max_fetch_errors
        line = (
            f"jobwait: error: {plural(count, 'poll')} in a row failed "
            f"(--max-fetch-errors {count}); the last: {last}"
        )
    else:
        line = f"jobwait: error: fetching the job failed and retrying cannot fix it: {last}"
    status_code = getattr(error, "status_code", None)
    if status_code in (401, 403):
        line += _auth_hint(status_code, header_names)
    elif isinstance(status_code, int) and 300 <= status_code < 400 and not args.follow_redirects:
        line += " (the server redirected; pass --follow-redirects to follow it)"
    return line


def _fields(job: object, redact: Redactor) -> str:
    if not isinstance(job, dict):
        return f" (the job is a {type(job).__name__}, not an object)"
    if not job:
        return " (the job is an empty object)"
    keys = [shown(repr(key), redact, 30) for key in list(job)[:_KEYS_SHOWN]]
    more = f", ... ({len(job)} in all)" if len(job) > _KEYS_SHOWN else ""
    return f" (the job's fields: {', '.join(keys)}{more})"


def _status_hint(error: JobStatusError, args: argparse.Namespace, redact: Redactor) -> str:
    """A pointer at ``--status-field`` when the job was read but its status was not."""
    job = error.last_job
    # With --api and no --status-field, the profile reads the status (and says why not).
    field = args.status_field or (None if args.api else "status")
    if job is None or field is None:
        return ""
    try:
        value: Any = field_reader(field)(job)
    except Exception:  # noqa: BLE001 - whatever the reader met, the field is the question
        value = None
    if isinstance(value, str):
        return ""
    return (
        f"; the status is read from the field {field!r}: name the field that "
        f"holds it with --status-field PATH, e.g. --status-field state.phase{_fields(job, redact)}"
    )


def _unknown_line(error: JobStatusError, statuses: Statuses | None, redact: Redactor) -> str | None:
    """Strict mode's line in command-line words (the library's names Python keywords)."""
    status = error.last_status
    if statuses is None or status is None or statuses.on_unknown != "raise":
        return None
    if statuses.phase(status) is not Phase.UNKNOWN:
        return None
    case = "" if statuses.case_sensitive else ", compared case-insensitively"
    return (
        f"jobwait: error: unknown status {shown(repr(status), redact, _STATUS_LIMIT)} "
        f"(known{case}: {shown(statuses.known(), redact, _FAILURE_LIMIT)}); list it with "
        "--pending, --success, --failure or --canceled"
        + ("" if not statuses.case_sensitive else " (or pass --case-insensitive)")
        + ", or keep waiting on unlisted statuses with --on-unknown wait"
    )


def outcome_line(
    error: JobWaitError,
    args: argparse.Namespace,
    *,
    header_names: Sequence[str],
    classify: Callable[[BaseException], bool],
    last_failure: BaseException | None,
    redact: Redactor,
    statuses: Statuses | None = None,
) -> str:
    """The final line for a wait that ended with ``error``.

    Args:
        error: What the wait raised.
        args: The parsed ``wait`` options (for the hints).
        header_names: The names of the headers sent (never their values).
        classify: The retry classifier the wait used.
        last_failure: The error of the latest poll, if that poll failed.
        redact: Masks the secrets.
        statuses: The vocabulary the wait used (for strict mode's line).
    """
    where = context(error, redact)
    if isinstance(error, JobFailedError):
        failure = shown(failure_text(error.failure), redact, _FAILURE_LIMIT)
        return f"jobwait: job failed: {failure} {where}"
    if isinstance(error, JobCanceledError):
        return f"jobwait: job was canceled {where}"
    if isinstance(error, JobFetchError):
        return f"{_fetch_line(error, args, header_names, classify, redact)} {where}"
    if isinstance(error, JobTimeoutError):
        cause = error.__cause__ or last_failure
        failed = ""
        if cause is not None:
            last = shown(_describe(cause), redact, _FAILURE_LIMIT)
            failed = f"; the last poll failed: {last}"
        return f"jobwait: error: {error.reason}{failed} {where}"
    if isinstance(error, JobStatusError):
        unknown = _unknown_line(error, statuses, redact)
        if unknown is not None:
            return f"{unknown} {where}"
        return f"jobwait: error: {error.reason}{_status_hint(error, args, redact)} {where}"
    return f"jobwait: error: {error.reason} {where}"
