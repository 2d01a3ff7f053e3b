"""Network separation and resource policies (guidance §1.6, §2.2 NSA-NET-*, NSA-CLOUD-1).

Cross-resource controls judge a namespace's *absences* (no default deny, no LimitRange...) only
when the input can speak for it: the input is a whole cluster (``ctx.whole_cluster``) or the
namespace's Namespace object is part of the input. Other namespaces are not_assessed, never
passed. NetworkPolicy questions are answered by kubeharden.netpol (real v1 semantics).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import Inventory, PodSpecView, as_dict, as_list, is_cluster_scoped
from kubeharden.model import NotAssessed, Path, Resource, Section, Severity, Violation
from kubeharden.netpol import (
    DEFAULT_NAMESPACE,
    EGRESS,
    INGRESS,
    Endpoint,
    NetworkModel,
    model_for,
    resource_namespace,
)
from kubeharden.netpol_ext import EXTENDED_KINDS

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
NOT_JUDGED_REASON = (
    "no Namespace objects in the input for {what}; pass --as-cluster to judge the input as a whole cluster"
)
METADATA_ADDRESSES = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("fd00:ec2::254/128"))


# ---------------------------------------------------------------------------------------------
# Shared per-scan index (built once per Inventory)


@dataclass
class _Index:
    model: NetworkModel
    anchors: dict[str, Resource] = field(default_factory=dict)  # first resource seen per namespace
    limit_ranges: dict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))
    quotas: dict[str, list[Resource]] = field(default_factory=lambda: defaultdict(list))


def _index(inventory: Inventory) -> _Index:
    return inventory.analysis(_build_index)


def _build_index(inventory: Inventory) -> _Index:
    index = _Index(model_for(inventory))
    for res in inventory.resources:
        if is_cluster_scoped(res.kind):
            continue
        index.anchors.setdefault(resource_namespace(res), res)
    for res in inventory.of_kind("LimitRange"):
        index.limit_ranges[resource_namespace(res)].append(res)
    for res in inventory.of_kind("ResourceQuota"):
        index.quotas[resource_namespace(res)].append(res)
    return index


def _namespaced_name(res: Resource) -> str:
    return f"{resource_namespace(res)}/{res.name}"


def judged_namespaces(ctx: Context) -> set[str]:
    """Namespaces whose absences may be judged: every namespace of a whole-cluster input, else
    those whose Namespace object is part of the input."""
    index = _index(ctx.inventory)
    names = set(index.model.namespace_objects)
    if ctx.whole_cluster:
        names |= set(index.anchors) | set(index.model.namespaces())
    return names


def _judged_or_skip(ctx: Context) -> list[str]:
    """The judged namespaces outside the system ones; NotAssessed when there are none."""
    judged = judged_namespaces(ctx)
    names = sorted(judged - SYSTEM_NAMESPACES)
    if not names:
        if judged:
            raise NotAssessed(f"only exempt system namespaces ({', '.join(sorted(SYSTEM_NAMESPACES))}) in the input")
        raise NotAssessed(NOT_JUDGED_REASON.format(what="the namespaces of the input"))
    return names


def _namespace_violation(ctx: Context, namespace: str, message: str, path: Path = (),
                         evidence: dict[str, Any] | None = None) -> Violation:
    """A finding about a namespace: on its Namespace object, else on the namespace itself, inferred from the
    resources in it (no file: there is no object to point at)."""
    index = _index(ctx.inventory)
    obj = index.model.namespace_objects.get(namespace)
    if obj is not None:
        return Violation(obj, ("metadata", "name"), message, evidence=evidence or {"namespace": namespace})
    return Violation(None, path, f"{message} (no Namespace object in the input: namespace inferred from its "
                     "resources)", evidence={**(evidence or {"namespace": namespace}), "namespace_inferred": True,
                                             "resource": {"apiVersion": "v1", "kind": "Namespace",
                                                          "namespace": None, "name": namespace}})


def _pod_violation(endpoint: Endpoint, message: str, evidence: dict[str, Any] | None = None) -> Violation:
    pod = endpoint.pod
    return pod.resource_violation((*pod.metadata_path, "labels"), message, evidence=evidence)


# ---------------------------------------------------------------------------------------------
# NSA-NET-1..3: namespaces

# How a workload in kube-system / kube-public is recognised as a system component (documented
# in docs/network.md): a system priority class, a static (mirror) pod, the labels Kubernetes
# add-ons and control-plane components carry, or the name of a well-known component.
SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})
CONTROL_PLANE_COMPONENTS = frozenset({
    "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kube-proxy",
    "cloud-controller-manager",
})
SYSTEM_NAME_PATTERNS = (
    "coredns*", "kube-dns*", "kube-proxy*", "kube-apiserver*", "kube-controller-manager*",
    "kube-scheduler*", "etcd*", "metrics-server*", "cloud-controller-manager*", "*-cloud-controller-manager",
    "calico-*", "canal*", "cilium*", "kube-flannel*", "flannel*", "weave-net*", "antrea-*",
    "kube-router*", "kube-ovn-*", "ovnkube-*", "aws-node*", "aws-load-balancer-controller*",
    "ebs-csi-*", "efs-csi-*", "fsx-csi-*", "azure-*", "csi-azure*", "gke-*", "pdcsi-*", "anetd*", "netd*",
    "konnectivity-*", "node-local-dns*", "nodelocaldns*", "cluster-autoscaler*", "dns-autoscaler*",
    "tigera-*", "snapshot-controller*", "csi-*", "kube-state-metrics*", "vpa-*", "l7-default-backend*",
    "event-exporter*", "fluentbit-gke*", "ip-masq-agent*", "nvidia-*", "kube-vip*",
)


def is_system_component(pod: PodSpecView) -> bool:
    # str() first: a malformed manifest may hold a list or mapping there (unhashable)
    if str(pod.spec.get("priorityClassName")) in SYSTEM_PRIORITY_CLASSES:
        return True
    meta = pod.resource.metadata
    annotations = {**as_dict(meta.get("annotations")), **pod.annotations}
    if "kubernetes.io/config.mirror" in annotations or "kubernetes.io/config.source" in annotations:
        return True  # a static pod of the kubelet
    if any(isinstance(r, dict) and r.get("kind") == "Node" for r in as_list(meta.get("ownerReferences"))):
        return True
    labels = {**pod.resource.labels, **pod.labels}
    if "k8s-app" in labels or "addonmanager.kubernetes.io/mode" in labels:
        return True
    if labels.get("kubernetes.io/cluster-service") == "true" or labels.get("tier") == "control-plane":
        return True
    if str(labels.get("component")) in CONTROL_PLANE_COMPONENTS:
        return True
    name = pod.resource.name
    return any(fnmatchcase(name, pattern) for pattern in SYSTEM_NAME_PATTERNS)


@control(
    id="KH-NET-001",
    title="User workload in kube-system or kube-public",
    section=Section.NETWORK,
    guidance=("NSA-NET-2",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A Pod or workload that is not a recognised system component runs in kube-system or kube-public.",
    why="kube-system holds the cluster's most privileged components; user applications there share "
    "their network policies, service accounts and secrets, and are hard to isolate.",
    fix="Re-create the workload in its own namespace (set metadata.namespace to an application namespace); "
    "resources cannot be moved between namespaces.",
    examples=(
        Example(True, """
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-api, namespace: kube-system}
spec:
  selector: {matchLabels: {app: shop-api}}
  template:
    metadata: {labels: {app: shop-api}}
    spec:
      containers: [{name: api, image: registry.example/shop-api:1.0}]
