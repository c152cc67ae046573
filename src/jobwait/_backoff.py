"""The poll schedule: exponential backoff with optional jitter."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Literal

from ._numbers import finite, usable_seconds
from ._text import preview

__all__ = ["Backoff", "Jitter", "usable_seconds"]

Jitter = Literal["full", "equal", "decorrelated"]
_JITTERS = (None, "full", "equal", "decorrelated")


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long to sleep between polls.

    The n-th interval (n = 0, 1, 2, ...) is ``min(initial * factor**n, max)``. With the
    defaults (1 s, x1.5, capped at 30 s, the ``ionq_core.polling`` schedule) a job is
    polled at t = 0, 1, 2.5, 4.75, 8.125, 13.19, ... and every 30 s from t ≈ 74.9.

    Jitter turns each interval into a random sleep, drawn from ``rng``:

    - ``None`` (default): sleep = interval.
    - ``"full"``: sleep = uniform(0, interval).
    - ``"equal"``: sleep = interval / 2 + uniform(0, interval / 2).
    - ``"decorrelated"``: sleep = min(max, uniform(initial, previous_sleep * 3)), with
      previous_sleep starting at ``initial``; the factor plays no part.

    Args:
        initial: First interval in seconds; must be > 0.
        factor: Growth per poll; must be >= 1.
        max: Cap on the interval; must be >= initial.
        jitter: ``None``, ``"full"``, ``"equal"`` or ``"decorrelated"``.
        rng: The random generator jitter draws from; pass ``random.Random(seed)`` for
            reproducible runs. Defaults to a fresh ``random.Random()``.

    Raises:
        ValueError: For a non-positive or non-finite ``initial``, ``factor < 1``,
            ``max < initial``, or an unknown jitter name (the message names the option).
    """

    initial: float = 1.0
    factor: float = 1.5
    max: float = 30.0
    jitter: Jitter | None = None
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        initial, factor, top = finite(self.initial), finite(self.factor), finite(self.max)
        if initial is None or initial <= 0:
            raise ValueError(
                f"Backoff(initial={preview(self.initial)}) must be a finite number > 0"
            )
        if factor is None or factor < 1:
            raise ValueError(f"Backoff(factor={preview(self.factor)}) must be a finite number >= 1")
        if top is None or top < initial:
            raise ValueError(
                f"Backoff(max={preview(self.max)}) must be a finite number >= initial "
                f"({self.initial!r})"
            )
        if self.jitter not in _JITTERS:
            raise ValueError(
                f"Backoff(jitter={self.jitter!r}) must be None, 'full', 'equal' or 'decorrelated'"
            )
        if self.jitter is not None and self.rng is None:
            object.__setattr__(self, "rng", random.Random())

    def next_interval(self, interval: float) -> float:
        """The interval after ``interval``: ``min(interval * factor, max)``."""
        return min(interval * self.factor, self.max)

    def sleep_for(self, interval: float, previous_sleep: float) -> float:
        """The sleep for the current ``interval`` under this jitter.

        Args:
            interval: The current (un-jittered) interval.
            previous_sleep: The last sleep this backoff chose (``initial`` at first);
                only decorrelated jitter reads it.
        """
        jitter = self.jitter
        if jitter is None:
            return interval
        rng = self.rng
        assert rng is not None  # set in __post_init__ whenever jitter is on
        if jitter == "full":
            return rng.uniform(0.0, interval)
        if jitter == "equal":
            return interval / 2 + rng.uniform(0.0, interval / 2)
        return min(self.max, rng.uniform(self.initial, previous_sleep * 3))

    def batch_factor(self) -> float:
        """The factor a scheduler applies to every sleep of one batch report, so that
        jobs due together stay together (``JobFleet``, whose waiters run without
        jitter): ``"full"``: uniform(0, 1); ``"equal"`` and ``"decorrelated"``:
        uniform(0.5, 1); ``1.0`` without jitter."""
        jitter = self.jitter
        if jitter is None:
            return 1.0
        rng = self.rng
        assert rng is not None  # set in __post_init__ whenever jitter is on
        if jitter == "full":
            return rng.uniform(0.0, 1.0)
        return rng.uniform(0.5, 1.0)

    def intervals(self, count: int) -> list[float]:
        """The first ``count`` un-jittered intervals, for tables and docs."""
        out: list[float] = []
        interval = self.initial
        for _ in range(count):
            out.append(interval)
            interval = self.next_interval(interval)
        return out

    def interval_after(self, seconds: float) -> float:
        """The un-jittered interval a wait on this schedule has reached ``seconds`` after
        its first poll: ``min(initial * factor**n, max)``, where ``n`` is the number of
        intervals that fit in ``seconds``, the largest with
        ``initial * (factor**n - 1) / (factor - 1) <= seconds`` (``n * initial`` when
        ``factor`` is 1). ``initial`` for ``seconds <= 0``.

        A wait whose state was lost and that knows only when it began resumes its
        schedule here instead of from ``initial`` (:func:`jobwait._durable.resume_fleet`).
        """
        if not seconds > 0 or self.factor == 1.0 or self.max == self.initial:
            return self.initial
        if math.isinf(seconds):
            return self.max
        growth = math.log(self.factor)
        n = math.floor(math.log1p(seconds * (self.factor - 1.0) / self.initial) / growth)
        # Compared in log space first, so that a huge n (days of a slow schedule) cannot
        # overflow factor**n.
        if n * growth >= math.log(self.max / self.initial):
            return self.max
        return min(self.max, self.initial * self.factor**n)

    def to_json(self) -> dict[str, object]:
        """A JSON-serialisable form (the generator is not included)."""
        return {
            "initial": self.initial,
            "factor": self.factor,
            "max": self.max,
            "jitter": self.jitter,
        }
