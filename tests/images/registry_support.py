"""A real registry for the tests: Debian's docker-registry (distribution v2) on a free loopback
port, with TLS (a CA and server certificate made with cryptography) and, for private registries,
htpasswd authentication (Debian's apache2-utils). Images are built in Python (config blob with a
User, one small gzip'd tar layer, an OCI manifest, an OCI index for several platforms) and pushed
with the registry API."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import ipaddress
import json
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REGISTRY_BINARIES = ("docker-registry", "registry")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def registry_binary() -> str:
    for name in REGISTRY_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no registry binary: install Debian's docker-registry package (apt-get install docker-registry)")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubeharden test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    tool = shutil.which("htpasswd")
    if tool is None:
        pytest.skip("htpasswd not found: install Debian's apache2-utils package")
    done = subprocess.run([tool, "-Bbn", user, password], capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@dataclass
class Registry:
    host: str  # 127.0.0.1:PORT
    ca: Path
    process: subprocess.Popen[bytes]
    user: str | None = None
    password: str | None = None

    def _headers(self) -> dict[str, str]:
        if self.user is None:
            return {}
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _pool(self) -> urllib3.PoolManager:
        return urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca), timeout=10.0, retries=False)

    def push_blob(self, repo: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        pool = self._pool()
        started = pool.request("POST", f"https://{self.host}/v2/{repo}/blobs/uploads/", headers=self._headers())
        assert started.status == 202, started.status
        location = started.headers["Location"]
        if location.startswith("/"):
            location = f"https://{self.host}{location}"
        sep = "&" if "?" in location else "?"
        done = pool.request("PUT", f"{location}{sep}digest={digest}", body=data,
                            headers={**self._headers(), "Content-Type": "application/octet-stream"})
        assert done.status == 201, (done.status, done.data[:200])
        return digest

    def push_manifest(self, repo: str, reference: str, manifest: dict[str, Any], media_type: str) -> str:
        body = json.dumps(manifest).encode()
        done = self._pool().request("PUT", f"https://{self.host}/v2/{repo}/manifests/{reference}", body=body,
                                    headers={**self._headers(), "Content-Type": media_type})
        assert done.status == 201, (done.status, done.data[:300])
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def push_image(self, repo: str, tag: str | None, user: str, arch: str = "amd64",
                   created: str = "2024-01-02T03:04:05Z", ports: tuple[str, ...] = ("8080/tcp",)) -> str:
        """Push a one-layer image; returns the manifest digest."""
        layer = _layer(f"{repo} {arch} {user}".encode())
        diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
        config = json.dumps({
            "architecture": arch, "os": "linux", "created": created,
            "config": {"User": user, "ExposedPorts": {p: {} for p in ports}, "Env": ["SECRET_TOKEN=s3cr3t"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }).encode()
        config_digest = self.push_blob(repo, config)
        layer_digest = self.push_blob(repo, layer)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                    "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}]}
        body_digest = "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
        return self.push_manifest(repo, tag or body_digest, manifest, OCI_MANIFEST)

    def push_index(self, repo: str, tag: str, users: dict[str, str]) -> tuple[str, dict[str, str]]:
        """An OCI index with one image per architecture (arch -> user); returns (index digest, arch -> digest)."""
        entries, digests = [], {}
        for arch, user in users.items():
            digest = self.push_image(repo, None, user, arch)
            digests[arch] = digest
            size = len(json.dumps(self._manifest_of(repo, digest)).encode())
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                            "platform": {"os": "linux", "architecture": arch}})
        # buildx adds attestation manifests with platform unknown/unknown: they must be skipped
        entries.append({"mediaType": OCI_MANIFEST, "digest": digests[next(iter(users))], "size": 1,
                        "platform": {"os": "unknown", "architecture": "unknown"}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return self.push_manifest(repo, tag, index, OCI_INDEX), digests

    def _manifest_of(self, repo: str, digest: str) -> dict[str, Any]:
        got = self._pool().request("GET", f"https://{self.host}/v2/{repo}/manifests/{digest}",
                                   headers={**self._headers(), "Accept": OCI_MANIFEST})
        assert got.status == 200
        value: dict[str, Any] = json.loads(got.data)
        return value


def _layer(content: bytes) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("etc/kubeharden-test")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def start_registry(directory: Path, user: str | None = None, password: str | None = None) -> Registry:
    binary = registry_binary()
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_certificates(directory)
    port = free_port()
    auth = ""
    if user is not None and password is not None:
        (directory / "htpasswd").write_text(htpasswd_line(user, password) + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: kubeharden-test\n    path: {directory / 'htpasswd'}\n"
    (directory / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n" + auth)
    log = (directory / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(directory / "config.yml")], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL)
    registry = Registry(f"127.0.0.1:{port}", ca, process, user, password)
    pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca), timeout=2.0, retries=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the registry exited: {(directory / 'registry.log').read_text()[-2000:]}")
        try:
            if pool.request("GET", f"https://{registry.host}/v2/").status in (200, 401):
                return registry
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail("the registry did not answer within 20 s")


def stop_registry(registry: Registry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait(timeout=10)
