"""Builders of realistic audit events for detector examples and tests (no detectors here)."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)
KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
ALICE = "alice@example.com"
HUMAN_GROUPS = ("developers", "system:authenticated")

_CREATED = {"create": 201}


def event(verb: str, resource: str, *, name: str = "web", namespace: str | None = "apps", group: str = "",
          version: str = "v1", subresource: str = "", user: str = ALICE, groups: tuple[str, ...] = HUMAN_GROUPS,
          code: int | None = None, body: Any = None, response: Any = None, level: str | None = None,
          stage: str = "ResponseComplete", ips: tuple[str, ...] = ("198.51.100.20",), agent: str = KUBECTL,
          time: str = "2026-11-02T10:15:00.000000Z", audit_id: str | None = None,
          annotations: dict[str, str] | None = None, uri: str | None = None,
          impersonate: dict[str, Any] | None = None) -> dict[str, Any]:
    """One audit.k8s.io/v1 Event as the API server's log backend writes it."""
    if code is None:
        code = _CREATED.get(verb, 200)
    if level is None:
        level = "RequestResponse" if response is not None else ("Request" if body is not None else "Metadata")
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = f"{prefix}/namespaces/{namespace}/{resource}" if namespace else f"{prefix}/{resource}"
    if name and verb not in ("create", "list", "watch"):
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    ref: dict[str, Any] = {"resource": resource, "apiVersion": version}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if group:
        ref["apiGroup"] = group
    if subresource:
        ref["subresource"] = subresource
    out: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
        "auditID": audit_id or f"00000000-0000-4000-8000-{next(_ids):012d}", "stage": stage,
        "requestURI": uri or path, "verb": verb, "user": {"username": user, "groups": list(groups)},
        "sourceIPs": list(ips), "userAgent": agent,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time, "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 or code >= 500 else "forbid",
                        "authorization.k8s.io/reason": "", **(annotations or {})},
    }
    if resource:
        out["objectRef"] = ref
    if impersonate:
        out["impersonatedUser"] = impersonate
    if code in (401, 403):
        out["responseStatus"] = {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": code}
    if body is not None:
        out["requestObject"] = body
    if response is not None:
        out["responseObject"] = response
    return out


def pod_template(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    hardened_sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                   "readOnlyRootFilesystem": True}
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": containers or [{"name": "web", "image": "registry.example.com/apps/web:1.4.2",
                                          "securityContext": hardened_sc}],
            **spec,
        },
    }


def deployment(template: dict[str, Any] | None = None, name: str = "web", namespace: str = "apps",
               annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": template or pod_template()}}


def privileged_containers() -> list[dict[str, Any]]:
    return [{"name": "web", "image": "registry.example.com/apps/web:1.4.2",
             "securityContext": {"privileged": True, "allowPrivilegeEscalation": True}}]
