"""KH-POD-002 says what the image's user is when a registry or a Dockerfile tells it, and KH-POD-027's
finding carries the registry's digest as a fix (a set of the image field), applied by `fix`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_registry import FakeRegistry

from kubeharden.catalog import Settings
from kubeharden.cli import cli
from kubeharden.fix.plan import Fixer, FixRequest
from kubeharden.model import FixLevel, Severity, Status
from kubeharden.scanner import ScanRequest, run_scan

DIGESTS: dict[str, str] = {}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeRegistry]:
    (tmp_path / "certs").mkdir()
    registry = FakeRegistry(tmp_path / "certs")
    DIGESTS["nonroot"] = registry.add_image("shop/nonroot-app", "1.0", "10001:10001")
    for app, user in (("root-app", "root"), ("unset-app", ""), ("named-app", "app")):
        registry.add_image(f"shop/{app}", "1.0", user)
    with registry.running():
        yield registry


def pod(image: str, name: str = "web", pod_sc: str = "") -> str:
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop}}
spec:
  {pod_sc}
  containers:
  - name: {name}
    image: {image}
"""


def settings_for(fake: FakeRegistry | None, tmp_path: Path) -> Settings:
    settings = Settings()
    if fake is not None:
        settings.extra.update({"registry_lookup": True, "registry_ca": str(fake.ca),
                               "registry_cache": str(tmp_path / "cache"),
                               "registry_config": str(tmp_path / "no-docker-config.json")})
    return settings


def scan(tmp_path: Path, manifest: str, fake: FakeRegistry | None, control: str = "KH-POD-002",
         extra_files: dict[str, str] | None = None):
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / "pod.yaml"
    path.write_text(manifest)
    for name, text in (extra_files or {}).items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_text(text)
    result = run_scan(ScanRequest(paths=[str(tmp_path / "in")], settings=settings_for(fake, tmp_path),
                                  only=[control]))
    (outcome,) = result.controls
    return outcome


def test_without_image_evidence_the_image_decides(tmp_path: Path) -> None:
    (finding,) = scan(tmp_path, pod("registry.example/app:1.0"), None).findings
    assert "the image decides" in finding.message and finding.severity is Severity.MEDIUM


def test_root_image_from_the_registry_will_run_as_root(tmp_path: Path, fake: FakeRegistry) -> None:
    for app in ("root-app", "unset-app"):
        (finding,) = scan(tmp_path, pod(f"{fake.host}/shop/{app}:1.0"), fake).findings
        assert "will run as root" in finding.message and "image decides" not in finding.message
        assert finding.severity is Severity.HIGH
        assert finding.evidence["image_user_registry"] is True


def test_non_root_image_from_the_registry_says_what_is_known(tmp_path: Path, fake: FakeRegistry) -> None:
    outcome = scan(tmp_path, pod(f"{fake.host}/shop/nonroot-app:1.0"), fake)
    (finding,) = outcome.findings
    assert "image decides" not in finding.message
    assert "non-root user 10001:10001" in finding.message and "does not enforce" in finding.message
    assert finding.severity is Severity.LOW
    assert finding.evidence["non_root_images"] == ["web"]
    # the kubelet's check passes on that numeric user: runAsNonRoot: true is a safe fix
    assert finding.fix is not None and finding.fix.level is FixLevel.SAFE


def test_named_image_user_stays_uncertain(tmp_path: Path, fake: FakeRegistry) -> None:
    (finding,) = scan(tmp_path, pod(f"{fake.host}/shop/named-app:1.0"), fake).findings
    assert "'app'" in finding.message and finding.severity is Severity.MEDIUM
    assert finding.fix is not None and finding.fix.level is FixLevel.TIGHTENING


def test_dockerfile_user_is_known_but_the_fix_stays_tightening(tmp_path: Path) -> None:
    files = {"app/Dockerfile": "FROM debian:12\nRUN useradd -u 10001 app\nUSER 10001\n"}
    (finding,) = scan(tmp_path, pod("registry.example/app:1.0"), None, extra_files=files).findings
    assert "non-root user 10001" in finding.message and "Dockerfile" in finding.message
    assert finding.severity is Severity.LOW
    # joined by name, not the registry's word for what runs: not safe
    assert finding.fix is not None and finding.fix.level is FixLevel.TIGHTENING
    files = {"app/Dockerfile": "FROM debian:12\nUSER root\n"}
    (finding,) = scan(tmp_path, pod("registry.example/app:1.0"), None, extra_files=files).findings
    assert "will run as root" in finding.message


def test_run_as_non_root_with_a_non_root_image_passes(tmp_path: Path, fake: FakeRegistry) -> None:
    outcome = scan(tmp_path, pod(f"{fake.host}/shop/nonroot-app:1.0", pod_sc="securityContext: {runAsNonRoot: true}"),
                   fake)
    assert outcome.status is Status.PASS


def test_digest_pin_is_a_tightening_fix_of_the_image_field(tmp_path: Path, fake: FakeRegistry) -> None:
    image = f"{fake.host}/shop/nonroot-app:1.0"
    digest = DIGESTS["nonroot"]
    outcome = scan(tmp_path, pod(image), fake, control="KH-POD-027")
    (finding,) = outcome.findings
    assert finding.fix is not None and finding.fix.level is FixLevel.TIGHTENING
    (op,) = finding.fix.ops
    assert (op.op, op.path, op.value) == ("set", ("spec", "containers", 0, "image"), f"{image}@{digest}")
    # without a registry lookup there is no digest to pin: no fix is invented
    (plain,) = scan(tmp_path, pod(image), None, control="KH-POD-027").findings
    assert plain.fix is None


def test_fix_applies_the_pin_and_the_rescan_proves_it(tmp_path: Path, fake: FakeRegistry) -> None:
    image = f"{fake.host}/shop/nonroot-app:1.0"
    manifest = tmp_path / "pod.yaml"
    original = "# the web pod\n" + pod(image)
    manifest.write_text(original)
    settings = settings_for(fake, tmp_path)
    safe = Fixer(FixRequest(paths=[str(manifest)], settings=settings, controls=["KH-POD-027"], backup=False)).run()
    assert manifest.read_text() == original and not safe.changes  # tightening: not at the default level
    report = Fixer(FixRequest(paths=[str(manifest)], settings=settings, controls=["KH-POD-027"],
                              level=FixLevel.TIGHTENING, backup=False)).run()
    assert [(o.status, o.reason) for o in report.outcomes if o.finding.control_id == "KH-POD-027"] == [("fixed", None)]
    digest = DIGESTS["nonroot"]
    assert manifest.read_text() == original.replace(f"image: {image}", f"image: {image}@{digest}")
    # the JSON report carries the same operation
    manifest.write_text(original)
    result = CliRunner().invoke(cli, ["scan", str(manifest), "-c", "KH-POD-027", "-f", "json", "--fail-on", "none",
                                      "--registry-lookup", "--registry-ca", str(fake.ca),
                                      "--registry-config", str(tmp_path / "none.json")],
                                env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert result.exit_code == 0, result.output
    (found,) = [f for f in json.loads(result.stdout)["findings"] if f["control_id"] == "KH-POD-027"]
    assert found["fix"] == {"level": "tightening", "note": found["fix"]["note"], "ops": [
        {"op": "set", "path": ["spec", "containers", 0, "image"], "value": f"{image}@{digest}"}]}
