"""Pod security controls (guidance §1.5 and §2.1, NSA-POD-*)."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from kubeharden import pss
from kubeharden.catalog import Context, Example, control
from kubeharden.controls.pod_common import (
    WORKLOADS,
    effective,
    host_users_false,
    is_int,
    is_windows,
    pod_example,
    pss_path,
)
from kubeharden.images.dockerfile import USER_NAMED, USER_NONROOT, USER_ROOT
from kubeharden.inventory import ContainerView, PodSpecView
from kubeharden.model import Section, Severity, Violation

if TYPE_CHECKING:
    from kubeharden.controls.pod_images import ImageUser


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
        yield from privileged_violations(pod)


def privileged_violations(pod: PodSpecView) -> Iterator[Violation]:
    """Privileged containers of one pod spec (shared with the audit detectors)."""
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
        yield from host_pid_ipc_violations(pod)


def host_pid_ipc_violations(pod: PodSpecView) -> Iterator[Violation]:
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
        yield from host_network_violations(pod)


def host_network_violations(pod: PodSpecView) -> Iterator[Violation]:
    if pod.spec.get("hostNetwork") is True:
        yield pod.spec_violation(("hostNetwork",), "pod uses the host's network namespace", True)


# ---------------------------------------------------------------------------------------------
# Identity: non-root user and non-root group (NSA-POD-2, NSA-POD-3)


@control(
    id="KH-POD-002",
    title="Container may run as root",
    section=Section.POD,
    guidance=("NSA-POD-2",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="A container's effective runAsUser is 0, or runAsNonRoot: true is not in effect for it "
    "(container securityContext wins over the pod's).",
    why="A process running as root in a container is root on the node once it escapes; "
    "runAsNonRoot: true makes the kubelet refuse to start a container whose user is 0.",
    fix="Set spec.securityContext.runAsNonRoot: true and spec.securityContext.runAsUser to a non-zero UID "
    "(e.g. 10001); remove runAsUser: 0 and runAsNonRoot: false from containers.",
    examples=(
        Example(True, pod_example(pod_sc="{runAsUser: 0, runAsGroup: 10001, fsGroup: 10001, "
                                         "seccompProfile: {type: RuntimeDefault}}"), "runs as UID 0"),
        Example(True, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001}",
                                  container_sc="{runAsNonRoot: false, allowPrivilegeEscalation: false}"),
                "container overrides the pod with runAsNonRoot: false"),
        Example(False, pod_example()),
    ),
)
def runs_as_root(ctx: Context) -> Iterator[Violation]:
    from kubeharden.controls.pod_images import image_users

    users = image_users(ctx.inventory)  # what registries and Dockerfiles say the images run as
    for pod in ctx.pod_specs():
        yield from root_user_violations(pod, users.get)


def root_user_violations(pod: PodSpecView, image_user_of: Callable[[int], ImageUser | None] | None = None,
                         ) -> Iterator[Violation]:
    """Containers of one pod spec that run, or may run, as root (shared with the audit detectors).
    ``image_user_of(id(container.obj))`` tells what the image's own user is, when known."""
    userns = host_users_false(pod)
    note = " (hostUsers: false maps it to an unprivileged host user)" if userns else ""
    for c in pod.containers():
        user, user_path = effective(c, "runAsUser")
        non_root, non_root_path = effective(c, "runAsNonRoot")
        if pss.is_zero(user):
            yield pod.resource_violation(user_path, f"container '{c.name}' runs as UID 0{note}", 0,
                                         severity=Severity.LOW if userns else None)
        elif non_root is not True:
            set_user = is_int(user) and user > 0
            if is_windows(pod):
                name = effective_windows_user(c)
                set_user = bool(name) and name != "ContainerAdministrator"
            if set_user:
                severity = Severity.LOW
                message = (f"container '{c.name}' sets a non-root user but runAsNonRoot is not true, "
                           "so the kubelet does not enforce it")
            else:
                known = image_user_of(id(c.obj)) if image_user_of is not None and not is_windows(pod) else None
                severity, message, evidence = _image_decides(c.name, known, userns, note)
                if evidence:  # for the fixer: whose kubelet check would pass on the registry's word
                    evidence["non_root_images"] = sorted(
                        other.name for other in pod.containers() if (o := image_user_of(id(other.obj))) is not None
                        and o.status == USER_NONROOT and o.from_registry) if image_user_of is not None else []
                yield pod.resource_violation(non_root_path, message, non_root, severity=severity, evidence=evidence)
                continue
            yield pod.resource_violation(non_root_path, message, non_root, severity=severity)


