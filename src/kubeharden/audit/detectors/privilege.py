"""Privilege changes: RBAC, bindings to anonymous, impersonation, admission configuration
(guidance §3.2 D08, D09, D12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from kubeharden.audit.detectors import AuditExample, detector, route
from kubeharden.audit.detectors._events import event
from kubeharden.audit.detectors.pods import _where
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.podspecs import sparse_from_json_patch
from kubeharden.audit.runner import DetectorContext
from kubeharden.inventory import as_dict, as_list
from kubeharden.model import Path, Severity, Violation
from kubeharden.nodeconf.auditpolicy import RequestKind

RBAC = "rbac.authorization.k8s.io"
RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
BINDINGS = frozenset({"rolebindings", "clusterrolebindings"})
WRITES = ("create", "update", "patch")
ANONYMOUS_SUBJECTS = {("User", "system:anonymous"), ("Group", "system:unauthenticated")}
TRIVIAL_ROLES = frozenset({"system:basic-user", "system:discovery", "system:public-info-viewer"})
POWERFUL_ROLES = frozenset({"cluster-admin", "admin", "edit"})
RISKY_VERBS = frozenset({"*", "escalate", "bind", "impersonate"})
RISKY_RESOURCES = frozenset({"*", "secrets", "pods/exec", "pods/attach", "nodes/proxy", "serviceaccounts/token"})
RBAC_NEEDS = tuple(RequestKind(RBAC, r, verbs=(*WRITES, "delete")) for r in sorted(RBAC_RESOURCES))


def body_of(event: AuditEvent) -> tuple[dict[str, Any], Path]:
    """The object (or patch) the request carries, JSON patches laid out as a sparse object; the
    responseObject when the request body was not logged."""
    request = event.request_object
    if isinstance(request, list):
        sparse, _, _ = sparse_from_json_patch(request)
        return sparse, ("requestObject",)
    if isinstance(request, dict):
        return request, ("requestObject",)
    response = event.response_object
    if isinstance(response, dict):
        return response, ("responseObject",)
    return {}, ()


def _binding(name: str, subjects: list[dict[str, str]], role: str = "view", kind: str = "ClusterRoleBinding") -> dict:
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}, "subjects": subjects}


@detector(
    id="D08", title="Anonymous or unauthenticated users granted a role", guidance=("NSA-LOG-15", "NSA-RBAC-2"),
    routes=(route(WRITES, BINDINGS),),
    severity=Severity.CRITICAL, min_level="Request", resources=BINDINGS, needs=RBAC_NEEDS,
    what="A RoleBinding or ClusterRoleBinding create, update or patch succeeded with subject system:anonymous or "
    "group system:unauthenticated (critical), or group system:authenticated bound to a role other than the "
    "discovery roles (high).",
    why="Guidance §3.1 alert 'an anonymous account gaining privileges': anyone who can reach the API server "
    "then holds the role.",
    response="Delete the binding now, find who created it (user, source address) and treat that identity as "
    "compromised.",
    examples=(
        AuditExample(True, (event("create", "clusterrolebindings", group=RBAC, name="x", namespace=None,
                                  body=_binding("x", [{"kind": "User", "apiGroup": RBAC, "name": "system:anonymous"}],
                                                "cluster-admin")),),),
        AuditExample(False, (event("create", "clusterrolebindings", group=RBAC, name="x", namespace=None,
                                   body=_binding("x", [{"kind": "Group", "apiGroup": RBAC,
                                                        "name": "system:authenticated"}], "system:discovery")),),),
    ),
)
def d08_anonymous_binding(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in WRITES or event.resource not in BINDINGS or event.api_group != RBAC or not event.succeeded:
        return
    body, base = body_of(event)
    role = str(as_dict(body.get("roleRef")).get("name") or "")
    for i, subject in enumerate(as_list(body.get("subjects"))):
        subject = as_dict(subject)
        key = (str(subject.get("kind") or ""), str(subject.get("name") or ""))
        path = (*base, "subjects", i, "name") if base != ("requestObject",) or not isinstance(
            event.request_object, list) else ("requestObject",)
        if key in ANONYMOUS_SUBJECTS:
            yield Violation(None, path, f"{key[1]} bound to {role or 'a role'} ({_where(event)})", key[1],
                            has_value=True)
        elif key == ("Group", "system:authenticated") and role and role not in TRIVIAL_ROLES:
            yield Violation(None, path, f"every authenticated user bound to {role} ({_where(event)})", key[1],
                            has_value=True, severity=Severity.HIGH)


def _risky_rules(body: dict[str, Any]) -> list[str]:
    out = []
    for rule in as_list(body.get("rules")):
        rule = as_dict(rule)
        verbs = {str(v) for v in as_list(rule.get("verbs"))}
        resources = {str(r) for r in as_list(rule.get("resources"))}
        hits = sorted(verbs & RISKY_VERBS) + sorted(resources & RISKY_RESOURCES)
        out += hits
    return sorted(set(out))


@detector(
    id="D09", title="RBAC or privilege change", guidance=("NSA-LOG-15", "NSA-LOG-14", "NSA-RBAC-2"),
    routes=(route(facet="impersonated"), route((*WRITES, "delete"), RBAC_RESOURCES, ("",)),
            route(("create",), ("serviceaccounts",), ("token",))),
    severity=Severity.MEDIUM, min_level="Request",
    needs=(*RBAC_NEEDS, RequestKind("", "serviceaccounts", "token", ("create",))),
    what="A Role, ClusterRole, RoleBinding or ClusterRoleBinding was created, changed or deleted (high for "
    "cluster-admin/admin/edit or rules with *, escalate, bind, impersonate, secrets, pods/exec); a token was "
    "requested for a service account by someone other than a node or the control plane; a request used "
    "impersonation (high for system:masters or system:* identities).",
    why="Guidance §3.1 'protocols and permission changes' and v1.2 'privilege changes': RBAC changes are how an "
    "intruder keeps and widens access; the guidance asks to audit RBAC whenever it changes.",
    response="Review the change against the approved RBAC in version control; revert unexpected grants and "
    "rotate the credentials of the subjects that gained them.",
    examples=(
        AuditExample(True, (event("create", "clusterrolebindings", group=RBAC, name="ops", namespace=None,
                                  body=_binding("ops", [{"kind": "User", "apiGroup": RBAC, "name": "bob"}],
                                                "cluster-admin")),),),
        AuditExample(True, (event("get", "secrets", name="db", impersonate={
            "username": "system:admin", "groups": ["system:masters"]}),), "impersonating system:masters"),
        AuditExample(False, (event("update", "clusterroles", group=RBAC, name="admin", namespace=None,
                                   user="system:serviceaccount:kube-system:clusterrole-aggregation-controller",
                                   groups=("system:serviceaccounts", "system:authenticated"),
                                   body={"kind": "ClusterRole", "rules": [{"verbs": ["get"],
                                                                           "resources": ["pods"]}]}),),
                     "the aggregation controller"),
        AuditExample(False, (event("create", "serviceaccounts", name="web", subresource="token",
                                   user="system:node:worker-1", groups=("system:nodes", "system:authenticated")),),
                     "the kubelet requesting a pod's projected token"),
    ),
)
def d09_privilege_change(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    # every event can carry impersonation: the cheap tests first
    if event.impersonated is None and event.resource not in RBAC_RESOURCES and event.resource != "serviceaccounts":
        return
    if not event.succeeded or ctx.is_control_plane(event.user):
        return
    if event.impersonated is not None:
        target = str(event.impersonated.get("username") or "")
        groups = [str(g) for g in as_list(event.impersonated.get("groups"))]
        high = "system:masters" in groups or (target.startswith("system:") and not target.startswith(
            "system:serviceaccount:"))
        yield Violation(None, ("impersonatedUser", "username"), f"request made as {target}"
                        f"{' (groups ' + ', '.join(groups) + ')' if groups else ''} through impersonation "
                        f"({_where(event)})", target, has_value=True, severity=Severity.HIGH if high else None)
    if event.resource == "serviceaccounts" and event.subresource == "token" and event.verb == "create":
        if not ctx.is_node(event):
            yield Violation(None, (), f"token requested for service account {event.namespace}/{event.name} "
                            f"({_where(event)})")
        return
    if event.api_group != RBAC or event.resource not in RBAC_RESOURCES or event.subresource:
        return
    if event.verb not in (*WRITES, "delete"):
        return
    body, _ = body_of(event)
    role = str(as_dict(body.get("roleRef")).get("name") or "")
    risky = _risky_rules(body)
    reasons = []
    if role in POWERFUL_ROLES:
        reasons.append(f"role {role}")
    if risky:
        reasons.append("rules with " + ", ".join(risky))
    severity = Severity.HIGH if reasons else None
    deployer = bool(ctx.settings.deployers) and ctx.settings.deployers(event.user)
    if deployer and severity is None:
        severity = Severity.LOW
    detail = f": {'; '.join(reasons)}" if reasons else ""
    yield Violation(None, (), f"RBAC {event.verb} ({_where(event)}){detail}", severity=severity,
                    evidence={"roleRef": role or None, "riskyRules": risky})


ADMISSION = "admissionregistration.k8s.io"
ADMISSION_RESOURCES = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
                                 "validatingadmissionpolicies", "validatingadmissionpolicybindings",
                                 "mutatingadmissionpolicies", "mutatingadmissionpolicybindings"})
PSA_PREFIX = "pod-security.kubernetes.io/"


def _admission_fingerprint(body: dict[str, Any]) -> bytes:
    """The object without metadata and the caBundle cert-manager's cainjector keeps rotating."""
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("metadata", "caBundle", "status")}
        if isinstance(node, list):
            return [strip(x) for x in node]
        return node

    return orjson.dumps(strip(body), option=orjson.OPT_SORT_KEYS)


