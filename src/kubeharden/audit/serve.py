"""``kubeharden audit serve``: the API server's audit webhook backend (HTTPS, EventList batches).

The API server must never wait on us (a slow webhook makes it buffer, then drop or block): a POST
is read, put on a bounded queue and answered at once; one consumer thread judges the batches in
order. When the queue is full the batch is refused with 503 (the API server retries with
backoff), counted, and a log line says so. TLS from cert/key files, reloaded when they change;
optional client-certificate authentication of the API server (--client-ca). SIGTERM/SIGINT (or
``stop()``) stops accepting, drains the queue and reports.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import orjson

from kubeharden.audit.reader import ReaderLimits, ReaderStats, expand
from kubeharden.audit.runner import AuditRun
from kubeharden.tlsserver import ReloadingTLS, TLSServer

MAX_BODY = 64 * 1024 * 1024


@dataclass
class ServeStats:
    batches: int = 0
    events: int = 0
    dropped_batches: int = 0
    rejected: int = 0  # not an EventList, too large, bad JSON
    latencies: list[float] = field(default_factory=list)


class WebhookBackend:
    def __init__(self, run: AuditRun, listen: tuple[str, int], cert: str, key: str, *, client_ca: str | None = None,
                 queue_size: int = 256, limits: ReaderLimits | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.run = run
        self.stats = ServeStats()
        self.reader_stats = ReaderStats()
        self.limits = limits or ReaderLimits()
        self.queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(maxsize=queue_size)
        self.log = log or (lambda text: sys.stderr.write(text + "\n"))
        self._last_full_log = 0.0
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # TLSServer sets TCP_NODELAY (no 40 ms delayed-ACK wait per response)

            def log_message(self, format: str, *args: Any) -> None:
                return  # one line per batch would drown the real messages

            def do_POST(self) -> None:
                started = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY:
                    backend.stats.rejected += 1
                    self._answer(413 if length > MAX_BODY else 400, b'{"error":"bad length"}')
                    return
                body = self.rfile.read(length)
                code = backend.offer(body)
                self._answer(code, b"{}" if code == 200 else b'{"error":"queue full"}')
                with backend._lock:
                    if len(backend.stats.latencies) < 100_000:
                        backend.stats.latencies.append(time.perf_counter() - started)

            def _answer(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if code == 503:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(body)

        tls = ReloadingTLS(cert, key, client_ca, name="kubeharden audit serve", log=self.log)
        self.server = TLSServer(listen, Handler, tls)
        self.address = self.server.server_address
        self._consumer = threading.Thread(target=self._consume, name="audit-consumer", daemon=True)
        self._server_thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                               name="audit-webhook", daemon=True)

    def offer(self, body: bytes) -> int:
        with self._lock:
            self.stats.batches += 1
            number = self.stats.batches
        try:
            self.queue.put_nowait((number, body))
        except queue.Full:
            with self._lock:
                self.stats.dropped_batches += 1
                dropped = self.stats.dropped_batches
            now = time.monotonic()
            if now - self._last_full_log > 5:
                self._last_full_log = now
                self.log(f"kubeharden audit serve: queue full ({self.queue.maxsize} batches): batch {number} "
                         f"refused with 503; {dropped} refused so far")
            return 503
        return 200

    def _consume(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            number, body = item
            name = f"webhook batch {number}"
            try:
                obj = orjson.loads(body)
            except orjson.JSONDecodeError:
                self.stats.rejected += 1
                self.reader_stats.problem("non-JSON batches", name, None, "not JSON: skipped", self.limits)
                continue
            before = self.reader_stats.events
            for event in expand(obj, name, None, self.reader_stats, self.limits):
                self.run.feed(event)
            self.stats.events += self.reader_stats.events - before

    def start(self) -> None:
        self._consumer.start()
        self._server_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, drain what is queued (bounded by timeout), flush pending stages."""
        self.server.shutdown()
        self.server.server_close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(None, timeout=0.1)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._consumer.join(max(0.0, deadline - time.monotonic()))
        self.run.flush()