def _image_decides(name: str, known: ImageUser | None, userns: bool, note: str,
                   ) -> tuple[Severity, str, dict[str, object]]:
    """No runAsNonRoot and no runAsUser: the image's user applies; say what is known of it."""
    def low_or(severity: Severity) -> Severity:
        return Severity.LOW if userns else severity

    if known is None or known.status not in (USER_ROOT, USER_NONROOT):
        what = f" ({known.user!r} per {known.origin}, a name the kubelet cannot check)" if known is not None and \
            known.status == USER_NAMED else ""
        return (low_or(Severity.MEDIUM), f"container '{name}' may run as root: no runAsNonRoot: true and no non-root "
                f"runAsUser, so the image decides{what}{note}", {})
    evidence: dict[str, object] = {"image_user": known.user, "image_user_from": known.origin,
                                   "image_user_registry": known.from_registry}
    if known.status == USER_ROOT:
        return (low_or(Severity.HIGH), f"container '{name}' will run as root: its image's user is "
                f"{known.user or 'unset (root)'} per {known.origin}, and neither runAsNonRoot: true nor a non-root "
                f"runAsUser is set{note}", evidence)
    return (Severity.LOW, f"container '{name}' runs as the image's non-root user {known.user} per {known.origin}, "
            "but runAsNonRoot is not true, so the kubelet does not enforce it", evidence)


def effective_windows_user(c: ContainerView) -> str | None:
    """windowsOptions.runAsUserName, container over pod."""
    for sc in (c.security_context, c.pod.security_context):
        options = sc.get("windowsOptions")
        if isinstance(options, dict) and options.get("runAsUserName"):
            return str(options["runAsUserName"])
    return None


