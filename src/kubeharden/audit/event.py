"""One audit event (audit.k8s.io/v1, v1beta1 field names normalised) and where it came from."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubeharden.model import Source

# objectRef.resource -> kind, for the resources detectors speak of (reports and exceptions use kinds)
RESOURCE_KINDS = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "jobs": "Job", "cronjobs": "CronJob", "replicationcontrollers": "ReplicationController",
    "podtemplates": "PodTemplate", "secrets": "Secret", "configmaps": "ConfigMap", "roles": "Role",
    "clusterroles": "ClusterRole", "rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding",
    "serviceaccounts": "ServiceAccount", "namespaces": "Namespace", "nodes": "Node",
    "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
    "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
    "validatingadmissionpolicies": "ValidatingAdmissionPolicy",
    "validatingadmissionpolicybindings": "ValidatingAdmissionPolicyBinding",
    "mutatingadmissionpolicies": "MutatingAdmissionPolicy",
    "mutatingadmissionpolicybindings": "MutatingAdmissionPolicyBinding",
    "podsecuritypolicies": "PodSecurityPolicy", "tokenreviews": "TokenReview", "services": "Service",
    "events": "Event", "leases": "Lease", "endpoints": "Endpoints", "endpointslices": "EndpointSlice",
}
WORKLOAD_RESOURCES = frozenset({
    "pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs",
    "replicationcontrollers", "podtemplates",
})
STAGE_COMPLETE = "ResponseComplete"
_NO_REF: dict[str, Any] = {}


def as_text(value: Any) -> str:
    """A field as the view reads it: strings as they are, absent as "", anything else made a string."""
    if type(value) is str:
        return value
    return "" if value is None or value == "" else str(value)


_text = as_text


def parse_time(text: Any) -> float | None:
    """RFC 3339 (as the API server writes, microseconds, 'Z') -> epoch seconds; None when unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def format_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


# The fields a detector reads, filled from the decoded dict on first use (see AuditEvent).
_VIEW_FIELDS = frozenset({"annotations", "api_group", "audit_id", "code", "groups", "impersonated", "level",
                          "name", "namespace", "object_ref", "resource", "stage", "subresource", "user",
                          "user_agent", "verb"})


