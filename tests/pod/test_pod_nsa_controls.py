"""NSA pod-security controls (KH-POD-*): precedence, severities, versions, and no false positive on a
fully hardened workload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubeharden.catalog import Settings, all_controls
from kubeharden.controls.pod_images import parse_image, registry_allowed
from kubeharden.controls.pod_security import sensitive_host_path
from kubeharden.engine import ScanResult
from kubeharden.model import Severity, Status
from kubeharden.scanner import ScanRequest, run_scan

REPO = Path(__file__).resolve().parents[2]
HARDENED = REPO / "examples" / "hardened-workload.yaml"


def scan(tmp_path: Path, text: str, *controls: str, **settings: Any) -> ScanResult:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    return run_scan(ScanRequest(paths=[str(path)], only=controls or ("KH-POD-*",), settings=Settings(**settings)))


def findings(result: ScanResult, control: str) -> list[Any]:
    return [f for f in result.findings if f.control_id == control]


def status(result: ScanResult, control: str) -> Status:
    return next(r.status for r in result.controls if r.control.id == control)


def pod(spec: str, meta: str = "") -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: apps\n{meta}spec:\n{spec}"


# --- the hardened example ------------------------------------------------------------------------


@pytest.mark.parametrize("as_cluster", [False, True])
def test_hardened_workload_has_no_pod_security_finding(as_cluster: bool) -> None:
    result = run_scan(ScanRequest(paths=[str(HARDENED)], only=("KH-POD-*",), settings=Settings(as_cluster=as_cluster)))
    assert not result.errors
    assert result.resources == 7  # Namespace, ServiceAccount, Deployment, 2 NetworkPolicies, LimitRange, ResourceQuota
    assert [(f.control_id, f.message) for f in result.findings] == []
    checked = {r.control.id for r in result.controls if r.status is Status.PASS}
    # the judgeable controls really ran (passed), they were not skipped as not_assessed
    assert {"KH-POD-002", "KH-POD-003", "KH-POD-004", "KH-POD-010", "KH-POD-011", "KH-POD-013", "KH-POD-016",
            "KH-POD-019", "KH-POD-020", "KH-POD-023", "KH-POD-026", "KH-POD-027"} <= checked


def test_hardened_workload_passes_both_pss_profiles() -> None:
    for profile in ("pss-baseline", "pss-restricted"):
        result = run_scan(ScanRequest(paths=[str(HARDENED)], profile=profile))
        assert not result.findings and not result.errors
        assert all(r.status is Status.PASS for r in result.controls)


def test_hardened_workload_breaks_when_one_field_is_wrong(tmp_path: Path) -> None:
    text = HARDENED.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1)
    result = scan(tmp_path, text)
    assert [(f.control_id, f.path) for f in result.findings] == [
        ("KH-POD-010", "spec.template.spec.initContainers[0].securityContext.readOnlyRootFilesystem")]


# --- identity -------------------------------------------------------------------------------------


def test_container_security_context_wins_over_pod(tmp_path: Path) -> None:
    text = pod("""  securityContext: {runAsNonRoot: true, runAsUser: 0}
  containers:
  - {name: a, image: x, securityContext: {runAsUser: 1000}}
  - {name: b, image: x, securityContext: {runAsNonRoot: false, runAsUser: 1000}}
  - {name: c, image: x}
""")
    got = {(f.path, f.severity) for f in findings(scan(tmp_path, text, "KH-POD-002"), "KH-POD-002")}
    assert got == {
        ("spec.containers[1].securityContext.runAsNonRoot", Severity.LOW),  # non-root uid, not enforced
        ("spec.securityContext.runAsUser", Severity.HIGH),  # c inherits runAsUser: 0
    }


def test_unknown_user_is_medium_and_user_namespace_lowers_it(tmp_path: Path) -> None:
    text = pod("  containers: [{name: a, image: x}]\n")
    [f] = findings(scan(tmp_path, text, "KH-POD-002"), "KH-POD-002")
    assert f.severity is Severity.MEDIUM and f.path == "spec.containers[0].securityContext.runAsNonRoot"
    [f] = findings(scan(tmp_path, text.replace("spec:\n", "spec:\n  hostUsers: false\n"), "KH-POD-002"),
                   "KH-POD-002")
    assert f.severity is Severity.LOW


def test_root_group(tmp_path: Path) -> None:
    text = pod("""  securityContext: {fsGroup: 0, supplementalGroups: [10, 0], runAsGroup: 10}
  containers:
  - {name: a, image: x, securityContext: {runAsGroup: 0}}
  - {name: b, image: x}
