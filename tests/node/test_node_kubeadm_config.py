"""`kubeharden scan` of a kubeadm configuration repository: a ClusterConfiguration stands for the
static pods kubeadm generates from it (kubeadm's flags, then extraArgs; extraVolumes as mounts)."""

from __future__ import annotations

from pathlib import Path

from node_helpers import messages, node_results, scan_paths, status_of
from node_layout import ADMISSION_CONFIG, POD_SECURITY_CONFIG

from kubeharden.controls.kubelet import HARDENED_KUBELET
from kubeharden.generators.audit_policy import render_audit_policy
from kubeharden.generators.encryption_config import EncryptionOptions, render_encryption_config
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status
from kubeharden.nodeconf.evidence import node_evidence

HARDENED_V1BETA3 = """apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.2
apiServer:
  extraArgs:
    anonymous-auth: "false"
    profiling: "false"
    kubelet-certificate-authority: /etc/kubernetes/pki/ca.crt
    tls-min-version: VersionTLS12
    enable-admission-plugins: NodeRestriction
    admission-control-config-file: /etc/kubernetes/admission/admission-config.yaml
    encryption-provider-config: /etc/kubernetes/enc/encryption-config.yaml
    audit-policy-file: /etc/kubernetes/audit/audit-policy.yaml
    audit-log-path: /var/log/kubernetes/audit/audit.log
    audit-log-maxage: "30"
    audit-log-maxbackup: "10"
    audit-log-maxsize: "100"
  extraVolumes:
  - {name: enc, hostPath: /etc/kubernetes/enc, mountPath: /etc/kubernetes/enc, readOnly: true, pathType: Directory}
  - name: audit-policy
    hostPath: /etc/kubernetes/audit/audit-policy.yaml
    mountPath: /etc/kubernetes/audit/audit-policy.yaml
    readOnly: true
    pathType: File
  - {name: audit-log, hostPath: /var/log/kubernetes/audit, mountPath: /var/log/kubernetes/audit, readOnly: false}
  - {name: admission, hostPath: /etc/kubernetes/admission, mountPath: /etc/kubernetes/admission, readOnly: true}
controllerManager:
  extraArgs:
    profiling: "false"
    tls-min-version: VersionTLS12
scheduler:
  extraArgs:
    profiling: "false"
    tls-min-version: VersionTLS12
etcd:
  local:
    dataDir: /var/lib/etcd
    extraArgs:
      tls-min-version: TLS1.2
"""

# kubeadm v1beta4 (1.31+): extraArgs is a list of name/value pairs; a bare configuration.
DEFAULT_V1BETA4 = """apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.1
apiServer:
  extraArgs:
  - name: audit-policy-file
    value: /etc/kubernetes/audit/audit-policy.yaml
  - name: audit-log-path
    value: /var/log/kubernetes/audit/audit.log
  - name: anonymous-auth
    value: "true"
"""


