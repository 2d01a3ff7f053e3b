"""`kubeharden fix`: proof, dry-run, writes, backups, exit codes, --ops, the JSON report's fix field."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.controls import fixes
from kubeharden.fix import files
from kubeharden.fix.plan import Fixer, FixRequest
from kubeharden.model import Fix, FixLevel, FixOp, Violation

POD = """\
# keep me
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: apps}
spec:
  containers:
  - name: web
    image: registry.example/web:1.0
    securityContext:
      privileged: true
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "pod.yaml"
    path.write_text(POD)
    return path


def test_dry_run_prints_a_diff_naming_the_control_and_writes_nothing(pod: Path) -> None:
    before = pod.stat()
    code, out, err = run("fix", "pod.yaml", "--dry-run", "--level", "tightening", "-c", "KH-POD-005")
    assert code == 0, err
    assert out.startswith("--- a/pod.yaml\n+++ b/pod.yaml\n@@ ")
    assert "KH-POD-005" in out.splitlines()[2]
    assert "-      privileged: true\n+      privileged: false\n" in out
    assert pod.read_text() == POD and pod.stat().st_mtime_ns == before.st_mtime_ns
    assert sorted(os.listdir(pod.parent)) == ["pod.yaml"]
    assert "would fix 1" in err


def test_write_keeps_mode_and_backs_up_without_overwriting_a_backup(pod: Path) -> None:
    pod.chmod(0o600)
    (pod.parent / "pod.yaml.kubeharden-backup").write_text("an older backup\n")
    code, _, err = run("fix", "pod.yaml", "--level", "tightening", "-c", "KH-POD-005")
    assert code == 0, err
    assert stat.S_IMODE(pod.stat().st_mode) == 0o600
    assert "privileged: false" in pod.read_text() and pod.read_text().startswith("# keep me\n")
    assert (pod.parent / "pod.yaml.kubeharden-backup").read_text() == "an older backup\n"
    assert (pod.parent / "pod.yaml.kubeharden-backup.1").read_text() == POD
    # idempotent: nothing left to do, nothing written
    mtime = pod.stat().st_mtime_ns
    code, _, err = run("fix", "pod.yaml", "--level", "tightening", "-c", "KH-POD-005")
    assert code == 0 and pod.stat().st_mtime_ns == mtime and "fixed 0" in err


def test_symlinked_manifest_is_edited_behind_the_link(pod: Path) -> None:
    link = pod.parent / "link.yaml"
    link.symlink_to(pod.name)
    code, _, err = run("fix", "link.yaml", "--level", "tightening", "-c", "KH-POD-005", "--no-backup")
    assert code == 0, err
    assert link.is_symlink() and "privileged: false" in pod.read_text()


def test_a_file_changed_since_it_was_read_is_not_overwritten(pod: Path) -> None:
    original = files.read_file("pod.yaml")
    pod.write_text(POD + "# edited by someone else\n")
    with pytest.raises(files.FileProblem, match="modified since it was read"):
        files.write_file(original, b"new\n", backup=True)
    assert pod.read_text().endswith("# edited by someone else\n")
    assert sorted(os.listdir(pod.parent)) == ["pod.yaml"]


