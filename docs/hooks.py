"""MkDocs hooks: fill the pages' generated sections from the code itself.

A page asks for a generated section with an HTML comment on a line of its own:

- ``<!-- jobwait:state-diagram -->``: the waiter's state diagram (Mermaid), drawn from
  :func:`jobwait._plumbing.transitions`, the table ``JobWaiter.handle`` dispatches through.
- ``<!-- jobwait:transition-table -->``: the same edges as a Markdown table.
- ``<!-- jobwait:job-options -->``: every per-job option, its default and meaning,
  from ``JobOptions`` / ``JOB_DEFAULTS`` (their one definition) and ``JobWaiter``'s
  docstring.
- ``<!-- jobwait:fleet-diagram -->`` / ``<!-- jobwait:fleet-table -->``: the same for
  the fleet's lifecycle, drawn from ``fleet_transitions()``, the table
  ``JobFleet.add`` / ``next_action`` / ``handle`` dispatch through.
- ``<!-- jobwait:default-schedule -->``: the default poll schedule, computed by running
  :func:`jobwait.testing.simulate` on a job that never finishes.

It also strips the ``no-run`` flag from ``python no-run`` fences: ``tests/test_docs.py``
only compiles those blocks, and Markdown would not recognise the fence with the flag.

So the docs cannot drift from the code: change the machine or the defaults and the
pages change with them. ``tests/test_docs.py`` checks what these functions produce.
"""

from __future__ import annotations

import re
from typing import Any

import jobwait
import jobwait._plumbing
from jobwait._fleet import FleetState
from jobwait._plumbing import fleet_transitions
from jobwait.testing import simulate

__all__ = [
    "default_schedule",
    "fleet_diagram",
    "fleet_table",
    "job_options",
    "on_page_markdown",
    "state_diagram",
    "transition_table",
]

_MARKER = re.compile(r"^<!-- jobwait:([a-z-]+) -->[ \t]*$", re.MULTILINE)
_NO_RUN_FENCE = re.compile(r"^([ \t]*(?:`{3,}|~{3,})[ \t]*python)[ \t]+no-run[ \t]*$", re.MULTILINE)


def state_diagram() -> str:
    """A Mermaid ``stateDiagram-v2`` with one edge per transition the waiter runs on."""
    lines = ["```mermaid", "stateDiagram-v2"]
    initial = jobwait.State.IDLE
    lines.append(f"    [*] --> {initial.name}")
    for t in jobwait._plumbing.transitions():
        state, event, action, next_state = t
        lines.append(f"    {state.name} --> {next_state.name}: {event} / {action}")
    targets = {t[3] for t in jobwait._plumbing.transitions()}
    sources = {t[0] for t in jobwait._plumbing.transitions()}
    for final in sorted(targets - sources, key=lambda s: s.name):
        lines.append(f"    {final.name} --> [*]")
    lines.append("```")
    return "\n".join(lines)


def transition_table() -> str:
    """The transitions as a Markdown table: state, event, action, next state."""
    rows = [
        "| State | Event | Action | Next state |",
        "| --- | --- | --- | --- |",
    ]
    for state, event, action, next_state in jobwait._plumbing.transitions():
        rows.append(f"| `{state.name}` | `{event}` | `{action}` | `{next_state.name}` |")
    return "\n".join(rows)


def fleet_diagram() -> str:
    """A Mermaid ``stateDiagram-v2`` of the fleet's lifecycle, one edge per (state,
    input, next state) of the table the fleet runs on; the label lists the actions
    ``next_action`` may hand out on that edge."""
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {FleetState.RUNNING.name}"]
    for state, what, actions, next_state in fleet_transitions():
        label = what if not actions else f"{what} / {' | '.join(actions)}"
        lines.append(f"    {state.name} --> {next_state.name}: {label}")
    lines.append("```")
    return "\n".join(lines)


def fleet_table() -> str:
    """The fleet's lifecycle as a Markdown table: state, input, actions, next state."""
    rows = [
        "| State | Input | Actions handed out | Next state |",
        "| --- | --- | --- | --- |",
    ]
    for state, what, actions, next_state in fleet_transitions():
        shown = ", ".join(f"`{a}`" for a in actions) or "-"
        rows.append(f"| `{state.name}` | `{what}` | {shown} | `{next_state.name}` |")
    return "\n".join(rows)


def job_options() -> str:
    """The per-job options as a Markdown table: name, default, meaning (the first
    sentence of ``JobWaiter``'s ``Args`` entry)."""
    doc = jobwait.JobWaiter.__doc__ or ""
    args: dict[str, str] = {}
    name = ""
    for line in doc.split("Args:", 1)[-1].split("Raises:", 1)[0].splitlines():
        match = re.match(r"^ {8}(\w+): (.*)$", line)
        if match:
            name = match.group(1)
            args[name] = match.group(2).strip()
        elif name and line.startswith(" " * 12):
            args[name] += " " + line.strip()
    rows = ["| Option | Default | What it does |", "| --- | --- | --- |"]
    for option in jobwait._plumbing.JOB_OPTIONS:
        default = jobwait._plumbing.JOB_DEFAULTS[option]  # type: ignore[literal-required]
        if isinstance(default, jobwait.Backoff | jobwait.Statuses):
            shown = f"{type(default).__name__}()"  # the defaults are default-built
        else:
            shown = getattr(default, "__name__", None) or repr(default)
        meaning = args.get(option, "").split(". ")[0].rstrip(".")
        rows.append(f"| `{option}` | `{shown}` | {meaning} |")
    return "\n".join(rows)


def default_schedule() -> str:
    """The default schedule as a Markdown table, for a job that never finishes.

    Runs a default ``JobWaiter`` in virtual time against a job stuck in ``ready``: one
    row per poll (number, time, sleep before the next poll) and how the wait ended.
    """
    trace = simulate(jobwait.JobWaiter(), [(0.0, "ready")])
    rows = [
        "| Poll | Time (s) | Sleep before the next poll (s) |",
        "| ---: | ---: | ---: |",
    ]
    for index, at in enumerate(trace.polls):
        if index < len(trace.sleeps):
            sleep = _seconds(trace.sleeps[index])
        else:
            sleep = f"none: `{type(trace.outcome).__name__}`"
        rows.append(f"| {index + 1} | {_seconds(at)} | {sleep} |")
    return "\n".join(rows)


def _seconds(value: float) -> str:
    # Four decimals show the x1.5 growth exactly (4.75, 8.125, 13.1875) and hide the
    # float noise of the clamped last sleep; trailing zeros add nothing.
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text or "0"


_GENERATORS = {
    "state-diagram": state_diagram,
    "transition-table": transition_table,
    "default-schedule": default_schedule,
    "job-options": job_options,
    "fleet-diagram": fleet_diagram,
    "fleet-table": fleet_table,
}


def render(markdown: str) -> str:
    """Replace every ``<!-- jobwait:NAME -->`` line with the section NAME generates,
    and turn ``python no-run`` fences into plain ``python`` fences.

    Raises:
        KeyError: For an unknown NAME, so a typo fails the build instead of silently
            leaving the section out.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _GENERATORS:
            raise KeyError(
                f"unknown docs marker <!-- jobwait:{name} -->; known: {sorted(_GENERATORS)}"
            )
        return _GENERATORS[name]()

    return _NO_RUN_FENCE.sub(r"\1", _MARKER.sub(replace, markdown))


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs event: fill the markers before the Markdown is rendered."""
    return render(markdown)