class AuditEvent:
    """Fast accessors over the decoded event dict (no copy). Missing or mistyped fields read as empty.

    Building one costs three attribute stores: the runner routes most events on the dict alone and
    never reads a field, so the view is filled only when something reads one (the first read of
    any field fills them all, later reads are plain slot reads)."""

    __slots__ = ("_time", "annotations", "api_group", "audit_id", "code", "file", "groups", "impersonated",
                 "level", "line", "memo", "name", "namespace", "object_ref", "raw", "resource", "stage",
                 "subresource", "user", "user_agent", "verb")

    audit_id: str
    stage: str
    level: str
    verb: str
    user: str
    groups: tuple[str, ...] | list[str]
    impersonated: dict[str, Any] | None
    object_ref: dict[str, Any]
    resource: str
    subresource: str
    namespace: str
    name: str
    api_group: str
    code: int | None
    annotations: dict[str, Any]
    user_agent: str

    def __init__(self, raw: dict[str, Any], file: str = "", line: int | None = None) -> None:
        self.raw = raw
        self.file = file
        self.line = line
        self._time: float | bool | None = False
        self.memo: dict[str, Any] | None = None  # what detectors derive once per event (pod bodies)

    def __getattr__(self, name: str) -> Any:
        # only reached for a slot not yet set: fill the view once
        if name not in _VIEW_FIELDS:
            raise AttributeError(name)
        self._fill()
        return object.__getattribute__(self, name)

    def _fill(self) -> None:
        raw = self.raw
        get = raw.get
        # the API server writes strings; anything else (hostile or broken input) is made one
        v = get("auditID")
        self.audit_id = v if type(v) is str else _text(v)
        v = get("stage")
        self.stage = v if type(v) is str else _text(v)
        v = get("level")
        self.level = v if type(v) is str else _text(v)
        v = get("verb")
        self.verb = v if type(v) is str else _text(v)
        v = get("userAgent")
        self.user_agent = v if type(v) is str else _text(v)
        user = get("user")
        if type(user) is not dict:
            user = _NO_REF
        v = user.get("username")
        self.user = v if type(v) is str else _text(v)
        groups = user.get("groups")
        if type(groups) is list:
            for g in groups:
                if type(g) is not str:
                    groups = [str(g) for g in groups]
                    break
            self.groups = groups
        else:
            self.groups = [str(g) for g in groups] if isinstance(groups, list) else ()
        imp = get("impersonatedUser")
        self.impersonated = imp if type(imp) is dict and imp else None
        ref = get("objectRef")
        if type(ref) is not dict:
            ref = _NO_REF
        self.object_ref = ref
        rget = ref.get
        v = rget("resource")
        self.resource = v if type(v) is str else _text(v)
        v = rget("subresource")
        self.subresource = v if type(v) is str else _text(v)
        v = rget("namespace")
        self.namespace = v if type(v) is str else _text(v)
        v = rget("name")
        self.name = v if type(v) is str else _text(v)
        v = rget("apiGroup")
        self.api_group = v if type(v) is str else _text(v)
        status = get("responseStatus")
        code = status.get("code") if type(status) is dict else None
        self.code = code if type(code) is int else None
        ann = get("annotations")
        self.annotations = ann if type(ann) is dict else _NO_REF

    # --- derived -----------------------------------------------------------------------------

    @property
    def time(self) -> float | None:
        """When the request was received (v1beta1: ``timestamp`` / ``metadata.creationTimestamp``)."""
        if self._time is False:
            raw = self.raw
            text = raw.get("requestReceivedTimestamp") or raw.get("stageTimestamp") or raw.get("timestamp")
            if not text:
                meta = raw.get("metadata")
                text = meta.get("creationTimestamp") if isinstance(meta, dict) else None
            self._time = parse_time(text)
        return self._time

    @property
    def source_ips(self) -> list[str]:
        ips = self.raw.get("sourceIPs")
        return [str(ip) for ip in ips] if isinstance(ips, list) else []

    @property
    def source_ip(self) -> str:
        """The connection's address: the last entry (earlier ones come from client-set headers)."""
        ips = self.raw.get("sourceIPs")
        return str(ips[-1]) if isinstance(ips, list) and ips else ""

    @property
    def client_ip(self) -> str:
        """sourceIPs[0], as the guidance's rules use it (the origin as claimed through proxies)."""
        ips = self.raw.get("sourceIPs")
        return str(ips[0]) if isinstance(ips, list) and ips else ""

    @property
    def request_uri(self) -> str:
        return str(self.raw.get("requestURI") or "")

    @property
    def request_object(self) -> Any:
        return self.raw.get("requestObject")

    @property
    def response_object(self) -> Any:
        return self.raw.get("responseObject")

    @property
    def succeeded(self) -> bool:
        """2xx (101 for upgraded exec/attach streams); unknown code at an early stage counts as not yet."""
        code = self.code
        if code is None:
            return self.stage == "ResponseStarted"
        return 200 <= code < 300 or code == 101

    @property
    def denied(self) -> bool:
        return self.code in (401, 403) or self.annotations.get("authorization.k8s.io/decision") == "forbid"

    @property
    def effective_user(self) -> str:
        """The identity the request acted as: the impersonated user when there is one."""
        if self.impersonated is not None:
            return str(self.impersonated.get("username") or self.user)
        return self.user

    @property
    def kind(self) -> str:
        return RESOURCE_KINDS.get(self.resource, self.resource)

    def resource_ref(self) -> dict[str, Any] | None:
        """objectRef as a finding's resource (kind, namespace, name), for reports and exceptions."""
        if not self.resource:
            return None
        api_version = self.object_ref.get("apiVersion") or ""
        group = self.api_group
        return {
            "apiVersion": f"{group}/{api_version}" if group and api_version else str(api_version or group),
            "kind": self.kind + (f"/{self.subresource}" if self.subresource else ""),
            "namespace": self.namespace or None,
            "name": self.name,
        }

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def source(self) -> Source:
        return Source(self.file, self.line)
