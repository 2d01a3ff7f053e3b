"""Who creates workloads, from where, and CronJobs (guidance §3.2 D03, D10, D19)."""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.audit.detectors import AuditExample, detector, route
from kubeharden.audit.detectors._events import deployment, event, pod_template
from kubeharden.audit.detectors.pods import WORKLOAD_NEEDS, _where, commands_of, images_of, schedule_of
from kubeharden.audit.event import WORKLOAD_RESOURCES, AuditEvent
from kubeharden.audit.runner import DetectorContext
from kubeharden.model import Severity, Violation
from kubeharden.nodeconf.auditpolicy import RequestKind

SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated")
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": pod_template()["spec"]}


def _needs_networks(ctx: DetectorContext) -> str | None:
    return None if (ctx.settings.podCIDRs or ctx.settings.nodeIPs) else "set podCIDRs and/or nodeIPs in --settings"


@detector(
    id="D03", title="Pod created from a pod or node address", guidance=("NSA-LOG-15", "NSA-LOG-18"),
    routes=(route(("create",), ("pods",), ("",)),),
    severity=Severity.HIGH, resources=("pods",), requires=_needs_networks,
    needs=(RequestKind("", "pods", verbs=("create",)),),
    what="A pod create succeeded whose sourceIPs[0] is inside podCIDRs or is a node address (nodeIPs), by an "
    "identity that is not a control-plane controller; the kubelet's mirror pods are not counted. Low when the "
    "identity is a deployerIdentity (an in-cluster CD system creates pods from the pod network as its job).",
    why="Guidance §3.1 alert 'Pod or worker-node IPs as the source of a Pod-creation request' and threat table #3: "
    "code running in a pod that creates pods is using a stolen service account token to spread.",
    response="The guidance suggests evicting the pod whose IP made the request (NSA-LOG-18: printed advice, no "
    "automatic action); find which pod holds that IP, revoke its service account's rights, delete the new pod.",
    examples=(
        AuditExample(True, (event("create", "pods", name="x", user="system:serviceaccount:apps:web",
                                  groups=SA_GROUPS, ips=("10.244.3.17",), body=POD),),
                     settings={"podCIDRs": ["10.244.0.0/16"]}),
        AuditExample(False, (event("create", "pods", name="x", user="system:serviceaccount:kube-system:job-controller",
                                   groups=SA_GROUPS, ips=("10.0.0.10",), body=POD),),
                     settings={"podCIDRs": ["10.244.0.0/16"], "nodeIPs": ["10.0.0.10"]}),
        AuditExample(False, (event("create", "pods", name="x", ips=("198.51.100.20",), body=POD),),
                     settings={"podCIDRs": ["10.244.0.0/16"]}),
        AuditExample(True, (event("create", "pods", name="x", user="system:serviceaccount:argocd:argocd-application-"
                                  "controller", groups=SA_GROUPS, ips=("10.244.9.4",), body=POD),),
                     "an in-cluster CD system (a deployerIdentity): still said, at low",
                     settings={"podCIDRs": ["10.244.0.0/16"],
                               "deployerIdentities": ["system:serviceaccount:argocd:*"]}),
    ),
)
def d03_pod_from_pod_ip(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb != "create" or event.resource != "pods" or event.subresource or not event.succeeded:
        return
    ip = event.client_ip
    if not ip or not ctx.settings.in_cluster(ip) or ctx.pod_actor_exempt(event) or ctx.is_control_plane(event.user):
        return
    what = "pod network" if ip in ctx.settings.pod_networks else "node"
    by_deployer = _deployer(event, ctx)
    yield Violation(None, ("sourceIPs", 0), f"pod created from {ip} (a {what} address) "
                    f"{'by a deployer identity ' if by_deployer else ''}({_where(event)})", ip, has_value=True,
                    severity=Severity.LOW if by_deployer else None)


def _deployer(event: AuditEvent, ctx: DetectorContext) -> bool:
    s = ctx.settings
    return bool(s.deployers) and s.deployers(event.user) and (
        not s.deployer_agents or s.deployer_agents(event.user_agent))


@detector(
    id="D10", title="CronJob created or modified", guidance=("NSA-LOG-15", "NSA-LOG-14"),
    routes=(route(("create", "update", "patch"), ("cronjobs",), ("",)),),
    severity=Severity.MEDIUM, min_level="Request", resources=("cronjobs",),
    needs=(RequestKind("batch", "cronjobs", verbs=("create", "update", "patch")),),
    what="A CronJob create, update or patch succeeded (not a status update); high when one of its images is outside "
    "approvedImagePrefixes, low when made by a deployer identity.",
    why="Threat table #8: CronJobs run malware again and again and survive pod deletion.",
    response="Check the schedule, image and command against the approved list; suspend (spec.suspend: true) and "
    "delete an unknown CronJob, then look for what it already ran.",
    examples=(
        AuditExample(True, (event("create", "cronjobs", group="batch", name="backup", body={
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "backup"},
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": pod_template([
                {"name": "miner", "image": "docker.io/xmrig/xmrig:latest"}])}}}}),),),
        AuditExample(False, (event("update", "cronjobs", group="batch", name="backup", subresource="status",
                                   user="system:serviceaccount:kube-system:cronjob-controller", groups=SA_GROUPS),),
                     "the controller updating status"),
    ),
)
def d10_cronjob_change(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in ("create", "update", "patch") or event.resource != "cronjobs" or event.subresource \
            or not event.succeeded:
        return
    if ctx.is_control_plane(event.user):
        return
    images = images_of(event)
    prefixes = tuple(ctx.settings.approvedImagePrefixes)
    unapproved = [i for i in images if prefixes and not i.startswith(prefixes)]
    severity = Severity.HIGH if unapproved else (Severity.LOW if _deployer(event, ctx) else None)
    detail = []
    schedule = schedule_of(event)
    if schedule:
        detail.append(f"schedule {schedule!r}")
    if images:
        detail.append("images " + ", ".join(images[:4]))
    commands = commands_of(event)
    if commands:
        detail.append("command " + commands[0])
    text = f"; {'; '.join(detail)}" if detail else ""
    yield Violation(None, (), f"CronJob {event.verb} ({_where(event)}){text}", severity=severity,
                    evidence={"images": images, "unapprovedImages": unapproved, "schedule": schedule})


def _needs_deployers(ctx: DetectorContext) -> str | None:
    return None if ctx.settings.deployerIdentities else "set deployerIdentities in --settings"


@detector(
    id="D19", title="Workload change outside the deployment process", guidance=("NSA-LOG-15", "NSA-LOG-14"),
    routes=(route(("create", "update", "patch", "delete"), WORKLOAD_RESOURCES, ("",)),),
    severity=Severity.MEDIUM, resources=WORKLOAD_RESOURCES, requires=_needs_deployers,
    needs=tuple(RequestKind(k.group, k.resource, k.subresource, ("create", "update", "patch", "delete"))
                for k in WORKLOAD_NEEDS),
    what="A workload create, update, patch or delete succeeded by an identity that is neither a deployer "
    "(deployerIdentities, and deployerUserAgents when set) nor the control plane.",
    why="Threat table #2: deviations from the standard deployment process (a human with kubectl, a stolen "
    "token) are how malicious images and changes reach production.",
    response="Ask the person; reconcile the workload from version control (the CD system would revert it) and "
    "narrow who may write workloads.",
    examples=(
        AuditExample(True, (event("update", "deployments", group="apps", body=deployment()),),
                     settings={"deployerIdentities": ["system:serviceaccount:argocd:argocd-application-controller"]}),
        AuditExample(False, (event("update", "deployments", group="apps", body=deployment(),
                                   user="system:serviceaccount:argocd:argocd-application-controller",
                                   groups=SA_GROUPS, agent="argocd-controller/v2.12.3"),),
                     settings={"deployerIdentities": ["system:serviceaccount:argocd:argocd-application-controller"]}),
    ),
)
def d19_outside_process(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.verb not in ("create", "update", "patch", "delete") or event.resource not in WORKLOAD_RESOURCES \
            or not event.succeeded:
        return
    if event.subresource or not ctx.settings.deployers:
        return
    if _deployer(event, ctx) or ctx.is_control_plane(event.user) or ctx.pod_actor_exempt(event) or ctx.is_node(event):
        return
    yield Violation(None, (), f"workload {event.verb} outside the deployment process ({_where(event)}, "
                    f"user agent {event.user_agent[:80]!r})")
