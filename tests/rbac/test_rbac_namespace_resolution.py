"""A RoleBinding without metadata.namespace is in `default` for the RBAC engine and for KH-POD-023 alike."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubeharden.cli import cli

# Like kubeflow's grafana-rolebinding.yaml: neither the binding nor its subject names a namespace, while
# the Deployments of that ServiceAccount name live in a namespace of their own.
MANIFESTS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: dashboards}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dashboards}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: dashboards}
subjects:
- {kind: ServiceAccount, name: dashboards}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: dashboards, namespace: observability}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dashboards, namespace: observability}
spec:
  selector: {matchLabels: {app: dashboards}}
  template:
    metadata: {labels: {app: dashboards}}
    spec:
      serviceAccountName: dashboards
      containers: [{name: ui, image: registry.example/dashboards:1.0}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: dashboards}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dashboards-default}
spec:
  selector: {matchLabels: {app: dashboards}}
  template:
    metadata: {labels: {app: dashboards}}
    spec:
      serviceAccountName: dashboards
      containers: [{name: ui, image: registry.example/dashboards:1.0}]
"""


def _write(tmp_path: Path) -> str:
    path = tmp_path / "dashboards.yaml"
    path.write_text(MANIFESTS)
    return str(path)


def test_rbac_engine_puts_the_binding_in_default(tmp_path: Path) -> None:
    path = _write(tmp_path)
    result = CliRunner().invoke(cli, ["rbac", "who-can", path, "--verb", "list", "--resource", "configmaps",
                                      "-n", "default", "-f", "json"])
    assert "ServiceAccount default/dashboards" in json.loads(result.stdout)["subjects"]
    account = "system:serviceaccount:observability:dashboards"
    elsewhere = CliRunner().invoke(cli, ["rbac", "can-i", path, "--as", account,
                                         "--verb", "list", "--resource", "configmaps", "-n", "observability"])
    assert elsewhere.exit_code == 1


def test_pod_023_uses_the_same_namespace(tmp_path: Path) -> None:
    path = _write(tmp_path)
    for extra in ((), ("--as-cluster",)):
        result = CliRunner().invoke(cli, ["scan", path, "-c", "KH-POD-023", "-f", "json", *extra])
        report = json.loads(result.stdout)
        flagged = {(f["resource"]["namespace"], f["resource"]["name"]) for f in report["findings"]}
        # observability/dashboards is bound nowhere (the binding is default's), so its token is unneeded;
        # the default namespace's Deployment runs as the bound account and calls the API.
        assert flagged == {("observability", "dashboards")}, extra


KUSTOMIZE_BASE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: operator}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: operator}
spec:
  selector: {matchLabels: {app: operator}}
  template:
    metadata: {labels: {app: operator}}
    spec:
      serviceAccountName: operator
      containers: [{name: manager, image: registry.example/operator:1.0}]
"""


def test_unplaced_pods_still_match_their_bindings_by_name(tmp_path: Path) -> None:
    # A kustomize base: neither the pod nor the ClusterRoleBinding subject has a namespace yet.
    path = tmp_path / "base.yaml"
    path.write_text(KUSTOMIZE_BASE)
    report = json.loads(CliRunner().invoke(cli, ["scan", str(path), "-c", "KH-POD-023", "-f", "json",
                                                 "--as-cluster"]).stdout)
    assert report["findings"] == []
    placed = KUSTOMIZE_BASE.replace("metadata: {name: operator}\nspec:",
                                    "metadata: {name: operator, namespace: ops}\nspec:")
    path.write_text(placed)
    report = json.loads(CliRunner().invoke(cli, ["scan", str(path), "-c", "KH-POD-023", "-f", "json",
                                                 "--as-cluster"]).stdout)
    # placed in ops, the account is bound nowhere (the subject names no namespace, which binds nobody)
    assert [(f["resource"]["namespace"], f["resource"]["name"]) for f in report["findings"]] == [("ops", "operator")]
