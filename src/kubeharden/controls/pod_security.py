"""Pod security controls (guidance §1.5 and §2.1, NSA-POD-*)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from kubeharden import pss
from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import (
    WORKLOADS,
    effective,
    host_users_false,
    is_int,
    is_windows,
    pod_example,
)
from kubeharden.inventory import PodSpecView
from kubeharden.model import Section, Severity, Violation


@control(
    id="KH-POD-005",
    title="Privileged container",
    section=Section.POD,
    guidance=("NSA-POD-5",),
    severity=Severity.CRITICAL,
    kinds=WORKLOADS,
    what="A container runs with securityContext.privileged: true.",
    why="A privileged container has every capability and access to all host devices: "
    "a compromise of the container is a compromise of the node.",
    fix="Remove securityContext.privileged (or set it to false); add only the specific "
    "capabilities the workload needs.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext: {privileged: true}
"""),
        Example(False, """
apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext: {privileged: false}
"""),
    ),
)
def privileged_container(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        for c in pod.containers():
            if c.security_context.get("privileged") is True:
                yield c.violation(
                    ("securityContext", "privileged"),
                    f"container '{c.name}' is privileged",
                    True,
                )


@control(
    id="KH-POD-006",
    title="Host PID or IPC namespace shared",
    section=Section.POD,
    guidance=("NSA-POD-6",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="The pod sets hostPID: true or hostIPC: true.",
    why="Sharing the host's process or IPC namespace lets the pod see and signal host "
    "processes and read shared memory of other workloads.",
    fix="Remove spec.hostPID and spec.hostIPC (or set them to false).",
    examples=(
        Example(True, """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: bad, namespace: ops}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      hostPID: true
      containers: [{name: agent, image: registry.example/agent:1.0}]
"""),
        Example(False, """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: good, namespace: ops}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers: [{name: agent, image: registry.example/agent:1.0}]
"""),
    ),
)
def host_pid_ipc(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        for field in ("hostPID", "hostIPC"):
            if pod.spec.get(field) is True:
                yield pod.spec_violation((field,), f"pod shares the host's {field[4:]} namespace", True)


@control(
    id="KH-POD-007",
    title="Host network namespace shared",
    section=Section.POD,
    guidance=("NSA-POD-7",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="The pod sets hostNetwork: true.",
    why="A pod on the host network can reach every node-local service (kubelet, metadata "
    "endpoints), sniff node traffic and bypass NetworkPolicies.",
    fix="Remove spec.hostNetwork (or set it to false) and expose the workload through a Service.",
    examples=(
        Example(True, """
apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  hostNetwork: true
  containers: [{name: app, image: registry.example/app:1.0}]
"""),
        Example(False, """
apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  hostNetwork: false
  containers: [{name: app, image: registry.example/app:1.0}]
"""),
    ),
)
def host_network(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if pod.spec.get("hostNetwork") is True:
            yield pod.spec_violation(("hostNetwork",), "pod uses the host's network namespace", True)
