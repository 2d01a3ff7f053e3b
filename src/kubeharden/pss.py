"""Pod Security Standards: the checks of the Kubernetes Pod Security Admission controller.

Pure functions, no printing. ``evaluate(pod_metadata, pod_spec, level, version)`` returns what
the admission controller would reject at that level and policy version, one ``PSSViolation``
per offending field. Semantics follow ``k8s.io/pod-security-admission/policy/check_*.go``:
each check has versioned variants (the newest whose minimum is <= the policy version applies),
and at the restricted level some restricted checks replace a baseline check.

Paths in violations start at ``"metadata"`` or ``"spec"`` of the pod (or pod template).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubeharden.inventory import CONTAINER_FIELDS, as_dict, as_list
from kubeharden.model import SettingError

PolicyVersion = tuple[int, int]
PodPath = tuple[str | int, ...]

LATEST: PolicyVersion = (1, 37)  # newest policy version kubeharden knows
LEVELS = ("baseline", "restricted")

_VERSION_RE = re.compile(r"^v?1\.(0|[1-9][0-9]*)$")  # "1.30" as --kubernetes-version takes it


def parse_pss_version(text: str) -> PolicyVersion:
    """'v1.N' or 'latest' (as in pod-security.kubernetes.io/enforce-version) -> (1, N).

    'latest' is the newest known version; a version newer than any known is accepted and
    evaluated with the newest known checks, as the admission library does.
    """
    value = text.strip()
    if value == "latest":
        return LATEST
    match = _VERSION_RE.match(value)
    if not match:
        raise SettingError(f"invalid Pod Security Standards version {text!r} (expected 'latest' or v1.N, e.g. v1.30)")
    return 1, int(match.group(1))


def format_version(version: PolicyVersion) -> str:
    return f"v{version[0]}.{version[1]}"


@dataclass(frozen=True, slots=True)
class PSSViolation:
    check: str  # canonical PSS check ID, e.g. "runAsNonRoot"
    message: str
    path: PodPath  # where the offending (or missing) field is, from the pod root
    value: Any = None


# ---------------------------------------------------------------------------------------------
# Helpers over untrusted YAML: every access tolerates a wrong type.


def _containers(spec: dict[str, Any]) -> Iterator[tuple[PodPath, dict[str, Any]]]:
    for field in CONTAINER_FIELDS:
        for i, container in enumerate(as_list(spec.get(field))):
            if isinstance(container, dict):
                yield ("spec", field, i), container


def _cname(container: dict[str, Any]) -> str:
    return str(container.get("name") or "")


def _is_windows(spec: dict[str, Any]) -> bool:
    return as_dict(spec.get("os")).get("name") == "windows"


def _host_users_false(spec: dict[str, Any]) -> bool:
    return spec.get("hostUsers") is False


def _one_of(value: Any, names: frozenset[str]) -> bool:
    """``value in names`` that is False for a non-string (a list or mapping would not even hash)."""
    return isinstance(value, str) and value in names


def is_zero(value: Any) -> bool:
    """An integer 0 (a root UID or GID); not False, which YAML would also compare equal to 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


CheckFn = Callable[[dict[str, Any], dict[str, Any]], Iterator[PSSViolation]]


# ---------------------------------------------------------------------------------------------
# Baseline checks


