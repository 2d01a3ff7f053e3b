"""AdmissionReview v1: reading a request and writing a response (no judgement here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
DEFAULT_TIMEOUT_SECONDS = 10  # the API server's default for webhooks


class ReviewError(ValueError):
    """A body that is not an AdmissionReview v1 request: answered with HTTP 400 and this reason."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    operation: str
    kind: dict[str, Any]  # {group, version, kind} of the object
    resource: dict[str, Any]
    sub_resource: str
    namespace: str | None
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    username: str
    groups: tuple[str, ...]
    dry_run: bool

    @property
    def kind_name(self) -> str:
        return str(self.kind.get("kind") or "")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReviewError(f"{what} must be an object")
    return value


def _optional_mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview v1 body; ReviewError names what is wrong."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ReviewError("body is not JSON") from None
    review = _mapping(review, "the body")
    if review.get("apiVersion") != API_VERSION or review.get("kind") != "AdmissionReview":
        raise ReviewError(f"expected apiVersion {API_VERSION} and kind AdmissionReview "
                          "(admissionReviewVersions must be [v1])")
    request = _mapping(review.get("request"), "request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid must be a non-empty string")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError("request.operation must be CREATE, UPDATE, DELETE or CONNECT")
    obj = request.get("object")
    old = request.get("oldObject")
    if operation in ("CREATE", "UPDATE"):
        obj = _mapping(obj, f"request.object of a {operation}")
    elif obj is not None and not isinstance(obj, dict):
        raise ReviewError("request.object must be an object or null")
    if old is not None and not isinstance(old, dict):
        raise ReviewError("request.oldObject must be an object or null")
    user = request.get("userInfo")
    user = user if isinstance(user, dict) else {}
    groups = user.get("groups")
    namespace = request.get("namespace")
    return AdmissionRequest(
        uid=uid,
        operation=operation,
        kind=_optional_mapping(request.get("kind")),
        resource=_optional_mapping(request.get("resource")),
        sub_resource=str(request.get("subResource") or ""),
        namespace=str(namespace) if isinstance(namespace, str) and namespace else None,
        name=str(request.get("name") or ""),
        object=obj,
        old_object=old,
        username=str(user.get("username") or ""),
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        dry_run=request.get("dryRun") is True,
    )


def response_body(uid: str, allowed: bool, *, message: str | None = None, code: int | None = None,
                  warnings: list[str] | None = None, audit: dict[str, str] | None = None) -> bytes:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code or 403, "reason": "Forbidden", "message": message or "denied"}
    elif message:
        response["status"] = {"code": 200, "message": message}
    if warnings:
        response["warnings"] = warnings
    if audit:
        response["auditAnnotations"] = audit
    return orjson.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})


def review_body(obj: dict[str, Any] | None, *, operation: str = "CREATE", uid: str = "00000000-0000-0000-0000-0",
                old: dict[str, Any] | None = None, namespace: str | None = None, username: str = "tester",
                sub_resource: str = "") -> bytes:
    """An AdmissionReview request for ``obj`` as the API server sends one (tests, benchmarks, --check)."""
    source = obj or old or {}
    api_version = str(source.get("apiVersion") or "v1")
    group, _, version = api_version.rpartition("/")
    kind = str(source.get("kind") or "")
    meta = _optional_mapping(source.get("metadata"))
    request: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "operation": operation,
        "name": meta.get("name") or "",
        "namespace": namespace if namespace is not None else meta.get("namespace") or "",
        "userInfo": {"username": username, "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return orjson.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "request": request})
