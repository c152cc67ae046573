"""API profiles (``ApiProfile``) against hostile values and answers.

The promise (docs/apis.md; the ``ApiProfile`` docstring): a profile built with a value
out of range raises ``ValueError`` (a header scale that is not a positive finite
number: a huge integer, NaN, infinity, a boolean); every built-in profile reads any
``Retry-After`` header as a usable number of seconds or ``None``, any body as a job or
the documented ``ResponseError`` / ``JobStatusError``; and a wait configured by a
profile turns any job payload into an action, never a raw exception.
"""

from __future__ import annotations

from typing import Any

import pytest

from jobwait import (
    ApiProfile,
    Done,
    JobStatusError,
    JobWaiter,
    Observed,
    Poll,
    Raise,
    Sleep,
    Start,
    Statuses,
)
from jobwait._plumbing import ionq_predicted_seconds
from jobwait.http import ResponseError

NAMES = ApiProfile.names()
WALL = 1_700_000_000.0


@pytest.mark.parametrize(
    "scale",
    [10**400, -(10**400), float("nan"), float("inf"), 0, -1.0, True, None, "1000"],
    ids=["huge-int", "minus-huge-int", "nan", "inf", "zero", "negative", "bool", "none", "str"],
)
def test_a_retry_header_scale_out_of_range_is_a_value_error(scale: Any) -> None:
    with pytest.raises(ValueError, match="retry_after_headers"):
        ApiProfile(name="x", statuses=Statuses(), retry_after_headers=(("retry-after-ms", scale),))


HOSTILE_HINTS = [
    "9" * 5000,
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    "-3",
    "0x10",
    "\x00",
    "1" * 4301,
    "Wed, 21 Oct 99999 07:28:00 GMT",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "Fri, 31 Dec 9999 23:59:59 GMT",
    " " * 10_000,
    "2" * 100_000,
]


@pytest.mark.parametrize("name", NAMES)
def test_any_retry_after_header_is_usable_seconds_or_none(name: str) -> None:
    profile = ApiProfile.named(name)
    for header, _scale in profile.retry_after_headers:
        for value in HOSTILE_HINTS:
            seconds = profile.retry_after([(header, value)], wall_now=WALL)
            assert seconds is None or (isinstance(seconds, float) and 0 <= seconds < 1e300), (
                header,
                value[:20],
                seconds,
            )


HOSTILE_BODIES = [
    b"[" * 20_000,
    b'{"a":' * 20_000,
    b'{"status": "done", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"status": 1' + b"0" * 5000 + b"}",
    b'{"status": NaN, "done": Infinity}',
    b"\xff\xfe\x00",
    b"",
    b"null",
]


@pytest.mark.parametrize("name", NAMES)
def test_any_body_is_a_job_or_a_documented_error(name: str) -> None:
    profile = ApiProfile.named(name)
    for body in HOSTILE_BODIES:
        for status in (200, 202, 404, 503):
            try:
                fetched = profile.read_response(status, [], body, wall_now=WALL)
            except (ResponseError, JobStatusError):
                continue
            assert isinstance(fetched.job, dict), (body[:20], status)


def _deep(levels: int, key: str) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {key: value, "done": True}
    return value


HOSTILE_JOBS: list[Any] = [
    {},
    [],
    None,
    "completed",
    {"status": None},
    {"status": 10**400},
    {"status": float("nan")},
    {"status": {"type": ["COMPLETED"]}},
    {"state": {"type": 10**400}, "state_type": []},
    {"done": "yes", "error": {"code": 10**400}},
    {"run": {"info": {"status": {"nested": True}}}},
    {"status": "FAILED", "failure": _deep(100, "x"), "failureReason": 10**400, "message": []},
    {"status": "completed", "conclusion": 10**400},
    {"jobStatus": "FAILED", "statusReason": {"x": 1}, "TrainingJobStatus": 5},
    {"status": "x" * 1_000_000},
    _deep(100, "status"),
    _deep(100, "state"),
    _deep(100, "error"),
]


@pytest.mark.parametrize("name", NAMES)
def test_a_wait_with_the_profile_turns_any_job_into_an_action(name: str) -> None:
    options = ApiProfile.named(name).options(timeout=10.0)
    for job in HOSTILE_JOBS:
        waiter = JobWaiter(job_id="j1", **options)
        waiter.handle(Start(now=0.0))
        action = waiter.handle(Observed(job=job, now=0.0))
        assert isinstance(action, Poll | Sleep | Done | Raise)
        if isinstance(action, Raise):
            assert len(str(action.error)) < 2000


@pytest.mark.parametrize(
    "job",
    [
        {"predicted_wait_time_ms": 10**400},
        {"predicted_wait_time_ms": 1e308, "predicted_execution_duration_ms": 1e308},
        {"predicted_wait_time_ms": float("nan"), "predicted_execution_duration_ms": True},
        {"predicted_wait_time_ms": -5, "predicted_execution_duration_ms": "9"},
    ],
    ids=["huge-int", "sum-overflows", "nan-and-bool", "negative-and-text"],
)
def test_an_ionq_prediction_out_of_range_is_no_prediction(job: dict[str, Any]) -> None:
    # The fleet's use_predictions reads these from the API's job JSON.
    assert ionq_predicted_seconds(job) is None
