"""kubeadm-shaped nodes in temporary directories (real file modes): hardened vs default."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest
import yaml
from node_helpers import collect_bundle, messages, node_results, scan_node, status_of
from node_layout import build_node, write

from kubeharden.model import Status


@pytest.fixture()
def hardened(tmp_path: Path) -> Path:
    return build_node(tmp_path / "hardened", True)


@pytest.fixture()
def default(tmp_path: Path) -> Path:
    return build_node(tmp_path / "default", False)


def _edit_pod(root: Path, component: str, **flags: str | None) -> None:
    path = root / f"etc/kubernetes/manifests/{component}.yaml"
    pod = yaml.safe_load(path.read_text())
    command = pod["spec"]["containers"][0]["command"]
    for name, value in flags.items():
        key = "--" + name.replace("_", "-")
        command[:] = [c for c in command if not c.startswith(key + "=")]
        if value is not None:
            command.append(f"{key}={value}")
    mode = path.stat().st_mode & 0o777
    path.write_text(yaml.safe_dump(pod, sort_keys=False))
    os.chmod(path, mode)


def test_hardened_node_passes_every_node_control(hardened: Path) -> None:
    result = scan_node(hardened)
    assert result.errors == []
    results = node_results(result)
    failed = {cid: [f.message for f in r.findings] for cid, r in results.items() if r.status is Status.FAIL}
    assert failed == {}
    not_assessed = {cid for cid, r in results.items() if r.status is Status.NOT_ASSESSED}
    assert not_assessed == {"KH-LOG-007"}  # no audit webhook on this node: nothing to judge
    assert len(results) >= 45


def test_default_kubeadm_node_fails_what_kubeadm_leaves_open(default: Path) -> None:
    result = scan_node(default)
    failed = {cid for cid, r in node_results(result).items() if r.status is Status.FAIL}
    assert failed == {
        "KH-CP-001",  # anonymous auth (unset = true)
        "KH-CP-007",  # no --kubelet-certificate-authority
        "KH-CP-009",  # profiling (unset = true)
        "KH-CP-020",  # no admission configuration: the Pod Security default is privileged
        "KH-CP-030", "KH-CP-031", "KH-CP-032", "KH-CP-033",  # loose modes in this fixture
        "KH-LOG-001", "KH-SEC-001",  # no audit, no encryption at rest
        "KH-NODE-005", "KH-NODE-007", "KH-NODE-009", "KH-NODE-010", "KH-NODE-013",
    }
    # the kubeadm kubelet config is good where kubeadm sets it (flag defaults would not be)
    for cid in ("KH-NODE-001", "KH-NODE-002", "KH-NODE-003", "KH-NODE-004", "KH-NODE-011"):
        assert status_of(result, cid) is Status.PASS, cid
    # controls that need the policy / encryption file are not assessed, never passed
    for cid in ("KH-LOG-003", "KH-LOG-004", "KH-LOG-005", "KH-SEC-002", "KH-SEC-004", "KH-SEC-005"):
        assert status_of(result, cid) is Status.NOT_ASSESSED, cid


def test_finding_points_at_the_flag_line(default: Path) -> None:
    _edit_pod(default, "kube-apiserver", anonymous_auth="true")
    result = scan_node(default)
    finding = node_results(result)["KH-CP-001"].findings[0]
    assert finding.file is not None and finding.file.endswith("etc/kubernetes/manifests/kube-apiserver.yaml")
    lines = (default / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text().splitlines()
    assert finding.line is not None and "--anonymous-auth=true" in lines[finding.line - 1]
    assert finding.path.startswith("spec.containers[0].command[")
    assert finding.evidence["flag"] == "--anonymous-auth" and finding.value == "true"


@pytest.mark.parametrize(("component", "flags", "control", "fragment"), [
    ("kube-apiserver", {"authorization_mode": "AlwaysAllow"}, "KH-CP-002", "AlwaysAllow"),
    ("kube-apiserver", {"authorization_mode": "RBAC"}, "KH-CP-002", "Node authorizer"),
    ("kube-apiserver", {"token_auth_file": "/etc/kubernetes/tokens.csv"}, "KH-CP-003", "token-auth-file"),
    ("kube-apiserver", {"tls_private_key_file": None}, "KH-CP-005", "tls-private-key-file"),
    ("kube-apiserver", {"tls_min_version": "VersionTLS11"}, "KH-CP-006", "below 1.2"),
    ("etcd", {"cipher_suites": "TLS_RSA_WITH_3DES_EDE_CBC_SHA"}, "KH-CP-006", "3DES"),
    ("kube-apiserver", {"kubelet_client_key": None}, "KH-CP-007", "kubelet-client-key"),
    ("kube-apiserver", {"enable_admission_plugins": "NodeRestriction,AlwaysAdmit"}, "KH-CP-008", "AlwaysAdmit"),
    ("kube-scheduler", {"profiling": "true"}, "KH-CP-009", "kube-scheduler"),
    ("kube-controller-manager", {"service_account_private_key_file": None}, "KH-CP-010", "private-key-file"),
    ("kube-apiserver", {"etcd_certfile": None}, "KH-CP-011", "etcd-certfile"),
    ("etcd", {"auto_tls": "true"}, "KH-CP-012", "auto-tls"),
    ("etcd", {"listen_client_urls": "http://127.0.0.1:2379"}, "KH-CP-012", "plain HTTP"),
    ("etcd", {"peer_auto_tls": "true"}, "KH-CP-013", "peer-auto-tls"),
    ("etcd", {"trusted_ca_file": "/etc/kubernetes/pki/ca.crt"}, "KH-CP-014", "cluster CA"),
    ("etcd", {"listen_peer_urls": "https://0.0.0.0:2380"}, "KH-CP-015", "all interfaces"),
    ("kube-controller-manager", {"bind_address": None}, "KH-CP-016", "default 0.0.0.0"),
    ("kube-controller-manager", {"use_service_account_credentials": "false"}, "KH-CP-017", "share"),
    ("kube-controller-manager", {"feature_gates": "RotateKubeletServerCertificate=false"}, "KH-CP-018", "disabled"),
    ("kube-apiserver", {"client_ca_file": None}, "KH-CP-019", "no strong authenticator"),
    ("kube-apiserver", {"audit_log_maxbackup": None}, "KH-LOG-002", "audit-log-maxbackup"),
])
def test_each_flag_control_fails_on_a_hardened_node_once_broken(
        hardened: Path, component: str, flags: dict[str, str | None], control: str, fragment: str) -> None:
    assert status_of(scan_node(hardened), control) is Status.PASS
    _edit_pod(hardened, component, **flags)
    result = scan_node(hardened)
    assert status_of(result, control) is Status.FAIL
    assert any(fragment in m for m in messages(result, control)), messages(result, control)


def test_insecure_port_depends_on_the_version_in_the_image_tag(tmp_path: Path) -> None:
    old = build_node(tmp_path / "old", True, version="v1.19.16")
    result = scan_node(old)
    assert status_of(result, "KH-CP-004") is Status.FAIL
    assert "1.19 (image tag)" in messages(result, "KH-CP-004")[0]
    _edit_pod(old, "kube-apiserver", insecure_port="0")
    assert status_of(scan_node(old), "KH-CP-004") is Status.PASS
    new = build_node(tmp_path / "new", True, version="v1.30.2")
    assert status_of(scan_node(new), "KH-CP-004") is Status.PASS
    # unset --tls-min-version: a Go runtime of Kubernetes < 1.30 still accepts TLS 1.0
    _edit_pod(old, "kube-apiserver", tls_min_version=None)
    old_result = scan_node(old)
    assert status_of(old_result, "KH-CP-006") is Status.FAIL
    assert node_results(old_result)["KH-CP-006"].findings[0].severity.label == "low"


@pytest.mark.parametrize(("path", "mode", "control"), [
    ("/etc/kubernetes/super-admin.conf", 0o640, "KH-CP-030"),
    ("/root/.kube/config", 0o604, "KH-CP-030"),
    ("/etc/kubernetes/pki/sa.key", 0o640, "KH-CP-031"),
    ("/etc/kubernetes/pki/etcd/ca.crt", 0o666, "KH-CP-031"),
    ("/etc/kubernetes/manifests/etcd.yaml", 0o644, "KH-CP-032"),
    ("/var/lib/etcd", 0o750, "KH-CP-033"),
    ("/var/lib/kubelet/config.yaml", 0o644, "KH-NODE-013"),
    ("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o664, "KH-NODE-013"),
    ("/etc/kubernetes/enc/encryption-config.yaml", 0o644, "KH-SEC-005"),
])
def test_file_mode_controls(hardened: Path, path: str, mode: int, control: str) -> None:
    assert status_of(scan_node(hardened), control) is Status.PASS
    os.chmod(hardened / path.lstrip("/"), mode)
    result = scan_node(hardened)
    assert status_of(result, control) is Status.FAIL
    finding = node_results(result)[control].findings[0]
    assert finding.value == f"{mode:04o}" and finding.evidence["path"] == path
    assert finding.file is not None and finding.file.endswith(path.lstrip("/"))


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_controls(hardened: Path) -> None:
    os.chown(hardened / "etc/kubernetes/admin.conf", 1234, 1234)
    (hardened / "home/alice/.kube").mkdir(parents=True)
    write(hardened, "/home/alice/.kube/config", "apiVersion: v1\nkind: Config\n", 0o600)
    (hardened / "etc").mkdir(exist_ok=True)
    (hardened / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1234:1234::/home/alice:/bin/sh\n")
    os.chown(hardened / "home/alice/.kube/config", 1234, 1234)
    result = scan_node(hardened)
    found = messages(result, "KH-CP-030")
    assert found == ["kubeconfig /etc/kubernetes/admin.conf is owned by alice, not root"]


def test_file_controls_need_a_node_snapshot(tmp_path: Path) -> None:
    from node_helpers import scan_paths

    build_node(tmp_path / "n", True)
    result = scan_paths(tmp_path / "n/etc/kubernetes/manifests")
    for control in ("KH-CP-030", "KH-CP-031", "KH-CP-032", "KH-CP-033", "KH-SEC-005", "KH-NODE-013"):
        assert status_of(result, control) is Status.NOT_ASSESSED
        assert "kubeharden node --root" in (node_results(result)[control].reason or "")


def test_missing_referenced_file_is_reported(hardened: Path) -> None:
    (hardened / "etc/kubernetes/enc/encryption-config.yaml").unlink()
    (hardened / "etc/kubernetes/audit/audit-policy.yaml").unlink()
    result = scan_node(hardened)
    assert any("does not exist on the node" in m for m in messages(result, "KH-SEC-001"))
    assert any("does not exist on the node" in m for m in messages(result, "KH-LOG-001"))
    assert status_of(result, "KH-SEC-002") is Status.NOT_ASSESSED
    assert "does not exist" in (node_results(result)["KH-SEC-002"].reason or "")


def test_flag_path_is_resolved_through_host_path_mounts(hardened: Path) -> None:
    """The API server reads /etc/kubernetes/enc/... inside its container; the file on the host is
    wherever the hostPath volume says."""
    pod_path = hardened / "etc/kubernetes/manifests/kube-apiserver.yaml"
    pod = yaml.safe_load(pod_path.read_text())
    for volume in pod["spec"]["volumes"]:
        if volume["name"] == "encryption-config":
            volume["hostPath"]["path"] = "/srv/enc"
    pod_path.write_text(yaml.safe_dump(pod))
    bad = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n" \
          "- resources: [secrets]\n  providers:\n  - identity: {}\n"
    write(hardened, "/srv/enc/encryption-config.yaml", bad, 0o600)
    result = scan_node(hardened)
    assert status_of(result, "KH-SEC-002") is Status.FAIL
    assert node_results(result)["KH-SEC-002"].findings[0].file.endswith("srv/enc/encryption-config.yaml")


def test_pod_security_default_from_a_relative_plugin_path(hardened: Path) -> None:
    """The AdmissionConfiguration names pod-security.yaml relative to its own directory."""
    result = scan_node(hardened)
    assert status_of(result, "KH-CP-020") is Status.PASS
    psa = hardened / "etc/kubernetes/admission/pod-security.yaml"
    psa.write_text(psa.read_text().replace("enforce: baseline", "enforce: privileged")
                   .replace("usernames: []", "usernames: [ci-deployer]"))
    result = scan_node(hardened)
    findings = node_results(result)["KH-CP-020"].findings
    assert [f.value for f in findings] == ["privileged", ["ci-deployer"]]
    assert findings[0].file is not None and findings[0].file.endswith("etc/kubernetes/admission/pod-security.yaml")
    assert psa.read_text().splitlines()[findings[0].line - 1].strip() == "enforce: privileged"  # type: ignore[operator]
    assert findings[1].severity.label == "low"


def test_pod_security_default_missing_or_unreadable(hardened: Path) -> None:
    (hardened / "etc/kubernetes/admission/pod-security.yaml").unlink()
    result = scan_node(hardened)
    assert status_of(result, "KH-CP-020") is Status.NOT_ASSESSED
    assert "pod-security.yaml does not exist" in (node_results(result)["KH-CP-020"].reason or "")
    (hardened / "etc/kubernetes/admission/admission-config.yaml").unlink()
    result = scan_node(hardened)
    assert any("does not exist on the node" in m for m in messages(result, "KH-CP-020"))
    _edit_pod(hardened, "kube-apiserver", disable_admission_plugins="PodSecurity")
    assert any("plugin is disabled" in m for m in messages(scan_node(hardened), "KH-CP-020"))


def test_a_pem_holding_a_key_is_judged_as_a_key(hardened: Path, tmp_path: Path) -> None:
    """kubelet-client-current.pem holds the kubelet's certificate and private key: 0644 leaks the key.
    The key is recognised by its PEM header, also through a bundle (which never holds the content)."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nsecret-bits\n"
    write(hardened, "/var/lib/kubelet/pki/kubelet-client-current.pem", pem, 0o600)
    write(hardened, "/var/lib/kubelet/pki/kubelet.crt", "-----BEGIN CERTIFICATE-----\n", 0o644)
    assert status_of(scan_node(hardened), "KH-CP-031") is Status.PASS
    os.chmod(hardened / "var/lib/kubelet/pki/kubelet-client-current.pem", 0o644)
    bundle = collect_bundle(hardened, tmp_path / "b.tar.gz")
    for result in (scan_node(hardened), scan_node(bundle=bundle)):
        findings = node_results(result)["KH-CP-031"].findings
        assert [f.message for f in findings] == ["private key /var/lib/kubelet/pki/kubelet-client-current.pem has "
                                                 "mode 0644, more permissive than 0600"]
    with tarfile.open(bundle) as tar:
        assert not any(b"secret-bits" in tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
