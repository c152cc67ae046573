"""A hostile HTTP server (and client) made from the standard library: raw sockets on
127.0.0.1.

Each connection is served by one thread that reads one request head (and body, if
declared) and hands it to the behaviour under test, which writes whatever bytes it
likes: a valid answer, half a status line, a gzip bomb, nothing at all. The server
never uses jobwait's own ``JobServer`` nor h11: what it sends is exactly what the
behaviour writes.

The client half, :func:`talk`, sends raw bytes to jobwait's own servers (the webhook
receiver, the job server) and reports the status of each answer, or that none came.

Bounded: a behaviour that sleeps or drips stops as soon as the server closes (every
pause waits on the stop event), and ``close()`` shuts every connection down and joins
every thread, so a test that breaks its promise still ends.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    index: int  # 0 for the first request this server saw

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Conn:
    """What a behaviour writes to."""

    sock: socket.socket
    stop: threading.Event
    request: Request

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.stop.wait(0)  # the client went away: nothing more to say

    def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the server is closing; ``False`` when it is."""
        return not self.stop.wait(seconds)

    def respond(
        self,
        status: int = 200,
        body: bytes | str | Any = b"",
        headers: list[tuple[str, str]] | None = None,
        reason: str = "OK",
    ) -> None:
        """A well-formed answer with ``Content-Length`` (a non-bytes body is JSON)."""
        if isinstance(body, str):
            payload = body.encode()
        elif isinstance(body, bytes | bytearray):
            payload = bytes(body)
        else:
            payload = json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {reason}"]
        names = {k.lower() for k, _ in headers or []}
        if "content-type" not in names:
            head.append("Content-Type: application/json")
        if "content-length" not in names:
            head.append(f"Content-Length: {len(payload)}")
        head += [f"{k}: {v}" for k, v in headers or []]
        head.append("Connection: close")
        self.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), not a clean FIN."""
        with suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        self.sock.close()


Behaviour = Callable[[Conn], None]


@dataclass
class HostileServer:
    behaviour: Behaviour
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accept = threading.Thread(target=self._serve, name="hostile-accept", daemon=True)
        self._accept.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/jobs/j1") -> str:
        return self.base + path

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:  # shut down by close()
                return
            thread = threading.Thread(
                target=self._handle, args=(sock,), name="hostile-conn", daemon=True
            )
            with self._lock:
                self._socks.append(sock)
                self._threads.append(thread)
            thread.start()

    def _handle(self, sock: socket.socket) -> None:
        try:
            request = self._read(sock)
            if request is not None:
                self.behaviour(Conn(sock, self._stop, request))
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sock.close()

    def _read(self, sock: socket.socket) -> Request | None:
        sock.settimeout(5.0)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        pairs = [(k, v) for k, v in headers]
        length = next((int(v) for k, v in pairs if k.lower() == "content-length"), 0)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        with self._lock:
            request = Request(method, target, pairs, body, len(self.requests))
            self.requests.append(request)
        return request

    def close(self) -> None:
        self._stop.set()
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._accept.join(5)
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(5)


@contextmanager
def serving(behaviour: Behaviour) -> Iterator[HostileServer]:
    server = HostileServer(behaviour)
    try:
        yield server
    finally:
        server.close()


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- a hostile client: raw bytes to one of jobwait's own servers -------------------------

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n")


@dataclass
class Exchange:
    """What a raw client saw: the status of each answer, in order, and whether the
    server closed the connection (EOF or reset) before the client stopped reading."""

    statuses: list[int]
    closed: bool
    seconds: float
    data: bytes = b""


def talk(
    port: int,
    *steps: bytes | float,
    finish: str = "read",
    answers: int = 1,
    read_for: float = 3.0,
) -> Exchange:
    """Send ``steps`` (bytes are sent, numbers are pauses in seconds) to
    ``127.0.0.1:port``, then ``finish``: ``"read"`` reads until ``answers`` answers
    came (or EOF, or ``read_for`` seconds); ``"half-close"`` shuts the sending side
    first, then reads; ``"reset"`` closes with a TCP reset and reads nothing.
    """
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=read_for)
    try:
        for step in steps:
            if isinstance(step, bytes):
                with suppress(OSError):  # the server may refuse early: read its answer
                    sock.sendall(step)
            else:
                time.sleep(step)
        if finish == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            return Exchange([], False, time.monotonic() - started)
        if finish == "half-close":
            with suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        data = b""
        closed = False
        deadline = started + read_for
        while len(_heads(data)) < answers:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:  # reset by the server
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
        return Exchange(_heads(data), closed, time.monotonic() - started, data)
    finally:
        sock.close()


def _heads(data: bytes) -> list[int]:
    # The status of each answer whose head is complete.
    return [
        int(match.group(1))
        for match in _STATUS_LINE.finditer(data)
        if data.find(b"\r\n\r\n", match.start()) != -1
    ]


def post(path: str, body: bytes, *extra: str, length: str | bool = True) -> bytes:
    """A POST request's bytes: ``Content-Length`` is ``len(body)``, or the text
    ``length`` gives, or absent (``length=False``); ``extra`` header lines are added
    as given."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if length is True:
        lines.append(f"Content-Length: {len(body)}")
    elif length is not False:
        lines.append(f"Content-Length: {length}")
    lines += extra
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
