"""Benchmark of the webhook receiver under a burst (issue 20): N senders POST at once.

Run it directly (it is not a test; pytest skips ``tests/bench``)::

    python tests/bench/bench_webhook_burst.py [--senders 30] [--rounds 10]
    python tests/bench/bench_webhook_burst.py --source OLD/webhook.py   # another version

A ``WebhookReceiver`` runs in its own process (``multiprocessing`` spawn, so the
senders do not share its GIL); this process starts ``--senders`` threads that wait on
a barrier, then each connects and POSTs one notice over a raw socket and reads the
answer. The figure is each sender's latency from the barrier to the answer's status
line: median / p90 / max over every sender of every round, and how many waited a
second or more (the kernel's retransmit of a SYN the listen backlog dropped). With
``--source`` the receiver class comes from that file (e.g. the version before this
change, saved with ``git show REV:adapters/webhook.py > /tmp/webhook_old.py``).

It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import platform
import socket
import statistics
import threading
import time
from typing import Any


def _receiver_class(source: str | None) -> Any:
    if source is None:
        from jobwait.adapters.webhook import WebhookReceiver

        return WebhookReceiver
    spec = importlib.util.spec_from_file_location("webhook_under_test", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WebhookReceiver


def _serve(source: str | None, ports: Any, stop: Any) -> None:
    from jobwait import Wakeup

    with _receiver_class(source)(Wakeup()) as receiver:
        ports.put(int(receiver.url.rsplit(":", 1)[1].rstrip("/")))
        stop.wait()


def _send(port: int, index: int, barrier: threading.Barrier, out: list[float]) -> None:
    body = f'{{"id": "s{index}"}}'.encode()
    request = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    barrier.wait()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    if data.startswith(b"HTTP/1.1 202"):
        out.append(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--senders", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--source", help="load WebhookReceiver from this file instead")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    stop = context.Event()
    server = context.Process(target=_serve, args=(args.source, ports, stop))
    server.start()
    try:
        port = ports.get(timeout=30)
        latencies: list[float] = []
        for _ in range(args.rounds):
            barrier = threading.Barrier(args.senders)
            out: list[float] = []
            threads = [
                threading.Thread(target=_send, args=(port, i, barrier, out))
                for i in range(args.senders)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            latencies += out
            time.sleep(0.5)  # let the receiver's threads end between rounds
    finally:
        stop.set()
        server.join(10)
    total = args.senders * args.rounds
    ordered = sorted(latencies)
    print(
        f"python {platform.python_version()}, {platform.machine()}, receiver: "
        f"{args.source or 'jobwait.adapters.webhook'}"
    )
    print(
        f"{args.senders} senders at once x {args.rounds} rounds: "
        f"{len(latencies)}/{total} answered 202"
    )
    if ordered:
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        slow = sum(x >= 1.0 for x in ordered)
        print(
            f"latency median {statistics.median(ordered) * 1000:.1f} ms, "
            f"p90 {p90 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms; "
            f"{slow} of {len(ordered)} waited >= 1 s"
        )


if __name__ == "__main__":
    main()