def _host_namespaces(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            yield PSSViolation("hostNamespaces", f"{field}=true", ("spec", field), True)


def _privileged(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    for path, c in _containers(spec):
        if as_dict(c.get("securityContext")).get("privileged") is True:
            yield PSSViolation("privileged", f"container {_cname(c)!r} must not set securityContext.privileged=true",
                               (*path, "securityContext", "privileged"), True)


BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def _capabilities_baseline(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    for path, c in _containers(spec):
        caps = as_dict(as_dict(c.get("securityContext")).get("capabilities"))
        for i, cap in enumerate(as_list(caps.get("add"))):
            if not _one_of(cap, BASELINE_CAPABILITIES):
                yield PSSViolation("capabilities_baseline",
                                   f"container {_cname(c)!r} must not add capability {cap!r}",
                                   (*path, "securityContext", "capabilities", "add", i), cap)


def _host_path_volumes(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield PSSViolation("hostPathVolumes", f"volume {volume.get('name')!r} must not use hostPath",
                               ("spec", "volumes", i, "hostPath"))


def _unset_port(value: Any) -> bool:
    return value in (None, 0, "0", False, "")


def _host_ports(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    host_network = spec.get("hostNetwork") is True
    for path, c in _containers(spec):
        for i, port in enumerate(as_list(c.get("ports"))):
            host_port = as_dict(port).get("hostPort")
            container_port = as_dict(port).get("containerPort")
            if not _unset_port(host_port):
                yield PSSViolation("hostPorts", f"container {_cname(c)!r} must not set hostPort {host_port}",
                                   (*path, "ports", i, "hostPort"), host_port)
            elif host_network and path[1] != "ephemeralContainers" and not _unset_port(container_port):
                # The API server defaults hostPort to containerPort in hostNetwork pods, so admission sees
                # a host port here (ephemeral containers are not defaulted: they may not declare ports).
                yield PSSViolation("hostPorts",
                                   f"container {_cname(c)!r} uses hostNetwork, so containerPort {container_port} "
                                   "is also a host port (the API server sets hostPort to it)",
                                   (*path, "ports", i, "containerPort"), container_port)


_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_profile(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    def bad_field(sc: dict[str, Any], where: str, path: PodPath) -> Iterator[PSSViolation]:
        profile = sc.get("appArmorProfile")
        if profile is None:
            return
        kind = as_dict(profile).get("type")
        if kind not in ("RuntimeDefault", "Localhost"):
            yield PSSViolation("appArmorProfile", f"{where} must not set appArmorProfile.type={kind!r}",
                               (*path, "appArmorProfile", "type"), kind)

    yield from bad_field(as_dict(spec.get("securityContext")), "pod", ("spec", "securityContext"))
    for path, c in _containers(spec):
        yield from bad_field(as_dict(c.get("securityContext")), f"container {_cname(c)!r}", (*path, "securityContext"))
    for key, value in as_dict(meta.get("annotations")).items():
        if isinstance(key, str) and key.startswith(_APPARMOR_ANNOTATION):
            text = "" if value is None else str(value)
            if text not in ("", "runtime/default") and not text.startswith("localhost/"):
                yield PSSViolation("appArmorProfile", f"annotation {key}={text!r} is not allowed",
                                   ("metadata", "annotations", key), text)


SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(allowed: frozenset[str]) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        def bad(sc: dict[str, Any], where: str, path: PodPath) -> Iterator[PSSViolation]:
            opts = sc.get("seLinuxOptions")
            if not isinstance(opts, dict):
                return
            kind = opts.get("type")
            if not _one_of(kind or "", allowed):
                yield PSSViolation("seLinuxOptions", f"{where} must not set seLinuxOptions.type={kind!r}",
                                   (*path, "seLinuxOptions", "type"), kind)
            for field in ("user", "role"):
                if opts.get(field):
                    yield PSSViolation("seLinuxOptions", f"{where} must not set seLinuxOptions.{field}",
                                       (*path, "seLinuxOptions", field), opts.get(field))

        yield from bad(as_dict(spec.get("securityContext")), "pod", ("spec", "securityContext"))
        for path, c in _containers(spec):
            yield from bad(as_dict(c.get("securityContext")), f"container {_cname(c)!r}", (*path, "securityContext"))

    return check


def _proc_mount(check_id: str, user_namespace_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if user_namespace_exempt and _host_users_false(spec):
            return
        for path, c in _containers(spec):
            mount = as_dict(c.get("securityContext")).get("procMount")
            if mount is not None and mount != "Default":
                yield PSSViolation(check_id, f"container {_cname(c)!r} must not set procMount={mount!r}",
                                   (*path, "securityContext", "procMount"), mount)

    return check


SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


def valid_seccomp_annotation(value: Any) -> bool:
    text = "" if value is None else str(value)
    return text in ("runtime/default", "docker/default") or text.startswith("localhost/")


def _seccomp_baseline_1_0(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    annotations = as_dict(meta.get("annotations"))
    if SECCOMP_POD_ANNOTATION in annotations:
        value = annotations[SECCOMP_POD_ANNOTATION]
        if not valid_seccomp_annotation(value):
            yield PSSViolation("seccompProfile_baseline",
                               f"annotation {SECCOMP_POD_ANNOTATION}={value!r} is not allowed",
                               ("metadata", "annotations", SECCOMP_POD_ANNOTATION), value)
    for _path, c in _containers(spec):
        key = SECCOMP_CONTAINER_ANNOTATION + _cname(c)
        if key in annotations and not valid_seccomp_annotation(annotations[key]):
            yield PSSViolation("seccompProfile_baseline", f"annotation {key}={annotations[key]!r} is not allowed",
                               ("metadata", "annotations", key), annotations[key])


_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _seccomp_baseline_1_19(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    def bad(sc: dict[str, Any], where: str, path: PodPath) -> Iterator[PSSViolation]:
        profile = sc.get("seccompProfile")
        if profile is None:
            return
        kind = as_dict(profile).get("type")
        if kind not in _SECCOMP_TYPES:
            yield PSSViolation("seccompProfile_baseline", f"{where} must not set seccompProfile.type={kind!r}",
                               (*path, "seccompProfile", "type"), kind)

    yield from bad(as_dict(spec.get("securityContext")), "pod", ("spec", "securityContext"))
    for path, c in _containers(spec):
        yield from bad(as_dict(c.get("securityContext")), f"container {_cname(c)!r}", (*path, "securityContext"))


SYSCTLS_1_0 = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
})
SYSCTLS_1_27 = SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
SYSCTLS_1_29 = SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SYSCTLS_1_32 = SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
SYSCTLS_1_37 = SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}
SAFE_SYSCTLS: tuple[tuple[PolicyVersion, frozenset[str]], ...] = (
    ((1, 0), SYSCTLS_1_0), ((1, 27), SYSCTLS_1_27), ((1, 29), SYSCTLS_1_29), ((1, 32), SYSCTLS_1_32),
    ((1, 37), SYSCTLS_1_37),
)


def _sysctls(allowed: frozenset[str]) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        for i, sysctl in enumerate(as_list(as_dict(spec.get("securityContext")).get("sysctls"))):
            name = as_dict(sysctl).get("name")
            if not _one_of(name, allowed):
                yield PSSViolation("sysctls", f"sysctl {name!r} is not allowed",
                                   ("spec", "securityContext", "sysctls", i, "name"), name)

    return check


def _windows_host_process(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    def bad(sc: dict[str, Any], where: str, path: PodPath) -> Iterator[PSSViolation]:
        if as_dict(sc.get("windowsOptions")).get("hostProcess") is True:
            yield PSSViolation("windowsHostProcess", f"{where} must not set windowsOptions.hostProcess=true",
                               (*path, "windowsOptions", "hostProcess"), True)

    yield from bad(as_dict(spec.get("securityContext")), "pod", ("spec", "securityContext"))
    for path, c in _containers(spec):
        yield from bad(as_dict(c.get("securityContext")), f"container {_cname(c)!r}", (*path, "securityContext"))


def _host_probes(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    handlers: list[tuple[tuple[str, ...], str]] = [
        ((p,), p) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
    handlers += [(("lifecycle", h), f"lifecycle.{h}") for h in ("postStart", "preStop")]
    for path, c in _containers(spec):
        for rel, label in handlers:
            handler: Any = c
            for key in rel:
                handler = as_dict(handler).get(key)
            for action in ("httpGet", "tcpSocket"):
                host = as_dict(as_dict(handler).get(action)).get("host")
                if host:
                    yield PSSViolation("hostProbesAndHostLifecycle",
                                       f"container {_cname(c)!r} {label}.{action}.host must not be set ({host!r})",
                                       (*path, *rel, action, "host"), host)


# ---------------------------------------------------------------------------------------------
# Restricted checks

RESTRICTED_VOLUME_SOURCES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret",
})


def _restricted_volumes(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        if not isinstance(volume, dict):
            continue
        # A volume with no source is defaulted to emptyDir by the API server: allowed.
        for key, value in volume.items():
            if key != "name" and value is not None and key not in RESTRICTED_VOLUME_SOURCES:
                yield PSSViolation("restrictedVolumes", f"volume {volume.get('name')!r} must not use {key}",
                                   ("spec", "volumes", i, key))


def _allow_privilege_escalation(windows_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if windows_exempt and _is_windows(spec):
            return
        for path, c in _containers(spec):
            value = as_dict(c.get("securityContext")).get("allowPrivilegeEscalation")
            if value is not False:
                yield PSSViolation("allowPrivilegeEscalation",
                                   f"container {_cname(c)!r} must set securityContext.allowPrivilegeEscalation=false",
                                   (*path, "securityContext", "allowPrivilegeEscalation"), value)

    return check


def _run_as_non_root(user_namespace_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if user_namespace_exempt and _host_users_false(spec):
            return
        pod_value = as_dict(spec.get("securityContext")).get("runAsNonRoot")
        if pod_value is False:
            yield PSSViolation("runAsNonRoot", "pod must not set securityContext.runAsNonRoot=false",
                               ("spec", "securityContext", "runAsNonRoot"), False)
        for path, c in _containers(spec):
            value = as_dict(c.get("securityContext")).get("runAsNonRoot")
            if value is False:
                yield PSSViolation("runAsNonRoot", f"container {_cname(c)!r} must not set runAsNonRoot=false",
                                   (*path, "securityContext", "runAsNonRoot"), False)
            elif value is None and pod_value is not True:
                yield PSSViolation("runAsNonRoot",
                                   f"pod or container {_cname(c)!r} must set securityContext.runAsNonRoot=true",
                                   (*path, "securityContext", "runAsNonRoot"))

    return check


def _run_as_user(user_namespace_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if user_namespace_exempt and _host_users_false(spec):
            return
        if is_zero(as_dict(spec.get("securityContext")).get("runAsUser")):
            yield PSSViolation("runAsUser", "pod must not set runAsUser=0",
                               ("spec", "securityContext", "runAsUser"), 0)
        for path, c in _containers(spec):
            if is_zero(as_dict(c.get("securityContext")).get("runAsUser")):
                yield PSSViolation("runAsUser", f"container {_cname(c)!r} must not set runAsUser=0",
                                   (*path, "securityContext", "runAsUser"), 0)

    return check


def _seccomp_restricted(windows_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if windows_exempt and _is_windows(spec):
            return
        pod_profile = as_dict(spec.get("securityContext")).get("seccompProfile")
        pod_valid = False
        if pod_profile is not None:
            kind = as_dict(pod_profile).get("type")
            if kind in _SECCOMP_TYPES:
                pod_valid = True
            else:
                yield PSSViolation("seccompProfile_restricted", f"pod must not set seccompProfile.type={kind!r}",
                                   ("spec", "securityContext", "seccompProfile", "type"), kind)
        for path, c in _containers(spec):
            profile = as_dict(c.get("securityContext")).get("seccompProfile")
            if profile is not None:
                kind = as_dict(profile).get("type")
                if kind not in _SECCOMP_TYPES:
                    yield PSSViolation("seccompProfile_restricted",
                                       f"container {_cname(c)!r} must not set seccompProfile.type={kind!r}",
                                       (*path, "securityContext", "seccompProfile", "type"), kind)
            elif not pod_valid:
                yield PSSViolation("seccompProfile_restricted",
                                   f"pod or container {_cname(c)!r} must set securityContext.seccompProfile.type "
                                   "to RuntimeDefault or Localhost",
                                   (*path, "securityContext", "seccompProfile"))

    return check


def _capabilities_restricted(windows_exempt: bool) -> CheckFn:
    def check(meta: dict[str, Any], spec: dict[str, Any]) -> Iterator[PSSViolation]:
        if windows_exempt and _is_windows(spec):
            return
        for path, c in _containers(spec):
            caps = as_dict(c.get("securityContext")).get("capabilities")
            cap_path = (*path, "securityContext", "capabilities")
            if not isinstance(caps, dict):
                yield PSSViolation("capabilities_restricted",
                                   f"container {_cname(c)!r} must set securityContext.capabilities.drop=[\"ALL\"]",
                                   (*cap_path, "drop"))
                continue
            if "ALL" not in as_list(caps.get("drop")):
                yield PSSViolation("capabilities_restricted",
                                   f"container {_cname(c)!r} must set securityContext.capabilities.drop=[\"ALL\"]",
                                   (*cap_path, "drop"), caps.get("drop"))
            for i, cap in enumerate(as_list(caps.get("add"))):
                if cap != "NET_BIND_SERVICE":
                    yield PSSViolation("capabilities_restricted",
                                       f"container {_cname(c)!r} must not add capability {cap!r}",
                                       (*cap_path, "add", i), cap)

    return check


# ---------------------------------------------------------------------------------------------
# The check table


@dataclass(frozen=True, slots=True)
class Variant:
    min_version: PolicyVersion
    fn: CheckFn
    overrides: tuple[str, ...] = ()  # baseline checks this restricted variant replaces


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    level: str
    variants: tuple[Variant, ...]  # ascending min_version

    def variant_at(self, version: PolicyVersion) -> Variant | None:
        chosen = None
        for variant in self.variants:
            if variant.min_version <= version:
                chosen = variant
        return chosen


CHECKS: dict[str, Check] = {c.id: c for c in (
    Check("hostNamespaces", "baseline", (Variant((1, 0), _host_namespaces),)),
    Check("privileged", "baseline", (Variant((1, 0), _privileged),)),
    Check("capabilities_baseline", "baseline", (Variant((1, 0), _capabilities_baseline),)),
    Check("hostPathVolumes", "baseline", (Variant((1, 0), _host_path_volumes),)),
    Check("hostPorts", "baseline", (Variant((1, 0), _host_ports),)),
    Check("appArmorProfile", "baseline", (Variant((1, 0), _apparmor_profile),)),
    Check("seLinuxOptions", "baseline", (Variant((1, 0), _selinux(SELINUX_TYPES_1_0)),
                                         Variant((1, 31), _selinux(SELINUX_TYPES_1_31)))),
    Check("procMount", "baseline", (Variant((1, 0), _proc_mount("procMount", False)),
                                    Variant((1, 35), _proc_mount("procMount", True)))),
    Check("seccompProfile_baseline", "baseline", (Variant((1, 0), _seccomp_baseline_1_0),
                                                  Variant((1, 19), _seccomp_baseline_1_19))),
    Check("sysctls", "baseline", tuple(Variant(v, _sysctls(names)) for v, names in SAFE_SYSCTLS)),
    Check("windowsHostProcess", "baseline", (Variant((1, 0), _windows_host_process),)),
    Check("hostProbesAndHostLifecycle", "baseline", (Variant((1, 34), _host_probes),)),
    Check("restrictedVolumes", "restricted", (Variant((1, 0), _restricted_volumes, ("hostPathVolumes",)),)),
    Check("allowPrivilegeEscalation", "restricted", (Variant((1, 8), _allow_privilege_escalation(False)),
                                                     Variant((1, 25), _allow_privilege_escalation(True)))),
    Check("runAsNonRoot", "restricted", (Variant((1, 0), _run_as_non_root(False)),
                                         Variant((1, 35), _run_as_non_root(True)))),
    Check("runAsUser", "restricted", (Variant((1, 23), _run_as_user(False)),
                                      Variant((1, 35), _run_as_user(True)))),
    Check("seccompProfile_restricted", "restricted", (
        Variant((1, 19), _seccomp_restricted(False), ("seccompProfile_baseline",)),
        Variant((1, 25), _seccomp_restricted(True), ("seccompProfile_baseline",)))),
    Check("capabilities_restricted", "restricted", (
        Variant((1, 22), _capabilities_restricted(False), ("capabilities_baseline",)),
        Variant((1, 25), _capabilities_restricted(True), ("capabilities_baseline",)))),
    Check("procMount_restricted", "restricted", (
        Variant((1, 35), _proc_mount("procMount_restricted", False), ("procMount",)),)),
)}


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security Standards level {level!r} (expected baseline or restricted)")


def active_checks(level: str, version: PolicyVersion) -> dict[str, Variant]:
    """The checks the admission controller runs at ``level`` and ``version``, with their variant."""
    _check_level(level)
    version = min(version, LATEST)
    active: dict[str, Variant] = {}
    for check in CHECKS.values():
        if check.level == "restricted" and level == "baseline":
            continue
        variant = check.variant_at(version)
        if variant is not None:
            active[check.id] = variant
    for variant in list(active.values()):
        for replaced in variant.overrides:
            active.pop(replaced, None)
    return active


def evaluate(
    pod_metadata: dict[str, Any] | None,
    pod_spec: dict[str, Any] | None,
    level: str,
    version: PolicyVersion,
    only: frozenset[str] | set[str] | None = None,
) -> list[PSSViolation]:
    """Everything the PSA controller forbids in this pod at ``level``/``version`` (``only``:
    restrict to these check IDs, still honouring the level's overrides)."""
    meta = as_dict(pod_metadata)
    spec = as_dict(pod_spec)
    out: list[PSSViolation] = []
    for check_id, variant in active_checks(level, version).items():
        if only is None or check_id in only:
            out.extend(variant.fn(meta, spec))
    return out