""")
    got = {(f.path, f.severity) for f in findings(scan(tmp_path, text, "KH-POD-003"), "KH-POD-003")}
    assert got == {("spec.securityContext.fsGroup", Severity.MEDIUM),
                   ("spec.securityContext.supplementalGroups[1]", Severity.MEDIUM),
                   ("spec.containers[0].securityContext.runAsGroup", Severity.MEDIUM)}
    two = pod("  initContainers: [{name: i, image: x}]\n  containers: [{name: a, image: x}]\n")
    unset = findings(scan(tmp_path, two, "KH-POD-003"), "KH-POD-003")
    assert [(f.path, f.severity) for f in unset] == [("spec.securityContext.runAsGroup", Severity.LOW)]
    assert "i, a" in unset[0].message


# --- privilege and capabilities ---------------------------------------------------------------------


def test_capability_severities(tmp_path: Path) -> None:
    text = pod("""  containers:
  - name: a
    image: x
    securityContext:
      capabilities: {drop: [CAP_ALL], add: [SYS_ADMIN, NET_ADMIN, CAP_NET_RAW, NET_BIND_SERVICE, CHOWN]}
""")
    result = scan(tmp_path, text, "KH-POD-011", "KH-POD-033")
    added = {f.value: f.severity for f in findings(result, "KH-POD-033")}
    assert added == {"SYS_ADMIN": Severity.CRITICAL, "NET_ADMIN": Severity.HIGH, "CAP_NET_RAW": Severity.HIGH,
                     "NET_BIND_SERVICE": Severity.LOW, "CHOWN": Severity.MEDIUM}
    [drop] = findings(result, "KH-POD-011")
    assert "CAP_ALL is not a capability name" in drop.message and drop.value == ["CAP_ALL"]


@pytest.mark.parametrize("spelling", ["all", "All"])
def test_drop_all_in_lower_case_drops_everything_but_fails_admission(tmp_path: Path, spelling: str) -> None:
    # containerd and CRI-O match "ALL" case-insensitively: drop: [all] drops every capability, so "does not
    # drop ALL capabilities" (medium) was wrong; PSA restricted still rejects it (exact match), hence low
    # (corpus: metallb/config/manifests/metallb-frr-k8s.yaml:3366).
    text = pod(f"  containers: [{{name: a, image: x, securityContext: {{capabilities: {{drop: [{spelling}]}}}}}}]\n")
    [lower] = findings(scan(tmp_path, text, "KH-POD-011"), "KH-POD-011")
    assert lower.severity is Severity.LOW and "Pod Security Admission" in lower.message
    assert "does not drop" not in lower.message
    assert findings(scan(tmp_path, text.replace(f"[{spelling}]", "[ALL]"), "KH-POD-011"), "KH-POD-011") == []
    [kept] = findings(scan(tmp_path, text.replace(f"[{spelling}]", "[NET_RAW]"), "KH-POD-011"), "KH-POD-011")
    assert kept.severity is Severity.MEDIUM and "does not drop ALL" in kept.message


def test_windows_pods_are_not_asked_for_linux_only_fields(tmp_path: Path) -> None:
    text = pod("""  os: {name: windows}
  securityContext: {runAsNonRoot: true}
  containers: [{name: a, image: x:1}]
""")
    result = scan(tmp_path, text, "KH-POD-003", "KH-POD-004", "KH-POD-010", "KH-POD-011", "KH-POD-013",
                  "KH-POD-016", "KH-POD-002")
    assert result.findings == []
    hostprocess = text.replace("{runAsNonRoot: true}", "{runAsNonRoot: true, windowsOptions: {hostProcess: true}}")
    assert findings(scan(tmp_path, hostprocess, "KH-POD-029"), "KH-POD-029")


# --- host access -----------------------------------------------------------------------------------


def test_host_port_implied_by_host_network_points_at_host_network(tmp_path: Path) -> None:
    # corpus: metallb-frr-k8s-prometheus.yaml:3909 told users to remove a hostPort that is not written
    text = pod("""  hostNetwork: true
  containers:
  - name: a
    image: x
    ports: [{containerPort: 7946}, {containerPort: 80, hostPort: 8080}]