"""),
        Example(False, """
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      priorityClassName: system-cluster-critical
      containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.11.1}]
"""),
    ),
)
def user_workload_in_system_namespace(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if pod.namespace in ("kube-system", "kube-public") and not is_system_component(pod):
            yield pod.resource_violation(
                ("metadata", "namespace"),
                f"{pod.resource.kind} '{pod.resource.name}' runs in {pod.namespace} but is not a "
                "recognised system component",
                pod.namespace,
            )


@control(
    id="KH-NET-002",
    title="Workload in the default namespace",
    section=Section.NETWORK,
    guidance=("NSA-NET-1",),
    severity=Severity.LOW,
    kinds=WORKLOADS,
    what="A Pod or workload runs in the default namespace (explicitly, or by omission in a whole-cluster "
    "input).",
    why="Namespaces are the unit of RBAC, network policy and quotas; applications in 'default' share all "
    "of them with whatever else lands there.",
    fix="Set metadata.namespace to a namespace of the team or application (Appendix D).",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers: [{name: web, image: registry.example/web:1.0}]
"""),
        Example(False, """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers: [{name: web, image: registry.example/web:1.0}]
"""),
    ),
)
def workload_in_default_namespace(ctx: Context) -> Iterator[Violation]:
    stated = 0
    for pod in ctx.pod_specs():
        if pod.namespace is None and not ctx.whole_cluster:
            continue  # a manifest without a namespace lands wherever it is applied
        stated += 1
        if (pod.namespace or DEFAULT_NAMESPACE) == DEFAULT_NAMESPACE:
            yield pod.resource_violation(
                ("metadata", "namespace"),
                f"{pod.resource.kind} '{pod.resource.name}' runs in the default namespace",
                DEFAULT_NAMESPACE,
            )
    if not stated:
        raise NotAssessed("no workload in the input states its namespace (set metadata.namespace or pass "
                          "--as-cluster)")


@control(
    id="KH-NET-003",
    title="User namespace prefixed kube-",
    section=Section.NETWORK,
    guidance=("NSA-NET-3",),
    severity=Severity.LOW,
    what="A namespace other than kube-system, kube-public and kube-node-lease starts with 'kube-'.",
    why="The kube- prefix is reserved for Kubernetes system namespaces; user namespaces with it are "
    "mistaken for system ones and may be exempted from policies.",
    fix="Rename the namespace (metadata.name) without the kube- prefix and re-create its resources there.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Namespace
metadata: {name: kube-shop}
"""),
        Example(False, """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""),
    ),
)
def kube_prefixed_namespace(ctx: Context) -> Iterator[Violation]:
    names = set(ctx.inventory.namespaces()) | judged_namespaces(ctx)  # a whole cluster also has 'default'
    if not names:
        raise NotAssessed("no namespaces in the input (no Namespace objects and no metadata.namespace)")
    for name in sorted(names):
        if name.startswith("kube-") and name not in SYSTEM_NAMESPACES:
            yield _namespace_violation(ctx, name, f"namespace '{name}' uses the reserved kube- prefix")


# ---------------------------------------------------------------------------------------------
# NSA-NET-5..7, NSA-CLOUD-1: network policies


_DEFAULT_DENY_YAML = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
"""
_SHOP_NAMESPACE_YAML = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""
_SHOP_DEPLOYMENT_YAML = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example/web:1.0
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {cpu: 500m, memory: 256Mi}
"""


