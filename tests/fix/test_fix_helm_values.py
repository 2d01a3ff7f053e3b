"""fix --helm writes values.yaml (or --values FILE) where a template reads the field from values:
directly, through toYaml of a values map, inside with and range; otherwise prints the template line.
Rendered by tests/fix/fake_helm.py (a small Go-template renderer) unless Helm itself is installed."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.fix.helmvalues import parse_template

FAKE_HELM = Path(__file__).with_name("fake_helm.py")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      {{- with .Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
      - name: web
        image: registry.example/web:1.0
        securityContext:
          privileged: {{ .Values.securityContext.privileged }}
          readOnlyRootFilesystem: {{ .Values.securityContext.readOnlyRootFilesystem }}
      - name: sidecar
        image: registry.example/sidecar:1.0
        securityContext: {{- toYaml .Values.sidecar.securityContext | nindent 10 }}
"""
WORKERS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-workers
spec:
  selector:
    matchLabels: {app: workers}
  template:
    metadata:
      labels: {app: workers}
    spec:
      containers:
      {{- range $name, $worker := .Values.workers }}
      - name: {{ $name }}
        image: registry.example/worker:1.0
        securityContext:
          {{- toYaml $worker.securityContext | nindent 10 }}
      {{- end }}
"""
AGENT = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .Release.Name }}-agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: registry.example/agent:1.0
        securityContext:
          privileged: true
          readOnlyRootFilesystem: true
"""
VALUES = """\
# Default values for shop.
podSecurityContext: {}

securityContext:
  privileged: true   # the web container
  readOnlyRootFilesystem: true

sidecar:
  securityContext:
    readOnlyRootFilesystem: true
    capabilities:
      add:
      - NET_ADMIN

workers:
  # rendered in sorted order: alpha, beta
  beta:
    securityContext:
      privileged: true
      readOnlyRootFilesystem: true
  alpha:
    securityContext: {readOnlyRootFilesystem: true}
"""
FIXED_VALUES = """\
# Default values for shop.
podSecurityContext: {}

securityContext:
  privileged: false   # the web container
  readOnlyRootFilesystem: true

sidecar:
  securityContext:
    readOnlyRootFilesystem: true

workers:
  # rendered in sorted order: alpha, beta
  beta:
    securityContext:
      privileged: false
      readOnlyRootFilesystem: true
  alpha:
    securityContext: {readOnlyRootFilesystem: true}
"""
CONTROLS = ["-c", "KH-POD-005,KH-POD-033", "--level", "tightening"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if shutil.which("helm") is None:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        helm = bin_dir / "helm"
        helm.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_HELM}" "$@"\n')
        helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "shop"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    (root / "values.yaml").write_text(VALUES)
    for name, text in (("deployment.yaml", DEPLOYMENT), ("workers.yaml", WORKERS), ("agent.yaml", AGENT)):
        (root / "templates" / name).write_text(text)
    return root


def findings(path: str, *extra: str) -> list[tuple[str, str, str]]:
    code, out, err = run("scan", path, "-f", "json", "--fail-on", "none", *extra)
    assert code == 0, err
    return sorted((f["control_id"], f["resource"]["name"], f["path"]) for f in json.loads(out)["findings"]
                  if f["control_id"] in ("KH-POD-005", "KH-POD-033"))


def templates(chart: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (chart / "templates").iterdir()}


def test_values_written_byte_exact_template_line_for_the_hard_coded_field(chart: Path) -> None:
    before = findings("shop")
    assert ("KH-POD-005", "release-name-web", "spec.template.spec.containers[0].securityContext.privileged") in before
    assert ("KH-POD-005", "release-name-workers", "spec.template.spec.containers[1].securityContext.privileged") \
        in before  # beta, the second in sorted order
    assert ("KH-POD-033", "release-name-web", "spec.template.spec.containers[1].securityContext.capabilities.add[0]") \
        in before
    unchanged = templates(chart)

    code, out, err = run("fix", "shop", "--helm", "--dry-run", *CONTROLS)
    assert code == 1, err  # the agent's hard-coded privileged needs a template change
    assert (chart / "values.yaml").read_text() == VALUES
    assert "-  privileged: true   # the web container\n+  privileged: false   # the web container" in out
    assert "shop/values.yaml: KH-POD-005 Deployment/release-name-web" in out
    assert "shop/templates/deployment.yaml:20 .Values.securityContext.privileged" in out

    code, out, err = run("fix", "shop", "--helm", "--no-backup", *CONTROLS)
    assert code == 1, err
    assert (chart / "values.yaml").read_text() == FIXED_VALUES
    assert templates(chart) == unchanged  # templates are never edited
    # the hard-coded one: its template line and the YAML to write there
    assert "shop/templates/agent.yaml:16: KH-POD-005 DaemonSet/release-name-agent" in out
    assert "    privileged: false" in out
    assert findings("shop") == [("KH-POD-005", "release-name-agent",
                                 "spec.template.spec.containers[0].securityContext.privileged")]
    # a second run has nothing left to write into values
    code, out, _ = run("fix", "shop", "--helm", "--no-backup", *CONTROLS)
    assert code == 1 and (chart / "values.yaml").read_text() == FIXED_VALUES
    assert "values.yaml: KH-POD-005" not in out
    assert sorted(p.name for p in chart.parent.iterdir() if p.name.startswith(".kubeharden")) == []


