"""The one set of checks on numbers that come from outside: options, snapshots, server
hints, job scripts.

Python's numbers have traps a float-minded check walks into: ``bool`` is an ``int``;
an ``int`` may be too large for a float (``float(10**400)`` and
``math.isfinite(10**400)`` raise ``OverflowError``); a float may be NaN (every
comparison false) or infinite. Every place that takes a number from a caller, a file,
a store or a peer asks this module, so each of those traps is handled once and a bad
number is a ``ValueError`` that names it (or, for a server's hint, simply ignored).
"""

from __future__ import annotations

import math
from typing import Final

from ._text import preview

__all__ = [
    "MAX_COUNT",
    "as_float",
    "check_count",
    "check_number",
    "finite",
    "held_to",
    "usable_seconds",
]

#: The largest count (polls, errors, sequence numbers, limits) accepted from outside:
#: the largest 64-bit signed integer, what Redis and most stores can hold.
MAX_COUNT: Final = 2**63 - 1

# A snapshot keeps times relative to its own moment, computed on a clock whose readings
# may be large (wall time is ~1.7e9 s, with steps of ~2.4e-7 s): a time can come back
# a few of those steps beyond the bound its rule set. Within this margin it is the
# round trip's rounding and kept as it is, so a restored wait continues exactly like
# the uninterrupted one.
_ROUNDING: Final = 1e-6


def as_float(value: object) -> float | None:
    """``value`` as a float when it is a real number a float can hold: an ``int``
    (not a ``bool``) within the float range, or a ``float`` (NaN and infinities
    included); ``None`` for anything else."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond +-1.8e308
        return None


def finite(value: object) -> float | None:
    """``value`` as a float when it is a finite real number (see :func:`as_float`),
    else ``None``."""
    number = as_float(value)
    return number if number is not None and math.isfinite(number) else None


def check_number(
    what: str, value: object, *, minimum: float = -math.inf, maximum: float = math.inf
) -> float:
    """``value`` as a finite float in ``[minimum, maximum]``.

    Args:
        what: How the message names the value, e.g. ``"JobWaiter(timeout=...)"`` or
            ``"sleep"``.

    Raises:
        ValueError: ``value`` is not a finite number in range (a bool, a string, NaN,
            an infinity, an int too large for a float, ...); the message names
            ``what``, the value (cut to 200 characters) and the range.
    """
    number = finite(value)
    if number is not None and minimum <= number <= maximum:
        return number
    raise ValueError(f"{what} must be {_range(minimum, maximum)}, got {preview(value)}")


def check_count(what: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an ``int`` in ``[minimum, MAX_COUNT]`` (not a ``bool``).

    Raises:
        ValueError: Anything else; the message names ``what``, the value (cut to 200
            characters) and the range.
    """
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= MAX_COUNT:
        return value
    raise ValueError(f"{what} must be an integer from {minimum} to 2**63-1, got {preview(value)}")


def usable_seconds(value: object, cap: float = math.inf) -> float | None:
    """The one sanitiser of server hints (``Retry-After`` and the like): ``value`` as
    float seconds, at most ``cap``, when it is a finite number >= 0; else ``None``.

    A hint is advice: a negative, NaN, infinite, boolean, non-numeric or too large
    one is ignored rather than trusted or allowed to crash a wait.
    """
    seconds = as_float(value)
    if seconds is None or not 0.0 <= seconds < math.inf:  # NaN fails the comparison
        return None
    return seconds if seconds <= cap else cap


def held_to(value: float, bound: float) -> float:
    """A stored time held to the ``bound`` its rule sets: ``value`` when it is within
    ``bound`` (give or take a microsecond of rounding), else ``bound``.

    How a restore keeps a stored number from delaying anything past what the options
    allow, while a sound snapshot comes back exactly as it was.
    """
    return value if value <= bound + _ROUNDING else bound


def _range(minimum: float, maximum: float) -> str:
    if maximum == math.inf:
        return "a finite number" + ("" if minimum == -math.inf else f" >= {minimum:g}")
    if minimum == -math.inf:
        return f"a finite number <= {maximum:g}"
    return f"a number from {minimum:g} to {maximum:g}"
