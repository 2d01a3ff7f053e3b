"""The webhook server against hostile and authenticated clients, its worker processes, and a cluster context
kept fresh by a watch of a loopback fake API server. Loopback only; every wait is bounded."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from admission_helpers import REPO, Client, evaluator, running, write_certs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeharden.admission.review import review_body
from kubeharden.model import Status

sys.path.insert(0, str(REPO / "tests" / "live"))
from fake_apiserver import FakeApiServer

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"},
       "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0",
                                "securityContext": {"privileged": True}}]}}


def _wait(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _client_pki(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a client certificate (clientAuth) it signed: (ca.crt, client.crt, client.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apiserver")]))
            .issuer_name(subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / f"{name}-ca.crt", directory / f"{name}.crt", directory / f"{name}.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def _review_with(port: int, ca: str, cert: tuple[Path, Path] | None) -> int:
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=5)
    try:
        conn.request("POST", "/validate", body=review_body(POD), headers={"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


# -- client certificates (--client-ca) ------------------------------------------------------------


def test_client_ca_refuses_no_cert_and_a_wrong_ca_and_accepts_the_right_one(tmp_path: Path) -> None:
    right_ca, right_cert, right_key = _client_pki(tmp_path, "apiserver")
    _, wrong_cert, wrong_key = _client_pki(tmp_path, "intruder")
    with running(tmp_path, client_ca=str(right_ca)) as (server, ca):
        port = server.address[1]
        for cert in (None, (wrong_cert, wrong_key)):
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                _review_with(port, ca, cert)
        assert _review_with(port, ca, (right_cert, right_key)) == 200
        assert _review_with(port, ca, (right_cert, right_key)) == 200  # and the server is still up


# -- hostile clients ------------------------------------------------------------------------------


def _tls(port: int, ca: str, timeout: float = 10) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")


def _closed_by_server(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds`` (EOF or reset; a TLS alert may come first)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except (ConnectionError, ssl.SSLError):
            return True
        except TimeoutError:
            return False
    return False


def test_slowloris_headers_are_cut_at_the_header_deadline(tmp_path: Path) -> None:
    with running(tmp_path, header_timeout=1.0) as (server, ca):
        sock = _tls(server.address[1], ca)
        started = time.monotonic()
        cut = False
        for byte in b"POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200:
            try:
                sock.send(bytes([byte]))
            except OSError:
                cut = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 6:
                break
        assert cut or _closed_by_server(sock, 3), "headers trickled past the header deadline"
        assert time.monotonic() - started < 6
        sock.close()
        client = Client(server.address[1], ca)
        assert client.post(review_body(POD))[0] == 200
        client.close()
        assert server.server.timed_out >= 1


def test_a_body_that_stalls_is_answered_408_or_cut(tmp_path: Path) -> None:
    with running(tmp_path, timeout_seconds=1.5) as (server, ca):  # budget 1 s
        for claimed in (4 * 1024 * 1024, 40 * 1024 * 1024):  # under the limit; over it (drained, then 413)
            sock = _tls(server.address[1], ca)
            started = time.monotonic()
            sock.sendall(f"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: {claimed}\r\n\r\n".encode()
                         + b"{")
            sock.settimeout(8)
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except (ConnectionError, ssl.SSLError, TimeoutError):
                pass
            assert time.monotonic() - started < 6
            assert answer == b"" or answer.split(b" ")[1] in (b"408", b"413")
            sock.close()
        sock = _tls(server.address[1], ca)  # claims far beyond what is drained: refused at once
        sock.sendall(b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 999999999999\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).split(b" ")[1] == b"413"
        sock.close()
        client = Client(server.address[1], ca)
        assert client.post(review_body(POD))[0] == 200
        client.close()


def test_a_client_that_never_reads_its_answers_is_cut_and_others_are_served(tmp_path: Path) -> None:
    with running(tmp_path, timeout_seconds=1.5) as (server, ca):  # a request may last 1 s + 2 s to be written
        sock = _tls(server.address[1], ca)
        request = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"
        sent = threading.Event()

        def flood() -> None:  # pipelined requests, answers never read: the server's writes block
            sock.settimeout(10)
            try:
                for _ in range(20000):
                    sock.sendall(request * 10)
            except OSError:
                pass
            sent.set()

        threading.Thread(target=flood, daemon=True).start()
        assert sent.wait(20), "the flood was never cut"
        client = Client(server.address[1], ca)
        assert client.post(review_body(POD))[0] == 200
        client.close()
        assert _wait(lambda: server.server.connections <= 1, 10)
        sock.close()


def test_a_thousand_idle_connections_do_not_exhaust_threads(tmp_path: Path) -> None:
    before = threading.active_count()
    with running(tmp_path, max_connections=64) as (server, ca):
        port = server.address[1]
        idle = []
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(sock)
        assert _wait(lambda: server.server.refused + server.server.evicted >= 900, 15)
        assert server.server.connections <= 64
        assert threading.active_count() <= before + 64 + 16  # connections + review pool + server threads
        client = Client(port, ca)  # an idle connection makes room for real traffic
        status, _ = client.post(review_body(POD))
        assert status == 200
        client.close()
        for sock in idle:
            sock.close()


def test_malformed_tls_is_dropped_and_the_server_stays_up(tmp_path: Path) -> None:
    with running(tmp_path, header_timeout=1.0) as (server, ca):  # also the handshake deadline
        port = server.address[1]
        for garbage in (b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello", os.urandom(4096), b"\x16\x03"):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(garbage)
            assert _closed_by_server(sock, 5)
            sock.close()
        client = Client(port, ca)
        assert client.post(review_body(POD))[0] == 200
        client.close()


# -- worker processes ---------------------------------------------------------------------------


def test_workers_share_the_port_and_drain_on_sigterm(tmp_path: Path) -> None:
    ca, cert, key = write_certs(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kubeharden", "webhook", "--listen", f"127.0.0.1:{port}",
                             "--tls-cert", cert, "--tls-key", key, "--workers", "2", "--profile", "pss-baseline"],
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    try:
        def ready() -> bool:
            try:
                client = Client(port, ca, timeout=2)
                ok = client.get("/readyz")[0] == 200
                client.close()
                return ok
            except OSError:
                return False

        assert _wait(ready, 60)
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 2
        for _ in range(40):  # new connections are spread over the workers by the kernel
            client = Client(port, ca)
            status, review = client.post(review_body(POD))
            assert status == 200 and review["response"]["allowed"] is False
            client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert b"2 workers" in proc.stderr.read() if proc.stderr else True


# -- a cluster context kept fresh by a watch ------------------------------------------------------


def _deployment(ns: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "registry.example/app@sha256:" + "a" * 64}]}}}}


DENY_ALL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "apps"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}


def _verdict(ev: Any, control: str) -> Any:
    from kubeharden.admission.review import parse_review

    decision = ev.evaluate(parse_review(review_body(_deployment("apps"))))
    return decision.verdicts.get(control), decision.skipped.get(control)


def test_live_context_follows_the_cluster_through_watch_410_and_reconnects(tmp_path: Path) -> None:
    from kubeharden.admission.watch import ContextWatch
    from kubeharden.sources.cluster import ClusterOptions

    with FakeApiServer([NAMESPACE]) as api:
        options = ClusterOptions(kubeconfig=str(api.kubeconfig(tmp_path / "kubeconfig")), timeout=5, retries=1)
        watch = ContextWatch(options, watch_seconds=2, backoff=0.05)
        context = watch.start_and_wait()
        assert any(r.kind == "Namespace" for r in context.resources)
        ev = evaluator(context=context)
        watch.attach(ev)

        def lists() -> int:  # LISTs of the kind, not its WATCHes
            return sum(1 for r in api.list_requests("networkpolicies")
                       if r["accept"] != "watch" and r["query"].get("limit") == ["500"])

        try:
            status, _ = _verdict(ev, "KH-NET-005")
            lists_before = lists()
            api.put(DENY_ALL)  # a change after start: no restart, no API call in the request path
            assert _wait(lambda: any(r.kind == "NetworkPolicy" for r in ev.context.resources), 10)
            assert status is Status.FAIL and _verdict(ev, "KH-NET-005")[0] is Status.PASS
            assert lists() == lists_before  # a watch event, not a relist
            api.delete("networking.k8s.io/v1", "NetworkPolicy", "apps", "default-deny")
            assert _wait(lambda: not any(r.kind == "NetworkPolicy" for r in ev.context.resources), 10)
            assert _verdict(ev, "KH-NET-005")[0] == status  # back to what it was without the policy
            api.behaviour.watch_gone_once.add("networkpolicies")  # the next watch: 410 Gone, the kind is relisted
            assert _wait(lambda: watch.relists >= 1, 10)
            assert lists() > lists_before
            api.put(DENY_ALL)
            assert _wait(lambda: any(r.kind == "NetworkPolicy" for r in ev.context.resources), 15)
        finally:
            watch.stop()
        assert watch.rewatches >= 1  # the server ended watches (timeoutSeconds) and they were resumed
