"""Service-mesh encryption between services (guidance §1.6, NSA-ENC-3).

Istio: PeerAuthentication decides what a workload accepts (a workload policy — selector — over the
namespace's policy without selector over the mesh-wide policy in the root namespace, istio-system;
no policy at all means PERMISSIVE, plaintext accepted; UNSET inherits); DestinationRule
``tls.mode: DISABLE`` makes clients send plaintext. Linkerd: meshed pods use mTLS by default;
``linkerd.io/inject: disabled`` in an injected namespace and ``config.linkerd.io/skip-*-ports``
leave traffic out. Cilium: CiliumNetworkPolicy ``authentication.mode: required`` needs
``mesh-auth-enabled`` in cilium-config; WireGuard/IPsec encrypt node-to-node traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import WORKLOADS
from kubeharden.inventory import Inventory, PodSpecView, as_dict, as_list
from kubeharden.model import NotAssessed, Path, Resource, Section, Severity, Violation
from kubeharden.netpol import resource_namespace

ISTIO_ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace default
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", ISTIO_ROOT_NAMESPACE, "linkerd"})
WEAK_MODES = ("PERMISSIVE", "DISABLE")


@dataclass
class Mesh:
    istio: list[str] = field(default_factory=list)  # evidence that Istio runs
    linkerd: list[str] = field(default_factory=list)
    cilium: list[str] = field(default_factory=list)  # encryption or mutual auth enabled
    cilium_config: Resource | None = None

    @property
    def present(self) -> bool:
        return bool(self.istio or self.linkerd or self.cilium)


def _images(pod: PodSpecView) -> list[str]:
    return [str(c.obj.get("image") or "") for c in pod.containers()]


def mesh_of(inventory: Inventory) -> Mesh:
    return inventory.analysis(_mesh)


def _mesh(inventory: Inventory) -> Mesh:
    mesh = Mesh()
    for pod in inventory.pod_specs():
        for image in _images(pod):
            name = image.rsplit("/", 1)[-1]
            if name.startswith(("pilot:", "istiod:", "pilot@", "ztunnel:")):
                mesh.istio.append(f"{pod.resource.kind} {pod.resource.name} runs {image}")
            if "/linkerd/" in image and ("destination" in pod.resource.name or "identity" in pod.resource.name
                                         or "controller" in name):
                mesh.linkerd.append(f"{pod.resource.kind} {pod.resource.name} runs {image}")
    for res in inventory.of_kind("PeerAuthentication"):
        mesh.istio.append(f"PeerAuthentication {res.namespace}/{res.name}")
    for ns in inventory.of_kind("Namespace"):
        if ns.labels.get("istio-injection") == "enabled" or ns.labels.get("istio.io/rev") or ns.labels.get(
                "istio.io/dataplane-mode") == "ambient":
            mesh.istio.append(f"Namespace {ns.name} is in the Istio mesh")
        if ns.annotations.get("linkerd.io/inject") == "enabled":
            mesh.linkerd.append(f"Namespace {ns.name} has linkerd.io/inject: enabled")
    for cm in inventory.of_kind("ConfigMap"):
        if cm.name == "cilium-config":
            mesh.cilium_config = cm
            data = as_dict(cm.obj.get("data"))
            for key in ("enable-wireguard", "enable-ipsec", "mesh-auth-enabled"):
                if str(data.get(key)).lower() == "true":
                    mesh.cilium.append(f"cilium-config {key}: true")
    return mesh


def _mode(res: Resource) -> tuple[str, tuple[str, ...]]:
    mtls = as_dict(as_dict(res.obj.get("spec")).get("mtls"))
    return str(mtls.get("mode") or "UNSET").upper(), ("spec", "mtls", "mode")


def _peer_policies(inventory: Inventory) -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for res in inventory.of_kind("PeerAuthentication"):
        out.setdefault(resource_namespace(res), []).append(res)
    return out


def effective_mode(inventory: Inventory, namespace: str, labels: dict[str, str]) -> tuple[str, Resource | None]:
    """The mTLS mode a workload with ``labels`` in ``namespace`` accepts, and the policy deciding it."""
    policies = _peer_policies(inventory)

    def without_selector(ns: str) -> list[Resource]:
        return [p for p in policies.get(ns, []) if not as_dict(as_dict(p.obj.get("spec")).get("selector"))]

    workload = [p for p in policies.get(namespace, [])
                if (sel := as_dict(as_dict(as_dict(p.obj.get("spec")).get("selector")).get("matchLabels")))
                and all(labels.get(k) == v for k, v in sel.items())]
    for level in (workload, without_selector(namespace), without_selector(ISTIO_ROOT_NAMESPACE)):
        for policy in sorted(level, key=lambda p: p.name):  # the oldest wins in Istio; name order offline
            mode, _ = _mode(policy)
            if mode != "UNSET":
                return mode, policy
    return "PERMISSIVE", None


def _meshed_namespaces(inventory: Inventory) -> set[str]:
    return {ns.name for ns in inventory.of_kind("Namespace")
            if ns.labels.get("istio-injection") == "enabled" or ns.labels.get("istio.io/rev")
            or ns.labels.get("istio.io/dataplane-mode") == "ambient"}


_PA_PERMISSIVE = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: PERMISSIVE}
"""
_PA_STRICT = _PA_PERMISSIVE.replace("PERMISSIVE", "STRICT")
_DR_DISABLE = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: bookinfo}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: DISABLE}
"""
_LINKERD_SKIP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata:
      labels: {app: api}
      annotations:
        linkerd.io/inject: enabled
        config.linkerd.io/skip-inbound-ports: "8080"
    spec:
      containers: [{name: api, image: example/api:1.0}]
"""


