"""One evaluation path: the object of an AdmissionReview judged by the scan's own engine and controls.

The inventory of a request is the object (with the request's namespace when its metadata has none)
plus, when given, a cluster context read once at start-up from a snapshot or manifests: never an API
call while a request waits. Without a context, every kind other than the object's own is marked
unreadable, so the engine reports the controls that would have read one (NetworkPolicies,
ServiceAccounts, RBAC, LimitRanges, Namespaces...) as not assessed, and the response says which in
its warnings. Exceptions (file and ``kubeharden.io/ignore``) apply through the engine, as in scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubeharden.admission.review import AdmissionRequest
from kubeharden.catalog import Control, Settings
from kubeharden.engine import ControlResult, Engine
from kubeharden.exceptions import ExceptionRule
from kubeharden.inventory import WORKLOAD_KINDS, Inventory
from kubeharden.loader import LoadContext, load_paths
from kubeharden.model import Finding, InputError, Resource, Severity, Source, Status

MODES = ("enforce", "warn", "audit")
ADMISSION_SOURCE = "<admission request>"  # a name the line locator never opens
NO_CONTEXT_REASON = "not in the admission request (give --cluster-context)"
AUDIT_KEY = "findings"  # the API server records it as <webhook name>/findings
MAX_WARNING_CHARS = 240  # the API server truncates longer warnings
MAX_WARNINGS = 20
MAX_MESSAGE_CHARS = 3000
MAX_AUDIT_CHARS = 8000

# Kinds controls look up besides the object itself. Without a cluster context they are "unreadable",
# which makes the engine skip, with a reason, every control that asks for one of them.
CONTEXT_KINDS = frozenset({
    "Namespace", "NetworkPolicy", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
    "LimitRange", "ResourceQuota", "Service", "Ingress", "Gateway", "Node", "Secret", "ConfigMap",
    "PodSecurityPolicy", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CustomResourceDefinition", "Endpoints",
    "EndpointSlice", "PersistentVolume", "PersistentVolumeClaim", "StorageClass", "RuntimeClass",
    "PriorityClass", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CiliumNetworkPolicy",
    "CiliumClusterwideNetworkPolicy", "GlobalNetworkPolicy", "AuthorizationPolicy",
})  # not the workload kinds: every pod control asks for all of them (Inventory.pod_specs)


@dataclass(frozen=True)
class AdmissionPolicy:
    """What the webhook does with findings: deny at or above ``deny_at`` (enforce mode), warn at or above
    ``warn_at``, record all of them in the audit annotation."""

    mode: str = "enforce"
    deny_at: Severity = Severity.HIGH
    warn_at: Severity = Severity.LOW
    exempt_namespaces: frozenset[str] = frozenset()
    exempt_users: frozenset[str] = frozenset()
    # On UPDATE, a finding the old object had too is warned about, not denied (scaling a Deployment with
    # an old finding must not be blocked), unless this is set.
    deny_existing: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r} (expected {', '.join(MODES)})")


@dataclass
class Decision:
    uid: str
    allowed: bool
    message: str | None = None
    warnings: list[str] = field(default_factory=list)
    audit: dict[str, str] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)  # active findings on the object
    denied_by: list[Finding] = field(default_factory=list)
    preexisting: list[Finding] = field(default_factory=list)
    verdicts: dict[str, Status] = field(default_factory=dict)  # per control, for the object
    skipped: dict[str, str] = field(default_factory=dict)  # control -> reason (not assessed)
    exempt: str | None = None  # why no control ran


class ContextError(Exception):
    """The cluster context could not be read (names the file)."""


@dataclass
class ClusterContext:
    """Objects of the cluster a request's object is judged against (read once, never during a request).
    Workloads are left out: each request judges its own object, not the cluster's other workloads."""

    resources: list[Resource]
    facts: dict[str, Any]
    origin: str

    @classmethod
    def load(cls, paths: Sequence[str], load: LoadContext | None = None) -> ClusterContext:
        loaded = load_paths(paths, load or LoadContext())
        if loaded.errors:
            first = loaded.errors[0]
            raise ContextError(f"{first.where}: {first.message}")
        kept = [r for r in loaded.resources if r.kind not in WORKLOAD_KINDS]
        facts = dict(loaded.facts)
        facts.setdefault("cluster", True)  # the context stands for the whole cluster
        return cls(kept, facts, ", ".join(paths))


