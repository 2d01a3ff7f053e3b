"""Exposure of the API server and the nodes, and placement of Internet-facing workloads
(guidance §1.6, §2.3-2.4: NSA-CP-1, NSA-NODE-2, NSA-NODE-3).

Services are joined to the workloads they select (every pod-spec kind, by the pod template's
labels in the Service's namespace); Ingress backends count as Internet-facing. Placement is
judged with the Nodes of the input (a snapshot, a live scan or --as-cluster with Node objects):
two workloads share a node when some node admits both (taints and tolerations, nodeSelector,
required node affinity).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field

from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import Inventory, PodSpecView, as_dict, as_list
from kubeharden.model import NotAssessed, Resource, Section, Severity, Violation
from kubeharden.netpol import resource_namespace
from kubeharden.nodeconf.evidence import evidence_of
from kubeharden.rbac.engine import Request, UserInfo, model_for
from kubeharden.scheduling import selects_node, untolerated

API_PORTS = frozenset({6443, 443})
EXTERNAL_TYPES = ("LoadBalancer", "NodePort")
MANAGED_NEEDS = ("a managed control plane's endpoint is cloud configuration: EKS endpointPublicAccess and "
                 "publicAccessCidrs, GKE privateClusterConfig and masterAuthorizedNetworksConfig, AKS "
                 "apiServerAccessProfile (enablePrivateCluster, authorizedIpRanges)")


def _open_to_all(cidrs: list[str]) -> bool:
    for cidr in cidrs:
        try:
            if ipaddress.ip_network(str(cidr), strict=False).prefixlen == 0:
                return True
        except ValueError:
            continue
    return False


def _is_apiserver_service(svc: Resource, inventory: Inventory) -> bool:
    spec = as_dict(svc.obj.get("spec"))
    if svc.name == "kubernetes" and resource_namespace(svc) == "default":
        return True
    selector = as_dict(spec.get("selector"))
    if selector.get("component") == "kube-apiserver":
        return True
    for port in as_list(spec.get("ports")):
        port = as_dict(port)
        if port.get("targetPort") == 6443 or port.get("port") == 6443:
            return not selector or any(
                p.resource.kind == "Pod" and all(p.labels.get(k) == v for k, v in selector.items())
                and any("kube-apiserver" in str(c.obj.get("image", "")) for c in p.containers())
                for p in inventory.pod_specs()) or not inventory.pod_specs()
    return False


_API_LB = """\
apiVersion: v1
kind: Service
metadata: {name: apiserver-public, namespace: kube-system}
spec:
  type: LoadBalancer
  selector: {component: kube-apiserver}
  ports:
  - {port: 443, targetPort: 6443}