@control(
    id="KH-POD-003",
    title="Root group membership",
    section=Section.POD,
    guidance=("NSA-POD-3",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="runAsGroup, fsGroup or a supplementalGroups entry is 0, or runAsGroup is unset (the image's group, "
    "often root, applies).",
    why="Group 0 owns many files on the node and in images; a process in the root group can read and write "
    "them even as a non-root user.",
    fix="Set spec.securityContext.runAsGroup and spec.securityContext.fsGroup to a non-zero GID "
    "(e.g. 10001) and remove 0 from spec.securityContext.supplementalGroups.",
    examples=(
        Example(True, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 0, "
                                         "seccompProfile: {type: RuntimeDefault}}")),
        Example(True, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, "
                                         "supplementalGroups: [0], seccompProfile: {type: RuntimeDefault}}")),
        Example(False, pod_example()),
    ),
)
def root_group(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if is_windows(pod):
            continue  # group ids do not apply to Windows containers
        sc = pod.security_context
        if pss.is_zero(sc.get("fsGroup")):
            yield pod.spec_violation(("securityContext", "fsGroup"), "pod sets fsGroup: 0 (root group)", 0)
        groups = sc.get("supplementalGroups")
        for i, gid in enumerate(groups if isinstance(groups, list) else []):
            if pss.is_zero(gid):
                yield pod.spec_violation(("securityContext", "supplementalGroups", i),
                                         "pod adds supplemental group 0 (root group)", 0)
        unset: list[str] = []
        for c in pod.containers():
            group, path = effective(c, "runAsGroup")
            if pss.is_zero(group):
                yield pod.resource_violation(path, f"container '{c.name}' runs with runAsGroup: 0", 0)
            elif group is None:
                unset.append(c.name)
        if unset:  # one finding: the fix is one pod-level field
            yield pod.spec_violation(("securityContext", "runAsGroup"),
                                     f"no runAsGroup for container(s) {', '.join(unset)}: the image's primary "
                                     "group (often 0) applies", severity=Severity.LOW)


# ---------------------------------------------------------------------------------------------
# Privilege (NSA-POD-4, NSA-POD-5, NSA-POD-11)


@control(
    id="KH-POD-004",
    title="Privilege escalation allowed",
    section=Section.POD,
    guidance=("NSA-POD-4",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container does not set securityContext.allowPrivilegeEscalation: false (unset means allowed).",
    why="Without no_new_privs a process can gain privileges through setuid binaries or file capabilities, "
    "which defeats runAsNonRoot.",
    fix="Set securityContext.allowPrivilegeEscalation: false on every container, init container and "
    "ephemeral container.",
    examples=(
        Example(True, pod_example(container_sc="{readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}")),
        Example(False, pod_example()),
    ),
)
def privilege_escalation(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        yield from escalation_violations(pod)


def escalation_violations(pod: PodSpecView) -> Iterator[Violation]:
    if is_windows(pod):
        return  # the field is Linux-only (rejected on Windows pods)
    for c in pod.containers():
        value = c.security_context.get("allowPrivilegeEscalation")
        if value is not False:
            yield c.violation(
                ("securityContext", "allowPrivilegeEscalation"),
                f"container '{c.name}' " + ("sets allowPrivilegeEscalation: true" if value is True
                                            else "does not set allowPrivilegeEscalation: false"),
                value, has_value=value is not None,
                severity=Severity.HIGH if value is True else None)


@control(
    id="KH-POD-029",
    title="Windows HostProcess container",
    section=Section.POD,
    guidance=("NSA-POD-5",),
    severity=Severity.CRITICAL,
    kinds=WORKLOADS,
    what="securityContext.windowsOptions.hostProcess: true on the pod or a container.",
    why="A HostProcess container runs directly on the Windows node with host access: the Windows "
    "equivalent of a privileged container.",
    fix="Remove securityContext.windowsOptions.hostProcess (or set it to false) at pod and container level.",
    examples=(
        Example(True, pod_example("  os: {name: windows}", pod_sc="{runAsNonRoot: true, windowsOptions: "
                                  "{hostProcess: true, runAsUserName: 'NT AUTHORITY\\\\SYSTEM'}}",
                                  container_sc="{}")),
        Example(False, pod_example()),
    ),
)
def windows_host_process(ctx: Context) -> Iterator[Violation]:
    yield from _pss_rule(ctx, "windowsHostProcess", pss.LATEST)


def _pss_hits(ctx: Context, check: str, level: str = "baseline",
              version: pss.PolicyVersion = pss.LATEST) -> Iterator[tuple[PodSpecView, pss.PSSViolation]]:
    """Every violation of one PSS check, with its pod (the same semantics as admission)."""
    for pod in ctx.pod_specs():
        for v in pss.evaluate(pod.metadata, pod.spec, level, version, only={check}):
            yield pod, v


def _pss_rule(ctx: Context, check: str, version: pss.PolicyVersion, level: str = "baseline",
              severity: Severity | None = None) -> Iterator[Violation]:
    """Report one PSS check's violations as this control's."""
    for pod, v in _pss_hits(ctx, check, level, version):
        yield pod.resource_violation(pss_path(pod, v.path), v.message, v.value, has_value=v.value is not None,
                                     severity=severity)


DANGEROUS_CAPABILITIES = frozenset({
    "ALL", "SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_PTRACE", "SYS_MODULE", "BPF", "PERFMON", "SYS_RAWIO",
    "DAC_READ_SEARCH", "SYS_BOOT", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE", "SYSLOG", "SYS_RESOURCE",
    "LINUX_IMMUTABLE", "CHECKPOINT_RESTORE", "IPC_LOCK", "SETFCAP", "MKNOD",
})
CRITICAL_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "BPF", "SYS_RAWIO",
                                   "DAC_READ_SEARCH"})


@control(
    id="KH-POD-011",
    title="Capabilities not dropped",
    section=Section.POD,
    guidance=("NSA-POD-11",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container's securityContext.capabilities.drop does not contain ALL (rated low when it holds a "
    "lower-case all: the runtimes drop everything, but Pod Security Admission rejects the pod).",
    why="Container runtimes grant a default capability set (CHOWN, DAC_OVERRIDE, SETUID, NET_RAW, ...) "
    "that most applications never need and attackers use after a compromise.",
    fix="Set securityContext.capabilities.drop: [ALL] on every container; add back only documented needs "
    "(e.g. NET_BIND_SERVICE) in capabilities.add.",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [NET_RAW]}}")),
        Example(False, pod_example()),
    ),
)
def capabilities_not_dropped(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if is_windows(pod):
            continue  # capabilities are Linux-only
        for c in pod.containers():
            caps = c.security_context.get("capabilities")
            drop = caps.get("drop") if isinstance(caps, dict) else None
            drops = drop if isinstance(drop, list) else []
            if "ALL" in drops:
                continue
            upper = {d.upper() for d in drops if isinstance(d, str)}
            if "ALL" in upper:
                # containerd and CRI-O match ALL case-insensitively, so every capability is dropped; only
                # Pod Security Admission (restricted) compares exactly and rejects the pod.
                yield c.violation(("securityContext", "capabilities", "drop"),
                                  f"container '{c.name}' drops all capabilities with a lower-case 'all', which "
                                  "the runtimes accept but Pod Security Admission (restricted) rejects: write ALL",
                                  drop, severity=Severity.LOW)
                continue
            hint = " (CAP_ALL is not a capability name: use ALL)" if "CAP_ALL" in upper else ""
            yield c.violation(("securityContext", "capabilities", "drop"),
                              f"container '{c.name}' does not drop ALL capabilities{hint}", drop,
                              has_value=drop is not None)


@control(
    id="KH-POD-033",
    title="Capabilities added",
    section=Section.POD,
    guidance=("NSA-POD-11",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="A container adds Linux capabilities in securityContext.capabilities.add; SYS_ADMIN, NET_ADMIN, "
    "NET_RAW, SYS_PTRACE, SYS_MODULE, BPF and similar are rated higher.",
    why="Added capabilities hand kernel privileges to the container; several (SYS_ADMIN, SYS_MODULE, "
    "SYS_PTRACE, BPF) are enough to escape to the node.",
    fix="Remove entries from securityContext.capabilities.add; keep only a documented need such as "
    "NET_BIND_SERVICE (better: listen on a port >= 1024).",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [ALL], add: [SYS_ADMIN]}}")),
        Example(False, pod_example()),
    ),
)
def capabilities_added(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        yield from added_capability_violations(pod)


def added_capability_violations(pod: PodSpecView) -> Iterator[Violation]:
    for c in pod.containers():
        caps = c.security_context.get("capabilities")
        added = caps.get("add") if isinstance(caps, dict) else None
        for i, cap in enumerate(added if isinstance(added, list) else []):
            name = str(cap).upper().removeprefix("CAP_")
            if name in CRITICAL_CAPABILITIES:
                severity = Severity.CRITICAL
            elif name in DANGEROUS_CAPABILITIES:
                severity = Severity.HIGH
            elif name == "NET_BIND_SERVICE":
                severity = Severity.LOW
            else:
                severity = Severity.MEDIUM
            yield c.violation(("securityContext", "capabilities", "add", i),
                              f"container '{c.name}' adds capability {cap}", cap, severity=severity)


# ---------------------------------------------------------------------------------------------
# Host access (NSA-POD-8, NSA-POD-9, NSA-POD-12)


@control(
    id="KH-POD-008",
    title="Host port bound",
    section=Section.POD,
    guidance=("NSA-POD-8",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container port sets a non-zero hostPort.",
    why="A hostPort opens the port on the node's address, bypassing Services and often NetworkPolicies, "
    "and ties the pod to nodes where the port is free.",
    fix="Remove containers[*].ports[*].hostPort and expose the port through a Service.",
    examples=(
        Example(True, pod_example("    ports: [{containerPort: 8080, hostPort: 8080}]")),
        Example(False, pod_example("    ports: [{containerPort: 8080}]")),
    ),
)
def host_port(ctx: Context) -> Iterator[Violation]:
    for pod, v in _pss_hits(ctx, "hostPorts"):
        if v.path[-1] == "containerPort":
            # Implied by hostNetwork (the API server copies containerPort into hostPort): there is no
            # hostPort to remove, and KH-POD-007 already reports the cause at high severity.
            yield pod.resource_violation(pss_path(pod, v.path), v.message, v.value, severity=Severity.LOW,
                                         remediation=HOST_NETWORK_PORT_FIX)
        else:
            yield pod.resource_violation(pss_path(pod, v.path), v.message, v.value)


HOST_NETWORK_PORT_FIX = ("Remove spec.hostNetwork (see KH-POD-007) so the port is bound in the pod's own network "
                         "namespace, and expose it through a Service.")


# Host paths that hand over the node (or its container runtime) when mounted.
SENSITIVE_HOST_PATHS = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/var/lib/kubelet", "/var/lib/docker",
    "/var/lib/containerd", "/var/lib/etcd", "/etc/kubernetes", "/var/run", "/run", "/usr", "/bin", "/sbin",
    "/lib", "/var/lib/cri-o", "/home",
)
SOCKET_SUFFIXES = ("docker.sock", "containerd.sock", "crio.sock", "cri-dockerd.sock", "kubelet.sock")


def sensitive_host_path(path: str) -> bool:
    norm = posixpath.normpath(path) if path else ""
    if norm in ("/", "//"):
        return True
    if norm.endswith(SOCKET_SUFFIXES):
        return True
    return any(norm == p or norm.startswith(p + "/") for p in SENSITIVE_HOST_PATHS)


def _mounting_containers(pod: PodSpecView, volume: str) -> tuple[list[str], list[str]]:
    """Containers that mount ``volume``: (writable, read-only), each sorted and without repeats."""
    writable: set[str] = set()
    read_only: set[str] = set()
    for c in pod.containers():
        mounts = c.obj.get("volumeMounts")
        for m in mounts if isinstance(mounts, list) else []:
            if isinstance(m, dict) and m.get("name") == volume:
                (read_only if m.get("readOnly") is True else writable).add(c.name)
    return sorted(writable), sorted(read_only - writable)


@control(
    id="KH-POD-009",
    title="hostPath volume",
    section=Section.POD,
    guidance=("NSA-POD-9",),
    severity=Severity.HIGH,
    kinds=WORKLOADS,
    what="The pod mounts a directory or file of the node (hostPath); rated critical when it is writable "
    "and sensitive (/, /etc, /proc, /var/lib/kubelet, the container runtime socket, ...).",
    why="Host files give access to node credentials, other pods' data and the container runtime; a writable "
    "mount of a sensitive path is a direct node takeover.",
    fix="Remove spec.volumes[*].hostPath (use a persistentVolumeClaim, configMap, secret or emptyDir); if "
    "unavoidable, mount a narrow path with volumeMounts[*].readOnly: true.",
    examples=(
        Example(True, pod_example("    volumeMounts: [{name: sock, mountPath: /var/run/docker.sock}]\n"
                                  "  volumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}]")),
        Example(False, pod_example("    volumeMounts: [{name: tmp, mountPath: /tmp}]\n"
                                   "  volumes: [{name: tmp, emptyDir: {}}]")),
    ),
)
def host_path_volume(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        yield from host_path_violations(pod)


def host_path_violations(pod: PodSpecView, is_sensitive: Callable[[str], bool] | None = None) -> Iterator[Violation]:
    """hostPath volumes of one pod spec, rated by path and mount (shared with the audit detectors)."""
    is_sensitive = is_sensitive or sensitive_host_path
    volumes = pod.spec.get("volumes")
    for i, volume in enumerate(volumes if isinstance(volumes, list) else []):
        if not isinstance(volume, dict) or volume.get("hostPath") is None:
            continue
        host = volume["hostPath"]
        path = str(host.get("path") or "") if isinstance(host, dict) else ""
        writers, readers = _mounting_containers(pod, str(volume.get("name")))
        sensitive = is_sensitive(path)
        if sensitive and writers:
            severity = Severity.CRITICAL
        elif sensitive or writers:
            severity = Severity.HIGH
        else:
            severity = Severity.MEDIUM
        if writers:
            detail = f", mounted writable by {', '.join(writers)}"
        elif readers:
            detail = f", mounted read-only by {', '.join(readers)}"
        else:
            detail = ", not mounted by any container"
        yield pod.spec_violation(("volumes", i, "hostPath", "path"),
                                 f"volume '{volume.get('name')}' is host path {path or '(none)'}"
                                 f"{' (sensitive)' if sensitive else ''}{detail}", path or None,
                                 severity=severity)


@control(
    id="KH-POD-012",
    title="Volume type not allowed",
    section=Section.POD,
    guidance=("NSA-POD-12",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A volume whose source is not configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
    "persistentVolumeClaim, projected or secret (hostPath is reported by KH-POD-009).",
    why="Direct network and cloud volume sources (nfs, iscsi, rbd, gitRepo, flexVolume...) bypass "
    "admin-provisioned storage and can expose node or storage credentials; gitRepo ran git on the node.",
    fix="Replace the volume source with a persistentVolumeClaim (storage provisioned by administrators) "
    "or one of configMap, secret, emptyDir, projected, downwardAPI, ephemeral, csi, image.",
    examples=(
        Example(True, pod_example("  volumes: [{name: repo, gitRepo: {repository: 'https://example/x.git'}}]")),
        Example(False, pod_example("  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}, "
                                   "{name: scratch}]")),
    ),
)
def volume_type(ctx: Context) -> Iterator[Violation]:
    for pod, v in _pss_hits(ctx, "restrictedVolumes", "restricted"):
        if v.path[-1] != "hostPath":
            yield pod.resource_violation(pss_path(pod, v.path), v.message)


@control(
    id="KH-POD-010",
    title="Writable root filesystem",
    section=Section.POD,
    guidance=("NSA-POD-10",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container does not set securityContext.readOnlyRootFilesystem: true.",
    why="A writable root filesystem lets an attacker drop tools and modify binaries or configuration "
    "inside the container.",
    fix="Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir volume at each path the "
    "application writes to (e.g. /tmp).",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}")),
        Example(False, pod_example()),
    ),
)
def writable_root_fs(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if is_windows(pod):
            continue  # readOnlyRootFilesystem is not supported on Windows
        for c in pod.containers():
            value = c.security_context.get("readOnlyRootFilesystem")
            if value is not True:
                yield c.violation(("securityContext", "readOnlyRootFilesystem"),
                                  f"container '{c.name}' has a writable root filesystem", value,
                                  has_value=value is not None)


# ---------------------------------------------------------------------------------------------
# Kernel isolation (NSA-POD-13 .. NSA-POD-16)

_SECCOMP_FIELD_SINCE = (1, 19)


def _annotation_seccomp(pod: PodSpecView, container: str) -> tuple[str | None, str | None]:
    """The legacy annotation profile for a container: (value, annotation key)."""
    annotations = pod.annotations
    key = pss.SECCOMP_CONTAINER_ANNOTATION + container
    if key in annotations:
        return str(annotations[key] or ""), key
    key = pss.SECCOMP_POD_ANNOTATION
    if key in annotations:
        return str(annotations[key] or ""), key
    return None, None


@control(
    id="KH-POD-013",
    title="Seccomp not enforced",
    section=Section.POD,
    guidance=("NSA-POD-13",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container runs with seccomp Unconfined, or with no seccomp profile (pod or container "
    "securityContext.seccompProfile; legacy seccomp.security.alpha.kubernetes.io annotations only before "
    "Kubernetes 1.19, ignored once the field exists).",
    why="Without a seccomp profile every system call is open to the container, and the kernel is the "
    "attack surface for escapes; the runtime applies none unless asked (kubelet seccompDefault is off by "
    "default).",
    fix="Set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost with localhostProfile) "
    "and remove seccompProfile.type: Unconfined from containers.",
    examples=(
        Example(True, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, "
                                         "fsGroup: 10001}")),
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [ALL]}, seccompProfile: {type: Unconfined}}")),
        Example(False, pod_example()),
    ),
)
def seccomp(ctx: Context) -> Iterator[Violation]:
    use_field = ctx.kubernetes_version >= _SECCOMP_FIELD_SINCE
    for pod in ctx.pod_specs():
        if is_windows(pod):
            continue  # seccomp is Linux-only
        missing: list[str] = []
        for c in pod.containers():
            if use_field:
                profile, path = effective(c, "seccompProfile")
                kind = profile.get("type") if isinstance(profile, dict) else None
                if profile is None:
                    missing.append(c.name)
                elif kind not in ("RuntimeDefault", "Localhost"):
                    yield pod.resource_violation((*path, "type"), f"container '{c.name}' runs with seccomp "
                                                 f"profile {kind or '(no type)'}", kind, severity=Severity.HIGH)
            else:
                value, key = _annotation_seccomp(pod, c.name)
                if value is None:
                    missing.append(c.name)
                elif not pss.valid_seccomp_annotation(value):
                    yield pod.resource_violation((*pod.metadata_path, "annotations", key or ""),
                                                 f"container '{c.name}' runs with seccomp {value or '(empty)'}",
                                                 value, severity=Severity.HIGH)
        if missing:
            legacy = [k for k in pod.annotations if isinstance(k, str) and "seccomp.security.alpha" in k]
            note = (f"; the legacy annotation {legacy[0]} is ignored where the seccompProfile field exists"
                    if legacy and use_field else "")
            where = (*pod.path, "securityContext", "seccompProfile") if use_field else (
                *pod.metadata_path, "annotations", pss.SECCOMP_POD_ANNOTATION)
            yield pod.resource_violation(where, f"no seccomp profile for container(s) {', '.join(missing)}"
                                         f"{note}")


@control(
    id="KH-POD-014",
    title="AppArmor disabled",
    section=Section.POD,
    guidance=("NSA-POD-14",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="securityContext.appArmorProfile.type (pod or container) or a container.apparmor.security.beta."
    "kubernetes.io/<container> annotation is set to something other than the runtime default or a "
    "localhost profile (e.g. Unconfined).",
    why="AppArmor confines file and capability use on nodes that support it; unconfined removes that layer.",
    fix="Set securityContext.appArmorProfile.type: RuntimeDefault (or Localhost) and remove annotations "
    "container.apparmor.security.beta.kubernetes.io/<container>: unconfined.",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [ALL]}, appArmorProfile: {type: Unconfined}}")),
        Example(False, pod_example(meta="  annotations: {container.apparmor.security.beta.kubernetes.io/app: "
                                        "runtime/default}")),
    ),
)
def apparmor(ctx: Context) -> Iterator[Violation]:
    yield from _pss_rule(ctx, "appArmorProfile", pss.LATEST)


