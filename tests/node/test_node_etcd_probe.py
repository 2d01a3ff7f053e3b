"""The etcd probe against a real etcd (Debian's etcd-server: /usr/bin/etcd) on loopback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubeharden.cli import cli
from kubeharden.nodeconf.probe import INSECURE, SECURE, UNKNOWN, probe_etcd

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
needs_etcd = pytest.mark.skipif(not os.path.exists(ETCD),
                                reason="etcd binary not installed (CI installs it: apt-get install etcd-server)")
TLS12_AEAD = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          ca: bool = False, server: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else \
            [ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_pair(directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{name}.key"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("etcd-pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("etcd-test-ca", ca_key, "etcd-test-ca", ca_key, ca=True)
    _write_pair(directory, "ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    _write_pair(directory, "server", _cert("etcd-server", server_key, "etcd-test-ca", ca_key, server=True), server_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    _write_pair(directory, "client", _cert("kube-apiserver-etcd-client", client_key, "etcd-test-ca", ca_key),
                client_key)
    return directory


def _start_etcd(tmp: Path, tls: Path | None, extra: list[str] | None = None,
                client_cert_auth: bool = True) -> Iterator[str]:
    if not os.path.exists(ETCD):
        pytest.skip("etcd binary not installed (CI installs it: apt-get install etcd-server)")
    client_port, peer_port = _free_port(), _free_port()
    scheme = "https" if tls else "http"
    client_url = f"{scheme}://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    data_dir = tmp / f"data-{client_port}"
    args = [ETCD, "--name", "probe-test", "--data-dir", str(data_dir),
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"probe-test={peer_url}", "--listen-metrics-urls", ""]
    if tls:
        args += ["--cert-file", str(tls / "server.crt"), "--key-file", str(tls / "server.key")]
        if client_cert_auth:
            args += ["--client-cert-auth", "--trusted-ca-file", str(tls / "ca.crt")]
    args += extra or []
    log = open(tmp / f"etcd-{client_port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"etcd exited: {(tmp / f'etcd-{client_port}.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", client_port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("etcd did not start listening within 20s")
        time.sleep(0.3)  # serving begins right after the listener opens
        yield client_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def mtls_etcd(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[str]:
    yield from _start_etcd(tmp_path_factory.mktemp("etcd-mtls"), pki)


@pytest.fixture(scope="module")
def mtls_tls12_etcd(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[str]:
    yield from _start_etcd(tmp_path_factory.mktemp("etcd-tls12"), pki, ["--cipher-suites", TLS12_AEAD])


@pytest.fixture(scope="module")
def server_tls_only_etcd(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[str]:
    """TLS with a server certificate but without --client-cert-auth: encrypted, yet anyone may talk."""
    yield from _start_etcd(tmp_path_factory.mktemp("etcd-tls-only"), pki, client_cert_auth=False)


@pytest.fixture(scope="module")
def plain_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_etcd(tmp_path_factory.mktemp("etcd-plain"), None)


def _status(result: object, check_id: str) -> str:
    checks = {c.id: c for c in result.checks}  # type: ignore[attr-defined]
    return str(checks[check_id].status)


@needs_etcd
def test_mutual_tls_etcd_refuses_plain_http_and_anonymous_tls(mtls_etcd: str, pki: Path) -> None:
    result = probe_etcd(mtls_etcd, str(pki / "ca.crt"), str(pki / "client.crt"), str(pki / "client.key"))
    assert result.reachable and result.error is None
    assert _status(result, "plain-http") == SECURE
    assert _status(result, "tls-no-client-cert") == SECURE
    assert _status(result, "mtls") == SECURE  # the client certificate really works


@needs_etcd
def test_etcd_enforces_tls12_minimum(mtls_etcd: str, pki: Path) -> None:
    """etcd sets TLS 1.2 as its minimum itself: TLS 1.0/1.1 handshakes (with a valid client
    certificate, so only the protocol version can fail) are refused."""
    result = probe_etcd(mtls_etcd, str(pki / "ca.crt"), str(pki / "client.crt"), str(pki / "client.key"))
    for check_id in ("tls-1.0", "tls-1.1"):
        check = next(c for c in result.checks if c.id == check_id)
        if check.status == UNKNOWN:
            pytest.skip(f"this host's OpenSSL cannot offer old TLS: {check.detail}")
        assert check.status == SECURE and "PROTOCOL_VERSION" in check.detail.upper()


@pytest.fixture()
def tls10_server(pki: Path) -> Iterator[str]:
    """A loopback TLS server that still accepts TLS 1.0 (what an old etcd build or a proxy in
    front of etcd may do), to show the probe reports it."""
    import ssl
    import threading
    import warnings

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki / "server.crt"), str(pki / "server.key"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.minimum_version = ssl.TLSVersion.TLSv1
        except (ValueError, ssl.SSLError) as exc:
            pytest.skip(f"this host's OpenSSL cannot serve TLS 1.0: {exc}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(1)
                    tls.recv(1024)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 24\r\n\r\n{\"etcdserver\":\"3.2.0\"}\n\n")
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_old_tls_is_reported_when_accepted(tls10_server: str) -> None:
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", DeprecationWarning)
        result = probe_etcd(tls10_server, timeout=2)
    check = next(c for c in result.checks if c.id == "tls-1.0")
    if check.status == UNKNOWN:
        pytest.skip(f"this host's OpenSSL cannot offer TLS 1.0: {check.detail}")
    assert check.status == INSECURE and "TLSv1" in check.detail
    # this server does not ask for a client certificate either
    assert _status(result, "tls-no-client-cert") == INSECURE


@needs_etcd
def test_aead_only_cipher_suites_refuse_old_tls(mtls_tls12_etcd: str, pki: Path) -> None:
    result = probe_etcd(mtls_tls12_etcd, str(pki / "ca.crt"), str(pki / "client.crt"), str(pki / "client.key"))
    assert _status(result, "tls-1.0") in (SECURE, UNKNOWN)
    assert _status(result, "tls-1.1") in (SECURE, UNKNOWN)
    assert _status(result, "tls-no-client-cert") == SECURE
    assert not result.insecure()


@needs_etcd
def test_tls_etcd_without_client_cert_auth_is_insecure(server_tls_only_etcd: str, pki: Path) -> None:
    result = probe_etcd(server_tls_only_etcd, str(pki / "ca.crt"))
    assert result.reachable and result.error is None
    assert _status(result, "plain-http") == SECURE  # it does speak TLS only
    assert _status(result, "tls-no-client-cert") == INSECURE
    check = next(c for c in result.checks if c.id == "tls-no-client-cert")
    assert "without a client certificate answered 200" in check.detail
    assert _status(result, "tls-1.0") in (SECURE, UNKNOWN) and _status(result, "tls-1.1") in (SECURE, UNKNOWN)
    assert [c.id for c in result.insecure()] == ["tls-no-client-cert"]
    outcome = CliRunner().invoke(cli, ["node", "probe", "etcd", server_tls_only_etcd, "--cacert", str(pki / "ca.crt")])
    assert outcome.exit_code == 1 and "FAIL" in outcome.output


@needs_etcd
def test_plain_etcd_is_insecure(plain_etcd: str) -> None:
    result = probe_etcd(plain_etcd)
    assert _status(result, "plain-http") == INSECURE
    # no TLS to judge: not a pass
    assert _status(result, "tls-no-client-cert") == UNKNOWN
    assert [c.id for c in result.insecure()] == ["plain-http"]


@needs_etcd
def test_cli_exit_codes_and_json(plain_etcd: str, mtls_tls12_etcd: str, pki: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(cli, ["node", "probe", "etcd", plain_etcd, "--format", "json"])
    assert bad.exit_code == 1, bad.output
    data = json.loads(bad.output)
    assert data["checks"][0] == {**data["checks"][0], "id": "plain-http", "status": "insecure", "severity": "critical"}
    good = runner.invoke(cli, ["node", "probe", "etcd", mtls_tls12_etcd, "--cacert", str(pki / "ca.crt"),
                               "--cert", str(pki / "client.crt"), "--key", str(pki / "client.key")])
    assert good.exit_code == 0, good.output
    assert "Plain HTTP accepted" in good.output
    lenient = runner.invoke(cli, ["node", "probe", "etcd", plain_etcd, "--fail-on", "none"])
    assert lenient.exit_code == 0


def test_unreachable_endpoint_is_an_error() -> None:
    port = _free_port()  # nothing listens there
    result = probe_etcd(f"https://127.0.0.1:{port}", timeout=1)
    assert not result.reachable and result.checks == [] and "cannot connect" in (result.error or "")
    outcome = CliRunner().invoke(cli, ["node", "probe", "etcd", f"https://127.0.0.1:{port}", "--timeout", "1"])
    assert outcome.exit_code == 2


@pytest.mark.parametrize("url", ["http://[::1", "https://127.0.0.1:abc", "https://"])
def test_malformed_etcd_url_is_a_usage_error(url: str) -> None:
    outcome = CliRunner().invoke(cli, ["node", "probe", "etcd", url, "--timeout", "1"])
    assert outcome.exit_code == 2 and "Invalid value for URL" in outcome.output
    assert not isinstance(outcome.exception, ValueError)