def _ignore_failure(body: Any) -> bool:
    text = orjson.dumps(body) if isinstance(body, dict | list) else b""
    return b'"failurePolicy":"Ignore"' in text


@detector(
    id="D12", title="Admission configuration changed", guidance=("NSA-LOG-15", "NSA-LOG-14", "NSA-POD-1"),
    routes=(route(("update", "patch"), ("namespaces",), ("",)),
            route((*WRITES, "delete"), (*ADMISSION_RESOURCES, "podsecuritypolicies"), ("",))),
    severity=Severity.HIGH, min_level="Request",
    resources=(*ADMISSION_RESOURCES, "namespaces", "podsecuritypolicies"),
    needs=(*(RequestKind(ADMISSION, r, verbs=(*WRITES, "delete")) for r in sorted(ADMISSION_RESOURCES)),
           RequestKind("", "namespaces", verbs=("update", "patch"))),
    what="A webhook configuration or admission policy (binding) was created, changed or deleted (critical for a "
    "delete or failurePolicy: Ignore; a caBundle-only rotation is not counted); a namespace's "
    "pod-security.kubernetes.io labels were changed (high when set to privileged or removed); a legacy "
    "PodSecurityPolicy changed.",
    why="Guidance v1.2 alert 'updates to admission controller configuration': weakening admission is how an "
    "intruder makes room for privileged pods.",
    response="Restore the admission configuration from version control; find out who changed it and what was "
    "admitted while it was weakened.",
    examples=(
        AuditExample(True, (event("delete", "validatingwebhookconfigurations", group=ADMISSION, name="gatekeeper",
                                  namespace=None),),),
        AuditExample(True, (event("patch", "namespaces", name="apps", namespace=None, body={"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}}),), "PSA enforce set to privileged"),
        AuditExample(False, (event("patch", "namespaces", name="apps", namespace=None, body={"metadata": {"labels": {
            "team": "web"}}}),), "an unrelated label"),
        AuditExample(False, (event("patch", "mutatingwebhookconfigurations", group=ADMISSION, name="cert-manager",
                                   namespace=None, body={"webhooks": [{"name": "webhook.cert-manager.io",
                                                                      "clientConfig": {"caBundle": "LS0t"}}]}),),
                     "a caBundle rotation"),
    ),
)
def d12_admission_change(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if not event.succeeded or ctx.is_control_plane(event.user) or event.subresource:
        return
    verb = event.verb
    if event.resource == "namespaces":
        if verb not in ("update", "patch"):
            return
        body, base = body_of(event)
        labels = as_dict(as_dict(body.get("metadata")).get("labels"))
        psa = {k: v for k, v in labels.items() if isinstance(k, str) and k.startswith(PSA_PREFIX)}
        key = ("namespaces", "", event.name)
        if verb == "update":
            previous = ctx.memory.get(key)
            ctx.memory.put(key, psa)
            if previous is None or previous == psa:
                if previous is None and psa.get(PSA_PREFIX + "enforce") == "privileged":
                    yield Violation(None, (*base, "metadata", "labels", PSA_PREFIX + "enforce"),
                                    f"namespace {event.name} enforces the privileged level ({_where(event)})",
                                    "privileged", has_value=True)
                return
            removed = sorted(set(previous) - set(psa))
            changed = {k: v for k, v in psa.items() if previous.get(k) != v}
        else:
            if not psa:
                return
            removed = sorted(k for k, v in psa.items() if v is None)
            changed = {k: v for k, v in psa.items() if v is not None}
        weakened = bool(removed) or any(v == "privileged" for v in changed.values())
        parts = [f"{k}={v}" for k, v in changed.items()] + [f"{k} removed" for k in removed]
        first = next(iter(changed), None) or (removed[0] if removed else "")
        yield Violation(None, (*base, "metadata", "labels", first), f"namespace {event.name} Pod Security labels "
                        f"changed: {', '.join(parts)} ({_where(event)})", changed.get(first),
                        has_value=first in changed, severity=Severity.HIGH if weakened else Severity.MEDIUM)
        return
    if verb not in (*WRITES, "delete"):
        return
    if event.resource == "podsecuritypolicies":
        yield Violation(None, (), f"PodSecurityPolicy {verb} ({_where(event)})")
        return
    if event.api_group != ADMISSION or event.resource not in ADMISSION_RESOURCES:
        return
    if verb == "delete":
        yield Violation(None, (), f"admission {event.kind} deleted ({_where(event)})", severity=Severity.CRITICAL)
        return
    body, _ = body_of(event)
    key = (event.resource, "", event.name)
    ignore = _ignore_failure(body)
    if verb == "patch":
        if not ignore and _only_ca_bundle(body):
            return  # cert-manager's cainjector and friends rotating the CA
    else:
        current = _admission_fingerprint(body)
        previous = ctx.memory.get(key)
        ctx.memory.put(key, current)
        if verb == "update" and previous == current:
            return
    yield Violation(None, (), f"admission {event.kind} {verb}"
                    f"{' with failurePolicy: Ignore' if ignore else ''} ({_where(event)})",
                    severity=Severity.CRITICAL if ignore else None)


def _only_ca_bundle(node: Any) -> bool:
    """A patch whose only values are caBundle (webhook names locate the entries; $setElementOrder
    and metadata such as resourceVersion carry no policy)."""
    if isinstance(node, dict):
        return all(k in ("caBundle", "name", "metadata") or k.startswith("$") or _only_ca_bundle(v)
                   for k, v in node.items() if k != "caBundle") and _has_ca(node)
    if isinstance(node, list):
        return all(_only_ca_bundle(x) for x in node)
    return False


def _has_ca(node: Any) -> bool:
    if isinstance(node, dict):
        return "caBundle" in node or any(_has_ca(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ca(x) for x in node)
    return False
