"""How a public module claims its names: trio's way of naming what users import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["claim"]


def claim(namespace: Mapping[str, Any], names: Iterable[str], module: str) -> None:
    """Set ``__module__`` of every class and function among ``names`` in ``namespace``
    to ``module``, the public module users import it from: tracebacks, reprs and pickles
    then name ``jobwait.JobTimeoutError``, not ``jobwait._errors.JobTimeoutError``."""
    for name in names:
        obj = namespace[name]
        if isinstance(obj, type) or callable(obj):
            obj.__module__ = module
