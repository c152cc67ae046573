"""The errors of durable waits: one small tree under :class:`~jobwait.JobWaitError`."""

from __future__ import annotations

from jobwait import JobWaitError

__all__ = [
    "CorruptGroupError",
    "DurableWaitError",
    "ForeignFormatError",
    "GroupCanceledError",
    "GroupNotFoundError",
    "GroupTimeoutError",
    "InvalidJobIdsError",
    "StoreUnavailableError",
    "UnknownSourceError",
]


class DurableWaitError(JobWaitError):
    """Base of the errors of durable waits (a :class:`~jobwait.JobWaitError`)."""


class UnknownSourceError(DurableWaitError, LookupError):
    """``submit`` named a source that is not registered in this process.

    Register it with :meth:`DurableWaits.register_source` in the module that both the
    producer and the workers import (where the Celery app is built).
    """


class InvalidJobIdsError(DurableWaitError, ValueError):
    """The job ids given to ``submit`` are empty, not strings, or repeated."""


class StoreUnavailableError(DurableWaitError, ConnectionError):
    """Redis could not be reached (the cause says why); nothing was lost: retry."""


class ForeignFormatError(DurableWaitError, ValueError):
    """A group in Redis was written by another version of jobwait (the message
    names both formats). Run workers of that version until it finishes, or cancel it."""


class CorruptGroupError(DurableWaitError, ValueError):
    """A group's data in Redis is not what jobwait wrote: a key of the wrong type, a
    field missing or out of range, an outcome record that does not parse (the message
    names the group, the key and what is wrong). Something else wrote to jobwait's keys,
    or they were damaged: nothing jobwait reads from them can be trusted. Delete the
    group's keys (``<prefix>:{<group id>}:*``) and submit again."""


class GroupNotFoundError(DurableWaitError, LookupError):
    """No group of that id in Redis: a wrong id or prefix, or it expired
    (``result_ttl`` after it finished)."""


class GroupTimeoutError(DurableWaitError, TimeoutError):
    """``as_completed`` / ``wait`` ran out of ``timeout`` with jobs still waiting.
    The group keeps running: call again to go on waiting."""


class GroupCanceledError(DurableWaitError):
    """The group was canceled (``WaitGroup.cancel``) while jobs were still waiting."""
