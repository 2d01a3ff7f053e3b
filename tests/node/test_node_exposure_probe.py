"""`node probe exposure`: what control-plane and kubelet ports answer anonymously, against real
loopback servers (plain HTTP, HTTPS answering 200 or 401, a TCP listener that speaks no HTTP)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeharden.cli import cli
from kubeharden.model import Severity
from kubeharden.nodeconf.exposure import PORTS, probe_exposure
from kubeharden.nodeconf.probe import INSECURE, SECURE

PORT = {p.number: p for p in PORTS}


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def http_server(status: int, tls: tuple[Path, Path] | None = None) -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts connections and closes them: open, but no HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_closed_ports_are_fine_and_the_probe_is_bounded() -> None:
    [check] = probe_exposure("127.0.0.1", 0.5, (replace(PORT[10250], number=_free_port()),))
    assert check.status == SECURE and "not reachable" in check.detail


def test_read_only_kubelet_answering_is_high(tmp_path: Path) -> None:
    with http_server(200) as port:
        [check] = probe_exposure("127.0.0.1", 2.0, (replace(PORT[10255], number=port),))
    assert check.status == INSECURE and check.severity is Severity.HIGH and "anonymous" in check.detail


def test_kubelet_anonymous_200_is_critical_and_401_is_fine(tmp_path: Path) -> None:
    tls = _self_signed(tmp_path)
    with http_server(200, tls) as port:
        [open_kubelet] = probe_exposure("127.0.0.1", 2.0, (replace(PORT[10250], number=port),))
    with http_server(401, tls) as port:
        [closed_kubelet] = probe_exposure("127.0.0.1", 2.0, (replace(PORT[10250], number=port),))
    assert open_kubelet.status == INSECURE and open_kubelet.severity is Severity.CRITICAL
    assert closed_kubelet.status == SECURE and "401" in closed_kubelet.detail


def test_etcd_reachable_at_all_is_a_finding_even_without_http() -> None:
    with silent_listener() as port:
        [check] = probe_exposure("127.0.0.1", 1.0, (replace(PORT[2379], number=port),))
    assert check.status == INSECURE and check.severity is Severity.HIGH and "reachable" in check.detail


def test_cli_lists_every_well_known_port_and_exits_by_fail_on() -> None:
    result = CliRunner().invoke(cli, ["node", "probe", "exposure", "127.0.0.1", "--timeout", "0.3", "-f", "json"])
    data = json.loads(result.stdout)
    assert {c["id"] for c in data["checks"]} == {f"EXPOSURE-{p.number}" for p in PORTS}
    assert result.exit_code == (1 if any(c["status"] == INSECURE and c["severity"] in ("high", "critical")
                                         for c in data["checks"]) else 0)
    assert CliRunner().invoke(cli, ["node", "probe", "exposure", "https://x:1/"]).exit_code == 2
