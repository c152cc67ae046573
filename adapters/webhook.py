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
bounded bodies (``Content-Length`` required, ``max_body`` bytes at most), a read
timeout per connection, loopback only unless ``allow_remote=True``, and, with a
``secret``, an HMAC-SHA256 signature on every body (:func:`sign`, the scheme GitHub
uses: ``X-Jobwait-Signature: sha256=<hex>``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final

from jobwait import Wakeup

__all__ = ["SIGNATURE_HEADER", "WebhookReceiver", "notice_id", "sign"]

#: The header carrying a notice's signature: ``sha256=`` and the hex HMAC-SHA256 of the
#: body under the shared secret.
SIGNATURE_HEADER: Final = "X-Jobwait-Signature"
_MAX_BODY: Final = 4096


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``"sha256=" + hex(HMAC-SHA256)``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def notice_id(body: bytes, field: str = "id") -> str:
    """The job id a notice names: the string at ``field`` of a JSON object.

    Raises:
        ValueError: The body is not a JSON object with a non-empty string there (the
            message says which).
    """
    try:
        notice = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
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
        allow_remote: Allow binding a non-loopback address.

    Raises:
        ValueError: A non-loopback ``host`` without ``allow_remote``, or a ``path``
            that does not start with ``/``.

    Answers: 202 for a notice taken (even for a job no wait holds: the sender cannot
    know), 400 for a body that names no job, 401 for a bad or missing signature, 404,
    405, 411 (no ``Content-Length``), 413. Use it as a context manager; :attr:`received`
    counts the notices taken.
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
        allow_remote: bool = False,
    ) -> None:
        if not isinstance(wakeup, Wakeup):
            raise TypeError(f"wakeup must be a jobwait.Wakeup, got {type(wakeup).__name__}")
        if not allow_remote and not _is_loopback(host):
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
        self._max_body = max_body
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
            args=(0.05,),  # how often it looks for close(): keeps close() quick
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

    def __init__(self, address: tuple[str, int], handler: Any, owner: WebhookReceiver) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a sender may post many notices
    timeout = 10.0  # a peer that stops sending mid-request is dropped
    server: _Server

    def do_POST(self) -> None:
        owner = self.server.owner
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411, owner)
            return
        if int(length) > owner._max_body:
            self._reply(413, owner)
            return
        body = self.rfile.read(int(length))
        self._reply(owner._take(self.path, self.headers, body), owner)

    def do_GET(self) -> None:
        self._reply(405, self.server.owner)

    do_PUT = do_DELETE = do_PATCH = do_GET  # noqa: N815

    def _reply(self, status: int, owner: WebhookReceiver) -> None:
        if status != 202:
            with owner._count_lock:
                owner.rejected += 1
        self.send_response_only(status)
        self.send_header("Content-Length", "0")
        if status in (411, 413):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no request lines on stderr; counts are on the receiver


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
