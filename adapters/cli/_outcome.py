"""What ``jobwait wait`` says when a wait ends badly: one line that names what was wrong
and what to do, built from the error's type and attributes (not by rewording its text).

Every piece that came from the server (a status, a failure, a message) is masked before
it is cut to its limit (:func:`~._output.shown`), so a cut never leaves part of a key.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from jobwait import (
    JobCanceledError,
    JobFailedError,
    JobFetchError,
    JobStatusError,
    JobTimeoutError,
    JobWaitError,
    Phase,
    Statuses,
)
from jobwait._plumbing import auto_reading, job_fields, status_candidates

from ._output import Redactor, describe_failure, plural, shown

_STATUS_LIMIT: Final = 60
_FAILURE_LIMIT: Final = 200


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
    what = job_fields(job)
    if not what:
        return f" (the job is {'null' if job is None else f'a {type(job).__name__}'})"
    return f" ({shown(what, redact, _FAILURE_LIMIT)})"


def _status_line(error: JobStatusError, args: argparse.Namespace, redact: Redactor) -> str | None:
    """The line for a job whose status could not be read, in command-line words (the
    library's reason names Python keywords): what was wrong, the fields the job has
    (each once, and the status-like ones inside it) and the options that fix it."""
    job = error.last_job
    if not isinstance(job, Mapping) or error.last_status is not None:
        return None
    cause = error.__cause__
    if cause is not None:
        what = str(cause) or type(cause).__name__
    else:
        field = args.status_field or "status"
        what = f"the job's {field!r} field is not a status string"
    found = status_candidates(job)
    example = f", e.g. --status-field {found[0]}" if found else ""
    api = "" if args.api else ", or name its API with --api NAME"
    return (
        f"jobwait: error: could not read the job's status: {shown(what, redact, _FAILURE_LIMIT)}"
        f"; name the field that holds it with --status-field PATH{example}{api}"
        f"{_fields(job, redact)}"
    )


def _fix(status: str, statuses: Statuses, api: str | None) -> str:
    """The options that would make ``status`` mean the job ended, for a line."""
    if api == "auto":
        # --api auto adds listed statuses to its vocabulary.
        return f"--api auto --success {status} (or --failure / --canceled)"
    # A list replaces that part of the vocabulary: keep the statuses it had.
    kept = " ".join(f"--success {s}" for s in sorted(statuses.succeeded))
    return f"{kept} --success {status} (or the same with --failure / --canceled)".lstrip()


def _never_recognised(
    error: JobTimeoutError,
    statuses: Statuses | None,
    api: str | None,
    redact: Redactor,
) -> str:
    """For a timeout whose last status the vocabulary never listed: say so, and how to
    say what it means (a finished job in an unlisted status looks like a slow one)."""
    status = error.last_status
    if statuses is None or status is None or statuses.phase(status) is not Phase.UNKNOWN:
        return ""
    where = ""
    if api == "auto":
        found = auto_reading(error.last_job)
        where = "" if found is None else f" (read from {found})"
    named = "" if api not in (None, "auto") else ", or name its API with --api NAME"
    quoted = shown(repr(status), redact, _STATUS_LIMIT)
    return (
        f"; its last status {quoted}{where} was never recognised: if it means the job "
        f"ended, say so with {shown(_fix(status, statuses, api), redact, _FAILURE_LIMIT)}"
        f"{named}"
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
    api: str | None = None,
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
        api: The profile the wait read with (``"auto"``, a name, or ``None`` for the
            vocabulary given on the command line), for the options a line suggests.
    """
    where = context(error, redact)
    if isinstance(error, JobFailedError):
        if error.failure is None:
            return (
                "jobwait: job failed, giving no reason; if the job holds one, name its "
                f"field with --failure-field PATH{_fields(error.last_job, redact)} {where}"
            )
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
        reason = f"job did not finish within the timeout of {error.timeout:g}s"
        if error.timeout is None:  # not from a waiter's own deadline: its words stand
            reason = error.reason
        unknown = _never_recognised(error, statuses, api, redact)
        return f"jobwait: error: {reason}{failed}{unknown} {where}"
    if isinstance(error, JobStatusError):
        line = _unknown_line(error, statuses, redact) or _status_line(error, args, redact)
        if line is not None:
            return f"{line} {where}"
        return f"jobwait: error: {error.reason} {where}"
    return f"jobwait: error: {error.reason} {where}"
