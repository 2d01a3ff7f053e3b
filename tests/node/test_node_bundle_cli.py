"""collect-node bundles, `kubeharden node --root/--bundle` and what a bundle must never contain."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from node_helpers import collect_bundle, messages, node_results, scan_node, status_of
from node_layout import build_node, write

from kubeharden.cli import cli
from kubeharden.model import Status
from kubeharden.nodeconf.snapshot import BUNDLE_MANIFEST, collect_root, read_bundle, write_bundle

SHORT_KEY = "MDEyMzQ1Njc4OWFiY2RlZg=="  # 16 bytes


def test_bundle_gives_the_same_verdicts_as_the_root(tmp_path: Path) -> None:
    for hardened in (True, False):
        root = build_node(tmp_path / f"n{hardened}", hardened)
        bundle = collect_bundle(root, tmp_path / f"b{hardened}.tar.gz")
        from_root = {cid: r.status for cid, r in node_results(scan_node(root)).items()}
        from_bundle = {cid: r.status for cid, r in node_results(scan_node(bundle=bundle)).items()}
        assert from_root == from_bundle


def test_bundle_findings_name_bundle_and_node_path_with_lines(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", False)
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
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
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
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
    bundle = collect_bundle(root, tmp_path / "b.tar.gz")
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


def test_process_command_lines_travel_in_the_bundle(tmp_path: Path) -> None:
    """A control plane run by systemd (no static pods): kube-apiserver and kubelet are judged from the
    command lines recorded in the bundle's manifest."""
    import shutil

    root = build_node(tmp_path / "n", True)
    shutil.rmtree(root / "etc/kubernetes/manifests")
    proc = tmp_path / "proc"
    commands = {77: ["/usr/local/bin/kube-apiserver", "--authorization-mode=Node,RBAC", "--profiling=false",
                     "--anonymous-auth", "true"],
                4242: ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml", "--read-only-port=10255"],
                99: ["/bin/bash", "-c", "sleep 1"]}
    for pid, argv in commands.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    out = tmp_path / "b.tar.gz"
    write_bundle(collect_root(str(root), processes=True, proc=str(proc)), str(out))
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile(BUNDLE_MANIFEST).read())  # type: ignore[union-attr]
    assert manifest["processes"]["kube-apiserver"] == [{"pid": 77, "argv": commands[77]}]
    assert "bash" not in json.dumps(manifest["processes"])  # only Kubernetes components are recorded
    result = scan_node(bundle=out)
    finding = node_results(result)["KH-CP-001"].findings[0]
    assert finding.file is not None and finding.file.endswith("b.tar.gz:/proc/77/cmdline")
    assert finding.value == "true" and finding.evidence["component"] == "kube-apiserver"
    assert status_of(result, "KH-CP-009") is Status.PASS  # --profiling=false on the command line
    assert status_of(result, "KH-NODE-001") is Status.PASS  # the kubelet's config file, found via /proc
    port = node_results(result)["KH-NODE-004"].findings[0]  # the flag on the recorded command line wins
    assert port.file is not None and port.file.endswith("b.tar.gz:/proc/4242/cmdline") and port.value == 10255


