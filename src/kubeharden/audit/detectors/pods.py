"""Pod specs in workload writes (guidance §3.2 D01, D02, D11, D14): the scan's own predicates
(controls.pod_security) judge every pod-spec kind, in creates, updates and patches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from kubeharden.audit.detectors import AuditExample, detector, route
from kubeharden.audit.detectors._events import deployment, event, pod_template, privileged_containers
from kubeharden.audit.event import WORKLOAD_RESOURCES, AuditEvent
from kubeharden.audit.podspecs import POD_SUBRESOURCES, PodBody, explicit, pod_bodies, workload_kind
from kubeharden.audit.runner import DetectorContext
from kubeharden.controls.pod_security import (
    added_capability_violations,
    escalation_violations,
    host_network_violations,
    host_path_violations,
    host_pid_ipc_violations,
    privileged_violations,
    root_user_violations,
)
from kubeharden.inventory import as_dict, as_list
from kubeharden.model import Path, Severity, Violation, format_path
from kubeharden.nodeconf.auditpolicy import RequestKind

WRITES = ("create", "update", "patch")
WORKLOAD_NEEDS = (
    RequestKind("", "pods", verbs=WRITES), RequestKind("", "pods", "ephemeralcontainers", verbs=("update", "patch")),
    RequestKind("apps", "deployments", verbs=WRITES), RequestKind("apps", "replicasets", verbs=WRITES),
    RequestKind("apps", "statefulsets", verbs=WRITES), RequestKind("apps", "daemonsets", verbs=WRITES),
    RequestKind("batch", "jobs", verbs=WRITES), RequestKind("batch", "cronjobs", verbs=WRITES),
    RequestKind("", "replicationcontrollers", verbs=WRITES), RequestKind("", "podtemplates", verbs=WRITES),
)
PSA_AUDIT_ANNOTATION = "pod-security.kubernetes.io/audit-violations"
# the writes that carry a pod spec (podspecs.pod_bodies): the only events D01, D02, D11, D14 read
POD_SPEC_ROUTES = (route(WRITES, WORKLOAD_RESOURCES, POD_SUBRESOURCES),)


def _where(event: AuditEvent) -> str:
    sub = f"/{event.subresource}" if event.subresource else ""
    target = "/".join(p for p in (event.namespace, event.name) if p)
    return f"{event.verb} {event.kind}{sub}{' ' + target if target else ''} by {event.user}"


def _rewrap(event: AuditEvent, body: PodBody, v: Violation, severity: Severity | None = None) -> Violation:
    path = body.event_path(v.path)
    return Violation(None, path, f"{v.message} ({_where(event)})", v.value, has_value=v.has_value,
                     severity=severity or v.severity,
                     evidence={"field": format_path(body.object_path(v.path)), "body": body.origin,
                               "patch": event.verb == "patch"})


def _judged(event: AuditEvent, ctx: DetectorContext) -> bool:
    return event.succeeded and not ctx.pod_actor_exempt(event)


def _news(detector_id: str, event: AuditEvent, body: PodBody, v: Violation, ctx: DetectorContext) -> bool:
    """An update or patch restating what the same identity already set on the object (an operator
    re-applying its DaemonSet, a GitOps reconcile) says nothing new; a create always speaks, and a
    change of value, field or identity is news. Bounded by the context's memory of what was said."""
    key = (detector_id, event.kind, event.namespace, event.name or "", event.user,
           format_path(body.object_path(v.path)), repr(v.value))
    first = ctx.once(key)
    return first or event.verb == "create" or not event.name


# ---------------------------------------------------------------------------------------------
# D01


def _explicit_root(v: Violation) -> bool:
    """root_user_violations' "runs as UID 0" (the value is the UID), not its "may run as root"
    (the value is runAsNonRoot: absent or false)."""
    return type(v.value) is int and v.value == 0


def root_or_privileged(body: PodBody, ctx: DetectorContext) -> Iterator[tuple[Violation, Severity | None]]:
    """The D01 predicates of one pod body: the scan's KH-POD-005, -002, -004 and -033 logic. Root by
    omission is said at the mayRunAsRoot setting's severity (low by default, or off)."""
    pod = body.view
    hits: list[tuple[Violation, Severity | None]] = [(v, None) for v in privileged_violations(pod)]
    may_run_as_root = ctx.settings.mayRunAsRoot
    for v in root_user_violations(pod):
        if v.severity is Severity.LOW:  # a non-root user without runAsNonRoot, or user namespaces
            continue
        if _explicit_root(v):
            hits.append((v, None))
        elif may_run_as_root != "off":
            hits.append((v, Severity.parse(may_run_as_root)))
    hits += [(v, None) for v in escalation_violations(pod) if v.value is True]
    for v in added_capability_violations(pod):
        cap = str(v.value).upper().removeprefix("CAP_")
        raised = Severity.HIGH if cap in ctx.settings.dangerous_caps and (v.severity or 0) < Severity.HIGH else None
        hits.append((v, raised))
    for v, severity in hits:
        if not body.partial or (v.has_value and v.value is not None):
            yield v, severity


