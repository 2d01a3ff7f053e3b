"""``kubeharden webhook --workers N``: pre-forked processes sharing one port through SO_REUSEPORT.

The controls hold the GIL for the whole of a review, so one process saturates one core; N processes
each listen on the same port (the kernel spreads the connections over them), each with its own TLS
context, certificate reload, metrics and cluster context. The catalog and evaluator are built once in
the parent before the fork (copy-on-write); anything with threads (the server, a cluster watch) is made
in each child. The parent supervises: a worker that dies is restarted (bounded), SIGTERM or SIGINT is
passed to every worker, which drains its reviews in flight, and the workers still alive after the drain
time are killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Stoppable(Protocol):
    def start(self) -> None: ...

    def stop(self, timeout: float = 30.0) -> bool: ...


MAX_RESTARTS = 5  # within RESTART_WINDOW: a worker that keeps dying is a broken configuration, not bad luck
RESTART_WINDOW = 60.0
KILL_GRACE = 5.0  # seconds beyond the drain time before the workers still alive are killed


def reserve_port(host: str, port: int) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket holding the port for the workers (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Supervisor:
    def __init__(self, count: int, make_server: Callable[[int], Stoppable], drain_timeout: float,
                 log: Callable[[str], object]) -> None:
        if count < 1:
            raise ValueError("at least one worker")
        self.count = count
        self.make_server = make_server
        self.drain_timeout = drain_timeout
        self.log = log
        self.stop = threading.Event()
        self.workers: dict[int, int] = {}  # pid -> worker index
        self._restarts: list[float] = []

    def _spawn(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                code = _worker(self.make_server, index, self.drain_timeout)
            finally:
                os._exit(code)
        self.workers[pid] = index

    def run(self) -> int:
        """Start the workers and supervise them until a signal; 0 when every worker drained cleanly."""
        previous = {sig: signal.signal(sig, lambda *_: self.stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        failed = False
        try:
            for index in range(self.count):
                self._spawn(index)
            while not self.stop.wait(0.2):
                failed = self._reap_and_restart() or failed
                if failed:
                    break
            return self._shutdown() | failed
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _reap_and_restart(self) -> bool:
        """Restart the workers that died; True when they die too often to go on."""
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return False
            index = self.workers.pop(pid, None)
            if index is None:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW] + [now]
            self.log(f"kubeharden webhook: worker {index} (pid {pid}) exited ({_status_text(status)})")
            if len(self._restarts) > MAX_RESTARTS:
                self.log(f"kubeharden webhook: workers died {len(self._restarts)} times in "
                         f"{RESTART_WINDOW:.0f} s: stopping")
                return True
            self._spawn(index)
        return False

    def _shutdown(self) -> int:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.drain_timeout + KILL_GRACE
        code = 0
        while self.workers and time.monotonic() < deadline:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
                continue
            if self.workers.pop(pid, None) is not None and (not os.WIFEXITED(status) or os.WEXITSTATUS(status)):
                code = 1
        for pid in list(self.workers):  # still draining after the grace: cut off
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.workers.pop(pid, None)
            code = 1
        return code


def _worker(make_server: Callable[[int], Stoppable], index: int, drain_timeout: float) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    server = make_server(index)
    server.start()
    while not stop.wait(0.5):
        if os.getppid() != parent:  # the supervisor was killed: do not serve on unsupervised
            break
    return 0 if server.stop(timeout=drain_timeout) else 1


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {os.WEXITSTATUS(status)}"
