"""Re-encryption (NSA-SEC-6): `node probe etcd --secrets` against a real etcd (Debian's etcd-server),
with plaintext and encrypted-looking values written through etcd's v3 JSON gateway."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.nodeconf.probe import INSECURE, SECURE, UNKNOWN, classify_value, expected_prefix, probe_secrets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from test_node_etcd_probe import _start_etcd, pki  # noqa: F401 - pki is a fixture

PLAINTEXT_MARKER = "s3cr3t-value-never-printed"
VALUES = {
    "/registry/secrets/default/plain": b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret" + PLAINTEXT_MARKER.encode(),
    "/registry/secrets/shop/current": b"k8s:enc:secretbox:v1:key2:" + b"\x8f" * 64,
    "/registry/secrets/shop/old": b"k8s:enc:aescbc:v1:key1:" + b"\x01" * 64,
    "/registry/configmaps/default/x": b"k8s\x00not a secret",
}
CONFIG = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration", "resources": [
    {"resources": ["secrets"], "providers": [{"secretbox": {"keys": [{"name": "key2", "secret": "x" * 44}]}},
                                             {"aescbc": {"keys": [{"name": "key1", "secret": "y" * 44}]}},
                                             {"identity": {}}]}]}


def _put(url: str, pki_dir: Path, key: str, value: bytes) -> None:
    host, port = url.split("://", 1)[1].split(":")
    context = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    context.check_hostname = False
    context.load_cert_chain(str(pki_dir / "client.crt"), str(pki_dir / "client.key"))
    conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=context)
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode()})
    conn.request("POST", "/v3/kv/put", body=body, headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()


@pytest.fixture(scope="module")
def etcd_with_secrets(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[str]:  # noqa: F811
    for url in _start_etcd(tmp_path_factory.mktemp("etcd-secrets"), pki):
        for key, value in VALUES.items():
            _put(url, pki, key, value)
        yield url


def test_classify_value_prefixes() -> None:
    assert classify_value("k", b"k8s:enc:kms:v2:my-kms:\x00rest") .key_name == "my-kms"
    assert not classify_value("k", b"k8s\x00\n").encrypted
    assert not classify_value("k", b'{"kind":"Secret"}').encrypted
    assert expected_prefix(CONFIG) == ("secretbox", "v1", "key2")
    identity_first = {**CONFIG, "resources": [{"resources": ["secrets"], "providers": [{"identity": {}}]}]}
    assert expected_prefix(identity_first) is None


def test_probe_reports_plaintext_and_old_key(etcd_with_secrets: str, pki: Path) -> None:  # noqa: F811
    checks = {c.id: c for c in probe_secrets(etcd_with_secrets, str(pki / "ca.crt"), str(pki / "client.crt"),
                                              str(pki / "client.key"), CONFIG)}
    assert checks["secrets-plaintext"].status == INSECURE
    assert "1 of 3 Secrets have no k8s:enc: prefix (default/plain)" in checks["secrets-plaintext"].detail
    assert checks["secrets-old-key"].status == INSECURE
    assert "1 Secrets are encrypted with aescbc:v1:key1, not the current secretbox:v1:key2 (shop/old)" in \
        checks["secrets-old-key"].detail
    rotated = {**CONFIG, "resources": [{"resources": ["secrets"], "providers": [
        {"aescbc": {"keys": [{"name": "key1", "secret": "y" * 44}]}}]}]}
    checks = {c.id: c for c in probe_secrets(etcd_with_secrets, str(pki / "ca.crt"), str(pki / "client.crt"),
                                              str(pki / "client.key"), rotated)}
    assert "shop/current" in checks["secrets-old-key"].detail


def test_without_client_certificate_nothing_is_read(etcd_with_secrets: str, pki: Path) -> None:  # noqa: F811
    [check] = probe_secrets(etcd_with_secrets, str(pki / "ca.crt"))
    assert check.status == UNKNOWN and check.detail.startswith("cannot read /registry/secrets/ keys")


def test_cli_never_prints_values(etcd_with_secrets: str, pki: Path, tmp_path: Path) -> None:  # noqa: F811
    config = tmp_path / "enc.yaml"
    config.write_text(json.dumps(CONFIG))
    args = ["node", "probe", "etcd", etcd_with_secrets, "--cacert", str(pki / "ca.crt"), "--cert",
            str(pki / "client.crt"), "--key", str(pki / "client.key"), "--secrets"]
    result = CliRunner().invoke(cli, [*args, "--encryption-config", str(config), "-f", "json"])
    assert result.exit_code == 1, result.output  # plaintext Secrets are high
    assert PLAINTEXT_MARKER not in result.output and "x" * 44 not in result.output
    checks = {c["id"]: c for c in json.loads(result.output)["checks"]}
    assert checks["secrets-plaintext"]["status"] == INSECURE and checks["secrets-old-key"]["status"] == INSECURE
    result = CliRunner().invoke(cli, args)
    assert "give --encryption-config" in result.output and PLAINTEXT_MARKER not in result.output


def test_all_encrypted_under_the_current_key(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> None:  # noqa: F811
    for url in _start_etcd(tmp_path_factory.mktemp("etcd-clean"), pki):
        _put(url, pki, "/registry/secrets/shop/current", VALUES["/registry/secrets/shop/current"])
        checks = {c.id: c for c in probe_secrets(url, str(pki / "ca.crt"), str(pki / "client.crt"),
                                                  str(pki / "client.key"), CONFIG)}
        assert checks["secrets-plaintext"].status == SECURE and checks["secrets-old-key"].status == SECURE
