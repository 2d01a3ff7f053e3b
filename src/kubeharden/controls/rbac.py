"""Authentication and authorization controls (guidance §1.7, §2.8-2.9; NSA-AUTH-*, NSA-RBAC-*,
NSA-SEC-2, NSA-POD-24) on the RBAC engine in kubeharden.rbac.

Grants are judged only for bindings in the input: the built-in roles and bindings the engine
knows (data/rbac-bootstrap.yaml) explain what a binding means but are never reported. Expected
system subjects and system namespaces are settings (kubeharden.rbac.risks, docs/rbac.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import Inventory, service_account_name, token_automount
from kubeharden.model import Section, Severity, Violation
from kubeharden.rbac.engine import (
    BINDING_KINDS,
    DEFAULT_NAMESPACE,
    ROLE_KINDS,
    Grant,
    Subject,
    UserInfo,
    model_for,
    parse_service_account_user,
)
from kubeharden.rbac.risks import (
    BROAD_SUBJECT,
    CLUSTER_ADMIN,
    CSR_APPROVE,
    ESCALATE_BIND,
    EXEC,
    IMPERSONATE,
    SECRETS_READ,
    TOKEN_CREATE,
    WEBHOOK_MODIFY,
    WORKLOAD_CREATE,
    RiskAnalysis,
    RiskKind,
    RiskSettings,
    RiskyGrant,
    is_full_admin,
)


def _build_analysis(inventory: Inventory) -> RiskAnalysis:
    return RiskAnalysis(model_for(inventory))


def _build_risky_grants(inventory: Inventory) -> list[RiskyGrant]:
    return inventory.analysis(_build_analysis).all_risky_grants()


def _analysis(ctx: Context) -> RiskAnalysis:
    """One RiskAnalysis per scan, so its per-rule cache serves every control."""
    return ctx.inventory.analysis(_build_analysis)


def _settings(ctx: Context) -> RiskSettings:
    return RiskSettings.from_extra(ctx.settings.extra)


def _risky_grants(ctx: Context) -> list[RiskyGrant]:
    return ctx.inventory.analysis(_build_risky_grants)


def _scope_text(grant: Grant) -> str:
    return f"in namespace {grant.scope}" if grant.scope else "cluster-wide"


def _evidence(items: list[RiskyGrant]) -> dict[str, Any]:
    first = items[0].grant
    return {
        "subject": first.subject.to_dict(),
        "binding": first.binding.ref(),
        "role": first.role.ref(),
        "scope": first.scope or "cluster",
        "rules": [{"role": r.grant.rule.role.ref(), "index": r.grant.rule.index, "rule": r.grant.rule.to_dict(),
                   "risk": r.kind.id} for r in items],
        "chain": [r.grant.chain() for r in items],
    }


def _grant_violations(ctx: Context, kinds: Iterable[RiskKind], what: str,
                      skip_expected: bool = True) -> Iterator[Violation]:
    """One violation per (binding, subject, risk kind), on the binding's subject entry."""
    wanted = {k.id for k in kinds}
    settings = _settings(ctx)
    groups: dict[tuple[int, int, str], list[RiskyGrant]] = defaultdict(list)
    for risky in _risky_grants(ctx):
        if risky.kind.id not in wanted:
            continue
        # A full wildcard rule is reported once, by KH-RBAC-001, not as each power it implies.
        if risky.kind not in (CLUSTER_ADMIN, BROAD_SUBJECT) and is_full_admin(risky.grant.rule):
            continue
        if skip_expected and settings.expected(risky.grant.subject, risky.kind):
            continue
        g = risky.grant
        groups[(id(g.binding), g.subject_index, risky.kind.id)].append(risky)
    for items in groups.values():
        g = items[0].grant
        assert g.binding.resource is not None  # built-in bindings are never judged
        rules = _rules_text(g, items)
        named = all(r.grant.rule.resource_names for r in items)
        names = sorted({n for r in items for n in r.grant.rule.resource_names}) if named else []
        yield Violation(
            g.binding.resource,
            ("subjects", g.subject_index),
            f"{g.subject.display()} can {what or items[0].kind.title} {_scope_text(g)} "
            + (f"(only {', '.join(names)}) " if names else "")
            + f"through {g.role.display()} ({rules})",
            severity=max(r.severity for r in items),
            evidence=_evidence(items),
        )


