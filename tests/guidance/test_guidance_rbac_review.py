"""`kubeharden rbac review` and `kubeharden rbac diff` (NSA-RBAC-8)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from guidance_helpers import dump

from kubeharden.cli import cli

RBAC = "rbac.authorization.k8s.io/v1"


def binding(name: str, role: str, *subjects: dict, namespace: str | None = None) -> dict:
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "subjects": list(subjects),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}}


def role(name: str, *rules: dict) -> dict:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name}, "rules": list(rules)}


ALICE = {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
BOB = {"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}
READ = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}
SECRETS = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}


def review(tmp_path: Path, name: str, *objects: dict) -> Path:
    src = tmp_path / f"{name}.yaml"
    src.write_text(dump(*objects))
    out = tmp_path / f"{name}-review.json"
    result = CliRunner().invoke(cli, ["rbac", "review", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_review_lists_subjects_bindings_and_effective_rules(tmp_path: Path) -> None:
    out = review(tmp_path, "now", role("reader", READ), binding("alice-read", "reader", ALICE, namespace="shop"),
                 binding("alice-view", "view", ALICE))
    doc = json.loads(out.read_text())
    assert doc["kind"] == "kubeharden-rbac-review"
    [alice] = doc["subjects"]  # built-in bindings are left out unless asked
    assert alice["subject"] == {"kind": "User", "name": "alice"}
    scopes = [(b["binding"]["name"], b["scope"]) for b in alice["bindings"]]
    assert scopes == [("alice-view", "cluster"), ("alice-read", "shop")]
    read = alice["bindings"][1]["rules"]
    assert read == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]
    assert len(alice["bindings"][0]["rules"]) > 3  # view is aggregated: its effective rules are listed
    again = CliRunner().invoke(cli, ["rbac", "review", str(tmp_path / "now.yaml"), "-o", str(out)])
    assert again.exit_code == 2 and "exists" in again.output  # never overwritten without --force


def test_diff_new_subjects_new_and_removed_powers(tmp_path: Path) -> None:
    old = review(tmp_path, "old", role("reader", READ), binding("team", "reader", ALICE, namespace="shop"))
    new = review(tmp_path, "new", role("reader", READ, SECRETS), binding("team", "reader", BOB, namespace="shop"),
                 binding("alice2", "reader", ALICE, namespace="shop"))
    result = CliRunner().invoke(cli, ["rbac", "diff", str(old), str(new), "-f", "json"])
    assert result.exit_code == 0, result.output
    changes = {c["subject"]: c for c in json.loads(result.output)["changes"]}
    assert changes["User alice"]["change"] == "changed"
    assert [a["power"] for a in changes["User alice"]["added"]] == ["[shop] get secrets [core]"]
    assert changes["User alice"]["removed"] == []  # the same rule through another binding is no change
    assert changes["User bob"]["change"] == "new subject"
    md = CliRunner().invoke(cli, ["rbac", "diff", str(old), str(new), "-f", "markdown"])
    assert "## User bob (new subject)" in md.output and "- + `[shop] get secrets [core]`" in md.output
    table = CliRunner().invoke(cli, ["rbac", "diff", str(new), str(old)], env={"COLUMNS": "200"})
    assert "removed subject" in table.output


def test_diff_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "x.json"
    other.write_text('{"kind": "something"}')
    result = CliRunner().invoke(cli, ["rbac", "diff", str(other), str(other)])
    assert result.exit_code == 2 and "not a `kubeharden rbac review` file" in result.output