def _repository(tmp_path: Path, cluster_configuration: str) -> Path:
    repo = tmp_path / "repo"
    files = {
        "kubeadm.yaml": cluster_configuration + "---\n" + HARDENED_KUBELET,
        "enc/encryption-config.yaml": render_encryption_config(EncryptionOptions()),
        "audit/audit-policy.yaml": render_audit_policy(),
        "admission/admission-config.yaml": ADMISSION_CONFIG,
        "admission/pod-security.yaml": POD_SECURITY_CONFIG,
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    return repo


def test_hardened_kubeadm_configuration_passes(tmp_path: Path) -> None:
    result = scan_paths(_repository(tmp_path, HARDENED_V1BETA3))
    results = node_results(result)
    failed = {cid: messages(result, cid) for cid, r in results.items() if r.status is Status.FAIL}
    assert failed == {}
    for cid in ("KH-CP-001", "KH-CP-002", "KH-CP-007", "KH-CP-008", "KH-CP-011", "KH-CP-012", "KH-CP-013",
                "KH-CP-014", "KH-CP-016", "KH-CP-017", "KH-CP-020", "KH-LOG-001", "KH-LOG-003", "KH-LOG-008",
                "KH-SEC-002", "KH-NODE-001"):
        assert results[cid].status is Status.PASS, (cid, results[cid].reason)


def test_default_kubeadm_configuration_fails_where_kubeadm_leaves_gaps(tmp_path: Path) -> None:
    repo = _repository(tmp_path, DEFAULT_V1BETA4)
    result = scan_paths(repo)
    for cid in ("KH-CP-001", "KH-CP-007", "KH-CP-009", "KH-CP-020", "KH-LOG-002", "KH-SEC-001", "KH-LOG-008"):
        assert status_of(result, cid) is Status.FAIL, cid
    # kubeadm's own flags are judged as it writes them: RBAC, NodeRestriction, etcd mTLS, loopback binds
    for cid in ("KH-CP-002", "KH-CP-008", "KH-CP-011", "KH-CP-012", "KH-CP-013", "KH-CP-014", "KH-CP-016"):
        assert status_of(result, cid) is Status.PASS, cid
    anonymous = node_results(result)["KH-CP-001"].findings[0]
    lines = (repo / "kubeadm.yaml").read_text().splitlines()
    assert anonymous.file is not None and anonymous.file.endswith("kubeadm.yaml")
    assert anonymous.path == "apiServer.extraArgs[2].value" and lines[anonymous.line - 1].strip() == 'value: "true"'  # type: ignore[operator]
    assert anonymous.resource is not None and anonymous.resource["kind"] == "ClusterConfiguration"
    # neither policy nor log is on an extraVolume: the API server cannot read one and loses the other
    assert len([m for m in messages(result, "KH-LOG-008") if "not on a hostPath volume" in m]) == 2
    # an unset flag points at where to add it
    profiling = next(f for f in node_results(result)["KH-CP-009"].findings if "kube-scheduler" in f.message)
    assert profiling.path == "scheduler.extraArgs"


def test_extra_args_override_kubeadm_flags(tmp_path: Path) -> None:
    weakened = "    enable-admission-plugins: AlwaysAdmit\n    authorization-mode: AlwaysAllow\n"
    config = HARDENED_V1BETA3.replace("    enable-admission-plugins: NodeRestriction\n", weakened)
    result = scan_paths(_repository(tmp_path, config))
    assert any("NodeRestriction" in m for m in messages(result, "KH-CP-008"))
    assert any("AlwaysAllow" in m for m in messages(result, "KH-CP-002"))


def test_external_etcd(tmp_path: Path) -> None:
    external = HARDENED_V1BETA3.replace(
        "etcd:\n  local:\n    dataDir: /var/lib/etcd\n    extraArgs:\n      tls-min-version: TLS1.2\n",
        "etcd:\n  external:\n    endpoints: [https://10.0.0.5:2379]\n    caFile: /etc/etcd/ca.crt\n"
        "    certFile: /etc/etcd/client.crt\n")
    result = scan_paths(_repository(tmp_path, external))
    assert status_of(result, "KH-CP-012") is Status.NOT_ASSESSED  # the external etcd's flags are elsewhere
    assert messages(result, "KH-CP-011") == ["--etcd-keyfile is not set"]


def test_static_pods_win_over_the_configuration_they_came_from(tmp_path: Path) -> None:
    from kubeharden.nodeconf.manifests import example

    repo = _repository(tmp_path, DEFAULT_V1BETA4)
    (repo / "manifests").mkdir()
    (repo / "manifests/kube-apiserver.yaml").write_text(example("kube-apiserver", anonymous_auth="false"))
    result = scan_paths(repo)
    assert status_of(result, "KH-CP-001") is Status.PASS  # judged from the manifest, not twice


def test_old_kubeadm_versions_are_not_modelled(tmp_path: Path) -> None:
    old = DEFAULT_V1BETA4.replace("v1beta4", "v1beta2").replace("v1.31.1", "v1.19.16")
    result = scan_paths(_repository(tmp_path, old))
    assert status_of(result, "KH-CP-001") is Status.NOT_ASSESSED


def test_kubelet_extra_args_override_the_kubelet_configuration(tmp_path: Path) -> None:
    """kubeadm writes nodeRegistration.kubeletExtraArgs to kubeadm-flags.env: flags over the shared
    KubeletConfiguration, per kind of node (first control plane, joining nodes)."""
    init = ("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\nnodeRegistration:\n"
            "  kubeletExtraArgs:\n    read-only-port: \"10255\"\n---\n")
    join = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nnodeRegistration:\n"
            "  kubeletExtraArgs:\n  - {name: node-labels, value: role=worker}\n---\n")
    repo = _repository(tmp_path, init + join + HARDENED_V1BETA3)
    result = scan_paths(repo)
    findings = node_results(result)["KH-NODE-004"].findings
    assert len(findings) == 1  # the joining nodes keep the file's readOnlyPort: 0
    assert findings[0].path == "nodeRegistration.kubeletExtraArgs.read-only-port" and findings[0].line == 5
    assert findings[0].evidence["origin"] == "flag" and "InitConfiguration" in findings[0].evidence["instance"]
    assert status_of(result, "KH-NODE-001") is Status.PASS


