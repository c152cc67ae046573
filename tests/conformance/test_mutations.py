"""The matrix can fail: waits that break one promise each are told apart from the
lone wait by the very comparison the matrix runs."""

from __future__ import annotations

import dataclasses

import pytest

from jobwait import Backoff

from ._compare import differences, reference, scenario
from ._paths import PATHS, callers_of

_LONE = [p for p in PATHS if p.name in ("asyncio-lone", "trio-lone")]


def _run(path_name: str, name: str, **change: object) -> list[str]:
    path = next(p for p in PATHS if p.name == path_name)
    (caller,) = callers_of(scenario(name), [])
    caller = dataclasses.replace(caller, **change)  # type: ignore[arg-type]
    (seen,) = path.run("httpx", [caller])
    return differences(seen, reference("httpx", name), window=path.window)


@pytest.mark.parametrize("path", [p.name for p in _LONE])
def test_a_wait_ignoring_its_own_max_fetch_errors_fails_the_cell(path: str) -> None:
    (caller,) = callers_of(scenario("max-fetch-errors-2"), [])
    options = {k: v for k, v in caller.options.items() if k != "max_fetch_errors"}
    found = _run(path, "max-fetch-errors-2", options=options)
    assert any(d.startswith("error.polls 5, lone 2") for d in found), found
    assert any(d.startswith("poll times: 5") for d in found), found


@pytest.mark.parametrize("path", [p.name for p in _LONE])
def test_a_wait_polling_early_fails_the_cell(path: str) -> None:
    (caller,) = callers_of(scenario("completes"), [])
    early = {**caller.options, "backoff": Backoff(initial=0.15, factor=2.0, max=0.8)}
    found = _run(path, "completes", options=early)
    assert any(d.startswith("poll times[1] at 0.150s, lone at 0.200s") for d in found), found


def test_a_wait_dropping_on_poll_fails_the_cell() -> None:
    found = _run("trio-lone", "hooks", hooks=False, status_hook=True)
    assert any(d.startswith("on_poll calls None") for d in found), found


def test_a_poll_late_by_more_than_the_window_fails_a_shared_cell() -> None:
    (caller,) = callers_of(scenario("completes"), [])
    late = {**caller.options, "backoff": Backoff(initial=0.35, factor=2.0, max=0.8)}
    found = _run("trio-shared", "completes", options=late)
    assert any(d.startswith("poll times[1] at 0.350s") for d in found), found