_CONTEXT_BOUND: dict[str, str | None] = {}


def context_bound(ctrl: Control, settings: Settings) -> str | None:
    """Why a control is not assessed without a cluster context, when it is not assessed on every workload of
    its examples (each judged alone, as the webhook judges an object) and at least once for want of other
    objects; None otherwise."""
    if ctrl.id in _CONTEXT_BOUND:
        return _CONTEXT_BOUND[ctrl.id]
    reasons = set()
    for example in ctrl.examples:
        for doc in _example_workloads(example.yaml):
            resource = Resource.from_obj(doc, Source(ADMISSION_SOURCE))
            unreadable = {kind: NO_CONTEXT_REASON for kind in CONTEXT_KINDS if kind != resource.kind}
            result = Engine([ctrl], settings).run(Inventory([resource], {"forbidden_kinds": unreadable}))
            outcome = result.controls[0]
            if outcome.status is not Status.NOT_ASSESSED:
                _CONTEXT_BOUND[ctrl.id] = None
                return None
            reasons.add(outcome.reason or "")
    found = next((r for r in sorted(reasons) if NO_CONTEXT_REASON in r), None)
    _CONTEXT_BOUND[ctrl.id] = found
    return found


def _example_workloads(text: str) -> list[dict[str, Any]]:
    import yaml

    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    return [d for d in docs if isinstance(d, dict) and d.get("kind") in WORKLOAD_KINDS]


