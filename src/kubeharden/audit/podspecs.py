"""Pod specs inside an audit event's bodies, as the scan's PodSpecView, so that the scan's own
pod-security predicates judge them (one source of truth for "privileged", "runs as root", ...).

Every pod-spec kind is read (pods, the templates of deployments, replicasets, statefulsets,
daemonsets, jobs, replicationcontrollers and podtemplates, cronjobs' jobTemplate), with init and
ephemeral containers (``pods/ephemeralcontainers``). Bodies of create and update are whole objects;
a patch body (merge, strategic-merge or JSON patch) is partial: detectors judge only what it sets
(``partial``), never an absence. A JSON patch's add/replace operations are laid out as a sparse
object, and paths found in it are mapped back to the operation inside the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubeharden.audit.event import RESOURCE_KINDS, WORKLOAD_RESOURCES, AuditEvent
from kubeharden.inventory import POD_SPEC_PATHS, PodSpecView, as_dict, get_path
from kubeharden.model import Path, Resource, Violation

POD_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})
WRITE_VERBS = frozenset({"create", "update", "patch"})
_SPARSE = "$jsonpatch"  # first path element of a view over a JSON patch's sparse object


@dataclass
class PodBody:
    view: PodSpecView
    partial: bool  # a patch: only fields the body sets are evidence
    origin: str  # requestObject | responseObject
    patch_ops: list[tuple[Path, int]] = field(default_factory=list)  # JSON patch: (object path, op index)
    removed: list[Path] = field(default_factory=list)  # JSON patch remove operations (object paths)

    def event_path(self, path: Path) -> Path:
        """A violation path (from the view) as a path inside the event."""
        if not path or path[0] != _SPARSE:
            return path
        inner = path[1:]
        best: tuple[Path, int] | None = None
        for op_path, index in self.patch_ops:
            if inner[:len(op_path)] == op_path and (best is None or len(op_path) > len(best[0])):
                best = (op_path, index)
        if best is None:
            return ("requestObject", *inner)
        return ("requestObject", best[1], "value", *inner[len(best[0]):])

    def object_path(self, path: Path) -> Path:
        """A violation path from the object's root (spec.template.spec.containers[0]...)."""
        return path[1:] if path and path[0] in (_SPARSE, "requestObject", "responseObject") else path


def event_resource(event: AuditEvent) -> Resource:
    """The event as a Resource, so that PodSpecView paths are paths inside the event."""
    return Resource(event.raw, event.source(), "audit.k8s.io/v1", "Event", event.audit_id, event.namespace or None)


def _pointer(text: str) -> list[str | int] | None:
    if not text.startswith("/"):
        return None
    out: list[str | int] = []
    for token in text[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        out.append(int(token) if token.isdigit() else token)
    return out


def sparse_from_json_patch(ops: list[Any]) -> tuple[dict[str, Any], list[tuple[Path, int]], list[Path]]:
    """add/replace operations as one sparse object (lists padded with empty mappings, which no
    explicit-value predicate fires on); remove operations as paths."""
    root: dict[str, Any] = {}
    placed: list[tuple[Path, int]] = []
    removed: list[Path] = []
    for index, op in enumerate(ops):
        op = as_dict(op)
        tokens = _pointer(str(op.get("path") or ""))
        if not tokens:
            continue
        if op.get("op") == "remove":
            removed.append(tuple(tokens))
            continue
        if op.get("op") not in ("add", "replace") or "value" not in op:
            continue
        node: Any = root
        real: list[str | int] = []
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            nxt = None if last else tokens[i + 1]
            fresh: Any = [] if isinstance(nxt, int) or nxt == "-" else {}
            if isinstance(node, list):
                pos = len(node) if token == "-" else token
                if not isinstance(pos, int) or pos > 10_000:
                    break
                while len(node) <= pos:
                    node.append({})
                if last:
                    node[pos] = op["value"]
                elif not isinstance(node[pos], dict | list) or (isinstance(fresh, list) != isinstance(node[pos], list)):
                    node[pos] = fresh
                real.append(pos)
                node = node[pos]
            elif isinstance(node, dict):
                key = str(token)
                if last:
                    node[key] = op["value"]
                elif not isinstance(node.get(key), dict | list):
                    node[key] = fresh
                real.append(key)
                node = node[key]
            else:
                break
        else:
            placed.append((tuple(real), index))
    return root, placed, removed


def _view(event: AuditEvent, body: dict[str, Any], kind: str, base: Path) -> PodSpecView | None:
    paths = POD_SPEC_PATHS.get(kind)
    if paths is None:
        return None
    spec = get_path(body, paths[1])
    if not isinstance(spec, dict):
        return None
    meta = as_dict(get_path(body, paths[0]))
    return PodSpecView(event_resource(event), spec, (*base, *paths[1]), meta, (*base, *paths[0]))


def workload_kind(event: AuditEvent) -> str | None:
    if event.resource not in WORKLOAD_RESOURCES or event.subresource not in POD_SUBRESOURCES:
        return None
    if event.subresource and event.resource != "pods":
        return None
    return RESOURCE_KINDS[event.resource]


def pod_bodies(event: AuditEvent) -> list[PodBody]:
    """The pod specs a create/update/patch of a workload carries (nothing at Metadata level), laid
    out once per event (D01, D02, D11, D14 and D10 read the same bodies; views are read-only)."""
    memo = event.memo
    if memo is None:
        memo = event.memo = {}
    bodies: list[PodBody] | None = memo.get("pod_bodies")
    if bodies is None:
        bodies = memo["pod_bodies"] = list(_pod_bodies(event))
    return bodies


def _pod_bodies(event: AuditEvent) -> Iterator[PodBody]:
    if event.verb not in WRITE_VERBS:
        return
    kind = workload_kind(event)
    if kind is None:
        return
    request = event.request_object
    if event.verb == "patch":
        if isinstance(request, list):
            sparse, placed, removed = sparse_from_json_patch(request)
            view = _view(event, sparse, kind, (_SPARSE,))
            if view is not None or removed:
                if view is None:
                    view = PodSpecView(event_resource(event), {}, (_SPARSE,), {}, (_SPARSE,))
                yield PodBody(view, True, "requestObject", placed, removed)
            return
        if isinstance(request, dict):
            view = _view(event, request, kind, ("requestObject",))
            if view is not None:
                yield PodBody(view, True, "requestObject")
            return
        response = event.response_object
        if isinstance(response, dict):
            view = _view(event, response, kind, ("responseObject",))
            if view is not None:
                yield PodBody(view, True, "responseObject")  # the whole object: only what it states
        return
    for name in ("requestObject", "responseObject"):
        body = event.raw.get(name)
        if isinstance(body, dict):
            view = _view(event, body, kind, (name,))
            if view is not None:
                yield PodBody(view, False, name)
                return


def explicit(violations: Iterator[Violation]) -> Iterator[Violation]:
    """Violations that rest on a value the body states (a patch proves nothing by leaving a field out)."""
    for v in violations:
        if v.has_value and v.value is not None:
            yield v


def body_metadata(event: AuditEvent) -> dict[str, Any]:
    """metadata of the object in the request (or response) body."""
    for name in ("requestObject", "responseObject"):
        body = event.raw.get(name)
        if isinstance(body, dict):
            return as_dict(body.get("metadata"))
    return {}