def test_with_block_values_map_gets_the_pod_level_fix(chart: Path) -> None:
    code, out, err = run("fix", "shop", "--helm", "--no-backup", "-c", "KH-POD-013", "--level", "tightening")
    values = (chart / "values.yaml").read_text()
    assert values.startswith("# Default values for shop.\n"
                             "podSecurityContext: {seccompProfile: {type: RuntimeDefault}}\n"), out + err
    assert values.split("\n", 2)[2] == VALUES.split("\n", 2)[2]
    # the workers' and the agent's pod specs are hard-coded: their template lines are printed
    assert "shop/templates/workers.yaml:11: KH-POD-013 Deployment/release-name-workers" in out
    assert code == 1


def test_values_file_given_is_the_one_edited(chart: Path) -> None:
    prod = chart.parent / "prod.yaml"
    prod.write_text("# production\nsecurityContext:\n  privileged: true\n")
    code, out, err = run("fix", "shop", "--helm", "--values", str(prod), "--no-backup", "-c", "KH-POD-005",
                         "--level", "tightening")
    # the file given overrides the chart's values: the workers' fix is added there too (merged over them)
    assert prod.read_text() == ("# production\nsecurityContext:\n  privileged: false\n"
                                "workers:\n  beta:\n    securityContext:\n      privileged: false\n"), out + err
    assert (chart / "values.yaml").read_text() == VALUES
    assert code == 1  # the agent's template
    assert [f for f in findings("shop", "--values", str(prod)) if f[0] == "KH-POD-005"] == [
        ("KH-POD-005", "release-name-agent", "spec.template.spec.containers[0].securityContext.privileged")]


def test_a_renderer_that_ignores_the_edit_is_caught_by_the_proof(chart: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a stale renderer: always the original output, whatever the values say
    rendered = tmp_path / "rendered.yaml"
    out = subprocess.run([sys.executable, str(FAKE_HELM), "template", "--", "release-name", str(chart)],
                         capture_output=True, check=True).stdout
    rendered.write_bytes(out)
    bin_dir = tmp_path / "stale"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(f"#!/bin/sh\n/bin/cat {rendered}\n")
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bin_dir))
    code, _, err = run("fix", "shop", "--helm", "--no-backup", "-c", "KH-POD-005", "--level", "tightening")
    assert code == 1
    assert (chart / "values.yaml").read_text() == VALUES
    assert "refused KH-POD-005 Deployment/release-name-web" in err


RANGE_OVER_LIST = """\
spec:
  containers:
  - name: fixed
  {{- range .Values.extra }}
  - name: {{ .name }}
    securityContext: {{- toYaml .securityContext | nindent 6 }}
  {{- end }}
"""


def test_range_is_mapped_only_when_it_makes_every_item() -> None:
    only_range = parse_template(RANGE_OVER_LIST.replace("  - name: fixed\n", ""))
    values = {"extra": [{"name": "a"}, {"name": "b"}]}
    target = only_range.target(("spec", "containers", 1, "securityContext", "privileged"), values)
    assert target is not None and target.values == ("extra", 1, "securityContext", "privileged")
    assert target.keep_depth == 3
    assert only_range.target(("spec", "containers", 2, "securityContext", "privileged"), values) is None
    mixed = parse_template(RANGE_OVER_LIST)  # a literal item before the range: index 1 is not extra[1]
    assert mixed.target(("spec", "containers", 1, "securityContext", "privileged"), values) is None


def test_pipelines_hard_coded_siblings_and_branches_are_not_mapped() -> None:
    piped = parse_template("spec:\n  hostPID: {{ .Values.hostPID | default false }}\n")
    assert piped.target(("spec", "hostPID"), {}) is None
    mixed = parse_template("sc:\n  privileged: true\n  {{- toYaml .Values.sc | nindent 2 }}\n")
    assert mixed.target(("sc", "privileged"), {}) is None
    assert mixed.target(("sc", "runAsNonRoot"), {}).values == ("sc", "runAsNonRoot")
    branches = parse_template("sc:\n{{- if .Values.a }}\n  privileged: {{ .Values.a.p }}\n{{- else }}\n"
                              "  privileged: {{ .Values.b.p }}\n{{- end }}\n")
    assert branches.target(("sc", "privileged"), {}) is None