def _rules_text(grant: Grant, items: list[RiskyGrant]) -> str:
    """``rules[0,2]`` or ``rules[2,4] of ClusterRole/system:aggregate-to-edit`` (aggregated)."""
    by_role: dict[int, tuple[str, list[int]]] = {}
    for r in items:
        rule = r.grant.rule
        label = "" if rule.role is grant.role else f" of {rule.role.display()}"
        entry = by_role.setdefault(id(rule.role), (label, []))
        if rule.index not in entry[1]:
            entry[1].append(rule.index)
    return "; ".join(f"rules[{','.join(map(str, idx))}]{label}" for label, idx in by_role.values())


def _bindings_in_input(ctx: Context) -> str | None:
    if ctx.inventory.has_kind(*BINDING_KINDS) or ctx.whole_cluster:
        return None
    return "no RoleBinding or ClusterRoleBinding in the input: what the ServiceAccounts may do is unknown"


# ---------------------------------------------------------------------------------------------


@control(
    id="KH-RBAC-001",
    title="cluster-admin or equivalent bound to a non-system subject",
    section=Section.AUTH,
    guidance=("NSA-RBAC-3", "NSA-RBAC-2"),
    severity=Severity.CRITICAL,
    kinds=BINDING_KINDS,
    what="A RoleBinding or ClusterRoleBinding gives a subject other than the expected system ones "
    "a rule with verbs '*' on resources '*' of apiGroups '*' (cluster-admin, or a role that is "
    "its equivalent).",
    why="Full control of the cluster (or of a namespace, for a RoleBinding) lets the subject read every "
    "Secret, run any workload as any ServiceAccount and rewrite RBAC itself.",
    fix="Bind the subject to a role listing only the verbs and resources it needs (roleRef.name of a "
    "narrow Role/ClusterRole); keep cluster-admin for system:masters / break-glass access.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ci-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: deployer, namespace: ci}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ci-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: deployer, namespace: ci}
"""),
    ),
)
def cluster_admin_binding(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (CLUSTER_ADMIN,), "do anything (cluster-admin equivalent)")


@control(
    id="KH-RBAC-002",
    title="Grant to anonymous, unauthenticated or all authenticated users",
    section=Section.AUTH,
    guidance=("NSA-AUTH-4", "NSA-SEC-2"),
    severity=Severity.HIGH,
    kinds=BINDING_KINDS,
    what="A binding grants more than discovery to User system:anonymous, Group system:unauthenticated "
    "(critical), Group system:authenticated, system:serviceaccounts or system:serviceaccounts:<ns>.",
    why="Such a grant reaches every caller of the API server (or every workload): anyone who can "
    "reach the API, or any compromised pod, gets the permission.",
    fix="Remove these subjects from subjects[] and bind the permission to the specific users, groups "
    "or ServiceAccounts that need it.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: health-for-all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:public-info-viewer}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:unauthenticated}
"""),
    ),
)
def broad_subject_grant(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (BROAD_SUBJECT,), "use permissions beyond discovery", skip_expected=False)


@control(
    id="KH-RBAC-003",
    title="Read access to Secrets",
    section=Section.SECRETS,
    guidance=("NSA-SEC-2", "NSA-AUTH-5"),
    severity=Severity.HIGH,
    kinds=BINDING_KINDS,
    what="A binding lets a subject get, list or watch Secrets (list and watch return the values too), "
    "not narrowed by resourceNames. High cluster-wide, medium in one namespace.",
    why="Secrets hold credentials, including ServiceAccount tokens: reading them is a step to every "
    "identity whose token is stored there.",
    fix="Remove get/list/watch on secrets from the role's rules, or restrict the rule with "
    "resourceNames: [<the secrets needed>] in a namespaced Role bound by a RoleBinding.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: secret-reader}
  rules:
  - {apiGroups: [""], resources: [secrets], verbs: [list]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: app-secret-reader}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}
  subjects:
  - {kind: ServiceAccount, name: app, namespace: shop}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: own-secret, namespace: shop}
  rules:
  - {apiGroups: [""], resources: [secrets], resourceNames: [app-config], verbs: [get]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: app-own-secret, namespace: shop}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: own-secret}
  subjects:
  - {kind: ServiceAccount, name: app}
