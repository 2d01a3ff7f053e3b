"""Against a real registry (Debian's docker-registry on loopback, TLS, htpasswd): image configs read
with --registry-lookup make KH-POD-001 real; anonymous and private registries, OCI indexes, tag ->
digest, the on-disk cache, --offline."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
from registry_support import Registry, start_registry, stop_registry

from kubeharden.catalog import Settings
from kubeharden.images.registry import RegistryClient, RegistryError, RegistryOptions
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan

USER, PASSWORD = "puller", "pw-Zq8!not-in-output"


@pytest.fixture(scope="module")
def public(tmp_path_factory) -> Registry:
    registry = start_registry(tmp_path_factory.mktemp("public"))
    yield registry
    stop_registry(registry)


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> Registry:
    registry = start_registry(tmp_path_factory.mktemp("private"), USER, PASSWORD)
    yield registry
    stop_registry(registry)


@pytest.fixture(scope="module")
def images(public: Registry, private: Registry) -> dict[str, str]:
    out = {
        "root": public.push_image("shop/root-app", "1.0", "root"),
        "unset": public.push_image("shop/unset-app", "1.0", ""),
        "nonroot": public.push_image("shop/nonroot-app", "1.0", "10001:10001"),
        "named": public.push_image("shop/named-app", "1.0", "app"),
        "private": private.push_image("team/secret-app", "2.0", "0"),
    }
    index, per_arch = public.push_index("shop/multi", "3.0", {"amd64": "root", "arm64": "10001"})
    out["index"] = index
    out["multi-amd64"], out["multi-arm64"] = per_arch["amd64"], per_arch["arm64"]
    return out


def pod(image: str, pod_sc: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: shop}}
spec:
  {pod_sc}
  containers:
  - name: web
    image: {image}
"""


def docker_config(tmp_path: Path, registry: Registry, password: str = PASSWORD) -> Path:
    path = tmp_path / "docker-config.json"
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry.host: {"auth": auth}}}))
    return path


def scan(tmp_path: Path, manifest: str, registry: Registry, control: str = "KH-POD-001", **extra):
    path = tmp_path / "pod.yaml"
    path.write_text(manifest)
    options = {"registry_lookup": True, "registry_ca": str(registry.ca), "registry_cache": str(tmp_path / "cache"),
               "registry_config": str(tmp_path / "no-docker-config.json"), **extra}
    settings = Settings()
    settings.extra.update(options)
    result = run_scan(ScanRequest(paths=[str(path)], settings=settings, only=[control]))
    (outcome,) = result.controls
    return outcome, result


