"""Interactive access and sensitive reads (guidance §3.2 D05, D13)."""

from __future__ import annotations

from collections.abc import Iterator

from kubeharden.audit.detectors import AuditExample, detector, route
from kubeharden.audit.detectors._events import event
from kubeharden.audit.detectors.pods import _where
from kubeharden.audit.event import AuditEvent
from kubeharden.audit.runner import DetectorContext
from kubeharden.model import Severity, Violation
from kubeharden.nodeconf.auditpolicy import RequestKind

INTERACTIVE = frozenset({"exec", "attach", "portforward"})
CREDENTIAL_WORDS = ("credential", "password", "passwd", "secret", "token", "kubeconfig", "private-key", "apikey")


@detector(
    id="D05", title="Exec, attach or port-forward into a pod", guidance=("NSA-LOG-15", "NSA-LOG-14"),
    routes=(route(("create", "get"), ("pods",), INTERACTIVE),
            route(("update", "patch"), ("pods",), ("ephemeralcontainers",))),
    severity=Severity.MEDIUM, resources=("pods",), stages=("ResponseStarted", "ResponseComplete"),
    needs=(RequestKind("", "pods", "exec", ("create", "get")), RequestKind("", "pods", "attach", ("create", "get")),
           RequestKind("", "pods", "portforward", ("create", "get")),
           RequestKind("", "pods", "ephemeralcontainers", ("update", "patch"))),
    what="pods/exec, pods/attach or pods/portforward (verb create, or get for old websocket clients) succeeded, or "
    "an ephemeral debug container was added, by someone not in breakGlassUsers; high in system namespaces.",
    why="Threat table #3: command execution inside a container is the step before API calls from the pod, "
    "privilege escalation and breakout.",
    response="Confirm with the user; if unexpected, capture the pod (do not delete evidence first), revoke the "
    "user's pods/exec permission and rotate any credentials mounted in the pod.",
    examples=(
        AuditExample(True, (event("create", "pods", name="web-7d4b9-x2x1z", subresource="exec", code=101,
                                  stage="ResponseStarted", uri="/api/v1/namespaces/apps/pods/web-7d4b9-x2x1z/exec?"
                                  "command=sh&container=web&stdin=true&tty=true"),),),
        AuditExample(False, (event("create", "pods", name="web-7d4b9-x2x1z", subresource="exec", code=403),),
                     "denied"),
        AuditExample(False, (event("create", "pods", name="web", subresource="exec", code=101),),
                     settings={"breakGlassUsers": ["alice@example.com"]}),
    ),
)
def d05_interactive(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    if event.resource != "pods":
        return
    sub = event.subresource
    if sub in INTERACTIVE:
        if event.verb not in ("create", "get"):
            return
    elif not (sub == "ephemeralcontainers" and event.verb in ("update", "patch")):
        return
    if not event.succeeded or ctx.settings.break_glass(event.user) or ctx.is_control_plane(event.user):
        return
    severity = Severity.HIGH if event.namespace in ctx.settings.system_namespaces else None
    command = ""
    if sub == "exec" and "command=" in event.request_uri:
        from urllib.parse import parse_qs, urlsplit

        parts = parse_qs(urlsplit(event.request_uri).query).get("command", [])
        command = " ".join(parts)[:200]
    what = {"exec": "exec into", "attach": "attach to", "portforward": "port-forward to",
            "ephemeralcontainers": "debug container added to"}[sub]
    yield Violation(None, ("requestURI",) if command else (), f"{what} pod ({_where(event)})"
                    + (f": {command}" if command else ""), command or None, has_value=bool(command),
                    severity=severity, evidence={"command": command} if command else {})


_CREDENTIAL_NAMES: dict[str, bool] = {}


def _credential_like(name: str) -> bool:
    """A configmap name with a credential word (names repeat: the answer is remembered, bounded)."""
    hit = _CREDENTIAL_NAMES.get(name)
    if hit is None:
        hit = any(w in name for w in CREDENTIAL_WORDS)
        if len(_CREDENTIAL_NAMES) > 65536:
            _CREDENTIAL_NAMES.clear()
        _CREDENTIAL_NAMES[name] = hit
    return hit


def _reader(event: AuditEvent, ctx: DetectorContext) -> bool:
    if ctx.is_control_plane(event.user) or ctx.is_node(event) or ctx.settings.secret_readers(event.user):
        return True
    profile = ctx.baseline.get(event.user) if ctx.baseline is not None else None
    if profile is not None:
        from kubeharden.audit.baseline import pair_of

        return pair_of(event) in profile.pairs
    return False


@detector(
    id="D13", title="Sensitive data read", guidance=("NSA-LOG-15", "NSA-LOG-14", "NSA-SEC-1"),
    routes=(route(resources=("nodes",), subresources=("proxy",)),
            route(("get", "list", "watch"), ("secrets", "configmaps"), ("",))),
    severity=Severity.MEDIUM, resources=("secrets", "nodes", "configmaps"),
    needs=(RequestKind("", "secrets", verbs=("get", "list", "watch")), RequestKind("", "nodes", "proxy")),
    what="Secrets read (get, list, watch) by an identity outside secretReaders, the control plane, nodes and its "
    "baseline (high for a cluster-wide list/watch); nodes/proxy used; configmaps with credential-like names read.",
    why="Guidance v1.2 alert: access to sensitive files and URLs; Secrets hold the tokens and keys an attacker "
    "needs next. nodes/proxy reaches the kubelet API (exec into any pod on the node).",
    response="Check that the identity needs the Secret; rotate the Secrets read if not, and narrow RBAC (no "
    "cluster-wide list/watch of secrets).",
    examples=(
        AuditExample(True, (event("list", "secrets", name="", namespace=None,
                                  user="system:serviceaccount:apps:web",
                                  groups=("system:serviceaccounts", "system:authenticated"), ips=("10.244.3.17",)),),
                     "a cluster-wide list of secrets by an application's service account"),
        AuditExample(False, (event("get", "secrets", name="web-tls", namespace="apps",
                                   user="system:node:worker-1", groups=("system:nodes", "system:authenticated"),
                                   agent="kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46"),),
                     "the kubelet fetching a pod's Secret"),
    ),
)
def d13_sensitive_read(event: AuditEvent, ctx: DetectorContext) -> Iterator[Violation]:
    resource, verb = event.resource, event.verb
    if not event.succeeded:
        return
    if resource == "nodes":
        if event.subresource == "proxy" and not ctx.is_control_plane(event.user):
            yield Violation(None, ("requestURI",), f"kubelet API reached through nodes/proxy ({_where(event)})",
                            event.request_uri[:200], has_value=True, severity=Severity.HIGH)
        return
    if verb not in ("get", "list", "watch") or event.subresource:
        return
    if resource == "configmaps":
        name = event.name.lower()
        if name and _credential_like(name) and not _reader(event, ctx):
            yield Violation(None, ("objectRef", "name"),
                            f"configmap with a credential-like name read ({_where(event)})", event.name,
                            has_value=True, severity=Severity.LOW)
        return
    if resource != "secrets" or _reader(event, ctx):
        return
    cluster_wide = verb in ("list", "watch") and not event.namespace
    severity = Severity.HIGH if cluster_wide else (Severity.LOW if verb == "get" else None)
    scope = "every namespace" if cluster_wide else f"namespace {event.namespace}"
    yield Violation(None, (), f"secrets {verb} in {scope} ({_where(event)})", severity=severity)