"""),
    ),
)
def secrets_read(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (SECRETS_READ,), "read Secrets")


@control(
    id="KH-RBAC-004",
    title="exec, attach, port-forward or node proxy allowed",
    section=Section.AUTH,
    guidance=("NSA-RBAC-7",),
    severity=Severity.HIGH,
    kinds=BINDING_KINDS,
    what="A binding gives a subject create or get on pods/exec, pods/attach, pods/portforward, or "
    "nodes/proxy (directly, through '*' or '*/exec'...).",
    why="exec and attach run commands inside any matching pod with its identity and data; "
    "port-forward bypasses NetworkPolicies; nodes/proxy reaches the kubelet API of every node.",
    fix="Remove pods/exec, pods/attach, pods/portforward and nodes/proxy from the role's "
    "rules[].resources; keep them for break-glass admin roles.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: debugger, namespace: shop}
  rules:
  - {apiGroups: [""], resources: [pods/exec], verbs: [create]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: dev-debug, namespace: shop}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: debugger}
  subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: log-reader, namespace: shop}
  rules:
  - {apiGroups: [""], resources: [pods, pods/log], verbs: [get, list]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: dev-logs, namespace: shop}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: log-reader}
  subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}
"""),
    ),
)
def exec_attach_proxy(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (EXEC,), "")


@control(
    id="KH-RBAC-005",
    title="Can create pods, workloads or ServiceAccount tokens",
    section=Section.AUTH,
    guidance=("NSA-RBAC-5", "NSA-POD-24"),
    severity=Severity.MEDIUM,
    kinds=BINDING_KINDS,
    what="A binding lets a subject create Pods or pod-controlling workloads (Deployments, DaemonSets, "
    "StatefulSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs) (medium), or create "
    "serviceaccounts/token (high).",
    why="Whoever creates a pod chooses its ServiceAccount, so it acts with the permissions of every "
    "ServiceAccount of the namespace (and mounts any Secret); creating tokens hands out those "
    "identities directly.",
    fix="Grant create on pods/workloads only to deployment pipelines that need it, in the namespaces "
    "they deploy to (RoleBinding); remove create on serviceaccounts/token from the role's rules.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-edit, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {kind: ServiceAccount, name: ci, namespace: ci}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-view, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: ci, namespace: ci}
"""),
    ),
)
def workload_or_token_create(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (WORKLOAD_CREATE, TOKEN_CREATE), "")


@control(
    id="KH-RBAC-006",
    title="Privilege escalation: escalate, bind, impersonate, CSR approval or admission webhooks",
    section=Section.AUTH,
    guidance=("NSA-RBAC-5",),
    severity=Severity.HIGH,
    kinds=BINDING_KINDS,
    what="A binding gives a subject escalate or bind on roles/clusterroles, impersonate on users, "
    "groups or serviceaccounts, approval of CertificateSigningRequests, or write access to "
    "validating/mutating webhook configurations.",
    why="Each of these lets the subject obtain permissions it was not given: grant itself any role, "
    "act as another identity, mint client certificates, or intercept every API write.",
    fix="Remove these verbs/resources from the role's rules, or restrict them with resourceNames to "
    "the exact roles, identities or signers needed.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: impersonator}
  rules:
  - {apiGroups: [""], resources: [users, groups], verbs: [impersonate]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: proxy-impersonates}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonator}
  subjects:
  - {kind: ServiceAccount, name: auth-proxy, namespace: gateway}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: impersonate-one}
  rules:
  - {apiGroups: [""], resources: [users], resourceNames: [reporting-bot], verbs: [impersonate]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: proxy-impersonates}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-one}
  subjects:
  - {kind: ServiceAccount, name: auth-proxy, namespace: gateway}
"""),
    ),
)
def escalation_paths(ctx: Context) -> Iterator[Violation]:
    yield from _grant_violations(ctx, (ESCALATE_BIND, IMPERSONATE, CSR_APPROVE, WEBHOOK_MODIFY), "")


