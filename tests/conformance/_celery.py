"""The Celery shard path: a durable wait whose shard runs in this process, on real Redis.

``DurableWaits.submit`` writes the group to a real redis-server and sends the shard
task; instead of a worker, this driver runs each send's ``run_shard(group, n, gen)``
itself once its countdown is over (the sends are read from Celery's public
``before_task_publish`` signal, so the shard code runs exactly as in a worker: it loads
the snapshot from Redis, polls through the source, saves with compare-and-set and
re-sends itself). Sources are the public ones, on the scripted server's transport:
``ionq_source`` (batch reads ``GET /jobs?ids=...``) for the IonQ kind, ``http_source``
one by one (``GET /jobs/{id}``) for the httpx kind. Real time throughout: the shard's
clock is Redis ``TIME`` plus the worker's monotonic clock.

Two differences are the durable wait's own and are named where they are compared:
it is a fleet (the fleets' budget rule applies), and an outcome crosses Redis as JSON,
so an error comes back with the same class and context but one level of cause (a
``RemoteError`` naming the original class). Its errors are jobwait's own classes for
either source (the IonQ adapter's ionq-core twins are not rebuilt in a worker).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from jobwait.adapters.celery import DurableWaits, http_source, ionq_source

from ._paths import Caller, Seen, _Record
from ._server import BASE_URL, ScriptedServer, job

__all__ = ["CeleryPath"]

KEY_ENV = "JOBWAIT_CONFORMANCE_KEY"
_names = itertools.count()


class CeleryPath:
    """Durable waits on the redis-server at ``redis_url``, shards run here."""

    def __init__(self, redis_url: str) -> None:
        self.app = Celery("conformance", broker=redis_url)
        self.app.conf.update(task_serializer="json", accept_content=["json"])
        self.waits = DurableWaits(
            self.app, redis_url=redis_url, countdown_cap=1.0, sweep_grace=600.0
        )
        self._sent: list[tuple[float, int, tuple[Any, ...]]] = []
        self._seq = itertools.count()

    def warm_up(self) -> None:
        """One durable wait before the cells: the broker connection and the Lua
        scripts are set up here, not inside the first cell's timing."""
        done = Caller("warm-up", (job("completed"),), {"timeout": 5.0})
        self.run("httpx", [done], window=0.1)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record the shard tasks sent while inside (the due time and arguments)."""

        def sent(sender: Any = None, body: Any = None, headers: Any = None, **_: Any) -> None:
            if headers is None or headers.get("task") != self.waits.shard_task.name:
                return
            eta = headers.get("eta")
            delay = 0.0
            if eta:
                delay = (datetime.fromisoformat(eta) - datetime.now(UTC)).total_seconds()
            due = time.monotonic() + max(0.0, delay)
            heapq.heappush(self._sent, (due, next(self._seq), tuple(body[0])))

        before_task_publish.connect(sent, weak=False)
        try:
            yield
        finally:
            before_task_publish.disconnect(sent)
            self._sent.clear()

    def run(self, kind: str, callers: list[Caller], *, window: float) -> list[Seen]:
        """One job's durable wait, its shard runs driven here until the group is done."""
        (caller,) = callers
        server = ScriptedServer({caller.job_id: caller.script}, time.monotonic)
        transport = server.sync_transport(None)
        name = f"conformance-{kind}-{next(_names)}"
        if kind == "ionq":
            factory = ionq_source(base_url=BASE_URL, api_key_env=KEY_ENV, transport=transport)
        else:
            factory = http_source(BASE_URL + "/jobs/{id}", transport=transport)
        self.waits.register_source(name, factory)
        record = _Record(caller, server.now)
        with self.recording():
            server.start()
            group = self.waits.submit(name, [caller.job_id], batch_window=window, **caller.options)
            deadline = time.monotonic() + 30.0
            while not group.progress().done:
                assert self._sent, "the shard stopped without re-sending itself"
                assert time.monotonic() < deadline, "the durable wait ran past 30 s"
                due, _, (group_id, n, gen) = heapq.heappop(self._sent)
                time.sleep(max(0.0, due - time.monotonic()))
                self.waits.run_shard(group_id, n, gen)
            record.finish(group.results()[caller.job_id])
        return [record.seen(server)]
