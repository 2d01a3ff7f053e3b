"""Hand-checked verdicts on the real-world corpus (shared/corpus/real): each finding below was read
against the YAML at its file:line and judged a real violation of what the guidance means, and each
"no finding" below was a false positive (or a miss) that was fixed. They pin the precision audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubeharden.catalog import Settings
from kubeharden.engine import ScanResult
from kubeharden.model import Finding, Severity
from kubeharden.scanner import ScanRequest, run_scan

# Files (or one directory: a Role and its RoleBinding in separate files) the verdicts come from.
INPUTS = (
    "longhorn/deploy/longhorn.yaml",
    "kube-bench/job-ack.yaml",
    "kube-prometheus/manifests/nodeExporter-daemonset.yaml",
    "metallb/config/manifests/metallb-frr-k8s.yaml",
    "metallb/config/manifests/metallb-frr-k8s-prometheus.yaml",
    "rook/deploy/examples/cleanup-job.yaml",
    "rook/deploy/examples/wordpress.yaml",
    "kubernetes-examples/_archived/volumes/iscsi/iscsi.yaml",
    "kubernetes-examples/_archived/openshift-origin/etcd-controller.yaml",
    "kubeflow-manifests/common/istio/istio-install/base/install.yaml",
    "kubeflow-manifests/applications/pipeline/upstream/third-party/application",
    "argo-cd/manifests/install.yaml",
    "calico/manifests/tigera-operator.yaml",
    "calico/manifests/calicoctl-etcd.yaml",
    "kubernetes-engine-samples/ai-ml/infw-gw/examples/getting-started/metrics-auth.yaml",
    "kubernetes-engine-samples/ai-ml/llm-training-jax-tpu-gemma3/xprof-enabled/training_singlehost.yaml",
    "fluentd-kubernetes-daemonset/fluentd-daemonset-azureblob.yaml",
)

# (file, line, control, severity): real violations, checked by hand.
VIOLATIONS = [
    ("longhorn/deploy/longhorn.yaml", 5621, "KH-POD-005", Severity.CRITICAL),  # privileged: true
    ("longhorn/deploy/longhorn.yaml", 5460, "KH-RBAC-001", Severity.CRITICAL),  # SA bound to cluster-admin
    ("kube-bench/job-ack.yaml", 9, "KH-POD-006", Severity.HIGH),  # hostPID: true
    ("kube-bench/job-ack.yaml", 11, "KH-POD-004", Severity.MEDIUM),  # no allowPrivilegeEscalation: false
    ("kube-prometheus/manifests/nodeExporter-daemonset.yaml", 54, "KH-POD-033", Severity.HIGH),  # add SYS_TIME
    ("kube-prometheus/manifests/nodeExporter-daemonset.yaml", 80, "KH-POD-008", Severity.MEDIUM),  # hostPort 9100
    ("kube-prometheus/manifests/nodeExporter-daemonset.yaml", 117, "KH-POD-009", Severity.HIGH),  # hostPath /, ro
    # containerPort of a hostNetwork pod: a host port, but the fix is hostNetwork (KH-POD-007)
    ("metallb/config/manifests/metallb-frr-k8s-prometheus.yaml", 3909, "KH-POD-008", Severity.LOW),
    # readinessProbe host 127.0.0.1 in a hostNetwork pod: forbidden by baseline, but it is the pod itself
    ("metallb/config/manifests/metallb-frr-k8s-prometheus.yaml", 3917, "KH-POD-032", Severity.LOW),
    ("rook/deploy/examples/cleanup-job.yaml", 146, "KH-POD-009", Severity.CRITICAL),  # /dev, writable
    ("rook/deploy/examples/wordpress.yaml", 56, "KH-CRED-001", Severity.HIGH),  # default password literal
    ("kubernetes-examples/_archived/volumes/iscsi/iscsi.yaml", 15, "KH-POD-012", Severity.MEDIUM),  # iscsi volume
    ("kubeflow-manifests/common/istio/istio-install/base/install.yaml", 3785, "KH-POD-014", Severity.MEDIUM),
    ("kubeflow-manifests/common/istio/istio-install/base/install.yaml", 3870, "KH-POD-002", Severity.HIGH),  # UID 0
    ("argo-cd/manifests/install.yaml", 31762, "KH-RBAC-004", Severity.HIGH),  # get on pods/exec via '*'
    ("calico/manifests/tigera-operator.yaml", 7, "KH-POD-020", Severity.HIGH),  # enforce: privileged
    ("kubernetes-engine-samples/ai-ml/infw-gw/examples/getting-started/metrics-auth.yaml", 53, "KH-CRED-004",
     Severity.MEDIUM),  # kubernetes.io/service-account-token Secret
    ("fluentd-kubernetes-daemonset/fluentd-daemonset-azureblob.yaml", 79, "KH-CRED-001", Severity.HIGH),
    ("calico/manifests/calicoctl-etcd.yaml", 17, "KH-POD-019", Severity.MEDIUM),  # :master, a branch tag (was missed)
    # drop: [all] drops everything at runtime (case-insensitive) but PSA restricted rejects it: low, not medium
    ("metallb/config/manifests/metallb-frr-k8s.yaml", 3366, "KH-POD-011", Severity.LOW),
]

# (file, line, control): no finding there (each was a false positive before the audit's fixes).
COMPLIANT = [
    ("kubernetes-engine-samples/ai-ml/llm-training-jax-tpu-gemma3/xprof-enabled/training_singlehost.yaml", 28,
     "KH-POD-019"),  # image: ${IMAGE_URI} is a placeholder, not an untagged image
    ("calico/manifests/tigera-operator.yaml", 5, "KH-POD-020"),  # no warn/audit is not weaker than privileged
    ("kubernetes-examples/_archived/openshift-origin/etcd-controller.yaml", 36, "KH-CRED-001"),  # cluster id
    # a namespaced Role cannot grant CSRs or webhook configurations (cluster-scoped)
    ("kubeflow-manifests/applications/pipeline/upstream/third-party/application/application-controller-rolebinding"
     ".yaml", 10, "KH-RBAC-006"),
    # privileged: true inside an injection template string of a ConfigMap: not a pod spec
    ("kubeflow-manifests/common/istio/istio-install/base/install.yaml", 1200, "KH-POD-005"),
]

CONTROLS = sorted({c for _, _, c, _ in VIOLATIONS} | {c for _, _, c in COMPLIANT} | {"KH-POD-023"})


@pytest.fixture(scope="module")
def corpus_scan(shared_dir: Path) -> tuple[Path, ScanResult]:
    root = shared_dir / "corpus" / "real"
    if not root.is_dir():
        pytest.skip(f"no real-world corpus at {root}")
    result = run_scan(ScanRequest(paths=[str(root / p) for p in INPUTS], only=CONTROLS, settings=Settings()))
    return root, result


def at(corpus: tuple[Path, ScanResult], file: str, line: int, control: str) -> list[Finding]:
    root, result = corpus
    return [f for f in result.findings if f.control_id == control and f.line == line
            and f.file is not None and Path(f.file).resolve() == (root / file).resolve()]


@pytest.mark.parametrize(("file", "line", "control", "severity"), VIOLATIONS,
                         ids=[f"{c}@{f.rsplit('/', 1)[-1]}:{n}" for f, n, c, _ in VIOLATIONS])
def test_real_violation_is_reported_at_the_offending_line(corpus_scan: Any, file: str, line: int, control: str,
                                                          severity: Severity) -> None:
    found = at(corpus_scan, file, line, control)
    assert found, f"{control} not reported at {file}:{line}"
    assert severity in {f.severity for f in found}, [(f.severity, f.message) for f in found]


@pytest.mark.parametrize(("file", "line", "control"), COMPLIANT,
                         ids=[f"{c}@{f.rsplit('/', 1)[-1]}:{n}" for f, n, c in COMPLIANT])
def test_compliant_or_out_of_scope_line_has_no_finding(corpus_scan: Any, file: str, line: int, control: str) -> None:
    assert at(corpus_scan, file, line, control) == []


def test_patch_on_everything_does_not_approve_certificates(corpus_scan: Any) -> None:
    # argocd-server's ClusterRole (delete/get/patch on '*'): patching webhook configurations is a real
    # escalation path; approving CSRs also needs `approve` on a signer, which it does not have
    [finding] = at(corpus_scan, "argo-cd/manifests/install.yaml", 31762, "KH-RBAC-006")
    assert "admission webhooks" in finding.message and "certificate" not in finding.message


def test_tokens_of_bound_service_accounts_are_not_reported(corpus_scan: Any) -> None:
    # argo-cd's controllers run as ServiceAccounts with RBAC bindings: they call the API, the token is needed
    # (NSA-POD-23 targets unbound and default ServiceAccounts). Pods on 'default' stay reported.
    _, result = corpus_scan
    tokens = [f for f in result.findings if f.control_id == "KH-POD-023"]
    assert not [f for f in tokens if f.file and "argo-cd" in f.file]
    reported = {f.evidence.get("service_account") for f in tokens}
    assert "default" in reported  # e.g. rook/deploy/examples/wordpress.yaml runs as 'default'
