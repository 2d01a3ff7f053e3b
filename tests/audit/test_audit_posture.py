"""Joins with posture (`--cluster-state`): the alert gains the scan's finding as context and goes up
one severity step when that finding makes it worse; context that does not (a namespace without
NetworkPolicy) is attached but raises nothing. Manifests as the cluster state, through the CLI."""

from __future__ import annotations

import json

import pytest
from audit_helpers import jsonl
from click.testing import CliRunner

from kubeharden.audit.detectors._events import event
from kubeharden.cli import cli

HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
STATE = """apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: apps}
spec:
  containers:
  - {name: web, image: registry.example.com/web:1, securityContext: {privileged: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: safe-1, namespace: apps}
spec:
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001,
                    seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: web
    image: registry.example.com/web@sha256:0123456789012345678901234567890123456789012345678901234567890123
    resources: {limits: {cpu: 100m, memory: 64Mi}, requests: {cpu: 100m, memory: 64Mi}}
    securityContext: {hardened}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: ci, namespace: apps}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: apps}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ci-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: ci, namespace: apps}
---
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver-cp1, namespace: kube-system, labels: {component: kube-apiserver}}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.31.2
    command: [kube-apiserver, --authorization-mode=Node,RBAC, --anonymous-auth={anonymous}]
""".replace("{hardened}", json.dumps(HARDENED))
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated")


def _alerts(tmp_path, events, anonymous: str = "true", state: bool = True) -> list[dict]:
    log = tmp_path / "audit.log"
    log.write_bytes(jsonl(events))
    manifests = tmp_path / "state.yaml"
    manifests.write_text(STATE.replace("{anonymous}", anonymous))
    settings = tmp_path / "settings.yaml"
    settings.write_text("podCIDRs: [10.244.0.0/16]\nnodeIPs: [10.0.0.10]\n")
    args = ["audit", str(log), "-f", "jsonl", "--fail-on", "none", "--settings", str(settings)]
    result = CliRunner().invoke(cli, [*args, "--cluster-state", str(manifests)] if state else args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _only(alerts: list[dict], detector: str) -> dict:
    mine = [a for a in alerts if a["control_id"] == detector]
    assert len(mine) == 1, alerts
    return mine[0]


def test_exec_into_a_privileged_pod_gains_kh_pod_005_and_goes_up(tmp_path) -> None:
    exec_web = event("create", "pods", name="web-1", subresource="exec", code=101)
    plain = _only(_alerts(tmp_path, [exec_web], state=False), "D05")
    joined = _only(_alerts(tmp_path, [exec_web]), "D05")
    assert plain["severity"] == "medium" and "posture" not in plain["evidence"]
    assert joined["severity"] == "high"
    first = joined["evidence"]["posture"][0]
    assert first["control"] == "KH-POD-005" and first["object"] == "Pod/apps/web-1"
    assert "KH-POD-005" in joined["message"]


def test_exec_into_a_hardened_pod_keeps_its_severity(tmp_path) -> None:
    joined = _only(_alerts(tmp_path, [event("create", "pods", name="safe-1", subresource="exec", code=101)]), "D05")
    assert joined["severity"] == "medium"
    context = joined["evidence"].get("posture", [])
    assert not any(c["control"].startswith("KH-POD-") and c["severity"] in ("high", "critical") for c in context)
    assert "[posture" not in joined["message"]


@pytest.mark.parametrize(("account", "raised"), [("ci", True), ("web", False)])
def test_token_used_off_cluster_by_an_account_with_risky_rbac(tmp_path, account, raised) -> None:
    stolen = event("list", "pods", name="", user=f"system:serviceaccount:apps:{account}", groups=SA_GROUPS,
                   ips=("34.89.10.20",))
    alert = _only(_alerts(tmp_path, [stolen]), "D04")
    if raised:  # cluster-admin through ClusterRoleBinding ci-admin, indexed by the account
        assert alert["severity"] == "critical"
        first = alert["evidence"]["posture"][0]
        assert first["control"] == "KH-RBAC-001" and first["object"] == "ServiceAccount/apps/ci"
        assert "ci-admin" in first["message"]
    else:
        assert alert["severity"] == "high" and "posture" not in alert["evidence"]


@pytest.mark.parametrize(("anonymous", "severity"), [("true", "critical"), ("false", "high")])
def test_anonymous_success_while_kh_cp_001_fails(tmp_path, anonymous, severity) -> None:
    anon = event("list", "secrets", name="", namespace="kube-system", user="system:anonymous",
                 groups=("system:unauthenticated",), ips=("192.0.2.9",))
    denied = event("get", "secrets", name="x", namespace="kube-system", user="system:anonymous",
                   groups=("system:unauthenticated",), ips=("192.0.2.10",), code=403)
    alerts = [a for a in _alerts(tmp_path, [anon, denied], anonymous) if a["control_id"] == "D07"]
    success = next(a for a in alerts if "succeeded" in a["message"])
    failure = next(a for a in alerts if "denied" in a["message"])
    assert success["severity"] == severity
    assert failure["severity"] == "low"  # a refused anonymous request is not made worse by the posture
    if anonymous == "true":
        assert success["evidence"]["posture"][0]["control"] == "KH-CP-001"
    else:
        assert "posture" not in success["evidence"]
