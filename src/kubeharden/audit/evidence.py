"""What an alert says about its event: who, from where, what, the offending field and its value.

Secret values never: values inside secrets, tokenreviews, token requests, certificate requests,
``data``/``stringData``/``binaryData``, environment values and the last-applied-configuration
annotation are replaced by REDACTED, here and in ``redact_event`` (for any output of a body).
"""

from __future__ import annotations

import copy
from typing import Any

from kubeharden.audit.event import AuditEvent, format_time
from kubeharden.loader import REDACTED
from kubeharden.model import Path, format_path

SENSITIVE_RESOURCES = frozenset({"secrets", "tokenreviews", "tokenrequests", "certificatesigningrequests",
                                 "subjectaccessreviews"})
SENSITIVE_SUBRESOURCES = frozenset({"token"})
SENSITIVE_KEYS = frozenset({"data", "stringData", "binaryData", "token", "password"})
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BODIES = ("requestObject", "responseObject")
MAX_VALUE_CHARS = 512


def sensitive_event(event: AuditEvent) -> bool:
    return event.resource in SENSITIVE_RESOURCES or event.subresource in SENSITIVE_SUBRESOURCES


def redact_value(event: AuditEvent, path: Path, value: Any) -> Any:
    """The value of a field at ``path`` (inside the event) as it may be shown."""
    if sensitive_event(event) and path and path[0] in BODIES:
        return REDACTED
    keys = [p for p in path if isinstance(p, str)]
    if SENSITIVE_KEYS.intersection(keys) or LAST_APPLIED in keys:
        return REDACTED
    if len(path) >= 3 and path[-1] == "value" and "env" in keys:
        return REDACTED
    if isinstance(value, dict | list):
        value = _redact_tree(copy.deepcopy(value))
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + f"... ({len(value)} characters)"
    return value


def _redact_tree(node: Any) -> Any:
    if isinstance(node, dict):
        for key in list(node):
            if key in SENSITIVE_KEYS or key == LAST_APPLIED:
                node[key] = REDACTED
            elif key == "env" and isinstance(node[key], list):
                for item in node[key]:
                    if isinstance(item, dict) and "value" in item:
                        item["value"] = REDACTED
            else:
                _redact_tree(node[key])
    elif isinstance(node, list):
        for item in node:
            _redact_tree(item)
    return node


def redact_event(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event safe to print: bodies of secrets/tokenreviews/token requests dropped,
    secret-bearing keys, env values and last-applied annotations redacted."""
    out = dict(raw)
    event = AuditEvent(raw)
    for name in BODIES:
        if name not in out:
            continue
        if sensitive_event(event):
            out[name] = REDACTED
        else:
            out[name] = _redact_tree(copy.deepcopy(out[name]))
    return out


def correlation_key(event: AuditEvent) -> str:
    """Alerts from one event share this key (one Deployment create that is privileged and mounts
    the host and pulls an unapproved image: three alerts, one key)."""
    if event.audit_id:
        return f"audit:{event.audit_id}"
    return f"line:{event.file}:{event.line}"


def event_evidence(event: AuditEvent, guidance: tuple[str, ...], detector_id: str) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "kind": "audit-event",
        "detector": detector_id,
        "guidance": list(guidance),
        "time": format_time(event.time),
        "auditID": event.audit_id or None,
        "stage": event.stage,
        "level": event.level,
        "where": event.where(),
        "user": event.user,
        "groups": list(event.groups),
        "impersonatedUser": event.impersonated.get("username") if event.impersonated else None,
        "sourceIPs": event.source_ips,
        "userAgent": event.user_agent,
        "verb": event.verb,
        "objectRef": {k: event.object_ref.get(k) for k in ("apiGroup", "resource", "subresource", "namespace",
                                                             "name") if event.object_ref.get(k)},
        "requestURI": event.request_uri.split("?", 1)[0] if sensitive_event(event) else event.request_uri,
        "responseCode": event.code,
        "correlation": correlation_key(event),
    }
    decision = event.annotations.get("authorization.k8s.io/decision")
    if decision:
        evidence["decision"] = decision
    return evidence


def field_path(path: Path) -> str:
    return format_path(path)
