"""--follow through rotation and truncation, the HTTPS webhook backend, the Alertmanager sink.
Loopback only; every loop is bounded."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import orjson
from audit_helpers import jsonl
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeharden.audit.alertmanager import AlertmanagerSink
from kubeharden.audit.detectors import all_detectors
from kubeharden.audit.detectors._events import event
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.follow import follow
from kubeharden.audit.reader import ReaderStats
from kubeharden.audit.runner import AuditRun
from kubeharden.audit.serve import WebhookBackend
from kubeharden.audit.settings import AuditSettings


def _exec(name: str) -> dict:
    return event("create", "pods", name=name, subresource="exec", code=101)


def test_follow_survives_rename_and_copytruncate(tmp_path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(jsonl([_exec("a")]))
    stats = ReaderStats()
    seen: list[str] = []
    steps = iter([
        lambda: log.open("ab").write(jsonl([_exec("b")])[:40]),  # a partial line: kept until its newline
        lambda: log.open("ab").write(jsonl([_exec("b")])[40:]),
        lambda: (os.rename(log, tmp_path / "audit-1.log"), log.write_bytes(jsonl([_exec("c")]))),
        lambda: log.write_bytes(b""),  # copytruncate
        lambda: log.write_bytes(jsonl([_exec("d")])),
    ])

    def on_idle() -> None:
        step = next(steps, None)
        if step is not None:
            step()

    for e in follow(str(log), stats, poll=0.01, idle_timeout=0.5, on_idle=on_idle):
        seen.append(e.name)
    assert seen == ["a", "b", "c", "d"]
    assert not stats.problems


def _certs(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _post(port: int, cert: str, body: bytes) -> int:
    context = ssl.create_default_context(cafile=cert)
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_webhook_backend_batches_queue_and_shutdown(tmp_path) -> None:
    cert, key = _certs(tmp_path)
    found = []
    run = AuditRun(all_detectors(), AuditSettings(), on_finding=found.append)
    backend = WebhookBackend(run, ("127.0.0.1", 0), cert, key, queue_size=2, log=lambda _: None)
    port = backend.address[1]
    # a slow consumer: the queue fills, further batches are refused fast with 503 and counted
    def batch() -> bytes:  # distinct requests (auditIDs) in each batch: a re-sent batch would be folded
        return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                             "items": [_exec(f"p{i}") for i in range(3)]})

    backend._server_thread.start()
    codes = [_post(port, cert, batch()) for _ in range(4)]
    assert codes == [200, 200, 503, 503] and backend.stats.dropped_batches == 2
    backend._consumer.start()
    backend.stop(timeout=10)  # drains what was queued
    assert backend.stats.events == 6 and len(found) == 6
    assert {f.evidence["where"] for f in found} == {"webhook batch 1", "webhook batch 2"}


def test_alertmanager_bounded_retries(tmp_path) -> None:
    received: list[list] = []
    answers = iter([500, 200])

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(next(answers, 500))
            self.end_headers()

        def log_message(self, *args) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        sink = AlertmanagerSink(f"http://127.0.0.1:{server.server_address[1]}", backoff=0.01, retries=3)
        run = AuditRun(all_detectors(), AuditSettings(), on_finding=sink)
        run.feed(AuditEvent(_exec("x")))
        sink.flush()
        assert sink.sent == 1 and len(received) == 2  # one failure retried, then delivered
        alert = received[1][0]
        assert alert["labels"]["detector"] == "D05" and alert["labels"]["alertname"] == "kubehardenD05"
        sink.pending.append(alert)
        sink.flush()  # the receiver now fails every time: three tries, then counted as lost
        assert sink.lost == 1 and len(received) == 5 and sink.errors
    finally:
        server.shutdown()
        server.server_close()
