"""collect-node bundles, `kubeharden node --root/--bundle` and what a bundle must never contain."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from node_helpers import messages, node_results, scan_node, status_of
from node_layout import build_node, write

from kubeharden.cli import cli
from kubeharden.model import Status
from kubeharden.nodeconf.snapshot import BUNDLE_MANIFEST, collect_root, read_bundle, write_bundle

SHORT_KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="  # 16 bytes


def _bundle(root: Path, out: Path) -> Path:
    result = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_bundle_gives_the_same_verdicts_as_the_root(tmp_path: Path) -> None:
    for hardened in (True, False):
        root = build_node(tmp_path / f"n{hardened}", hardened)
        bundle = _bundle(root, tmp_path / f"b{hardened}.tar.gz")
        from_root = {cid: r.status for cid, r in node_results(scan_node(root)).items()}
        from_bundle = {cid: r.status for cid, r in node_results(scan_node(bundle=bundle)).items()}
        assert from_root == from_bundle


def test_bundle_findings_name_bundle_and_node_path_with_lines(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)
    bundle = _bundle(root, tmp_path / "b.tar.gz")
    result = scan_node(bundle=bundle)
    finding = node_results(result)["KH-CP-009"].findings[0]
    assert finding.file is not None and finding.file.endswith("b.tar.gz:/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert finding.line is not None and finding.line > 1  # located in the copied text
    mode = node_results(result)["KH-CP-031"].findings[0]
    assert mode.value == "0644" and mode.evidence["path"] == "/etc/kubernetes/pki/ca.key"


def test_bundle_holds_no_secret(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    key_text = (root / "etc/kubernetes/enc/encryption-config.yaml").read_text()
    secret = next(line.split("secret:")[1].strip() for line in key_text.splitlines() if "secret:" in line)
    webhook = ("apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster: {server: 'http://siem:8080'}\n"
               "users:\n- name: s\n  user: {username: bob, password: hunter2-very-secret}\n")
    write(root, "/etc/kubernetes/audit/webhook.yaml", webhook, 0o600)
    pod = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    pod.write_text(pod.read_text().replace("- --audit-log-maxage=30",
                                           "- --audit-log-maxage=30\n    - --audit-webhook-config-file="
                                           "/etc/kubernetes/audit/webhook.yaml"))
    pod_doc = pod.read_text().replace("  - name: audit-log\n    hostPath:",
                                      "  - name: audit-webhook\n    hostPath:\n      path: /etc/kubernetes/audit/"
                                      "webhook.yaml\n      type: File\n  - name: audit-log\n    hostPath:")
    pod_doc = pod_doc.replace("    - name: audit-log\n      mountPath:",
                              "    - name: audit-webhook\n      mountPath: /etc/kubernetes/audit/webhook.yaml\n"
                              "      readOnly: true\n    - name: audit-log\n      mountPath:")
    pod.write_text(pod_doc)
    bundle = _bundle(root, tmp_path / "b.tar.gz")
    with tarfile.open(bundle) as tar:
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
        names = tar.getnames()
    assert secret.encode() not in blob
    assert b"hunter2-very-secret" not in blob and b"not-a-real-token" not in blob
    assert b"not a key" not in blob  # PKI keys: mode only
    assert not any(n.endswith((".key", ".conf")) and n.startswith("files/etc/kubernetes/") and "pki" in n
                   for n in names)
    assert os.stat(bundle).st_mode & 0o077 == 0
    # and yet the checks still work from it
    result = scan_node(bundle=bundle)
    assert status_of(result, "KH-SEC-004") is Status.PASS
    assert status_of(result, "KH-LOG-007") is Status.FAIL
    assert any("plain HTTP" in m for m in messages(result, "KH-LOG-007"))
    assert any("password" in m for m in messages(result, "KH-LOG-007"))
    report = json.dumps([f.value for f in result.findings], default=str)
    assert "hunter2" not in report


def test_key_length_survives_redaction(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    enc = root / "etc/kubernetes/enc/encryption-config.yaml"
    text = enc.read_text()
    current = next(line.split("secret:")[1].strip() for line in text.splitlines() if "secret:" in line)
    enc.write_text(text.replace(current, SHORT_KEY))
    os.chmod(enc, 0o600)
    bundle = _bundle(root, tmp_path / "b.tar.gz")
    for result in (scan_node(root), scan_node(bundle=bundle)):
        assert status_of(result, "KH-SEC-004") is Status.FAIL
        finding = node_results(result)["KH-SEC-004"].findings[0]
        assert "16 bytes" in finding.message and finding.value == 16
        assert SHORT_KEY not in json.dumps(finding.evidence) and finding.value != SHORT_KEY


def test_collect_node_refuses_to_overwrite(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    out = tmp_path / "b.tar.gz"
    out.write_text("precious")
    runner = CliRunner()
    refused = runner.invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert refused.exit_code == 2 and out.read_text() == "precious"
    forced = runner.invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out), "--force"])
    assert forced.exit_code == 0 and tarfile.is_tarfile(out)


def test_bad_bundle_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    result = CliRunner().invoke(cli, ["node", "--bundle", str(bogus), "-f", "json"])
    assert result.exit_code == 2
    assert "bogus.tar.gz" in result.output and "cannot read bundle" in result.output
    with tarfile.open(tmp_path / "empty.tar.gz", "w:gz"):
        pass
    with pytest.raises(Exception, match="not a kubeharden node bundle"):
        read_bundle(str(tmp_path / "empty.tar.gz"))


def test_manifest_records_modes_and_owners(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)
    out = tmp_path / "b.tar.gz"
    write_bundle(collect_root(str(root), processes=False), str(out))
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile(BUNDLE_MANIFEST).read())  # type: ignore[union-attr]
    record = manifest["files"]["/etc/kubernetes/pki/ca.key"]
    assert record["mode"] == 0o644 and record["copied"] is False and record["exists"] is True
    assert manifest["files"]["/var/lib/kubelet/config.yaml"]["copied"] is True


def test_node_command_reports_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    hardened = build_node(tmp_path / "h", True)
    default = build_node(tmp_path / "d", False)
    # only this area's controls: the version and pod controls of other areas judge static pods too
    mine = ["-c", "KH-CP-*", "-c", "KH-NODE-*", "-c", "KH-SEC-*", "-c", "KH-LOG-*"]
    good = runner.invoke(cli, ["node", "--root", str(hardened), "--no-processes", "-f", "json", *mine])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(cli, ["node", "--root", str(default), "--no-processes", "-f", "json", *mine])
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    ca_key = [f for f in report["findings"] if f["control_id"] == "KH-CP-031"]
    assert ca_key and ca_key[0]["value"] == "0644" and ca_key[0]["source"]["file"].endswith("etc/kubernetes/pki/ca.key")
    assert ca_key[0]["remediation"] == "chmod 600 /etc/kubernetes/pki/ca.key"
    only = runner.invoke(cli, ["node", "--root", str(default), "--no-processes", "-c", "KH-CP-009",
                               "--fail-on", "low", "-f", "json"])
    assert only.exit_code == 1
    lenient = runner.invoke(cli, ["node", "--root", str(default), "--no-processes", "--fail-on", "none", *mine])
    assert lenient.exit_code == 0
    usage = runner.invoke(cli, ["node"])
    assert usage.exit_code == 2 and "--root" in usage.output
