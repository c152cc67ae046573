"""Receive webhook notices over HTTP and wake the waits listening on a ``Wakeup``.

A notice is a small JSON object naming a job, ``{"id": "j1", "status": "completed"}``
(``JobServer`` sends exactly that; most job APIs send something like it). The receiver
reads only the job id and calls ``wakeup.wake(job_id)``: the status in a notice is never
trusted, the poll it triggers reads the job from the API. So a forged, stale, duplicated
or reordered notice costs one poll and nothing else.

Example::

    wakeup = jobwait.Wakeup()
    with WebhookReceiver(wakeup, port=8765, secret=os.environ["HOOK_SECRET"]) as hooks:
        # register hooks.url as the job's callback URL, then:
        job = sync.wait(fetch, job_id="j1", wakeup=wakeup)

The server is the standard library's ``ThreadingHTTPServer`` on a background thread:
bounded bodies (``Content-Length`` required, ``max_body`` bytes at most), a connection
that sends nothing for ``timeout`` seconds dropped, at most ``max_connections`` served
at once (more wait in a listen backlog of 1,024, as :class:`JobServer`'s), loopback
only unless ``allow_remote=True``, and, with a ``secret``, an HMAC-SHA256 signature on
every body (:func:`sign`, the scheme GitHub uses: ``X-Jobwait-Signature:
sha256=<hex>``). Whatever a sender does, it gets an answer it can act on (202, or a
4xx that says what was wrong) or, if it vanished, nothing: the receiver prints
nothing and goes on serving.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import sys
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

from jobwait import Wakeup
from jobwait._plumbing import check_count, check_number, loads_json

from ._http.loopback import is_loopback

__all__ = ["SIGNATURE_HEADER", "WebhookReceiver", "notice_id", "sign"]

#: The header carrying a notice's signature: ``sha256=`` and the hex HMAC-SHA256 of the
#: body under the shared secret.
SIGNATURE_HEADER: Final = "X-Jobwait-Signature"
_MAX_BODY: Final = 4096
_TIMEOUT: Final = 10.0
_MAX_CONNECTIONS: Final = 64
# How often the serving thread looks for close() (and, with every slot busy, for a
# free one): keeps close() quick.
_POLL: Final = 0.05
log = logging.getLogger("jobwait")


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``"sha256=" + hex(HMAC-SHA256)``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def notice_id(body: bytes, field: str = "id") -> str:
    """The job id a notice names: the string at ``field`` of a JSON object.

    Raises:
        ValueError: The body is not a JSON object with a non-empty string there, or
            nests deeper than 128 levels (the message says which).
    """
    try:
        notice = loads_json(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, nested too deep
        raise ValueError(f"the notice is not JSON: {exc}") from exc
    if not isinstance(notice, dict):
        raise ValueError(  # noqa: TRY004 - one error type for every bad notice
            f"the notice must be a JSON object, got {type(notice).__name__}"
        )
    job_id = notice.get(field)
    if not isinstance(job_id, str) or not job_id:
        raise ValueError(f"the notice has no job id: {field!r} must be a non-empty string")
    return job_id


class WebhookReceiver:
    """An HTTP endpoint that turns each notice into ``wakeup.wake(job_id)``.

    Args:
        wakeup: The :class:`~jobwait.Wakeup` your waits listen on.
        host: Address to bind (default ``127.0.0.1``); loopback only unless
            ``allow_remote=True``.
        port: Port to bind; 0 (default) picks a free one (read :attr:`url`).
        path: The one path notices are POSTed to (default ``/``); others get 404.
        secret: When set, every notice must carry :data:`SIGNATURE_HEADER` with the
            body's HMAC-SHA256 under it (401 otherwise). It never appears in reprs,
            logs or errors.
        field: The JSON key holding the job id (default ``"id"``).
        max_body: Largest body accepted, in bytes (default 4096; 413 above it).
        timeout: Seconds a connection may send nothing, between requests or in the
            middle of one, before it is dropped (default 10; 408 mid-body).
        max_connections: Connections served at once (default 64), one thread each;
            more wait in the listen backlog until one ends, so a burst is served in
            turn, never refused, and stalled senders cost at most ``timeout``.
        allow_remote: Allow binding a non-loopback address.

    Raises:
        ValueError: A non-loopback ``host`` without ``allow_remote``, a ``path``
            that does not start with ``/``, or a ``max_body``, ``timeout`` or
            ``max_connections`` out of range.

    Answers: 202 for a notice taken (even for a job no wait holds: the sender cannot
    know); 400 for a body that names no job (not JSON, nested deeper than 128 levels,
    no string at ``field``), a ``Content-Length`` that is not one decimal number, or a
    body shorter than it; 401 for a bad or missing signature; 404 for another path;
    405 for another method; 408 for a body that stopped coming; 411 without a
    ``Content-Length`` (or with a ``Transfer-Encoding``); 413 above ``max_body``; 414
    and 431 for a request line or headers too long. Use it as a context manager;
    :attr:`received` counts the notices taken, :attr:`rejected` the 4xx answers.
    """

    def __init__(
        self,
        wakeup: Wakeup,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
        secret: str | None = None,
        field: str = "id",
        max_body: int = _MAX_BODY,
        timeout: float = _TIMEOUT,
        max_connections: int = _MAX_CONNECTIONS,
        allow_remote: bool = False,
    ) -> None:
        if not isinstance(wakeup, Wakeup):
            raise TypeError(f"wakeup must be a jobwait.Wakeup, got {type(wakeup).__name__}")
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to listen on non-loopback host {host!r}; pass allow_remote=True"
            )
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        self._wakeup = wakeup
        self._host = host
        self._port = port
        self._path = path
        self._key = None if secret is None else secret.encode()
        self._field = field
        self._max_body = check_count("WebhookReceiver(max_body=...)", max_body)
        self._timeout = check_number("WebhookReceiver(timeout=...)", timeout, minimum=0.001)
        self._max_connections = check_count(
            "WebhookReceiver(max_connections=...)", max_connections, minimum=1
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._count_lock = threading.Lock()  # handler threads count concurrently
        self.received = 0
        self.rejected = 0

    @property
    def url(self) -> str:
        """Where to POST notices, e.g. ``http://127.0.0.1:54321/``."""
        if self._server is None:
            raise RuntimeError("WebhookReceiver is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._server.server_address[1]}{self._path}"

    def start(self) -> None:
        """Bind and serve on a background thread.

        Raises:
            RuntimeError: Already started.
            OSError: The address cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError("WebhookReceiver already started")
        server = _Server((self._host, self._port), _Handler, self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            args=(_POLL,),
            name="jobwait-WebhookReceiver",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "(stopped)"
        signed = " signed" if self._key is not None else ""
        return f"<WebhookReceiver {where}{signed} received={self.received}>"

    # -- called from the handler threads --------------------------------------------

    def _take(self, path: str, headers: Any, body: bytes) -> int:
        if path.split("?", 1)[0] != self._path:
            return 404
        if self._key is not None:
            given = headers.get(SIGNATURE_HEADER) or ""
            if not hmac.compare_digest(given.encode(), sign(self._key, body).encode()):
                return 401
        try:
            job_id = notice_id(body, self._field)
        except ValueError:
            return 400
        with self._count_lock:
            self.received += 1
        self._wakeup.wake(job_id)
        return 202


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen backlog, as JobServer's: a burst of senders waits in the kernel's
    # queue instead of having its SYNs dropped (a 5-deep backlog made 30 senders at
    # once wait for the 1 s retransmit).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: Any, owner: WebhookReceiver) -> None:
        self.owner = owner
        # One slot per connection served: a connection is accepted only with a free
        # slot, so the threads are bounded and the rest wait in the backlog.
        self._slots = threading.BoundedSemaphore(owner._max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        if not self._slots.acquire(timeout=_POLL):
            raise OSError("every connection slot is busy")  # serve_forever tries again
        try:
            return super().get_request()
        except BaseException:
            self._slots.release()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: it will not release the slot
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that resets, stalls or vanishes mid-answer is the sender's business:
        # nothing to print (socketserver would print a traceback). Anything else is a
        # bug in this module, and is logged with its traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        log.error("WebhookReceiver: unexpected error serving a request", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a sender may post many notices
    # A request line that cannot be parsed is answered with a status line too (the
    # default, HTTP/0.9, would send a bare HTML page).
    default_request_version = "HTTP/1.0"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Each read or write waits at most this long, so a peer that stops sending
        # (mid-request or between requests) is dropped.
        self.connection.settimeout(self.server.owner._timeout)

    def do_POST(self) -> None:
        owner = self.server.owner
        refused, length = _framing(self.headers, owner._max_body)
        if refused:
            self._reply(refused, close=True)  # where the body ends is unknown
            return
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._reply(408, close=True)
            return
        if len(body) < length:  # the sender stopped sending mid-body
            self._reply(400, close=True)
            return
        self._reply(owner._take(self.path, self.headers, body))

    def do_GET(self) -> None:
        self._reply(405)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The request parser's own refusals (400, 414, 431; 501 for an unknown method,
        # 505 for an unknown HTTP version): the sender is at fault either way, so the
        # answer is a 4xx it can act on.
        if code == 501:
            self._reply(405, close=True)
            return
        with self.server.owner._count_lock:
            self.server.owner.rejected += 1
        super().send_error(code if code < 500 else 400, message, explain)

    def _reply(self, status: int, *, close: bool = False) -> None:
        owner = self.server.owner
        if status != 202:
            with owner._count_lock:
                owner.rejected += 1
        self.send_response_only(status)
        self.send_header("Content-Length", "0")
        if status == 405:
            self.send_header("Allow", "POST")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no request lines on stderr; counts are on the receiver


def _framing(headers: Message, max_body: int) -> tuple[int, int]:
    """Where a notice's body ends: ``(0, length)``, or ``(status, 0)`` to refuse it with.

    One ``Content-Length`` of ASCII digits is the only framing taken (duplicates that
    agree count as one, as h11 reads them); ``str.isdigit`` alone would pass ``"²"``,
    and ``int()`` of 5,000 digits raises, so both are checked here first.
    """
    values = {value.strip() for value in headers.get_all("Content-Length") or ()}
    if headers.get("Transfer-Encoding") is not None or not values:
        return 411, 0
    if len(values) > 1:
        return 400, 0
    text = values.pop()
    if not (text.isascii() and text.isdigit()):
        return 400, 0
    if len(text) > len(str(max_body)) or int(text) > max_body:
        return 413, 0
    return 0, int(text)