@control(
    id="KH-NET-004",
    title="Namespace without default-deny ingress and egress",
    section=Section.NETWORK,
    guidance=("NSA-NET-5",),
    severity=Severity.HIGH,
    what="In a namespace, some pod is not isolated for ingress or for egress (no NetworkPolicy of that type "
    "selects it), or the namespace has no pods in the input and no policy selecting all pods. Judged by "
    "NetworkPolicy semantics, not by the shape of one policy. kube-system, kube-public and kube-node-lease "
    "are exempt.",
    why="Without default deny every pod accepts connections from, and may connect to, any pod of any "
    "namespace and the Internet: one compromised pod reaches everything.",
    fix="Add a NetworkPolicy with spec.podSelector: {} and spec.policyTypes: [Ingress, Egress] and no rules "
    "to the namespace, then allow the required flows (and DNS egress) with narrow policies.",
    needs="Namespace objects in the input, or a whole cluster (--as-cluster, snapshot, live)",
    examples=(
        Example(True, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: shop}
spec:
  podSelector: {}
  egress: []
""", "only ingress is denied (policyTypes defaults to [Ingress])"),
        Example(False, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + "---" + _DEFAULT_DENY_YAML),
    ),
)
def namespace_without_default_deny(ctx: Context) -> Iterator[Violation]:
    model = _index(ctx.inventory).model
    for ns in _judged_or_skip(ctx):
        endpoints = model.endpoints_by_namespace.get(ns, [])
        problems = []
        for direction in (INGRESS, EGRESS):
            if endpoints:
                open_pods = sorted({ep.name for ep in endpoints if not model.isolated(ep, direction)})
                if open_pods:
                    shown = ", ".join(open_pods[:5]) + (f" and {len(open_pods) - 5} more" if len(open_pods) > 5
                                                        else "")
                    problems.append(f"{direction.lower()} of {shown} not isolated")
            elif not model.namespace_isolated_by_default(ns, direction):
                problems.append(f"no {direction} policy selects all pods")
        if problems:
            yield _namespace_violation(ctx, ns, f"namespace '{ns}' has no default deny: " + "; ".join(problems))


def _judged_endpoints(ctx: Context, exempt: frozenset[str]) -> tuple[list[Endpoint], int]:
    """Endpoints whose namespace may be judged for absences, and how many others were left out."""
    model = _index(ctx.inventory).model
    judged = judged_namespaces(ctx)
    chosen, skipped = [], 0
    for ep in model.endpoints:
        if ep.namespace in exempt:
            continue
        if ep.namespace in judged:
            chosen.append(ep)
        else:
            skipped += 1
    return chosen, skipped


def _not_assessed_for(skipped: int, what: str) -> NotAssessed:
    return NotAssessed(
        f"{skipped} {what} in namespaces without a Namespace object in the input; pass --as-cluster to judge "
        "the input as a whole cluster"
    )


@control(
    id="KH-NET-005",
    title="Pod not selected by any NetworkPolicy",
    section=Section.NETWORK,
    guidance=("NSA-NET-6",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="No NetworkPolicy of its namespace selects the pod, so both its ingress and its egress are open "
    "(kube-system, kube-public and kube-node-lease are exempt).",
    why="An unselected pod accepts traffic from every pod of the cluster and may reach any destination.",
    fix="Select the pod with a NetworkPolicy (a default-deny policy with spec.podSelector: {} and "
    "policyTypes [Ingress, Egress] selects every pod of the namespace).",
    needs="Namespace objects in the input, or a whole cluster",
    examples=(
        Example(True, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-only, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
"""),
        Example(False, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + "---" + _DEFAULT_DENY_YAML),
    ),
)
def pod_not_selected(ctx: Context) -> Iterator[Violation]:
    model = _index(ctx.inventory).model
    endpoints, skipped = _judged_endpoints(ctx, SYSTEM_NAMESPACES)
    found = False
    for ep in endpoints:
        if not model.selecting(ep) and not model.ext_selecting(ep):
            found = True
            yield _pod_violation(ep, f"{ep.kind} '{ep.name}' in namespace '{ep.namespace}' is selected by no "
                                 "NetworkPolicy: ingress and egress are open")
    if not found and skipped:
        raise _not_assessed_for(skipped, "pods or workloads")
    if not endpoints and not skipped:
        raise NotAssessed("no pods or workloads outside the system namespaces")


@control(
    id="KH-NET-006",
    title="NetworkPolicy rule allows all traffic",
    section=Section.NETWORK,
    guidance=("NSA-NET-7",),
    severity=Severity.MEDIUM,
    kinds=("NetworkPolicy",),
    what="An effective ingress or egress rule has no from/to peers (ingress: [{}], egress: [{}], or rules "
    "with only ports), or an ipBlock of 0.0.0.0/0 or ::/0 without except.",
    why="Such a rule re-opens what default deny closed: every pod of every namespace and the whole "
    "Internet (including the cloud metadata service) become peers.",
    fix="Give the rule explicit from/to peers (podSelector, namespaceSelector) and ports; for Internet "
    "egress use ipBlock with except: [169.254.169.254/32] and the cluster's private ranges.",
    examples=(
        Example(True, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: open, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - {}
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0}
"""),
        Example(False, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: narrow, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    ports: [{port: 8080}]
  egress:
  - to:
    - ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32, 10.0.0.0/8]}
    ports: [{port: 443}]
"""),
    ),
)
def allow_all_rule(ctx: Context) -> Iterator[Violation]:
    for policy in _index(ctx.inventory).model.policies:
        for direction in (INGRESS, EGRESS):
            word = "from" if direction == INGRESS else "to"
            for rule in policy.rules(direction):
                ports = ", ".join(p.describe() for p in rule.ports) if rule.ports else "every port"
                if not rule.peers:
                    yield Violation(
                        policy.resource, rule.path,
                        f"{direction.lower()} rule {rule.field_name} of {policy.key} allows {word} every "
                        f"pod and address on {ports}",
                    )
                    continue
                for j, peer in enumerate(rule.peers):
                    if peer.ip_block is not None and peer.ip_block.whole_internet:
                        yield Violation(
                            policy.resource, (*rule.path, word, j, "ipBlock", "cidr"),
                            f"{direction.lower()} rule {rule.field_name} of {policy.key} allows {word} "
                            f"{peer.ip_block.cidr} without except on {ports}",
                            str(peer.ip_block.cidr), has_value=True,
                        )


