"""An asyncio event loop on virtual time, asyncio's answer to trio's ``MockClock``.

``loop.time()`` is a number that only moves when the loop would block: when nothing is
ready and the next timer is ``t`` seconds away, time jumps by ``t`` at once (trio's
``MockClock(autojump_threshold=0)``). Everything the matrix runs on asyncio (jobwait's
runtime clock, ``asyncio.sleep``, ``asyncio.timeout``, the scripted server's stalls)
reads ``loop.time()``, so an hour of waiting takes milliseconds and every run of a cell
is the same. Real I/O still works (the selector is asked without blocking first); a
loop with no timer and nothing ready waits for real, at most ``_IDLE`` seconds, then
fails loudly instead of hanging.
"""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

__all__ = ["VirtualTimeLoop", "run"]

_IDLE = 10.0


class _JumpingSelector(selectors.BaseSelector):
    """The default selector, except that a wait with a timeout jumps the clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._inner = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            ready = self._inner.select(_IDLE)
            if not ready:
                raise RuntimeError(f"virtual-time loop: nothing scheduled for {_IDLE}s (deadlock)")
            return ready
        self._loop.jump(timeout)
        return []

    def close(self) -> None:
        self._inner.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Any:
        return self._inner.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose ``time()`` is virtual (starts at 0)."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def jump(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


def run(main: Any) -> Any:
    """``asyncio.run(main)`` on a :class:`VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)