@control(
    id="KH-RBAC-007",
    title="Wildcard in a role's verbs, resources or API groups",
    section=Section.AUTH,
    guidance=("NSA-RBAC-2",),
    severity=Severity.MEDIUM,
    kinds=ROLE_KINDS,
    what="A Role or ClusterRole of the input has '*' in rules[].verbs, rules[].resources or "
    "rules[].apiGroups (high when all three are '*'). Aggregated ClusterRoles are judged on the "
    "roles they aggregate.",
    why="Wildcards grant today's and tomorrow's verbs and resources, including CRDs installed later "
    "and sensitive subresources, far beyond what the role's owner reviewed.",
    fix="List the exact verbs, resources and apiGroups in each rule instead of '*'.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: app-all, namespace: shop}
rules:
- {apiGroups: [apps], resources: ["*"], verbs: [get, list]}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: app-read, namespace: shop}
rules:
- {apiGroups: [apps], resources: [deployments], verbs: [get, list]}
"""),
    ),
)
def wildcard_rules(ctx: Context) -> Iterator[Violation]:
    model = model_for(ctx.inventory)
    roles = [*model.cluster_roles.values(), *model.roles.values()]
    for role in roles:
        if role.builtin or role.aggregated or role.resource is None:
            continue
        if role.labels.get("kubernetes.io/bootstrapping") == "rbac-defaults":
            continue  # Kubernetes' own default roles, as read from a live cluster or snapshot
        for rule in role.own_rules:
            fields = [name for name, values in (("verbs", rule.verbs), ("resources", rule.resources),
                                                ("apiGroups", rule.api_groups)) if "*" in values]
            if not fields:
                continue
            yield Violation(
                role.resource,
                ("rules", rule.index, fields[0]),
                f"{role.display()} rules[{rule.index}] has '*' in {', '.join(fields)}: {rule.display()}",
                severity=Severity.HIGH if is_full_admin(rule) else None,
                evidence={"role": role.ref(), "rule": rule.to_dict(), "rule_index": rule.index,
                          "wildcards": fields},
            )


@control(
    id="KH-RBAC-008",
    title="Namespace default ServiceAccount holds a binding",
    section=Section.AUTH,
    guidance=("NSA-RBAC-6", "NSA-POD-24"),
    severity=Severity.MEDIUM,
    kinds=BINDING_KINDS,
    what="A RoleBinding or ClusterRoleBinding names ServiceAccount 'default' as a subject.",
    why="Every pod that does not set serviceAccountName runs as its namespace's default "
    "ServiceAccount, so a permission given to it silently reaches all of them.",
    fix="Create a dedicated ServiceAccount for the workload that needs the permission, bind it "
    "instead of 'default' in subjects[], and set spec.serviceAccountName in its pod template.",
    examples=(
        Example(True, """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-view, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: default, namespace: shop}
"""),
        Example(False, """
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-view, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: shop-app, namespace: shop}
"""),
    ),
)
def default_service_account_binding(ctx: Context) -> Iterator[Violation]:
    for binding in model_for(ctx.inventory).bindings:
        if binding.resource is None:
            continue
        for i, subject in binding.subjects:
            # also when written as the User system:serviceaccount:<ns>:default, which the authorizer equates
            if _service_account_of(subject) == "default":
                role = binding.role.display() if binding.role else f"{binding.role_kind} {binding.role_name} (missing)"
                yield Violation(
                    binding.resource,
                    ("subjects", i),
                    f"the default ServiceAccount of namespace {_namespace_of(subject)} is bound to {role}",
                    evidence={"subject": subject.to_dict(), "binding": binding.ref(),
                              "role": binding.role.ref() if binding.role else None},
                )


def _service_account_of(subject: Subject) -> str | None:
    if subject.kind == "ServiceAccount":
        return subject.name
    parsed = parse_service_account_user(subject.name) if subject.kind == "User" else None
    return parsed[1] if parsed else None


def _namespace_of(subject: Subject) -> str | None:
    parsed = parse_service_account_user(subject.name) if subject.kind == "User" else None
    return parsed[0] if parsed else subject.namespace


@control(
    id="KH-RBAC-009",
    title="Workload mounts the token of a ServiceAccount with risky permissions",
    section=Section.POD,
    guidance=("NSA-POD-24", "NSA-POD-23"),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    requires=_bindings_in_input,
    what="A workload runs as a ServiceAccount that holds a risky permission (cluster-admin, "
    "Secrets read, exec, pod/workload or token creation, impersonation, escalation...) through a "
    "binding in the input, and its API token is mounted (automountServiceAccountToken not false "
    "on the pod nor on the ServiceAccount).",
    why="Anyone who compromises a container of the workload reads the mounted token and acts with "
    "all of those permissions, from inside or outside the cluster.",
    fix="Give the workload a dedicated ServiceAccount bound to a minimal Role; where it does not call "
    "the API, set spec.automountServiceAccountToken: false in its pod template.",
    examples=(
        Example(True, """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: operator, namespace: ops}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: operator-admin}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
  subjects:
  - {kind: ServiceAccount, name: operator, namespace: ops}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: operator, namespace: ops}
  spec:
    selector: {matchLabels: {app: operator}}
    template:
      metadata: {labels: {app: operator}}
      spec:
        serviceAccountName: operator
        containers: [{name: operator, image: registry.example/operator:1.0}]
