"""The HTTPS server shared by ``kubeharden audit serve`` and ``kubeharden webhook``.

TLS 1.2+ from cert/key files (optionally client certificates against a CA), reloaded when the files
change so a rotated certificate needs no restart (a broken new pair keeps the old one, with a log
line); the handshake happens in the connection's own thread, so a slow client never holds up
accept(). Connections are tracked so a shutdown can drain: stop accepting, let requests in flight
finish, then close the idle keep-alive connections.
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


class TLSServer(ThreadingHTTPServer):
    """ThreadingHTTPServer over TLS, with the connections it serves tracked for draining."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: Any, tls: ReloadingTLS) -> None:
        self.tls = tls
        self.draining = False
        self.in_flight = 0
        self._connections: set[socket.socket] = set()
        self._state = threading.Condition()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Headers and body may leave in two writes: without this, Nagle's algorithm holds the second until
        # the client's delayed ACK (40 ms) on every keep-alive request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls.current().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._state:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._state:
                self._connections.discard(request)
                self._state.notify_all()

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
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        return clean