@control(
    id="KH-POD-015",
    title="Custom SELinux options",
    section=Section.POD,
    guidance=("NSA-POD-15",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="seLinuxOptions (pod or container) sets a type outside container_t, container_init_t, "
    "container_kvm_t and (Kubernetes 1.31+) container_engine_t, or sets user or role.",
    why="A custom SELinux type such as spc_t or unconfined_t runs the container without SELinux "
    "confinement on nodes that enforce it.",
    fix="Remove seLinuxOptions.type, seLinuxOptions.user and seLinuxOptions.role; set only "
    "seLinuxOptions.level when a specific MCS label is needed.",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [ALL]}, seLinuxOptions: {type: spc_t}}")),
        Example(False, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                                "capabilities: {drop: [ALL]}, seLinuxOptions: {level: 's0:c1,c2'}}")),
    ),
)
def selinux(ctx: Context) -> Iterator[Violation]:
    yield from _pss_rule(ctx, "seLinuxOptions", min(ctx.kubernetes_version, pss.LATEST))


@control(
    id="KH-POD-016",
    title="Host user namespace shared",
    section=Section.POD,
    guidance=("NSA-POD-16",),
    severity=Severity.LOW,
    kinds=WORKLOADS,
    min_version=(1, 33),
    what="A Linux pod does not set spec.hostUsers: false, so UID 0 in the container is UID 0 on the node "
    "(user namespaces are on by default from Kubernetes 1.33).",
    why="With a user namespace, root in the container maps to an unprivileged host user: the rootless "
    "isolation the guidance recommends adopting once stable.",
    fix="Set spec.hostUsers: false (requires a runtime and kernel with user-namespace support; not possible "
    "together with hostNetwork, hostPID or hostIPC).",
    examples=(
        Example(True, pod_example().replace("  hostUsers: false\n", "")),
        Example(False, pod_example()),
    ),
)
def host_user_namespace(ctx: Context) -> Iterator[Violation]:
    for pod in ctx.pod_specs():
        if is_windows(pod) or pod.spec.get("hostUsers") is False:
            continue
        value = pod.spec.get("hostUsers")
        yield pod.spec_violation(("hostUsers",), "pod shares the host user namespace (hostUsers is not false)",
                                 value, has_value=value is not None)


