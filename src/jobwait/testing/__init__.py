"""Deterministic, instant testing of code that waits: virtual time, simulation and a
simulated job API.

Everything here is pure: no clock is read, nothing really sleeps and nothing does IO
(the purity test scans this package like the core). It is a test kit, kept out of the
core: nothing under ``jobwait`` imports it.

- :class:`VirtualClock` gives any adapter a clock and a sleep that only advance
  virtual time: ``sync.wait(fetch, clock=vc.now, sleep=vc.sleep)`` runs an hour of
  polling in microseconds. ``vc.asleep`` is the async variant (asyncio and trio).
- :func:`simulate` drives a :class:`~jobwait.JobWaiter` against a scripted job in
  virtual time and returns a :class:`Trace` of when it polled, how long it slept and
  how it ended: "how many polls does a 2-hour queue cost?" in microseconds. A scripted
  fetch fails by returning a :class:`Fail`.
- :class:`JobBoard` simulates a whole job API (IonQ v0.4 shaped) with scripted
  statuses and scripted :class:`Fault` objects; ``JobBoard.fetcher(job_id)`` is a script for
  :func:`simulate`, and ``jobwait.adapters.server.JobServer`` serves the same board
  over real HTTP.
"""

from __future__ import annotations

from ._board import Fault as Fault
from ._board import JobBoard as JobBoard
from ._board import JobScriptError as JobScriptError
from ._board import Reply as Reply
from ._clock import VirtualClock as VirtualClock
from ._simulate import Fail as Fail
from ._simulate import Trace as Trace
from ._simulate import simulate as simulate

__all__ = [
    "Fail",
    "Fault",
    "JobBoard",
    "JobScriptError",
    "Reply",
    "Trace",
    "VirtualClock",
    "simulate",
]

# Name the public home in reprs, pickles and tracebacks (as trio.testing does): users
# import these from jobwait.testing, never from the private modules.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
