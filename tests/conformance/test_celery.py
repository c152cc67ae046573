"""The matrix's Celery cells: a subset of the scenarios through the durable shard on a
real redis-server (see ``_celery.py``), compared with the lone wait under the fleets'
rule."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("celery", reason="the Celery cells need the test extra (celery)")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "durable"))

from procs import processes

from ._celery import KEY_ENV, CeleryPath
from ._compare import FLEET_RULE, differences, reference
from ._paths import KINDS, callers_of
from ._scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.durable, pytest.mark.realtime]

#: Real time: the shard's requests are timed by the worker's clock, each run goes
#: through Redis (load, compare-and-set save, re-send), and the machine may be busy.
#: The subset keeps every deadline at least 0.4 s from a poll, so a late run cannot
#: change what happens, only when.
REAL_TOLERANCE = 0.25
WINDOW = 0.1


@pytest.fixture(scope="module")
def celery_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryPath]:
    with processes(tmp_path_factory.mktemp("redis")) as procs:
        redis_server = procs.redis()
        path = CeleryPath(redis_server.url)
        try:
            path.warm_up()
            yield path
        finally:
            path.waits.store.client.close()


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.celery], ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix_celery(
    celery_path: CeleryPath, monkeypatch: pytest.MonkeyPatch, kind: str, scenario: Scenario
) -> None:
    monkeypatch.setenv(KEY_ENV, "conformance-secret-key")
    (seen,) = celery_path.run(kind, callers_of(scenario, []), window=WINDOW)
    # jobwait's own error classes and messages for either source: the httpx reference.
    want = reference("httpx", scenario.name, fleet=True)
    problems = differences(seen, want, window=WINDOW, tolerance=REAL_TOLERANCE, chain_levels=1)
    assert not problems, (
        f"celery-shard differs from the lone wait (expected differences: {FLEET_RULE}; "
        "one level of cause, rebuilt from JSON):\n" + "\n".join(problems)
    )