@control(
    id="KH-NET-040",
    title="Service mesh accepts or sends plaintext between services",
    section=Section.NETWORK,
    guidance=("NSA-ENC-3",),
    severity=Severity.MEDIUM,
    kinds=("PeerAuthentication", "DestinationRule", "Namespace", "CiliumNetworkPolicy", *WORKLOADS),
    what="Istio: a PeerAuthentication (mesh-wide in istio-system, namespace-wide, or for a workload, also per port) "
    "in PERMISSIVE or DISABLE mode, a meshed namespace whose effective mode is PERMISSIVE because no policy says "
    "STRICT, a DestinationRule with tls.mode DISABLE; Linkerd: a workload with linkerd.io/inject: disabled in an "
    "injected namespace or with config.linkerd.io/skip-inbound-ports / skip-outbound-ports; Cilium: a policy "
    "requiring mutual authentication while cilium-config does not enable it.",
    why="A mesh that still accepts plaintext gives the look of encryption without its protection: any pod (or "
    "attacker on the network) can talk to the service unauthenticated and read the traffic.",
    fix="Apply a mesh-wide PeerAuthentication `mtls: {mode: STRICT}` in istio-system (after migrating clients), "
    "remove PERMISSIVE/DISABLE exceptions and DestinationRule tls DISABLE; in Linkerd, mesh every workload "
    "and drop skip-ports annotations; set mesh-auth-enabled: true in cilium-config.",
    examples=(Example(True, _PA_PERMISSIVE), Example(True, _DR_DISABLE), Example(True, _LINKERD_SKIP),
              Example(False, _PA_STRICT)),
)
def mesh_plaintext(ctx: Context) -> Iterator[Violation]:
    inventory = ctx.inventory
    for res in inventory.of_kind("PeerAuthentication"):
        mode, path = _mode(res)
        scope = ("workload" if as_dict(as_dict(res.obj.get("spec")).get("selector")) else
                 "mesh-wide" if resource_namespace(res) == ISTIO_ROOT_NAMESPACE else "namespace-wide")
        if mode in WEAK_MODES:
            yield Violation(res, path, f"{scope} PeerAuthentication {resource_namespace(res)}/{res.name} is {mode}: "
                            "plaintext is accepted", mode, has_value=True)
        for port, setting in as_dict(as_dict(res.obj.get("spec")).get("portLevelMtls")).items():
            port_mode = str(as_dict(setting).get("mode") or "").upper()
            if port_mode in WEAK_MODES:
                yield Violation(res, ("spec", "portLevelMtls", port, "mode"), f"PeerAuthentication "
                                f"{resource_namespace(res)}/{res.name} accepts plaintext on port {port} ({port_mode})",
                                port_mode, has_value=True, severity=Severity.LOW)
    for res in inventory.of_kind("DestinationRule"):
        spec = as_dict(res.obj.get("spec"))
        policies: list[tuple[Path, dict[str, Any]]] = [(("spec", "trafficPolicy"), as_dict(spec.get("trafficPolicy")))]
        policies += [(("spec", "subsets", i, "trafficPolicy"), as_dict(as_dict(s).get("trafficPolicy")))
                     for i, s in enumerate(as_list(spec.get("subsets")))]
        for base, policy in list(policies):
            policies += [((*base, "portLevelSettings", i), as_dict(p))
                         for i, p in enumerate(as_list(policy.get("portLevelSettings")))]
        for base, policy in policies:
            if str(as_dict(policy.get("tls")).get("mode") or "").upper() == "DISABLE":
                yield Violation(res, (*base, "tls", "mode"), f"DestinationRule {resource_namespace(res)}/{res.name} "
                                f"sends plaintext to {spec.get('host')} (tls.mode DISABLE)", "DISABLE", has_value=True)
    if ctx.whole_cluster or inventory.of_kind("Namespace"):
        for ns in inventory.of_kind("Namespace"):
            if ns.name not in _meshed_namespaces(inventory):
                continue
            mode, decided_by = effective_mode(inventory, ns.name, {})
            if mode == "PERMISSIVE" and decided_by is None:
                yield Violation(ns, ("metadata", "labels"), f"namespace '{ns.name}' is in the Istio mesh but no "
                                "PeerAuthentication makes it STRICT (Istio's default is PERMISSIVE)")
    injected = {ns.name for ns in inventory.of_kind("Namespace")
                if ns.annotations.get("linkerd.io/inject") == "enabled"}
    for pod in ctx.pod_specs():
        annotations = pod.annotations
        inject = annotations.get("linkerd.io/inject")
        if inject == "disabled" and resource_namespace(pod.resource) in injected:
            yield pod.resource_violation((*pod.metadata_path, "annotations", "linkerd.io/inject"),
                                         f"{pod.resource.kind} '{pod.resource.name}' opts out of the Linkerd mesh in "
                                         "an injected namespace", inject)
        if inject == "enabled" or resource_namespace(pod.resource) in injected:
            for key in ("config.linkerd.io/skip-inbound-ports", "config.linkerd.io/skip-outbound-ports"):
                if annotations.get(key):
                    yield pod.resource_violation((*pod.metadata_path, "annotations", key),
                                                 f"{pod.resource.kind} '{pod.resource.name}' bypasses Linkerd mTLS on "
                                                 f"ports {annotations[key]} ({key})", annotations[key],
                                                 severity=Severity.LOW)
    mesh = mesh_of(inventory)
    auth_enabled = mesh.cilium_config is not None and str(
        as_dict(mesh.cilium_config.obj.get("data")).get("mesh-auth-enabled")).lower() == "true"
    for res in inventory.of_kind("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
        spec = as_dict(res.obj.get("spec"))
        for i, rule in enumerate(as_list(spec.get("ingress"))):
            if str(as_dict(as_dict(rule).get("authentication")).get("mode")) == "required" and not auth_enabled:
                yield Violation(res, ("spec", "ingress", i, "authentication", "mode"), f"{res.kind} {res.name} "
                                "requires mutual authentication but cilium-config does not set mesh-auth-enabled: "
                                "true (in the input)", "required", has_value=True)


_APP_NS = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""


@control(
    id="KH-NET-041",
    title="No service mesh or transparent encryption between pods",
    section=Section.NETWORK,
    guidance=("NSA-ENC-3",),
    severity=Severity.LOW,
    kinds=("Namespace",),
    what="Advisory: the cluster has no Istio, Linkerd or Cilium (WireGuard, IPsec or mutual auth) encryption, so "
    "pod-to-pod traffic of application namespaces is plaintext unless the applications use TLS themselves.",
    why="The guidance suggests a service mesh for mTLS between services, with certificate rotation and traffic "
    "logging, where sensitive data crosses the cluster network.",
    fix="Adopt a mesh with strict mTLS (Istio PeerAuthentication STRICT, Linkerd) or CNI transparent encryption "
    "(Cilium enable-wireguard), at least for namespaces handling sensitive data.",
    examples=(Example(True, _APP_NS), Example(False, _APP_NS + "---\n" + _PA_STRICT)),
)
def no_mesh(ctx: Context) -> Iterator[Violation]:
    if not ctx.whole_cluster:
        raise NotAssessed("whether a mesh runs is judged only for a whole cluster (--as-cluster, a snapshot or "
                          "--cluster)")
    if mesh_of(ctx.inventory).present:
        return
    for ns in ctx.inventory.of_kind("Namespace"):
        if ns.name not in SYSTEM_NAMESPACES:
            yield Violation(ns, ("metadata", "name"), f"namespace '{ns.name}': no service mesh or transparent "
                            "encryption protects its pod-to-pod traffic")
