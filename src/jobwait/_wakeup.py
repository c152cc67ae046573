"""Wakeup: how a push (webhook, queue message, watch event) reaches a running wait.

Theory of operation
===================

A push is lossy and its timing is not ours: it may come from a web framework's
handler thread, a message-queue consumer, another event loop, or a task in the very
loop the wait runs on. So a :class:`Wakeup` only *records* a wake and *rings* the
waits listening on it; what a wake *means* (poll now without advancing the backoff,
remember it while a poll is in flight, ignore it after the end) is decided by the
waiter's table on the :class:`~jobwait.Nudged` event, and how a ring wakes a sleep
(``threading.Event``, ``loop.call_soon_threadsafe``, a ``trio.lowlevel.TrioToken``)
is the adapter's business. The core imports no thread or async library, and needs
none here:

- Each running wait holds a :class:`Subscription`: a dict of pending job ids and the
  adapter's ``ring`` callable. ``Wakeup`` keeps its subscriptions in a dict.
- ``wake(job_id)`` copies that dict (one ``dict.copy()``), and for each subscription
  that wants the id stores it (one ``dict`` item assignment) and then calls ``ring``.
- The driver takes the pending ids (``dict.popitem()`` until empty) right before a
  poll starts: that poll serves every wake taken, so "many wakes before a poll are
  one". An id stored after the take stays pending for the next poll: no wake is lost.

Each of those dict operations is a single atomic step: under the GIL, and per object
in free-threaded CPython (3.13t). A ring may arrive after its id was already taken
(the store and the ring are two steps): adapters treat a ring with nothing pending
as spurious and keep sleeping. Only the subscription's own driver takes from it, so
there is exactly one consumer per pending dict.

A lock would be simpler to read but would put a ``threading`` import in the core, and
would be taken in a signal handler or a foreign event loop's callback; the atomic
dict steps need neither.
"""

from __future__ import annotations

from collections.abc import Callable

from ._protocol import Nudged

__all__ = ["Subscription", "Wakeup"]


class Subscription:
    """One running wait's ear on a :class:`Wakeup`: the ids woken and not yet served.

    Made by :meth:`Wakeup.subscribe` (drivers do this; users never need to). Close it
    when the wait ends, in a ``finally`` or with ``with``: wakes after that are
    ignored.
    """

    __slots__ = ("_fleet", "_job_id", "_owner", "_pending", "_ring")

    def __init__(
        self, owner: Wakeup, ring: Callable[[], object], job_id: str | None, fleet: bool
    ) -> None:
        self._owner = owner
        self._ring = ring
        self._job_id = job_id
        self._fleet = fleet
        self._pending: dict[str | None, None] = {}

    def wants(self, job_id: str | None) -> bool:
        """Whether a wake for ``job_id`` concerns this wait.

        A fleet wants every wake (it ignores ids it does not hold, and takes a wake
        without an id as "all my jobs"). A single wait wants ``wake()`` and
        ``wake(its job_id)``; one without a job id wants every wake.
        """
        return self._fleet or job_id is None or self._job_id is None or job_id == self._job_id

    def pending(self) -> bool:
        """Whether a wake came that no poll has served yet (does not consume it)."""
        return bool(self._pending)

    def take(self) -> list[str | None]:
        """Consume the pending wakes; call right before the poll that serves them.

        Returns:
            The ids woken, in the order first woken; ``None`` stands for a wake without an id
            ("all jobs" for a fleet). Empty if nothing is pending.
        """
        taken: list[str | None] = []
        pending = self._pending
        while pending:
            try:
                taken.append(pending.popitem()[0])
            except KeyError:  # pragma: no cover - only this driver takes; defensive
                break
        taken.reverse()
        return taken

    def during_poll(self, now: float) -> Nudged | None:
        """The waiter event a wake that came while a poll was in flight means, or ``None``.

        A single-wait driver hands it to the waiter right before that poll's own report
        (``Observed`` / ``FetchFailed``, at the same ``now``), so the waiter polls once
        more after it; the wake stays pending, and that next poll's :meth:`take` serves it.
        """
        return Nudged(now=now) if self._pending else None

    def nudges(self, now: float) -> list[Nudged]:
        """Consume the pending wakes as the fleet events they mean: one
        ``Nudged(now, job_id)`` per id woken (``job_id=None``: every job). A fleet
        driver hands each to ``JobFleet.handle`` before its next ``next_action``."""
        return [Nudged(now=now, job_id=job_id) for job_id in self.take()]

    def close(self) -> None:
        """Stop listening: later wakes are ignored. Idempotent."""
        self._owner._subscriptions.pop(self, None)
        self._pending.clear()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _deliver(self, job_id: str | None) -> None:
        self._pending[job_id] = None
        self._ring()


