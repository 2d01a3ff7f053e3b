"""Who is calling, from where, and how often it fails (guidance §3.2 D04, D06, D07, D15, D20).

These read every event: each returns a tuple (empty in the common case) after a few dict
lookups, never a regex, so that they cost little per event.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from kubeharden.audit.baseline import agent_of, hour_of, network_of, pair_of
from kubeharden.audit.detectors import AuditExample, detector, route
from kubeharden.audit.detectors._events import event
from kubeharden.audit.detectors.pods import _where
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.runner import DetectorContext
from kubeharden.model import Severity, Violation
from kubeharden.nodeconf.auditpolicy import RequestKind

SA_PREFIX = "system:serviceaccount:"
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
SAMPLE_NEEDS = (RequestKind("", "pods"), RequestKind("", "secrets"), RequestKind("", "nodes"),
                RequestKind("", "configmaps"), RequestKind("rbac.authorization.k8s.io", "clusterroles"))
NONE: tuple[Violation, ...] = ()
# Verb/resource pairs that are unusual from inside a pod unless the identity's baseline has them.
SENSITIVE_PAIRS = frozenset({
    "list secrets", "watch secrets", "get secrets", "create pods", "get nodes", "list nodes", "create pods/exec",
    "get pods/exec", "create serviceaccounts/token", "create rbac.authorization.k8s.io/clusterrolebindings",
    "create rbac.authorization.k8s.io/rolebindings", "create rbac.authorization.k8s.io/clusterroles",
    "update rbac.authorization.k8s.io/clusterroles", "patch rbac.authorization.k8s.io/clusterroles",
    "get nodes/proxy", "create nodes/proxy", "create authorization.k8s.io/selfsubjectaccessreviews",
    "create authorization.k8s.io/selfsubjectrulesreviews", "create certificates.k8s.io/certificatesigningrequests",
    "create apps/daemonsets", "create batch/cronjobs",
})
# D20's route: the verbs and every name in those pairs (groups and subresources too: a wider net is safe)
SENSITIVE_VERBS = frozenset(pair.split(" ", 1)[0] for pair in SENSITIVE_PAIRS)
SENSITIVE_RESOURCES = frozenset(part for pair in SENSITIVE_PAIRS for part in pair.split(" ", 1)[1].split("/"))

_PUBLIC_CACHE: dict[str, bool] = {}


def is_public(address: str) -> bool:
    hit = _PUBLIC_CACHE.get(address)
    if hit is None:
        try:
            ip = ipaddress.ip_address(address)
            hit = ip.is_global
        except ValueError:
            hit = False
        if len(_PUBLIC_CACHE) > 65536:
            _PUBLIC_CACHE.clear()
        _PUBLIC_CACHE[address] = hit
    return hit


def _needs_baseline(ctx: DetectorContext) -> str | None:
    return None if ctx.baseline is not None else "needs a baseline: `kubeharden audit learn FILE -o baseline.json`, " \
        "then --baseline baseline.json"


SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:apps", "system:authenticated")


@detector(
    id="D04", title="Service account token used from outside the cluster or in a new way",
    routes=(route(facet="serviceaccount"),),
    guidance=("NSA-LOG-15", "NSA-LOG-13"), severity=Severity.HIGH, needs=SAMPLE_NEEDS,
    needs_users=("system:serviceaccounts",),
    what="A request by a service account (system:serviceaccount:*) from an address that is not a pod or node "
    "address (podCIDRs/nodeIPs; without them, a public address), or, with --baseline, a verb/resource pair the "
    "account was never seen using.",
    why="Threat table #3 and the guidance's note that service account tokens work from outside the cluster: a "
    "token used from elsewhere has been stolen; a new kind of call is an intruder exploring.",
    response="Find where the token leaked (a pod's logs, a CI system); rotate it (delete the Secret or restart the "
    "pods for bound tokens) and restrict what the account may do.",
    examples=(
        AuditExample(True, (event("list", "pods", name="", namespace="apps", user="system:serviceaccount:apps:web",
                                  groups=SA_GROUPS, ips=("34.89.10.20",)),), "a token used from the internet"),
        AuditExample(False, (event("get", "configmaps", name="web-config", user="system:serviceaccount:apps:web",
                                   groups=SA_GROUPS, ips=("10.244.3.17",)),), "in-cluster use"),
        AuditExample(True, (event("create", "pods", subresource="exec", code=101, user="system:serviceaccount:apps:web",
                                  groups=SA_GROUPS, ips=("10.244.3.17",)),), "a call new for this account",
                     settings={"podCIDRs": ["10.244.0.0/16"]},
                     baseline={"identities": {"system:serviceaccount:apps:web": {
                         "events": 500, "pairs": ["get configmaps"], "networks": ["10.244.3.0/24"]}}}),
    ),
)
def d04_service_account(event: AuditEvent, ctx: DetectorContext) -> Sequence[Violation]:
    user = event.user
    if not user.startswith(SA_PREFIX) or not event.succeeded or ctx.is_control_plane(user):
        return NONE
    ip = event.client_ip
    settings = ctx.settings
    if ip:
        off_cluster = not settings.in_cluster(ip) if (settings.podCIDRs or settings.nodeIPs) else is_public(ip)
        if off_cluster and ctx.once(("D04-ip", user, ip)):
            return (Violation(None, ("sourceIPs", 0), f"service account token used from {ip}, outside the cluster "
                              f"({_where(event)})", ip, has_value=True),)
    baseline = ctx.baseline
    if baseline is None:
        return NONE
    profile = baseline.get(user)
    pair = pair_of(event)
    if profile is None:
        if ctx.once(("D04-new", user)):
            return (Violation(None, ("user", "username"), f"service account not in the baseline ({_where(event)})",
                              user, has_value=True, severity=Severity.LOW),)
        return NONE
    if pair not in profile.pairs and ctx.once(("D04-pair", user, pair)):
        severity = Severity.HIGH if pair in SENSITIVE_PAIRS else Severity.MEDIUM
        return (Violation(None, ("verb",), f"service account does something new: {pair} ({_where(event)})", pair,
                          has_value=True, severity=severity),)
    return NONE


@detector(
    id="D06", title="Burst of forbidden or unauthenticated requests", guidance=("NSA-LOG-15",),
    routes=(route(facet="denied"),),
    severity=Severity.MEDIUM, needs=SAMPLE_NEEDS,
    what="forbiddenBurst.threshold requests answered 401/403 (or authorization decision forbid) within "
    "forbiddenBurst.windowSeconds for one user or one source address; a service account's first denial (low).",
    why="Guidance §3.1 alerts 'requests for resources the account lacks permission for' and 'failed API calls'; "
    "threat table #4: probing the API after gaining access produces repeated failures.",
    response="Identify the caller (user, address, user agent); if it is not a misconfigured client, treat its "
    "credentials as compromised and block the address.",
    examples=(
        AuditExample(True, tuple(event("get", "secrets", name=f"s{i}", code=403, user="system:serviceaccount:apps:web",
                                       groups=SA_GROUPS, ips=("10.244.3.17",),
                                       time=f"2026-11-02T10:15:{i:02d}.000000Z") for i in range(10)),
                     "ten denials in ten seconds"),
        AuditExample(False, tuple(event("get", "secrets", name=f"s{i}", code=200,
                                        time=f"2026-11-02T10:15:{i:02d}.000000Z") for i in range(10)),
                     "allowed requests"),
    ),
)
def d06_forbidden_burst(event: AuditEvent, ctx: DetectorContext) -> Sequence[Violation]:
    code = event.code
    if code != 401 and code != 403 and event.annotations.get("authorization.k8s.io/decision") != "forbid":
        return NONE
    user = event.user
    if ctx.is_control_plane(user):
        return NONE
    now = event.time or 0.0
    out: list[Violation] = []
    burst = ctx.settings.forbiddenBurst
    count = ctx.bursts["user"].hit(user, now) if user else None
    if count is not None:
        out.append(Violation(None, ("user", "username"), f"{count} denied requests by {user} within "
                             f"{burst.window_seconds:g}s (last: {_where(event)})", user, has_value=True,
                             evidence={"burstKey": "user", "count": count}))
    ip = event.source_ip
    if ip:
        count = ctx.bursts["ip"].hit(ip, now)
        if count is not None and not out:
            out.append(Violation(None, ("sourceIPs",), f"{count} denied requests from {ip} within "
                                 f"{burst.window_seconds:g}s (last: {_where(event)})", ip, has_value=True,
                                 evidence={"burstKey": "sourceIP", "count": count}))
    if not out and user.startswith(SA_PREFIX) and code == 403 and ctx.once(("D06-first", user)):
        out.append(Violation(None, ("user", "username"), f"first denied request for service account ({_where(event)})",
                             user, has_value=True, severity=Severity.LOW))
    return out


def _health(event: AuditEvent, ctx: DetectorContext) -> bool:
    if event.resource:
        return False
    path = event.request_uri.split("?", 1)[0]
    return ctx.settings.health(path)


@detector(
    id="D07", title="Anonymous request", guidance=("NSA-LOG-15", "NSA-LOG-3", "NSA-AUTH-1"),
    routes=(route(facet="anonymous"),),
    severity=Severity.HIGH, needs=SAMPLE_NEEDS, needs_users=(ANONYMOUS,),
    what="A request by system:anonymous (or in group system:unauthenticated): high when it succeeded on anything "
    "but healthPaths (/healthz, /livez, /readyz, /version ...), low when denied.",
    why="Guidance §3.1 alerts on anonymous accounts being used (v1.2: anonymous requests submitted to the API "
    "server); threat table #6: anonymous access avoids attribution.",
    response="Disable anonymous authentication (--anonymous-auth=false, or an AuthenticationConfiguration allowing "
    "only health paths) and remove RBAC bindings to system:anonymous / system:unauthenticated.",
    examples=(
        AuditExample(True, (event("list", "secrets", name="", namespace="kube-system", user=ANONYMOUS,
                                  groups=(UNAUTHENTICATED,), ips=("203.0.113.99",), agent="curl/8.5.0"),),),
        AuditExample(False, (event("get", "", name="", namespace=None, user=ANONYMOUS, groups=(UNAUTHENTICATED,),
                                   uri="/healthz", ips=("10.0.0.1",), agent="kube-probe/1.31"),),
                     "a health probe"),
    ),
)
def d07_anonymous(event: AuditEvent, ctx: DetectorContext) -> Sequence[Violation]:
    if event.user != ANONYMOUS and UNAUTHENTICATED not in event.groups:
        return NONE
    if _health(event, ctx):
        return NONE
    what = f"{event.verb} {event.kind or event.request_uri.split('?', 1)[0]}"
    if event.succeeded:
        return (Violation(None, ("user", "username"), f"anonymous request succeeded: {what} "
                          f"({event.request_uri.split('?', 1)[0]}) from {event.client_ip}", event.user,
                          has_value=True),)
    if event.denied:
        return (Violation(None, ("user", "username"), f"anonymous request denied: {what} from {event.client_ip}",
                          event.user, has_value=True, severity=Severity.LOW),)
    return NONE


@detector(
    id="D15", title="Unusual behaviour of a human user", guidance=("NSA-LOG-15", "NSA-LOG-13"),
    routes=(route(facet="human"),),
    severity=Severity.MEDIUM, needs=SAMPLE_NEEDS, requires=_needs_baseline,
    what="With --baseline: a human user (not system:*) seen for the first time, from a new network (/24, /64), "
    "with a new client (user agent product and minor version), at an hour of the day (UTC) never seen, or "
    "making a verb/resource call new for them.",
    why="Guidance §3.1 alert 'abnormal user/admin behaviour (unusual time or location)': stolen credentials are "
    "used from other places, at other times, with other tools.",
    response="Confirm with the person through another channel; if it was not them, revoke their credentials "
    "(certificates cannot be revoked: rotate the CA or remove their RBAC) and review what they did.",
    examples=(
        AuditExample(True, (event("list", "secrets", name="", ips=("192.0.2.200",), time="2026-11-02T03:12:00Z",
                                  agent="python-requests/2.31.0"),),
                     "a new network, a new client, 03:00 and a first list of secrets",
                     baseline={"identities": {"alice@example.com": {
                         "events": 900, "pairs": ["get pods", "list pods"], "networks": ["198.51.100.0/24"],
                         "agents": ["kubectl/v1.31"], "hours": [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]}}}),
        AuditExample(False, (event("get", "pods", name="web"),),
                     baseline={"identities": {"alice@example.com": {
                         "events": 900, "pairs": ["get pods", "list pods"], "networks": ["198.51.100.0/24"],
                         "agents": ["kubectl/v1.31"], "hours": [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]}}}),
    ),
)
def d15_unusual_human(event: AuditEvent, ctx: DetectorContext) -> Sequence[Violation]:
    baseline = ctx.baseline
    user = event.user
    if baseline is None or not user or user.startswith("system:") or not event.succeeded:
        return NONE
    profile = baseline.get(user)
    if profile is None:
        if ctx.once(("D15-new", user)):
            return (Violation(None, ("user", "username"), f"user never seen in the baseline ({_where(event)})",
                              user, has_value=True),)
        return NONE
    novelties: list[tuple[str, str, tuple[str | int, ...]]] = []
    ip = event.client_ip
    if ip:
        net = network_of(ip)
        if net not in profile.networks:
            novelties.append(("network", net, ("sourceIPs", 0)))
    if event.user_agent:
        agent = agent_of(event.user_agent)
        if profile.agents and agent not in profile.agents:
            novelties.append(("client", agent, ("userAgent",)))
    hour = hour_of(event)
    if hour is not None and profile.hours and hour not in profile.hours and profile.events >= 20:
        novelties.append(("hour", f"{hour:02d}:00 UTC", ("requestReceivedTimestamp",)))
    pair = pair_of(event)
    if pair not in profile.pairs:
        novelties.append(("call", pair, ("verb",)))
    fresh = [(k, v, p) for k, v, p in novelties if ctx.once(("D15", user, k, v))]
    if not fresh:
        return NONE
    severity = Severity.HIGH if len(fresh) >= 3 or (any(k == "network" for k, _, _ in fresh) and len(fresh) >= 2) \
        else (Severity.LOW if all(k == "call" for k, _, _ in fresh) else None)
    text = ", ".join(f"new {k} {v}" for k, v, _ in fresh)
    return (Violation(None, fresh[0][2], f"unusual for {user}: {text} ({_where(event)})", fresh[0][1],
                      has_value=True, severity=severity, evidence={"novelties": [f"{k}: {v}" for k, v, _ in fresh]}),)


@detector(
    id="D20", title="Unusual API request from inside a pod", guidance=("NSA-LOG-15", "NSA-LOG-13"),
    routes=(route(SENSITIVE_VERBS, SENSITIVE_RESOURCES, facet="pod-network"),
            route(resources=("",), facet="pod-network")),
    severity=Severity.HIGH, needs=SAMPLE_NEEDS, requires=lambda ctx: None if ctx.settings.podCIDRs else
    "set podCIDRs in --settings",
    what="A request from a pod address (sourceIPs[0] inside podCIDRs) making a call that is unusual from a pod "
    "(list/get secrets, create pods, get nodes, exec, RBAC writes, token requests, access reviews...) and, with "
    "--baseline, new for that identity.",
    why="Threat table #3: after command execution in a container, the attacker calls the API with the pod's "
    "token to escalate or move laterally.",
    response="Find the pod that owns the address; inspect it for compromise, then restrict its service account "
    "(automountServiceAccountToken: false where the API is not needed).",
    examples=(
        AuditExample(True, (event("list", "secrets", name="", namespace="apps", user="system:serviceaccount:apps:web",
                                  groups=SA_GROUPS, ips=("10.244.3.17",)),),
                     settings={"podCIDRs": ["10.244.0.0/16"]}),
        AuditExample(False, (event("get", "configmaps", name="web-config", user="system:serviceaccount:apps:web",
                                   groups=SA_GROUPS, ips=("10.244.3.17",)),),
                     settings={"podCIDRs": ["10.244.0.0/16"]}),
    ),
)
def d20_unusual_from_pod(event: AuditEvent, ctx: DetectorContext) -> Sequence[Violation]:
    settings = ctx.settings
    if not settings.podCIDRs:
        return NONE
    ip = event.client_ip
    if not ip or ip not in settings.pod_networks:
        return NONE
    pair = pair_of(event)
    if pair not in SENSITIVE_PAIRS or ctx.is_control_plane(event.user):
        return NONE
    baseline = ctx.baseline
    profile = baseline.get(event.user) if baseline is not None else None
    if profile is not None and pair in profile.pairs:
        return NONE
    if not ctx.once(("D20", event.user, pair, ip)):
        return NONE
    outcome = "succeeded" if event.succeeded else "was denied"
    return (Violation(None, ("verb",), f"{pair} from pod address {ip} {outcome} ({_where(event)})", pair,
                      has_value=True, severity=None if event.succeeded else Severity.MEDIUM),)
