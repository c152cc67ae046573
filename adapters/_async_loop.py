"""The one async driver loop, shared by the asyncio and trio adapters.

Each runtime adapter supplies only what differs between runtimes: its clock, its
sleep, its cancellation exception and how to run the ``cancel=`` callback shielded
from that cancellation. The loop performs the core's actions and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from jobwait import Done, JobWaiter, Poll, Sleep, Start, Woke, fetch_failed, observed

CancelRunner = Callable[[Callable[[], Awaitable[object]], BaseException, float], Awaitable[None]]


async def drive(
    w: JobWaiter,
    fetch: Callable[[], Awaitable[Any]],
    *,
    is_retryable: Callable[[BaseException], bool],
    retry_after_of: Callable[[BaseException], float | None],
    on_status: Callable[[Any, str], object] | None,
    cancel: Callable[[], Awaitable[object]] | None,
    cancel_grace: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]],
    interrupts: tuple[type[BaseException], ...],
    run_cancel: CancelRunner,
) -> Any:
    """Drive ``w`` to its end; see :func:`jobwait.adapters.asyncio.wait`."""
    try:
        action = w.handle(Start(now=clock()))
        while True:
            if isinstance(action, Poll):
                try:
                    result = await fetch()
                except Exception as exc:  # noqa: BLE001 - classified by the core, never raw
                    action = w.handle(fetch_failed(exc, clock(), is_retryable, retry_after_of))
                else:
                    action = w.handle(observed(result, clock()))
                if on_status is not None and w.status_changed:
                    called = on_status(w.last_job, w.last_status or "")
                    if inspect.isawaitable(called):
                        await called
            elif isinstance(action, Sleep):
                await sleep(action.seconds)
                action = w.handle(Woke(now=clock()))
            elif isinstance(action, Done):
                return action.job
            else:
                if action.cancel_job and cancel is not None:
                    await run_cancel(cancel, action.error, cancel_grace)
                raise action.error
    except interrupts as interrupt:
        if cancel is not None:
            await run_cancel(cancel, interrupt, cancel_grace)
        raise
