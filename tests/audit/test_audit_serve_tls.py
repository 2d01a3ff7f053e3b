"""`audit serve` TLS with a real HTTPS client: client-certificate authentication of the API server
(--client-ca) and certificate reload when the files change on disk. Loopback only, bounded."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import ssl
import time
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeharden.audit.detectors import all_detectors
from kubeharden.audit.detectors._events import event
from kubeharden.audit.runner import AuditRun
from kubeharden.audit.serve import WebhookBackend
from kubeharden.audit.settings import AuditSettings

BATCH = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                      "items": [event("create", "pods", name="web-1", subresource="exec", code=101)]})


class CA:
    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False, encipher_only=False,
                                                  decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def write(self, path: Path) -> str:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return str(path)

    def issue(self, common_name: str, cert_path: Path, key_path: Path, *, server: bool) -> bytes:
        """A leaf certificate and its key, written with a rename (as cert-manager and kubeadm do);
        returns the certificate's DER."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        for path, data in ((key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption())),
                           (cert_path, cert.public_bytes(serialization.Encoding.PEM))):
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def pki(tmp_path):
    server_ca, client_ca, rogue_ca = CA("server-ca"), CA("apiserver-client-ca"), CA("rogue-ca")
    paths = {"server_ca": server_ca.write(tmp_path / "server-ca.pem"),
             "client_ca": client_ca.write(tmp_path / "client-ca.pem"),
             "cert": str(tmp_path / "tls.crt"), "key": str(tmp_path / "tls.key")}
    server_der = server_ca.issue("localhost", tmp_path / "tls.crt", tmp_path / "tls.key", server=True)
    client_ca.issue("kube-apiserver", tmp_path / "client.crt", tmp_path / "client.key", server=False)
    rogue_ca.issue("kube-apiserver", tmp_path / "rogue.crt", tmp_path / "rogue.key", server=False)
    return {"dir": tmp_path, "paths": paths, "server_ca": server_ca, "server_der": server_der}


def _backend(pki, client_ca: bool) -> tuple[WebhookBackend, list]:
    found: list = []
    run = AuditRun(all_detectors(), AuditSettings(), on_finding=found.append)
    p = pki["paths"]
    backend = WebhookBackend(run, ("127.0.0.1", 0), p["cert"], p["key"], client_ca=p["client_ca"] if client_ca
                             else None, log=lambda _: None)
    backend.start()
    return backend, found


def _post(port: int, pki, client: str | None) -> tuple[int, bytes]:
    """POST one batch; the status and the DER certificate the server presented."""
    context = ssl.create_default_context(cafile=pki["paths"]["server_ca"])
    if client:
        context.load_cert_chain(str(pki["dir"] / f"{client}.crt"), str(pki["dir"] / f"{client}.key"))
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    try:
        conn.request("POST", "/", body=BATCH, headers={"Content-Type": "application/json"})
        status = conn.getresponse().status
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True) or b""
    finally:
        conn.close()
    return status, der


def _refused(port: int, pki, client: str | None) -> bool:
    try:
        _post(port, pki, client)
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return True  # TLS 1.3: the server's alert arrives on the client's first read
    return False


def test_client_ca_refuses_no_cert_and_a_wrong_ca_and_accepts_the_api_server(pki) -> None:
    backend, found = _backend(pki, client_ca=True)
    port = int(backend.address[1])
    try:
        assert _refused(port, pki, None)
        assert _refused(port, pki, "rogue")
        assert backend.stats.batches == 0  # nothing from an unauthenticated client reached the queue
        status, _ = _post(port, pki, "client")
        assert status == 200
    finally:
        backend.stop(timeout=10)
    assert backend.stats.batches == 1 and backend.stats.events == 1
    assert [f.control_id for f in found] == ["D05"]


def test_without_client_ca_any_tls_client_is_served(pki) -> None:
    backend, _ = _backend(pki, client_ca=False)
    try:
        assert _post(int(backend.address[1]), pki, None)[0] == 200
    finally:
        backend.stop(timeout=10)


def _until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_rotated_certificate_is_served_without_restart(pki) -> None:
    backend, _ = _backend(pki, client_ca=True)
    port = int(backend.address[1])
    d = pki["dir"]
    try:
        status, first = _post(port, pki, "client")
        assert status == 200 and first == pki["server_der"]
        time.sleep(0.01)  # a distinct mtime even on coarse clocks
        rotated = pki["server_ca"].issue("localhost", d / "tls.crt", d / "tls.key", server=True)
        assert rotated != first
        # the next connection gets the new certificate; the process was never restarted
        assert _until(lambda: _post(port, pki, "client") == (200, rotated))
        # a broken pair (a key that does not match) keeps the certificate being served
        (d / "tls.key").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        assert _post(port, pki, "client") == (200, rotated)
    finally:
        backend.stop(timeout=10)
    assert backend.stats.batches == 3
