"""`kubeharden rbac` commands through click's CliRunner: answers, exit codes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubeharden.cli import cli

FIXTURE = str(Path(__file__).with_name("rbac_fixture.yaml"))
SA = "system:serviceaccount:"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["rbac", *args])
    return result.exit_code, result.stdout, result.stderr


def test_can_i_yes_names_the_grant() -> None:
    code, out, _ = run("can-i", FIXTURE, "--as", SA + "shop:app", "--verb", "get", "--resource", "secrets",
                       "-n", "shop")
    assert code == 0
    assert out.splitlines()[0] == "yes"
    assert "RoleBinding/shop/app-reads-secrets" in out and "ClusterRole/secret-reader" in out
    assert "rules[0]" in out


def test_can_i_no_exits_1() -> None:
    code, out, _ = run("can-i", FIXTURE, "--as", SA + "shop:app", "--verb", "get", "--resource", "secrets",
                       "-n", "billing")
    assert code == 1
    assert out.strip() == "no"


def test_can_i_cluster_scope_without_namespace() -> None:
    code, _, _ = run("can-i", FIXTURE, "--as", SA + "shop:app", "--verb", "get", "--resource", "secrets")
    assert code == 1


def test_can_i_as_group_and_json() -> None:
    code, out, _ = run("can-i", FIXTURE, "--as", "al", "--as-group", "auditors", "--verb", "list",
                       "--resource", "secrets", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert data["allowed"] is True
    assert set(data["groups"]) == {"auditors", "system:authenticated"}
    assert data["grants"][0]["binding"]["name"] == "auditors-read-secrets"
    assert data["grants"][0]["subject"] == {"kind": "Group", "name": "auditors"}


def test_can_i_non_resource_url() -> None:
    code, _, _ = run("can-i", FIXTURE, "--as", SA + "monitoring:prometheus", "--verb", "get",
                     "--non-resource-url", "/metrics")
    assert code == 0
    code, _, _ = run("can-i", FIXTURE, "--as", "frank", "--verb", "get", "--non-resource-url", "/metrics")
    assert code == 1


def test_can_i_subresource_and_resource_name() -> None:
    assert run("can-i", FIXTURE, "--as", "dana", "--verb", "create", "--resource", "pods/exec", "-n", "shop")[0] == 0
    assert run("can-i", FIXTURE, "--as", "eve", "--verb", "get", "--resource", "configmaps",
               "--resource-name", "app-settings", "-n", "shop")[0] == 0
    assert run("can-i", FIXTURE, "--as", "eve", "--verb", "get", "--resource", "configmaps", "-n", "shop")[0] == 1


def test_can_i_usage_errors_exit_2() -> None:
    code, _, err = run("can-i", FIXTURE, "--as", "dana", "--verb", "get")
    assert code == 2 and "exactly one of --resource or --non-resource-url" in err
    code, _, _ = run("can-i", FIXTURE, "--verb", "get", "--resource", "pods")
    assert code == 2  # --as is required


def test_can_i_rejects_an_empty_verb_and_a_named_non_resource_url() -> None:
    # an empty verb used to answer "no" (exit 1) instead of reporting the mistake
    code, out, err = run("can-i", FIXTURE, "--as", "dana", "--verb", " ", "--resource", "pods")
    assert code == 2 and "--verb" in err and out == ""
    code, _, err = run("who-can", FIXTURE, "--verb", "get", "--non-resource-url", "/metrics",
                       "--resource-name", "x")
    assert code == 2 and "--resource-name" in err


def test_input_error_is_reported_with_file_and_line_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    code, out, err = run("can-i", FIXTURE, str(broken), "--as", "dana", "--verb", "create",
                         "--resource", "pods/exec", "-n", "shop")
    assert code == 2
    assert out.splitlines()[0] == "yes"  # the readable inputs are still answered
    assert "broken.yaml:" in err and "error:" in err


def test_missing_role_warned_on_stderr() -> None:
    _, _, err = run("who-can", FIXTURE, "--verb", "get", "--resource", "pods", "-n", "shop")
    assert "does-not-exist" in err and "rbac_fixture.yaml:" in err


def test_who_can_json() -> None:
    code, out, _ = run("who-can", FIXTURE, "--verb", "get", "--resource", "secrets", "-n", "shop", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert set(data["subjects"]) == {
        "Group auditors", "ServiceAccount shop/app", "ServiceAccount billing/reporter",
        "Group system:masters", "User system:kube-controller-manager",
        "ServiceAccount kube-system/generic-garbage-collector", "ServiceAccount kube-system/namespace-controller",
    }
    app = next(g for g in data["grants"] if g["subject"].get("name") == "app")
    assert app["scope"] == "shop" and app["role"]["name"] == "secret-reader"


def test_who_can_table() -> None:
    code, out, _ = run("who-can", FIXTURE, "--verb", "create", "--resource", "pods/exec", "-n", "shop")
    assert code == 0
    assert "User dana" in out and "Group system:masters" in out
    assert "ServiceAccount shop/app" not in out


def test_list_permissions() -> None:
    code, out, _ = run("list", FIXTURE, "--as", SA + "shop:app", "-f", "json")
    assert code == 0
    data = json.loads(out)
    assert "system:serviceaccounts:shop" in data["groups"]
    bindings = {p["binding"]["name"] for p in data["permissions"]}
    assert {"app-reads-secrets", "viewers", "all-sa-list-nodes"} <= bindings
    assert "auditors-read-secrets" not in bindings
    code, out, _ = run("list", FIXTURE, "--as", SA + "shop:app", "-n", "billing", "-f", "json")
    assert "app-reads-secrets" not in {p["binding"]["name"] for p in json.loads(out)["permissions"]}
    code, out, _ = run("list", FIXTURE, "--as", "dana")
    assert code == 0 and "pods/exec" in out and "[core]" in out  # rich markup must not eat brackets


def test_risks_ranked() -> None:
    code, out, _ = run("risks", FIXTURE, "-f", "json")
    assert code == 0
    subjects = json.loads(out)["subjects"]
    assert [s["rank"] for s in subjects] == list(range(1, len(subjects) + 1))
    names = [s["display"] for s in subjects]
    # the unauthenticated grant is critical and ranks first
    assert names[0] == "Group system:unauthenticated"
    assert subjects[0]["max_severity"] == "critical"
    assert "ServiceAccount gateway/proxy" in names  # impersonation
    proxy = subjects[names.index("ServiceAccount gateway/proxy")]
    assert {r["risk"] for r in proxy["risks"]} == {"impersonate"}
    assert "ClusterRoleBinding/impersonators" in proxy["risks"][0]["chain"]
    severities = [s["max_severity"] for s in subjects]
    order = ["critical", "high", "medium", "low"]
    assert severities == sorted(severities, key=order.index)


def test_risks_table_and_limit() -> None:
    code, out, _ = run("risks", FIXTURE, "--limit", "2")
    assert code == 0
    assert "Group system:unauthenticated" in out
    assert "ServiceAccount gateway/proxy" not in out


def test_risks_hides_expected_system_subjects_unless_asked(tmp_path: Path) -> None:
    manifest = tmp_path / "rbac.yaml"
    manifest.write_text("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: addon-edit}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {kind: ServiceAccount, name: addon, namespace: kube-system}
- {kind: ServiceAccount, name: app, namespace: shop}
""")
    code, out, _ = run("risks", str(manifest), "-f", "json")
    assert code == 0
    assert [s["display"] for s in json.loads(out)["subjects"]] == ["ServiceAccount shop/app"]
    code, out, _ = run("risks", str(manifest), "--include-expected", "-f", "json")
    subjects = json.loads(out)["subjects"]
    assert [(s["display"], s["expected"]) for s in subjects] == [
        ("ServiceAccount shop/app", False), ("ServiceAccount kube-system/addon", True)]
