"""Fixes of the pod-level controls: the edits that remove a violation, and their level.

A fixer is registered per control id and computes a `Fix` from the violation the control
reported (its path from the resource root, container indices resolved) and the resource it
is in. The engine attaches it to the finding (`Finding.fix`) unless the control set
`Violation.fix` itself. Fixers return None when no edit is well defined (the fix needs a new
object or a human choice that no `--set` key expresses). Levels are explained per control in
docs/fix.md: a fix is `safe` only when it cannot change what the workload does.
"""

from __future__ import annotations

from collections.abc import Callable

from kubeharden.controls.pod_common import effective, host_users_false, is_int, is_windows
from kubeharden.inventory import CONTAINER_FIELDS, ContainerView, PodSpecView, as_dict, as_list, pod_spec_of
from kubeharden.model import Fix, FixLevel, FixOp, Path, Violation

Fixer = Callable[[Violation], "Fix | None"]
_FIXERS: dict[str, Fixer] = {}

SAFE, TIGHTENING, NEEDS_VALUE = FixLevel.SAFE, FixLevel.TIGHTENING, FixLevel.NEEDS_VALUE
# Capabilities whose removal the controls themselves call a documented need (KH-POD-033's fix text).
KEPT_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# The `--set` keys of needs-value fixes.
RESOURCE_KEYS = ("limits.cpu", "limits.memory", "requests.cpu", "requests.memory")


def fixer(*control_ids: str) -> Callable[[Fixer], Fixer]:
    def register(fn: Fixer) -> Fixer:
        for control_id in control_ids:
            _FIXERS[control_id] = fn
        return fn
    return register


def fix_for(control_id: str, violation: Violation) -> Fix | None:
    """The fix of one violation, or None (also for evidence that is not a resource)."""
    fn = _FIXERS.get(control_id)
    if fn is None or violation.resource is None:
        return None
    return fn(violation)


def fixable_controls() -> tuple[str, ...]:
    return tuple(sorted(_FIXERS))


def set_op(path: Path, value: object) -> FixOp:
    return FixOp("set", path, value)


def set_from(path: Path, key: str) -> FixOp:
    return FixOp("set", path, None, key)


def delete_op(path: Path) -> FixOp:
    return FixOp("delete", path)


# ---------------------------------------------------------------------------------------------
# Where a violation sits


def _pod(v: Violation) -> PodSpecView | None:
    assert v.resource is not None
    pod = pod_spec_of(v.resource)
    if pod is None or is_windows(pod):
        return None  # Windows pods: the Linux securityContext fields are invalid there
    if v.path[: len(pod.path)] != pod.path and v.path[: len(pod.metadata_path)] != pod.metadata_path:
        return None
    return pod


def _container(pod: PodSpecView, path: Path) -> ContainerView | None:
    """The container whose subtree holds ``path``."""
    rel = path[len(pod.path):]
    if path[: len(pod.path)] != pod.path or len(rel) < 2 or rel[0] not in CONTAINER_FIELDS or not is_int(rel[1]):
        return None
    for c in pod.containers((str(rel[0]),)):
        if c.index == rel[1]:
            return c
    return None


def _container_of(v: Violation) -> tuple[PodSpecView, ContainerView] | None:
    pod = _pod(v)
    c = _container(pod, v.path) if pod is not None else None
    return (pod, c) if pod is not None and c is not None else None


def _sc_path(c: ContainerView, *rel: str) -> Path:
    return (*c.path, "securityContext", *rel)


def _adds_sys_admin(c: ContainerView) -> bool:
    caps = as_dict(c.security_context.get("capabilities"))
    return any(str(cap).upper().removeprefix("CAP_") == "SYS_ADMIN" for cap in as_list(caps.get("add")))


# ---------------------------------------------------------------------------------------------
# Fixers


@fixer("KH-POD-005")
def _privileged(v: Violation) -> Fix | None:
    if _container_of(v) is None or v.path[-1] != "privileged":
        return None
    return Fix(TIGHTENING, (set_op(v.path, False),),
               "a container that manages the node (CNI, storage or device agents) needs it")


@fixer("KH-POD-004")
def _escalation(v: Violation) -> Fix | None:
    found = _container_of(v)
    if found is None:
        return None
    _, c = found
    # The API refuses allowPrivilegeEscalation: false next to privileged: true or an added
    # SYS_ADMIN: those findings (KH-POD-005, KH-POD-033) are fixed first, this one on the next round.
    if c.security_context.get("privileged") is True or _adds_sys_admin(c):
        return None
    return Fix(TIGHTENING, (set_op(_sc_path(c, "allowPrivilegeEscalation"), False),),
               "setuid binaries and file capabilities (sudo, some ping builds) stop granting privileges")


