"""Shared test configuration."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from jobwait.adapters.server import JobServer

# One profile for the whole suite: no per-example deadline (a loaded CI machine must not
# turn a slow example into a failure); each property test sets its own max_examples so
# the suite stays fast.
settings.register_profile(
    "jobwait",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("jobwait")


@pytest.fixture
def ctrl_c() -> Iterator[Callable[[], None]]:
    """Ctrl-C that works in every shell: yields a function that sends a real SIGINT to
    the main thread (call it from any thread).

    A Python started with SIGINT ignored (a background job, ``nohup``, some CI
    runners) keeps it ignored: a SIGINT, or ``_thread.interrupt_main()``, then does
    nothing and a test that stops a command that way waits for ever. For the test's
    duration SIGINT raises ``KeyboardInterrupt`` in this process, and a child started
    meanwhile begins with the default disposition (exec resets a handled signal, not an
    ignored one), so Ctrl-C sent to it works as well.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    main = threading.main_thread().ident
    assert main is not None

    def interrupt() -> None:
        signal.pthread_kill(main, signal.SIGINT)

    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[JobServer]:
    """A :class:`~jobwait.adapters.server.JobServer` on a loopback port, stopped after the
    test: the test module's ``KEY`` as its API key (none if it has none) and its
    ``SERVER_OPTIONS`` (``time_scale``, ...)."""
    module = request.module
    options = getattr(module, "SERVER_OPTIONS", {})
    with JobServer(api_key=getattr(module, "KEY", None), **options) as started:
        yield started
