"""Built-in exceptions: findings that are a system component's design, reported as excepted.

The control-plane static pods kubeadm writes (kube-apiserver, kube-controller-manager,
kube-scheduler, etcd) run on the host network, as root, with the node's certificates, keys and
etcd data mounted from the host: those pod findings are expected, not fixable in the manifest, and
would drown a node report. They are still reported, marked excepted with ``kind: builtin``, the
rule's id and its reason; ``--no-builtin-exceptions`` (``Settings.builtin_exceptions = False``)
turns the list off. Documented in docs/node.md.

A pod is a control-plane static pod when it is a static pod — its file is in the kubelet's static
pod directory (node mode: ``staticPodPath``, ``/etc/kubernetes/manifests`` by default) or it is a
mirror pod (annotation ``kubernetes.io/config.mirror``, or ``kubernetes.io/config.source: file``) —
and its ``component`` label or first command word names one of the four components.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeharden.inventory import Inventory, as_dict, as_list
from kubeharden.model import Path, Resource

CONTROL_PLANE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
DEFAULT_STATIC_POD_PATH = "/etc/kubernetes/manifests"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Host paths a kubeadm control-plane component mounts for its certificates, kubeconfigs and data.
_COMPONENT_HOST_PATHS = ("/etc/kubernetes", "/etc/ssl/certs", "/etc/pki", "/etc/ca-certificates",
                         "/usr/share/ca-certificates", "/usr/local/share/ca-certificates")
_ETCD_DATA = ("/var/lib/etcd",)


def _static_pod_dirs(inventory: Inventory) -> set[str]:
    dirs = {DEFAULT_STATIC_POD_PATH}
    for config in inventory.of_kind("KubeletConfiguration"):
        path = config.obj.get("staticPodPath")
        if isinstance(path, str) and path.startswith("/"):
            dirs.add(posixpath.normpath(path))
    return dirs


def _static_pod_ids(inventory: Inventory) -> set[int]:
    """The Pods read from the kubelet's static pod directory of a node root or bundle."""
    facts = inventory.facts.get("node")
    by_path = getattr(facts, "resources_by_path", None) or {}
    dirs = _static_pod_dirs(inventory)
    return {id(res.obj) for path, resources in by_path.items() if posixpath.dirname(path) in dirs
            for res in resources if res.kind == "Pod"}


def is_static_pod(resource: Resource, inventory: Inventory) -> bool:
    """A pod the kubelet runs from a file: no ServiceAccount, no API token, no admission at creation."""
    if resource.kind != "Pod":
        return False
    annotations = as_dict(resource.metadata.get("annotations"))
    if MIRROR_ANNOTATION in annotations or annotations.get("kubernetes.io/config.source") == "file":
        return True
    return id(resource.obj) in inventory.analysis(_static_pod_ids)


def control_plane_component(resource: Resource, inventory: Inventory) -> str | None:
    """The component a control-plane static pod runs, or None."""
    if not is_static_pod(resource, inventory):
        return None
    label = as_dict(resource.metadata.get("labels")).get("component")
    if label in CONTROL_PLANE_COMPONENTS:
        return str(label)
    for container in as_list(as_dict(resource.obj.get("spec")).get("containers")):
        command = as_list(as_dict(container).get("command"))
        if command and posixpath.basename(str(command[0])) in CONTROL_PLANE_COMPONENTS:
            return posixpath.basename(str(command[0]))
    return None


def _host_path_of(resource: Resource, path: Path) -> str | None:
    """The hostPath of the volume a finding's path points into (spec.volumes[i]...)."""
    for i, part in enumerate(path[:-1]):
        if part == "volumes" and isinstance(path[i + 1], int):
            volumes = as_list(as_dict(resource.obj.get("spec")).get("volumes"))
            index = path[i + 1]
            assert isinstance(index, int)
            if 0 <= index < len(volumes):
                value = as_dict(as_dict(volumes[index]).get("hostPath")).get("path")
                return posixpath.normpath(str(value)) if value else None
    return None


def _own_host_path(component: str, resource: Resource, path: Path) -> bool:
    host_path = _host_path_of(resource, path)
    if host_path is None:
        return False
    allowed = _COMPONENT_HOST_PATHS + (_ETCD_DATA if component == "etcd" else ())
    return any(host_path == p or host_path.startswith(p + "/") for p in allowed)


@dataclass(frozen=True)
class BuiltinRule:
    id: str
    controls: tuple[str, ...]
    reason: str
    applies: Callable[[str, Resource, Path], bool] = lambda component, resource, path: True


BUILTIN_RULES: tuple[BuiltinRule, ...] = (
    BuiltinRule("control-plane-host-network", ("KH-POD-007",),
                "control-plane static pod: serves on the node's addresses by design (kubeadm sets hostNetwork)"),
    BuiltinRule("control-plane-host-paths", ("KH-POD-009",),
                "control-plane static pod: mounts its own certificates, kubeconfigs or data from the host",
                _own_host_path),
    BuiltinRule("control-plane-root", ("KH-POD-002", "KH-POD-003"),
                "control-plane static pod: runs as root to read the root-owned keys under /etc/kubernetes/pki"),
)


def builtin_exception(control_id: str, resource: Resource | None, path: Path,
                      inventory: Inventory) -> dict[str, Any] | None:
    """The exception record of the first built-in rule covering the finding, or None."""
    if resource is None or not control_id.startswith("KH-POD-"):
        return None
    rules = [r for r in BUILTIN_RULES if control_id in r.controls]
    if not rules:
        return None
    component = control_plane_component(resource, inventory)
    if component is None:
        return None
    for rule in rules:
        if rule.applies(component, resource, path):
            return {"kind": "builtin", "rule": rule.id, "reason": rule.reason,
                    "origin": f"built-in exception {rule.id} for {component} (turn off with --no-builtin-exceptions)"}
    return None
