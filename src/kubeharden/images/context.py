"""What makes a vulnerable container matter more: it is privileged, runs as root, mounts the token of a
ServiceAccount with risky permissions, or is reachable from outside (a LoadBalancer or NodePort Service
selects it, an Ingress routes to such a Service, a hostPort or hostNetwork). Pure functions over the
inventory; the joins scanners do not make."""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeharden.controls.pod_common import effective, is_int
from kubeharden.inventory import (
    ContainerView,
    Inventory,
    PodSpecView,
    as_dict,
    as_list,
    service_account_name,
    token_automount,
)
from kubeharden.rbac.engine import UserInfo, model_for
from kubeharden.rbac.risks import BROAD_SUBJECT, RiskAnalysis

# Capabilities the Pod Security Standards baseline allows; any other added one elevates the container.
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# Weights of the priority score (severity counts 10 per level).
WEIGHTS = {"exposed": 6, "privileged": 5, "risky_token": 3, "root": 3}


@dataclass
class ContainerContext:
    reasons: dict[str, str] = field(default_factory=dict)  # kind -> human wording

    @property
    def bump(self) -> int:
        """Severity levels a vulnerability is raised by: reachable, and able to do harm once taken."""
        return int("exposed" in self.reasons) + int(bool({"privileged", "risky_token"} & set(self.reasons)))

    def score(self) -> int:
        return sum(WEIGHTS[k] for k in self.reasons)


def _exposing_services(inventory: Inventory, pod: PodSpecView) -> list[str]:
    out = []
    labels = {str(k): str(v) for k, v in pod.labels.items()}
    ingress_backends: set[tuple[str | None, str]] = set()
    for ing in inventory.of_kind("Ingress"):
        spec = as_dict(ing.obj.get("spec"))
        backends = [as_dict(spec.get("defaultBackend"))]
        for rule in as_list(spec.get("rules")):
            for path in as_list(as_dict(as_dict(rule).get("http")).get("paths")):
                backends.append(as_dict(as_dict(path).get("backend")))
        for backend in backends:
            name = as_dict(backend.get("service")).get("name") or backend.get("serviceName")
            if name:
                ingress_backends.add((ing.namespace, str(name)))
    for svc in inventory.of_kind("Service"):
        if svc.namespace != pod.namespace:
            continue
        spec = as_dict(svc.obj.get("spec"))
        selector = as_dict(spec.get("selector"))
        if not selector or any(labels.get(str(k)) != str(v) for k, v in selector.items()):
            continue
        kind = spec.get("type") or "ClusterIP"
        if kind in ("LoadBalancer", "NodePort"):
            out.append(f"Service {svc.name} ({kind})")
        if (svc.namespace, svc.name) in ingress_backends:
            out.append(f"Ingress backend Service {svc.name}")
    return out


def _risky_token(inventory: Inventory, pod: PodSpecView) -> str | None:
    if not token_automount(pod, inventory).mounted or not inventory.has_kind("RoleBinding", "ClusterRoleBinding"):
        return None
    analysis = inventory.analysis(_rbac_analysis)
    model = model_for(inventory)
    sa = service_account_name(pod)
    user = UserInfo.for_name(f"system:serviceaccount:{pod.namespace or 'default'}:{sa}")
    risky = [r for r in analysis.risky_grants(model.permissions(user)) if r.kind is not BROAD_SUBJECT]
    if not risky:
        return None
    return f"mounts the token of ServiceAccount {sa} ({', '.join(sorted({r.kind.title for r in risky}))})"


def _rbac_analysis(inventory: Inventory) -> RiskAnalysis:
    return RiskAnalysis(model_for(inventory))


def container_context(inventory: Inventory, c: ContainerView, image_root: bool | None) -> ContainerContext:
    """image_root: the image's default user is root (True), non-root (False) or unknown (None)."""
    ctx = ContainerContext()
    sc = c.security_context
    added = {str(x).upper() for x in as_list(as_dict(sc.get("capabilities")).get("add"))}
    extra = sorted(added - BASELINE_CAPABILITIES)
    if sc.get("privileged") is True:
        ctx.reasons["privileged"] = "privileged"
    elif extra:
        ctx.reasons["privileged"] = f"adds capabilities {', '.join(extra)}"
    user, _ = effective(c, "runAsUser")
    non_root, _ = effective(c, "runAsNonRoot")
    if is_int(user) and user == 0:
        ctx.reasons["root"] = "runs as UID 0"
    elif not (is_int(user) and user > 0) and non_root is not True and image_root is not False:
        ctx.reasons["root"] = "may run as root (no runAsNonRoot/runAsUser" + (
            ", image user root)" if image_root else ")")
    token = _risky_token(inventory, c.pod)
    if token:
        ctx.reasons["risky_token"] = token
    exposed = _exposing_services(inventory, c.pod)
    if any(isinstance(p, dict) and p.get("hostPort") for p in as_list(c.obj.get("ports"))):
        exposed.append("hostPort")
    if c.pod.spec.get("hostNetwork") is True:
        exposed.append("hostNetwork")
    if exposed:
        ctx.reasons["exposed"] = "reachable through " + ", ".join(exposed)
    return ctx
