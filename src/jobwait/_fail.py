"""What a scripted fetch returns to fail (shared by ``simulate`` and ``JobBoard``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Fail"]


@dataclass(frozen=True, slots=True)
class Fail:
    """What a scripted fetch returns to fail instead of returning the job.

    Attributes:
        error: The exception the fetch "raised".
        retryable: Whether retrying may help.
        retry_after: A server hint in seconds, or ``None``.
    """

    error: BaseException
    retryable: bool = True
    retry_after: float | None = None
