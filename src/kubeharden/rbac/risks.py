"""Risky RBAC grants: which rules give dangerous powers, and which subjects hold them.

A rule is classified by asking the authorizer's own matching (``rule_allows``) about probe
requests, so wildcards, ``*/subresource`` and verb ``*`` are judged exactly like the API server
would. A rule restricted by ``resourceNames`` is the recommended way to scope a grant and
counts only where the names themselves are the danger: bind/escalate on a role that is itself
risky (cluster-admin), impersonating system:masters or a control-plane identity, approving
for a signer of API-server client certificates, minting tokens of a ServiceAccount that holds
risky powers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from kubeharden.model import Severity
from kubeharden.rbac.engine import (
    ALL_AUTHENTICATED,
    ALL_SERVICEACCOUNTS,
    ALL_UNAUTHENTICATED,
    ANONYMOUS,
    SA_USER_PREFIX,
    Grant,
    RbacModel,
    Request,
    Rule,
    Subject,
    UserInfo,
    rule_allows,
)

# Subjects whose powerful grants are part of how Kubernetes works ("Kind:name" patterns, a
# ServiceAccount written "ServiceAccount:<ns>/<name>"). settings.extra "rbac_expected_subjects"
# (--rbac-expected-subject) adds to them.
EXPECTED_SUBJECTS: tuple[str, ...] = (
    "Group:system:masters",
    "Group:kubeadm:cluster-admins",  # kubeadm's break-glass admin group (admin.conf, 1.29+)
    "Group:system:nodes",
    "User:system:node:*",
    "User:system:kube-controller-manager",
    "User:system:kube-scheduler",
    "User:system:kube-proxy",
    "User:system:apiserver",
    "User:kube-apiserver",
    "User:kube-apiserver-kubelet-client",
)
# Namespaces of the cluster's own components: their ServiceAccounts count as expected system
# subjects, except for cluster-admin (Kubernetes binds it to no ServiceAccount; kube-system/tiller
# or kubernetes-dashboard holding it is the classic takeover). settings.extra "rbac_system_namespaces"
# (--rbac-system-namespace) adds to them.
SYSTEM_NAMESPACES: tuple[str, ...] = ("kube-system", "kube-public", "kube-node-lease")

# Groups that stand for "everyone" (or every workload); any grant beyond discovery is a finding.
BROAD_GROUPS = (ALL_UNAUTHENTICATED, ALL_AUTHENTICATED, ALL_SERVICEACCOUNTS)
# Non-resource URLs that Kubernetes itself opens to everyone (discovery, health, version, OIDC).
DISCOVERY_URLS = (
    "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/healthz/*", "/livez", "/livez/*",
    "/readyz", "/readyz/*", "/version", "/version/", "/openapi", "/openapi/*",
    "/.well-known/openid-configuration", "/openid/v1/jwks",
)
SELF_REVIEW_RESOURCES = frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"})


@dataclass(frozen=True)
class RiskKind:
    id: str
    title: str
    severity: Severity
    control: str  # the control that reports it
    probes: tuple[Request, ...] = ()


def _probes(verbs: Iterable[str], group: str, resources: Iterable[str]) -> tuple[Request, ...]:
    out = []
    for verb in verbs:
        for text in resources:
            resource, _, sub = text.partition("/")
            out.append(Request(verb, resource, sub, group))
    return tuple(out)


CLUSTER_ADMIN = RiskKind("cluster-admin", "full control of every resource (cluster-admin equivalent)",
                         Severity.CRITICAL, "KH-RBAC-001")
BROAD_SUBJECT = RiskKind("broad-subject", "grant to anonymous, unauthenticated or all authenticated users / "
                         "all service accounts", Severity.HIGH, "KH-RBAC-002")
SECRETS_READ = RiskKind("secrets-read", "read Secrets (get/list/watch)", Severity.HIGH, "KH-RBAC-003",
                        _probes(("get", "list", "watch"), "", ("secrets",)))
EXEC = RiskKind("exec", "exec/attach/port-forward into pods or proxy to nodes", Severity.HIGH, "KH-RBAC-004",
                _probes(("create", "get"), "", ("pods/exec", "pods/attach", "pods/portforward", "nodes/proxy")))
WORKLOAD_CREATE = RiskKind(
    "workload-create", "create pods or pod-controlling workloads (run as any ServiceAccount of the namespace)",
    Severity.MEDIUM, "KH-RBAC-005",
    _probes(("create",), "", ("pods", "replicationcontrollers"))
    + _probes(("create",), "apps", ("deployments", "daemonsets", "statefulsets", "replicasets"))
    + _probes(("create",), "batch", ("jobs", "cronjobs")),
)
TOKEN_CREATE = RiskKind("token-create", "create ServiceAccount tokens (serviceaccounts/token)", Severity.HIGH,
                        "KH-RBAC-005", _probes(("create",), "", ("serviceaccounts/token",)))
ESCALATE_BIND = RiskKind("escalate-bind", "escalate or bind roles (grant more than it holds)", Severity.HIGH,
                         "KH-RBAC-006",
                         _probes(("escalate", "bind"), "rbac.authorization.k8s.io", ("roles", "clusterroles")))
IMPERSONATE = RiskKind("impersonate", "impersonate users, groups or service accounts", Severity.HIGH,
                       "KH-RBAC-006",
                       _probes(("impersonate",), "", ("users", "groups", "serviceaccounts"))
                       + _probes(("impersonate",), "authentication.k8s.io", ("userextras/scopes", "uids")))
# Approving needs update on certificatesigningrequests/approval AND approve on the signer; the second is the
# rare, specific one (update on '*' resources is common in operator roles and approves nothing on its own).
CSR_APPROVE = RiskKind("csr-approve", "approve certificate signing requests", Severity.HIGH, "KH-RBAC-006",
                       _probes(("approve",), "certificates.k8s.io", ("signers",)))
WEBHOOK_MODIFY = RiskKind(
    "webhook-modify", "create or change admission webhooks", Severity.HIGH, "KH-RBAC-006",
    _probes(("create", "update", "patch", "delete"), "admissionregistration.k8s.io",
            ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")),
)
PROBED_RISKS = (SECRETS_READ, EXEC, WORKLOAD_CREATE, TOKEN_CREATE, ESCALATE_BIND, IMPERSONATE, CSR_APPROVE,
                WEBHOOK_MODIFY)
RISKS = {r.id: r for r in (CLUSTER_ADMIN, BROAD_SUBJECT, *PROBED_RISKS)}


def is_full_admin(rule: Rule) -> bool:
    """``*`` verbs on ``*`` resources of ``*`` API groups, not narrowed by resourceNames."""
    return ("*" in rule.verbs and "*" in rule.api_groups and "*" in rule.resources
            and not rule.resource_names)


def _is_discovery_url(url: str) -> bool:
    if url in DISCOVERY_URLS:
        return True
    if url.endswith("*"):
        return False  # a wider pattern than the defaults
    return any(p.endswith("*") and url.startswith(p[:-1]) for p in DISCOVERY_URLS)


def is_discovery_only(rule: Rule) -> bool:
    """What Kubernetes grants everyone by default: GET on discovery/health/version URLs and the
    self-review APIs."""
    if rule.non_resource_urls and not rule.resources:
        return rule.verbs <= {"get", "head"} and all(_is_discovery_url(u) for u in rule.non_resource_urls)
    if rule.resources and not rule.non_resource_urls:
        return (rule.verbs == {"create"} and set(rule.resources) <= SELF_REVIEW_RESOURCES
                and "*" not in rule.api_groups)
    return not rule.verbs  # a rule with no verbs grants nothing


# Probed resources that are not namespaced: a RoleBinding cannot grant them (the API server asks the
# authorizer with no namespace). clusterroles stay: `bind` on them is checked in the binding's namespace.
CLUSTER_SCOPED_PROBES = frozenset({("certificates.k8s.io", "certificatesigningrequests"),
                                   ("certificates.k8s.io", "signers"), ("", "nodes"), ("", "users"), ("", "groups"),
                                   ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
                                   ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
                                   ("authentication.k8s.io", "userextras"), ("authentication.k8s.io", "uids")})


# Identities whose impersonation is cluster-admin or control-plane power, and signers whose
# certificates authenticate to the API server as any user (system:masters included) or any node.
PRIVILEGED_IDENTITIES = frozenset({"system:masters", "kubeadm:cluster-admins", "system:nodes", "system:admin",
                                   "kubernetes-admin", "system:kube-controller-manager", "system:kube-scheduler"})
PRIVILEGED_SIGNERS = frozenset({"kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet",
                                "kubernetes.io/*"})


def _names_are_dangerous(kind: RiskKind, names: frozenset[str], risky_role: Callable[[str], bool]) -> bool:
    if kind is IMPERSONATE:
        return bool(names & PRIVILEGED_IDENTITIES) or any(n.startswith("system:node:") for n in names)
    if kind is CSR_APPROVE:
        return bool(names & PRIVILEGED_SIGNERS)
    if kind is ESCALATE_BIND:
        return any(risky_role(n) for n in names)
    # Secrets, exec targets, webhooks of named objects: the recommended scoping. Tokens of named
    # ServiceAccounts depend on what those hold: RiskAnalysis.risky_token_targets follows them.
    return False


def _named_probes(rule: Rule, probe: Request) -> list[Request]:
    """The probe as the API server would ask it of a rule with resourceNames. A create of a new
    object carries no name, so such a rule never allows it; a create on a subresource
    (pods/exec, serviceaccounts/token) names its parent object and can."""
    if not rule.resource_names:
        return [probe]
    if probe.verb == "create" and not probe.subresource:
        return []
    return [replace(probe, name=name) for name in sorted(rule.resource_names)]


def rule_risks(rule: Rule, namespaced: bool = False,
               risky_role: Callable[[str], bool] = lambda name: name == "cluster-admin") -> list[RiskKind]:
    """The dangerous powers one rule gives (only cluster-admin for a full wildcard rule); ``namespaced``
    when the rule is granted through a RoleBinding; ``risky_role`` tells whether a role of that name
    gives risky powers (for bind/escalate restricted to named roles)."""
    if is_full_admin(rule):
        return [CLUSTER_ADMIN]
    kinds = [kind for kind in PROBED_RISKS if any(
        rule_allows(rule, named) for probe in kind.probes
        if not (namespaced and (probe.api_group, probe.resource) in CLUSTER_SCOPED_PROBES)
        for named in _named_probes(rule, probe))]
    if rule.resource_names:
        kinds = [k for k in kinds if _names_are_dangerous(k, rule.resource_names, risky_role)]
    return kinds


@dataclass
class RiskSettings:
    expected_subjects: tuple[str, ...] = EXPECTED_SUBJECTS
    system_namespaces: tuple[str, ...] = SYSTEM_NAMESPACES

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RiskSettings:
        """The defaults plus the subjects and namespaces the user declared expected."""
        return cls(
            EXPECTED_SUBJECTS + tuple(str(s) for s in extra.get("rbac_expected_subjects", ())),
            SYSTEM_NAMESPACES + tuple(str(s) for s in extra.get("rbac_system_namespaces", ())),
        )

    def expected(self, subject: Subject, kind: RiskKind | None = None) -> bool:
        """A system subject whose powerful grants (of this kind) are expected."""
        if subject.kind == "ServiceAccount":
            if subject.namespace in self.system_namespaces and kind is not CLUSTER_ADMIN:
                return True
            label = f"ServiceAccount:{subject.namespace}/{subject.name}"
        else:
            label = f"{subject.kind}:{subject.name}"
        return any(fnmatchcase(label, pattern) for pattern in self.expected_subjects)


def is_broad_subject(subject: Subject) -> bool:
    if subject.kind == "User":
        return subject.name == ANONYMOUS
    if subject.kind == "Group":
        return subject.name in BROAD_GROUPS or subject.name.startswith(ALL_SERVICEACCOUNTS + ":")
    return False


def broad_subject_severity(subject: Subject) -> Severity:
    if subject.name in (ANONYMOUS, ALL_UNAUTHENTICATED):
        return Severity.CRITICAL
    return Severity.HIGH


@dataclass(frozen=True)
class RiskyGrant:
    kind: RiskKind
    grant: Grant
    severity: Severity

    def to_dict(self) -> dict[str, Any]:
        return {"risk": self.kind.id, "title": self.kind.title, "severity": self.severity.label,
                "control": self.kind.control, "chain": self.grant.chain(), **self.grant.to_dict()}


def grant_severity(kind: RiskKind, grant: Grant) -> Severity:
    # Reading Secrets in one namespace is less than reading them everywhere.
    if kind is SECRETS_READ and grant.scope is not None:
        return Severity.MEDIUM
    return kind.severity


class RiskAnalysis:
    """Risky grants of the bindings in the input (built-in bindings are not judged)."""

    def __init__(self, model: RbacModel) -> None:
        self.model = model
        self._rule_cache: dict[tuple[int, bool], list[RiskKind]] = {}
        self._risky_accounts: dict[tuple[str, str], bool] = {}

    def risks_of_rule(self, rule: Rule, namespaced: bool = False) -> list[RiskKind]:
        key = (id(rule), namespaced)
        cached = self._rule_cache.get(key)
        if cached is None:
            cached = self._rule_cache[key] = rule_risks(rule, namespaced, self._risky_role)
        return cached

    def _risky_role(self, name: str) -> bool:
        """Whether binding a role of this name hands out risky powers (bind/escalate on named roles).
        One level deep: a role whose risk is only binding yet another named role does not count."""
        if name == "cluster-admin":
            return True
        roles = [r for r in (self.model.cluster_roles.get(name),) if r is not None]
        roles += [r for (_, role_name), r in self.model.roles.items() if role_name == name]
        return any(rule_risks(rule) for role in roles for rule in role.rules)

    def risky_grants(self, grants: Iterable[Grant]) -> Iterator[RiskyGrant]:
        for grant in grants:
            if grant.binding.builtin:
                continue
            if is_broad_subject(grant.subject) and not is_discovery_only(grant.rule):
                yield RiskyGrant(BROAD_SUBJECT, grant, broad_subject_severity(grant.subject))
            kinds = self.risks_of_rule(grant.rule, namespaced=grant.scope is not None)
            for kind in kinds:
                yield RiskyGrant(kind, grant, grant_severity(kind, grant))
            if TOKEN_CREATE not in kinds and self.risky_token_targets(grant):
                yield RiskyGrant(TOKEN_CREATE, grant, TOKEN_CREATE.severity)

    def risky_token_targets(self, grant: Grant) -> list[str]:
        """ServiceAccounts ("ns/name") whose tokens a grant restricted by resourceNames can mint and
        that hold risky powers themselves: minting the token is acting as them."""
        rule = grant.rule
        if not rule.resource_names or not any(
                rule_allows(rule, named) for probe in TOKEN_CREATE.probes for named in _named_probes(rule, probe)):
            return []
        namespaces = [grant.scope] if grant.scope else sorted(self._service_account_namespaces())
        own = grant.subject.kind == "ServiceAccount" and (grant.subject.namespace, grant.subject.name)
        # a token of itself gives a ServiceAccount nothing it does not hold (cert-manager does this)
        return [f"{ns}/{name}" for ns in namespaces for name in sorted(rule.resource_names)
                if (ns, name) != own and self._account_is_risky(ns, name)]

    def _service_account_namespaces(self) -> set[str]:
        return {subject.namespace for binding in self.model.bindings for _, subject in binding.subjects
                if subject.kind == "ServiceAccount" and subject.namespace}

    def _account_is_risky(self, namespace: str, name: str) -> bool:
        key = (namespace, name)
        if key not in self._risky_accounts:
            self._risky_accounts[key] = False  # a cycle of token grants adds no power
            user = UserInfo.for_name(f"{SA_USER_PREFIX}{namespace}:{name}")
            # built-in bindings count here: the token of a controller's ServiceAccount carries its powers
            self._risky_accounts[key] = any(
                self.risks_of_rule(g.rule, namespaced=g.scope is not None) or self.risky_token_targets(g)
                for g in self.model.permissions(user))
        return self._risky_accounts[key]

    def all_risky_grants(self) -> list[RiskyGrant]:
        return list(self.risky_grants(self.model.grants()))


@dataclass
class SubjectRisk:
    subject: Subject
    expected: bool
    risks: list[RiskyGrant] = field(default_factory=list)

    @property
    def max_severity(self) -> Severity:
        return max(r.severity for r in self.risks)

    @property
    def score(self) -> int:
        """Sum of severity weights of the distinct (risk, scope) pairs the subject holds."""
        weights = {Severity.LOW: 1, Severity.MEDIUM: 3, Severity.HIGH: 6, Severity.CRITICAL: 10}
        best: dict[tuple[str, str | None], int] = {}
        for r in self.risks:
            key = (r.kind.id, r.grant.scope)
            best[key] = max(best.get(key, 0), weights[r.severity])
        return sum(best.values())

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject.to_dict(), "display": self.subject.display(), "expected": self.expected,
                "max_severity": self.max_severity.label, "score": self.score,
                "risks": [r.to_dict() for r in self.risks]}


def rank_subjects(model: RbacModel, settings: RiskSettings | None = None) -> list[SubjectRisk]:
    """Subjects of input bindings that hold risky grants, the riskiest first."""
    settings = settings or RiskSettings()
    grouped: dict[Subject, list[RiskyGrant]] = defaultdict(list)
    for risky in RiskAnalysis(model).all_risky_grants():
        grouped[risky.grant.subject].append(risky)
    ranked = [SubjectRisk(subject, all(settings.expected(subject, r.kind) for r in risks), risks)
              for subject, risks in grouped.items()]
    return sorted(ranked, key=lambda s: (s.expected, -s.max_severity, -s.score, s.subject.display()))