""")
    got = {f.path: f for f in findings(scan(tmp_path, text, "KH-POD-008"), "KH-POD-008")}
    implied = got["spec.containers[0].ports[0].containerPort"]
    assert implied.severity is Severity.LOW and "spec.hostNetwork" in implied.remediation
    explicit = got["spec.containers[0].ports[1].hostPort"]
    assert explicit.severity is Severity.MEDIUM and "hostPort" in explicit.remediation
    assert len(got) == 2
    assert findings(scan(tmp_path, text.replace("hostNetwork: true", "hostNetwork: false"), "KH-POD-008"),
                    "KH-POD-008")[0].path == "spec.containers[0].ports[1].hostPort"


def test_probe_host_on_loopback_of_a_host_network_pod_is_low(tmp_path: Path) -> None:
    # corpus: metallb-frr-k8s.yaml:3822 (hostNetwork speaker, readinessProbe host 127.0.0.1)
    text = pod("""  hostNetwork: HOSTNET
  containers:
  - name: a
    image: x
    readinessProbe: {httpGet: {host: 127.0.0.1, port: 8080}}
    livenessProbe: {tcpSocket: {host: 10.0.0.1, port: 10250}}
""")
    on_host = {f.path: f for f in findings(scan(tmp_path, text.replace("HOSTNET", "true"), "KH-POD-032"),
                                           "KH-POD-032")}
    loopback = on_host["spec.containers[0].readinessProbe.httpGet.host"]
    assert loopback.severity is Severity.LOW and "the pod itself" in loopback.message
    assert on_host["spec.containers[0].livenessProbe.tcpSocket.host"].severity is Severity.MEDIUM
    in_pod_network = findings(scan(tmp_path, text.replace("HOSTNET", "false"), "KH-POD-032"), "KH-POD-032")
    assert {f.severity for f in in_pod_network} == {Severity.MEDIUM} and len(in_pod_network) == 2


def test_host_path_severity_depends_on_path_and_mount(tmp_path: Path) -> None:
    text = pod("""  containers:
  - name: a
    image: x
    volumeMounts:
    - {name: data, mountPath: /data, readOnly: true}
    - {name: etc, mountPath: /host/etc, readOnly: true}
    - {name: kubelet, mountPath: /var/lib/kubelet}
    - {name: logs, mountPath: /logs}
  volumes:
  - {name: data, hostPath: {path: /srv/data}}
  - {name: etc, hostPath: {path: /etc}}
  - {name: kubelet, hostPath: {path: /var/lib/kubelet/pods}}
  - {name: logs, hostPath: {path: /srv/logs}}
  - {name: sock, hostPath: {path: /run/containerd/containerd.sock}}
""")
    got = {f.value: f.severity for f in findings(scan(tmp_path, text, "KH-POD-009"), "KH-POD-009")}
    assert got == {"/srv/data": Severity.MEDIUM, "/etc": Severity.HIGH, "/var/lib/kubelet/pods": Severity.CRITICAL,
                   "/srv/logs": Severity.HIGH, "/run/containerd/containerd.sock": Severity.HIGH}
    # the message says which case it is (it used to say "mounted read-only or not mounted" for both)
    messages = {f.value: f.message for f in findings(scan(tmp_path, text, "KH-POD-009"), "KH-POD-009")}
    assert messages["/etc"].endswith("(sensitive), mounted read-only by a")
    assert messages["/run/containerd/containerd.sock"].endswith("(sensitive), not mounted by any container")
    assert messages["/srv/logs"].endswith(", mounted writable by a")


def test_sensitive_host_paths() -> None:
    for path in ("/", "/etc/", "/proc", "/var/run/docker.sock", "/var/lib/kubelet", "/home/x/docker.sock"):
        assert sensitive_host_path(path), path
    for path in ("/srv/data", "/etcd-backup", "/var/log/app", "/opt/x"):
        assert not sensitive_host_path(path), path


def test_volume_types_exclude_host_path_and_accept_defaulted_volume(tmp_path: Path) -> None:
    text = pod("""  containers: [{name: a, image: x}]
  volumes:
  - {name: scratch}
  - {name: h, hostPath: {path: /srv}}
  - {name: n, nfs: {server: s, path: /}}
  - {name: c, csi: {driver: secrets-store.csi.k8s.io}}