@control(
    id="KH-NET-007",
    title="NetworkPolicy that does not do what it says",
    section=Section.NETWORK,
    guidance=("NSA-NET-7",),
    severity=Severity.MEDIUM,
    kinds=("NetworkPolicy", *EXTENDED_KINDS),
    what="A NetworkPolicy (or Cilium or admin network policy) the API server would reject (bad selector "
    "operator, ipBlock combined with a selector, endPort with a named port, unknown Cilium entity...), "
    "or whose ingress/egress rules are ignored because "
    "spec.policyTypes does not list that direction.",
    why="Such policies give a false sense of isolation: the rules a reviewer reads are not enforced.",
    fix="Fix the reported field; list every direction whose rules you wrote in spec.policyTypes "
    "(e.g. policyTypes: [Ingress, Egress]).",
    examples=(
        Example(True, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
  egress:
  - to: [{podSelector: {matchLabels: {app: dns}}}]
""", "ingress rules are ignored: policyTypes lacks Ingress"),
        Example(False, """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: api}}}]
  egress:
  - to: [{podSelector: {matchLabels: {app: dns}}}]
"""),
    ),
)
def ineffective_policy(ctx: Context) -> Iterator[Violation]:
    model = _index(ctx.inventory).model
    for problem in model.problems:
        yield Violation(problem.resource, problem.path,
                        f"{problem.label} would be rejected by "
                        f"the API server: {problem.message}")
    for policy in model.policies:
        for direction, rules in ((INGRESS, policy.ingress), (EGRESS, policy.egress)):
            if rules and direction not in policy.types:
                name = "ingress" if direction == INGRESS else "egress"
                yield Violation(
                    policy.resource, ("spec", "policyTypes") if not policy.types_defaulted else ("spec",),
                    f"{policy.key}: spec.{name} has {len(rules)} rule(s) that are ignored because "
                    f"policyTypes is [{', '.join(sorted(policy.types))}]",
                )


@control(
    id="KH-NET-008",
    title="Pod can reach the cloud metadata service",
    section=Section.NETWORK,
    guidance=("NSA-CLOUD-1",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="NetworkPolicies let the pod reach 169.254.169.254 (or the IPv6 metadata address fd00:ec2::254): "
    "it is not isolated for egress, or an egress rule admits the address (0.0.0.0/0 without except, "
    "egress: [{}]...). Pods of kube-system, kube-public, kube-node-lease and host-network pods "
    "(KH-POD-007) are left out.",
    why="The metadata service hands out the node's cloud credentials; a compromised pod that reaches it can "
    "act as the node in the cloud account.",
    fix="Isolate egress (policyTypes: [Egress]) and write Internet egress as ipBlock {cidr: 0.0.0.0/0, "
    "except: [169.254.169.254/32]} (and ::/0 except fd00:ec2::254/128); also block it provider-side "
    "(IMDSv2 with hop limit 1, GKE metadata server).",
    needs="Namespace objects in the input, or a whole cluster, for pods that no policy isolates",
    examples=(
        Example(True, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
"""),
        Example(False, _SHOP_NAMESPACE_YAML + "---" + _SHOP_DEPLOYMENT_YAML + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]
"""),
    ),
)
def metadata_reachable(ctx: Context) -> Iterator[Violation]:
    model = _index(ctx.inventory).model
    judged = judged_namespaces(ctx)
    assessed = skipped = 0
    found = False
    for ep in model.endpoints:
        if ep.host_network or ep.namespace in SYSTEM_NAMESPACES:
            # Host-network pods are outside NetworkPolicy (KH-POD-007 reports them); the guidance
            # asks this of application namespaces.
            continue
        if not model.isolated(ep, EGRESS):
            if ep.namespace not in judged:
                skipped += 1  # a policy elsewhere in the cluster may isolate it
                continue
            assessed += 1
            found = True
            yield _pod_violation(ep, f"{ep.kind} '{ep.name}' is not isolated for egress: it can reach the "
                                 "metadata service")
            continue
        assessed += 1
        reachable = []
        rules: list[str] = []
        notes: list[str] = []
        for address in METADATA_ADDRESSES:
            side = model.side(ep, EGRESS, address, None)
            notes.extend(n for n in side.notes if n not in notes)
            if not side.ports.empty:
                reachable.append(str(address.network_address))
                rules.extend(f"{m.policy.key} {m.rule.field_name}" for m in side.matches if not m.ports.empty)
        if reachable:
            found = True
            through = ", ".join(sorted(set(rules))) or "no rule that decides it (no policy tier denies it)"
            yield _pod_violation(
                ep,
                f"{ep.kind} '{ep.name}' can reach the metadata service ({', '.join(reachable)}) through {through}"
                + (f"; {'; '.join(notes)}" if notes else ""),
                evidence={"addresses": reachable, "rules": sorted(set(rules)), **({"notes": notes} if notes else {})},
            )
    if not found and skipped:
        # Pods whose namespace cannot be judged may be open: never pass on that.
        raise _not_assessed_for(skipped, "pods or workloads without egress policy")
    if not assessed and not skipped:
        raise NotAssessed("no pods or workloads outside the system namespaces and the host network")


def _internet_rules(model: NetworkModel, ep: Endpoint) -> list[str]:
    """Egress rules selecting the endpoint that admit the Internet: no peers, a /0 ipBlock or CIDR, or
    (Cilium) the world or all entity."""
    found = []
    for policy in model.selecting(ep, EGRESS):
        for rule in policy.rules(EGRESS):
            if not rule.peers or any(p.ip_block is not None and p.ip_block.cidr.prefixlen == 0
                                     for p in rule.peers):
                found.append(f"{policy.key} {rule.field_name}")
    for ext in model.ext_selecting(ep, EGRESS):
        for ext_rule in ext.rules(EGRESS):
            if ext_rule.action == "Allow" and (ext_rule.every_peer or any(
                    (p.kind == "entity" and p.entity in ("world", "world-ipv4", "world-ipv6", "all"))
                    or (p.block is not None and p.block.cidr.prefixlen == 0) for p in ext_rule.peers)):
                found.append(f"{ext.key} {ext_rule.field_name}")
    return found


@control(
    id="KH-NET-016",
    title="kube-system pod with unrestricted Internet egress",
    section=Section.NETWORK,
    guidance=("NSA-NET-8",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A pod of kube-system is not isolated for egress, or an egress rule selecting it admits every "
    "address (no to peers, or an ipBlock of 0.0.0.0/0 or ::/0, with or without except). Host-network pods "
    "are left to KH-POD-007.",
    why="kube-system runs the most privileged workloads; Internet egress from them lets a compromise "
    "download tools and exfiltrate credentials.",
    fix="Select kube-system pods with egress NetworkPolicies that allow only what they need (the API "
    "server, DNS upstreams, cluster peers) instead of 0.0.0.0/0; keep control-plane traffic working.",
    needs="the kube-system Namespace object, or a whole cluster, for pods no egress policy selects",
    examples=(
        Example(True, """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.11.1}]