def test_root_image_without_run_as_non_root_is_a_finding_with_the_registry_as_evidence(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/root-app:1.0"), public)
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.severity.label == "high" and "runs as root" in finding.message
    config = finding.evidence["image_config"]
    assert config["source"] == f"https://{public.host}/v2/shop/root-app/manifests/1.0"
    assert config["digest"] == images["root"]
    assert finding.evidence["image_user"] == "root"
    assert finding.file == str(tmp_path / "pod.yaml") or finding.file.endswith("pod.yaml")


def test_image_config_without_user_runs_as_root(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/unset-app:1.0"), public)
    assert outcome.status is Status.FAIL and outcome.findings[0].evidence["image_user"] == ""


def test_non_root_image_passes(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/nonroot-app:1.0"), public)
    assert outcome.status is Status.PASS


def test_run_as_non_root_with_a_root_image_will_not_start(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/root-app:1.0", "securityContext: {runAsNonRoot: true}"),
                      public)
    (finding,) = outcome.findings
    assert finding.evidence["will_not_start"] is True and "refuse to start" in finding.message


def test_named_user_with_run_as_non_root_will_not_start(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/named-app:1.0", "securityContext: {runAsNonRoot: true}"),
                      public)
    (finding,) = outcome.findings
    assert "non-numeric user (app)" in finding.message


def test_run_as_user_overrides_the_image(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/root-app:1.0", "securityContext: {runAsUser: 10001}"),
                      public)
    assert outcome.status is Status.PASS


def test_private_image_with_credentials_from_the_docker_config(tmp_path, private, images):
    outcome, result = scan(tmp_path, pod(f"{private.host}/team/secret-app:2.0"), private,
                           registry_config=str(docker_config(tmp_path, private)))
    assert outcome.status is Status.FAIL
    assert outcome.findings[0].evidence["image_config"]["digest"] == images["private"]
    assert PASSWORD not in repr(result)


def test_private_image_without_credentials_is_not_assessed_and_says_why(tmp_path, private, images):
    outcome, result = scan(tmp_path, pod(f"{private.host}/team/secret-app:2.0"), private)
    assert outcome.status is Status.NOT_ASSESSED
    assert "needs credentials" in (outcome.reason or "")
    assert any("needs credentials" in w.message for w in result.warnings)


def test_wrong_password_is_refused_without_printing_it(tmp_path, private, images):
    wrong = "wrong-Pw-42"
    outcome, result = scan(tmp_path, pod(f"{private.host}/team/secret-app:2.0"), private,
                           registry_config=str(docker_config(tmp_path, private, wrong)))
    assert outcome.status is Status.NOT_ASSESSED and "refused the credentials" in (outcome.reason or "")
    assert wrong not in repr(result) and PASSWORD not in repr(result)


def test_multi_arch_index_picks_the_platform(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/multi:3.0"), public)
    (finding,) = outcome.findings
    config = finding.evidence["image_config"]
    assert config["indexDigest"] == images["index"] and config["digest"] == images["multi-amd64"]
    assert config["platform"] == "linux/amd64"
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/multi:3.0"), public, platform="linux/arm64")
    assert outcome.status is Status.PASS


def test_platform_missing_from_the_index_is_named(tmp_path, public, images):
    client = RegistryClient(RegistryOptions(platform="linux/s390x", ca_file=str(public.ca), cache_dir=""))
    with pytest.raises(RegistryError, match="linux/amd64, linux/arm64"):
        client.lookup(f"{public.host}/shop/multi:3.0")


def test_pinned_digest_of_the_running_manifest_is_found_by_digest(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/multi@{images['multi-arm64']}"), public)
    assert outcome.status is Status.PASS  # the arm64 manifest itself: its config says 10001


def test_tag_digest_from_the_registry_in_the_pinning_finding(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/nonroot-app:1.0"), public, control="KH-POD-027")
    (finding,) = outcome.findings
    assert finding.evidence["registry_digest"] == images["nonroot"]
    assert f"{public.host}/shop/nonroot-app:1.0@{images['nonroot']}" in finding.remediation


def test_untrusted_certificate_is_an_error_not_a_fallback(tmp_path, public, images):
    client = RegistryClient(RegistryOptions(cache_dir="", retries=0))  # the system trust store only
    with pytest.raises(RegistryError, match="TLS verification failed"):
        client.lookup(f"{public.host}/shop/root-app:1.0")


def test_unknown_image_is_a_warning_and_the_control_says_why(tmp_path, public, images):
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/missing:1.0"), public)
    assert outcome.status is Status.NOT_ASSESSED and "not found" in (outcome.reason or "")


class _ConnectGuard:
    """Counts (and refuses) every outbound connection attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[object] = []
        original = socket.socket.connect

        def connect(sock: socket.socket, address: object) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                self.attempts.append(address)
                raise OSError("connection refused by the test's socket guard")
            original(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: self.attempts.append(address) or 111)


def test_offline_answers_from_the_disk_cache_with_zero_connections(tmp_path, public, images, monkeypatch):
    image = f"{public.host}/shop/root-app@{images['root']}"
    warm, _ = scan(tmp_path, pod(image), public)
    assert warm.status is Status.FAIL
    cache_files = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir())
    assert cache_files == ["config", "manifest"]
    for path in (tmp_path / "cache").iterdir():
        assert path.stat().st_mode & 0o077 == 0  # owner-only
        assert b"s3cr3t" not in path.read_bytes() or path.name.startswith("manifest")
    guard = _ConnectGuard(monkeypatch)
    outcome, _ = scan(tmp_path, pod(image), public, offline=True)
    assert outcome.status is Status.FAIL and not guard.attempts
    # a tag cannot be answered offline: said so, still no connection
    outcome, _ = scan(tmp_path, pod(f"{public.host}/shop/root-app:1.0"), public, offline=True)
    assert outcome.status is Status.NOT_ASSESSED and "--offline" in (outcome.reason or "")
    assert not guard.attempts


def test_no_flag_and_offline_make_zero_connections(tmp_path, public, images, monkeypatch):
    guard = _ConnectGuard(monkeypatch)
    path = tmp_path / "pod.yaml"
    path.write_text(pod(f"{public.host}/shop/root-app:1.0") + pod("nginx:1.27").replace("name: web", "name: web2"))
    for extra in ({}, {"offline": True, "registry_lookup": True, "registry_cache": str(tmp_path / "empty")}):
        settings = Settings()
        settings.extra.update(extra)
        result = run_scan(ScanRequest(paths=[str(path)], settings=settings))
        assert result.controls
    assert guard.attempts == []


def test_per_run_cache_asks_once(tmp_path, public, images):
    client = RegistryClient(RegistryOptions(ca_file=str(public.ca), cache_dir=""))
    first = client.lookup(f"{public.host}/shop/root-app:1.0")
    asked = client.requests
    again = client.lookup(f"{public.host}/shop/root-app:1.0")
    assert again == first and client.requests == asked


def test_image_config_secrets_are_not_kept(tmp_path, public, images):
    client = RegistryClient(RegistryOptions(ca_file=str(public.ca), cache_dir=str(tmp_path / "c")))
    info = client.lookup(f"{public.host}/shop/root-app:1.0")
    assert "s3cr3t" not in json.dumps(info.to_object())
    assert info.exposed_ports == ("8080/tcp",) and info.created == "2024-01-02T03:04:05Z"
    config_files = [p for p in (tmp_path / "c").iterdir() if p.name.startswith("config-")]
    assert config_files and all(b"s3cr3t" not in p.read_bytes() for p in config_files)


def test_a_planted_or_corrupt_cache_entry_is_a_miss_not_a_crash(tmp_path, public, images, monkeypatch):
    image = f"{public.host}/shop/root-app@{images['root']}"
    warm, _ = scan(tmp_path, pod(image), public)
    assert warm.status is Status.FAIL
    [config] = [p for p in (tmp_path / "cache").iterdir() if p.name.startswith("config-")]
    for planted in (b'{"user": 5, "exposedPorts": "x"}', b"[" * 100_000, b"\xff\xfe"):
        config.write_bytes(planted)
        guard = _ConnectGuard(monkeypatch)
        outcome, _ = scan(tmp_path, pod(image), public, offline=True)
        # offline, the entry is not trusted: not assessed with the reason, never a crash or a verdict from it
        assert outcome.status is Status.NOT_ASSESSED and "not in the cache" in (outcome.reason or ""), outcome.reason
        assert not guard.attempts
        monkeypatch.undo()
