"""Pod Security Standards profiles ``pss-baseline`` and ``pss-restricted``.

One control per PSS check; the evaluation itself lives in :mod:`kubeharden.pss`. The restricted
profile is the baseline checks plus the restricted ones, minus the baseline checks a restricted
check replaces. A replacement that depends on the policy version (seccomp from v1.19,
capabilities from v1.22, procMount from v1.35) is one restricted control that runs the baseline
variant below that version, so neither profile needs to know which profile is running.

The policy version comes from ``ctx.settings.extra["pss_version"]`` ("v1.N" or "latest");
"latest" means what the admission controller of the scanned Kubernetes version runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from kubeharden import pss
from kubeharden.catalog import Context, Example, Profile, control, register_profile
from kubeharden.controls.pod_common import WORKLOADS, pss_path
from kubeharden.model import NotAssessed, Section, Severity, Violation

BASELINE = "pss-baseline"
RESTRICTED = "pss-restricted"

register_profile(Profile(BASELINE, "Kubernetes Pod Security Standards, baseline level (as Pod Security Admission "
                                   "evaluates it at --pss-version)"))
register_profile(Profile(RESTRICTED, "Kubernetes Pod Security Standards, restricted level (as Pod Security "
                                     "Admission evaluates it at --pss-version)"))


def policy_version(ctx: Context) -> pss.PolicyVersion:
    """The PSS policy version of this scan. An invalid value raises ValueError."""
    raw = ctx.settings.extra.get("pss_version")
    if raw is None or str(raw).strip() in ("", "latest"):
        return min(ctx.kubernetes_version, pss.LATEST)
    return pss.parse_pss_version(str(raw))


def _pod_yaml(spec: str, *, meta: str = "", pod_sc: str = "", container_sc: str = "") -> str:
    """A Pod manifest for examples: restricted-compliant unless the arguments change it."""
    meta_block = f"\n{meta}" if meta else ""
    psc = pod_sc or "{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}"
    csc = container_sc or "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}"
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: example{meta_block}
spec:
  securityContext: {psc}
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext: {csc}
{spec}"""


GOOD_POD = _pod_yaml("")


@dataclass(frozen=True)
class _Spec:
    id: str
    check: str  # the PSS check this control reports
    title: str
    severity: Severity
    guidance: tuple[str, ...]
    what: str
    fix: str
    bad: str
    profiles: tuple[str, ...]
    fallback: tuple[str, ...] = ()  # baseline check run below the version the check replaces it

    @property
    def level(self) -> str:
        return "baseline" if BASELINE in self.profiles else "restricted"


_WHY = ("Pod Security Admission rejects this at the {level} level; a pod that violates it runs with more "
        "privilege than the Pod Security Standards allow (NSA-POD-20 asks for a minimum enforced level).")


def _make_check(spec: _Spec) -> Callable[[Context], Iterator[Violation]]:
    wanted = {spec.check, *spec.fallback}

    def check(ctx: Context) -> Iterator[Violation]:
        version = policy_version(ctx)
        active = set(pss.active_checks(spec.level, version)) & wanted
        if not active:
            raise NotAssessed(f"PSS check {spec.check} is not part of policy version {pss.format_version(version)}")
        for pod in ctx.pod_specs():
            for v in pss.evaluate(pod.metadata, pod.spec, spec.level, version, only=active):
                yield pod.resource_violation(
                    pss_path(pod, v.path), f"{v.check}: {v.message}", v.value, has_value=v.value is not None,
                    evidence={"pss_check": v.check, "pss_level": spec.level,
                              "pss_version": pss.format_version(version), "control": spec.id},
                )

    check.__name__ = f"pss_{spec.check.lower()}"
    return check


