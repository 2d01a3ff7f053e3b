"""``kubeharden vap``: the per-object controls as ValidatingAdmissionPolicies (CEL), one policy and one
binding per control.

Each control's CEL says what its Python function says, for the same settings (Kubernetes version,
Pod Security Standards policy version); the lists it needs (capabilities, sysctls, volume types,
SELinux types) come from kubeharden.pss, not from a copy. Every kind with a pod template is covered
through the ``spec`` variable (Pod: spec; PodTemplate: template.spec; CronJob:
spec.jobTemplate.spec.template.spec; the others: spec.template.spec), and every container list
(init, regular, ephemeral). tests/admission prove that scan, the webhook and these policies give the
same verdict per control on every example, PSS fixture and corpus object.

The inline ``kubeharden.io/ignore`` annotation is honoured through each policy's matchConditions, as
the engine reads it; exceptions files are not carried into policies (the webhook applies them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from kubeharden import pss
from kubeharden.catalog import Control, KubeVersion, Settings
from kubeharden.controls import pss as pss_controls
from kubeharden.controls.pod_images import BRANCH_TAGS, TEMPLATE_MARKERS
from kubeharden.exceptions import INLINE_ANNOTATION
from kubeharden.model import Severity
from kubeharden.versions import NEWEST_SUPPORTED
from kubeharden.yamlsafe import KubernetesDumper

API_VERSION = "admissionregistration.k8s.io/v1"
# Resource rules: every kind with a pod template (and the subresource that adds ephemeral containers).
RESOURCE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ("pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates")),
    ("apps", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", ("jobs", "cronjobs")),
)
KIND_RESOURCES = {
    "Pod": ("", "pods"), "ReplicationController": ("", "replicationcontrollers"), "PodTemplate": ("", "podtemplates"),
    "Deployment": ("apps", "deployments"), "ReplicaSet": ("apps", "replicasets"),
    "StatefulSet": ("apps", "statefulsets"), "DaemonSet": ("apps", "daemonsets"),
    "Job": ("batch", "jobs"), "CronJob": ("batch", "cronjobs"),
}

SPEC = "variables.spec"
PSC = "variables.podSC"
ANN = "variables.annotations"
ALL = "variables.containers"
NON_EPHEMERAL = "variables.nonEphemeralContainers"
EPHEMERAL = "variables.ephemeralContainers"
WINDOWS = "variables.windows"
HOST_USERS_FALSE = "variables.hostUsersFalse"


def lit(text: str) -> str:
    """A CEL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lits(items: Any) -> str:
    return "[" + ", ".join(lit(i) for i in sorted(items)) + "]"


def present(base: str, *fields: str) -> str:
    """has(base.a) && has(base.a.b) ...: the field exists (and, in API objects, is not null)."""
    return " && ".join(f"has({base}.{'.'.join(fields[:i + 1])})" for i in range(len(fields)))


def field_is(base: str, fields: tuple[str, ...], test: str) -> str:
    """The field exists and ``test`` (written against the value as `$`) holds."""
    return f"({present(base, *fields)} && {test.replace('$', base + '.' + '.'.join(fields))})"


def guarded(base: str, fields: tuple[str, ...], default: str) -> str:
    return f"({present(base, *fields)} ? {base}.{'.'.join(fields)} : {default})"


def sc(c: str, *fields: str) -> tuple[str, tuple[str, ...]]:
    return c, ("securityContext", *fields)


def effective(field: str) -> str:
    """A securityContext field of container `c`, or the pod's when the container does not set it; null
    when neither does (the `effective` of kubeharden.controls.pod_common)."""
    return (f"({present('c', 'securityContext', field)} ? c.securityContext.{field} : "
            f"({present(PSC, field)} ? {PSC}.{field} : null))")


def _template_paths() -> dict[str, tuple[str, ...]]:
    return {"Pod": (), "CronJob": ("spec", "jobTemplate", "spec", "template"), "PodTemplate": ("template",)}


def _by_kind(fields: tuple[str, ...], default: str) -> str:
    paths = _template_paths()
    expr = guarded("object", ("spec", "template", *fields), default)
    for kind in ("PodTemplate", "CronJob", "Pod"):
        expr = f"object.kind == {lit(kind)} ? {guarded('object', (*paths[kind], *fields), default)} : ({expr})"
    return expr


