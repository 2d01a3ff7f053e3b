"""Built-in per-controller roles: system:controller:* ClusterRoles bound to kube-system ServiceAccounts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.rbac.engine import RbacModel, Request, UserInfo, _bootstrap, parse_resource

SA = "system:serviceaccount:"
DEPLOYMENT_CONTROLLER = SA + "kube-system:deployment-controller"

MINIMAL = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: x}
data: {a: b}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["rbac", *args])
    return result.exit_code, result.stdout, result.stderr


def _minimal(tmp_path: Path) -> str:
    path = tmp_path / "minimal.yaml"
    path.write_text(MINIMAL)
    return str(path)


def _model(text: str) -> RbacModel:
    loaded = load_bytes(text.encode(), "inline.yaml", LoadContext())
    assert not loaded.errors
    return RbacModel(loaded.resources)


def _request(verb: str, resource: str, namespace: str | None = None, name: str = "") -> Request:
    res, sub, group = parse_resource(resource)
    return Request(verb, res, sub, group, name, namespace)


def test_every_controller_role_is_bound_to_its_service_account() -> None:
    data = _bootstrap()
    roles = {r["metadata"]["name"] for r in data["clusterRoles"]
             if r["metadata"]["name"].startswith("system:controller:")}
    bindings = [b for b in data["clusterRoleBindings"] if b["name"].startswith("system:controller:")]
    assert len(roles) >= 30
    assert {b["role"] for b in bindings} == roles
    for binding in bindings:
        controller = binding["name"].removeprefix("system:controller:")
        assert binding["role"] == binding["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": controller, "namespace": "kube-system"}]


def test_can_i_yes_through_the_builtin_controller_binding(tmp_path: Path) -> None:
    code, out, _ = run("can-i", _minimal(tmp_path), "--as", DEPLOYMENT_CONTROLLER, "--verb", "create",
                       "--resource", "replicasets.apps", "-n", "x", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert data["allowed"] is True
    assert {g["binding"]["name"] for g in data["grants"]} == {"system:controller:deployment-controller"}


def test_can_i_no_for_a_verb_the_controller_lacks(tmp_path: Path) -> None:
    # deployments: get, list, update, watch only; no delete, and nothing on secrets.
    code, out, _ = run("can-i", _minimal(tmp_path), "--as", DEPLOYMENT_CONTROLLER, "--verb", "delete",
                       "--resource", "deployments.apps", "-n", "x")
    assert code == 1
    assert out.strip() == "no"
    code, _, _ = run("can-i", _minimal(tmp_path), "--as", DEPLOYMENT_CONTROLLER, "--verb", "get",
                     "--resource", "secrets", "-n", "x")
    assert code == 1


def test_controller_rules_keep_resource_names_and_wildcards() -> None:
    model = _model(MINIMAL)
    cleaner = UserInfo.for_name(SA + "kube-system:legacy-service-account-token-cleaner")
    assert model.can(cleaner, _request("get", "configmaps", "kube-system",
                                       "kube-apiserver-legacy-service-account-token-tracking"))
    assert not model.can(cleaner, _request("get", "configmaps", "kube-system", "other"))
    hpa = UserInfo.for_name(SA + "kube-system:horizontal-pod-autoscaler")
    assert model.can(hpa, _request("update", "deployments.apps/scale", "x"))
    assert not model.can(hpa, _request("update", "deployments.apps", "x"))
    # another namespace's ServiceAccount of the same name gets nothing from the built-in binding
    other = UserInfo.for_name(SA + "x:deployment-controller")
    assert not model.can(other, _request("create", "replicasets.apps", "x"))


def test_binding_to_a_controller_role_is_not_a_missing_role() -> None:
    model = _model("""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: my-deployer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:controller:deployment-controller}
subjects: [{kind: ServiceAccount, name: deployer, namespace: ci}]
""")
    assert not [p.message for p in model.problems]
    assert model.can(UserInfo.for_name(SA + "ci:deployer"), _request("create", "replicasets.apps", "x"))


def test_input_objects_replace_the_builtin_controller_entries() -> None:
    model = _model("""\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: system:controller:deployment-controller}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: system:controller:job-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:controller:job-controller}
subjects: [{kind: User, name: jo}]
""")
    deployer = UserInfo.for_name(DEPLOYMENT_CONTROLLER)
    assert model.can(deployer, _request("get", "configmaps", "x"))
    assert not model.can(deployer, _request("create", "replicasets.apps", "x"))
    # the input binding of the same name wins: the built-in subject is gone, the input one counts
    assert not model.can(UserInfo.for_name(SA + "kube-system:job-controller"), _request("create", "pods", "x"))
    assert model.can(UserInfo.for_name("jo"), _request("create", "pods", "x"))


def test_risks_do_not_judge_builtin_controller_bindings(tmp_path: Path) -> None:
    for extra in ([], ["--include-expected"]):
        code, out, _ = run("risks", _minimal(tmp_path), *extra, "-f", "json")
        assert code == 0
        assert json.loads(out)["subjects"] == []
