"""The references and the comparison of one caller with its lone wait."""

from __future__ import annotations

import dataclasses
import functools
import math
import re

from ._paths import Caller, Seen, callers_of, run_lone_sync
from ._scenarios import SCENARIOS, Scenario, neighbour

__all__ = ["FLEET_BUDGET", "FLEET_RULE", "differences", "reference", "scenario"]

#: The fleet APIs' documented fleet-wide rule, the one difference the matrix expects of
#: them: a retryable failed request counts against the fleet's ``max_batch_errors``
#: (default 5, consecutive failed batches, reset by any answered batch) instead of the
#: job's own ``max_fetch_errors``. For a fleet of one job that is a lone wait with
#: ``max_fetch_errors=5``, which is the fleets' reference. The shared per-job waits have
#: no such rule: their reference is the lone wait itself.
FLEET_BUDGET = 5
FLEET_RULE = (
    "fleet-wide max_batch_errors=5 instead of the job's max_fetch_errors "
    "(docs/fleet.md; JobFleet's theory of operation)"
)

#: Scheduling tolerance on virtual time: a stalled answer drips a byte per 0.01 s, so a
#: sync request is cut at most that late.
TOLERANCE = 0.02

_BY_NAME = {s.name: s for s in SCENARIOS}


def scenario(name: str) -> Scenario:
    return _BY_NAME[name]


@functools.cache
def reference(kind: str, name: str, *, fleet: bool = False) -> Seen:
    """The lone sync wait of a scenario's job (with ``fleet``: under the fleet rule)."""
    (caller,) = callers_of(scenario(name), [])
    if fleet:
        caller = _fleet_rule(caller)
    (seen,) = run_lone_sync(kind, [caller])
    if fleet and seen.outcome[0] == "error":
        # The error says which budget was spent: the fleet's.
        message = _SPENT.sub(
            r"\1 batch requests in a row failed (max_batch_errors=\2)", seen.outcome[2]
        )
        seen = dataclasses.replace(seen, outcome=(*seen.outcome[:2], message))
    return seen


_SPENT = re.compile(r"(\d+) fetches in a row failed \(max_fetch_errors=(\d+)\)")


@functools.cache
def neighbour_reference(kind: str, n: int) -> Seen:
    (caller,) = callers_of(SCENARIOS[0], [neighbour(n)])[1:]
    (seen,) = run_lone_sync(kind, [caller])
    return seen


def _fleet_rule(caller: Caller) -> Caller:
    options = {**caller.options, "max_fetch_errors": FLEET_BUDGET}
    return Caller(
        caller.job_id,
        caller.script,
        options,
        hooks=caller.hooks,
        status_hook=caller.status_hook,
        cancel_at=caller.cancel_at,
        wake_at=caller.wake_at,
        remote_cancel=caller.remote_cancel,
    )


def _times(
    what: str, got: tuple[float, ...], want: tuple[float, ...], late: float, early: float
) -> list[str]:
    if len(got) != len(want):
        return [f"{what}: {len(got)} ({_fmt(got)}), lone: {len(want)} ({_fmt(want)})"]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if not (w - early <= g <= w + late):
            allowed = f"allowed {-early:+.3f}..{late:+.3f}"
            seen = f"{_fmt(got)} vs lone {_fmt(want)}"
            return [f"{what}[{i}] at {g:.3f}s, lone at {w:.3f}s ({allowed}): {seen}"]
    return []


def _fmt(times: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{t:.3f}" for t in times) + "]"


def differences(
    got: Seen,
    want: Seen,
    *,
    window: float,
    tolerance: float = TOLERANCE,
    chain_levels: int | None = None,
) -> list[str]:
    """How ``got`` differs from its lone wait ``want``: outcome (the job, or the error's
    class and message with times masked), ``__cause__`` classes, ``polls``,
    ``last_status``, the hooks' calls, poll times (never earlier than the lone wait's,
    at most ``window`` later, both give or take ``tolerance``), when the wait ended and
    the ``cancel=`` calls. ``chain_levels``: compare only that many causes."""
    out: list[str] = []
    if got.outcome != want.outcome:
        out.append(f"outcome {got.outcome!r}, lone {want.outcome!r}")
    chain, lone_chain = got.chain, want.chain
    if chain_levels is not None:
        chain, lone_chain = chain[:chain_levels], lone_chain[:chain_levels]
    if chain != lone_chain:
        out.append(f"cause chain {list(chain)}, lone {list(lone_chain)}")
    if got.polls != want.polls:
        out.append(f"error.polls {got.polls}, lone {want.polls}")
    if got.last_status != want.last_status:
        out.append(f"error.last_status {got.last_status!r}, lone {want.last_status!r}")
    if got.statuses != want.statuses:
        out.append(f"on_status calls {got.statuses}, lone {want.statuses}")
    if got.reports != want.reports:
        out.append(f"on_poll calls {got.reports}, lone {want.reports}")
    out += _times("poll times", got.poll_times, want.poll_times, window + tolerance, tolerance)
    if not (math.isfinite(got.ended) and want.ended - tolerance <= got.ended):
        out.append(f"ended at {got.ended:.3f}s, lone at {want.ended:.3f}s")
    elif got.ended > want.ended + window + tolerance:
        out.append(f"ended at {got.ended:.3f}s, lone at {want.ended:.3f}s (late)")
    out += _times("cancel= calls", got.cancels, want.cancels, window + tolerance, tolerance)
    return out