def test_node_exceptions_by_resource_and_by_node_path(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    os.chmod(root / "etc/kubernetes/super-admin.conf", 0o644)
    os.chmod(root / "etc/kubernetes/admin.conf", 0o644)
    pod = root / "etc/kubernetes/manifests/kube-scheduler.yaml"
    pod.write_text(pod.read_text().replace("--profiling=false", "--profiling=true"))
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(
        "exceptions:\n"
        "- control: KH-CP-030\n  path: /etc/kubernetes/super-admin.conf\n  reason: break-glass copy, audited\n"
        "- control: KH-CP-009\n  resource: {kind: Pod, namespace: kube-system, name: kube-scheduler-*}\n"
        "  reason: profiling kept for a performance investigation\n  expires: 2099-01-01\n")
    outcome = CliRunner().invoke(cli, ["node", "--root", str(root), "--no-processes", "-f", "json", "--fail-on", "low",
                                       "--exceptions", str(exceptions), "-c", "KH-CP-030", "-c", "KH-CP-009"])
    report = json.loads(outcome.stdout)
    by_path = {f["evidence"].get("path") or f["resource"]["name"]: f for f in report["findings"]}
    assert by_path["/etc/kubernetes/super-admin.conf"]["exception"]["reason"] == "break-glass copy, audited"
    assert by_path["kube-scheduler-cp1"]["exception"] is not None
    assert by_path["/etc/kubernetes/admin.conf"].get("exception") is None
    assert outcome.exit_code == 1  # admin.conf is not excepted
    admin = exceptions.read_text() + "- control: KH-CP-030\n  path: /etc/kubernetes/admin.conf\n  reason: lab node\n"
    exceptions.write_text(admin)
    clean = CliRunner().invoke(cli, ["node", "--root", str(root), "--no-processes", "--fail-on", "low",
                                     "--exceptions", str(exceptions), "-c", "KH-CP-030", "-c", "KH-CP-009"])
    assert clean.exit_code == 0, clean.output


def _bundle_with_manifest(path: Path, manifest: object) -> Path:
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(BUNDLE_MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_malformed_bundle_manifest_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    not_a_mapping = _bundle_with_manifest(tmp_path / "list.tar.gz", [1, 2])
    result = CliRunner().invoke(cli, ["node", "--bundle", str(not_a_mapping), "-f", "json"])
    assert result.exit_code == 2 and "unsupported bundle format" in result.output
    assert not isinstance(result.exception, AttributeError)
    odd_fields = _bundle_with_manifest(tmp_path / "odd.tar.gz", {
        "format": 1,
        "files": {
            "/etc/kubernetes/manifests/kube-apiserver.yaml": {"exists": True, "kind": "file", "mode": "rw",
                                                              "uid": "root", "role": "static-pod"},
            "/etc/kubernetes/admin.conf": {"exists": True, "kind": "file", "mode": 0o600, "uid": 0},
        },
        "processes": {"kubelet": [{"pid": None, "argv": None}, {"pid": 7, "argv": ["kubelet", 1]}],
                      "etcd": None},
    })
    snapshot = read_bundle(str(odd_fields))
    apiserver = snapshot.files["/etc/kubernetes/manifests/kube-apiserver.yaml"]
    assert apiserver.mode is None and apiserver.uid is None
    assert snapshot.files["/etc/kubernetes/admin.conf"].mode == 0o600
    assert [p.argv for p in snapshot.processes["kubelet"]] == [["kubelet", "1"]]
    assert snapshot.processes["etcd"] == []
    assert _bundle_with_manifest(tmp_path / "files-list.tar.gz", {"format": 1, "files": [1], "processes": []})
    assert read_bundle(str(tmp_path / "files-list.tar.gz")).files == {}
    scanned = CliRunner().invoke(cli, ["node", "--bundle", str(odd_fields), "-f", "json"])
    assert scanned.exception is None or isinstance(scanned.exception, SystemExit), scanned.output
    assert "internal error" not in scanned.output


def test_collect_node_usage_errors_write_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    missing_root = runner.invoke(cli, ["collect-node", "--root", str(tmp_path / "absent"), "-o",
                                       str(tmp_path / "b.tar.gz")])
    assert missing_root.exit_code == 2 and "does not exist" in missing_root.output
    assert not (tmp_path / "b.tar.gz").exists()
    unwritable = runner.invoke(cli, ["collect-node", "--root", str(tmp_path), "--no-processes", "-o",
                                     str(tmp_path / "no-dir" / "b.tar.gz")])
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output


def test_audit_webhook_kubeconfig_outside_the_pod_says_so(tmp_path: Path) -> None:
    root = build_node(tmp_path / "n", True)
    write(root, "/etc/kubernetes/audit/webhook.yaml",
          "apiVersion: v1\nkind: Config\nclusters:\n- name: s\n  cluster: {server: 'http://siem:8080'}\n", 0o600)
    pod = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    flag = "- --audit-webhook-config-file=/etc/kubernetes/audit/webhook.yaml"
    pod.write_text(pod.read_text().replace("- --audit-log-maxage=30", f"- --audit-log-maxage=30\n    {flag}"))
    # the file exists on the node, but no hostPath volume brings it into the pod
    outcome = node_results(scan_node(root))["KH-LOG-007"]
    assert outcome.status is Status.NOT_ASSESSED
    assert "hostPath" in (outcome.reason or ""), outcome.reason
