"""The node controls inside `kubeharden scan`: a kubeadm-style config repository (static pod
manifests and config files as plain inputs) and a live cluster's mirror pods in kube-system."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner
from node_helpers import messages, node_results, scan_paths, status_of
from node_layout import build_node, write

from kubeharden.cli import cli
from kubeharden.model import Status
from kubeharden.nodeconf.manifests import flags_for, static_pod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from fake_apiserver import FakeApiServer  # lives with the live-cluster tests

CONFIG_FILES = ("etc/kubernetes/manifests", "var/lib/kubelet/config.yaml", "etc/kubernetes/enc/encryption-config.yaml",
                "etc/kubernetes/audit/audit-policy.yaml", "etc/kubernetes/admission")
FILE_CONTROLS = ("KH-CP-030", "KH-CP-031", "KH-CP-032", "KH-CP-033", "KH-SEC-005", "KH-NODE-013")


def _repository(tmp_path: Path, hardened: bool) -> list[Path]:
    """The config files of a node, as a repository holds them (no modes, no systemd units)."""
    root = build_node(tmp_path / ("h" if hardened else "d"), hardened)
    return [root / rel for rel in CONFIG_FILES if (root / rel).exists()]


def test_config_repository_is_judged_by_scan(tmp_path: Path) -> None:
    result = scan_paths(*_repository(tmp_path, True))
    results = node_results(result)
    failed = {cid: messages(result, cid) for cid, r in results.items() if r.status is Status.FAIL}
    assert failed == {}
    # the referenced files are found among the inputs by kind and judged
    for cid in ("KH-SEC-002", "KH-SEC-003", "KH-SEC-004", "KH-LOG-003", "KH-LOG-004", "KH-LOG-005",
                "KH-NODE-001", "KH-NODE-002", "KH-CP-001", "KH-CP-012"):
        assert results[cid].status is Status.PASS, cid
    for cid in FILE_CONTROLS:  # modes and owners need a node root or bundle
        assert results[cid].status is Status.NOT_ASSESSED, cid


def test_config_repository_findings_point_into_the_files(tmp_path: Path) -> None:
    files = _repository(tmp_path, True)
    policy = next(p for p in files if p.name == "audit-policy.yaml")
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    kubelet = next(p for p in files if p.name == "config.yaml")
    kubelet.write_text(kubelet.read_text().replace("readOnlyPort: 0", "readOnlyPort: 10255"))
    result = scan_paths(*files)
    leak = node_results(result)["KH-LOG-003"].findings[0]
    assert leak.file is not None and leak.file.endswith("audit-policy.yaml") and leak.line == 4
    assert leak.path == "rules[0].level" and leak.value == "RequestResponse"
    port = node_results(result)["KH-NODE-004"].findings[0]
    assert port.file is not None and port.file.endswith("config.yaml") and port.value == 10255
    assert kubelet.read_text().splitlines()[port.line - 1] == "readOnlyPort: 10255"  # type: ignore[operator]


def test_default_manifests_in_a_repository(tmp_path: Path) -> None:
    result = scan_paths(*_repository(tmp_path, False))
    for cid in ("KH-CP-001", "KH-CP-007", "KH-CP-009", "KH-LOG-001", "KH-SEC-001"):
        assert status_of(result, cid) is Status.FAIL, cid
    # no policy or encryption file: the content controls say why instead of passing
    reason = node_results(result)["KH-SEC-002"].reason or ""
    assert status_of(result, "KH-SEC-002") is Status.NOT_ASSESSED
    assert "--encryption-provider-config is not set" in reason


def _mirror(component: str, **overrides: str | None) -> dict[str, object]:
    pod = static_pod(component, flags_for(component, **overrides))
    meta = pod["metadata"]
    assert isinstance(meta, dict)
    meta["annotations"] = {"kubernetes.io/config.mirror": "0123456789abcdef", "kubernetes.io/config.source": "file"}
    pod["status"] = {"phase": "Running"}
    return pod


def test_live_cluster_mirror_pods_are_judged(tmp_path: Path) -> None:
    objects: list[dict[str, object]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}},
        _mirror("kube-apiserver", anonymous_auth="true"),
        _mirror("etcd", client_cert_auth="false"),
        _mirror("kube-scheduler"),
        _mirror("kube-controller-manager"),
    ]
    with FakeApiServer(objects) as server:  # type: ignore[arg-type]
        kubeconfig = server.kubeconfig(tmp_path / "kubeconfig.yaml")
        outcome = CliRunner().invoke(cli, ["scan", "--cluster", "--kubeconfig", str(kubeconfig), "-f", "json",
                                           "--fail-on", "none", "-c", "KH-CP-*", "-c", "KH-SEC-*", "-c", "KH-LOG-*"])
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout)
    status = {c["id"]: c for c in report["controls"]}
    assert status["KH-CP-001"]["status"] == "fail" and status["KH-CP-012"]["status"] == "fail"
    assert status["KH-CP-016"]["status"] == "pass" and status["KH-CP-011"]["status"] == "pass"
    anonymous = next(f for f in report["findings"] if f["control_id"] == "KH-CP-001")
    assert anonymous["resource"]["name"] == "kube-apiserver-cp1" and anonymous["resource"]["namespace"] == "kube-system"
    assert anonymous["evidence"]["flag"] == "--anonymous-auth" and anonymous["value"] == "true"
    # what a cluster's API cannot show is not assessed, with the reason
    assert status["KH-CP-031"]["status"] == "not_assessed"
    assert status["KH-SEC-002"]["status"] == "not_assessed"


def test_pod_running_the_component_from_its_image_entrypoint(tmp_path: Path) -> None:
    """No `command`, flags in `args` (the image's entrypoint is the binary): every arg is a flag."""
    pod = static_pod("kube-apiserver", flags_for("kube-apiserver", profiling="true"))
    container = pod["spec"]["containers"][0]  # type: ignore[index]
    container["args"] = container.pop("command")[1:]
    write(tmp_path, "/apiserver.yaml", yaml.safe_dump(pod), 0o644)
    result = scan_paths(tmp_path / "apiserver.yaml")
    finding = node_results(result)["KH-CP-009"].findings[0]
    assert finding.path.startswith("spec.containers[0].args[") and finding.value == "true"
    assert status_of(result, "KH-CP-001") is Status.FAIL