BARE_KUBELET = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nreadOnlyPort: 0\n"


def _client_ca_and_rotation(result_dir: Path, *files: tuple[str, str]) -> tuple[list[str], list[str]]:
    for name, text in files:
        (result_dir / name).write_text(text)
    result = scan_paths(*(result_dir / name for name, _ in files))
    rotation = [m for m in messages(result, "KH-NODE-007") if "client certificate" in m]
    return messages(result, "KH-NODE-003"), rotation


def test_kubeadm_fills_in_the_kubelet_client_ca_and_rotation(tmp_path: Path) -> None:
    """kubeadm (componentconfigs/kubelet.go) sets an empty clientCAFile to <certificatesDir>/ca.crt
    and rotateCertificates to true in the KubeletConfiguration it writes."""
    same_file = _client_ca_and_rotation(tmp_path, ("kubeadm.yaml", DEFAULT_V1BETA4 + "---\n" + BARE_KUBELET))
    assert same_file == ([], [])
    # the kubeadm documents in another file of the same input
    init = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
    other_file = _client_ca_and_rotation(tmp_path, ("init.yaml", init), ("kubelet.yaml", BARE_KUBELET))
    assert other_file == ([], [])
    assert status_of(scan_paths(tmp_path / "kubeadm.yaml"), "KH-NODE-003") is Status.PASS
    # the CA kubeadm names is in its certificatesDir
    custom = DEFAULT_V1BETA4 + "certificatesDir: /srv/pki\n---\n" + BARE_KUBELET
    loaded = load_bytes(custom.encode(), "kubeadm.yaml", LoadContext())
    [kubelet] = node_evidence(Inventory(loaded.resources, {})).kubelets
    ca = kubelet.setting("authentication.x509.clientCAFile")
    assert (ca.value, ca.origin) == ("/srv/pki/ca.crt", "kubeadm")
    assert ca.describe() == "authentication.x509.clientCAFile: /srv/pki/ca.crt (kubeadm default)"


def test_kubeadm_kubelet_defaults_apply_only_to_unset_fields(tmp_path: Path) -> None:
    # without kubeadm documents: plain kubelet v1beta1 defaults (no client CA, no rotation)
    plain = _client_ca_and_rotation(tmp_path, ("kubelet.yaml", BARE_KUBELET))
    assert plain == (["kubelet has no client CA file"],
                     ["kubelet client certificate is not rotated (rotateCertificates: false (default))"])
    # what the file (or a kubeletExtraArgs flag) sets is kept
    explicit = BARE_KUBELET + "rotateCertificates: false\n"
    kept = _client_ca_and_rotation(tmp_path, ("kubeadm.yaml", DEFAULT_V1BETA4 + "---\n" + explicit))
    assert kept == ([], ["kubelet client certificate is not rotated (rotateCertificates: false)"])
    flag = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:\n"
            "  kubeletExtraArgs:\n  - {name: rotate-certificates, value: \"false\"}\n---\n")
    by_flag = _client_ca_and_rotation(tmp_path, ("kubeadm.yaml", flag + BARE_KUBELET))
    assert by_flag == ([], ["kubelet client certificate is not rotated (--rotate-certificates=false)"])
