"""``api=`` (an ApiProfile or a built-in profile's name) on every sync/asyncio/trio wait.

Virtual time only: ``VirtualClock`` for sync and asyncio, trio's ``MockClock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing

from jobwait import ApiProfile, JobCanceledError, JobFailedError, JobWaiter
from jobwait.adapters import asyncio as aio
from jobwait.adapters import sync
from jobwait.adapters import trio as tri
from jobwait.testing import VirtualClock

RUNTIMES = ["sync", "asyncio", "trio"]

# azure-core compares case-insensitively; none of these is in the default vocabulary.
AZURE = [{"id": "op-1", "status": "InProgress"}, {"id": "op-1", "status": "SUCCEEDED"}]
CANCELED = [{"id": "op-1", "status": "canceled"}]


def _google() -> dict[str, Iterator[dict[str, Any]]]:
    # google-api-core's Operation shape: no status field, ``done`` then ``error``.
    return {
        "ok": iter([{"name": "ok", "done": False}, {"name": "ok", "done": True, "response": {}}]),
        "bad": iter(
            [{"name": "bad"}, {"name": "bad", "done": True, "error": {"code": 3, "message": "x"}}]
        ),
    }


def _answers(answers: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    seen = iter(answers)
    last = answers[-1]
    return lambda: next(seen, last)


def wait_one(runtime: str, answers: list[dict[str, Any]], **kwargs: Any) -> Any:
    """``wait`` on ``runtime`` over ``answers`` (the last repeats), in virtual time."""
    fetch = _answers(answers)

    async def afetch() -> Any:
        return fetch()

    if runtime == "sync":
        vc = VirtualClock()
        return sync.wait(fetch, clock=vc.now, sleep=vc.sleep, timeout=60, **kwargs)
    if runtime == "asyncio":
        vc = VirtualClock()
        return asyncio.run(aio.wait(afetch, clock=vc.now, sleep=vc.asleep, timeout=60, **kwargs))
    clock = trio.testing.MockClock(autojump_threshold=0)
    return trio.run(lambda: tri.wait(afetch, timeout=60, **kwargs), clock=clock)


def wait_many(runtime: str, api: Any, *, completed: bool = False) -> dict[str, Any]:
    """``wait_all`` (or ``as_completed``) over two google-lro operations."""
    ops = _google()

    def fetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
        return {i: next(ops[i]) for i in ids}

    async def afetch_many(ids: tuple[str, ...]) -> dict[str, Any]:
        return fetch_many(ids)

    if runtime == "sync":
        vc = VirtualClock()
        return sync.wait_all(fetch_many, ["ok", "bad"], clock=vc.now, sleep=vc.sleep, api=api)
    module: Any = aio if runtime == "asyncio" else tri

    async def main() -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if runtime == "asyncio":
            vc = VirtualClock()
            extra = {"clock": vc.now, "sleep": vc.asleep}
        if not completed:
            found: dict[str, Any] = await module.wait_all(
                afetch_many, ["ok", "bad"], api=api, **extra
            )
            return found
        if runtime == "asyncio":
            return {i: o async for i, o in aio.as_completed(afetch_many, ["ok", "bad"], api=api)}
        async with tri.as_completed(afetch_many, ["ok", "bad"], api=api) as results:
            return {i: o async for i, o in results}

    if runtime == "asyncio":
        return asyncio.run(main())
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("api", ["azure", ApiProfile.named("azure")], ids=["name", "profile"])
def test_api_vocabulary_applies_to_wait(runtime: str, api: Any) -> None:
    assert wait_one(runtime, AZURE, api=api) == AZURE[-1]


@pytest.mark.parametrize(
    ("runtime", "completed"),
    [("sync", False), ("asyncio", False), ("asyncio", True), ("trio", False), ("trio", True)],
)
def test_api_derived_status_applies_to_fleets(runtime: str, completed: bool) -> None:
    results = wait_many(runtime, "google-lro", completed=completed)
    assert results["ok"]["done"] is True
    assert isinstance(results["bad"], JobFailedError)
    assert results["bad"].failure == {"code": 3, "message": "x"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_explicit_keywords_win_over_the_profile(runtime: str) -> None:
    # azure raises on a cancel; an explicit raise_on_cancel=False returns the job.
    with pytest.raises(JobCanceledError):
        wait_one(runtime, CANCELED, api="azure")
    assert wait_one(runtime, CANCELED, api="azure", raise_on_cancel=False) == CANCELED[0]


async def _anone(*_: Any) -> Any:  # never awaited: the name is checked first
    return None


async def _trio_as_completed() -> None:
    async with tri.as_completed(_anone, ["a"], api="azur"):
        pass


@pytest.mark.parametrize(
    "call",
    [
        lambda: sync.wait(lambda: None, api="azur"),
        lambda: sync.wait_all(lambda ids: {}, ["a"], api="azur"),
        lambda: asyncio.run(aio.wait(_anone, api="azur")),
        lambda: asyncio.run(aio.wait_all(_anone, ["a"], api="azur")),
        lambda: aio.as_completed(_anone, ["a"], api="azur"),
        lambda: trio.run(lambda: tri.wait(_anone, api="azur")),
        lambda: trio.run(lambda: tri.wait_all(_anone, ["a"], api="azur")),
        lambda: trio.run(_trio_as_completed),
    ],
)
def test_unknown_profile_name_lists_the_known_ones(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match=r"no API profile named 'azur'.*azure, azure-location"):
        call()


def test_api_with_a_ready_waiter_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="waiter= or JobWaiter options"):
        sync.wait(lambda: None, waiter=JobWaiter(), api="azure")
