"""KH-RBAC-* controls: their examples, and the behaviour behind each finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubeharden.catalog import Settings, all_controls, get_control
from kubeharden.engine import Engine, ScanResult
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes, load_paths
from kubeharden.model import Finding, Status

FIXTURE = Path(__file__).with_name("rbac_fixture.yaml")
# the RBAC engine's controls; binding scope (KH-RBAC-020, controls/rbac_scope.py) and the review
# sign-off (KH-RBAC-021, manual) are tested in tests/guidance
RBAC_CONTROLS = [c for c in all_controls() if c.module == "kubeharden.controls.rbac"]


def scan(text: str, control_id: str, extra: dict[str, Any] | None = None, as_cluster: bool = False) -> ScanResult:
    loaded = load_bytes(text.encode(), "test.yaml", LoadContext())
    assert not loaded.errors, loaded.errors
    ctrl = get_control(control_id)
    assert ctrl is not None
    settings = Settings(extra=dict(extra or {}), as_cluster=as_cluster)
    return Engine([ctrl], settings).run(Inventory(loaded.resources))


def findings(text: str, control_id: str, **kwargs: Any) -> list[Finding]:
    result = scan(text, control_id, **kwargs)
    assert not result.errors, result.errors
    return result.findings


def test_there_are_nine_controls_in_the_nsa_profile() -> None:
    assert [c.id for c in RBAC_CONTROLS] == [f"KH-RBAC-{i:03d}" for i in range(1, 10)]
    assert all("nsa" in c.profiles for c in RBAC_CONTROLS)


@pytest.mark.parametrize("ctrl", RBAC_CONTROLS, ids=lambda c: c.id)
def test_examples(ctrl: Any) -> None:
    assert any(e.bad for e in ctrl.examples) and any(not e.bad for e in ctrl.examples)
    for example in ctrl.examples:
        result = scan(example.yaml, ctrl.id)
        status = result.controls[0].status
        assert (status is Status.FAIL) is example.bad, (example.yaml, status, result.controls[0].reason)


def test_builtin_objects_never_generate_findings() -> None:
    # Only a workload and its namespace: the built-in bindings (system:masters -> cluster-admin,
    # system:authenticated -> discovery...) are known but are not judged.
    text = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: harmless, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: viewer}]
"""
    for ctrl in RBAC_CONTROLS:
        result = scan(text, ctrl.id)
        assert result.controls[0].status is not Status.FAIL, (ctrl.id, [f.message for f in result.findings])


def test_fixture_findings_point_at_binding_subjects() -> None:
    loaded = load_paths([str(FIXTURE)], LoadContext())
    result = Engine(RBAC_CONTROLS, Settings()).run(Inventory(loaded.resources))
    by_control: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_control.setdefault(f.control_id, []).append(f)
    secrets = by_control["KH-RBAC-003"]
    names = {(f.resource["name"] if f.resource else None, f.path) for f in secrets}
    assert ("auditors-read-secrets", "subjects[0]") in names
    assert ("app-reads-secrets", "subjects[0]") in names and ("app-reads-secrets", "subjects[1]") in names
    # evidence: subject, binding, role, rule
    f = next(f for f in secrets if f.resource and f.resource["name"] == "auditors-read-secrets")
    assert f.evidence["subject"] == {"kind": "Group", "name": "auditors"}
    assert f.evidence["binding"]["name"] == "auditors-read-secrets"
    assert f.evidence["role"]["name"] == "secret-reader"
    assert f.evidence["rules"][0]["rule"]["resources"] == ["secrets"]
    assert f.line is not None and f.file and f.file.endswith("rbac_fixture.yaml")
    # cluster-wide read is high, one namespace medium
    assert f.severity.label == "high"
    ns_read = next(x for x in secrets if x.resource and x.resource["name"] == "app-reads-secrets")
    assert ns_read.severity.label == "medium"
    # the ghost binding (missing role) produces no finding and no crash
    assert not any(x.resource and x.resource["name"] == "ghost" for x in result.findings
                   if x.control_id != "KH-RBAC-008")
    exec_findings = {f.resource["name"] for f in by_control["KH-RBAC-004"] if f.resource}
    assert exec_findings == {"dana-debugs", "ci-admin"}
    escalation = {f.resource["name"] for f in by_control["KH-RBAC-006"] if f.resource}
    assert escalation == {"impersonators", "ci-admin"}  # admin (via edit) impersonates ServiceAccounts
    broad = {(f.resource["name"], f.severity.label) for f in by_control["KH-RBAC-002"] if f.resource}
    assert broad == {("anonymous-lists-namespaces", "critical"), ("all-sa-list-nodes", "high"),
                     ("viewers", "high")}


