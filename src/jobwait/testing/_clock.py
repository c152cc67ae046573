"""Virtual time: a clock that moves only when something sleeps on it."""

from __future__ import annotations

__all__ = ["VirtualClock"]


class VirtualClock:
    """A clock whose time moves only when something sleeps on it.

    Hand it to an adapter as ``clock=vc.now`` and ``sleep=vc.sleep`` (sync) or
    ``sleep=vc.asleep`` (asyncio, trio). Every sleep is recorded in :attr:`sleeps`.

    Args:
        start: The initial time in seconds.
    """

    __slots__ = ("_now", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep (e.g. to model fetch latency).

        Raises:
            ValueError: If ``seconds`` is negative or NaN.
        """
        if not seconds >= 0:
            raise ValueError(f"cannot advance a clock by {seconds!r} seconds")
        self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` at once (a stand-in for ``time.sleep``).

        Raises:
            ValueError: If ``seconds`` is negative or NaN.
        """
        if not seconds >= 0:
            raise ValueError(f"cannot sleep {seconds!r} seconds")
        self.sleeps.append(seconds)
        self._now += seconds

    async def asleep(self, seconds: float) -> None:
        """Async :meth:`sleep` for asyncio and trio drivers; never suspends."""
        self.sleep(seconds)

    def __repr__(self) -> str:
        return f"<VirtualClock now={self._now!r} sleeps={len(self.sleeps)}>"