"""),
        Example(False, """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers: [{name: coredns, image: registry.k8s.io/coredns/coredns:v1.11.1}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: coredns-egress, namespace: kube-system}
spec:
  podSelector: {matchLabels: {k8s-app: kube-dns}}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.0.0.0/8}}, {ipBlock: {cidr: 192.0.2.53/32}}]
    ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}, {port: 443}]
"""),
    ),
)
def kube_system_internet_egress(ctx: Context) -> Iterator[Violation]:
    model = _index(ctx.inventory).model
    judged = "kube-system" in judged_namespaces(ctx)
    endpoints = [ep for ep in model.endpoints_by_namespace.get("kube-system", []) if not ep.host_network]
    if not endpoints:
        raise NotAssessed("no kube-system pods or workloads (outside the host network) in the input")
    found = skipped = False
    for ep in endpoints:
        if not model.isolated(ep, EGRESS):
            if not judged:
                skipped = True
                continue
            found = True
            yield _pod_violation(ep, f"{ep.kind} '{ep.name}' in kube-system is not isolated for egress: it can "
                                 "reach the Internet")
            continue
        rules = _internet_rules(model, ep)
        if rules:
            found = True
            yield _pod_violation(ep, f"{ep.kind} '{ep.name}' in kube-system may reach the Internet through "
                                 f"{', '.join(rules)}", evidence={"rules": rules})
    if skipped and not found:
        raise NotAssessed(NOT_JUDGED_REASON.format(what="kube-system"))


# ---------------------------------------------------------------------------------------------
# NSA-NET-9: TLS for externally exposed services

_HTTP_PORTS = (80, 8080)  # a tuple: a malformed port may be an unhashable list
_TLS_ANNOTATIONS = (
    "service.beta.kubernetes.io/aws-load-balancer-ssl-cert",
    "service.beta.kubernetes.io/do-loadbalancer-certificate-id",
    "service.beta.kubernetes.io/oci-load-balancer-ssl-ports",
    "service.beta.kubernetes.io/alibaba-cloud-loadbalancer-cert-id",
)


def _plain_http_port(port: dict[str, Any]) -> bool:
    name = str(port.get("name") or "").lower()
    app = str(port.get("appProtocol") or "").lower()
    if "https" in name or app in ("https", "tls") or "tls" in name:
        return False
    if app in ("http", "kubernetes.io/h2c", "h2c") or name == "http" or name.startswith(("http-", "http2")):
        return True
    return port.get("port") in _HTTP_PORTS


def _tls_ports(service: Resource) -> set[str] | None:
    """Ports the cloud load balancer terminates TLS on (None: none known; {"*"}: all)."""
    ann = service.annotations
    if not any(key in ann for key in _TLS_ANNOTATIONS):
        return None
    listed = ann.get("service.beta.kubernetes.io/aws-load-balancer-ssl-ports") or ann.get(
        "service.beta.kubernetes.io/oci-load-balancer-ssl-ports") or "*"
    return {p.strip() for p in str(listed).split(",")}


@control(
    id="KH-NET-009",
    title="Service exposed outside the cluster over plain HTTP",
    section=Section.NETWORK,
    guidance=("NSA-NET-9",),
    severity=Severity.MEDIUM,
    kinds=("Service",),
    what="A NodePort or LoadBalancer Service (or one with externalIPs) exposes an HTTP port (port 80/8080, "
    "name or appProtocol http) and no load-balancer TLS annotation covers it.",
    why="Traffic to a Service exposed outside the cluster crosses untrusted networks; plain HTTP exposes "
    "credentials and data to anyone on the path.",
    fix="Expose the workload through an Ingress or Gateway with TLS (spec.tls / an HTTPS listener), or "
    "terminate TLS on the load balancer (e.g. service.beta.kubernetes.io/aws-load-balancer-ssl-cert) "
    "and serve only the TLS port.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""),
        Example(False, """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{name: https, port: 443, targetPort: 8443}]
