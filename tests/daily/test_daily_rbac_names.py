"""Issue 12 item 7 and 11: RBAC questions never answer a typo with a confident "no"; kubectl's names,
positionals and -A."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.rbac import builtin_resources
from kubeharden.rbac.engine import RbacModel, Vocabulary, parse_resource, resolve_resource, resolve_verb

RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-reads-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}
subjects:
- {kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: shop}
rules:
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create]
- apiGroups: [""]
  resources: [pods, pods/log]
  verbs: [get]
- apiGroups: [example.com]
  resources: [gizmos]
  verbs: [frobnicate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dana-deploys, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects:
- {kind: User, name: dana, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wdg]}
  versions: [{name: v1, served: true, storage: true}]
"""


@pytest.fixture()
def rbac_file(tmp_path: Path) -> str:
    path = tmp_path / "rbac.yaml"
    path.write_text(RBAC)
    return str(path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["rbac", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", ["secret", "secrets", "Secret", "SECRETS"])
def test_who_can_secret_includes_the_system_authenticated_binding(rbac_file: str, name: str) -> None:
    # the singular used to be an unknown resource of "any group": the binding of the issue was left out
    code, out, err = run("who-can", rbac_file, "--verb", "get", "--resource", name, "-n", "shop", "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert "Group system:authenticated" in data["subjects"]
    assert data["request"] == "get secrets in namespace shop"


@pytest.mark.parametrize(("name", "expected"), [
    ("deploy", "deployments"), ("deployment", "deployments"), ("Deployment", "deployments"),
    ("deployments.apps", "deployments"), ("deploy.apps", "deployments"), ("deployments.v1.apps", "deployments"),
])
def test_can_i_accepts_kubectl_names_for_deployments(rbac_file: str, name: str, expected: str) -> None:
    code, out, err = run("can-i", rbac_file, "--as", "dana", "--verb", "create", "--resource", name,
                         "-n", "shop", "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["allowed"] is True and data["request"] == f"create {expected}.apps in namespace shop"


def test_short_name_po_and_subresource(rbac_file: str) -> None:
    assert run("can-i", rbac_file, "--as", "dana", "--verb", "get", "--resource", "po", "-n", "shop")[0] == 0
    assert run("can-i", rbac_file, "--as", "dana", "--verb", "get", "--resource", "po/log", "-n", "shop")[0] == 0
    assert run("can-i", rbac_file, "--as", "dana", "--verb", "get", "--resource", "po", "--subresource", "log",
               "-n", "shop")[0] == 0
    # a subresource the role does not grant is a real "no"
    assert run("can-i", rbac_file, "--as", "dana", "--verb", "create", "--resource", "pods/exec", "-n", "shop")[0] == 1


@pytest.mark.parametrize(("args", "hint"), [
    (("--verb", "gett", "--resource", "secrets"), "'get'"),
    (("--verb", "GET", "--resource", "secrets"), "'get'"),
    (("--verb", "get", "--resource", "secert"), "'secrets'"),
    (("--verb", "get", "--resource", "deploymnts"), "'deployments'"),
    (("--verb", "get", "--resource", "deployments.app"), "'deployments.apps'"),
    (("--verb", "get", "--resource", "pods/exc"), "'exec'"),
    (("--verb", "get", "--resource", "deployments.apps/scal"), "'scale'"),
    (("--verb", "get", "--resource", "secrets.apps"), "'secrets'"),
])
def test_typos_are_errors_with_a_suggestion(rbac_file: str, args: tuple[str, ...], hint: str) -> None:
    for command in (("can-i", "--as", "dana"), ("who-can",)):
        code, out, err = run(command[0], rbac_file, *command[1:], *args, "-n", "shop")
        assert code == 2, (command, args, out)
        assert "did you mean" in err and hint in err, err
        assert "yes" not in out.split() and "no" not in out.split()


def test_unknown_bare_names_are_errors_but_names_the_input_knows_are_not(rbac_file: str) -> None:
    code, _, err = run("can-i", rbac_file, "--as", "dana", "--verb", "get", "--resource", "doohickeys", "-n", "shop")
    assert code == 2 and "unknown resource 'doohickeys'" in err and "widgets.example.com" in err
    # a CRD of the input by any of its names, a resource and a custom verb that a rule uses, a written group
    for resource in ("widgets", "widget", "wdg", "Widget", "widget.example.com", "doohickeys.example.com"):
        assert run("can-i", rbac_file, "--as", "dana", "--verb", "get", "--resource", resource, "-n", "shop")[0] == 1
    assert run("can-i", rbac_file, "--as", "dana", "--verb", "frobnicate", "--resource", "gizmos",
               "-n", "shop")[0] == 0


def test_positional_verb_and_resource_like_kubectl(rbac_file: str) -> None:
    code, out, _ = run("can-i", "create", "deploy", rbac_file, "--as", "dana", "-n", "shop")
    assert code == 0 and out.startswith("yes")
    code, out, _ = run("can-i", "delete", "deploy", rbac_file, "--as", "dana", "-n", "shop")
    assert code == 1 and out.startswith("no")
    code, out, _ = run("can-i", "get", "/healthz", rbac_file, "--as", "dana")
    assert code == 0
    code, out, _ = run("who-can", "get", "secret", rbac_file, "-n", "shop", "-f", "json")
    assert code == 0 and "Group system:authenticated" in json.loads(out)["subjects"]
    code, _, err = run("can-i", "gett", "secrets", rbac_file, "--as", "dana", "-n", "shop")
    assert code == 2 and "'get'" in err
    code, _, err = run("can-i", "get", "--as", "dana")
    assert code == 2 and "resource" in err


def test_who_can_all_namespaces_adds_role_bindings_of_every_namespace(rbac_file: str) -> None:
    _, out, _ = run("who-can", "create", "deployments", rbac_file, "-f", "json")
    assert "User dana" not in json.loads(out)["subjects"]  # cluster scope: RoleBindings do not answer
    code, out, _ = run("who-can", "create", "deployments", rbac_file, "-A", "-f", "json")
    data = json.loads(out)
    assert code == 0 and "User dana" in data["subjects"] and data["request"].endswith("in any namespace")
    code, _, err = run("who-can", "create", "deployments", rbac_file, "-A", "-n", "shop")
    assert code == 2 and "not both" in err


def test_no_path_and_no_cluster_is_a_usage_error() -> None:
    code, _, err = run("who-can", "--verb", "get", "--resource", "pods")
    assert code == 2 and "--cluster" in err


def test_builtin_table_facts() -> None:
    # spot checks against `kubectl api-resources`
    facts = {r.resource: r for r in builtin_resources.BUILTIN_RESOURCES}
    assert facts["deployments"].short_names == ("deploy",) and facts["deployments"].group == "apps"
    assert facts["cronjobs"].short_names == ("cj",) and facts["priorityclasses"].short_names == ("pc",)
    assert facts["customresourcedefinitions"].short_names == ("crd", "crds")
    assert not facts["nodes"].namespaced and facts["secrets"].namespaced
    assert builtin_resources.lookup("ev") is not None and builtin_resources.lookup("ev").group == ""  # type: ignore[union-attr]
    assert builtin_resources.lookup("ev", "events.k8s.io") is not None
    assert parse_resource("netpol") == ("networkpolicies", "", "networking.k8s.io")
    assert parse_resource("gizmos") == ("gizmos", "", None)  # the lenient library reading is unchanged
    vocabulary = Vocabulary.of(RbacModel([]))
    assert resolve_resource("sts/scale", vocabulary) == ("statefulsets", "scale", "apps")
    assert resolve_verb("deletecollection", vocabulary) == "deletecollection"
    with pytest.raises(ValueError, match="did you mean 'list'"):
        resolve_verb("lsit", vocabulary)
