"""The built-in resources of the Kubernetes API, as its discovery (`kubectl api-resources`) lists them.

Used to read a resource named on the command line as kubectl would: plural (``deployments``),
singular (``deployment``), short name (``deploy``) or kind (``Deployment``), case-insensitively.
Facts from the API server's REST storage (``ShortNames()``, ``NamespaceScoped()``) of Kubernetes
1.34; the RBAC-only names (``users``, ``groups``, ``signers`` ...) are resources that
authorization checks but that no list serves.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BuiltinResource:
    resource: str  # plural, as in RBAC rules
    singular: str
    short_names: tuple[str, ...]
    kind: str  # "" for names authorization knows but no API serves (users, signers ...)
    group: str  # "" is the core group
    namespaced: bool
    subresources: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """Every way kubectl accepts to name it (lower case)."""
        return tuple(dict.fromkeys(n.lower() for n in (self.resource, self.singular, *self.short_names, self.kind)
                                   if n))


def _r(resource: str, singular: str, short: str, kind: str, group: str, namespaced: bool,
       subresources: str = "") -> BuiltinResource:
    return BuiltinResource(resource, singular, tuple(short.split()), kind, group, namespaced,
                           tuple(subresources.split()))


_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"

BUILTIN_RESOURCES: tuple[BuiltinResource, ...] = (
    # core (v1)
    _r("bindings", "binding", "", "Binding", "", True),
    _r("componentstatuses", "componentstatus", "cs", "ComponentStatus", "", False),
    _r("configmaps", "configmap", "cm", "ConfigMap", "", True),
    _r("endpoints", "endpoints", "ep", "Endpoints", "", True),
    _r("events", "event", "ev", "Event", "", True),
    _r("limitranges", "limitrange", "limits", "LimitRange", "", True),
    _r("namespaces", "namespace", "ns", "Namespace", "", False, "finalize status"),
    _r("nodes", "node", "no", "Node", "", False,
       # the kubelet authorizes its API as these subresources
       "checkpoint configz healthz log metrics pods proxy spec stats status"),
    _r("persistentvolumeclaims", "persistentvolumeclaim", "pvc", "PersistentVolumeClaim", "", True, "status"),
    _r("persistentvolumes", "persistentvolume", "pv", "PersistentVolume", "", False, "status"),
    _r("pods", "pod", "po", "Pod", "", True,
       "attach binding ephemeralcontainers eviction exec log portforward proxy resize status"),
    _r("podtemplates", "podtemplate", "", "PodTemplate", "", True),
    _r("replicationcontrollers", "replicationcontroller", "rc", "ReplicationController", "", True, "scale status"),
    _r("resourcequotas", "resourcequota", "quota", "ResourceQuota", "", True, "status"),
    _r("secrets", "secret", "", "Secret", "", True),
    _r("serviceaccounts", "serviceaccount", "sa", "ServiceAccount", "", True, "token"),
    _r("services", "service", "svc", "Service", "", True, "proxy status"),
    # names only authorization knows: impersonation of users and groups
    _r("users", "user", "", "", "", False),
    _r("groups", "group", "", "", "", False),
    # admissionregistration.k8s.io
    _r("mutatingadmissionpolicies", "mutatingadmissionpolicy", "", "MutatingAdmissionPolicy", _ADMISSION, False),
    _r("mutatingadmissionpolicybindings", "mutatingadmissionpolicybinding", "", "MutatingAdmissionPolicyBinding",
       _ADMISSION, False),
    _r("mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "", "MutatingWebhookConfiguration",
       _ADMISSION, False),
    _r("validatingadmissionpolicies", "validatingadmissionpolicy", "", "ValidatingAdmissionPolicy", _ADMISSION,
       False, "status"),
    _r("validatingadmissionpolicybindings", "validatingadmissionpolicybinding", "",
       "ValidatingAdmissionPolicyBinding", _ADMISSION, False),
    _r("validatingwebhookconfigurations", "validatingwebhookconfiguration", "", "ValidatingWebhookConfiguration",
       _ADMISSION, False),
    # apiextensions.k8s.io, apiregistration.k8s.io
    _r("customresourcedefinitions", "customresourcedefinition", "crd crds", "CustomResourceDefinition",
       "apiextensions.k8s.io", False, "status"),
    _r("apiservices", "apiservice", "", "APIService", "apiregistration.k8s.io", False, "status"),
    # apps
    _r("controllerrevisions", "controllerrevision", "", "ControllerRevision", "apps", True),
    _r("daemonsets", "daemonset", "ds", "DaemonSet", "apps", True, "status"),
    _r("deployments", "deployment", "deploy", "Deployment", "apps", True, "scale status"),
    _r("replicasets", "replicaset", "rs", "ReplicaSet", "apps", True, "scale status"),
    _r("statefulsets", "statefulset", "sts", "StatefulSet", "apps", True, "scale status"),
    # authentication.k8s.io, authorization.k8s.io
    _r("selfsubjectreviews", "selfsubjectreview", "", "SelfSubjectReview", "authentication.k8s.io", False),
    _r("tokenreviews", "tokenreview", "", "TokenReview", "authentication.k8s.io", False),
    _r("userextras", "userextra", "", "", "authentication.k8s.io", False),
    _r("uids", "uid", "", "", "authentication.k8s.io", False),
    _r("localsubjectaccessreviews", "localsubjectaccessreview", "", "LocalSubjectAccessReview",
       "authorization.k8s.io", True),
    _r("selfsubjectaccessreviews", "selfsubjectaccessreview", "", "SelfSubjectAccessReview",
       "authorization.k8s.io", False),
    _r("selfsubjectrulesreviews", "selfsubjectrulesreview", "", "SelfSubjectRulesReview",
       "authorization.k8s.io", False),
    _r("subjectaccessreviews", "subjectaccessreview", "", "SubjectAccessReview", "authorization.k8s.io", False),
    # autoscaling, batch
    _r("horizontalpodautoscalers", "horizontalpodautoscaler", "hpa", "HorizontalPodAutoscaler", "autoscaling",
       True, "status"),
    _r("cronjobs", "cronjob", "cj", "CronJob", "batch", True, "status"),
    _r("jobs", "job", "", "Job", "batch", True, "status"),
    # certificates.k8s.io
    _r("certificatesigningrequests", "certificatesigningrequest", "csr", "CertificateSigningRequest",
       "certificates.k8s.io", False, "approval status"),
    _r("clustertrustbundles", "clustertrustbundle", "", "ClusterTrustBundle", "certificates.k8s.io", False),
    _r("signers", "signer", "", "", "certificates.k8s.io", False),
    # coordination.k8s.io, discovery.k8s.io, events.k8s.io
    _r("leases", "lease", "", "Lease", "coordination.k8s.io", True),
    _r("leasecandidates", "leasecandidate", "", "LeaseCandidate", "coordination.k8s.io", True),
    _r("endpointslices", "endpointslice", "", "EndpointSlice", "discovery.k8s.io", True),
    _r("events", "event", "ev", "Event", "events.k8s.io", True),
    # flowcontrol.apiserver.k8s.io
    _r("flowschemas", "flowschema", "", "FlowSchema", "flowcontrol.apiserver.k8s.io", False, "status"),
    _r("prioritylevelconfigurations", "prioritylevelconfiguration", "", "PriorityLevelConfiguration",
       "flowcontrol.apiserver.k8s.io", False, "status"),
    # networking.k8s.io
    _r("ingressclasses", "ingressclass", "", "IngressClass", "networking.k8s.io", False),
    _r("ingresses", "ingress", "ing", "Ingress", "networking.k8s.io", True, "status"),
    _r("ipaddresses", "ipaddress", "ip", "IPAddress", "networking.k8s.io", False),
    _r("networkpolicies", "networkpolicy", "netpol", "NetworkPolicy", "networking.k8s.io", True),
    _r("servicecidrs", "servicecidr", "", "ServiceCIDR", "networking.k8s.io", False, "status"),
    # node.k8s.io, policy, rbac.authorization.k8s.io
    _r("runtimeclasses", "runtimeclass", "", "RuntimeClass", "node.k8s.io", False),
    _r("poddisruptionbudgets", "poddisruptionbudget", "pdb", "PodDisruptionBudget", "policy", True, "status"),
    _r("clusterrolebindings", "clusterrolebinding", "", "ClusterRoleBinding", _RBAC, False),
    _r("clusterroles", "clusterrole", "", "ClusterRole", _RBAC, False),
    _r("rolebindings", "rolebinding", "", "RoleBinding", _RBAC, True),
    _r("roles", "role", "", "Role", _RBAC, True),
    # resource.k8s.io (dynamic resource allocation)
    _r("deviceclasses", "deviceclass", "", "DeviceClass", "resource.k8s.io", False),
    _r("resourceclaims", "resourceclaim", "", "ResourceClaim", "resource.k8s.io", True, "status"),
    _r("resourceclaimtemplates", "resourceclaimtemplate", "", "ResourceClaimTemplate", "resource.k8s.io", True),
    _r("resourceslices", "resourceslice", "", "ResourceSlice", "resource.k8s.io", False),
    # scheduling.k8s.io, storage.k8s.io
    _r("priorityclasses", "priorityclass", "pc", "PriorityClass", "scheduling.k8s.io", False),
    _r("csidrivers", "csidriver", "", "CSIDriver", "storage.k8s.io", False),
    _r("csinodes", "csinode", "", "CSINode", "storage.k8s.io", False),
    _r("csistoragecapacities", "csistoragecapacity", "", "CSIStorageCapacity", "storage.k8s.io", True),
    _r("storageclasses", "storageclass", "sc", "StorageClass", "storage.k8s.io", False),
    _r("volumeattachments", "volumeattachment", "", "VolumeAttachment", "storage.k8s.io", False, "status"),
    _r("volumeattributesclasses", "volumeattributesclass", "vac", "VolumeAttributesClass", "storage.k8s.io", False),
)

BUILTIN_GROUPS: frozenset[str] = frozenset(r.group for r in BUILTIN_RESOURCES)

# The verbs of the Kubernetes API and the special verbs authorization checks
# (impersonate, bind, escalate, approve, sign, attest, use).
KNOWN_VERBS: tuple[str, ...] = (
    "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy",
    "impersonate", "bind", "escalate", "approve", "sign", "attest", "use", "*",
)


def _by_name() -> dict[str, list[BuiltinResource]]:
    out: dict[str, list[BuiltinResource]] = {}
    for res in BUILTIN_RESOURCES:
        for name in res.names():
            out.setdefault(name, []).append(res)
    return out


_BY_NAME = _by_name()


def lookup(name: str, group: str | None = None) -> BuiltinResource | None:
    """The built-in resource a name means (in ``group`` when given). A name two groups share
    (``events``, ``ev``) is the core group's, as kubectl resolves it."""
    found = [r for r in _BY_NAME.get(name.lower(), ()) if group is None or r.group == group]
    if not found:
        return None
    return min(found, key=lambda r: (r.group != "", r.group))


def all_names() -> list[str]:
    return list(_BY_NAME)


def close_matches(word: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> list[str]:
    """The candidates a typo probably meant (difflib, case-insensitive)."""
    lowered = {c.lower(): c for c in candidates}
    return [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=0.7)]


def did_you_mean(matches: list[str]) -> str:
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