""")
    assert [f.path for f in findings(scan(tmp_path, text, "KH-POD-012"), "KH-POD-012")] == ["spec.volumes[2].nfs"]


# --- kernel isolation -------------------------------------------------------------------------------


SECCOMP_ANNOTATED = pod("  containers: [{name: a, image: x}]\n",
                        "  annotations: {seccomp.security.alpha.kubernetes.io/pod: runtime/default}\n")


def test_seccomp_annotation_ignored_where_the_field_exists(tmp_path: Path) -> None:
    [f] = findings(scan(tmp_path, SECCOMP_ANNOTATED, "KH-POD-013"), "KH-POD-013")
    assert "ignored" in f.message and f.path == "spec.securityContext.seccompProfile"
    assert scan(tmp_path, SECCOMP_ANNOTATED, "KH-POD-013", kubernetes_version=(1, 18)).findings == []
    unconfined = SECCOMP_ANNOTATED.replace("runtime/default", "unconfined")
    [f] = findings(scan(tmp_path, unconfined, "KH-POD-013", kubernetes_version=(1, 18)), "KH-POD-013")
    assert f.severity is Severity.HIGH


def test_seccomp_field_precedence(tmp_path: Path) -> None:
    text = pod("""  securityContext: {seccompProfile: {type: RuntimeDefault}}
  containers:
  - {name: a, image: x}
  - {name: b, image: x, securityContext: {seccompProfile: {type: Unconfined}}}
""")
    [f] = findings(scan(tmp_path, text, "KH-POD-013"), "KH-POD-013")
    assert f.path == "spec.containers[1].securityContext.seccompProfile.type" and f.severity is Severity.HIGH


def test_user_namespace_control_applies_from_1_33(tmp_path: Path) -> None:
    text = pod("  containers: [{name: a, image: x}]\n")
    assert findings(scan(tmp_path, text, "KH-POD-016"), "KH-POD-016")
    assert status(scan(tmp_path, text, "KH-POD-016", kubernetes_version=(1, 30)), "KH-POD-016") \
        is Status.NOT_ASSESSED


# --- images ------------------------------------------------------------------------------------------


def test_image_reference_parsing_and_allow_list() -> None:
    ref = parse_image("nginx")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("docker.io", "library/nginx", None, None)
    ref = parse_image("localhost:5000/team/app:1.2@sha256:abc")
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ("localhost:5000", "team/app", "1.2", "sha256:abc")
    assert registry_allowed(parse_image("nginx:1"), ("docker.io/library",))
    assert registry_allowed(parse_image("ghcr.io/org/app:1"), ("ghcr.io/org",))
    assert not registry_allowed(parse_image("ghcr.io/orgevil/app:1"), ("ghcr.io/org",))
    assert not registry_allowed(parse_image("quay.io/x:1"), ("ghcr.io",))


def test_image_controls(tmp_path: Path) -> None:
    text = pod("""  containers:
  - {name: a, image: nginx}
  - {name: b, image: "registry.example/app:latest"}
  - {name: c, image: "registry.example/app:latest@sha256:0123"}
  - {name: d, image: "ghcr.io/org/app:1.0"}
