"""The in-cluster deployment: the plain manifests under deploy/ and the Helm chart render objects
that kubeharden itself passes with no finding at or above medium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubeharden.cli import cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CHART = DEPLOY / "helm" / "kubeharden"


def scan_findings(*paths: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["scan", *paths, "-f", "json", "--fail-on", "none"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["findings"]


def at_or_above_medium(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['severity']} {f['control_id']} {f['resource']}: {f['message']}" for f in findings
            if not f["excepted"] and f["severity"] in ("medium", "high", "critical")]


def test_plain_manifests_pass_their_own_scan() -> None:
    findings = scan_findings(str(DEPLOY / "kubeharden-cronjob.yaml"), str(DEPLOY / "kubeharden-reader-rbac.yaml"))
    assert at_or_above_medium(findings) == []
    kinds = {f["resource"]["kind"] for f in findings}
    assert kinds <= {"CronJob", "Namespace", "ClusterRoleBinding"}  # what is left is low or an accepted risk
    cronjob = next(d for d in yaml.safe_load_all((DEPLOY / "kubeharden-cronjob.yaml").read_text())
                   if d["kind"] == "CronJob")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"][:2] == ["scan", "--cluster"] and "none" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"]
    assert container["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "kubeharden-store"
    assert pod["serviceAccountName"] == "kubeharden"


def _rules_of(text: str, role: str) -> list[dict[str, Any]]:
    for doc in yaml.safe_load_all(text):
        if doc and doc.get("kind") == "ClusterRole" and doc["metadata"]["name"].endswith(role):
            return list(doc["rules"])
    raise AssertionError(f"no ClusterRole {role}")


def test_chart_rbac_is_the_plain_read_only_rbac() -> None:
    """The chart cannot include a file outside itself: its copy of the rules must not drift."""
    template = (CHART / "templates" / "rbac.yaml").read_text()
    # the templated parts are names and labels; the rules are plain YAML
    plain = re.sub(r"\{\{-?.*?-?\}\}", "x", template)
    plain = "\n".join(line for line in plain.splitlines() if line.strip() != "x")
    expected = (DEPLOY / "kubeharden-reader-rbac.yaml").read_text()
    assert _rules_of(plain, "kubeharden-reader") == _rules_of(expected, "kubeharden-reader")
    assert all(rule["verbs"] == ["list"] for rule in _rules_of(plain, "kubeharden-reader"))


VALUE_SETS = {
    "defaults": [],
    "store-and-report": ["--set", "store.existingSecret=kubeharden-store", "--set", "report.enabled=true",
                         "--set", "clusterName=prod-eu", "--set", "extraLabels.env=prod"],
    "secrets-metadata": ["--set", "rbac.secretsMetadata=true", "--set", "image.digest=sha256:" + "a" * 64],
}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_chart_renders_objects_that_pass_the_scan(name: str, tmp_path: Path) -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed: the chart is rendered only where helm is (the plain manifests are "
                    "tested above)")
    rendered = subprocess.run([helm, "template", "kh", str(CHART), "--namespace", "kubeharden", *VALUE_SETS[name]],
                              capture_output=True, text=True, timeout=120, check=True).stdout
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"] for d in docs}
    assert {"CronJob", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "NetworkPolicy"} <= kinds
    assert at_or_above_medium(scan_findings(str(out))) == []
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    args = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["scan", "--cluster"]
    if name == "store-and-report":
        assert "cluster=prod-eu" in args and "env=prod" in args and "/reports/report.html" in args
        assert any(d["kind"] == "PersistentVolumeClaim" for d in docs)