@fixer("KH-POD-006", "KH-POD-007")
def _host_namespace(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None or v.path[:-1] != pod.path or v.path[-1] not in ("hostPID", "hostIPC", "hostNetwork"):
        return None
    return Fix(TIGHTENING, (set_op(v.path, False),), "node agents that watch host processes or the host network "
               "need it")


@fixer("KH-POD-008")
def _host_port(v: Violation) -> Fix | None:
    pod = _pod(v)
    # With hostNetwork the API server sets hostPort to containerPort anyway: nothing to remove here.
    if pod is None or v.path[-1] != "hostPort" or pod.spec.get("hostNetwork") is True:
        return None
    return Fix(TIGHTENING, (delete_op(v.path),), "clients that reach the pod on the node's address must go "
               "through a Service")


@fixer("KH-POD-010")
def _read_only_root(v: Violation) -> Fix | None:
    found = _container_of(v)
    if found is None:
        return None
    return Fix(TIGHTENING, (set_op(_sc_path(found[1], "readOnlyRootFilesystem"), True),),
               "an application that writes outside its volumes needs an emptyDir mounted there")


def _no_effective_capabilities(c: ContainerView) -> bool:
    """A non-root process under no_new_privs never holds a capability (Kubernetes sets no ambient
    capabilities, and no_new_privs ignores file capabilities and setuid): its bounding set is moot."""
    user, _ = effective(c, "runAsUser")
    sc = c.security_context
    caps = as_dict(sc.get("capabilities"))
    return (is_int(user) and user > 0 and sc.get("allowPrivilegeEscalation") is False
            and sc.get("privileged") is not True and not as_list(caps.get("add")))


@fixer("KH-POD-011")
def _drop_all(v: Violation) -> Fix | None:
    found = _container_of(v)
    if found is None:
        return None
    _, c = found
    drop_path = _sc_path(c, "capabilities", "drop")
    drops = as_list(as_dict(c.security_context.get("capabilities")).get("drop"))
    lower = [i for i, d in enumerate(drops) if isinstance(d, str) and d.upper() == "ALL"]
    if lower:  # 'all': the runtimes already drop everything; only the spelling changes
        return Fix(SAFE, tuple(set_op((*drop_path, i), "ALL") for i in lower))
    if not isinstance(drops, list) or (c.security_context.get("capabilities") is not None
                                       and not isinstance(c.security_context.get("capabilities"), dict)):
        return None
    op = FixOp("append", drop_path, "ALL")
    if _no_effective_capabilities(c):
        return Fix(SAFE, (op,), "the container runs as a non-root user with no_new_privs: it holds no capability")
    return Fix(TIGHTENING, (op,), "a process that uses a default capability (CHOWN, SETUID, NET_BIND_SERVICE...) "
               "needs it added back")


@fixer("KH-POD-033")
def _added_capability(v: Violation) -> Fix | None:
    if _container_of(v) is None or not is_int(v.path[-1]) or v.path[-2] != "add":
        return None
    cap = v.value
    if not isinstance(cap, str) or cap.upper().removeprefix("CAP_") in KEPT_CAPABILITIES:
        return None
    return Fix(TIGHTENING, (FixOp("remove-item", v.path[:-1], cap),),
               f"a workload that uses {cap} (often network or storage agents) stops working")


@fixer("KH-POD-002")
def _run_as_root(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None:
        return None
    field = v.path[-1]
    if field == "runAsUser":  # UID 0: a non-root UID only a human can choose
        ops = [set_from(v.path, "runAsUser"), set_op((*v.path[:-1], "runAsNonRoot"), True)]
        for c in pod.containers():  # a container-level runAsNonRoot: false would still win
            if c.security_context.get("runAsNonRoot") is False and effective(c, "runAsUser")[1] == v.path:
                ops.append(set_op(_sc_path(c, "runAsNonRoot"), True))
        return Fix(NEEDS_VALUE, tuple(dict.fromkeys(ops)), "the UID must own what the application reads and writes")
    if field != "runAsNonRoot":
        return None
    # Every container whose runAsNonRoot this field decides (one, unless it is the pod's).
    decided = [c for c in pod.containers() if effective(c, "runAsNonRoot")[1] == v.path]
    if not decided:
        return None
    # The kubelet's check passes on the UIDs already set, or on the numeric non-root USER of the
    # image the registry says runs (KH-POD-002 names those containers in its evidence).
    registry_non_root = set(v.evidence.get("non_root_images") or ())
    if all((is_int(u) and u > 0) or c.name in registry_non_root
           for c, u in ((c, effective(c, "runAsUser")[0]) for c in decided)):
        return Fix(SAFE, (set_op(v.path, True),), "the container already runs as a non-root UID")
    return Fix(TIGHTENING, (set_op(v.path, True),),
               "the kubelet refuses to start an image whose user is root or not numeric")


@fixer("KH-POD-003")
def _root_group(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None:
        return None
    field = v.path[-2] if is_int(v.path[-1]) else v.path[-1]
    if field == "supplementalGroups":
        return Fix(TIGHTENING, (FixOp("remove-item", v.path[:-1], 0),), "files readable only by group 0 are no "
                   "longer readable")
    if field in ("runAsGroup", "fsGroup"):
        return Fix(NEEDS_VALUE, (set_from(v.path, str(field)),), "the GID must own what the application reads and "
                   "writes")
    return None


@fixer("KH-POD-013")
def _seccomp(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None:
        return None
    if v.path[-1] == "type":  # an explicit Unconfined (or unknown) profile
        return Fix(TIGHTENING, (set_op(v.path, "RuntimeDefault"),), "system calls outside the runtime's default "
                   "profile are refused")
    if v.path[-1] == "seccompProfile":
        return Fix(TIGHTENING, (set_op((*v.path, "type"), "RuntimeDefault"),), "system calls outside the runtime's "
                   "default profile are refused")
    if v.path[-2] == "annotations":  # before Kubernetes 1.19: the legacy annotation
        return Fix(TIGHTENING, (set_op(v.path, "runtime/default"),), "system calls outside the runtime's default "
                   "profile are refused")
    return None


@fixer("KH-POD-014")
def _apparmor(v: Violation) -> Fix | None:
    if _pod(v) is None:
        return None
    if v.path[-1] == "type" and v.path[-2] == "appArmorProfile":
        return Fix(TIGHTENING, (set_op(v.path, "RuntimeDefault"),), "the runtime's default AppArmor profile applies")
    if v.path[-2] == "annotations":
        return Fix(TIGHTENING, (set_op(v.path, "runtime/default"),), "the runtime's default AppArmor profile applies")
    return None


@fixer("KH-POD-015")
def _selinux(v: Violation) -> Fix | None:
    if _pod(v) is None or v.path[-2:-1] != ("seLinuxOptions",) or v.path[-1] not in ("type", "user", "role"):
        return None
    return Fix(TIGHTENING, (delete_op(v.path),), "the container runs with the runtime's SELinux type")


@fixer("KH-POD-016")
def _host_users(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None or v.path != (*pod.path, "hostUsers"):
        return None
    # The API refuses hostUsers: false next to host namespaces; privileged containers and
    # hostPath volumes change meaning inside a user namespace: those need a human.
    if any(pod.spec.get(f) is True for f in ("hostNetwork", "hostPID", "hostIPC")) or host_users_false(pod):
        return None
    if any(c.security_context.get("privileged") is True for c in pod.containers()):
        return None
    if any(isinstance(vol, dict) and vol.get("hostPath") is not None for vol in as_list(pod.spec.get("volumes"))):
        return None
    return Fix(TIGHTENING, (set_op(v.path, False),), "needs a runtime and kernel with user-namespace support")


@fixer("KH-POD-023")
def _token(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None or v.path != (*pod.path, "automountServiceAccountToken"):
        return None
    return Fix(TIGHTENING, (set_op(v.path, False),), "an application that calls the Kubernetes API loses its token")


@fixer("KH-POD-030")
def _sysctl(v: Violation) -> Fix | None:
    pod = _pod(v)
    if pod is None:
        return None
    rel = v.path[len(pod.path):]
    if rel[:2] != ("securityContext", "sysctls") or len(rel) < 3 or not is_int(rel[2]):
        return None
    item = as_list(pod.security_context.get("sysctls"))[int(rel[2])]
    return Fix(TIGHTENING, (FixOp("remove-item", (*pod.path, "securityContext", "sysctls"), item),),
               "the kernel parameter keeps the node's value")


@fixer("KH-POD-031")
def _proc_mount(v: Violation) -> Fix | None:
    if _container_of(v) is None or v.path[-1] != "procMount":
        return None
    return Fix(TIGHTENING, (set_op(v.path, "Default"),), "nested container runtimes need an unmasked /proc")


@fixer("KH-POD-032")
def _probe_host(v: Violation) -> Fix | None:
    if _container_of(v) is None or v.path[-1] != "host" or v.path[-2] not in ("httpGet", "tcpSocket"):
        return None
    return Fix(TIGHTENING, (delete_op(v.path),), "the probe or hook then targets the pod's own IP")


@fixer("KH-NET-014")
def _resources(v: Violation) -> Fix | None:
    found = _container_of(v)
    if found is None or v.path[-1] != "resources":
        return None
    _, c = found
    resources = as_dict(c.obj.get("resources"))
    ops = []
    for key in RESOURCE_KEYS:
        kind, name = key.split(".")
        if name not in as_dict(resources.get(kind)):
            ops.append(set_from((*c.path, "resources", kind, name), f"resources.{key}"))
    if not ops:
        return None
    return Fix(NEEDS_VALUE, tuple(ops), "requests and limits must fit what the application uses")
