"""JobServer: a real HTTP/1.1 job server (h11) in front of a pure ``JobBoard``.

Use it in tests, demos and benchmarks to run a scripted job API on loopback::

    with JobServer(api_key="secret", time_scale=60.0) as server:
        job_id = server.submit(durations={"started": 120.0})
        # point a client at base_url=server.url with "Authorization: apiKey secret"

All API decisions (status, faults, auth, routing) are made by the board; this
module only moves bytes and carries out the reply's ``reset``, ``delay`` and
``truncate_to`` instructions.

Design: one selector loop on one background thread serves every connection.
A thread per connection would make ~1,000 keep-alive connections cost ~1,000
threads fighting the client under test for the GIL (the client usually lives in
the same process), make ``delay`` replies cost a sleeping thread each, and make
a clean shutdown a matter of waking every blocked ``recv``. One loop keeps the
thread count at one, turns a delayed reply into a timer, and shuts down by
closing what it owns.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from jobwait._plumbing import missing_extra

try:
    import h11
except ModuleNotFoundError as _missing:
    raise missing_extra(_missing, module=__name__, extra="httpx") from _missing

from jobwait.testing import Fault, JobBoard, Reply

from ._http.loopback import is_loopback
from ._server.notifier import NoticeRecord, Notifier, Webhooks

__all__ = ["JobServer", "NoticeRecord", "RequestRecord", "Webhooks"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024
_RECV_SIZE = 64 * 1024
# After we decide to close, keep reading (and discarding) for this long so the
# kernel sends FIN rather than RST and the client sees our last answer.
_LINGER_SECONDS = 1.0
# The loop wakes at least this often: selectors refuse a wait past about 24 days
# (epoll's milliseconds in a C int), whatever timer is due.
_MAX_WAIT = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRecord:
    """One request the server answered (or refused), as logged in ``server.requests``.

    Attributes:
        method: HTTP method; ``""`` if the request could not be parsed.
        path: Target path with query string, as sent (never any header).
        time: Server clock (:meth:`JobServer.now`) when the request was handled.
        status_code: Status sent; ``None`` when the connection was reset instead.
        fault: The fault kind that shaped the reply, if any.
    """

    method: str
    path: str
    time: float
    status_code: int | None
    fault: str | None = None


class JobServer:
    """A scripted IonQ-v0.4-style job API served over HTTP/1.1 on loopback.

    The API lives at ``server.url`` (which includes ``prefix``, ``/v0.4`` by
    default, as IonQ's does): clients use ``base_url=server.url`` and request
    ``/jobs/{id}``. Requests outside the prefix get 404.

    Args:
        api_key: Required in ``Authorization: apiKey <key>`` when set.
        time_scale: Scripted seconds per server second (see :class:`JobBoard`).
        host: Address to bind; loopback only unless ``allow_remote=True``.
        port: Port to bind; 0 picks a free one (read it from ``server.url``).
        faults: Server-wide faults, each keyed by ``request=``.
        clock: Monotonic seconds; default :func:`time.monotonic`.
        prefix: Path prefix of the API; ``""`` serves it at the root.
        allow_remote: Allow binding a non-loopback address.
        max_body: Largest request body accepted (413 above it).
        webhooks: Deliver a webhook on each status change of each job (see
            :class:`Webhooks`: callback URL, scripted drops, duplicates, delays);
            every notice is logged in :attr:`notices`. Default: none.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_remote`` is
            false, or ``prefix`` is malformed.
        JobScriptError: Invalid ``time_scale`` or faults.

    Use it as a context manager: entering binds and starts the loop thread,
    leaving stops it, closes every socket and joins the thread. If the loop or
    the board raised, leaving re-raises it as ``RuntimeError``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Iterable[Fault] = (),
        clock: Callable[[], float] = time.monotonic,
        prefix: str = "/v0.4",
        allow_remote: bool = False,
        max_body: int = _MAX_BODY,
        webhooks: Webhooks | None = None,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to serve on non-loopback host {host!r}; pass allow_remote=True"
            )
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"prefix must be '' or start with '/' and not end with it: {prefix!r}")
        self._board = JobBoard(time_scale=time_scale, api_key=api_key, faults=faults)
        self._host = host
        self._port = port
        self._clock = clock
        self._prefix = prefix
        self._max_body = max_body
        # Guards the board (not thread-safe) and the request log.
        self._lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._errors: list[BaseException] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._waker_r: socket.socket | None = None
        self._waker_w: socket.socket | None = None
        self._notifier = None if webhooks is None else Notifier(webhooks, clock)

    def __repr__(self) -> str:
        state = "serving" if self._thread is not None else "stopped"
        return f"<JobServer {self.url if self._listener else '(unbound)'} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> JobServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Bind, listen and start the loop thread; then ``server.url`` is valid.

        Raises:
            RuntimeError: Already started.
            OSError: The address cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("JobServer already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._host, self._port))
            listener.listen(1024)
            listener.setblocking(False)
            self._waker_r, self._waker_w = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._waker_r.setblocking(False)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="jobwait-JobServer", daemon=True)
        self._thread.start()
        if self._notifier is not None:
            self._notifier.start()

    def close(self) -> None:
        """Stop serving: close every connection and socket and join the loop thread.

        Safe to call twice.

        Raises:
            RuntimeError: The loop or the board raised while serving (chained): a bug
                in jobwait, never anything a client sent (a bad request or script
                gets its 4xx, a vanished client is dropped).
        """
        if self._notifier is not None:
            self._notifier.close()
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake()
            thread.join()
            self._thread = None
        for sock in (self._waker_r, self._waker_w):
            if sock is not None:
                sock.close()
        self._waker_r = self._waker_w = None
        if self._errors:
            error = self._errors[0]
            self._errors.clear()
            raise RuntimeError("JobServer failed while serving") from error

    # -- public API ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:54321/v0.4``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}{self._prefix}"

    @property
    def board(self) -> JobBoard:
        """The board behind the server; hold no reference across threads without care."""
        return self._board

    def now(self) -> float:
        """The server's clock (board time)."""
        return self._clock()

    def submit(self, **script: Any) -> str:
        """Add a job at ``now()``: ``board.submit(now=server.now(), **script)``.

        Returns:
            The job id.

        Raises:
            JobScriptError: Invalid script.
        """
        with self._lock:
            job_id = self._board.submit(now=self._clock(), **script)
            self._notify()
            return job_id

    def submit_json(self, body: Mapping[str, object]) -> str:
        """Add a job from its JSON script at ``now()``, as ``POST /jobs`` would."""
        with self._lock:
            job_id = self._board.submit_json(body, now=self._clock())
            self._notify()
            return job_id

    def cancel(self, job_id: str) -> dict[str, object]:
        """Cancel a job at ``now()``; see :meth:`JobBoard.cancel`."""
        with self._lock:
            answer = self._board.cancel(job_id, now=self._clock())
            self._notify((job_id,))
            return answer

    def terminal_at(self, job_id: str) -> float:
        """Server time at which the job is (scheduled to be) terminal."""
        with self._lock:
            return self._board.terminal_at(job_id)

    @property
    def notices(self) -> list[NoticeRecord]:
        """Every webhook notice decided so far (sent, dropped, failed), in order of
        decision; empty without ``webhooks=``."""
        return [] if self._notifier is None else self._notifier.records

    @property
    def notices_pending(self) -> int:
        """Webhook notices planned and not decided yet (waiting for their delay or
        being sent; not those a cancel made void): wait until it is 0 to see every
        notice that will be sent in :attr:`notices`."""
        return 0 if self._notifier is None else self._notifier.pending

    def _notify(self, ids: tuple[str, ...] = ()) -> None:
        # Under self._lock: plan the notices of new jobs and of canceled ones.
        if self._notifier is not None:
            self._notifier.sync(self._board, ids)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, job_id: str) -> list[RequestRecord]:
        """The logged requests that name ``job_id`` (single GET, batch GET or cancel)."""
        prefix = self._prefix
        return [
            record
            for record in self.requests
            if record.path.startswith(prefix)
            and job_id in JobBoard.job_ids_in(record.path[len(prefix) :])
        ]

    # -- the loop (runs on the server thread) ----------------------------------------

    def _wake(self) -> None:
        if self._waker_w is not None:
            with contextlib.suppress(OSError):
                self._waker_w.send(b"x")

    def _run(self) -> None:
        assert self._listener is not None
        assert self._waker_r is not None
        selector = selectors.DefaultSelector()
        connections: set[_Connection] = set()
        timers: list[tuple[float, int, Callable[[], None]]] = []
        sequence = itertools.count()

        def later(delay: float, callback: Callable[[], None]) -> None:
            heapq.heappush(timers, (time.monotonic() + delay, next(sequence), callback))

        selector.register(self._listener, selectors.EVENT_READ, None)
        selector.register(self._waker_r, selectors.EVENT_READ, None)
        try:
            while not self._stopping:
                timeout = _MAX_WAIT
                if timers:
                    timeout = min(timeout, max(0.0, timers[0][0] - time.monotonic()))
                for key, mask in selector.select(timeout):
                    if key.fileobj is self._listener:
                        self._accept(selector, connections, later)
                    elif key.fileobj is self._waker_r:
                        with contextlib.suppress(OSError):
                            self._waker_r.recv(4096)
                    else:
                        connection: _Connection = key.data
                        self._serving(connection, connection.on_event, mask)
                while timers and timers[0][0] <= time.monotonic():
                    heapq.heappop(timers)[2]()
        except BaseException as exc:  # noqa: BLE001 - the thread must record it; close() re-raises
            self._errors.append(exc)
        finally:
            for connection in list(connections):
                connection.close()
            selector.unregister(self._listener)
            self._listener.close()
            selector.close()

    def _serving(self, connection: _Connection, step: Callable[[Any], None], arg: Any) -> None:
        # A fault while serving one connection is a bug: that connection is dropped
        # and the fault re-raised at close(), while every other client is served on.
        try:
            step(arg)
        except Exception as exc:  # noqa: BLE001 - recorded; close() re-raises it
            self._errors.append(exc)
            connection.close()

    def _accept(
        self,
        selector: selectors.BaseSelector,
        connections: set[_Connection],
        later: Callable[[float, Callable[[], None]], None],
    ) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. EMFILE: leave it in the backlog, try again later
                return
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connections.add(_Connection(self, sock, selector, connections, later))

    def _answer(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        prefix = self._prefix
        with self._lock:
            now = self._clock()
            if target == prefix or target.startswith((prefix + "/", prefix + "?")):
                try:
                    reply = self._board.handle(
                        method, target[len(prefix) :], headers, body, now=now
                    )
                    if method in ("POST", "PUT"):
                        self._notify(JobBoard.job_ids_in(target[len(prefix) :]))
                except Exception as exc:  # noqa: BLE001 - a board bug: answer 500, re-raise at close()
                    self._errors.append(exc)
                    reply = Reply(status_code=500, headers=(("content-type", "text/plain"),))
            else:
                reply = Reply(
                    status_code=404,
                    headers=(("content-type", "application/json"),),
                    body=b'{"error":"Not Found","message":"No such route","statusCode":404}',
                )
            self._requests.append(
                RequestRecord(
                    method=method,
                    path=target,
                    time=now,
                    status_code=None if reply.reset else reply.status_code,
                    fault=reply.fault,
                )
            )
        return reply

    def _log_refusal(self, status_code: int, method: str = "", path: str = "") -> None:
        with self._lock:
            self._requests.append(
                RequestRecord(method=method, path=path, time=self._clock(), status_code=status_code)
            )


class _Connection:
    """One client connection: h11 state, an output buffer, and what to do after flushing."""

    __slots__ = (
        "_body",
        "_close_after_flush",
        "_events",
        "_h11",
        "_later",
        "_lingering",
        "_out",
        "_owner",
        "_pending",
        "_registry",
        "_selector",
        "_server",
        "_sock",
        "_waiting",
        "closed",
    )

    def __init__(
        self,
        server: JobServer,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        registry: set[_Connection],
        later: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self._server = server
        self._sock = sock
        self._selector = selector
        self._registry = registry
        self._later = later
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        self._out = bytearray()
        self._body = bytearray()
        self._pending: h11.Request | None = None
        self._waiting = False  # a delayed reply is scheduled: stop reading meanwhile
        self._close_after_flush = False
        self._lingering = False
        self.closed = False
        self._events = selectors.EVENT_READ
        selector.register(sock, self._events, self)

    # -- events from the loop --------------------------------------------------------

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self.on_writable()
        if mask & selectors.EVENT_READ and not self.closed:
            self.on_readable()

    def on_readable(self) -> None:
        try:
            data = self._sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if self._close_after_flush:  # lingering: discard until the peer closes
            if not data:
                self.close()
            return
        self._h11.receive_data(data)
        self._process()

    def on_writable(self) -> None:
        self._flush()

    # -- request handling --------------------------------------------------------------

    def _process(self) -> None:
        while not self.closed and not self._waiting and not self._close_after_flush:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._pending = event
                self._body.clear()
                length = _content_length(event)
                if length is not None and length > self._server._max_body:
                    self._refuse(413)
                    return
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self._server._max_body:
                    self._refuse(413)
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._dispatch()
            elif isinstance(event, h11.ConnectionClosed):
                self.close()
                return

    def _dispatch(self) -> None:
        request = self._pending
        assert request is not None
        self._pending = None
        headers = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers
        ]
        reply = self._server._answer(
            request.method.decode("ascii"),
            request.target.decode("latin-1"),
            headers,
            bytes(self._body),
        )
        self._body.clear()
        if reply.delay > 0 and not reply.reset:
            self._waiting = True
            self._update_interest()
            send = functools.partial(self._server._serving, self, self._send_delayed, reply)
            self._later(reply.delay, send)
        else:
            self._send(reply)

    def _send_delayed(self, reply: Reply) -> None:
        if self.closed:
            return
        self._waiting = False
        self._send(reply)
        if not self.closed and not self._close_after_flush:
            self._process()  # a pipelined request may already be buffered

    def _send(self, reply: Reply) -> None:
        if reply.reset:
            self._reset()
            return
        body = reply.body
        headers = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in reply.headers
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        try:
            self._out += self._h11.send(
                h11.Response(status_code=reply.status_code, headers=headers)
            )
            if reply.truncate_to is not None:
                self._out += self._h11.send(h11.Data(data=body[: reply.truncate_to]))
                self._close_after_flush = True
            else:
                self._out += self._h11.send(h11.Data(data=body)) if body else b""
                self._out += self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            # e.g. the client's framing forced HTTP/1.0 rules; give up on this connection
            self._close_after_flush = True
        if not self._close_after_flush:
            if self._h11.our_state is h11.MUST_CLOSE:
                self._close_after_flush = True
            else:
                try:
                    self._h11.start_next_cycle()
                except h11.LocalProtocolError:
                    self._close_after_flush = True
        self._flush()

    def _refuse(self, status_code: int) -> None:
        """Answer a bad request with ``status_code`` and ``Connection: close``, if we still can."""
        self._server._log_refusal(status_code)
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            reason = "Bad Request" if status_code == 400 else "Request Refused"
            body = (
                f'{{"error":"{reason}","message":"HTTP {status_code}","statusCode":{status_code}}}'
            )
            response = h11.Response(
                status_code=status_code,
                headers=[
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            )
            try:
                self._out += self._h11.send(response)
                self._out += self._h11.send(h11.Data(data=body.encode()))
                self._out += self._h11.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                pass
        self._close_after_flush = True
        self._flush()

    # -- socket plumbing ---------------------------------------------------------------

    def _flush(self) -> None:
        if self.closed:
            return
        while self._out:
            try:
                sent = self._sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            del self._out[:sent]
        if self._close_after_flush and not self._out:
            self._linger()
        else:
            self._update_interest()

    def _linger(self) -> None:
        # Half-close and keep reading until the peer closes (or a short deadline),
        # so unread request bytes do not turn our FIN into an RST that eats the answer.
        if self._lingering:
            return
        self._lingering = True
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close()
            return
        self._update_interest()
        self._later(_LINGER_SECONDS, self.close)

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def _update_interest(self) -> None:
        # While a delayed reply is pending we stop reading: a peer that closes
        # meanwhile would otherwise make the socket readable (EOF) forever.
        events = (0 if self._waiting else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if self._out else 0
        )
        if events == self._events:
            return
        if not self._events:
            self._selector.register(self._sock, events, self)
        elif not events:
            self._selector.unregister(self._sock)
        else:
            self._selector.modify(self._sock, events, self)
        self._events = events

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._events:
            self._selector.unregister(self._sock)
            self._events = 0
        self._sock.close()
        self._registry.discard(self)


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return None