class Wakeup:
    """Wake a running wait early: a push says the job may have changed.

    Create one, pass it as ``wakeup=`` to any wait (sync, asyncio, trio, httpx, IonQ,
    the fleet drivers), and call :meth:`wake` when a webhook, a queue message or a
    watch event arrives. Polling stays the safety net: a lost push only means the job
    is noticed on the regular schedule.

    ``wake()`` is safe from any thread, from another event loop, from inside the
    wait's own event loop, and before or after the wait runs. It never blocks and
    never does IO itself. One ``Wakeup`` may serve many waits at once (each listens
    for its own ``job_id``) or one fleet.

    What a wake does (decided by the waiter, see :class:`~jobwait.Nudged`): a sleeping
    wait polls at once without advancing its backoff (a fleet: at its next free
    request slot, within its budget and concurrency); a wake during a poll causes one
    more poll right after it; many wakes before a poll are one; a wake after the wait
    ended, or for a job no wait holds, is ignored.

    Example::

        wakeup = jobwait.Wakeup()
        # in your webhook handler, any thread:  wakeup.wake(notice["id"])
        job = sync.wait(fetch, job_id="j1", wakeup=wakeup)

    .. versionadded:: 0.1
    """

    __slots__ = ("_subscriptions",)

    def __init__(self) -> None:
        self._subscriptions: dict[Subscription, None] = {}

    def wake(self, job_id: str | None = None) -> None:
        """Wake the waits listening for ``job_id`` (every wait, when ``None``).

        For a single-job wait call ``wake()`` or ``wake(job_id)``; for a fleet,
        ``wake(job_id)`` wakes that job and ``wake()`` every job still waiting.

        Raises:
            TypeError: If ``job_id`` is neither a string nor ``None``.
        """
        if job_id is not None and not isinstance(job_id, str):
            raise TypeError(f"Wakeup.wake(job_id={job_id!r}) takes a string or None")
        for subscription in self._subscriptions.copy():
            if subscription.wants(job_id):
                subscription._deliver(job_id)

    def subscribe(
        self, ring: Callable[[], object], *, job_id: str | None = None, fleet: bool = False
    ) -> Subscription:
        """Listen for wakes (for drivers): ``ring()`` is called after each wake it wants.

        ``ring`` runs in the thread that called :meth:`wake`: it must only signal the
        driver (set a ``threading.Event``, ``loop.call_soon_threadsafe(...)``,
        ``token.run_sync_soon(...)``), never block, and swallow the error of a loop
        that already closed. Subscribe before ``Start`` (the first poll serves every
        wake before it) and close the subscription when the wait ends.

        Args:
            ring: Signals the driver; called with no arguments.
            job_id: The single wait's job id (``None``: any wake).
            fleet: ``True`` for a fleet: every wake is wanted, ids are routed by it.
        """
        subscription = Subscription(self, ring, job_id, fleet)
        self._subscriptions[subscription] = None
        return subscription

    @property
    def listeners(self) -> int:
        """How many waits are listening right now."""
        return len(self._subscriptions)

    def __repr__(self) -> str:
        return f"<jobwait.Wakeup listeners={len(self._subscriptions)}>"