@control(
    id="KH-POD-030",
    title="Unsafe sysctl",
    section=Section.POD,
    guidance=("NSA-POD-20",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="spec.securityContext.sysctls names a sysctl outside the safe set of the Kubernetes version "
    "(the Pod Security Standards baseline list).",
    why="Unsafe sysctls change kernel parameters shared with other pods on the node or weaken kernel "
    "protections; the baseline level NSA-POD-20 asks to enforce forbids them.",
    fix="Remove the sysctl from spec.securityContext.sysctls (only e.g. net.ipv4.ip_local_port_range, "
    "net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, kernel.shm_rmid_forced are safe).",
    examples=(
        Example(True, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, "
                                         "fsGroup: 10001, seccompProfile: {type: RuntimeDefault}, "
                                         "sysctls: [{name: kernel.core_pattern, value: '|/x'}]}")),
        Example(False, pod_example(pod_sc="{runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, "
                                          "fsGroup: 10001, seccompProfile: {type: RuntimeDefault}, "
                                          "sysctls: [{name: net.ipv4.tcp_syncookies, value: '1'}]}")),
    ),
)
def unsafe_sysctl(ctx: Context) -> Iterator[Violation]:
    yield from _pss_rule(ctx, "sysctls", min(ctx.kubernetes_version, pss.LATEST))