_BOTH = (BASELINE, RESTRICTED)
_SPECS: tuple[_Spec, ...] = (
    _Spec("KH-PSS-001", "hostNamespaces", "PSS: host namespaces", Severity.HIGH, ("NSA-POD-6", "NSA-POD-7"),
          "The pod sets hostNetwork, hostPID or hostIPC to true.",
          "Remove spec.hostNetwork, spec.hostPID and spec.hostIPC (or set them to false).",
          _pod_yaml("  hostPID: true"), _BOTH),
    _Spec("KH-PSS-002", "privileged", "PSS: privileged container", Severity.CRITICAL, ("NSA-POD-5",),
          "A container sets securityContext.privileged: true.",
          "Remove securityContext.privileged from every container (or set it to false).",
          _pod_yaml("", container_sc="{privileged: true, allowPrivilegeEscalation: false, "
                                     "capabilities: {drop: [ALL]}}"), _BOTH),
    _Spec("KH-PSS-003", "capabilities_baseline", "PSS: capabilities beyond the default set", Severity.HIGH,
          ("NSA-POD-11",),
          "A container adds a capability outside the container runtime's default set.",
          "Remove every entry of securityContext.capabilities.add that is not one of AUDIT_WRITE, CHOWN, "
          "DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, "
          "SYS_CHROOT.",
          _pod_yaml("", container_sc="{capabilities: {add: [SYS_ADMIN]}}"), (BASELINE,)),
    _Spec("KH-PSS-004", "hostPathVolumes", "PSS: hostPath volumes", Severity.HIGH, ("NSA-POD-9",),
          "The pod has a hostPath volume.",
          "Replace each spec.volumes[*].hostPath with a persistentVolumeClaim, configMap, secret or emptyDir.",
          _pod_yaml("  volumes: [{name: host, hostPath: {path: /etc}}]"), (BASELINE,)),
    _Spec("KH-PSS-005", "hostPorts", "PSS: host ports", Severity.MEDIUM, ("NSA-POD-8",),
          "A container port sets a non-zero hostPort.",
          "Remove containers[*].ports[*].hostPort (or set it to 0) and expose the port through a Service.",
          _pod_yaml("    ports: [{containerPort: 80, hostPort: 80}]"), _BOTH),
    _Spec("KH-PSS-006", "appArmorProfile", "PSS: AppArmor profile overridden", Severity.MEDIUM, ("NSA-POD-14",),
          "An AppArmor profile (field or legacy annotation) other than the runtime default or a localhost "
          "profile, e.g. Unconfined.",
          "Set securityContext.appArmorProfile.type to RuntimeDefault (or Localhost) and remove "
          "container.apparmor.security.beta.kubernetes.io/* annotations whose value is unconfined.",
          _pod_yaml("", meta="  annotations: {container.apparmor.security.beta.kubernetes.io/app: unconfined}"),
          _BOTH),
    _Spec("KH-PSS-007", "seLinuxOptions", "PSS: custom SELinux options", Severity.MEDIUM, ("NSA-POD-15",),
          "seLinuxOptions sets a type outside container_t, container_init_t, container_kvm_t, "
          "container_engine_t (v1.31+), or sets user or role.",
          "Remove seLinuxOptions.user and seLinuxOptions.role, and leave seLinuxOptions.type empty or "
          "container_t; only seLinuxOptions.level may be customised.",
          _pod_yaml("", pod_sc="{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, "
                               "seLinuxOptions: {type: spc_t}}"), _BOTH),
    _Spec("KH-PSS-008", "procMount", "PSS: unmasked /proc", Severity.MEDIUM, ("NSA-POD-20",),
          "A container sets securityContext.procMount to something other than Default.",
          "Remove securityContext.procMount (or set it to Default).",
          _pod_yaml("", container_sc="{procMount: Unmasked}"), (BASELINE,)),
    _Spec("KH-PSS-009", "seccompProfile_baseline", "PSS: seccomp disabled", Severity.MEDIUM, ("NSA-POD-13",),
          "A seccomp profile set to Unconfined (v1.19+: securityContext.seccompProfile; before: the "
          "seccomp.security.alpha.kubernetes.io annotations).",
          "Set securityContext.seccompProfile.type to RuntimeDefault (or Localhost).",
          _pod_yaml("", pod_sc="{seccompProfile: {type: Unconfined}}"), (BASELINE,)),
    _Spec("KH-PSS-010", "sysctls", "PSS: unsafe sysctls", Severity.MEDIUM, ("NSA-POD-20",),
          "spec.securityContext.sysctls names a sysctl outside the safe set of the policy version.",
          "Remove every spec.securityContext.sysctls entry that is not in the safe set (e.g. "
          "net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies, kernel.shm_rmid_forced).",
          _pod_yaml("", pod_sc="{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}, "
                               "sysctls: [{name: kernel.msgmax, value: '65536'}]}"), _BOTH),
    _Spec("KH-PSS-011", "windowsHostProcess", "PSS: Windows HostProcess container", Severity.CRITICAL,
          ("NSA-POD-5",),
          "windowsOptions.hostProcess: true on the pod or a container.",
          "Remove securityContext.windowsOptions.hostProcess (or set it to false) at pod and container level.",
          _pod_yaml("  os: {name: windows}", pod_sc="{runAsNonRoot: true, windowsOptions: {hostProcess: true}}",
                    container_sc="{}"), _BOTH),
    _Spec("KH-PSS-012", "hostProbesAndHostLifecycle", "PSS: probes or lifecycle hooks aimed at another host",
          Severity.MEDIUM, ("NSA-POD-20",),
          "A probe or lifecycle handler sets httpGet.host or tcpSocket.host (v1.34+).",
          "Remove httpGet.host and tcpSocket.host from every probe and lifecycle handler; the kubelet then "
          "targets the pod's own IP.",
          _pod_yaml("    livenessProbe: {httpGet: {host: 169.254.169.254, port: 80, path: /}}"), _BOTH),
    _Spec("KH-PSS-013", "restrictedVolumes", "PSS: volume type not allowed", Severity.MEDIUM,
          ("NSA-POD-12", "NSA-POD-9"),
          "A volume whose source is not configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
          "persistentVolumeClaim, projected or secret.",
          "Replace the volume source with one of configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
          "persistentVolumeClaim, projected or secret.",
          _pod_yaml("  volumes: [{name: data, nfs: {server: nfs.example, path: /export}}]"), (RESTRICTED,)),
    _Spec("KH-PSS-014", "allowPrivilegeEscalation", "PSS: privilege escalation allowed", Severity.MEDIUM,
          ("NSA-POD-4",),
          "A container does not set securityContext.allowPrivilegeEscalation: false (v1.25+: Linux pods only).",
          "Set securityContext.allowPrivilegeEscalation: false on every container.",
          _pod_yaml("", container_sc="{capabilities: {drop: [ALL]}}"), (RESTRICTED,)),
    _Spec("KH-PSS-015", "runAsNonRoot", "PSS: runAsNonRoot not enforced", Severity.MEDIUM, ("NSA-POD-2",),
          "A container does not end up with runAsNonRoot: true (v1.35+: exempt with hostUsers: false).",
          "Set spec.securityContext.runAsNonRoot: true (and remove any runAsNonRoot: false).",
          _pod_yaml("", pod_sc="{seccompProfile: {type: RuntimeDefault}}"), (RESTRICTED,)),
    _Spec("KH-PSS-016", "runAsUser", "PSS: runs as UID 0", Severity.HIGH, ("NSA-POD-2",),
          "runAsUser: 0 at pod or container level (v1.23+; v1.35+: exempt with hostUsers: false).",
          "Set runAsUser to a non-zero UID (e.g. 10001) or remove it.",
          _pod_yaml("", pod_sc="{runAsNonRoot: true, runAsUser: 0, seccompProfile: {type: RuntimeDefault}}"),
          (RESTRICTED,)),
    _Spec("KH-PSS-017", "seccompProfile_restricted", "PSS: seccomp profile not set", Severity.MEDIUM,
          ("NSA-POD-13",),
          "A container has no RuntimeDefault or Localhost seccomp profile, from its own securityContext or the "
          "pod's (v1.19+; v1.25+: Linux pods only; before v1.19 the annotation-based baseline rule).",
          "Set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost with localhostProfile).",
          _pod_yaml("", pod_sc="{runAsNonRoot: true}"), (RESTRICTED,), ("seccompProfile_baseline",)),
    _Spec("KH-PSS-018", "capabilities_restricted", "PSS: capabilities not dropped", Severity.MEDIUM,
          ("NSA-POD-11",),
          "A container does not drop ALL capabilities or adds one other than NET_BIND_SERVICE (v1.22+; v1.25+: "
          "Linux pods only; before v1.22 the baseline rule).",
          "Set securityContext.capabilities.drop: [ALL] on every container and add back at most NET_BIND_SERVICE.",
          _pod_yaml("", container_sc="{allowPrivilegeEscalation: false}"), (RESTRICTED,),
          ("capabilities_baseline",)),
    _Spec("KH-PSS-019", "procMount_restricted", "PSS: unmasked /proc (restricted)", Severity.MEDIUM,
          ("NSA-POD-20",),
          "A container sets securityContext.procMount other than Default, even with hostUsers: false (v1.35+; "
          "before v1.35 the baseline rule, unconditional then).",
          "Remove securityContext.procMount (or set it to Default).",
          _pod_yaml("  hostUsers: false", container_sc="{allowPrivilegeEscalation: false, "
                                                       "capabilities: {drop: [ALL]}, procMount: Unmasked}"),
          (RESTRICTED,), ("procMount",)),
)

for _spec in _SPECS:
    control(
        id=_spec.id,
        title=_spec.title,
        section=Section.POD,
        guidance=("NSA-POD-20", *_spec.guidance) if "NSA-POD-20" not in _spec.guidance else _spec.guidance,
        severity=_spec.severity,
        kinds=WORKLOADS,
        what=_spec.what,
        why=_WHY.format(level=_spec.level),
        fix=_spec.fix,
        profiles=_spec.profiles,
        examples=(Example(True, _spec.bad), Example(False, GOOD_POD)),
        references=("https://kubernetes.io/docs/concepts/security/pod-security-standards/",),
    )(_make_check(_spec))