def test_a_file_changed_during_the_run_is_refused_and_exit_1(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = files.write_file

    def racing_write(original: files.ReadFile, data: bytes, backup: bool) -> str | None:
        Path(original.real).write_text(POD.replace("web", "changed"))
        return real_write(original, data, backup)

    monkeypatch.setattr("kubeharden.fix.plan.write_file", racing_write)
    code, _, err = run("fix", "pod.yaml", "--level", "tightening", "-c", "KH-POD-005")
    assert code == 1
    assert "modified since it was read" in err
    assert "changed" in pod.read_text() and "privileged: true" in pod.read_text()


def test_safe_level_leaves_tightening_fixes_and_says_how(pod: Path) -> None:
    code, _, err = run("fix", "pod.yaml", "-c", "KH-POD-005")
    assert code == 0 and pod.read_text() == POD
    assert "tightening fix (use --level tightening)" in err


def test_fix_whose_finding_stays_is_refused(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def useless(v: Violation) -> Fix:
        return Fix(FixLevel.SAFE, (FixOp("set", (*v.path[:-1], "readOnlyRootFilesystem"), True),))

    monkeypatch.setitem(fixes._FIXERS, "KH-POD-005", useless)
    code, _, err = run("fix", "pod.yaml", "-c", "KH-POD-005")
    assert code == 1
    assert "the finding is still there after the edit" in err
    assert pod.read_text() == POD


def test_fix_that_brings_a_new_finding_is_refused(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def harmful(v: Violation) -> Fix:
        return Fix(FixLevel.SAFE, (FixOp("set", v.path, False), FixOp("set", ("spec", "hostPID"), True)))

    monkeypatch.setitem(fixes._FIXERS, "KH-POD-005", harmful)
    code, _, err = run("fix", "pod.yaml", "-c", "KH-POD-005")
    assert code == 1
    assert "the edit brings a new finding: KH-POD-006" in err
    assert pod.read_text() == POD


def test_whole_input_proof_refuses_a_file_whose_edit_adds_a_finding_elsewhere(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Alone, the pod's file has no NetworkPolicy before or after the edit, so the local proof passes; with
    the policy of the other file, the relabelled pod is no longer isolated: a new finding of the whole input."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pod.yaml").write_text(POD.replace("metadata: {name: web, namespace: apps}",
                                                   "metadata: {name: web, namespace: apps, labels: {app: web}}"))
    (tmp_path / "netpol.yaml").write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: apps}\n"
        "spec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, Egress]\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n")

    def sneaky(v: Violation) -> Fix:
        return Fix(FixLevel.SAFE, (FixOp("set", v.path, False), FixOp("set", ("metadata", "labels", "app"), "x")))

    monkeypatch.setitem(fixes._FIXERS, "KH-POD-005", sneaky)
    report = Fixer(FixRequest(paths=["pod.yaml", "netpol.yaml"], controls=["KH-POD-005"])).run()
    assert report.changes == []
    [outcome] = [o for o in report.outcomes if o.finding.control_id == "KH-POD-005"]
    assert outcome.status == "refused" and "whole input" in (outcome.reason or "")
    assert "privileged: true" in (tmp_path / "pod.yaml").read_text()


def test_needs_value_only_with_set(pod: Path) -> None:
    pod.write_text(POD.replace("privileged: true", "runAsUser: 0"))
    code, _, err = run("fix", "pod.yaml", "-c", "KH-POD-002")
    assert code == 0 and "--set runAsUser=..." in err and "runAsUser: 0" in pod.read_text()
    code, _, err = run("fix", "pod.yaml", "-c", "KH-POD-002", "--set", "runAsUser=10001", "--no-backup")
    assert code == 0, err
    text = pod.read_text()
    assert "runAsUser: 10001\n" in text and "runAsNonRoot: true\n" in text


def test_fail_on_and_unreadable_input(pod: Path) -> None:
    code, _, _ = run("fix", "pod.yaml", "--dry-run", "--fail-on", "critical")
    assert code == 1  # the privileged finding stays at the safe level
    code, _, _ = run("fix", "pod.yaml", "--dry-run", "--level", "tightening", "-c", "KH-POD-005",
                     "--fail-on", "critical")
    assert code == 0
    (pod.parent / "broken.yaml").write_text("a: [\n")
    code, _, err = run("fix", "pod.yaml", "broken.yaml", "--dry-run")
    assert code == 2 and "broken.yaml" in err


def test_ops_file_applies_reviewed_operations(pod: Path) -> None:
    ops = [{"file": "pod.yaml", "doc": 0, "op": "set", "path": ["spec", "containers", 0, "securityContext",
                                                               "privileged"], "value": False},
           {"file": "pod.yaml", "doc": 0, "op": "append",
            "path": ["spec", "containers", 0, "securityContext", "capabilities", "drop"], "value": "ALL"}]
    (pod.parent / "ops.json").write_text(json.dumps(ops))
    code, out, _ = run("fix", "--ops", "ops.json", "pod.yaml", "--dry-run")
    assert code == 0 and "+      privileged: false" in out and pod.read_text() == POD
    code, _, err = run("fix", "--ops", "ops.json", "pod.yaml", "--no-backup")
    assert code == 0, err
    assert pod.read_text() == POD.replace("privileged: true", "privileged: false\n      capabilities:\n"
                                          "        drop:\n        - ALL")
    bad = [{"file": "pod.yaml", "op": "rename", "path": ["spec"]}]
    (pod.parent / "bad.json").write_text(json.dumps(bad))
    code, _, err = run("fix", "--ops", "bad.json")
    assert code == 2 and "operation 0" in err


def test_json_report_carries_the_fix(pod: Path) -> None:
    code, out, _ = run("scan", "pod.yaml", "-f", "json", "--fail-on", "none")
    assert code == 0
    [finding] = [f for f in json.loads(out)["findings"] if f["control_id"] == "KH-POD-005"]
    assert finding["fix"] == {
        "level": "tightening",
        "ops": [{"op": "set", "path": ["spec", "containers", 0, "securityContext", "privileged"], "value": False}],
        "note": fixes._privileged(_violation_at(("spec", "containers", 0, "securityContext", "privileged"))).note,
    }
    without = [f for f in json.loads(out)["findings"] if f["control_id"] == "KH-POD-019"]
    assert all("fix" not in f for f in without)


def _violation_at(path: tuple[str | int, ...]) -> Violation:
    from kubeharden.loader import LoadContext, load_bytes

    [res] = load_bytes(POD.encode(), "pod.yaml", LoadContext()).resources
    return Violation(res, path, "x")