GOOD_DEPLOYMENT = event("create", "deployments", group="apps", code=201, body=deployment())
MAYBE_ROOT_DEPLOYMENT = event("create", "deployments", group="apps", code=201, body=deployment(pod_template(
    [{"name": "web", "image": "registry.example.com/web:1.4.2",
      "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    securityContext={"seccompProfile": {"type": "RuntimeDefault"}})))
BAD_DEPLOYMENT = event("create", "deployments", group="apps", code=201,
                       body=deployment(pod_template(privileged_containers())))


@detector(
    id="D01", title="Root or privileged pod created or updated", guidance=("NSA-LOG-15", "NSA-LOG-14", "NSA-POD-5"),
    routes=POD_SPEC_ROUTES,
    severity=Severity.HIGH, min_level="Request", resources=WORKLOAD_RESOURCES, needs=WORKLOAD_NEEDS,
    what="A create, update or patch of any pod-spec kind (pods, deployments, replicasets, statefulsets, daemonsets, "
    "jobs, cronjobs, replicationcontrollers, podtemplates; init and ephemeral containers) succeeded with a "
    "privileged container, runAsUser 0, allowPrivilegeEscalation: true, or added capabilities; or Pod Security "
    "Admission annotated the request with audit violations. A container that may run as root (no runAsNonRoot: "
    "true, no non-root runAsUser: the image decides) is said at the mayRunAsRoot setting's severity, low by "
    "default (off to leave it to the scan's KH-POD-002).",
    why="Guidance §3.1 alert 'a Pod running with root permissions' and threat table #1 (malicious pods, possibly "
    "as root): a privileged or root container is one escape away from the node.",
    response="Check who deployed it and why; if not approved, delete the workload, rotate the credentials of the "
    "identity that created it, and enforce Pod Security Admission (restricted) in the namespace.",
    examples=(
        AuditExample(True, (BAD_DEPLOYMENT,), "a Deployment whose template is privileged"),
        AuditExample(True, (event("patch", "deployments", group="apps", body={"spec": {"template": {"spec": {
            "containers": [{"name": "web", "securityContext": {"privileged": True}}]}}}}),),
            "a strategic-merge patch making a container privileged"),
        AuditExample(True, (event("patch", "daemonsets", group="apps", body=[
            {"op": "replace", "path": "/spec/template/spec/containers/0/securityContext/runAsUser", "value": 0}]),),
            "a JSON patch setting runAsUser 0"),
        AuditExample(False, (GOOD_DEPLOYMENT,), "a hardened Deployment"),
        AuditExample(True, (MAYBE_ROOT_DEPLOYMENT,), "no runAsNonRoot: may run as root (low by default)"),
        AuditExample(False, (MAYBE_ROOT_DEPLOYMENT,), "may run as root, with mayRunAsRoot: off",
                     settings={"mayRunAsRoot": "off"}),
        AuditExample(False, (event("create", "pods", name="web-7d4b9-x2x1z", code=201,
                                   user="system:serviceaccount:kube-system:replicaset-controller",
                                   groups=("system:serviceaccounts", "system:serviceaccounts:kube-system",
                                           "system:authenticated"), ips=("10.0.0.10",),
                                   agent="kube-controller-manager/v1.31.2 (linux/amd64) kubernetes/5864a46/"
                                   "system:serviceaccount:kube-system:replicaset-controller",
                                   body={"apiVersion": "v1", "kind": "Pod",
                                         "metadata": {"generateName": "web-7d4b9-"},
                                         "spec": pod_template(privileged_containers())["spec"]}),),
                     "the ReplicaSet controller creating the pods of a template (judged on the template)"),
        AuditExample(False, (event("create", "deployments", group="apps", code=403, body=deployment(
            pod_template(privileged_containers()))),), "a denied create"),
        AuditExample(False, (event("patch", "deployments", group="apps", body={"spec": {"replicas": 5}}),),
                     "a patch that does not touch the pod spec"),
        AuditExample(True, (event("update", "deployments", group="apps", body=deployment(pod_template(
            privileged_containers()))), event("update", "deployments", group="apps", user="bob@example.com",
                                               body=deployment(pod_template(privileged_containers())))),
            "the same privileged template re-applied by another identity: news"),
    ),
)
def d01_root_or_privileged(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in WRITES or not _judged(event, ctx):
        return
    found = False
    for body in pod_bodies(event):
        for v, severity in root_or_privileged(body, ctx):
            found = True
            if _news("D01", event, body, v, ctx):
                yield _rewrap(event, body, v, severity)
    violations = event.annotations.get(PSA_AUDIT_ANNOTATION)
    if violations and not found and workload_kind(event) is not None:
        yield Violation(None, ("annotations", PSA_AUDIT_ANNOTATION),
                        f"Pod Security Admission audit violations: {str(violations)[:300]} ({_where(event)})",
                        str(violations)[:300], has_value=True, severity=Severity.MEDIUM)


# ---------------------------------------------------------------------------------------------
# D02


def host_access(body: PodBody, ctx: DetectorContext) -> Iterator[Violation]:
    pod = body.view
    hits = [*host_pid_ipc_violations(pod), *host_network_violations(pod),
            *host_path_violations(pod, ctx.settings.is_sensitive_path)]
    yield from (explicit(iter(hits)) if body.partial else hits)


def _mount_changes(body: PodBody) -> Iterator[Path]:
    for c in body.view.containers():
        if "volumeMounts" in c.obj:
            yield (*c.path, "volumeMounts")
    for path in body.removed:
        if "volumeMounts" in path:
            yield ("$jsonpatch", *path)


@detector(
    id="D02", title="Host namespaces or hostPath requested", guidance=("NSA-LOG-15", "NSA-LOG-14", "NSA-POD-9"),
    routes=POD_SPEC_ROUTES,
    severity=Severity.HIGH, min_level="Request", resources=WORKLOAD_RESOURCES, needs=WORKLOAD_NEEDS,
    what="A create, update or patch of any pod-spec kind succeeded with hostPID, hostIPC or hostNetwork true or a "
    "hostPath volume (critical when a sensitive path is mounted writable); a patch that changes volumeMounts.",
    why="Threat table #7: adding a volume mount to reach the host. Host namespaces and host paths hand over node "
    "processes, network and files.",
    response="Verify the change against the deployment process; remove the host access (use PVCs, configMaps, "
    "emptyDir) and enforce the baseline Pod Security level; inspect the node the pod ran on.",
    examples=(
        AuditExample(True, (event("create", "daemonsets", group="apps", body=deployment(pod_template(
            hostPID=True, volumes=[{"name": "root", "hostPath": {"path": "/"}}]))),),
            "a DaemonSet with hostPID and the node's root filesystem"),
        AuditExample(True, (event("patch", "cronjobs", group="batch", body=[
            {"op": "add", "path": "/spec/jobTemplate/spec/template/spec/volumes/-",
             "value": {"name": "sock", "hostPath": {"path": "/var/run/containerd/containerd.sock"}}}]),),
            "a JSON patch adding the runtime socket to a CronJob"),
        AuditExample(False, (GOOD_DEPLOYMENT,), "no host access"),
        AuditExample(False, (event("create", "pods", name="kube-apiserver-cp1", namespace="kube-system",
                                   user="system:node:cp1", groups=("system:nodes", "system:authenticated"),
                                   ips=("10.0.0.10",), agent="kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
                                   body={"apiVersion": "v1", "kind": "Pod", "metadata": {
                                       "name": "kube-apiserver-cp1", "namespace": "kube-system",
                                       "annotations": {"kubernetes.io/config.mirror": "abc"}},
                                       "spec": {"hostNetwork": True, "containers": [
                                           {"name": "kube-apiserver",
                                            "image": "registry.k8s.io/kube-apiserver:v1.31.2"}],
                                           "volumes": [{"name": "k8s-certs",
                                                        "hostPath": {"path": "/etc/kubernetes/pki"}}]}}),),
                     "the kubelet's mirror pod of a static pod"),
    ),
)
def d02_host_access(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in WRITES or not _judged(event, ctx):
        return
    for body in pod_bodies(event):
        yield from (_rewrap(event, body, v) for v in host_access(body, ctx) if _news("D02", event, body, v, ctx))
        if body.partial and body.origin == "requestObject":
            for path in _mount_changes(body):
                yield Violation(None, body.event_path(path), f"patch changes volumeMounts ({_where(event)})",
                                severity=Severity.LOW, evidence={"field": format_path(body.object_path(path))})
                break


# ---------------------------------------------------------------------------------------------
# D11

SECURITY_KEYS = frozenset({"securityContext", "hostPID", "hostIPC", "hostNetwork", "hostUsers",
                           "serviceAccountName", "serviceAccount", "capabilities", "privileged",
                           "allowPrivilegeEscalation", "runAsUser", "runAsNonRoot", "procMount"})


def _security_fields(node: Any, path: Path, out: list[tuple[Path, Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in SECURITY_KEYS:
                out.append(((*path, key), value))
            elif key in ("spec", "template", "jobTemplate", "containers", "initContainers", "ephemeralContainers"):
                _security_fields(value, (*path, key), out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _security_fields(item, (*path, i), out)


MAX_MEMO_SPEC_BYTES = 64 * 1024


def fingerprint(body: PodBody, ctx: DetectorContext) -> dict[str, Any]:
    """What D11 compares between two states of one object: the predicates' verdicts and the
    security fields (one source of truth with the scan). A function of the pod spec, where it sits
    in the object and the run's settings: controllers write the same template again and again, so
    it is remembered by the spec's bytes (bounded)."""
    try:
        spec_bytes = orjson.dumps(body.view.spec)
    except (TypeError, orjson.JSONEncodeError):
        return _fingerprint(body, ctx)
    if len(spec_bytes) > MAX_MEMO_SPEC_BYTES:
        return _fingerprint(body, ctx)
    key = ("D11-fingerprint", body.object_path(body.view.path), spec_bytes)
    hit = ctx.derived.get(key)
    if hit is None:
        hit = _fingerprint(body, ctx)
        ctx.derived.put(key, hit)
    return hit


def _fingerprint(body: PodBody, ctx: DetectorContext) -> dict[str, Any]:
    fields: list[tuple[Path, Any]] = []
    _security_fields(body.view.spec, (), fields)
    verdicts = sorted({(format_path(body.object_path(v.path)), v.message)
                       for v, _ in root_or_privileged(body, ctx)} |
                      {(format_path(body.object_path(v.path)), v.message) for v in host_access(body, ctx)})
    return {"fields": orjson.dumps(sorted((format_path(p), v) for p, v in fields), default=str),
            "verdicts": verdicts}


def _key(event: AuditEvent) -> tuple[str, str, str]:
    return (event.resource, event.namespace, event.name)


@detector(
    id="D11", title="securityContext changed on an existing workload", guidance=("NSA-LOG-15", "NSA-LOG-14"),
    routes=POD_SPEC_ROUTES,
    severity=Severity.MEDIUM, min_level="Request", resources=WORKLOAD_RESOURCES, needs=WORKLOAD_NEEDS,
    what="An update or patch of an existing workload changes a securityContext, host namespaces, capabilities or the "
    "service account: a patch body that sets or removes such a field, or an update whose pod-security verdicts or "
    "security fields differ from the object's last state seen in the log (or the --cluster-state); high when the "
    "change weakens it.",
    why="Guidance v1.2 alert 'changes to a Pod's securityContext': privilege changes on running workloads are a "
    "classic persistence and escalation step.",
    response="Compare the change with the approved manifest in version control; revert it and find how the "
    "identity that made it got write access.",
    examples=(
        AuditExample(True, (event("patch", "statefulsets", group="apps", body={"spec": {"template": {"spec": {
            "serviceAccountName": "admin-sa"}}}}),), "a merge patch switching the service account"),
        AuditExample(True, (GOOD_DEPLOYMENT, event("update", "deployments", group="apps", body=deployment(
            pod_template(privileged_containers())), time="2026-11-02T11:00:00.000000Z")),
            "an update that makes a container privileged"),
        AuditExample(False, (GOOD_DEPLOYMENT, event("update", "deployments", group="apps", body=deployment(
            pod_template([{"name": "web", "image": "registry.example.com/apps/web:1.4.3", "securityContext": {
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True}}])), time="2026-11-02T11:00:00.000000Z")),
            "an update that only changes the image"),
    ),
)
def d11_security_change(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in WRITES or not event.succeeded:
        return
    for body in pod_bodies(event):
        key = _key(event)
        if not body.partial:
            current = fingerprint(body, ctx)
            previous = ctx.memory.get(key)
            ctx.memory.put(key, current)
            if event.verb != "update" or ctx.pod_actor_exempt(event):
                continue
            if previous is None:
                ctx.counters["D11: updates of objects with no earlier state in the input"] += 1
                continue
            if previous == current:
                continue
            new = [v for v in current["verdicts"] if v not in previous["verdicts"]]
            detail = "; ".join(msg for _, msg in new[:5]) if new else "security fields changed"
            path = next((p for p, _ in new), "")
            yield Violation(None, (), f"update changes pod security: {detail} ({_where(event)})",
                            severity=Severity.HIGH if new else None,
                            evidence={"field": path, "weakened": [p for p, _ in new]})
            continue
        if ctx.pod_actor_exempt(event) or body.origin != "requestObject":
            continue
        changed: list[tuple[Path, Any]] = []
        _security_fields(body.view.spec, body.view.path, changed)
        removed = [("$jsonpatch", *p) for p in body.removed if SECURITY_KEYS.intersection(str(x) for x in p)]
        if not changed and not removed:
            continue
        weakening = any(True for _ in root_or_privileged(body, ctx)) or any(True for _ in host_access(body, ctx))
        first = changed[0][0] if changed else removed[0]
        names = [format_path(body.object_path(p)) for p, _ in changed] + [
            f"{format_path(body.object_path(p))} (removed)" for p in removed]
        value = changed[0][1] if changed else None
        yield Violation(None, body.event_path(first), f"patch changes {', '.join(names[:5])} ({_where(event)})",
                        value, has_value=bool(changed), severity=Severity.HIGH if weakening else None,
                        evidence={"field": names[0], "fields": names})


# ---------------------------------------------------------------------------------------------
# D14


def _images(body: PodBody) -> Iterator[tuple[Path, str]]:
    for c in body.view.containers():
        image = c.obj.get("image")
        if isinstance(image, str):
            yield (*c.path, "image"), image


def _needs_prefixes(ctx: DetectorContext) -> str | None:
    return None if ctx.settings.approvedImagePrefixes else "set approvedImagePrefixes in --settings"


@detector(
    id="D14", title="Image from outside the approved registries", guidance=("NSA-LOG-15", "NSA-LOG-14"),
    routes=POD_SPEC_ROUTES,
    severity=Severity.MEDIUM, min_level="Request", resources=WORKLOAD_RESOURCES, needs=WORKLOAD_NEEDS,
    requires=_needs_prefixes,
    what="A create, update or patch of any pod-spec kind names a container image (init and ephemeral included) "
    "that starts with none of approvedImagePrefixes.",
    why="Threat table #1: a malicious container masquerading as a legitimate image; images from unexpected "
    "registries are the first sign.",
    response="Compare the image with the known-good image and digest; remove the workload if unapproved and "
    "restrict registries with an admission policy. (Digest drift needs the live API: not in audit events.)",
    examples=(
        AuditExample(True, (event("create", "deployments", group="apps", body=deployment(pod_template([
            {"name": "web", "image": "docker.io/attacker/web:latest"}]))),),
            settings={"approvedImagePrefixes": ["registry.example.com/"]}),
        AuditExample(False, (GOOD_DEPLOYMENT,), settings={"approvedImagePrefixes": ["registry.example.com/"]}),
    ),
)
def d14_unapproved_image(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    prefixes = tuple(ctx.settings.approvedImagePrefixes)
    if not prefixes or event.verb not in WRITES or not _judged(event, ctx):
        return
    for body in pod_bodies(event):
        for path, image in _images(body):
            if not image.startswith(prefixes):
                yield Violation(None, body.event_path(path), f"image {image} is not from an approved registry "
                                f"({_where(event)})", image, has_value=True,
                                evidence={"field": format_path(body.object_path(path))})


def images_of(event: AuditEvent) -> list[str]:
    return [image for body in pod_bodies(event) for _, image in _images(body)]


def commands_of(event: AuditEvent) -> list[str]:
    out = []
    for body in pod_bodies(event):
        for c in body.view.containers():
            cmd = as_list(c.obj.get("command")) + as_list(c.obj.get("args"))
            if cmd:
                out.append(" ".join(str(x) for x in cmd)[:200])
    return out


def schedule_of(event: AuditEvent) -> str | None:
    body = event.request_object
    return str(as_dict(as_dict(body).get("spec")).get("schedule") or "") or None if isinstance(body, dict) else None