def _with_namespace(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """The object as it will be stored: in the request's namespace when its metadata names none."""
    meta = obj.get("metadata")
    if namespace and (not isinstance(meta, dict) or not meta.get("namespace")):
        meta = dict(meta) if isinstance(meta, dict) else {}
        meta["namespace"] = namespace
        return {**obj, "metadata": meta}
    return obj


def _finding_key(f: Finding) -> tuple[str, str, str]:
    return f.control_id, f.path, f.message


class AdmissionEvaluator:
    def __init__(self, controls: list[Control], settings: Settings, rules: Iterable[ExceptionRule] = (),
                 policy: AdmissionPolicy | None = None, context: ClusterContext | None = None,
                 today: dt.date | None = None) -> None:
        self.controls = controls
        self.settings = settings
        self.rules = list(rules)
        self.policy = policy or AdmissionPolicy()
        self.context = context
        self.today = today
        self._kinds_of = {c.id: c.kinds for c in controls}
        # Without a context, a control that reads other objects on every one of its examples is skipped up front
        # (KH-POD-023 builds the RBAC model, most of a review's time, only to be not assessed).
        self._context_bound = {} if context is not None else {
            c.id: reason for c in controls if (reason := context_bound(c, settings)) is not None}
        self._run_controls = [c for c in controls if c.id not in self._context_bound]

    # -- the one evaluation path -----------------------------------------------------------------

    def judge(self, obj: dict[str, Any], namespace: str | None = None) -> tuple[Resource, list[ControlResult],
                                                                                list[InputError]]:
        """Run the controls on one object; results and findings concern that object only."""
        resource = Resource.from_obj(_with_namespace(obj, namespace), Source(ADMISSION_SOURCE))
        context = self.context  # read once: a cluster watch may swap in a newer one meanwhile
        if context is not None:
            own = (resource.kind, resource.namespace, resource.name)
            others = [r for r in context.resources if (r.kind, r.namespace, r.name) != own]
            inventory = Inventory([*others, resource], dict(context.facts))
        else:
            unreadable = {kind: NO_CONTEXT_REASON for kind in CONTEXT_KINDS if kind != resource.kind}
            inventory = Inventory([resource], {"forbidden_kinds": unreadable})
        # An engine per request: it keeps per-run state, and requests run in parallel threads.
        result = Engine(self._run_controls, self.settings, self.rules, self.today).run(inventory)
        result.controls += [ControlResult(c, Status.NOT_ASSESSED, reason=self._context_bound[c.id])
                            for c in self.controls if c.id in self._context_bound]
        mine = resource.ref()
        results = []
        for r in result.controls:
            own_findings = [f for f in r.findings if f.resource is mine]
            if r.status is Status.NOT_ASSESSED:
                results.append(r)
            else:
                status = Status.FAIL if any(not f.excepted for f in own_findings) else Status.PASS
                results.append(ControlResult(r.control, status, own_findings, r.reason))
        return resource, results, result.errors

    def evaluate(self, request: AdmissionRequest) -> Decision:
        decision = Decision(request.uid, True)
        if request.operation in ("DELETE", "CONNECT") or request.object is None:
            decision.exempt = f"{request.operation} is not judged"
            return decision
        if request.namespace and request.namespace in self.policy.exempt_namespaces:
            decision.exempt = f"namespace {request.namespace} is exempt"
            return decision
        if request.username and request.username in self.policy.exempt_users:
            decision.exempt = f"user {request.username} is exempt"
            return decision
        resource, results, errors = self.judge(request.object, request.namespace)
        for r in results:
            if r.status is Status.NOT_ASSESSED:
                decision.skipped[r.control.id] = r.reason or "not assessed"
            else:
                decision.verdicts[r.control.id] = r.status
            decision.findings.extend(f for f in r.findings if not f.excepted)
        if request.operation == "UPDATE" and request.old_object is not None and not self.policy.deny_existing:
            _, old_results, _ = self.judge(request.old_object, request.namespace)
            old_keys = {_finding_key(f) for r in old_results for f in r.findings if not f.excepted}
            decision.preexisting = [f for f in decision.findings if _finding_key(f) in old_keys]
        self._decide(decision, resource, errors)
        return decision

    # -- from findings to a response -------------------------------------------------------------

    def _decide(self, decision: Decision, resource: Resource, errors: list[InputError]) -> None:
        policy = self.policy
        findings = sorted(decision.findings, key=lambda f: (-f.severity, f.control_id, f.path))
        preexisting = {id(f) for f in decision.preexisting}
        if policy.mode == "enforce":
            decision.denied_by = [f for f in findings if f.severity >= policy.deny_at and id(f) not in preexisting]
        decision.allowed = not decision.denied_by
        warned = [f for f in findings if policy.mode != "audit" and f.severity >= policy.warn_at
                  and not any(f is d for d in decision.denied_by)]
        warnings = [_short(f"{f.control_id} ({f.severity.label}"
                           f"{', already present' if id(f) in preexisting else ''}) {f.path}: {f.message}")
                    for f in warned]
        if len(warnings) > MAX_WARNINGS:
            warnings = [*warnings[:MAX_WARNINGS - 1], f"kubeharden: {len(warnings) - MAX_WARNINGS + 1} more findings "
                        "(see the audit annotation)"]
        # Only the controls that judge this kind of object: the others (RBAC bindings, Namespaces...) have
        # nothing to say about it, with or without a context.
        context_skipped = sorted(cid for cid, reason in decision.skipped.items()
                                 if NO_CONTEXT_REASON in reason and resource.kind in self._kinds_of.get(cid, ()))
        if context_skipped and policy.mode != "audit":
            warnings.append(_short(f"kubeharden: {len(context_skipped)} controls skipped without cluster context: "
                                   + ", ".join(context_skipped)))
        for error in errors:  # a malformed kubeharden.io/ignore annotation, for example
            warnings.append(_short(f"kubeharden: {error.message}"))
        decision.warnings = warnings
        if findings:
            decision.audit = {AUDIT_KEY: _audit_value(findings)}
        if decision.denied_by:
            decision.message = _denial_message(resource, decision.denied_by)


def _short(text: str) -> str:
    return text if len(text) <= MAX_WARNING_CHARS else text[:MAX_WARNING_CHARS - 3] + "..."


def _audit_value(findings: list[Finding]) -> str:
    items = [{"control": f.control_id, "severity": f.severity.label, "path": f.path} for f in findings]
    text = orjson.dumps(items).decode()
    while len(text) > MAX_AUDIT_CHARS and len(items) > 1:
        items = items[: len(items) // 2]
        text = orjson.dumps([*items, {"more": len(findings) - len(items)}]).decode()
    return text


def _denial_message(resource: Resource, denied: list[Finding]) -> str:
    parts = [f"{f.control_id} ({f.severity.label}) {f.path}: {f.message}. Fix: {f.remediation}" for f in denied]
    text = f"kubeharden denied {resource.display()}: " + " | ".join(parts)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 3] + "..."