VARIABLES: tuple[tuple[str, str], ...] = (
    ("spec", _by_kind(("spec",), "{}")),
    ("annotations", _by_kind(("metadata", "annotations"), "{}")),
    ("podSC", guarded(SPEC, ("securityContext",), "{}")),
    ("nonEphemeralContainers", f"{guarded(SPEC, ('initContainers',), '[]')} + {guarded(SPEC, ('containers',), '[]')}"),
    ("ephemeralContainers", guarded(SPEC, ("ephemeralContainers",), "[]")),
    ("containers", f"{NON_EPHEMERAL} + {EPHEMERAL}"),
    ("windows", field_is(SPEC, ("os", "name"), "$ == 'windows'")),
    ("hostUsersFalse", field_is(SPEC, ("hostUsers",), "$ == false")),
)


@dataclass(frozen=True)
class Rule:
    """One validation: a pod-level expression, or a predicate every container of ``containers`` must meet
    (its message then names the containers that do not)."""

    expression: str
    containers: str | None = None  # the container list variable the predicate `c` ranges over
    unless: str | None = None  # a pod-level condition under which the rule does not apply (Windows...)

    def cel(self) -> str:
        body = f"{self.containers}.all(c, {self.expression})" if self.containers else self.expression
        return f"{self.unless} || ({body})" if self.unless else body


def per_container(pred: str, containers: str = ALL, unless: str | None = None) -> Rule:
    return Rule(pred, containers, unless)


def pod_rule(expr: str, unless: str | None = None) -> Rule:
    return Rule(expr, None, unless)


def not_true(base: str, *fields: str) -> str:
    return f"!{field_is(base, fields, '$ == true')}"


def _pod_and_containers(test: Callable[[str], str]) -> list[Rule]:
    """``test`` on the pod's securityContext and on every container's."""
    return [pod_rule(test(PSC)), per_container(f"!has(c.securityContext) || {test('c.securityContext')}")]


# -- Pod Security Standards checks, per variant (the parameters of kubeharden.pss) -------------------