"""),
    ),
)
def service_plain_http(ctx: Context) -> Iterator[Violation]:
    for svc in ctx.inventory.of_kind("Service"):
        spec = as_dict(svc.obj.get("spec"))
        kind = spec.get("type") or "ClusterIP"
        exposed = kind in ("NodePort", "LoadBalancer") or bool(as_list(spec.get("externalIPs")))
        if not exposed:
            continue
        tls = _tls_ports(svc)
        for i, port in enumerate(as_list(spec.get("ports"))):
            if not isinstance(port, dict) or not _plain_http_port(port):
                continue
            if tls is not None and ("*" in tls or str(port.get("port")) in tls or str(port.get("name")) in tls):
                continue
            how = kind if kind != "ClusterIP" else "externalIPs"
            yield Violation(svc, ("spec", "ports", i),
                            f"Service {_namespaced_name(svc)} ({how}) exposes plain HTTP port {port.get('port')}")


def _host_covered(host: str, tls_hosts: list[str]) -> bool:
    for pattern in tls_hosts:
        if pattern == host:
            return True
        if pattern.startswith("*.") and host.count(".") == pattern.count(".") and host.endswith(pattern[1:]):
            return True
    return False


@control(
    id="KH-NET-010",
    title="Ingress without TLS",
    section=Section.NETWORK,
    guidance=("NSA-NET-9",),
    severity=Severity.MEDIUM,
    kinds=("Ingress",),
    what="An Ingress has no spec.tls, or a host of its rules is not listed in any spec.tls[].hosts.",
    why="An Ingress exposes the service outside the cluster; without TLS its traffic is readable and "
    "alterable on the network.",
    fix="Add spec.tls with hosts covering every rule host and a secretName holding the certificate "
    "(e.g. issued by cert-manager).",
    examples=(
        Example(True, """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  rules:
  - host: shop.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""),
        Example(False, """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]
"""),
    ),
)
def ingress_without_tls(ctx: Context) -> Iterator[Violation]:
    for ing in ctx.inventory.of_kind("Ingress"):
        spec = as_dict(ing.obj.get("spec"))
        tls = [t for t in as_list(spec.get("tls")) if isinstance(t, dict)]
        if not tls:
            yield Violation(ing, ("spec", "tls"), f"Ingress {_namespaced_name(ing)} has no spec.tls")
            continue
        if any(not as_list(t.get("hosts")) for t in tls):
            continue  # a TLS entry without hosts applies the certificate to every host
        tls_hosts = [str(h) for t in tls for h in as_list(t.get("hosts"))]
        for i, rule in enumerate(as_list(spec.get("rules"))):
            host = as_dict(rule).get("host")
            if host and not _host_covered(str(host), tls_hosts):
                yield Violation(ing, ("spec", "rules", i, "host"),
                                f"Ingress {_namespaced_name(ing)}: host {host} is not covered by spec.tls",
                                str(host), has_value=True)


@control(
    id="KH-NET-011",
    title="Gateway listener on plain HTTP",
    section=Section.NETWORK,
    guidance=("NSA-NET-9",),
    severity=Severity.MEDIUM,
    kinds=("Gateway",),
    what="A Gateway API Gateway has a listener with protocol: HTTP.",
    why="Gateway listeners face clients outside the cluster; HTTP listeners carry traffic in clear text.",
    fix="Use protocol: HTTPS with tls.certificateRefs (or TLS passthrough); keep an HTTP listener only to "
    "redirect to HTTPS.",
    examples=(
        Example(True, """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: example
  listeners: [{name: web, port: 80, protocol: HTTP}]
"""),
        Example(False, """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: example
  listeners:
  - name: web
    port: 443
    protocol: HTTPS
    tls: {mode: Terminate, certificateRefs: [{name: shop-tls}]}
"""),
    ),
)
def gateway_plain_http(ctx: Context) -> Iterator[Violation]:
    for gw in ctx.inventory.of_kind("Gateway"):
        if not gw.api_version.startswith("gateway.networking.k8s.io/"):
            continue  # e.g. Istio's networking.istio.io Gateway has another schema
        for i, listener in enumerate(as_list(as_dict(gw.obj.get("spec")).get("listeners"))):
            if isinstance(listener, dict) and str(listener.get("protocol", "")).upper() == "HTTP":
                yield Violation(gw, ("spec", "listeners", i, "protocol"),
                                f"Gateway {_namespaced_name(gw)}: listener '{listener.get('name')}' on port "
                                f"{listener.get('port')} uses plain HTTP", "HTTP", has_value=True)


# ---------------------------------------------------------------------------------------------
# NSA-NET-10..12: resource policies

LIMIT_RANGE_KEYS = (
    "default.cpu", "default.memory", "defaultRequest.cpu", "defaultRequest.memory", "max.cpu", "max.memory",
    "min.cpu", "min.memory",
)
QUOTA_KEYS = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
_QUOTA_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}


def _container_limit_keys(limit_ranges: Iterable[Resource]) -> set[str]:
    """Keys like ``default.cpu`` set by the type: Container items of these LimitRanges."""
    keys = set()
    for lr in limit_ranges:
        for item in as_list(as_dict(lr.obj.get("spec")).get("limits")):
            if not isinstance(item, dict) or item.get("type") != "Container":
                continue
            for section in ("default", "defaultRequest", "max", "min"):
                for resource in as_dict(item.get(section)):
                    keys.add(f"{section}.{resource}")
    return keys