"""
_API_LB_RESTRICTED = _API_LB + "  loadBalancerSourceRanges: [203.0.113.0/24]\n"


@control(
    id="KH-CP-040",
    title="API server exposed through a public Service or load balancer",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-1",),
    severity=Severity.HIGH,
    kinds=("Service",),
    what="A Service in front of the API server (the default/kubernetes Service, a selector on "
    "component: kube-apiserver, or port/targetPort 6443) is of type LoadBalancer or NodePort, or has "
    "externalIPs, without loadBalancerSourceRanges narrower than 0.0.0.0/0.",
    why="The API server is the cluster's front door: reachable from the Internet, every credential leak and "
    "authentication bug is exploitable from anywhere.",
    fix="Keep the API server behind a private endpoint or firewall: Service type ClusterIP, or "
    "spec.loadBalancerSourceRanges with the administrators' networks only.",
    examples=(Example(True, _API_LB), Example(False, _API_LB_RESTRICTED)),
)
def apiserver_service_exposed(ctx: Context) -> Iterator[Violation]:
    for svc in ctx.inventory.of_kind("Service"):
        if not _is_apiserver_service(svc, ctx.inventory):
            continue
        spec = as_dict(svc.obj.get("spec"))
        kind = spec.get("type") or "ClusterIP"
        ranges = [str(r) for r in as_list(spec.get("loadBalancerSourceRanges"))]
        if as_list(spec.get("externalIPs")):
            yield Violation(svc, ("spec", "externalIPs"), f"API server Service '{svc.name}' is published on "
                            f"external IPs {', '.join(map(str, spec['externalIPs']))}")
        if kind == "LoadBalancer" and (not ranges or _open_to_all(ranges)):
            path = ("spec", "loadBalancerSourceRanges") if ranges else ("spec", "type")
            yield Violation(svc, path, f"API server Service '{svc.name}' is a LoadBalancer open to "
                            f"{'0.0.0.0/0' if ranges else 'every address (no loadBalancerSourceRanges)'}",
                            kind, has_value=True)
        elif kind == "NodePort":
            yield Violation(svc, ("spec", "type"), f"API server Service '{svc.name}' is a NodePort: the API is "
                            "reachable on every node's address", kind, has_value=True, severity=Severity.MEDIUM)


@control(
    id="KH-CP-041",
    title="API server listens on every interface",
    section=Section.CONTROL_PLANE,
    guidance=("NSA-CP-1", "NSA-CP-2"),
    severity=Severity.LOW,
    needs="node configuration: kube-apiserver static pod or --root (managed clusters: not assessed)",
    what="kube-apiserver --bind-address is unset (0.0.0.0) or 0.0.0.0/::, so the API answers on every address of "
    "the control-plane host: whether that is exposed depends on the firewall or cloud authorized networks, "
    "which the input does not show.",
    why="The guidance asks that the API server not be reachable from the Internet or untrusted networks; a "
    "listener on all interfaces leaves that entirely to the network in front of it.",
    fix="Bind to the control-plane network (--bind-address=<internal IP>) or make sure a firewall/security group "
    "allows 6443 only from administrators' and nodes' networks; record the authorized networks.",
)
def apiserver_bind_address(ctx: Context) -> Iterator[Violation]:
    evidence = evidence_of(ctx)
    instances = evidence.components.get("kube-apiserver") or []
    if not instances:
        blocked = evidence.unreadable_pods()
        raise NotAssessed(blocked or f"no kube-apiserver configuration in the input; {MANAGED_NEEDS}")
    for api in instances:
        value = api.value("bind-address")
        if value in (None, "", "0.0.0.0", "::"):
            shown = value or "unset (default 0.0.0.0)"
            yield api.flag_violation("bind-address" if value else None,
                                     f"kube-apiserver listens on every interface (--bind-address {shown}); "
                                     "exposure then rests on the firewall or authorized networks", value)


# ---------------------------------------------------------------------------------------------
# Services and the workloads they select


@dataclass
class Exposure:
    service: Resource
    kind: str  # LoadBalancer | NodePort | Ingress
    workloads: list[PodSpecView] = field(default_factory=list)


def selected_workloads(inventory: Inventory, svc: Resource) -> list[PodSpecView]:
    selector = as_dict(as_dict(svc.obj.get("spec")).get("selector"))
    if not selector:
        return []
    namespace = resource_namespace(svc)
    return [p for p in inventory.pod_specs() if resource_namespace(p.resource) == namespace
            and all(str(p.labels.get(k)) == str(v) and k in p.labels for k, v in selector.items())]


def exposures(inventory: Inventory) -> list[Exposure]:
    return inventory.analysis(_exposures)


def _exposures(inventory: Inventory) -> list[Exposure]:
    out = []
    services = {(resource_namespace(s), s.name): s for s in inventory.of_kind("Service")}
    for svc in services.values():
        kind = as_dict(svc.obj.get("spec")).get("type")
        if kind in EXTERNAL_TYPES:
            out.append(Exposure(svc, str(kind), selected_workloads(inventory, svc)))
    for ingress in inventory.of_kind("Ingress"):
        spec = as_dict(ingress.obj.get("spec"))
        backends = [as_dict(spec.get("defaultBackend"))] + [
            as_dict(path.get("backend")) for rule in as_list(spec.get("rules")) if isinstance(rule, dict)
            for path in as_list(as_dict(rule.get("http")).get("paths")) if isinstance(path, dict)]
        for backend in backends:
            name = as_dict(backend.get("service")).get("name") or backend.get("serviceName")
            backend_svc = services.get((resource_namespace(ingress), str(name))) if name else None
            if backend_svc is not None:
                out.append(Exposure(backend_svc, "Ingress", selected_workloads(inventory, backend_svc)))
    return out


def _workload_names(pods: list[PodSpecView]) -> str:
    return ", ".join(f"{p.resource.kind} {p.resource.name}" for p in pods) or "no workload in the input"


_NODEPORT = """\
apiVersion: v1
kind: Service
metadata: {name: admin-ui, namespace: shop}
spec:
  type: NodePort
  selector: {app: admin-ui}
  ports:
  - {port: 80, targetPort: 8080, nodePort: 30080}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: admin-ui, namespace: shop}
