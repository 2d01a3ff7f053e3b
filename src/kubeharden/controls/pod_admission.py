"""Pod security enforcement controls (guidance §1.5 "Pod security enforcement", NSA-POD-20..22),
plus the pod-security recommendations no input can prove (NSA-POD-1, -18, -25)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubeharden.catalog import Context, Example, control, manual_control
from kubeharden.model import Resource, Section, Severity, Violation

PSA_PREFIX = "pod-security.kubernetes.io/"
PSA_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}
# Built-in namespaces that run node-level system components; PSA exemptions there are expected.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})

_NAMESPACE_OK = """
apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: v1.33
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
"""


def _violation(res: Resource, path: tuple[str, ...], message: str, value: Any = None,
               severity: Severity | None = None) -> Violation:
    return Violation(res, path, message, value, has_value=value is not None, severity=severity)


def _is_level(value: Any) -> bool:
    """A Pod Security level name (a label value may be any YAML value, and a list would not hash)."""
    return isinstance(value, str) and value in PSA_LEVELS


@control(
    id="KH-POD-020",
    title="Namespace without Pod Security Admission enforcement",
    section=Section.POD,
    guidance=("NSA-POD-20", "NSA-POD-21"),
    severity=Severity.HIGH,
    kinds=("Namespace",),
    needs="Namespace objects",
    what="A non-system Namespace has no pod-security.kubernetes.io/enforce label, enforces privileged "
    "(high) or only baseline (low), has an invalid level, or warns/audits at a weaker level than it "
    "enforces (low).",
    why="Without an enforced Pod Security level nothing stops a pod from being privileged or using host "
    "namespaces; warn and audit labels show what a stricter level would reject.",
    fix="Label the namespace pod-security.kubernetes.io/enforce: restricted (baseline as a first step), "
    "pod-security.kubernetes.io/warn: restricted and pod-security.kubernetes.io/audit: restricted, and pin "
    "pod-security.kubernetes.io/enforce-version.",
    examples=(
        Example(True, "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n"),
        Example(True, _NAMESPACE_OK.replace("enforce: restricted", "enforce: privileged")),
        Example(False, _NAMESPACE_OK),
    ),
)
def namespace_psa(ctx: Context) -> Iterator[Violation]:
    for ns in ctx.inventory.of_kind("Namespace"):
        if ns.name in SYSTEM_NAMESPACES:
            continue
        labels = ns.labels
        key = PSA_PREFIX + "enforce"
        enforce = labels.get(key)
        if enforce is None:
            yield _violation(ns, ("metadata", "labels"),
                             f"namespace '{ns.name}' has no {key} label: only the cluster default applies "
                             "(privileged unless the API server's admission configuration says otherwise)")
            rank = 0
        elif not _is_level(enforce):
            yield _violation(ns, ("metadata", "labels", key),
                             f"namespace '{ns.name}' sets {key}: {enforce!r}, which is not a Pod Security level",
                             enforce, Severity.MEDIUM)
            continue
        else:
            rank = PSA_LEVELS[enforce]
            if enforce == "privileged":
                yield _violation(ns, ("metadata", "labels", key),
                                 f"namespace '{ns.name}' enforces the privileged level (no restriction)", enforce)
            elif enforce == "baseline":
                yield _violation(ns, ("metadata", "labels", key),
                                 f"namespace '{ns.name}' enforces baseline, not restricted", enforce, Severity.LOW)
        for mode in ("warn", "audit"):
            mode_key = PSA_PREFIX + mode
            level = labels.get(mode_key)
            if level is None:
                weaker = rank > PSA_LEVELS["privileged"]  # the built-in default; nothing is weaker than privileged
            else:
                weaker = not _is_level(level) or PSA_LEVELS[level] < rank
            if enforce is not None and weaker:
                path = ("metadata", "labels", mode_key) if level is not None else ("metadata", "labels")
                yield _violation(ns, path, f"namespace '{ns.name}' {mode}s at {level or 'the cluster default'}, "
                                 f"weaker than its enforced level {enforce}", level, Severity.LOW)


_PSP = """
apiVersion: policy/v1beta1
kind: PodSecurityPolicy
metadata: {name: restricted}
spec:
  privileged: false
  allowPrivilegeEscalation: false
  requiredDropCapabilities: [ALL]
  volumes: [configMap, emptyDir, projected, secret, downwardAPI, persistentVolumeClaim]
  hostNetwork: false
  hostIPC: false
  hostPID: false
  runAsUser: {rule: MustRunAsNonRoot}
  seLinux: {rule: RunAsAny}
  supplementalGroups: {rule: MustRunAs, ranges: [{min: 1, max: 65535}]}
  fsGroup: {rule: MustRunAs, ranges: [{min: 1, max: 65535}]}
  readOnlyRootFilesystem: true
