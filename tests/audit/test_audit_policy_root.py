"""Policy coverage without --policy: the audit Policy the API server's --audit-policy-file names,
read from a node root (--root) or from a cluster state that holds the static pod and the file, as
KH-LOG-* resolve it. The same blind spots as when the file is given with --policy."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_audit_cli import POLICY_BLIND, POLICY_GOOD

from kubeharden.cli import cli
from kubeharden.controls.audit import POLICY_PATH
from kubeharden.nodeconf.manifests import AUDIT_VOLUMES, example

MANIFEST = "etc/kubernetes/manifests/kube-apiserver.yaml"


def _root(tmp_path: Path, policy: str | None, flag: str | None = POLICY_PATH) -> Path:
    root = tmp_path / "node"
    (root / "etc/kubernetes/manifests").mkdir(parents=True)
    (root / MANIFEST).write_text(example("kube-apiserver", False, "v1.31.2", volumes=AUDIT_VOLUMES,
                                         audit_policy_file=flag, audit_log_path="/var/log/kubernetes/audit/audit.log"))
    if policy is not None:
        (root / POLICY_PATH.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / POLICY_PATH.lstrip("/")).write_text(policy)
    return root


def _report(tmp_path: Path, *args: str) -> dict:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    result = CliRunner().invoke(cli, ["audit", str(log), "-f", "json", "--fail-on", "none", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _blind(report: dict) -> dict[str, dict]:
    return {f["control_id"]: f for f in report["findings"] if f.get("evidence", {}).get("kind") == "policy-coverage"}


def test_root_gives_the_same_coverage_as_the_policy_file(tmp_path) -> None:
    root = _root(tmp_path, POLICY_BLIND)
    policy_file = root / POLICY_PATH.lstrip("/")
    from_root = _blind(_report(tmp_path, "--root", str(root)))
    from_file = _blind(_report(tmp_path, "--policy", str(policy_file)))
    assert set(from_root) == set(from_file) and {"D01", "D07", "D14"} <= set(from_root)
    assert from_root["D07"]["message"] == from_file["D07"]["message"]
    assert from_root["D01"]["source"]["file"] == str(policy_file)  # the file, inside the root


def test_root_with_a_good_policy_blinds_nothing(tmp_path) -> None:
    report = _report(tmp_path, "--root", str(_root(tmp_path, POLICY_GOOD)))
    assert not _blind(report)
    assert any(n.startswith("policy coverage: 0 detector(s) blinded by") and "--audit-policy-file" in n
               for n in report["notes"])


def test_root_without_an_audit_policy_says_why_not_assessed(tmp_path) -> None:
    report = _report(tmp_path, "--root", str(_root(tmp_path, None, flag=None)))
    assert not _blind(report)
    note = next(n for n in report["notes"] if n.startswith("policy coverage"))
    assert "not assessed" in note and "--audit-policy-file is not set" in note


def test_root_whose_policy_file_is_missing_says_so(tmp_path) -> None:
    report = _report(tmp_path, "--root", str(_root(tmp_path, None)))
    assert not _blind(report)
    note = next(n for n in report["notes"] if n.startswith("policy coverage"))
    assert "not assessed" in note and POLICY_PATH in note  # named by the flag, absent on the node


def test_cluster_state_with_the_static_pod_and_the_policy(tmp_path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "kube-apiserver.yaml").write_text(example(
        "kube-apiserver", False, "v1.31.2", volumes=AUDIT_VOLUMES, audit_policy_file=POLICY_PATH,
        audit_log_path="/var/log/kubernetes/audit/audit.log"))
    (state / "audit-policy.yaml").write_text(POLICY_BLIND)
    blind = _blind(_report(tmp_path, "--cluster-state", str(state)))
    assert {"D01", "D07", "D14"} <= set(blind)
    assert blind["D07"]["source"]["file"].endswith("audit-policy.yaml")


def test_policy_option_wins_over_root(tmp_path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(POLICY_GOOD)
    report = _report(tmp_path, "--root", str(_root(tmp_path, POLICY_BLIND)), "--policy", str(good))
    assert not _blind(report)


def test_node_bundle_gives_the_same_coverage_as_the_root(tmp_path) -> None:
    from kubeharden.cli import cli as main

    root = _root(tmp_path, POLICY_BLIND)
    bundle = tmp_path / "node.tar.gz"
    made = CliRunner().invoke(main, ["collect-node", "--root", str(root), "-o", str(bundle)])
    assert made.exit_code == 0, made.output
    from_bundle = _blind(_report(tmp_path, "--node-bundle", str(bundle)))
    from_root = _blind(_report(tmp_path, "--root", str(root)))
    assert set(from_bundle) == set(from_root) and "D07" in from_bundle
    assert from_bundle["D07"]["source"]["file"].endswith(POLICY_PATH)
    both = CliRunner().invoke(main, ["audit", str(tmp_path / "audit.log"), "--root", str(root), "--node-bundle",
                                     str(bundle)])
    assert both.exit_code == 2