spec:
  selector: {matchLabels: {app: admin-ui}}
  template:
    metadata: {labels: {app: admin-ui}}
    spec:
      containers: [{name: ui, image: example/admin-ui:1.0}]
"""
_CLUSTERIP = _NODEPORT.replace("type: NodePort", "type: ClusterIP").replace(", nodePort: 30080", "")
_HOSTNET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: exporter}}
  template:
    metadata: {labels: {app: exporter}}
    spec:
      hostNetwork: true
      containers:
      - name: exporter
        image: example/exporter:1.0
        ports: [{containerPort: 9100}]
"""


@control(
    id="KH-NODE-020",
    title="Service or pod opens ports on the nodes",
    section=Section.NODE,
    guidance=("NSA-NODE-2",),
    severity=Severity.MEDIUM,
    kinds=("Service", *WORKLOADS),
    what="A NodePort Service (or a LoadBalancer allocating node ports) opens a port on every node, named with the "
    "workloads behind it and its externalTrafficPolicy; a pod with hostNetwork listens on the node's "
    "address for each container port, one with hostPort on that port.",
    why="The guidance limits worker inbound ports to the kubelet (from the control plane) and the NodePort range "
    "where needed: each node port is reachable by whoever reaches the nodes, bypassing Ingress TLS and "
    "NetworkPolicies written for pod traffic. externalTrafficPolicy: Cluster forwards from every node and hides "
    "the client address.",
    fix="Use ClusterIP behind an Ingress or Gateway, or a LoadBalancer with allocateLoadBalancerNodePorts: false "
    "and loadBalancerSourceRanges; drop hostNetwork/hostPort; firewall the NodePort range (30000-32767) to the "
    "load balancers' addresses.",
    examples=(Example(True, _NODEPORT), Example(True, _HOSTNET), Example(False, _CLUSTERIP)),
)
def node_ports(ctx: Context) -> Iterator[Violation]:
    for exposure in exposures(ctx.inventory):
        svc, spec = exposure.service, as_dict(exposure.service.obj.get("spec"))
        if exposure.kind == "Ingress" or (exposure.kind == "LoadBalancer"
                                          and spec.get("allocateLoadBalancerNodePorts") is False):
            continue
        ports = [str(as_dict(p).get("nodePort") or "allocated") for p in as_list(spec.get("ports"))]
        policy = spec.get("externalTrafficPolicy") or "Cluster"
        severity = Severity.LOW if exposure.kind == "LoadBalancer" else None
        yield Violation(svc, ("spec", "type"), f"{exposure.kind} Service '{svc.name}' opens node port(s) "
                        f"{', '.join(ports) or 'allocated'} on every node to {_workload_names(exposure.workloads)} "
                        f"(externalTrafficPolicy {policy})", exposure.kind, has_value=True, severity=severity,
                        evidence={"workloads": [p.resource.ref() for p in exposure.workloads],
                                  "externalTrafficPolicy": policy})
    for pod in ctx.pod_specs():
        host_network = pod.spec.get("hostNetwork") is True
        for c in pod.containers():
            for i, port in enumerate(as_list(c.obj.get("ports"))):
                port = as_dict(port)
                host_port = port.get("hostPort")
                if host_port:
                    yield c.violation(("ports", i, "hostPort"), f"container '{c.name}' listens on node port "
                                      f"{host_port} (hostPort)", host_port, severity=Severity.LOW)
                elif host_network and port.get("containerPort"):
                    yield c.violation(("ports", i, "containerPort"), f"container '{c.name}' listens on the node's "
                                      f"address, port {port['containerPort']} (hostNetwork)", port["containerPort"],
                                      severity=Severity.LOW)


# ---------------------------------------------------------------------------------------------
# Placement