CLUSTER_ADMIN_TO = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: admins}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects:
- {subject}
"""


SECRETS_READER_TO = """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {{name: secret-reader}}
  rules: [{{apiGroups: [""], resources: [secrets], verbs: [get, list]}}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {{name: reads}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}}
  subjects: [{subject}]
"""


def test_cluster_admin_expected_subjects_and_settings() -> None:
    masters = CLUSTER_ADMIN_TO.format(subject="{kind: Group, name: system:masters}")
    assert findings(masters, "KH-RBAC-001") == []
    user = CLUSTER_ADMIN_TO.format(subject="{kind: User, name: bob}")
    [f] = findings(user, "KH-RBAC-001")
    assert f.path == "subjects[0]" and f.severity.label == "critical"
    assert findings(user, "KH-RBAC-001", extra={"rbac_expected_subjects": ["User:b*"]}) == []
    # Kubernetes binds cluster-admin to no ServiceAccount: kube-system/tiller holding it is reported
    tiller = CLUSTER_ADMIN_TO.format(subject="{kind: ServiceAccount, name: tiller, namespace: kube-system}")
    assert len(findings(tiller, "KH-RBAC-001")) == 1
    expected_tiller = {"rbac_expected_subjects": ["ServiceAccount:kube-system/tiller"]}
    assert findings(tiller, "KH-RBAC-001", extra=expected_tiller) == []
    # other powers of system components' ServiceAccounts are expected; more system namespaces can be declared
    system_reader = SECRETS_READER_TO.format(subject="{kind: ServiceAccount, name: cni, namespace: kube-system}")
    assert findings(system_reader, "KH-RBAC-003") == []
    platform_reader = SECRETS_READER_TO.format(subject="{kind: ServiceAccount, name: cni, namespace: platform}")
    assert len(findings(platform_reader, "KH-RBAC-003")) == 1
    assert findings(platform_reader, "KH-RBAC-003", extra={"rbac_system_namespaces": ["platform"]}) == []
    # a full wildcard rule is reported once, as cluster-admin, not as each power it implies
    for other in ("KH-RBAC-003", "KH-RBAC-004", "KH-RBAC-005", "KH-RBAC-006"):
        assert findings(user, other) == [], other


def test_cluster_admin_equivalent_custom_role() -> None:
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: god}
  rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: ns-god, namespace: team}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: god}
  subjects: [{kind: Group, name: team-leads}]
"""
    [f] = findings(text, "KH-RBAC-001")
    assert "in namespace team" in f.message
    assert f.evidence["scope"] == "team"


def test_anonymous_discovery_is_fine_but_more_is_critical() -> None:
    template = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: anon}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects: [{{kind: User, name: system:anonymous}}]
"""
    assert findings(template.format(role="system:discovery"), "KH-RBAC-002") == []
    assert findings(template.format(role="system:basic-user"), "KH-RBAC-002") == []
    [f] = findings(template.format(role="view"), "KH-RBAC-002")
    assert f.severity.label == "critical"
    assert "User system:anonymous" in f.message


def test_namespace_service_account_group_is_broad() -> None:
    text = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: all-sa, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: Group, name: "system:serviceaccounts:shop"}]
"""
    [f] = findings(text, "KH-RBAC-002")
    assert f.severity.label == "high"


