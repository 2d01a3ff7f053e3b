"""The HTTPS server shared by ``kubeharden audit serve`` and ``kubeharden webhook``.

TLS 1.2+ from cert/key files (optionally client certificates against a CA), reloaded when the files
change so a rotated certificate needs no restart (a broken new pair keeps the old one, with a log
line); the handshake happens in the connection's own thread, so a slow client never holds up
accept(). Connections are tracked so a shutdown can drain: stop accepting, let requests in flight
finish, then close the idle keep-alive connections. ``ConnectionLimits`` bounds them: a connection cap
(one thread each), and a deadline on each phase of a connection (handshake, headers, idle keep-alive,
request) that a hostile or broken client cannot stretch by trickling bytes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any


class ReloadingTLS:
    """An SSLContext from cert/key(/client CA) files, rebuilt when one of them changes."""

    def __init__(self, cert: str, key: str, client_ca: str | None = None, *, name: str = "kubeharden",
                 log: Callable[[str], object] | None = None, check_interval: float = 0.0) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self.name = name
        self.log = log or (lambda text: sys.stderr.write(text + "\n"))
        self.check_interval = check_interval  # 0: stat the files on every new connection
        self.reloads = 0
        self.failures = 0
        self._stamp: tuple[int, ...] = ()
        self._checked = 0.0
        self._lock = threading.Lock()
        self.context = self._load()  # a broken pair at start-up is an error for the caller

    def _mtimes(self) -> tuple[int, ...]:
        return tuple(os.stat(p).st_mtime_ns for p in (self.cert, self.key, self.client_ca) if p)

    def _load(self) -> ssl.SSLContext:
        stamp = self._mtimes()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.client_ca)
        self._stamp = stamp
        return context

    def reload_if_changed(self) -> bool:
        now = time.monotonic()
        if self.check_interval and now - self._checked < self.check_interval:
            return False
        with self._lock:
            self._checked = now
            try:
                if self._mtimes() == self._stamp:
                    return False
                self.context = self._load()
                self.reloads += 1
                return True
            except (OSError, ssl.SSLError) as exc:
                # A half-written pair (the key renamed before the cert) is tried again on the next change.
                self.failures += 1
                self.log(f"{self.name}: keeping the old certificate: {exc}")
                with contextlib.suppress(OSError):
                    self._stamp = self._mtimes()
                return False

    def current(self) -> ssl.SSLContext:
        self.reload_if_changed()
        return self.context


class ConnectionLimits:
    """What one client may hold: a connection slot, and each phase of a connection for a bounded time.

    A reaper thread shuts a connection down when its phase outlives its deadline: a TLS handshake that
    does not finish, headers trickled byte by byte (slowloris), a keep-alive connection idle too long, a
    request whose body stalls or whose answer the client never reads. At the connection cap a new
    connection evicts the oldest one that is not in a request (idle, handshaking or sending headers), so
    idle connections cannot starve real traffic; when every slot is in a request it is refused.
    """

    def __init__(self, max_connections: int = 512, handshake_timeout: float = 10.0,
                 header_timeout: float = 10.0, idle_timeout: float | None = None,
                 request_timeout: float | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.header_timeout = header_timeout  # from a request's first byte to the end of its headers
        self.idle_timeout = idle_timeout  # keep-alive wait for the next request (None: the handler's own)
        self.request_timeout = request_timeout  # end of headers to end of answer (None: unbounded)

    def deadline(self, phase: str, now: float) -> float | None:
        seconds = {HANDSHAKE: self.handshake_timeout, IDLE: self.idle_timeout, HEADERS: self.header_timeout,
                   ACTIVE: self.request_timeout}[phase]
        return now + seconds if seconds is not None else None


HANDSHAKE, IDLE, HEADERS, ACTIVE = "handshake", "idle", "headers", "active"


class _Connection:
    __slots__ = ("deadline", "phase", "since", "sock")

    def __init__(self, sock: socket.socket, phase: str, since: float, deadline: float | None) -> None:
        self.sock, self.phase, self.since, self.deadline = sock, phase, since, deadline


class _PhaseTracking:
    """Mixed into the server's handler class: tells the server which phase a connection is in."""

    server: TLSServer
    request: socket.socket
    rfile: Any
    close_connection: bool

    def handle_one_request(self) -> None:
        self.server.connection_phase(self.request, IDLE)
        try:
            first = self.rfile.peek(1)  # wait for a request's first byte without taking it
        except (OSError, ValueError):
            first = b""
        if not first:
            self.close_connection = True
            return
        self.server.connection_phase(self.request, HEADERS)
        super().handle_one_request()  # type: ignore[misc]

    def parse_request(self) -> bool:
        ok: bool = super().parse_request()  # type: ignore[misc]  # reads the headers
        self.server.connection_phase(self.request, ACTIVE)
        return ok


class TLSServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over TLS, with the connections it serves tracked for draining and bounded by
    ``ConnectionLimits`` (one thread per connection, so the connection cap is the thread cap)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Any, tls: ReloadingTLS,
                 limits: ConnectionLimits | None = None, *, reuse_port: bool = False) -> None:
        self.tls = tls
        self.limits = limits or ConnectionLimits()
        self.allow_reuse_port = reuse_port  # pre-forked workers each listen on the same port
        self.draining = False
        self.in_flight = 0
        self.refused = 0  # connections refused at the cap (every slot in a request)
        self.evicted = 0  # connections closed at the cap to make room, or when a phase outlived its deadline
        self.timed_out = 0
        self._connections: dict[socket.socket, _Connection] = {}
        self._state = threading.Condition()
        self._closed = threading.Event()
        handler = type(handler.__name__, (_PhaseTracking, handler), {})
        super().__init__(address, handler)
        self._reaper = threading.Thread(target=self._reap, name="tls-reaper", daemon=True)
        self._reaper.start()

    def server_close(self) -> None:
        super().server_close()
        self._closed.set()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Headers and body may leave in two writes: without this, Nagle's algorithm holds the second until
        # the client's delayed ACK (40 ms) on every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.current().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    @property
    def connections(self) -> int:
        with self._state:
            return len(self._connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        now = time.monotonic()
        victim = None
        with self._state:
            if len(self._connections) >= self.limits.max_connections:
                waiting = [c for c in self._connections.values() if c.phase != ACTIVE]
                if not waiting:
                    self.refused += 1
                    self.shutdown_request(request)
                    return
                victim = min(waiting, key=lambda c: c.since)
                del self._connections[victim.sock]  # its slot is the new connection's from now on
                self.evicted += 1
            self._connections[request] = _Connection(request, HANDSHAKE, now,
                                                     self.limits.deadline(HANDSHAKE, now))
        if victim is not None:
            _cut(victim.sock)
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            try:
                request.settimeout(self.limits.handshake_timeout)
                request.do_handshake()  # in this connection's thread: a slow client never holds up accept()
            except (OSError, ValueError):
                self.shutdown_request(request)
                return
            request.settimeout(None)  # the handler sets its own
            super().process_request_thread(request, client_address)
        finally:
            with self._state:
                self._connections.pop(request, None)
                self._state.notify_all()

    def connection_phase(self, sock: socket.socket, phase: str) -> None:
        now = time.monotonic()
        with self._state:
            conn = self._connections.get(sock)
            if conn is not None:
                conn.phase, conn.since, conn.deadline = phase, now, self.limits.deadline(phase, now)

    def _reap(self) -> None:
        while True:
            closed = self._closed.wait(0.25)
            now = time.monotonic()
            with self._state:
                late = [c for c in self._connections.values() if c.deadline is not None and c.deadline <= now]
                for conn in late:
                    conn.deadline = None  # cut once
                self.timed_out += len(late)
                if closed and not self._connections:
                    return
            for conn in late:
                _cut(conn.sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that fails the handshake or hangs up is not our error: no traceback on stderr.
        exc = sys.exc_info()[1]
        if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError | OSError):
            return
        super().handle_error(request, client_address)

    def request_started(self) -> None:
        with self._state:
            self.in_flight += 1

    def request_finished(self) -> None:
        with self._state:
            self.in_flight -= 1
            self._state.notify_all()

    def drain(self, timeout: float) -> bool:
        """Stop accepting (``shutdown`` must have been called), wait for requests in flight, then close
        the idle connections. True when nothing was cut off."""
        self.draining = True
        self.server_close()
        deadline = time.monotonic() + timeout
        with self._state:
            while self.in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._state.wait(min(left, 0.1))
            clean = self.in_flight == 0
            idle = list(self._connections)
        for conn in idle:  # keep-alive connections waiting for a next request that will not come
            _cut(conn)
        return clean


def _cut(sock: socket.socket) -> None:
    """Shut a connection down under the thread blocked on it (its read or write returns at once); the
    socket itself is closed by that thread. Below the TLS layer, so the TLS object stays for that thread."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