def sensitive_reasons(ctx: Context, pod: PodSpecView) -> list[str]:
    reasons = []
    if any(c.security_context.get("privileged") is True for c in pod.containers()):
        reasons.append("privileged container")
    if pod.spec.get("hostNetwork") is True or pod.spec.get("hostPID") is True:
        reasons.append("host namespaces")
    if any(isinstance(v, dict) and "hostPath" in v for v in as_list(pod.spec.get("volumes"))):
        reasons.append("hostPath volume")
    sa = str(pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default")
    namespace = resource_namespace(pod.resource)
    user = UserInfo.for_name(f"system:serviceaccount:{namespace}:{sa}")
    if pod.spec.get("automountServiceAccountToken") is not False and model_for(ctx.inventory).can(
            user, Request("list", "secrets", namespace=namespace)):
        reasons.append(f"ServiceAccount {sa} can read Secrets")
    return reasons


def _eligible(pod: PodSpecView, nodes: list[Resource]) -> set[str]:
    daemon = pod.resource.kind == "DaemonSet"
    return {n.name for n in nodes if selects_node(pod.spec, n.obj) and not untolerated(pod.spec, n.obj, daemon)}


_PLACEMENT_NODES = """\
apiVersion: v1
kind: Node
metadata: {name: edge-1, labels: {pool: edge}}
spec:
  taints: [{key: pool, value: edge, effect: NoSchedule}]
---
apiVersion: v1
kind: Node
metadata: {name: core-1, labels: {pool: core}}
---
"""
_SENSITIVE = """\
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: vault, namespace: shop}
spec:
  selector: {matchLabels: {app: vault}}
  serviceName: vault
  template:
    metadata: {labels: {app: vault}}
    spec:
      nodeSelector: {pool: core}
      containers:
      - {name: vault, image: example/vault:1.0, securityContext: {privileged: true}}
"""
_FRONT_PINNED = _NODEPORT.replace(
    "      containers: [{name: ui, image: example/admin-ui:1.0}]",
    "      nodeSelector: {pool: edge}\n"
    "      tolerations: [{key: pool, operator: Equal, value: edge, effect: NoSchedule}]\n"
    "      containers: [{name: ui, image: example/admin-ui:1.0}]")


@control(
    id="KH-NODE-021",
    title="Internet-facing workload can share nodes with sensitive workloads",
    section=Section.NODE,
    guidance=("NSA-NODE-3",),
    severity=Severity.MEDIUM,
    kinds=("Node",),
    needs="Nodes (snapshot, live scan, or Node objects with --as-cluster), Services/Ingresses and workloads",
    what="A workload behind a LoadBalancer or NodePort Service or an Ingress can be scheduled on a node where a "
    "sensitive workload (privileged, host namespaces, hostPath, or a ServiceAccount that can read Secrets) can "
    "run too: no taints/tolerations, nodeSelector or required node affinity keep them on different nodes.",
    why="An Internet-facing container is the likeliest to be compromised; on a node shared with a privileged or "
    "Secret-reading pod, one escape reaches the most valuable target.",
    fix="Put external-facing workloads on a dedicated node pool: taint it (pool=edge:NoSchedule), give those "
    "workloads the toleration and a nodeSelector/affinity for it, and keep sensitive workloads off it.",
    examples=(Example(True, _PLACEMENT_NODES + _NODEPORT + _SENSITIVE.replace("      nodeSelector: {pool: core}\n",
                                                                              "")),
              Example(False, _PLACEMENT_NODES + _FRONT_PINNED + _SENSITIVE)),
)
def external_placement(ctx: Context) -> Iterator[Violation]:
    nodes = ctx.inventory.of_kind("Node")
    facing = {id(p): p for e in exposures(ctx.inventory) for p in e.workloads}
    if not facing:
        raise NotAssessed("no workload behind a LoadBalancer/NodePort Service or an Ingress in the input")
    sensitive = [(p, r) for p in ctx.pod_specs() if id(p) not in facing for r in [sensitive_reasons(ctx, p)] if r]
    for pod in facing.values():
        shared_with = []
        for other, reasons in sensitive:
            common = _eligible(pod, nodes) & _eligible(other, nodes)
            if common:
                shared_with.append(f"{other.resource.kind} {other.resource.name} ({', '.join(reasons)}) on "
                                   f"{', '.join(sorted(common)[:3])}{' ...' if len(common) > 3 else ''}")
        if shared_with:
            yield pod.spec_violation(("nodeSelector",), f"Internet-facing {pod.resource.kind} '{pod.resource.name}' "
                                     f"can run on the same nodes as {'; '.join(shared_with)}",
                                     evidence={"shared_with": shared_with})
