"""How asyncio and trio run waits: the one async loop (``loop``) behind every async
adapter, the :class:`~jobwait.adapters._runtime.loop.Runtime` seam, and the scheduler
that lets concurrent waits on one client share requests (``shared``). Private."""