_LIMIT_RANGE_YAML = """
apiVersion: v1
kind: LimitRange
metadata: {name: container-limits, namespace: shop}
spec:
  limits:
  - type: Container
    default: {cpu: "1", memory: 512Mi}
    defaultRequest: {cpu: 500m, memory: 256Mi}
    max: {cpu: "2", memory: 1Gi}
    min: {cpu: 100m, memory: 64Mi}
"""
_QUOTA_YAML = """
apiVersion: v1
kind: ResourceQuota
metadata: {name: compute, namespace: shop}
spec:
  hard: {requests.cpu: "1", requests.memory: 1Gi, limits.cpu: "2", limits.memory: 2Gi}
"""


@control(
    id="KH-NET-012",
    title="Namespace without a LimitRange",
    section=Section.NETWORK,
    guidance=("NSA-NET-10",),
    severity=Severity.MEDIUM,
    what="A namespace has no LimitRange whose type: Container limits set default, defaultRequest, max and min "
    "for cpu and memory (Appendix F, with memory). kube-system, kube-public and kube-node-lease are exempt.",
    why="Without per-container limits one pod can exhaust a node's CPU or memory and starve its neighbours; "
    "defaults also make pods without resources admissible under a ResourceQuota.",
    fix="Add a LimitRange with spec.limits: [{type: Container, default: {cpu, memory}, defaultRequest: "
    "{cpu, memory}, max: {cpu, memory}, min: {cpu, memory}}] to the namespace.",
    needs="Namespace objects in the input, or a whole cluster",
    examples=(
        Example(True, _SHOP_NAMESPACE_YAML),
        Example(False, _SHOP_NAMESPACE_YAML + "---" + _LIMIT_RANGE_YAML),
    ),
)
def namespace_without_limit_range(ctx: Context) -> Iterator[Violation]:
    index = _index(ctx.inventory)
    for ns in _judged_or_skip(ctx):
        ranges = index.limit_ranges.get(ns, [])
        if not ranges:
            yield _namespace_violation(ctx, ns, f"namespace '{ns}' has no LimitRange")
            continue
        missing = [k for k in LIMIT_RANGE_KEYS if k not in _container_limit_keys(ranges)]
        if missing:
            yield Violation(ranges[0], ("spec", "limits"),
                            f"namespace '{ns}': LimitRange sets no container {', '.join(missing)}")


@control(
    id="KH-NET-013",
    title="Namespace without a ResourceQuota",
    section=Section.NETWORK,
    guidance=("NSA-NET-11",),
    severity=Severity.MEDIUM,
    what="A namespace has no unscoped ResourceQuota whose spec.hard sets requests.cpu, requests.memory, "
    "limits.cpu and limits.memory (Appendix G). kube-system, kube-public and kube-node-lease are exempt.",
    why="Without a quota one namespace (or one compromised workload scaling itself up) can take the "
    "whole cluster's capacity.",
    fix="Add a ResourceQuota with spec.hard: {requests.cpu, requests.memory, limits.cpu, limits.memory} "
    "to the namespace.",
    needs="Namespace objects in the input, or a whole cluster",
    examples=(
        Example(True, _SHOP_NAMESPACE_YAML + """---
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods-only, namespace: shop}
spec:
  hard: {pods: "10"}
"""),
        Example(False, _SHOP_NAMESPACE_YAML + "---" + _QUOTA_YAML),
    ),
)
def namespace_without_quota(ctx: Context) -> Iterator[Violation]:
    index = _index(ctx.inventory)
    for ns in _judged_or_skip(ctx):
        quotas = index.quotas.get(ns, [])
        if not quotas:
            yield _namespace_violation(ctx, ns, f"namespace '{ns}' has no ResourceQuota")
            continue
        keys: set[str] = set()
        for quota in quotas:
            spec = as_dict(quota.obj.get("spec"))
            if spec.get("scopes") or spec.get("scopeSelector"):
                continue  # a scoped quota covers only some pods
            keys.update(_QUOTA_ALIASES.get(str(k), str(k)) for k in as_dict(spec.get("hard")))
        missing = [k for k in QUOTA_KEYS if k not in keys]
        if missing:
            yield Violation(quotas[0], ("spec", "hard"),
                            f"namespace '{ns}': no unscoped ResourceQuota sets {', '.join(missing)}")


