"""Helpers shared by the pod-security control modules (no controls here)."""

from __future__ import annotations

from typing import Any

from kubeharden import pss
from kubeharden.inventory import WORKLOAD_KINDS, ContainerView, PodSpecView
from kubeharden.model import Path

WORKLOADS = tuple(sorted(WORKLOAD_KINDS))


def is_windows(pod: PodSpecView) -> bool:
    """spec.os.name: windows. Linux-only securityContext fields are invalid on such pods."""
    os_field = pod.spec.get("os")
    return isinstance(os_field, dict) and os_field.get("name") == "windows"


def host_users_false(pod: PodSpecView) -> bool:
    return pod.spec.get("hostUsers") is False


def effective(c: ContainerView, field: str) -> tuple[Any, Path]:
    """A securityContext field that exists at pod and container level: the container's value wins.
    Returns the value and the path of the field that decides it (the container's when neither is set)."""
    if c.security_context.get(field) is not None:
        return c.security_context[field], (*c.path, "securityContext", field)
    pod_value = c.pod.security_context.get(field)
    if pod_value is not None:
        return pod_value, (*c.pod.path, "securityContext", field)
    return None, (*c.path, "securityContext", field)


def pss_path(pod: PodSpecView, rel: pss.PodPath) -> Path:
    """A kubeharden.pss violation path (from the pod root: "metadata" or "spec" first) inside the resource."""
    base = pod.metadata_path if rel[0] == "metadata" else pod.path
    return (*base, *rel[1:])


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pod_example(
    extra_spec: str = "", *, pod_sc: str = "", container_sc: str = "", meta: str = "",
    image: str = "registry.example/app:1.0@sha256:" + "a" * 64, kind: str = "Pod",
) -> str:
    """A hardened pod manifest for control examples; the arguments change one part of it."""
    psc = pod_sc or ("{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, "
                     "seccompProfile: {type: RuntimeDefault}}")
    csc = container_sc or ("{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, "
                            "capabilities: {drop: [ALL]}}")
    meta_block = f"\n{meta}" if meta else ""
    return f"""
apiVersion: v1
kind: {kind}
metadata:
  name: example
  namespace: apps{meta_block}
spec:
  hostUsers: false
  automountServiceAccountToken: false
  serviceAccountName: app
  securityContext: {psc}
  containers:
  - name: app
    image: {image}
    securityContext: {csc}
{extra_spec}"""