def _pss_rules(check: str, variant_min: pss.PolicyVersion) -> list[Rule]:
    seccomp_types = lits(("RuntimeDefault", "Localhost"))
    if check == "hostNamespaces":
        return [pod_rule(" && ".join(not_true(SPEC, f) for f in ("hostNetwork", "hostPID", "hostIPC")))]
    if check == "privileged":
        return [per_container(not_true("c", "securityContext", "privileged"))]
    if check == "capabilities_baseline":
        return [per_container(f"!({present('c', 'securityContext', 'capabilities', 'add')}) || "
                              f"c.securityContext.capabilities.add.all(a, a in {lits(pss.BASELINE_CAPABILITIES)})")]
    if check == "hostPathVolumes":
        return [pod_rule(f"!has({SPEC}.volumes) || {SPEC}.volumes.all(v, !has(v.hostPath))")]
    if check == "hostPorts":
        no_host_port = "(!has(p.hostPort) || p.hostPort == 0)"
        implied = f"!({field_is(SPEC, ('hostNetwork',), '$ == true')} && has(p.containerPort) && p.containerPort != 0)"
        return [per_container(f"!has(c.ports) || c.ports.all(p, {no_host_port} && {implied})", NON_EPHEMERAL),
                per_container(f"!has(c.ports) || c.ports.all(p, {no_host_port})", EPHEMERAL)]
    if check == "appArmorProfile":
        prefix = "container.apparmor.security.beta.kubernetes.io/"
        value = f"{ANN}[k]"
        return [*_pod_and_containers(lambda s: f"(!has({s}.appArmorProfile) || "
                                     f"{field_is(s, ('appArmorProfile', 'type'), '$ in ' + seccomp_types)})"),
                pod_rule(f"{ANN}.all(k, !k.startsWith({lit(prefix)}) || {value} == '' || "
                         f"{value} == 'runtime/default' || {value}.startsWith('localhost/'))")]
    if check == "seLinuxOptions":
        allowed = pss.SELINUX_TYPES_1_31 if variant_min >= (1, 31) else pss.SELINUX_TYPES_1_0
        return _pod_and_containers(
            lambda s: f"(!has({s}.seLinuxOptions) || ((!has({s}.seLinuxOptions.type) || "
                      f"{s}.seLinuxOptions.type in {lits(allowed)}) && "
                      f"(!has({s}.seLinuxOptions.user) || {s}.seLinuxOptions.user == '') && "
                      f"(!has({s}.seLinuxOptions.role) || {s}.seLinuxOptions.role == '')))")
    if check in ("procMount", "procMount_restricted"):
        exempt = HOST_USERS_FALSE if check == "procMount" and variant_min >= (1, 35) else None
        return [per_container(f"!({present('c', 'securityContext', 'procMount')}) || "
                              "c.securityContext.procMount == 'Default'", unless=exempt)]
    if check == "seccompProfile_baseline":
        if variant_min < (1, 19):
            valid = ("({v} == 'runtime/default' || {v} == 'docker/default' || {v}.startsWith('localhost/'))")
            pod_key = lit(pss.SECCOMP_POD_ANNOTATION)
            key = f"{lit(pss.SECCOMP_CONTAINER_ANNOTATION)} + (has(c.name) ? c.name : '')"
            return [pod_rule(f"!({pod_key} in {ANN}) || " + valid.format(v=f"{ANN}[{pod_key}]")),
                    per_container(f"!(({key}) in {ANN}) || " + valid.format(v=f"{ANN}[{key}]"))]
        return _pod_and_containers(lambda s: f"(!has({s}.seccompProfile) || "
                                   f"{field_is(s, ('seccompProfile', 'type'), '$ in ' + seccomp_types)})")
    if check == "sysctls":
        allowed = dict(pss.SAFE_SYSCTLS)[variant_min]
        return [pod_rule(f"!has({PSC}.sysctls) || {PSC}.sysctls.all(s, has(s.name) && s.name in {lits(allowed)})")]
    if check == "windowsHostProcess":
        return _pod_and_containers(lambda s: f"!{field_is(s, ('windowsOptions', 'hostProcess'), '$ == true')}")
    if check == "hostProbesAndHostLifecycle":
        handlers: list[tuple[str, ...]] = [(p,) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [("lifecycle", h) for h in ("postStart", "preStop")]
        terms = [f"!{field_is('c', (*h, action, 'host'), chr(36) + ' != ' + chr(39) * 2)}"
                 for h in handlers for action in ("httpGet", "tcpSocket")]
        return [per_container(" && ".join(terms))]
    if check == "restrictedVolumes":
        return [pod_rule(_volume_sources_rule(pss.RESTRICTED_VOLUME_SOURCES))]
    if check == "allowPrivilegeEscalation":
        exempt = WINDOWS if variant_min >= (1, 25) else None
        return [per_container(field_is("c", ("securityContext", "allowPrivilegeEscalation"), "$ == false"),
                              unless=exempt)]
    if check == "runAsNonRoot":
        exempt = HOST_USERS_FALSE if variant_min >= (1, 35) else None
        pod_true = field_is(PSC, ("runAsNonRoot",), "$ == true")
        return [pod_rule(f"!{field_is(PSC, ('runAsNonRoot',), '$ == false')}", unless=exempt),
                per_container(f"{present('c', 'securityContext', 'runAsNonRoot')} ? "
                              f"c.securityContext.runAsNonRoot != false : {pod_true}", unless=exempt)]
    if check == "runAsUser":
        exempt = HOST_USERS_FALSE if variant_min >= (1, 35) else None
        return [pod_rule(f"!{field_is(PSC, ('runAsUser',), '$ == 0')}", unless=exempt),
                per_container(f"!{field_is('c', ('securityContext', 'runAsUser'), '$ == 0')}", unless=exempt)]
    if check == "seccompProfile_restricted":
        exempt = WINDOWS if variant_min >= (1, 25) else None
        pod_valid = field_is(PSC, ("seccompProfile", "type"), "$ in " + seccomp_types)
        return [pod_rule(f"!has({PSC}.seccompProfile) || {pod_valid}", unless=exempt),
                per_container(f"{present('c', 'securityContext', 'seccompProfile')} ? "
                              f"{field_is('c', ('securityContext', 'seccompProfile', 'type'), '$ in ' + seccomp_types)}"
                              f" : {pod_valid}", unless=exempt)]
    if check == "capabilities_restricted":
        exempt = WINDOWS if variant_min >= (1, 25) else None
        caps = "c.securityContext.capabilities"
        return [per_container(f"{present('c', 'securityContext', 'capabilities')} && has({caps}.drop) && "
                              f"'ALL' in {caps}.drop && (!has({caps}.add) || "
                              f"{caps}.add.all(a, a == 'NET_BIND_SERVICE'))", unless=exempt)]
    raise KeyError(check)


def _volume_sources_rule(allowed: frozenset[str], also: tuple[str, ...] = ()) -> str:
    # a volume with no source is defaulted to emptyDir by the API server: allowed
    return f"!has({SPEC}.volumes) || {SPEC}.volumes.all(v, v.all(k, k == 'name' || k in {lits(allowed | set(also))}))"


def pss_check_rules(check: str, level: str, version: pss.PolicyVersion) -> list[Rule]:
    variant = pss.active_checks(level, version).get(check)
    if variant is None:
        raise NotExpressible(f"PSS check {check} is not part of policy version {pss.format_version(version)}")
    return _pss_rules(check, variant.min_version)


class NotExpressible(Exception):
    """The control has no CEL form for these settings (the reason is the message)."""


# -- the controls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    kubernetes: KubeVersion
    pss: pss.PolicyVersion

    @classmethod
    def of(cls, settings: Settings) -> Versions:
        kube = settings.kubernetes_version or NEWEST_SUPPORTED
        raw = settings.extra.get("pss_version")
        version = (min(kube, pss.LATEST) if raw is None or str(raw).strip() in ("", "latest")
                   else pss.parse_pss_version(str(raw)))
        return cls(kube, version)


_IMAGE = "(!has(c.image) || c.image == '' || c.image.matches('@.')"  # no image to judge, or a digest
_TAG = "c.image.matches(':[^:/]+$')"
_PLACEHOLDER = "(!" + _TAG + " && (" + " || ".join(f"c.image.contains({lit(m)})" for m in TEMPLATE_MARKERS) + "))"
_MOVING_TAG = ("c.image.matches('(?i):(([^:/]*[-_])?latest([-_][^:/]*)?|"
               + "|".join(sorted(BRANCH_TAGS)) + ")$')")


def _latest(rules: Callable[[pss.PolicyVersion], list[Rule]]) -> Callable[[Versions], list[Rule]]:
    return lambda v: rules(pss.LATEST)


def _at_kube(rules: Callable[[pss.PolicyVersion], list[Rule]]) -> Callable[[Versions], list[Rule]]:
    return lambda v: rules(min(v.kubernetes, pss.LATEST))


def _seccomp_field(v: Versions) -> list[Rule]:
    if v.kubernetes < (1, 19):
        raise NotExpressible("before Kubernetes 1.19 the legacy seccomp annotations decide; not expressed")
    valid = "(has({p}.type) && {p}.type in ['Localhost', 'RuntimeDefault'])"
    return [per_container(f"{present('c', 'securityContext', 'seccompProfile')} ? "
                          + valid.format(p="c.securityContext.seccompProfile")
                          + f" : (has({PSC}.seccompProfile) && " + valid.format(p=PSC + ".seccompProfile") + ")",
                          unless=WINDOWS)]


POD_CONTROLS: dict[str, Callable[[Versions], list[Rule]]] = {
    "KH-POD-002": lambda v: [per_container(f"!({effective('runAsUser')} == 0) && {effective('runAsNonRoot')} == true")],
    "KH-POD-003": lambda v: [
        pod_rule(f"!{field_is(PSC, ('fsGroup',), '$ == 0')} && (!has({PSC}.supplementalGroups) || "
                 f"{PSC}.supplementalGroups.all(g, g != 0))", unless=WINDOWS),
        per_container(f"{effective('runAsGroup')} != null && {effective('runAsGroup')} != 0", unless=WINDOWS)],
    "KH-POD-004": lambda v: [per_container(field_is("c", ("securityContext", "allowPrivilegeEscalation"),
                                                    "$ == false"), unless=WINDOWS)],
    "KH-POD-005": lambda v: _pss_rules("privileged", (1, 0)),
    "KH-POD-006": lambda v: [pod_rule(f"{not_true(SPEC, 'hostPID')} && {not_true(SPEC, 'hostIPC')}")],
    "KH-POD-007": lambda v: [pod_rule(not_true(SPEC, "hostNetwork"))],
    "KH-POD-008": lambda v: _pss_rules("hostPorts", (1, 0)),
    "KH-POD-009": lambda v: _pss_rules("hostPathVolumes", (1, 0)),
    "KH-POD-010": lambda v: [per_container(field_is("c", ("securityContext", "readOnlyRootFilesystem"), "$ == true"),
                                           unless=WINDOWS)],
    "KH-POD-011": lambda v: [per_container(f"{present('c', 'securityContext', 'capabilities', 'drop')} && "
                                           "'ALL' in c.securityContext.capabilities.drop", unless=WINDOWS)],
    "KH-POD-012": lambda v: [pod_rule(_volume_sources_rule(pss.RESTRICTED_VOLUME_SOURCES, ("hostPath",)))],
    "KH-POD-013": _seccomp_field,
    "KH-POD-014": _latest(lambda p: pss_check_rules("appArmorProfile", "baseline", p)),
    "KH-POD-015": _at_kube(lambda p: pss_check_rules("seLinuxOptions", "baseline", p)),
    "KH-POD-016": lambda v: [pod_rule(field_is(SPEC, ("hostUsers",), "$ == false"), unless=WINDOWS)],
    "KH-POD-019": lambda v: [per_container(f"{_IMAGE} || {_PLACEHOLDER} || ({_TAG} && !{_MOVING_TAG}))")],
    "KH-POD-027": lambda v: [per_container(f"{_IMAGE} || {_PLACEHOLDER})")],
    "KH-POD-029": _latest(lambda p: pss_check_rules("windowsHostProcess", "baseline", p)),
    "KH-POD-030": _at_kube(lambda p: pss_check_rules("sysctls", "baseline", p)),
    "KH-POD-031": _latest(lambda p: pss_check_rules("procMount_restricted", "restricted", p)),
    "KH-POD-032": _latest(lambda p: pss_check_rules("hostProbesAndHostLifecycle", "baseline", p)),
    "KH-POD-033": lambda v: [per_container(f"!({present('c', 'securityContext', 'capabilities', 'add')}) || "
                                           "size(c.securityContext.capabilities.add) == 0")],
}


def _pss_control_rules(control_id: str, v: Versions) -> list[Rule]:
    spec = next(s for s in pss_controls._SPECS if s.id == control_id)  # the table of the PSS controls
    active = set(pss.active_checks(spec.level, v.pss)) & {spec.check, *spec.fallback}
    if not active:
        raise NotExpressible(f"PSS check {spec.check} is not part of policy version {pss.format_version(v.pss)}")
    return [r for check in sorted(active) for r in pss_check_rules(check, spec.level, v.pss)]


NOT_EXPRESSIBLE: dict[str, str] = {
    "KH-POD-001": "needs the image's configuration (its USER) from the registry or a Dockerfile",
    "KH-POD-017": "needs vulnerability reports for the image",
    "KH-POD-020": "judges Namespace objects and their Pod Security labels, not workloads",
    "KH-POD-021": "judges PodSecurityPolicy objects (removed in Kubernetes 1.25)",
    "KH-POD-022": "judges PodSecurityPolicy objects (removed in Kubernetes 1.25)",
    "KH-POD-023": "reads the ServiceAccount and the RBAC bindings of the pod (other objects)",
    "KH-POD-026": "its rating reads the ServiceAccount object (token mounted or not); the webhook judges it "
                  "with --cluster-context",
    "KH-POD-028": "registry normalisation (docker.io, library/, host aliases) against --allowed-registry is "
                  "not expressed in CEL yet; the webhook judges it",
    "KH-POD-034": "compares the images of several workloads",
    "KH-CRED-001": "recognises credentials with kubeharden's heuristics (names, entropy, URL parsing)",
    "KH-NET-001": "recognises system components by kubeharden's table of known add-ons",
    "KH-NET-002": "depends on whether the input is the whole cluster",
    "KH-NET-008": "reads the NetworkPolicies of the namespace (other objects)",
    "KH-NET-014": "reads the LimitRanges of the namespace (other objects)",
    "KH-NET-016": "reads the NetworkPolicies of the namespace (other objects)",
    "KH-NET-005": "reads the NetworkPolicies of the namespace (other objects)",
    "KH-RBAC-009": "reads the RBAC bindings of the ServiceAccount (other objects)",
    "KH-UPG-005": "reads the ingress-nginx ConfigMap (another object)",
    "KH-UPG-006": "matches image versions against kubeharden's CVE table",
    "KH-UPG-007": "recognises ingress-nginx images by kubeharden's table",
}


def cel_rules(ctrl: Control, settings: Settings) -> list[Rule]:
    """The CEL form of a control, or NotExpressible with the reason."""
    versions = Versions.of(settings)
    if ctrl.manual:
        raise NotExpressible(f"a recommendation no object can prove ({ctrl.manual})")
    if not ctrl.applies_to_version(versions.kubernetes):
        raise NotExpressible(f"does not apply to Kubernetes {versions.kubernetes[0]}.{versions.kubernetes[1]}")
    if ctrl.id in POD_CONTROLS:
        return POD_CONTROLS[ctrl.id](versions)
    if ctrl.id.startswith("KH-PSS-"):
        return _pss_control_rules(ctrl.id, versions)
    if ctrl.id in NOT_EXPRESSIBLE:
        raise NotExpressible(NOT_EXPRESSIBLE[ctrl.id])
    if not ctrl.kinds:
        raise NotExpressible("judges node, control-plane or cluster-wide evidence, not one admitted object")
    raise NotExpressible(f"judges {', '.join(ctrl.kinds)} objects together with other objects of the cluster")


# -- documents --------------------------------------------------------------------------------------


def policy_name(control_id: str) -> str:
    return f"kubeharden-{control_id.lower()}"


def _ignore_condition(control_id: str) -> str:
    # The engine's reading of "ID[,ID...]: reason": the id among the comma-separated ids before the first
    # colon, case-insensitive, and a non-empty reason after it.
    pattern = f"(?i)^([^:]*,)?\\s*{control_id}\\s*(,[^:]*)?:\\s*\\S"
    annotations = "object.metadata.annotations"
    return (f"!(has({annotations}) && {lit(INLINE_ANNOTATION)} in {annotations} && "
            f"{annotations}[{lit(INLINE_ANNOTATION)}].matches({lit(pattern)}))")


def _message(ctrl: Control, rule: Rule) -> str:
    name = "(has(object.metadata.name) ? object.metadata.name : '')"
    head = f"{lit(ctrl.id + ' (' + ctrl.severity.label + ') ' + ctrl.title + ': ')} + object.kind + ' ' + {name}"
    if rule.containers:
        failing = (f"{rule.containers}.filter(c, !({rule.expression})).map(c, has(c.name) ? c.name : '?')"
                   ".join(', ')")
        head += f" + ', container(s) ' + {failing}"
    return f"{head} + {lit('. Fix: ' + ctrl.fix)}"


def policy_documents(ctrl: Control, rules: list[Rule], deny_at: Severity,
                     exempt_namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    name = policy_name(ctrl.id)
    labels = {"app.kubernetes.io/managed-by": "kubeharden"}
    annotations = {"kubeharden.io/control": ctrl.id, "kubeharden.io/severity": ctrl.severity.label,
                   "kubeharden.io/title": ctrl.title}
    policy = {
        "apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [
                {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                 "resources": list(resources)} for group, resources in RESOURCE_RULES]},
            "matchConditions": [{"name": "not-ignored-inline", "expression": _ignore_condition(ctrl.id)}],
            "variables": [{"name": n, "expression": e} for n, e in VARIABLES],
            "validations": [{"expression": r.cel(), "messageExpression": _message(ctrl, r), "reason": "Forbidden"}
                            for r in rules],
        },
    }
    actions = ["Deny", "Audit"] if ctrl.severity >= deny_at else ["Warn", "Audit"]
    excluded = list(dict.fromkeys(["kube-system", *exempt_namespaces]))
    binding = {
        "apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name, "labels": labels, "annotations": {"kubeharden.io/control": ctrl.id}},
        "spec": {"policyName": name, "validationActions": actions,
                 "matchResources": {"namespaceSelector": {"matchExpressions": [
                     {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}]}}},
    }
    return [policy, binding]


@dataclass
class Generated:
    documents: list[dict[str, Any]]
    expressed: list[Control]
    skipped: list[tuple[Control, str]]


def generate(controls: list[Control], settings: Settings, deny_at: Severity = Severity.HIGH,
             exempt_namespaces: tuple[str, ...] = ()) -> Generated:
    out = Generated([], [], [])
    for ctrl in controls:
        try:
            rules = cel_rules(ctrl, settings)
        except NotExpressible as exc:
            out.skipped.append((ctrl, str(exc)))
            continue
        out.expressed.append(ctrl)
        out.documents.extend(policy_documents(ctrl, rules, deny_at, exempt_namespaces))
    return out


def render(documents: list[dict[str, Any]], header: str = "") -> bytes:
    body = yaml.dump_all(documents, Dumper=KubernetesDumper, sort_keys=False, default_flow_style=False, width=120)
    return (header + body).encode()