"""),
        Example(False, """
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata: {name: operator, namespace: ops}
  automountServiceAccountToken: false
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: operator-admin}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
  subjects:
  - {kind: ServiceAccount, name: operator, namespace: ops}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: operator, namespace: ops}
  spec:
    selector: {matchLabels: {app: operator}}
    template:
      metadata: {labels: {app: operator}}
      spec:
        serviceAccountName: operator
        containers: [{name: operator, image: registry.example/operator:1.0}]
"""),
    ),
)
def workload_identity_join(ctx: Context) -> Iterator[Violation]:
    model = model_for(ctx.inventory)
    settings = _settings(ctx)
    analysis = _analysis(ctx)
    per_sa: dict[tuple[str, str], list[RiskyGrant]] = {}

    def risks_of(namespace: str, sa_name: str) -> list[RiskyGrant]:
        key = (namespace, sa_name)
        if key not in per_sa:
            user = UserInfo.for_name(f"system:serviceaccount:{namespace}:{sa_name}")
            # The SA holds what its groups (system:serviceaccounts[:<ns>], system:authenticated) are
            # granted, too; that a broad group holds anything at all is KH-RBAC-002's, on the binding.
            per_sa[key] = [r for r in analysis.risky_grants(model.permissions(user))
                           if r.kind is not BROAD_SUBJECT and not settings.expected(r.grant.subject, r.kind)]
        return per_sa[key]

    # Manifests meant for `kubectl apply -n NS` leave metadata.namespace out while their
    # bindings name the ServiceAccount with NS: such a workload is joined to those namespaces.
    sa_namespaces: dict[str, set[str]] = defaultdict(set)
    for binding in model.bindings:
        if binding.resource is not None:
            for _, subject in binding.subjects:
                if subject.kind == "ServiceAccount" and subject.namespace:
                    sa_namespaces[subject.name].add(subject.namespace)
    for pod in ctx.pod_specs():
        mount = token_automount(pod, ctx.inventory)
        if not mount.mounted:
            continue
        sa_name = service_account_name(pod)
        if pod.namespace:
            namespaces = [pod.namespace]
        else:
            namespaces = sorted(sa_namespaces.get(sa_name, set()) | {DEFAULT_NAMESPACE})
        found = [(ns, risks) for ns in namespaces if (risks := risks_of(ns, sa_name))]
        if not found:
            continue
        risky = [r for _, risks in found for r in risks]
        accounts = ", ".join(f"{ns}/{sa_name}" for ns, _ in found)
        kinds = sorted({r.kind.title for r in risky})
        sa_path = "serviceAccountName" if "serviceAccountName" in pod.spec else (
            "serviceAccount" if "serviceAccount" in pod.spec else "serviceAccountName")
        yield pod.spec_violation(
            (sa_path,),
            f"{pod.resource.kind} {pod.resource.name} mounts the token of ServiceAccount {accounts}"
            + ("" if pod.namespace else " (namespace not set in the manifest; as the bindings name it)")
            + f", whose permissions include: {'; '.join(kinds)}",
            sa_name,
            severity=max(r.severity for r in risky),
            evidence={
                "service_accounts": [{"namespace": ns, "name": sa_name} for ns, _ in found],
                "assumed_namespaces": [] if pod.namespace else namespaces,
                "token_mount_decided_by": mount.decided_by,
                "risks": sorted({r.kind.id for r in risky}),
                "chains": [r.grant.chain() for r in risky],
            },
        )
