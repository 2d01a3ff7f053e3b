"""RBAC scope (guidance §1.7, §2.9 NSA-RBAC-4): human users and groups get namespaced duties
through RoleBindings, not ClusterRoleBindings.

A ClusterRoleBinding to a User or Group (not a ``system:`` identity, not a ServiceAccount) whose
role holds only namespaced powers — no non-resource URLs, no cluster-scoped resources, no ``*``
resource — grants those powers in every namespace where one RoleBinding per namespace would do.
Reading ``namespaces`` counts as namespaced: a RoleBinding grants it for its own namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.catalog import Context, Example, control
from kubeharden.model import Section, Severity, Violation
from kubeharden.rbac.engine import Grant, model_for

CLUSTER_SCOPED_RESOURCES = frozenset({
    "nodes", "persistentvolumes", "clusterroles", "clusterrolebindings", "storageclasses", "csidrivers", "csinodes",
    "volumeattachments", "customresourcedefinitions", "apiservices", "certificatesigningrequests",
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
    "validatingadmissionpolicybindings", "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
    "priorityclasses", "runtimeclasses", "ingressclasses", "podsecuritypolicies", "componentstatuses",
    "flowschemas", "prioritylevelconfigurations", "tokenreviews", "subjectaccessreviews",
    "selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews", "users", "groups", "signers",
    "ipaddresses", "servicecidrs", "volumesnapshotclasses", "clusterissuers", "deviceclasses",
})
ADMIN_GROUPS = frozenset({"kubeadm:cluster-admins"})


def is_human(kind: str, name: str) -> bool:
    return kind in ("User", "Group") and not name.startswith("system:") and name not in ADMIN_GROUPS


def _namespaced_only(grants: list[Grant]) -> bool:
    for grant in grants:
        rule = grant.rule
        if rule.non_resource_urls:
            return False
        for resource in rule.resources:
            base = resource.split("/", 1)[0]
            if base == "*" or base in CLUSTER_SCOPED_RESOURCES:
                return False
    return bool(grants)


_CRB = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-edit}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: deployer}
subjects:
- {kind: User, name: alice@example.com, apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: deployer}
rules:
- {apiGroups: [apps], resources: [deployments], verbs: [get, list, create, update]}
"""
_RB = _CRB.replace("kind: ClusterRoleBinding\nmetadata: {name: alice-edit}",
                   "kind: RoleBinding\nmetadata: {name: alice-edit, namespace: shop}")


@control(
    id="KH-RBAC-020",
    title="Human user or group bound cluster-wide to namespaced powers",
    section=Section.AUTH,
    guidance=("NSA-RBAC-4",),
    severity=Severity.MEDIUM,
    kinds=("ClusterRoleBinding",),
    what="A ClusterRoleBinding names a User or Group (not a system: identity) and its ClusterRole grants only "
    "namespaced resources: the same duties in one namespace would be a RoleBinding there; bound cluster-wide, "
    "they apply in every namespace, kube-system included.",
    why="The guidance scopes users and groups to the namespaces they work in: a cluster-wide grant for a "
    "namespace-level duty hands over every other team's namespace and the system namespaces.",
    fix="Replace the ClusterRoleBinding with a RoleBinding (roleRef may stay the ClusterRole) in each namespace the "
    "user or group works in.",
    examples=(Example(True, _CRB), Example(False, _RB)),
)
def human_cluster_binding(ctx: Context) -> Iterator[Violation]:
    model = model_for(ctx.inventory)
    by_subject: dict[tuple[int, int], list[Grant]] = {}
    for grant in model.grants():
        if grant.binding.kind != "ClusterRoleBinding" or grant.binding.builtin:
            continue
        if is_human(grant.subject.kind, grant.subject.name):
            by_subject.setdefault((id(grant.binding), grant.subject_index), []).append(grant)
    for grants in by_subject.values():
        if not _namespaced_only(grants):
            continue
        first = grants[0]
        assert first.binding.resource is not None
        resources = sorted({r for g in grants for r in g.rule.resources})
        yield Violation(first.binding.resource, ("subjects", first.subject_index),
                        f"{first.subject.display()} is bound cluster-wide by {first.binding.display()} to "
                        f"{first.role.display()}, which grants only namespaced resources ({', '.join(resources[:6])}"
                        f"{' ...' if len(resources) > 6 else ''}): a RoleBinding per namespace would do",
                        evidence={"subject": first.subject.to_dict(), "role": first.role.ref(),
                                  "chain": [g.chain() for g in grants]})