"""


def _psp_problems(spec: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], str, Any, Severity]]:
    if spec.get("privileged") is True:
        yield ("privileged",), "allows privileged pods", True, Severity.CRITICAL
    for field in ("hostPID", "hostIPC", "hostNetwork"):
        if spec.get(field) is True:
            yield (field,), f"allows {field}", True, Severity.HIGH
    if spec.get("hostPorts"):
        yield ("hostPorts",), "allows host ports", None, Severity.MEDIUM
    caps = spec.get("allowedCapabilities")
    if isinstance(caps, list) and "*" in caps:
        yield ("allowedCapabilities",), "allows any capability", "*", Severity.HIGH
    volumes = spec.get("volumes")
    volumes = volumes if isinstance(volumes, list) else []
    if ("*" in volumes or "hostPath" in volumes) and not spec.get("allowedHostPaths"):
        yield ("allowedHostPaths",), "allows hostPath volumes with no allowedHostPaths restriction", None, \
            Severity.HIGH
    if spec.get("allowPrivilegeEscalation") is not False:
        yield ("allowPrivilegeEscalation",), "allows privilege escalation", spec.get("allowPrivilegeEscalation"), \
            Severity.MEDIUM
    run_as = spec.get("runAsUser")
    if not (isinstance(run_as, dict) and run_as.get("rule") == "MustRunAsNonRoot"):
        rule = run_as.get("rule") if isinstance(run_as, dict) else None
        yield ("runAsUser", "rule"), f"does not require non-root users (rule {rule or 'unset'})", rule, \
            Severity.MEDIUM
    for field in ("fsGroup", "supplementalGroups"):
        strategy = spec.get(field)
        if isinstance(strategy, dict) and strategy.get("rule") == "RunAsAny":
            yield (field, "rule"), f"allows any {field} including the root group", "RunAsAny", Severity.LOW


@control(
    id="KH-POD-021",
    title="Permissive PodSecurityPolicy",
    section=Section.POD,
    guidance=("NSA-POD-21", "NSA-POD-9"),
    severity=Severity.HIGH,
    kinds=("PodSecurityPolicy",),
    what="A PodSecurityPolicy allows what the guidance forbids: privileged pods, host namespaces or ports, "
    "any capability, unrestricted hostPath, privilege escalation, root users or the root group.",
    why="The least restrictive PSP a pod's creator may use applies, so one permissive policy opens the "
    "whole cluster. On Kubernetes 1.25+ the PSP has no effect (KH-POD-022) and findings are rated low: "
    "the same manifest may still be applied to older clusters.",
    fix="Tighten the PSP to Appendix C of the guidance (privileged: false, allowPrivilegeEscalation: false, "
    "requiredDropCapabilities: [ALL], runAsUser.rule: MustRunAsNonRoot, allowedHostPaths with a read-only "
    "dummy path, group ranges 1..65535) and restrict who may use it.",
    examples=(
        Example(True, _PSP.replace("privileged: false", "privileged: true")),
        Example(False, _PSP),
    ),
)
def permissive_psp(ctx: Context) -> Iterator[Violation]:
    dead = ctx.kubernetes_version >= (1, 25)
    suffix = " (no effect on Kubernetes 1.25+, where PSP was removed)" if dead else ""
    for psp in ctx.inventory.of_kind("PodSecurityPolicy"):
        spec = psp.obj.get("spec")
        if not isinstance(spec, dict):
            continue
        for path, problem, value, severity in _psp_problems(spec):
            yield _violation(psp, ("spec", *path), f"PodSecurityPolicy '{psp.name}' {problem}{suffix}", value,
                             Severity.LOW if dead else severity)


@control(
    id="KH-POD-022",
    title="PodSecurityPolicy on a cluster without the PSP API",
    section=Section.POD,
    guidance=("NSA-POD-22", "NSA-POD-20"),
    severity=Severity.MEDIUM,
    kinds=("PodSecurityPolicy",),
    min_version=(1, 25),
    what="A PodSecurityPolicy object for Kubernetes 1.25 or later, where the PSP API and admission plugin "
    "no longer exist.",
    why="The object enforces nothing: a team relying on it has no pod security enforcement at all.",
    fix="Delete the PodSecurityPolicy and label namespaces pod-security.kubernetes.io/enforce: restricted "
    "(or baseline), adding a policy engine for the controls PSA lacks.",
    examples=(
        Example(True, _PSP),
        Example(False, _NAMESPACE_OK),
    ),
)
def dead_psp(ctx: Context) -> Iterator[Violation]:
    major, minor = ctx.kubernetes_version
    for psp in ctx.inventory.of_kind("PodSecurityPolicy"):
        yield _violation(psp, ("kind",), f"PodSecurityPolicy '{psp.name}' has no effect on Kubernetes "
                         f"{major}.{minor} (the PSP API was removed in 1.25)", "PodSecurityPolicy")


manual_control(
    id="KH-POD-018",
    title="Images validated at admission",
    section=Section.POD,
    guidance=("NSA-POD-18",),
    severity=Severity.MEDIUM,
    what="An admission webhook or policy (ImagePolicyWebhook, Kyverno verifyImages, Gatekeeper, ...) "
    "rejects pods whose images are unscanned, unsigned or from untrusted registries, with failurePolicy: Fail.",
    why="Scanning in CI does not stop an image pushed or deployed around the pipeline.",
    fix="Deploy an image-policy admission webhook with failurePolicy: Fail covering pods and workload kinds.",
    reason="a webhook configuration does not say what its server checks, so whether images are validated "
    "cannot be told from cluster objects; ImagePolicyWebhook is API-server configuration",
)

manual_control(
    id="KH-POD-025",
    title="Hardened container runtime for high-risk workloads",
    section=Section.POD,
    guidance=("NSA-POD-25",),
    severity=Severity.LOW,
    what="Internet-facing or untrusted workloads run in a sandboxed runtime (runtimeClassName naming a "
    "gVisor, Kata or other hypervisor-backed RuntimeClass).",
    why="A sandboxed runtime puts another boundary between a compromised container and the node kernel.",
    fix="Define a RuntimeClass for a sandboxed handler and set spec.runtimeClassName on high-risk workloads; "
    "at minimum enforce seccomp and AppArmor (KH-POD-013, KH-POD-014).",
    reason="which workloads are high-risk (Internet-facing, untrusted code) is an organisational judgement "
    "that manifests do not record",
)