@pytest.mark.parametrize(("rule", "control_id", "expected"), [
    ('{apiGroups: [""], resources: [secrets], verbs: [watch]}', "KH-RBAC-003", True),
    ('{apiGroups: [""], resources: ["*"], verbs: [get]}', "KH-RBAC-003", True),
    ('{apiGroups: [""], resources: [secrets], verbs: [create, delete]}', "KH-RBAC-003", False),
    ('{apiGroups: [""], resources: [secrets], resourceNames: [tls], verbs: [get]}', "KH-RBAC-003", False),
    ('{apiGroups: [""], resources: ["*/exec"], verbs: [create]}', "KH-RBAC-004", True),
    ('{apiGroups: [""], resources: [nodes/proxy], verbs: [get]}', "KH-RBAC-004", True),
    ('{apiGroups: [""], resources: [pods/portforward], verbs: [create]}', "KH-RBAC-004", True),
    ('{apiGroups: [""], resources: [pods/log], verbs: [get]}', "KH-RBAC-004", False),
    ('{apiGroups: [batch], resources: [cronjobs], verbs: [create]}', "KH-RBAC-005", True),
    ('{apiGroups: [apps], resources: [daemonsets], verbs: ["*"]}', "KH-RBAC-005", True),
    ('{apiGroups: [""], resources: [serviceaccounts/token], verbs: [create]}', "KH-RBAC-005", True),
    ('{apiGroups: [apps], resources: [deployments], verbs: [get, list, update]}', "KH-RBAC-005", False),
    ('{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}', "KH-RBAC-006", True),
    ('{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [bind]}', "KH-RBAC-006", True),
    # update on the approval subresource approves nothing without approve on the signer (argo-cd's
    # argocd-server ClusterRole: delete/get/patch on '*' was reported as able to approve CSRs)
    ('{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval], verbs: [update]}',
     "KH-RBAC-006", False),
    ('{apiGroups: [certificates.k8s.io], resources: [signers], verbs: [approve]}', "KH-RBAC-006", True),
    ('{apiGroups: [admissionregistration.k8s.io], resources: [mutatingwebhookconfigurations], verbs: [patch]}',
     "KH-RBAC-006", True),
    ('{apiGroups: [admissionregistration.k8s.io], resources: [mutatingwebhookconfigurations], verbs: [get]}',
     "KH-RBAC-006", False),
    ('{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [create, get]}', "KH-RBAC-006", False),
    # resourceNames: the recommended scoping, unless the names are themselves the danger
    ('{apiGroups: [""], resources: [groups], resourceNames: ["system:masters"], verbs: [impersonate]}',
     "KH-RBAC-006", True),
    ('{apiGroups: [""], resources: [users], resourceNames: ["system:node:worker-1"], verbs: [impersonate]}',
     "KH-RBAC-006", True),
    ('{apiGroups: [""], resources: [users], resourceNames: [reporting-bot], verbs: [impersonate]}',
     "KH-RBAC-006", False),
    ('{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], resourceNames: [cluster-admin], '
     'verbs: [bind]}', "KH-RBAC-006", True),
    ('{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], resourceNames: [view], verbs: [bind]}',
     "KH-RBAC-006", False),
    ('{apiGroups: [certificates.k8s.io], resources: [signers], resourceNames: [kubernetes.io/kube-apiserver-client], '
     'verbs: [approve]}', "KH-RBAC-006", True),
    ('{apiGroups: [certificates.k8s.io], resources: [signers], resourceNames: [example.com/mesh-ca], '
     'verbs: [approve]}', "KH-RBAC-006", False),
    ('{apiGroups: [""], resources: [pods/exec], resourceNames: [debug-shell], verbs: [create]}', "KH-RBAC-004", False),
    # a create of a new object has no name yet: resourceNames never allow it
    ('{apiGroups: [""], resources: [pods], resourceNames: [x], verbs: [create]}', "KH-RBAC-005", False),
])
def test_risky_rule_detection(rule: str, control_id: str, expected: bool) -> None:
    # Cluster-scoped resources (nodes, CSRs, signers, webhook configurations) are granted cluster-wide only.
    cluster = any(name in rule for name in CLUSTER_SCOPED_NAMES)
    found = findings(one_rule_binding(rule, cluster=cluster), control_id)
    assert bool(found) is expected, [f.message for f in found]
    if found:
        assert found[0].resource and found[0].resource["kind"] == ("ClusterRoleBinding" if cluster else "RoleBinding")
        assert found[0].evidence["rules"][0]["index"] == 0


