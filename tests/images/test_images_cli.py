"""`kubeharden images` (table, JSON, CSV; --scan with a stub scanner on PATH) and the image options of
`kubeharden scan`."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli

REPO = Path(__file__).resolve().parents[2]
SHOP = REPO / "examples" / "insecure-shop"
DIGEST = "sha256:" + "5" * 64

STUB = """#!{python}
import json, os, sys
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
image = sys.argv[-1] if sys.argv[1] == "image" else sys.argv[1]
print(json.dumps({{"SchemaVersion": 2, "ArtifactName": image, "ArtifactType": "container_image",
                  "Metadata": {{"RepoTags": [image]}},
                  "Results": [{{"Target": image, "Vulnerabilities": [
                      {{"VulnerabilityID": "CVE-2024-4242", "PkgName": "glibc", "InstalledVersion": "2.36",
                       "FixedVersion": "2.36-9", "Severity": "CRITICAL"}}]}}]}}))
"""


@pytest.fixture
def stub_trivy(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "trivy"
    stub.write_text(STUB.format(python=sys.executable))
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return log


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_inventory_as_json_with_a_joined_report(tmp_path) -> None:
    report = tmp_path / "trivy.json"
    report.write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": "docker.io/shop/storefront:latest",
                                  "Results": [{"Target": "x", "Vulnerabilities": [
                                      {"VulnerabilityID": "CVE-1", "PkgName": "a", "Severity": "HIGH"},
                                      {"VulnerabilityID": "CVE-2", "PkgName": "b", "Severity": "LOW"}]}]}))
    result = run("images", str(SHOP), "--vulns", str(report), "-f", "json")
    assert result.exit_code == 0, result.output
    rows = {r["image"]: r for r in json.loads(result.output)["images"]}
    web = rows["docker.io/shop/storefront:latest"]
    assert web["used_by"] == ["Deployment/shop/storefront container 'web'"]
    assert web["vulnerabilities"] == {"critical": 0, "high": 1, "medium": 0, "low": 1} and web["scanned"]
    assert rows["quay.io/example/log-agent:2.1"]["addon"] is True
    assert rows["registry.example.com/tools/pg-backup:15.4"]["scanned"] is False


def test_inventory_as_csv() -> None:
    result = run("images", str(SHOP), "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert {r["image"] for r in rows} == {"docker.io/shop/storefront:latest",
                                          "docker.io/shop/storefront-migrate:latest",
                                          "quay.io/example/log-agent:2.1", "registry.example.com/tools/pg-backup:15.4"}


def test_scan_with_a_stub_trivy_fixed_argv_and_cache_by_digest(tmp_path, stub_trivy) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(f"""
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: a}}
spec:
  containers:
  - {{name: pinned, image: "registry.example/app:1.0@{DIGEST}"}}
  - {{name: tagged, image: "registry.example/other:2.0;id"}}
""")
    result = run("images", str(manifest), "--scan", "trivy", "-f", "json")
    assert result.exit_code == 0, result.output
    calls = [json.loads(line) for line in stub_trivy.read_text().splitlines()]
    assert sorted(calls) == sorted([
        ["image", "--format", "json", "--quiet", "--scanners", "vuln", f"registry.example/app:1.0@{DIGEST}"],
        ["image", "--format", "json", "--quiet", "--scanners", "vuln", "registry.example/other:2.0;id"]])
    rows = {r["written"]: r for r in json.loads(result.output)["images"]}
    assert rows[f"registry.example/app:1.0@{DIGEST}"]["vulnerabilities"]["critical"] == 1
    # the pinned image's report is cached by digest: a second run does not scan it again
    run("images", str(manifest), "--scan", "trivy", "-f", "json")
    calls = [json.loads(line) for line in stub_trivy.read_text().splitlines()]
    assert len(calls) == 3 and calls[-1][-1] == "registry.example/other:2.0;id"


def test_scan_with_a_scanner_that_is_not_installed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["images", str(SHOP), "--scan", "grype"])
    assert result.exit_code == 2 and "grype is not installed" in result.output


def test_scan_and_offline_exclude_each_other(stub_trivy) -> None:
    result = CliRunner().invoke(cli, ["images", str(SHOP), "--scan", "trivy", "--offline"])
    assert result.exit_code == 2 and "not with --offline" in result.output


def test_scan_command_takes_the_image_options(tmp_path) -> None:
    report = tmp_path / "grype.json"
    report.write_text(json.dumps({"matches": [{"vulnerability": {"id": "CVE-2024-5", "severity": "High",
                                                                 "fix": {"versions": ["2"]}},
                                               "artifact": {"name": "pkg", "version": "1"}}],
                                  "source": {"type": "image", "target": {"userInput": "docker.io/shop/storefront"}}}))
    out = tmp_path / "report.json"
    result = run("scan", str(SHOP), "--vulns", str(report), "-c", "KH-POD-017", "-o", str(out), "--fail-on", "none")
    assert result.exit_code == 0, result.output
    findings = json.loads(out.read_text())["findings"]
    assert [f["evidence"]["vulnerability"] for f in findings] == ["CVE-2024-5"]


def test_bad_platform_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["scan", str(SHOP), "--registry-lookup", "--platform", "amd64"])
    assert result.exit_code == 2 and "OS/ARCH" in result.output