@control(
    id="KH-NET-014",
    title="Container without CPU/memory requests and limits",
    section=Section.NETWORK,
    guidance=("NSA-NET-12",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container or init container sets no resources.requests / resources.limits for cpu or memory, "
    "and no LimitRange of its namespace in the input supplies the default (a request also defaults to "
    "the container's own limit).",
    why="Containers without limits can take a node's CPU and memory; under a ResourceQuota pods without "
    "them are rejected.",
    fix="Set resources.requests.cpu, resources.requests.memory, resources.limits.cpu and "
    "resources.limits.memory on every container, or add a LimitRange with default and defaultRequest.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: web
    image: registry.example/web:1.0
    resources: {requests: {cpu: 100m}}
"""),
        Example(False, _SHOP_DEPLOYMENT_YAML),
        Example(False, _LIMIT_RANGE_YAML + """---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers: [{name: web, image: registry.example/web:1.0}]
""", "the LimitRange supplies defaults"),
    ),
)
def container_without_resources(ctx: Context) -> Iterator[Violation]:
    index = _index(ctx.inventory)
    judged = judged_namespaces(ctx)
    defaults_by_ns: dict[str, set[str]] = {}
    for pod in ctx.pod_specs():
        ns = pod.namespace or DEFAULT_NAMESPACE
        defaults = defaults_by_ns.get(ns)
        if defaults is None:
            defaults = defaults_by_ns[ns] = _container_limit_keys(index.limit_ranges.get(ns, []))
        for c in pod.containers(("initContainers", "containers")):
            resources = as_dict(c.obj.get("resources"))
            requests, limits = as_dict(resources.get("requests")), as_dict(resources.get("limits"))
            missing = []
            for res in ("cpu", "memory"):
                if res not in limits and f"default.{res}" not in defaults:
                    missing.append(f"limits.{res}")
                # the API server defaults a missing request to the limit, LimitRanger to
                # defaultRequest (or, without one, to default)
                if res not in requests and res not in limits and not defaults & {f"defaultRequest.{res}",
                                                                                   f"default.{res}"}:
                    missing.append(f"requests.{res}")
            if missing:
                # The manifest lacks them either way; whether a LimitRange fills them in is only
                # known for a namespace the input holds (or one of its LimitRanges).
                unknown = ns not in judged and not index.limit_ranges.get(ns)
                yield c.violation(("resources",), f"container '{c.name}' sets no {', '.join(missing)}"
                                  + (f" (no LimitRange of namespace '{ns}' in the input could default them)"
                                     if unknown else ""))


# ---------------------------------------------------------------------------------------------
# NSA-NET-4: a CNI that enforces NetworkPolicy

# Matched against DaemonSet names and container images.
_ENFORCING_CNI = (
    ("calico", ("calico-node*", "canal*"), ("*calico/node*", "*calico-node*")),
    ("cilium", ("cilium*", "anetd*"), ("*cilium/cilium*", "*/cilium:*", "*anetd*")),
    ("antrea", ("antrea-agent*",), ("*antrea-agent*", "*antrea/antrea*")),
    ("weave", ("weave-net*",), ("*weaveworks/weave-kube*", "*weave-npc*")),
    ("kube-router", ("kube-router*",), ("*kube-router*",)),
    ("azure-npm", ("azure-npm*",), ("*azure-npm*",)),
    ("kube-ovn", ("kube-ovn-cni*",), ("*kube-ovn*",)),
    ("ovn-kubernetes", ("ovnkube-node*",), ("*ovn-kubernetes*",)),
    ("aws-network-policy-agent", (), ("*aws-network-policy-agent*",)),
    ("kube-network-policies", ("kube-network-policies*",), ("*kube-network-policies*",)),
)
_NON_ENFORCING_CNI = (
    ("flannel", ("kube-flannel*", "flannel*"), ("*flannel*",)),
    ("aws-vpc-cni", ("aws-node*",), ("*amazon-k8s-cni:*", "*amazon-k8s-cni@*")),
)


def _match_cni(ds: Resource, table: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]) -> list[str]:
    images: list[str] = []
    spec = as_dict(as_dict(as_dict(ds.obj.get("spec")).get("template")).get("spec"))
    for field_name in ("initContainers", "containers"):
        images.extend(str(as_dict(c).get("image") or "") for c in as_list(spec.get(field_name)))
    found = []
    for name, ds_patterns, image_patterns in table:
        if any(fnmatchcase(ds.name, p) for p in ds_patterns) or any(
            fnmatchcase(img, p) for img in images for p in image_patterns
        ):
            found.append(name)
    return found


def _cni_requires(ctx: Context) -> str | None:
    if ctx.whole_cluster or "kube-system" in _index(ctx.inventory).model.namespace_objects:
        return None
    return ("the CNI is judged only for a whole cluster (snapshot, live, --as-cluster) or when the kube-system "
            "Namespace object is in the input")


@control(
    id="KH-NET-015",
    title="CNI cannot enforce NetworkPolicy",
    section=Section.NETWORK,
    guidance=("NSA-NET-4",),
    severity=Severity.HIGH,
    requires=_cni_requires,
    what="The cluster's CNI DaemonSets include only plugins that ignore NetworkPolicy (flannel alone, the "
    "AWS VPC CNI without its network policy agent); no policy engine (Calico, Cilium, Antrea, Weave, "
    "kube-router...) runs.",
    why="NetworkPolicies are silently ignored by such a CNI: every isolation the policies promise is "
    "absent.",
    fix="Install a NetworkPolicy-capable CNI or policy engine (e.g. Calico in policy-only mode / Canal on "
    "top of flannel, Cilium, or enable the AWS VPC CNI network policy agent).",
    needs="a whole cluster, or the kube-system Namespace object and its DaemonSets",
    examples=(
        Example(True, """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-system}
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel}}
    spec:
      containers: [{name: kube-flannel, image: docker.io/flannel/flannel:v0.25.1}]
"""),
        Example(False, """
apiVersion: v1
kind: Namespace
metadata: {name: kube-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: calico-node, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: calico-node}}
  template:
    metadata: {labels: {k8s-app: calico-node}}
    spec:
      containers: [{name: calico-node, image: docker.io/calico/node:v3.28.0}]
"""),
    ),
)
def cni_without_policy(ctx: Context) -> Iterator[Violation]:
    enforcing: list[str] = []
    other: list[tuple[Resource, list[str]]] = []
    for ds in ctx.inventory.of_kind("DaemonSet"):
        enforcing.extend(_match_cni(ds, _ENFORCING_CNI))
        found = _match_cni(ds, _NON_ENFORCING_CNI)
        if found:
            other.append((ds, found))
    if enforcing:
        return
    if not other:
        raise NotAssessed("no known CNI DaemonSet in the input (kubenet or a CNI installed on the nodes cannot be "
                          "judged from resources)")
    for ds, names in other:
        yield Violation(ds, ("metadata", "name"),
                        f"DaemonSet {_namespaced_name(ds)} runs {', '.join(names)}, which does not enforce "
                        "NetworkPolicy, and no policy engine runs in the cluster")