CLUSTER_SCOPED_NAMES = ("nodes/", "certificatesigningrequests", "signers", "webhookconfigurations",
                        "resources: [users]", "resources: [groups]")


def one_rule_binding(rule: str, *, cluster: bool) -> str:
    role, binding, namespace = ("ClusterRole", "ClusterRoleBinding", "") if cluster else ("Role", "RoleBinding",
                                                                                          ", namespace: shop")
    return f"""
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: {role}
  metadata: {{name: r{namespace}}}
  rules: [{rule}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: {binding}
  metadata: {{name: b{namespace}}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role}, name: r}}
  subjects: [{{kind: ServiceAccount, name: app, namespace: shop}}]
"""


@pytest.mark.parametrize(("rule", "control_id"), [
    ('{apiGroups: ["*"], resources: ["*"], verbs: [get, list, update, patch, watch]}', "KH-RBAC-006"),
    ('{apiGroups: [""], resources: [nodes/proxy], verbs: [get]}', "KH-RBAC-004"),
    ('{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [patch]}',
     "KH-RBAC-006"),
    ('{apiGroups: [""], resources: [users, groups], verbs: [impersonate]}', "KH-RBAC-006"),
])
def test_a_role_binding_cannot_grant_cluster_scoped_resources(rule: str, control_id: str) -> None:
    # corpus: kubeflow-manifests/.../application-controller-rolebinding.yaml:10 was told its namespaced Role
    # ('*' resources, update/patch) lets it approve CSRs and change admission webhooks, which are cluster-scoped
    assert findings(one_rule_binding(rule, cluster=False), control_id) == []
    assert findings(one_rule_binding(rule, cluster=True), control_id)


def test_bind_on_cluster_roles_works_inside_a_role_binding() -> None:
    # `bind` is checked in the namespace of the RoleBinding being created, so it stays a risk there
    rule = '{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}'
    assert findings(one_rule_binding(rule, cluster=False), "KH-RBAC-006")


def test_token_create_is_high_workload_create_medium() -> None:
    text = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-edit, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: User, name: ci}]
"""
    severities = {f.evidence["rules"][0]["risk"]: f.severity.label for f in findings(text, "KH-RBAC-005")}
    assert severities == {"workload-create": "medium", "token-create": "high"}


def test_wildcards_in_roles() -> None:
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: star}
  rules:
  - {apiGroups: [""], resources: [pods], verbs: [get]}
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: aggregated}
  aggregationRule: {clusterRoleSelectors: [{matchLabels: {x: y}}]}
  rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
"""
    [f] = findings(text, "KH-RBAC-007")
    assert f.resource and f.resource["name"] == "star"
    assert f.path == "rules[1].verbs"
    assert f.severity.label == "high"
    assert f.evidence["wildcards"] == ["verbs", "resources", "apiGroups"]


def test_default_service_account_binding() -> None:
    text = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: b, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: missing}
subjects:
- {kind: ServiceAccount, name: app}
- {kind: ServiceAccount, name: default}
"""
    [f] = findings(text, "KH-RBAC-008")
    assert f.path == "subjects[1]"
    assert "namespace shop" in f.message and "missing" in f.message


WORKLOAD = """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {{name: api{sa_ns}}}
  {sa_extra}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {{name: api-secrets, namespace: prod}}
  roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}}
  subjects: [{{kind: ServiceAccount, name: api, namespace: prod}}]
- apiVersion: batch/v1
  kind: CronJob
  metadata: {{name: api-job{pod_ns}}}
  spec:
    schedule: "* * * * *"
    jobTemplate:
      spec:
        template:
          spec:
            serviceAccountName: api
            {pod_extra}
            containers: [{{name: c, image: registry.example/api:1}}]