""")
    result = scan(tmp_path, text, "KH-POD-019", "KH-POD-027", "KH-POD-028")
    assert [f.value for f in findings(result, "KH-POD-019")] == ["nginx", "registry.example/app:latest"]
    assert len(findings(result, "KH-POD-027")) == 3
    assert status(result, "KH-POD-028") is Status.NOT_ASSESSED
    allowed = scan(tmp_path, text, "KH-POD-028", allowed_registries=("registry.example", "ghcr.io/org"))
    assert [f.value for f in findings(allowed, "KH-POD-028")] == ["nginx"]


def test_branch_and_channel_tags_are_mutable(tmp_path: Path) -> None:
    # corpus: calico/manifests/calicoctl-etcd.yaml:17 quay.io/calico/ctl:master was only "not pinned by digest"
    text = pod("""  containers:
  - {name: a, image: "quay.io/calico/ctl:master"}
  - {name: b, image: "docker.io/longhornio/longhorn-ui:master-head"}
  - {name: c, image: "ghcr.io/org/app:main-latest"}
  - {name: d, image: "ghcr.io/org/app:v1.2.0-dev"}
  - {name: e, image: "nginx:stable-alpine"}
  - {name: f, image: "ghcr.io/org/app:1.2@sha256:0123"}
""")
    got = findings(scan(tmp_path, text, "KH-POD-019"), "KH-POD-019")
    assert [f.value for f in got] == ["quay.io/calico/ctl:master", "docker.io/longhornio/longhorn-ui:master-head",
                                      "ghcr.io/org/app:main-latest"]
    assert "branch or channel tag" in got[0].message


def test_unrendered_image_placeholder_is_not_called_untagged(tmp_path: Path) -> None:
    # corpus: llm-training-jax-tpu-gemma3/xprof-enabled/training_singlehost.yaml:28 "${IMAGE_URI} has no tag"
    text = pod("""  containers:
  - {name: a, image: "${IMAGE_URI}"}
  - {name: b, image: "<image_url>"}
  - {name: c, image: "us-docker.pkg.dev/$PROJECT_ID/repo/app:latest"}
  - {name: d, image: "<DOCKER_REPO>/chatbot:1.0"}
""")
    result = scan(tmp_path, text, "KH-POD-019", "KH-POD-027")
    # a literal tag next to a placeholder is still judged; a bare placeholder is not
    assert [f.value for f in findings(result, "KH-POD-019")] == ["us-docker.pkg.dev/$PROJECT_ID/repo/app:latest"]
    assert [f.value for f in findings(result, "KH-POD-027")] == ["us-docker.pkg.dev/$PROJECT_ID/repo/app:latest",
                                                               "<DOCKER_REPO>/chatbot:1.0"]


# --- service-account tokens --------------------------------------------------------------------------

SA = "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: apps}\n"


def test_token_automount_precedence(tmp_path: Path) -> None:
    base = pod("  serviceAccountName: app\n  containers: [{name: a, image: x}]\n")
    sa_false = SA + "automountServiceAccountToken: false\n"
    sa_true = SA + "automountServiceAccountToken: true\n"
    assert scan(tmp_path, base + sa_false, "KH-POD-023").findings == []
    [f] = scan(tmp_path, base + sa_true, "KH-POD-023").findings
    assert f.evidence["decided_by"] == "serviceaccount"
    pod_false = base.replace("spec:\n", "spec:\n  automountServiceAccountToken: false\n")
    assert scan(tmp_path, pod_false + sa_true, "KH-POD-023").findings == []
    pod_true = base.replace("spec:\n", "spec:\n  automountServiceAccountToken: true\n")
    [f] = scan(tmp_path, pod_true + sa_false, "KH-POD-023").findings
    assert f.evidence["decided_by"] == "pod" and f.path == "spec.automountServiceAccountToken"


def test_token_automount_with_service_account_outside_input(tmp_path: Path) -> None:
    base = pod("  serviceAccountName: app\n  containers: [{name: a, image: x}]\n")
    assert status(scan(tmp_path, base, "KH-POD-023"), "KH-POD-023") is Status.NOT_ASSESSED
    assert status(scan(tmp_path, base, "KH-POD-023", as_cluster=True), "KH-POD-023") is Status.FAIL
    default = pod("  containers: [{name: a, image: x}]\n")
    assert status(scan(tmp_path, default, "KH-POD-023"), "KH-POD-023") is Status.FAIL


def test_token_of_a_bound_service_account_is_needed(tmp_path: Path) -> None:
    # NSA-POD-23 targets tokens nobody uses: a dedicated ServiceAccount with RBAC bindings calls the API
    # (corpus: argo-cd/manifests/install.yaml argocd-server was reported although its SA is bound)
    base = pod("  serviceAccountName: app\n  containers: [{name: a, image: x}]\n") + SA
    binding = """---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app, namespace: NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: app}
