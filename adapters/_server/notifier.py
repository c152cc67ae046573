"""The JobServer's webhook sender: one notice per status change, scripted to misbehave.

Real webhook channels drop, duplicate, delay and reorder notices. To show hybrid waiting
honestly, the sender does all of that on purpose, from a seeded generator, so a run
can be repeated: each notice is dropped with probability ``drop``, sent a second time
with probability ``duplicate``, and each delivery is late by a uniform ``[0, delay]``
seconds. Every decision and delivery is logged (:class:`NoticeRecord`).

One thread sends, over one keep-alive connection, in due-time order; a notice whose
change was undone by a cancel is not sent.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import json
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from jobwait._plumbing import check_number
from jobwait.testing import JobBoard

from .._http.loopback import is_loopback
from ..webhook import SIGNATURE_HEADER, sign

__all__ = ["NoticeRecord", "Notifier", "Webhooks"]

_SEND_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhooks:
    """Where and how :class:`~jobwait.adapters.server.JobServer` delivers webhooks.

    On each status change of each job the server POSTs ``{"id": ..., "status": ...}``
    (JSON) to ``url``. Drops, duplicates and delays are drawn from ``random.Random(seed)``.

    Attributes:
        url: The callback URL (``http://``); loopback only unless ``allow_remote``.
        drop: Probability in [0, 1] that a notice is never sent (default 0).
        duplicate: Probability in [0, 1] that a notice is sent twice (default 0).
        delay: Each delivery is late by a uniform ``[0, delay]`` seconds (default 0).
        seed: Seed of the generator that decides the above (default 0).
        secret: Signs each body (``X-Jobwait-Signature: sha256=<hex HMAC>``); never
            shown in reprs.
        allow_remote: Allow a non-loopback callback host.
    """

    url: str
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    seed: int = 0
    secret: str | None = None
    allow_remote: bool = False

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Webhooks(url={self.url!r}) must be an http:// URL with a host")
        if not self.allow_remote and not is_loopback(parts.hostname):
            raise ValueError(
                f"Webhooks(url=...) posts to {parts.hostname!r}, not loopback; "
                "pass allow_remote=True"
            )
        for name in ("drop", "duplicate"):
            check_number(
                f"Webhooks({name}=...), a probability,",
                getattr(self, name),
                minimum=0.0,
                maximum=1.0,
            )
        check_number("Webhooks(delay=...)", self.delay, minimum=0.0)

    def __repr__(self) -> str:
        signed = ", signed" if self.secret is not None else ""
        return (
            f"Webhooks(url={self.url!r}, drop={self.drop}, duplicate={self.duplicate}, "
            f"delay={self.delay}, seed={self.seed}{signed})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NoticeRecord:
    """One notice the server decided on, as logged in ``JobServer.notices``.

    Attributes:
        job_id: The job.
        status: The status it changed to.
        changed_at: Server time of the change.
        sent_at: Server time the POST went out, or ``None`` (dropped or superseded).
        outcome: ``"delivered"`` (2xx), ``"rejected"`` (another status),
            ``"failed"`` (no connection or no answer), ``"dropped"`` (scripted) or
            ``"superseded"`` (a cancel undid the change before it was sent).
        copy: 0 for the notice, 1 for its scripted duplicate.
    """

    job_id: str
    status: str
    changed_at: float
    sent_at: float | None
    outcome: str
    copy: int = 0


@dataclass(frozen=True, slots=True)
class _Notice:
    job_id: str
    status: str
    changed_at: float
    copy: int


class Notifier:
    """Plans and sends a JobServer's webhooks (the server calls it under its lock)."""

    def __init__(self, config: Webhooks, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._rng = random.Random(config.seed)
        parts = urlsplit(config.url)
        self._host = parts.hostname or ""
        self._port = parts.port or 80
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._heap: list[tuple[float, int, _Notice]] = []
        self._sequence = itertools.count()
        self._planned = 0  # board.job_ids()[:planned] have their notices planned
        self._cut: dict[str, float] = {}  # job -> cancel time: later changes are void
        self._records: list[NoticeRecord] = []
        self._sending = 0  # 1 while a notice is off the heap and not logged yet
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._connection: http.client.HTTPConnection | None = None

    # -- planning (server thread or caller, under the server's lock) ------------------

    def sync(self, board: JobBoard, ids: tuple[str, ...] = ()) -> None:
        """Plan notices for jobs submitted since the last call, and the ``canceled``
        notice of each of ``ids`` that a cancel cut short."""
        every = board.job_ids()
        fresh = every[self._planned :]
        self._planned = len(every)
        for job_id in fresh:
            self._plan(job_id, board.timeline(job_id)[1:])
        for job_id in ids:
            if job_id in self._cut:
                continue
            try:
                at, status = board.timeline(job_id)[-1]
            except KeyError:  # a cancel for a job that does not exist: 404, no change
                continue
            if status == "canceled":
                with self._cond:  # _run reads it under the lock
                    self._cut[job_id] = at  # later changes are void: not sent
                self._plan(job_id, [(at, status)])

    def _plan(self, job_id: str, changes: list[tuple[float, str]]) -> None:
        config = self._config
        rng = self._rng
        with self._cond:
            for at, status in changes:
                copies = 2 if rng.random() < config.duplicate else 1
                if rng.random() < config.drop:
                    self._records.append(
                        NoticeRecord(
                            job_id=job_id,
                            status=status,
                            changed_at=at,
                            sent_at=None,
                            outcome="dropped",
                        )
                    )
                    continue
                for copy in range(copies):
                    due = at + rng.uniform(0.0, config.delay) if config.delay else at
                    notice = _Notice(job_id, status, at, copy)
                    heapq.heappush(self._heap, (due, next(self._sequence), notice))
            self._cond.notify()

    # -- sending (the notifier thread) ------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._run, name="jobwait-JobServer-webhooks", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def pending(self) -> int:
        """Notices planned and not decided yet (due later, or being sent); those a
        cancel made void are not counted: they are never sent."""
        with self._cond:
            cut = self._cut
            live = sum(
                1
                for _, _, n in self._heap
                if n.status == "canceled" or n.changed_at < cut.get(n.job_id, math.inf)
            )
            return live + self._sending

    @property
    def records(self) -> list[NoticeRecord]:
        with self._cond:
            return list(self._records)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - self._clock()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 1.0))
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, notice = heapq.heappop(self._heap)
                cut = self._cut.get(notice.job_id, math.inf)
                superseded = notice.status != "canceled" and notice.changed_at >= cut
                self._sending = 1  # off the heap, not logged yet: still pending
            if superseded:
                self._log(notice, None, "superseded")
            else:
                self._log(notice, self._clock(), self._send(notice))

    def _log(self, notice: _Notice, sent_at: float | None, outcome: str) -> None:
        record = NoticeRecord(
            job_id=notice.job_id,
            status=notice.status,
            changed_at=notice.changed_at,
            sent_at=sent_at,
            outcome=outcome,
            copy=notice.copy,
        )
        with self._cond:
            self._records.append(record)
            self._sending = 0

    def _send(self, notice: _Notice) -> str:
        body = json.dumps({"id": notice.job_id, "status": notice.status}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if self._config.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._config.secret, body)
        for attempt in range(2):  # a keep-alive connection the peer closed: retry once
            connection = self._connection
            if connection is None:
                connection = self._connection = http.client.HTTPConnection(
                    self._host, self._port, timeout=_SEND_TIMEOUT
                )
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                response.read(65536)
            except (OSError, http.client.HTTPException):
                connection.close()
                self._connection = None
                if attempt:
                    return "failed"
                continue
            if response.will_close:
                connection.close()
                self._connection = None
            return "delivered" if 200 <= response.status < 300 else "rejected"
        return "failed"
