"""One index over every resource of a scan, so controls can look across resources."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from kubeharden.model import Path, Resource, Severity, Violation

_T = TypeVar("_T")

# Where each workload kind keeps its pod template: (path to template metadata, path to pod spec).
POD_SPEC_PATHS: dict[str, tuple[Path, Path]] = {
    "Pod": (("metadata",), ("spec",)),
    "PodTemplate": (("template", "metadata"), ("template", "spec")),
    "Deployment": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "ReplicaSet": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "StatefulSet": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "DaemonSet": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "Job": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "ReplicationController": (("spec", "template", "metadata"), ("spec", "template", "spec")),
    "CronJob": (
        ("spec", "jobTemplate", "spec", "template", "metadata"),
        ("spec", "jobTemplate", "spec", "template", "spec"),
    ),
}
WORKLOAD_KINDS = frozenset(POD_SPEC_PATHS)
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")  # the admission library's visit order

# Kinds that are not namespaced (others default to the namespace they are applied to).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
        "CustomResourceDefinition", "StorageClass", "PriorityClass", "RuntimeClass",
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
        "PodSecurityPolicy", "CSIDriver", "CSINode", "VolumeAttachment", "IngressClass",
        "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CertificateSigningRequest",
        "GatewayClass", "ComponentStatus", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
        "FlowSchema", "PriorityLevelConfiguration", "ClusterTrustBundle",
        "CiliumClusterwideNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy",
        "Dockerfile", "ImageConfig", "ImageScan",  # kubeharden's image evidence (kubeharden.images)
    }
)


def is_cluster_scoped(kind: str) -> bool:
    """Built-in cluster-scoped kinds, and custom ones named Cluster* by convention (ClusterIssuer,
    ClusterPolicy, ClusterSecretStore): objects that land in no namespace."""
    return kind in CLUSTER_SCOPED_KINDS or (kind.startswith("Cluster") and kind[7:8].isupper())


def get_path(obj: Any, path: Path) -> Any:
    for item in path:
        if isinstance(item, int):
            if not isinstance(obj, list) or not -len(obj) <= item < len(obj):
                return None
            obj = obj[item]
        else:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(item)
    return obj


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(slots=True)
class ContainerView:
    """One container, init container or ephemeral container of a pod spec."""

    pod: PodSpecView
    field: str  # "containers", "initContainers" or "ephemeralContainers"
    index: int
    obj: dict[str, Any]
    path: Path  # full path from the resource root

    @property
    def name(self) -> str:
        return str(self.obj.get("name") or f"{self.field}[{self.index}]")

    @property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.obj.get("securityContext"))

    def violation(self, rel: Path, message: str, value: Any = None, **kwargs: Any) -> Violation:
        """A violation at ``rel`` inside this container."""
        return self.pod.resource_violation((*self.path, *rel), message, value, **kwargs)


@dataclass(slots=True)
class PodSpecView:
    """The pod spec of a Pod or of any workload's pod template, with its paths."""

    resource: Resource
    spec: dict[str, Any]
    path: Path  # path of the pod spec from the resource root
    metadata: dict[str, Any]  # the pod's metadata (template metadata for workloads)
    metadata_path: Path

    @property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.spec.get("securityContext"))

    @property
    def annotations(self) -> dict[str, Any]:
        return as_dict(self.metadata.get("annotations"))

    @property
    def labels(self) -> dict[str, Any]:
        return as_dict(self.metadata.get("labels"))

    @property
    def namespace(self) -> str | None:
        return self.resource.namespace

    def containers(self, fields: Iterable[str] = CONTAINER_FIELDS) -> Iterator[ContainerView]:
        for name in fields:
            for i, container in enumerate(as_list(self.spec.get(name))):
                if isinstance(container, dict):
                    yield ContainerView(self, name, i, container, (*self.path, name, i))

    def spec_violation(self, rel: Path, message: str, value: Any = None, **kwargs: Any) -> Violation:
        """A violation at ``rel`` inside the pod spec."""
        return self.resource_violation((*self.path, *rel), message, value, **kwargs)

    def resource_violation(
        self,
        path: Path,
        message: str,
        value: Any = None,
        *,
        has_value: bool | None = None,
        severity: Severity | None = None,
        remediation: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Violation:
        return Violation(
            self.resource,
            path,
            message,
            value,
            has_value=value is not None if has_value is None else has_value,
            severity=severity,
            remediation=remediation,
            evidence=evidence or {},
        )


def pod_spec_of(resource: Resource) -> PodSpecView | None:
    paths = POD_SPEC_PATHS.get(resource.kind)
    if paths is None:
        return None
    spec = get_path(resource.obj, paths[1])
    if not isinstance(spec, dict):
        return None
    return PodSpecView(resource, spec, paths[1], as_dict(get_path(resource.obj, paths[0])), paths[0])


@dataclass
class Inventory:
    """Every resource of a scan, indexed; ``facts`` carries evidence that is not a resource
    (server version, forbidden kinds, node files...), keyed by the module that provides it."""

    resources: list[Resource]
    facts: dict[str, Any] = field(default_factory=dict)
    _analyses: dict[Callable[..., Any], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def analysis(self, build: Callable[[Inventory], _T]) -> _T:
        """``build(self)``, computed once: the network model, RBAC model, node evidence... are
        shared by every control of a scan and live exactly as long as the inventory."""
        try:
            return self._analyses[build]
        except KeyError:
            value = self._analyses[build] = build(self)
            return value

    @cached_property
    def _by_kind(self) -> dict[str, list[Resource]]:
        index: dict[str, list[Resource]] = defaultdict(list)
        for res in self.resources:
            index[res.kind].append(res)
        return dict(index)

    @cached_property
    def _by_key(self) -> dict[tuple[str, str | None, str], Resource]:
        return {(r.kind, r.namespace, r.name): r for r in self.resources}

    @cached_property
    def _by_uid(self) -> dict[str, Resource]:
        out = {}
        for res in self.resources:
            uid = res.metadata.get("uid")
            if uid:
                out[str(uid)] = res
        return out

    @cached_property
    def _by_label(self) -> dict[tuple[str, str], list[Resource]]:
        index: dict[tuple[str, str], list[Resource]] = defaultdict(list)
        for res in self.resources:
            for key, value in res.labels.items():
                index[(str(key), str(value))].append(res)
        return dict(index)

    def with_labels(self, labels: dict[str, str], *kinds: str) -> list[Resource]:
        """Resources carrying every given label (of the given kinds, if any)."""
        if not labels:
            return list(self.of_kind(*kinds)) if kinds else list(self.resources)
        candidates: list[Resource] | None = None
        for key, value in labels.items():
            found = self._by_label.get((str(key), str(value)), [])
            candidates = found if candidates is None else [r for r in candidates if r in found]
        wanted = set(kinds)
        return [r for r in candidates or [] if not wanted or r.kind in wanted]

    def owned_by(self, owner: Resource) -> list[Resource]:
        """Resources whose ownerReferences name ``owner`` (by uid)."""
        uid = owner.metadata.get("uid")
        if not uid:
            return []
        return [r for r in self.resources
                if any(isinstance(ref, dict) and ref.get("uid") == uid
                       for ref in as_list(r.metadata.get("ownerReferences")))]

    def of_kind(self, *kinds: str) -> list[Resource]:
        if len(kinds) == 1:
            return self._by_kind.get(kinds[0], [])
        return [r for k in kinds for r in self._by_kind.get(k, [])]

    def has_kind(self, *kinds: str) -> bool:
        return any(k in self._by_kind for k in kinds)

    def get(self, kind: str, namespace: str | None, name: str) -> Resource | None:
        return self._by_key.get((kind, namespace, name))

    def namespaces(self) -> set[str]:
        """Namespaces the input speaks of: Namespace objects and namespaces of namespaced objects."""
        names = {r.name for r in self.of_kind("Namespace")}
        names.update(r.namespace for r in self.resources if r.namespace)
        return names

    def controller_of(self, resource: Resource) -> Resource | None:
        """The owning controller present in the input (ownerReferences with controller: true)."""
        for ref in as_list(resource.metadata.get("ownerReferences")):
            if isinstance(ref, dict) and ref.get("controller") and ref.get("uid"):
                owner = self._by_uid.get(str(ref["uid"]))
                if owner is not None:
                    return owner
        return None

    @cached_property
    def _pod_specs(self) -> list[PodSpecView]:
        out = []
        for kind in POD_SPEC_PATHS:
            for res in self._by_kind.get(kind, []):
                # Pods and ReplicaSets made by a controller that is itself in the input are
                # judged on the controller: one finding per template, not per replica.
                if self.controller_of(res) is not None:
                    continue
                view = pod_spec_of(res)
                if view is not None:
                    out.append(view)
        return out

    def pod_specs(self) -> list[PodSpecView]:
        return self._pod_specs


def service_account_name(pod: PodSpecView) -> str:
    """The ServiceAccount a pod runs as (``serviceAccount`` is the deprecated alias)."""
    name = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount")
    return str(name) if name else "default"


@dataclass(frozen=True, slots=True)
class TokenMount:
    mounted: bool
    decided_by: str  # "pod", "serviceaccount" or "default"
    service_account: str
    service_account_known: bool  # the ServiceAccount object is part of the input


def token_automount(pod: PodSpecView, inventory: Inventory) -> TokenMount:
    """Whether the API token is mounted: the pod's automountServiceAccountToken wins over the
    ServiceAccount's; when neither is set, Kubernetes mounts it."""
    sa_name = service_account_name(pod)
    sa = inventory.get("ServiceAccount", pod.namespace, sa_name)
    pod_value = pod.spec.get("automountServiceAccountToken")
    if isinstance(pod_value, bool):
        return TokenMount(pod_value, "pod", sa_name, sa is not None)
    if sa is not None:
        sa_value = sa.obj.get("automountServiceAccountToken")
        if isinstance(sa_value, bool):
            return TokenMount(sa_value, "serviceaccount", sa_name, True)
    return TokenMount(True, "default", sa_name, sa is not None)