subjects: [{kind: ServiceAccount, name: SUBJECT}]
"""
    [unbound] = scan(tmp_path, base, "KH-POD-023").findings
    assert unbound.path == "spec.automountServiceAccountToken"
    bound = scan(tmp_path, base + binding.replace("NS", "apps").replace("SUBJECT", "app"), "KH-POD-023")
    assert bound.findings == [] and status(bound, "KH-POD-023") is Status.PASS
    # a binding in another namespace, or for another account, does not count
    assert len(scan(tmp_path, base + binding.replace("NS", "other").replace("SUBJECT", "app"),
                    "KH-POD-023").findings) == 1
    assert len(scan(tmp_path, base + binding.replace("NS", "apps").replace("SUBJECT", "other"),
                    "KH-POD-023").findings) == 1
    # the namespace's default ServiceAccount is reported even when it is bound
    default = pod("  containers: [{name: a, image: x}]\n") + binding.replace("NS", "apps").replace("SUBJECT", "default")
    assert len(scan(tmp_path, default, "KH-POD-023").findings) == 1


def test_default_service_account(tmp_path: Path) -> None:
    [f] = scan(tmp_path, pod("  containers: [{name: a, image: x}]\n"), "KH-POD-026").findings
    assert f.severity is Severity.MEDIUM and f.path == "spec.serviceAccountName"
    text = pod("  serviceAccountName: default\n  automountServiceAccountToken: false\n"
               "  containers: [{name: a, image: x}]\n")
    [f] = scan(tmp_path, text, "KH-POD-026").findings
    assert f.severity is Severity.LOW
    assert scan(tmp_path, pod("  serviceAccountName: app\n  containers: [{name: a, image: x}]\n"),
                "KH-POD-026").findings == []


# --- Pod Security Admission and PSP -----------------------------------------------------------------


def ns(name: str, **labels: str) -> str:
    body = "".join(f"    pod-security.kubernetes.io/{k}: {v}\n" for k, v in labels.items())
    return f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    team: x\n{body}"


def test_namespace_psa_labels(tmp_path: Path) -> None:
    text = (ns("none") + ns("priv", enforce="privileged", warn="restricted", audit="restricted")
            + ns("base", enforce="baseline", warn="privileged", audit="baseline")
            + ns("good", enforce="restricted", warn="restricted", audit="restricted")
            + ns("typo", enforce="restriced") + ns("kube-system", enforce="privileged"))
    got = {((f.resource or {}).get("name"), f.path, f.severity) for f in scan(tmp_path, text, "KH-POD-020").findings}
    assert got == {
        ("none", "metadata.labels", Severity.HIGH),
        ("priv", "metadata.labels['pod-security.kubernetes.io/enforce']", Severity.HIGH),
        ("base", "metadata.labels['pod-security.kubernetes.io/enforce']", Severity.LOW),
        ("base", "metadata.labels['pod-security.kubernetes.io/warn']", Severity.LOW),
        ("typo", "metadata.labels['pod-security.kubernetes.io/enforce']", Severity.MEDIUM),
    }


def test_missing_warn_audit_is_not_weaker_than_enforce_privileged(tmp_path: Path) -> None:
    # corpus: calico/manifests/tigera-operator.yaml:5 was told its (absent) warn/audit labels are
    # "weaker than its enforced level privileged"; the default is privileged, nothing is weaker
    text = ns("priv", enforce="privileged") + ns("strict", enforce="restricted")
    got = {((f.resource or {}).get("name"), f.path, f.severity) for f in scan(tmp_path, text, "KH-POD-020").findings}
    assert got == {
        ("priv", "metadata.labels['pod-security.kubernetes.io/enforce']", Severity.HIGH),
        ("strict", "metadata.labels", Severity.LOW),  # warn and audit at the default, weaker than restricted
    }
    strict = [f.message for f in scan(tmp_path, text, "KH-POD-020").findings if "'strict'" in f.message]
    assert sorted(strict) == ["namespace 'strict' audits at the cluster default, weaker than its enforced level "
                              "restricted", "namespace 'strict' warns at the cluster default, weaker than its "
                              "enforced level restricted"]


def test_namespace_psa_label_that_is_not_a_string(tmp_path: Path) -> None:
    # Regression: a list-valued label crashed the control (unhashable in the level lookup).
    text = ns("listed", enforce="[restricted]") + ns("mapped", enforce="restricted", warn="{a: 1}", audit="restricted")
    result = scan(tmp_path, text, "KH-POD-020")
    assert not result.errors
    got = {((f.resource or {}).get("name"), f.path, f.severity) for f in result.findings}
    assert got == {
        ("listed", "metadata.labels['pod-security.kubernetes.io/enforce']", Severity.MEDIUM),
        ("mapped", "metadata.labels['pod-security.kubernetes.io/warn']", Severity.LOW),
    }


def test_namespace_psa_needs_namespaces(tmp_path: Path) -> None:
    result = scan(tmp_path, pod("  containers: [{name: a, image: x}]\n"), "KH-POD-020")
    assert status(result, "KH-POD-020") is Status.NOT_ASSESSED


PSP = """apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: open}
spec:
  privileged: true
  volumes: ['*']
  runAsUser: {rule: RunAsAny}
