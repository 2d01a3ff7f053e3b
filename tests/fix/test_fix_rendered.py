"""--kustomize writes a proved strategic-merge patch into the overlay; --helm points at the template."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli

BASE = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        ports:
        - containerPort: 8080
          hostPort: 8080
        securityContext: {privileged: true}
"""
OVERLAY = "# prod overlay\nnamespace: prod\nresources:\n- ../../base   # the shared base\n"
CONTROLS = "KH-POD-004,KH-POD-005,KH-POD-008,KH-POD-010"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("needs kubectl or kustomize on PATH to build overlays")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "deployment.yaml").write_text(BASE)
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    prod = tmp_path / "overlays" / "prod"
    prod.mkdir(parents=True)
    (prod / "kustomization.yaml").write_text(OVERLAY)
    return prod


def _findings(path: str) -> set[str]:
    import json

    code, out, _ = run("scan", path, "-f", "json", "--fail-on", "none")
    assert code == 0
    return {f["control_id"] for f in json.loads(out)["findings"]}


def test_kustomize_patch_in_overlay_base_untouched(overlay: Path) -> None:
    assert {"KH-POD-005", "KH-POD-008", "KH-POD-010"} <= _findings("overlays/prod")
    code, out, err = run("fix", "overlays/prod", "--kustomize", "--level", "tightening", "-c", CONTROLS, "--dry-run")
    assert code == 0, err
    assert "+++ b/overlays/prod/kubeharden-fixes.yaml" in out and "+- path: kubeharden-fixes.yaml" in out
    assert sorted(p.name for p in overlay.iterdir()) == ["kustomization.yaml"]
    code, _, err = run("fix", "overlays/prod", "--kustomize", "--level", "tightening", "-c", CONTROLS, "--no-backup")
    assert code == 0, err
    assert (overlay / "kustomization.yaml").read_text() == OVERLAY + "patches:\n- path: kubeharden-fixes.yaml\n"
    assert (overlay.parents[1] / "base" / "deployment.yaml").read_text() == BASE
    assert not {"KH-POD-005", "KH-POD-008", "KH-POD-010"} & _findings("overlays/prod")
    # the next run fixes what the first opened (no escalation once not privileged), then nothing is left
    run("fix", "overlays/prod", "--kustomize", "--level", "tightening", "-c", CONTROLS, "--no-backup")
    assert not set(CONTROLS.split(",")) & _findings("overlays/prod")
    listing = sorted(p.name for p in overlay.iterdir())
    code, _, _ = run("fix", "overlays/prod", "--kustomize", "--level", "tightening", "-c", CONTROLS, "--no-backup")
    assert code == 0 and sorted(p.name for p in overlay.iterdir()) == listing
    assert sorted(p.name for p in overlay.parent.iterdir()) == ["prod"]  # the proof's copy is gone


CHART_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        securityContext:
          privileged: true
"""
RENDERED = """\
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: release-name
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        securityContext:
          privileged: true
"""


def test_helm_prints_the_template_line_and_never_edits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(RENDERED)
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\n/bin/cat {rendered}\n")
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    chart = tmp_path / "shop"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    (chart / "templates" / "deployment.yaml").write_text(CHART_TEMPLATE)
    code, out, err = run("fix", str(chart), "--helm", "--level", "tightening", "-c", "KH-POD-005")
    assert code == 1, err
    assert f"{chart / 'templates' / 'deployment.yaml'}:12: KH-POD-005" in out
    assert "    privileged: false" in out
    assert (chart / "templates" / "deployment.yaml").read_text() == CHART_TEMPLATE