@control(
    id="KH-POD-031",
    title="Unmasked /proc",
    section=Section.POD,
    guidance=("NSA-POD-20", "NSA-POD-5"),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A container sets securityContext.procMount to something other than Default (e.g. Unmasked); "
    "rated low when the pod has its own user namespace (hostUsers: false).",
    why="Unmasked /proc exposes kernel interfaces that the runtime normally hides or makes read-only.",
    fix="Remove securityContext.procMount (or set it to Default).",
    examples=(
        Example(True, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                               "capabilities: {drop: [ALL]}, procMount: Unmasked}")),
        Example(False, pod_example(container_sc="{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, "
                                                "capabilities: {drop: [ALL]}, procMount: Default}")),
    ),
)
def proc_mount(ctx: Context) -> Iterator[Violation]:
    for pod, v in _pss_hits(ctx, "procMount_restricted", "restricted"):
        severity = Severity.LOW if host_users_false(pod) else None
        yield pod.resource_violation(pss_path(pod, v.path), v.message, v.value, severity=severity)


@control(
    id="KH-POD-032",
    title="Probe or lifecycle hook aimed at another host",
    section=Section.POD,
    guidance=("NSA-POD-20",),
    severity=Severity.MEDIUM,
    kinds=WORKLOADS,
    what="A liveness/readiness/startup probe or a postStart/preStop hook sets httpGet.host or "
    "tcpSocket.host.",
    why="The kubelet makes these requests from the node: a host field turns it into a proxy towards "
    "node-local or metadata endpoints (forbidden by the baseline level from policy v1.34).",
    fix="Remove httpGet.host and tcpSocket.host from probes and lifecycle hooks so the kubelet targets the "
    "pod's own IP.",
    examples=(
        Example(True, pod_example("    readinessProbe: {tcpSocket: {host: 10.0.0.1, port: 10250}}")),
        Example(False, pod_example("    readinessProbe: {tcpSocket: {port: 8080}}")),
    ),
)
def host_probe(ctx: Context) -> Iterator[Violation]:
    for pod, v in _pss_hits(ctx, "hostProbesAndHostLifecycle"):
        # In a hostNetwork pod the loopback address is the pod itself: the baseline level still forbids
        # the field, but the kubelet is not sent to another host (KH-POD-007 reports the host network).
        self_target = pod.spec.get("hostNetwork") is True and str(v.value).strip("[]").lower() in LOOPBACK_HOSTS
        yield pod.resource_violation(pss_path(pod, v.path), v.message + (
            " (the pod is on the host network, so this is the pod itself)" if self_target else ""),
            v.value, severity=Severity.LOW if self_target else None)


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