"""


def test_psp_by_version(tmp_path: Path) -> None:
    old = scan(tmp_path, PSP, "KH-POD-021", "KH-POD-022", kubernetes_version=(1, 24))
    assert status(old, "KH-POD-022") is Status.NOT_ASSESSED
    sev = {f.path: f.severity for f in findings(old, "KH-POD-021")}
    assert sev["spec.privileged"] is Severity.CRITICAL and sev["spec.allowedHostPaths"] is Severity.HIGH
    assert "spec.allowPrivilegeEscalation" in sev and "spec.runAsUser.rule" in sev
    new = scan(tmp_path, PSP, "KH-POD-021", "KH-POD-022", kubernetes_version=(1, 30))
    assert [f.path for f in findings(new, "KH-POD-022")] == ["kind"]
    assert {f.severity for f in findings(new, "KH-POD-021")} == {Severity.LOW}


def test_every_nsa_pod_recommendation_is_listed() -> None:
    covered = {g for c in all_controls() if c.id.startswith("KH-POD-") for g in c.guidance}
    # NSA-POD-24 (RBAC of pod service accounts) is judged by the RBAC controls' workload-identity joins
    expected = {f"NSA-POD-{n}" for n in range(1, 26)} - {"NSA-POD-24"}
    assert expected <= covered, sorted(expected - covered)
    manual = {c.id: c.manual for c in all_controls() if c.id.startswith("KH-POD-") and c.manual}
    assert set(manual) == {"KH-POD-018", "KH-POD-025"}  # KH-POD-001, KH-POD-017: images (issue 16)
    assert all(manual.values())


def test_every_container_kind_of_every_workload_is_checked(tmp_path: Path) -> None:
    text = """apiVersion: batch/v1
kind: CronJob
metadata: {name: c, namespace: apps}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: init, image: x:1, securityContext: {privileged: true}}]
          containers: [{name: main, image: x:1}]
          ephemeralContainers: [{name: debug, image: x:1, securityContext: {allowPrivilegeEscalation: true}}]
"""
    result = scan(tmp_path, text, "KH-POD-004", "KH-POD-005")
    got = {(f.control_id, f.path, f.line) for f in result.findings}
    base = "spec.jobTemplate.spec.template.spec."
    assert got == {
        ("KH-POD-005", base + "initContainers[0].securityContext.privileged", 10),
        ("KH-POD-004", base + "initContainers[0].securityContext.allowPrivilegeEscalation", 10),
        ("KH-POD-004", base + "containers[0].securityContext.allowPrivilegeEscalation", 11),
        ("KH-POD-004", base + "ephemeralContainers[0].securityContext.allowPrivilegeEscalation", 12),
    }
    [high] = [f for f in result.findings if "ephemeral" in f.path]
    assert high.severity is Severity.HIGH
