"""The conformance matrix: every scenario through every path, compared with its lone wait.

See the package docstring (``tests/conformance/__init__.py``) for the matrix, the
rules and the one difference the fleets are allowed.
"""

from __future__ import annotations

import pytest

from ._compare import (
    FLEET_RULE,
    differences,
    neighbour_reference,
    reference,
)
from ._paths import KINDS, PATHS, Path, callers_of
from ._scenarios import NEIGHBOURS, SCENARIOS, Scenario, neighbour

_NEIGHBOURS = [neighbour(n) for n in range(NEIGHBOURS)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_lone_sync(kind: str, scenario: Scenario) -> None:
    """The reference itself: the lone sync wait gives what the scenario says (a
    returned job's status, an error class, which the IonQ adapter's ionq-core twins
    subclass, or ``interrupted``) after the scenario's number of polls."""
    seen = reference(kind, scenario.name)
    kind_of_outcome = seen.outcome[0]
    if kind_of_outcome == "job":
        assert seen.outcome[1] == scenario.expect, seen.outcome
    elif kind_of_outcome == "error":
        assert scenario.expect in seen.kinds, seen.outcome
        assert seen.polls == scenario.polls, seen
    else:
        assert kind_of_outcome == scenario.expect, seen.outcome
    assert len(seen.poll_times) == scenario.polls, seen.poll_times


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", PATHS, ids=str)
def test_matrix(path: Path, kind: str, scenario: Scenario) -> None:
    """One cell: the scenario's caller (and each neighbour) through ``path`` gives what
    its lone sync wait gives."""
    callers = callers_of(scenario, _NEIGHBOURS if path.neighbours else [])
    seen = path.run(kind, callers)
    want = reference(kind, scenario.name, fleet=path.fleet)
    problems = [f"job-1: {d}" for d in differences(seen[0], want, window=path.window)]
    for n, got in enumerate(seen[1:]):
        problems += [
            f"neighbour n{n:02d}: {d}"
            for d in differences(got, neighbour_reference(kind, n), window=path.window)
        ]
    rule = f" (expected difference of fleets: {FLEET_RULE})" if path.fleet else ""
    assert not problems, f"{path.name} differs from the lone wait{rule}:\n" + "\n".join(problems)
