"""The machines' diagrams, read from the tables they run on: what the docs draw.

Each machine is a table (``_waiter._TABLE``: (state, event) -> handler and the actions
it may return; ``_fleet._TABLE``: (state, input) -> handler, actions and next states),
and dispatches through it. These functions list the table's edges, so the state
diagrams in the docs (``docs/hooks.py``) are drawn from the very tables the code runs,
and a test checks the drawing against them.
"""

from __future__ import annotations

from ._fleet import _TABLE as _FLEET_TABLE
from ._fleet import FleetState
from ._waiter import _NEXT_STATE, State
from ._waiter import _TABLE as _WAITER_TABLE

__all__ = ["FleetTransition", "Transition", "fleet_transitions", "transitions"]


class Transition(tuple[State, str, str, State]):
    """One edge of the waiter's diagram: (state, event name, action name, next state)."""

    __slots__ = ()

    def __new__(cls, state: State, event: str, action: str, next_state: State) -> Transition:
        return super().__new__(cls, (state, event, action, next_state))


def transitions() -> list[Transition]:
    """Every edge of the waiter's machine, read from the table it runs on."""
    return [
        Transition(state, event.__name__, action.__name__, _NEXT_STATE[action])
        for (state, event), (_, actions) in _WAITER_TABLE.items()
        for action in actions
    ]


class FleetTransition(tuple[FleetState, str, tuple[str, ...], FleetState]):
    """One edge of the fleet's diagram: (state, input, actions it may hand out, next
    state). ``input`` is ``"add()"``, ``"next_action()"`` or an event name."""

    __slots__ = ()

    def __new__(
        cls, state: FleetState, input: str, actions: tuple[str, ...], next_state: FleetState
    ) -> FleetTransition:
        return super().__new__(cls, (state, input, actions, next_state))


def fleet_transitions() -> list[FleetTransition]:
    """Every edge of the fleet's lifecycle, read from the table it runs on."""
    return [
        FleetTransition(
            state,
            f"{key}()" if isinstance(key, str) else key.__name__,
            tuple(action.__name__ for action in actions),
            next_state,
        )
        for (state, key), (_, actions, next_states) in _FLEET_TABLE.items()
        for next_state in next_states
    ]