"""


def _workload(sa_extra: str = "", pod_extra: str = "", namespace: str | None = "prod") -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return WORKLOAD.format(sa_ns=ns, pod_ns=ns, sa_extra=sa_extra, pod_extra=pod_extra)


def test_workload_identity_join_reports_chain() -> None:
    [f] = findings(_workload(), "KH-RBAC-009")
    assert f.resource and f.resource["kind"] == "CronJob"
    assert f.path == "spec.jobTemplate.spec.template.spec.serviceAccountName"
    assert f.severity.label == "high"
    assert {"secrets-read", "exec", "workload-create", "token-create", "impersonate"} <= set(f.evidence["risks"])
    assert any(c.startswith("ServiceAccount prod/api -> RoleBinding/prod/api-secrets -> ClusterRole/edit")
               for c in f.evidence["chains"])
    assert f.evidence["token_mount_decided_by"] == "default"


def test_workload_identity_join_respects_token_automount() -> None:
    assert findings(_workload(pod_extra="automountServiceAccountToken: false"), "KH-RBAC-009") == []
    assert findings(_workload(sa_extra="automountServiceAccountToken: false"), "KH-RBAC-009") == []
    # the pod's setting wins over the ServiceAccount's
    both = _workload(sa_extra="automountServiceAccountToken: false", pod_extra="automountServiceAccountToken: true")
    [f] = findings(both, "KH-RBAC-009")
    assert f.evidence["token_mount_decided_by"] == "pod"


def test_workload_identity_join_namespaceless_manifest() -> None:
    [f] = findings(_workload(namespace=None), "KH-RBAC-009")
    assert "prod/api" in f.message and "namespace not set" in f.message
    assert "prod" in f.evidence["assumed_namespaces"]


def test_workload_identity_join_ignores_other_namespaces_and_counts_group_grants() -> None:
    other = _workload().replace("api-job, namespace: prod", "api-job, namespace: dev")
    assert findings(other, "KH-RBAC-009") == []
    broad = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: all-sa-edit}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
  subjects: [{kind: Group, name: system:serviceaccounts}]
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: prod}
  spec:
    containers: [{name: c, image: registry.example/api:1}]
"""
    # the pod's ServiceAccount holds edit through its group: the workload can create pods and read Secrets
    [joined] = findings(broad, "KH-RBAC-009")
    assert "all-sa-edit" in str(joined.evidence["chains"])
    assert "broad-subject" not in joined.evidence["risks"]  # that a group holds it at all: KH-RBAC-002's
    assert len(findings(broad, "KH-RBAC-002")) == 1
    discovery_only = broad.replace("name: edit}", "name: system:discovery}")
    assert findings(discovery_only, "KH-RBAC-009") == []


def test_workload_identity_join_not_assessed_without_bindings() -> None:
    pod = """
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  containers: [{name: c, image: registry.example/api:1}]
"""
    result = scan(pod, "KH-RBAC-009")
    assert result.controls[0].status is Status.NOT_ASSESSED
    assert "RoleBinding" in (result.controls[0].reason or "")
    assert scan(pod, "KH-RBAC-009", as_cluster=True).controls[0].status is Status.PASS


def test_binding_controls_not_assessed_without_bindings() -> None:
    role_only = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: shop}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
"""
    for control_id in ("KH-RBAC-001", "KH-RBAC-003", "KH-RBAC-008"):
        assert scan(role_only, control_id).controls[0].status is Status.NOT_ASSESSED


def test_live_default_objects_are_not_findings() -> None:
    # What a snapshot of a live cluster holds: the default objects, labelled rbac-defaults.
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
  rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
  - {nonResourceURLs: ["*"], verbs: ["*"]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:masters}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: system:public-info-viewer, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:public-info-viewer}
  subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:unauthenticated}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: system:service-account-issuer-discovery, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:service-account-issuer-discovery}
  subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:serviceaccounts}]
"""
    for ctrl in RBAC_CONTROLS:
        assert scan(text, ctrl.id).controls[0].status is not Status.FAIL, ctrl.id
    # ... but a subject added to a default binding is reported
    tampered = text.replace("name: system:masters}]", "name: system:masters}, {kind: User, name: mallory}]")
    [f] = findings(tampered, "KH-RBAC-001")
    assert "User mallory" in f.message and f.path == "subjects[1]"


