"""The per-poll hook ``on_poll`` (issue 13): every wait function calls it after every
poll, failed ones included, with one ``PollReport`` built by the core. Virtual time
throughout: ``VirtualClock`` for sync and asyncio, trio's ``MockClock``."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel
import trio.testing

from jobwait import (
    FetchFailed,
    JobFailedError,
    JobTimeoutError,
    JobWaiter,
    Observed,
    Phase,
    PollReport,
    Start,
    Woke,
)
from jobwait._report import poll_report
from jobwait.adapters import asyncio as jw_asyncio
from jobwait.adapters import httpx as jw_httpx
from jobwait.adapters import ionq, sync
from jobwait.adapters import trio as jw_trio
from jobwait.testing import VirtualClock

# One script for every runtime: a failed poll, two pending statuses, then completed.
# Default backoff: 1 s, x1.5 -> polls at 0, 1, 2.5, 4.75.
BOOM = ConnectionError("connection refused")
SCRIPT: list[Any] = [BOOM, {"status": "ready"}, {"status": "started"}, {"status": "completed"}]
EXPECTED = [
    (None, None, 1, 0.0, 1.0, BOOM),
    ("ready", Phase.PENDING, 2, 1.0, 1.5, None),
    ("started", Phase.PENDING, 3, 2.5, 2.25, None),
    ("completed", Phase.SUCCEEDED, 4, 4.75, None, None),
]


def _fields(report: PollReport) -> tuple[Any, ...]:
    return (
        report.status,
        report.phase,
        report.polls,
        pytest.approx(report.elapsed),
        report.next_sleep if report.next_sleep is None else pytest.approx(report.next_sleep),
        report.error,
    )


def _check(reports: list[PollReport]) -> None:
    assert [_fields(r) for r in reports] == EXPECTED
    assert {r.job_id for r in reports} == {"j1"}
    assert [r.finished for r in reports] == [False, False, False, True]


def _scripted() -> Callable[[], Any]:
    answers: Iterator[Any] = iter(SCRIPT)

    def fetch() -> Any:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return fetch


def test_the_record_is_frozen_slotted_and_keyword_only() -> None:
    report = PollReport(job_id="j1", status=None, phase=None, polls=1, elapsed=0.0, next_sleep=None)
    assert not hasattr(report, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.polls = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        PollReport("j1", None, None, 1, 0.0, None)  # type: ignore[misc]


def test_sync_wait_reports_every_poll_after_on_status() -> None:
    vc = VirtualClock()
    heard: list[Any] = []
    job = sync.wait(
        _scripted(),
        job_id="j1",
        on_status=lambda job, status: heard.append(("status", status)),
        on_poll=heard.append,
        clock=vc.now,
        sleep=vc.sleep,
    )
    assert job == {"status": "completed"}
    reports = [h for h in heard if isinstance(h, PollReport)]
    _check(reports)
    # on_status first, then on_poll, for the same poll; a failed poll has no status.
    assert [h if isinstance(h, tuple) else h.polls for h in heard] == [
        1,
        ("status", "ready"),
        2,
        ("status", "started"),
        3,
        ("status", "completed"),
        4,
    ]


def test_asyncio_wait_reports_every_poll_with_an_async_hook() -> None:
    reports: list[PollReport] = []

    async def on_poll(report: PollReport) -> None:
        await asyncio.sleep(0)
        reports.append(report)

    fetch = _scripted()

    async def afetch() -> Any:
        return fetch()

    async def main() -> None:
        vc = VirtualClock()
        await jw_asyncio.wait(afetch, job_id="j1", on_poll=on_poll, clock=vc.now, sleep=vc.asleep)

    asyncio.run(main())
    _check(reports)


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_trio_wait_reports_every_poll_on_mock_clock(hook: str) -> None:
    reports: list[PollReport] = []

    async def async_hook(report: PollReport) -> None:
        await trio.lowlevel.checkpoint()
        reports.append(report)

    fetch = _scripted()

    async def afetch() -> Any:
        return fetch()

    async def main() -> None:
        await jw_trio.wait(
            afetch, job_id="j1", on_poll=reports.append if hook == "sync" else async_hook
        )

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    _check(reports)


def _transport() -> httpx.MockTransport:
    answers = iter(SCRIPT)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"id": "j1", **answer})

    return httpx.MockTransport(handler)


def _check_http(reports: list[PollReport]) -> None:
    assert isinstance(reports[0].error, httpx.ConnectError)
    assert [_fields(r)[:5] for r in reports] == [e[:5] for e in EXPECTED]
    assert [r.error is None for r in reports] == [False, True, True, True]


def test_httpx_wait_for_url_reports_every_poll() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    with httpx.Client(base_url="http://jobs.test", transport=_transport()) as client:
        jw_httpx.wait_for_url(
            client, "/jobs/j1", job_id="j1", on_poll=reports.append, clock=vc.now, sleep=vc.sleep
        )
    _check_http(reports)


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_httpx_async_wait_for_url_reports_every_poll(runtime: str) -> None:
    reports: list[PollReport] = []
    vc = VirtualClock()
    # asyncio on a VirtualClock; trio on its own clock, mocked.
    virtual: dict[str, Any] = {"clock": vc.now, "sleep": vc.asleep} if runtime == "asyncio" else {}

    async def main() -> None:
        async with httpx.AsyncClient(base_url="http://jobs.test", transport=_transport()) as c:
            await jw_httpx.async_wait_for_url(
                c, "/jobs/j1", job_id="j1", on_poll=reports.append, **virtual
            )

    if runtime == "asyncio":
        asyncio.run(main())
    else:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    _check_http(reports)


def test_ionq_wait_for_job_reports_every_poll() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    with ionq.client("key", base_url="http://ionq.test/v0.4", transport=_transport()) as c:
        job = ionq.wait_for_job(c, "j1", on_poll=reports.append, clock=vc.now, sleep=vc.sleep)
    assert job.status == "completed"
    _check_http(reports)


def test_ionq_async_wait_for_job_reports_every_poll() -> None:
    reports: list[PollReport] = []

    async def main() -> None:
        async with ionq.async_client(
            "key", base_url="http://ionq.test/v0.4", transport=_transport()
        ) as c:
            await ionq.async_wait_for_job(c, "j1", on_poll=reports.append)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    _check_http(reports)


# --- the last poll of a wait that raises ----------------------------------------------------


def test_the_last_poll_before_a_failure_is_reported_finished() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    jobs = iter([{"status": "ready"}, {"status": "failed", "failure": {"code": "X"}}])
    with pytest.raises(JobFailedError):
        sync.wait(lambda: next(jobs), on_poll=reports.append, clock=vc.now, sleep=vc.sleep)
    assert [(r.status, r.phase, r.next_sleep) for r in reports] == [
        ("ready", Phase.PENDING, 1.0),
        ("failed", Phase.FAILED, None),
    ]


def test_a_timeout_reports_the_clamped_sleep_then_the_last_poll() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    with pytest.raises(JobTimeoutError):
        sync.wait(
            lambda: {"status": "ready"},
            timeout=2.0,
            on_poll=reports.append,
            clock=vc.now,
            sleep=vc.sleep,
        )
    assert [(r.polls, r.elapsed, r.next_sleep) for r in reports] == [
        (1, 0.0, 1.0),
        (2, 1.0, 1.0),  # clamped to the deadline
        (3, 2.0, None),
    ]


def test_a_failing_hook_propagates_unchanged() -> None:
    vc = VirtualClock()

    def on_poll(report: PollReport) -> None:
        raise RuntimeError("hook broke")

    with pytest.raises(RuntimeError, match="hook broke"):
        sync.wait(lambda: {"status": "ready"}, on_poll=on_poll, clock=vc.now, sleep=vc.sleep)


# --- the core builds it -----------------------------------------------------------------------


def test_poll_report_reads_the_waiter() -> None:
    waiter = JobWaiter(job_id="j1", timeout=10.0)
    waiter.handle(Start(now=5.0))
    waiter.handle(FetchFailed(error=BOOM, now=5.5))
    assert poll_report(waiter) == PollReport(
        job_id="j1", status=None, phase=None, polls=1, elapsed=0.5, next_sleep=1.0, error=BOOM
    )
    assert waiter.last_error is BOOM
    assert poll_report(waiter, next_sleep=3.0).next_sleep == 3.0  # a fleet's schedule
    waiter.handle(Woke(now=6.5))
    waiter.handle(Observed(job={"status": "completed"}, now=7.0))
    assert waiter.last_error is None
    assert poll_report(waiter, next_sleep=3.0) == PollReport(
        job_id="j1",
        status="completed",
        phase=Phase.SUCCEEDED,
        polls=2,
        elapsed=2.0,
        next_sleep=None,
        error=None,
    )


# --- many jobs: the fleet drivers -----------------------------------------------------------
#
# Three jobs polled together: "a" completes at t=1, "b" at t=2.5; "c" is left out of the
# first answer (a retryable failure for "c" alone), then completes at t=2.5. Batches go
# out at 0, 1 and 2.5 (default backoff, no jitter).

FLEET_IDS = ("a", "b", "c")
FLEET_EXPECTED = [
    ("a", "started", 1, 0.0, 1.0, None),
    ("b", "started", 1, 0.0, 1.0, None),
    ("c", None, 1, 0.0, 1.0, "JobMissingError"),
    ("a", "completed", 2, 1.0, None, None),
    ("b", "started", 2, 1.0, 1.5, None),
    ("c", "started", 2, 1.0, 1.5, None),
    ("b", "completed", 3, 2.5, None, None),
    ("c", "completed", 3, 2.5, None, None),
]


def _fleet_jobs(ids: tuple[str, ...], now: float) -> dict[str, Any]:
    done_at = {"a": 1.0, "b": 2.5, "c": 2.5}
    return {
        i: {"id": i, "status": "completed" if now >= done_at[i] else "started"}
        for i in ids
        if not (i == "c" and now == 0.0)
    }


def _fleet_fields(report: PollReport) -> tuple[Any, ...]:
    status, _, polls, elapsed, next_sleep, error = _fields(report)
    error_name = None if error is None else type(error).__name__
    return (report.job_id, status, polls, elapsed, next_sleep, error_name)


def _check_fleet(reports: list[PollReport], results: dict[str, Any]) -> None:
    assert [_fleet_fields(r) for r in reports] == FLEET_EXPECTED
    assert {i: job["status"] for i, job in results.items()} == dict.fromkeys(FLEET_IDS, "completed")


def test_sync_wait_all_reports_every_job_of_every_batch() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    results = sync.wait_all(
        lambda ids: _fleet_jobs(ids, vc.now()),
        FLEET_IDS,
        on_poll=reports.append,
        clock=vc.now,
        sleep=vc.sleep,
    )
    _check_fleet(reports, results)


def test_sync_wait_all_with_fetch_one_reports_each_job() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    sync.wait_all(
        None,
        ["a"],
        fetch_one=lambda i: _fleet_jobs((i,), vc.now())[i],
        on_poll=reports.append,
        clock=vc.now,
        sleep=vc.sleep,
    )
    assert [(r.job_id, r.status, r.next_sleep) for r in reports] == [
        ("a", "started", 1.0),
        ("a", "completed", None),
    ]


@pytest.mark.parametrize("rt", ["asyncio", "trio"])
@pytest.mark.parametrize("how", ["wait_all", "as_completed"])
@pytest.mark.parametrize("hook", ["sync", "async"])
def test_async_fleet_drivers_report_every_job_of_every_batch(rt: str, how: str, hook: str) -> None:
    module: Any = jw_asyncio if rt == "asyncio" else jw_trio
    reports: list[PollReport] = []
    results: dict[str, Any] = {}

    async def async_hook(report: PollReport) -> None:
        reports.append(report)

    async def main() -> None:
        if rt == "asyncio":
            vc = VirtualClock()
            virtual: dict[str, Any] = {"clock": vc.now, "sleep": vc.asleep}
            now: Callable[[], float] = vc.now
        else:
            virtual, now = {}, trio.current_time

        async def fetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
            return _fleet_jobs(ids, now())

        on_poll = reports.append if hook == "sync" else async_hook
        if how == "wait_all":
            results.update(await module.wait_all(fetch_many, FLEET_IDS, on_poll=on_poll, **virtual))
        else:
            async with module.as_completed(
                fetch_many, FLEET_IDS, on_poll=on_poll, **virtual
            ) as finished:
                async for job_id, outcome in finished:
                    results[job_id] = outcome

    if rt == "asyncio":
        asyncio.run(main())
    else:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    _check_fleet(reports, results)


def _batch_transport(now: Callable[[], float]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = tuple(request.url.params.get_list("ids"))
        return httpx.Response(200, json={"jobs": list(_fleet_jobs(ids, now()).values())})

    return httpx.MockTransport(handler)


def test_httpx_wait_for_batch_and_ionq_wait_for_jobs_report_every_job() -> None:
    for run in ("httpx", "ionq"):
        vc = VirtualClock()
        reports: list[PollReport] = []
        with httpx.Client(base_url="http://jobs.test", transport=_batch_transport(vc.now)) as c:
            virtual: dict[str, Any] = {"clock": vc.now, "sleep": vc.sleep}
            if run == "httpx":
                results = jw_httpx.wait_for_batch(
                    c, FLEET_IDS, url_for=ionq.batch_url, on_poll=reports.append, **virtual
                )
            else:
                results = ionq.wait_for_jobs(c, FLEET_IDS, on_poll=reports.append, **virtual)
        _check_fleet(reports, {i: dict(job) for i, job in results.items()})


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_httpx_async_wait_for_batch_reports_every_job(runtime: str) -> None:
    reports: list[PollReport] = []
    results: dict[str, Any] = {}
    vc = VirtualClock()

    async def main() -> None:
        now = vc.now if runtime == "asyncio" else trio.current_time
        virtual: dict[str, Any] = (
            {"clock": vc.now, "sleep": vc.asleep} if runtime == "asyncio" else {}
        )
        async with httpx.AsyncClient(
            base_url="http://jobs.test", transport=_batch_transport(now)
        ) as c:
            results.update(
                await jw_httpx.async_wait_for_batch(
                    c, FLEET_IDS, url_for=ionq.batch_url, on_poll=reports.append, **virtual
                )
            )

    if runtime == "asyncio":
        asyncio.run(main())
    else:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    _check_fleet(reports, results)


def test_a_fleet_reports_only_when_asked_and_in_order() -> None:
    from jobwait import AllDone, Finished, JobFleet, PollBatch, StatusChanged
    from jobwait._plumbing import batch_observed

    for report_polls in (False, True):
        fleet = JobFleet(report_status=True, report_polls=report_polls)
        fleet.add(["a"], now=0.0)
        action = fleet.next_action(0.0)
        assert isinstance(action, PollBatch)
        fleet.handle(batch_observed(action.ids, {"a": {"status": "completed"}}, 0.5))
        kinds = []
        while not isinstance(action, AllDone):
            action = fleet.next_action(0.5)
            kinds.append(type(action))
        expected = [StatusChanged, PollReport, Finished, AllDone]
        assert kinds == (expected if report_polls else [StatusChanged, Finished, AllDone])


def test_a_failed_batch_the_fleet_retries_is_reported_with_its_error() -> None:
    vc = VirtualClock()
    reports: list[PollReport] = []
    answers = iter([ConnectionError("reset"), {"a": {"status": "completed"}}])

    def fetch_many(ids: tuple[str, ...]) -> Any:
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    sync.wait_all(fetch_many, ["a"], on_poll=reports.append, clock=vc.now, sleep=vc.sleep)
    assert [
        (r.status, r.polls, r.next_sleep, type(r.error).__name__ if r.error else None)
        for r in reports
    ] == [(None, 1, 1.0, "ConnectionError"), ("completed", 2, None, None)]
