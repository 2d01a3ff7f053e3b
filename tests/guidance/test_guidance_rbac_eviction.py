"""KH-RBAC-020 (RBAC scope, NSA-RBAC-4) and KH-NODE-022 (eviction thresholds, NSA-NET-14)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from guidance_helpers import dump, messages, result_of, scan_texts

from kubeharden.model import Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_layout import build_node

RBAC = "rbac.authorization.k8s.io/v1"


def crb(name: str, role: str, *subjects: dict, kind: str = "ClusterRoleBinding", namespace: str | None = None) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": list(subjects)}


def role(name: str, *rules: dict) -> dict:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


USER = {"kind": "User", "name": "alice@example.com", "apiGroup": "rbac.authorization.k8s.io"}
GROUP = {"kind": "Group", "name": "team-a", "apiGroup": "rbac.authorization.k8s.io"}
SA = {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}
SYSTEM = {"kind": "Group", "name": "system:nodes", "apiGroup": "rbac.authorization.k8s.io"}


def scan(tmp_path: Path, *objects: dict):
    return scan_texts(tmp_path, {"in.yaml": dump(*objects)}, only=("KH-RBAC-020",))


def test_users_and_groups_bound_cluster_wide_to_namespaced_powers(tmp_path: Path) -> None:
    result = scan(tmp_path, role("deployer", {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}),
                  crb("team", "deployer", USER, GROUP, SA, SYSTEM))
    findings = result_of(result, "KH-RBAC-020").findings
    assert [f.path for f in findings] == ["subjects[0]", "subjects[1]"]
    assert findings[0].message == (
        "User alice@example.com is bound cluster-wide by ClusterRoleBinding/team to ClusterRole/deployer, which "
        "grants only namespaced resources (deployments): a RoleBinding per namespace would do")


@pytest.mark.parametrize("rule", [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]},
    {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
])
def test_cluster_scoped_powers_need_a_cluster_binding(tmp_path: Path, rule: dict) -> None:
    result = scan(tmp_path, role("ops", {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, rule),
                  crb("ops", "ops", USER))
    assert result_of(result, "KH-RBAC-020").status is Status.PASS


def test_built_in_view_and_role_bindings(tmp_path: Path) -> None:
    result = scan(tmp_path, crb("viewers", "view", GROUP))  # view: namespaced reads (and namespaces)
    assert len(messages(result, "KH-RBAC-020")) == 1
    result = scan(tmp_path / "rb", crb("viewers", "view", GROUP, kind="RoleBinding", namespace="shop"))
    assert result_of(result, "KH-RBAC-020").status is Status.NOT_ASSESSED  # no ClusterRoleBinding in the input


def kubelet_root(tmp_path: Path, config: str | None = None, extra_args: str | None = None) -> Path:
    root = tmp_path / "root"
    build_node(root, hardened=True, kubelet_config=config, kubelet_extra_args=extra_args)
    return root


def test_eviction_from_config_and_flags(tmp_path: Path) -> None:
    base = yaml.safe_load((kubelet_root(tmp_path / "probe") / "var/lib/kubelet/config.yaml").read_text())
    base.pop("evictionHard", None)
    result = scan_texts(tmp_path / "a", {}, only=("KH-NODE-022",),
                        node={"root": str(kubelet_root(tmp_path / "a", yaml.safe_dump(base)))})
    [finding] = result_of(result, "KH-NODE-022").findings
    assert "without a threshold for pid.available" in finding.message
    assert "eviction is not enforcement" in finding.message
    full = {**base, "evictionHard": {"memory.available": "200Mi", "nodefs.available": "10%", "pid.available": "5%"}}
    result = scan_texts(tmp_path / "b", {}, only=("KH-NODE-022",),
                        node={"root": str(kubelet_root(tmp_path / "b", yaml.safe_dump(full)))})
    assert result_of(result, "KH-NODE-022").status is Status.PASS
    # a flag wins over the file and replaces its thresholds
    result = scan_texts(tmp_path / "c", {}, only=("KH-NODE-022",), node={"root": str(kubelet_root(
        tmp_path / "c", yaml.safe_dump(full), "--eviction-hard=memory.available<100Mi,nodefs.available<5%"))})
    [finding] = result_of(result, "KH-NODE-022").findings
    assert "pid.available" in finding.message and finding.evidence["origin"] == "flag"


def test_eviction_soft_counts(tmp_path: Path) -> None:
    head = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    text = head + "evictionHard: {memory.available: 100Mi, nodefs.available: 10%}\nevictionSoft: {pid.available: 10%}\n"
    result = scan_texts(tmp_path, {"kubelet.yaml": text}, only=("KH-NODE-022",))
    assert result_of(result, "KH-NODE-022").status is Status.PASS