def test_bind_restricted_to_a_named_custom_role_is_judged_by_that_role() -> None:
    text = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: binder}
  rules:
  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], resourceNames: [ROLE], verbs: [bind]}
  - {apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: node-debugger}
  rules: [{apiGroups: [""], resources: [nodes/proxy], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: config-reader}
  rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: binder}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: binder}
  subjects: [{kind: User, name: eve}]
"""
    [f] = findings(text.replace("ROLE", "node-debugger"), "KH-RBAC-006")
    assert "only node-debugger" in f.message
    assert findings(text.replace("ROLE", "config-reader"), "KH-RBAC-006") == []


def test_default_service_account_written_as_a_user_is_the_default_service_account() -> None:
    text = """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-view, namespace: prod}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:serviceaccount:prod:default"}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:serviceaccount:prod:api"}
"""
    [f] = findings(text, "KH-RBAC-008")
    assert f.path == "subjects[0]" and "namespace prod" in f.message


MINT_TOKEN = """
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: mint}
  rules: [{apiGroups: [""], resources: [serviceaccounts/token], resourceNames: [TARGET], verbs: [create]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: BINDING_KIND
  metadata: {name: mint, namespace: ops}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: mint}
  subjects: [{kind: User, name: trent}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: admin-sa}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
  subjects: [{kind: ServiceAccount, name: admin-sa, namespace: ops}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: reader, namespace: ops}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
  subjects: [{kind: ServiceAccount, name: reader, namespace: ops}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: mint-back, namespace: ops}
  rules: [{apiGroups: [""], resources: [serviceaccounts/token], resourceNames: [loop-a, loop-b], verbs: [create]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: loop, namespace: ops}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: mint-back}
  subjects: [{kind: ServiceAccount, name: loop-a, namespace: ops}, {kind: ServiceAccount, name: loop-b, namespace: ops}]
"""


@pytest.mark.parametrize(("target", "binding_kind", "risky"), [
    ("admin-sa", "RoleBinding", True),  # its token is cluster-admin
    ("admin-sa", "ClusterRoleBinding", True),
    ("reader", "RoleBinding", False),  # view only: the recommended scoping
    ("loop-a", "RoleBinding", False),  # tokens minting tokens of each other, nothing else: no power, no hang
])
def test_named_token_minting_is_as_risky_as_the_account(target: str, binding_kind: str, risky: bool) -> None:
    text = MINT_TOKEN.replace("TARGET", target).replace("BINDING_KIND", binding_kind)
    if binding_kind == "ClusterRoleBinding":
        text = text.replace("  metadata: {name: mint, namespace: ops}", "  metadata: {name: mint}")
    found = [f for f in findings(text, "KH-RBAC-005") if "trent" in f.message]
    assert bool(found) is risky, [f.message for f in found]
    if risky:
        assert f"(only {target})" in found[0].message and found[0].severity.label == "high"


def test_named_token_of_a_builtin_controller_account_is_risky() -> None:
    # kube-system/generic-garbage-collector may read and delete everything (a built-in binding)
    text = MINT_TOKEN.replace("TARGET", "generic-garbage-collector").replace("BINDING_KIND", "ClusterRoleBinding")
    text = text.replace("  metadata: {name: mint, namespace: ops}", "  metadata: {name: mint}")
    assert any("trent" in f.message for f in findings(text, "KH-RBAC-005"))


def test_a_service_account_minting_its_own_token_gains_nothing() -> None:
    # cert-manager's cert-manager-tokenrequest Role: the SA may create a token of itself only
    text = MINT_TOKEN.replace("TARGET", "admin-sa").replace("BINDING_KIND", "RoleBinding").replace(
        "subjects: [{kind: User, name: trent}]", "subjects: [{kind: ServiceAccount, name: admin-sa, namespace: ops}]")
    assert [f for f in findings(text, "KH-RBAC-005") if "mint" in f.message] == []
