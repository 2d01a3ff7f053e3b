"""Control-plane static pods (built-in exceptions, impossible findings dropped) and the subjects of
findings without an object: inferred namespaces and kubelet command lines (issue 12, items 5 and 6)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from node_layout import build_node

from kubeharden.builtin_exceptions import BUILTIN_RULES
from kubeharden.cli import cli

FORMATS = ("json", "sarif", "junit", "markdown", "html", "table")


def _node_json(root: Path, *extra: str) -> dict:
    result = CliRunner().invoke(cli, ["node", "--root", str(root), "--no-processes", "-f", "json", *extra])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def _by(report: dict, control: str, name: str) -> list[dict]:
    return [f for f in report["findings"] if f["control_id"] == control and (f["resource"] or {}).get("name") == name]


def test_kubeadm_root_static_pods(tmp_path: Path) -> None:
    root = build_node(tmp_path / "root", hardened=False)
    report = _node_json(root)
    # a static pod runs under no ServiceAccount: no token, no default account
    assert not [f for f in report["findings"] if f["control_id"] in ("KH-POD-023", "KH-POD-026")]
    [host_network] = _by(report, "KH-POD-007", "kube-apiserver-cp1")
    assert host_network["excepted"] is True
    assert host_network["exception"]["kind"] == "builtin"
    assert host_network["exception"]["rule"] == "control-plane-host-network"
    assert "--no-builtin-exceptions" in host_network["exception"]["origin"]
    certs = _by(report, "KH-POD-009", "kube-apiserver-cp1")
    assert certs and all(f["exception"]["rule"] == "control-plane-host-paths" for f in certs)
    root_user = _by(report, "KH-POD-002", "etcd-cp1")
    assert root_user and root_user[0]["exception"]["rule"] == "control-plane-root"
    # fixable hardening stays an active finding
    assert all(not f["excepted"] for f in _by(report, "KH-POD-004", "kube-apiserver-cp1"))
    table = CliRunner().invoke(cli, ["node", "--root", str(root), "--no-processes", "-c", "KH-POD-007",
                                     "--details"]).stdout
    assert "excepted: control-plane static pod" in table
    off = _node_json(root, "--no-builtin-exceptions")
    assert all(not f["excepted"] for f in off["findings"])
    assert len(_by(off, "KH-POD-007", "kube-apiserver-cp1")) == 1


MIRROR_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver-node-1
  namespace: kube-system
  labels: {component: kube-apiserver, tier: control-plane}
  annotations: {kubernetes.io/config.mirror: 0f4a5c, kubernetes.io/config.source: file}
spec:
  hostNetwork: true
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.31.2
    command: [kube-apiserver, --secure-port=6443]
    volumeMounts:
    - {name: k8s-certs, mountPath: /etc/kubernetes/pki, readOnly: true}
    - {name: docker, mountPath: /var/run/docker.sock}
  volumes:
  - {name: k8s-certs, hostPath: {path: /etc/kubernetes/pki, type: DirectoryOrCreate}}
  - {name: docker, hostPath: {path: /var/run/docker.sock}}
"""


def test_mirror_pods_in_a_snapshot_or_manifest(tmp_path: Path) -> None:
    path = tmp_path / "mirror.yaml"
    path.write_text(MIRROR_POD)
    report = json.loads(CliRunner().invoke(cli, ["scan", str(path), "-f", "json", "-c", "KH-POD-*"]).stdout)
    name = "kube-apiserver-node-1"
    assert _by(report, "KH-POD-007", name)[0]["exception"]["kind"] == "builtin"
    volumes = {f["path"].split("]")[0]: f["excepted"] for f in _by(report, "KH-POD-009", name)}
    assert volumes == {"spec.volumes[0": True, "spec.volumes[1": False}  # docker.sock is no certificate
    assert not _by(report, "KH-POD-023", name)
    # the same pod without the mirror annotation is an ordinary pod named like a component
    plain = MIRROR_POD.replace("  annotations: {kubernetes.io/config.mirror: 0f4a5c, kubernetes.io/config.source: "
                               "file}\n", "")
    path.write_text(plain)
    report = json.loads(CliRunner().invoke(cli, ["scan", str(path), "-f", "json", "-c", "KH-POD-*"]).stdout)
    assert all(not f["excepted"] for f in report["findings"])
    assert _by(report, "KH-POD-023", name)


def test_builtin_rules_are_listed_and_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "node.md").read_text()
    for rule in BUILTIN_RULES:
        assert rule.id in docs and rule.reason
        for control in rule.controls:
            assert control in docs


NAMESPACE_LESS = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: warehouse}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: warehouse}
rules: []
"""


def test_namespace_findings_are_on_the_inferred_namespace(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.yaml"
    path.write_text(NAMESPACE_LESS)
    args = ["scan", str(path), "--as-cluster", "-c", "KH-NET-004", "-c", "KH-NET-012", "-c", "KH-NET-013"]
    report = json.loads(CliRunner().invoke(cli, [*args, "-f", "json"]).stdout)
    assert {f["control_id"] for f in report["findings"]} == {"KH-NET-004", "KH-NET-012", "KH-NET-013"}
    for f in report["findings"]:
        assert f["resource"] == {"apiVersion": "v1", "kind": "Namespace", "namespace": None, "name": "warehouse"}
        assert f["source"] is None or f["source"].get("file") is None
        assert f["evidence"]["namespace_inferred"] is True
        assert "namespace inferred from its resources" in f["message"]
    for fmt in FORMATS:
        result = CliRunner().invoke(cli, [*args, "-f", fmt, "--details"] if fmt == "table" else [*args, "-f", fmt])
        assert result.exit_code == 1, (fmt, result.output)
        assert ('"name": "warehouse"' if fmt == "json" else "Namespace/warehouse") in result.stdout, fmt


def test_kubelet_command_line_findings_name_the_node(tmp_path: Path) -> None:
    for extra, name in (("--read-only-port=10255 --hostname-override=cp-7", "cp-7"),
                        ("--read-only-port=10255", "kubelet")):
        root = build_node(tmp_path / name, hardened=False, kubelet_extra_args=extra)
        report = _node_json(root, "-c", "KH-NODE-004")
        [finding] = report["findings"]
        assert finding["resource"] == {"apiVersion": "v1", "kind": "Node", "namespace": None, "name": name}
        assert finding["source"]["file"].endswith("/etc/default/kubelet")
        for fmt in FORMATS[1:]:  # JSON is checked above
            out = CliRunner().invoke(cli, ["node", "--root", str(root), "--no-processes", "-c", "KH-NODE-004",
                                           "-f", fmt, *(["--details"] if fmt == "table" else [])]).stdout
            assert f"Node/{name}" in out, fmt
