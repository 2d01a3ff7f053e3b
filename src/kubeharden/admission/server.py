"""``kubeharden webhook``: AdmissionReview v1 over HTTPS (POST /validate), with /healthz, /readyz, /metrics.

The stdlib threading server (kubeharden.tlsserver, shared with ``audit serve``) with HTTP/1.1 keep-alive:
the API server keeps a pool of connections open, and the time of a review is the controls' time, not the
HTTP layer's (benchmarks/bench_webhook.py measures both). Every review is answered within its deadline
(``timeout_seconds`` of the webhook configuration, less a margin): an evaluation that has not finished
by then is answered by the timeout policy and counted. A body over the size limit, a chunked body or a
malformed AdmissionReview gets an HTTP error with the reason, never a crash.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

import orjson

from kubeharden.admission.evaluate import AdmissionEvaluator, Decision
from kubeharden.admission.metrics import Metrics
from kubeharden.admission.review import DEFAULT_TIMEOUT_SECONDS, ReviewError, parse_review, response_body
from kubeharden.model import internal_error_site
from kubeharden.tlsserver import ConnectionLimits, ReloadingTLS, TLSServer

MAX_BODY = 8 * 1024 * 1024  # an object is at most ~1.5 MiB in etcd; a review carries object and oldObject
DEADLINE_MARGIN = 0.5  # seconds kept for the answer to travel back before the API server gives up
DRAIN_LIMIT = 64 * 1024 * 1024  # an over-limit body up to this size is read and dropped before the 413
IDLE_TIMEOUT = 90.0  # keep-alive connections idle longer than this are closed (the API server reconnects)
HEADER_TIMEOUT = 10.0  # from a request's first byte to the end of its headers (the API server takes < 1 ms)
ANSWER_GRACE = 2.0  # beyond the review's budget, for the answer to be written to a client that reads slowly
MAX_CONNECTIONS = 512  # one thread each; the API server keeps a pool of a few per replica


class WebhookServer:
    def __init__(self, evaluator: AdmissionEvaluator, listen: tuple[str, int], cert: str, key: str, *,
                 client_ca: str | None = None, max_body: int = MAX_BODY,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS, on_timeout: str = "deny",
                 workers: int = 8, log: Callable[[str], object] | None = None,
                 max_connections: int = MAX_CONNECTIONS, header_timeout: float = HEADER_TIMEOUT,
                 idle_timeout: float = IDLE_TIMEOUT, reuse_port: bool = False,
                 context_status: Callable[[], list[tuple[str, str, str, float]]] | None = None) -> None:
        if on_timeout not in ("deny", "allow"):
            raise ValueError("on_timeout must be deny or allow")
        self.evaluator = evaluator
        self.metrics = Metrics()
        self.max_body = max_body
        self.budget = max(0.05, timeout_seconds - DEADLINE_MARGIN)
        self.on_timeout = on_timeout
        self.log = log or (lambda text: sys.stderr.write(text + "\n"))
        self.ready = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubeharden-review")
        self.tls = ReloadingTLS(cert, key, client_ca, name="kubeharden webhook", log=self.log)
        # Every phase of a connection is bounded: a review's is its budget plus the time to write the answer.
        limits = ConnectionLimits(max_connections=max_connections, handshake_timeout=header_timeout,
                                  header_timeout=header_timeout, idle_timeout=idle_timeout,
                                  request_timeout=self.budget + ANSWER_GRACE)
        self.context_status = context_status
        self.on_stop: Callable[[], object] | None = None  # e.g. the cluster watch's stop
        self.server = TLSServer(listen, _handler_for(self), self.tls, limits, reuse_port=reuse_port)
        self.address = self.server.server_address
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kubeharden-webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.ready.set()

    def serve_forever(self) -> None:
        self.ready.set()
        self.server.serve_forever(poll_interval=0.1)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop accepting, answer the reviews in flight (bounded by timeout), close idle connections.
        True when no review was cut off."""
        self.ready.clear()
        self.server.draining = True  # /readyz says 503 and responses close their connection from now on
        self.server.shutdown()
        clean = self.server.drain(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.on_stop is not None:
            self.on_stop()
        return clean

    def extra_metrics(self) -> list[tuple[str, str, str, float]]:
        server = self.server
        series = [
            ("kubeharden_connections_open", "Connections open (one thread each).", "gauge", server.connections),
            ("kubeharden_connections_refused_total", "Connections refused at the cap, every slot in a request.",
             "counter", server.refused),
            ("kubeharden_connections_evicted_total", "Waiting connections closed at the cap to make room.",
             "counter", server.evicted),
            ("kubeharden_connections_timed_out_total", "Connections closed when a phase outlived its deadline "
             "(handshake, headers, idle, request).", "counter", server.timed_out),
        ]
        return series + (self.context_status() if self.context_status else [])

    # -- one review ------------------------------------------------------------------------------

    def review(self, body: bytes, started: float) -> tuple[int, bytes, Decision | None]:
        """(HTTP status, body, decision) for one POST /validate body."""
        try:
            request = parse_review(body)
        except ReviewError as exc:
            self.metrics.bad_request(400)
            return 400, orjson.dumps({"error": str(exc)}), None
        left = self.budget - (time.monotonic() - started)
        future = self._pool.submit(self.evaluator.evaluate, request)
        try:
            decision = future.result(timeout=max(0.0, left))
        except FutureTimeout:
            future.cancel()
            self.metrics.timeout()
            allowed = self.on_timeout == "allow"
            message = (f"kubeharden: the review did not finish within {self.budget:.1f}s "
                       f"(--on-timeout {self.on_timeout})")
            self.log(f"kubeharden webhook: timeout on {request.kind_name} {request.namespace or ''}/{request.name}")
            decision = Decision(request.uid, allowed, message=message, warnings=[message] if allowed else [])
        except Exception as exc:  # a bug must answer (per the timeout policy) and leave the server up
            self.log(f"kubeharden webhook: internal error: {internal_error_site(exc)}")
            self.metrics.bad_request(500)
            return 500, orjson.dumps({"error": "internal error"}), None
        out = response_body(request.uid, decision.allowed, message=decision.message, warnings=decision.warnings,
                             audit=decision.audit)
        outcome = "allowed" if decision.allowed else "denied"
        denied_controls = sorted({f.control_id for f in decision.denied_by})
        self.metrics.observe(request.operation, request.kind_name, outcome, time.monotonic() - started,
                             denied_controls)
        if not decision.allowed and decision.denied_by:
            self.log(f"kubeharden webhook: denied {request.kind_name} {request.namespace or '-'}/{request.name} "
                     f"by {user_text(request.username)}: {', '.join(denied_controls)}")
        return 200, out, decision


def user_text(name: str) -> str:
    return name[:80] if name else "(unknown user)"


def _handler_for(webhook: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = IDLE_TIMEOUT  # socket timeout while waiting for the next request on a keep-alive connection
        server_version = "kubeharden-webhook"
        wbufsize = 64 * 1024
        sys_version = ""

        @property
        def state(self) -> TLSServer:
            return cast(TLSServer, self.server)

        def log_message(self, format: str, *args: Any) -> None:
            return  # denials are logged by the review; one line per request would drown them

        def _answer(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if self.state.draining or self.close_connection:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(body)  # buffered (wbufsize): headers and body leave in one write,
            self.wfile.flush()  # before the review counts as finished (a drain closes the connection then)

        def _refuse(self, code: int, reason: str, close: bool = False) -> None:
            webhook.metrics.bad_request(code)
            self.close_connection = self.close_connection or close
            self._answer(code, orjson.dumps({"error": reason}))

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._answer(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                ready = webhook.ready.is_set() and not self.state.draining
                self._answer(200 if ready else 503, b"ok\n" if ready else b"draining\n", "text/plain")
            elif path == "/metrics":
                self._answer(200, webhook.metrics.render(self.state.in_flight, webhook.tls.reloads,
                                                         webhook.tls.failures, webhook.extra_metrics()),
                             "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._refuse(404, "not found")

        def do_POST(self) -> None:
            started = time.monotonic()
            self.state.request_started()
            try:
                self._post(started)
            finally:
                self.state.request_finished()

        def _post(self, started: float) -> None:
            if self.path.split("?", 1)[0] != "/validate":
                self._refuse(404, "not found (POST AdmissionReviews to /validate)", close=True)
                return
            if self.headers.get("Transfer-Encoding"):
                self._refuse(411, "chunked bodies are not accepted: send Content-Length", close=True)
                return
            raw_length = self.headers.get("Content-Length")
            try:
                length = int(raw_length) if raw_length is not None else -1
            except ValueError:
                length = -1
            if length < 0:
                self._refuse(411, "Content-Length required", close=True)
                return
            if length > webhook.max_body:
                # Read (and drop) a moderately large body, so the client sees the answer rather than a reset;
                # beyond that the connection is just closed after the answer.
                if length <= DRAIN_LIMIT:
                    self._discard(length)
                self._refuse(413, f"body of {length} bytes is over the limit of {webhook.max_body}", close=True)
                return
            self.connection.settimeout(webhook.budget)  # a body trickling in must not hold the deadline
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                self._refuse(408, "body not received in time", close=True)
                return
            finally:
                self.connection.settimeout(IDLE_TIMEOUT)
            if len(body) < length:
                self.close_connection = True
                return  # the client hung up mid-body
            code, out, _ = webhook.review(body, started)
            self._answer(code, out)

        def _discard(self, length: int) -> None:
            self.connection.settimeout(webhook.budget)
            try:
                while length > 0:
                    chunk = self.rfile.read(min(length, 64 * 1024))
                    if not chunk:
                        return
                    length -= len(chunk)
            except OSError:
                return

        def _method_not_allowed(self) -> None:
            self._refuse(405, "method not allowed", close=True)

        do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    return Handler
