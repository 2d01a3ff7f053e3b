"""Where the scheduler may put a pod: taints and tolerations, nodeSelector and required node
affinity, evaluated as kube-scheduler does (pure functions over untrusted objects)."""

from __future__ import annotations

from typing import Any

from kubeharden.inventory import as_dict, as_list

# Effects that keep a pod off a node (PreferNoSchedule only steers).
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
# The DaemonSet controller adds tolerations for these node-condition taints to every DaemonSet pod.
DAEMONSET_TOLERATED = frozenset({
    "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable", "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure", "node.kubernetes.io/pid-pressure", "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/network-unavailable",
})


def blocking_taints(node: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, t) for i, t in enumerate(as_list(as_dict(node.get("spec")).get("taints")))
            if isinstance(t, dict) and t.get("effect") in BLOCKING_EFFECTS]


def tolerates(tolerations: list[Any], taint: dict[str, Any]) -> bool:
    """Whether one of the tolerations tolerates the taint (k8s.io/api/core/v1 ToleratesTaint)."""
    for tol in tolerations:
        if not isinstance(tol, dict):
            continue
        effect = tol.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key") or ""
        operator = tol.get("operator") or "Equal"
        if not key:
            if operator == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        same_value = str(tol.get("value") or "") == str(taint.get("value") or "")
        if operator == "Exists" or (operator == "Equal" and same_value):
            return True
    return False


def untolerated(spec: dict[str, Any], node: dict[str, Any],
                daemonset: bool = False) -> list[tuple[int, dict[str, Any]]]:
    tolerations = as_list(spec.get("tolerations"))
    return [(i, t) for i, t in blocking_taints(node)
            if not tolerates(tolerations, t) and not (daemonset and t.get("key") in DAEMONSET_TOLERATED)]


def _expression_matches(expr: dict[str, Any], labels: dict[str, Any]) -> bool:
    key = str(expr.get("key") or "")
    operator = expr.get("operator")
    values = [str(v) for v in as_list(expr.get("values"))]
    present = key in labels
    value = str(labels.get(key)) if present else None
    if operator == "In":
        return present and value in values
    if operator == "NotIn":
        return not present or value not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            left, right = int(str(value)), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def selects_node(spec: dict[str, Any], node: dict[str, Any]) -> bool:
    """Whether nodeSelector and required node affinity allow the node (names via
    metadata.name in matchFields)."""
    metadata = as_dict(node.get("metadata"))
    labels = as_dict(metadata.get("labels"))
    for key, value in as_dict(spec.get("nodeSelector")).items():
        if str(labels.get(key)) != str(value) or key not in labels:
            return False
    required = as_dict(as_dict(as_dict(spec.get("affinity")).get("nodeAffinity"))
                       .get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = [t for t in as_list(required.get("nodeSelectorTerms")) if isinstance(t, dict)]
    if not terms:
        return True
    fields = {"metadata.name": metadata.get("name")}
    for term in terms:  # terms are ORed, the expressions of one term ANDed
        exprs = [e for e in as_list(term.get("matchExpressions")) if isinstance(e, dict)]
        field_exprs = [e for e in as_list(term.get("matchFields")) if isinstance(e, dict)]
        if not exprs and not field_exprs:
            continue  # an empty term matches nothing
        if all(_expression_matches(e, labels) for e in exprs) and all(
                _expression_matches(e, fields) for e in field_exprs):
            return True
    return False


def node_separation(spec: dict[str, Any]) -> list[str]:
    """What in a pod spec pins it to some nodes: tolerations of blocking taints, nodeSelector,
    required node affinity (each named)."""
    found = []
    if any(isinstance(t, dict) and (t.get("effect") in BLOCKING_EFFECTS or not t.get("effect")) and t.get("key")
           for t in as_list(spec.get("tolerations"))):
        found.append("tolerations")
    if as_dict(spec.get("nodeSelector")):
        found.append("nodeSelector")
    affinity = as_dict(as_dict(spec.get("affinity")).get("nodeAffinity"))
    if as_dict(affinity.get("requiredDuringSchedulingIgnoredDuringExecution")).get("nodeSelectorTerms"):
        found.append("required node affinity")
    return found
