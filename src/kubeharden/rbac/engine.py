"""RBAC evaluation: who may do what, computed from Roles, ClusterRoles and their bindings.

Matching follows the Kubernetes RBAC authorizer (rbac.authorization.k8s.io/v1):

* a verb matches when the rule lists it or ``*``; an API group likewise;
* a resource matches ``*`` (every resource and subresource), its exact ``resource/subresource``
  form, or ``*/subresource`` (that subresource of every resource). ``pods/*`` is *not* a
  wildcard upstream: it only matches a resource literally named so;
* ``resourceNames`` restricts a rule only when non-empty, and then a request without a name
  (list, watch, create, deletecollection) does not match;
* a non-resource URL matches ``*``, itself, or a rule entry ending in ``*`` as a prefix;
* a ClusterRoleBinding grants everywhere; a RoleBinding grants only in its namespace, also when
  it references a ClusterRole; non-resource URLs are granted by ClusterRoleBindings only;
* a ClusterRole with an ``aggregationRule`` has exactly the rules of the ClusterRoles its
  selectors match (the controller overwrites its own ``rules``).

The built-in ClusterRoles and ClusterRoleBindings of a cluster (data/rbac-bootstrap.yaml) are
known too, so that a binding to ``view`` or ``cluster-admin`` means something offline; an input
object with the same name replaces the built-in one.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources as importlib_resources
from typing import Any

import yaml

from kubeharden.inventory import Inventory, as_dict, as_list
from kubeharden.model import Path, Resource
from kubeharden.netpol import PolicyError, parse_selector
from kubeharden.rbac import builtin_resources
from kubeharden.rbac.builtin_resources import BUILTIN_RESOURCES

RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")
ROLE_KINDS = ("Role", "ClusterRole")
# Namespace a namespaced object without metadata.namespace lands in (kubectl's default).
DEFAULT_NAMESPACE = "default"


def effective_namespace(kind: str, namespace: str | None) -> str | None:
    """The namespace an RBAC object (or a pod) is in: None for the cluster-scoped kinds, else its own or
    ``default`` (what `kubectl apply` does without -n). Every consumer of bindings resolves through this."""
    if kind in ("ClusterRole", "ClusterRoleBinding"):
        return None
    return namespace or DEFAULT_NAMESPACE
SA_USER_PREFIX = "system:serviceaccount:"
ALL_AUTHENTICATED = "system:authenticated"
ALL_UNAUTHENTICATED = "system:unauthenticated"
ALL_SERVICEACCOUNTS = "system:serviceaccounts"
ANONYMOUS = "system:anonymous"


# ---------------------------------------------------------------------------------------------
# Subjects and users


@dataclass(frozen=True, slots=True)
class Subject:
    """A binding subject: ``User``, ``Group`` or ``ServiceAccount`` (with its namespace)."""

    kind: str
    name: str
    namespace: str | None = None

    @property
    def username(self) -> str | None:
        """The user name this subject stands for (None for groups)."""
        if self.kind == "ServiceAccount":
            return f"{SA_USER_PREFIX}{self.namespace}:{self.name}"
        if self.kind == "User":
            return self.name
        return None

    def display(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        return out


def parse_service_account_user(username: str) -> tuple[str, str] | None:
    """``system:serviceaccount:<ns>:<name>`` -> (ns, name)."""
    if not username.startswith(SA_USER_PREFIX):
        return None
    rest = username[len(SA_USER_PREFIX):]
    ns, sep, name = rest.partition(":")
    if not sep or not ns or not name or ":" in name:
        return None
    return ns, name


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated identity: a user name and the groups it is in."""

    name: str
    groups: frozenset[str]

    @classmethod
    def for_name(cls, name: str, extra_groups: Iterable[str] = ()) -> UserInfo:
        """The groups Kubernetes gives this user: service accounts are in system:serviceaccounts
        and system:serviceaccounts:<ns>; system:anonymous is unauthenticated; everyone else is
        in system:authenticated."""
        groups = set(extra_groups)
        sa = parse_service_account_user(name)
        if name == ANONYMOUS:
            groups.add(ALL_UNAUTHENTICATED)
        else:
            groups.add(ALL_AUTHENTICATED)
        if sa is not None:
            groups.update((ALL_SERVICEACCOUNTS, f"{ALL_SERVICEACCOUNTS}:{sa[0]}"))
        return cls(name, frozenset(groups))

    @classmethod
    def of_subject(cls, subject: Subject) -> UserInfo | None:
        name = subject.username
        return cls.for_name(name) if name is not None else None


# ---------------------------------------------------------------------------------------------
# Rules, roles and bindings


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One PolicyRule of a role; ``role`` is the role that carries it (for an aggregated role,
    the role it was aggregated from)."""

    role: Role
    index: int
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: tuple[str, ...]
    resource_names: frozenset[str]
    non_resource_urls: tuple[str, ...]

    @property
    def path(self) -> Path:
        return ("rules", self.index)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verbs": sorted(self.verbs)}
        if self.non_resource_urls:
            out["nonResourceURLs"] = list(self.non_resource_urls)
        if self.api_groups or self.resources:
            out["apiGroups"] = sorted(self.api_groups)
            out["resources"] = list(self.resources)
        if self.resource_names:
            out["resourceNames"] = sorted(self.resource_names)
        return out

    def display(self) -> str:
        verbs = ",".join(sorted(self.verbs))
        if self.non_resource_urls:
            return f"{verbs} {','.join(self.non_resource_urls)}"
        groups = ",".join(g or "core" for g in sorted(self.api_groups))
        text = f"{verbs} {','.join(self.resources)} [{groups}]"
        if self.resource_names:
            text += f" names={','.join(sorted(self.resource_names))}"
        return text


@dataclass(eq=False)
class Role:
    kind: str  # Role or ClusterRole
    name: str
    namespace: str | None
    resource: Resource | None  # None for a built-in role
    labels: dict[str, str] = field(default_factory=dict)
    own_rules: list[Rule] = field(default_factory=list)
    selectors: list[dict[str, Any]] | None = None  # aggregationRule.clusterRoleSelectors
    rules: list[Rule] = field(default_factory=list)  # effective rules (after aggregation)

    @property
    def builtin(self) -> bool:
        return self.resource is None

    @property
    def aggregated(self) -> bool:
        return self.selectors is not None

    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}" + (" (built-in)" if self.builtin else "")

    def ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace, "builtin": self.builtin}


@dataclass(eq=False)
class Binding:
    kind: str  # RoleBinding or ClusterRoleBinding
    name: str
    namespace: str | None  # None for a ClusterRoleBinding
    role_kind: str
    role_name: str
    subjects: list[tuple[int, Subject]]
    resource: Resource | None  # None for a built-in binding
    role: Role | None = None  # resolved; None when missing or invalid

    @property
    def builtin(self) -> bool:
        return self.resource is None

    @property
    def scope(self) -> str | None:
        """Namespace the binding grants in (None: every namespace and cluster scope)."""
        return self.namespace if self.kind == "RoleBinding" else None

    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}" + (" (built-in)" if self.builtin else "")

    def ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "namespace": self.namespace, "builtin": self.builtin}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with the RBAC input (missing role, invalid reference...)."""

    resource: Resource | None
    path: Path
    message: str


@dataclass(frozen=True, slots=True)
class Grant:
    """Why a subject may do something: binding -> role -> rule (in ``scope``)."""

    subject: Subject
    subject_index: int
    binding: Binding
    role: Role
    rule: Rule

    @property
    def scope(self) -> str | None:
        return self.binding.scope

    def to_dict(self) -> dict[str, Any]:
        out = {
            "subject": self.subject.to_dict(),
            "binding": self.binding.ref(),
            "role": self.role.ref(),
            "rule": self.rule.to_dict(),
            "rule_index": self.rule.index,
            "scope": self.scope or "cluster",
        }
        if self.rule.role is not self.role:
            out["aggregated_from"] = self.rule.role.ref()
        return out

    def chain(self) -> str:
        via = f" (aggregated from {self.rule.role.display()})" if self.rule.role is not self.role else ""
        return (f"{self.subject.display()} -> {self.binding.display()} -> {self.role.display()}"
                f" -> rules[{self.rule.index}] {self.rule.display()}{via}")


# ---------------------------------------------------------------------------------------------
# Requests and matching


@dataclass(frozen=True, slots=True)
class Request:
    """An API request to authorize. ``api_group`` None means "in whichever group" (a bare
    resource name whose group is unknown offline). ``namespace`` None is cluster scope."""

    verb: str
    resource: str = ""
    subresource: str = ""
    api_group: str | None = ""
    name: str = ""
    namespace: str | None = None
    non_resource_url: str | None = None

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def display(self) -> str:
        if self.non_resource_url is not None:
            return f"{self.verb} {self.non_resource_url}"
        group = "" if not self.api_group else f".{self.api_group}"
        name = f"/{self.name}" if self.name else ""
        where = f" in namespace {self.namespace}" if self.namespace else " (cluster scope)"
        return f"{self.verb} {self.combined_resource}{group}{name}{where}"


def verb_matches(rule: Rule, verb: str) -> bool:
    return "*" in rule.verbs or verb in rule.verbs


def api_group_matches(rule: Rule, group: str | None) -> bool:
    if group is None:
        return bool(rule.api_groups)
    return "*" in rule.api_groups or group in rule.api_groups


def resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for entry in rule.resources:
        if entry == "*" or entry == combined:
            return True
        if subresource and entry == f"*/{subresource}":
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def non_resource_url_matches(rule: Rule, url: str) -> bool:
    for entry in rule.non_resource_urls:
        if entry == "*" or entry == url:
            return True
        if entry.endswith("*") and url.startswith(entry.rstrip("*")):
            return True
    return False


def rule_allows(rule: Rule, request: Request) -> bool:
    if not verb_matches(rule, request.verb):
        return False
    if request.non_resource_url is not None:
        return non_resource_url_matches(rule, request.non_resource_url)
    return (
        api_group_matches(rule, request.api_group)
        and resource_matches(rule, request.resource, request.subresource)
        and resource_name_matches(rule, request.name)
    )


# ---------------------------------------------------------------------------------------------
# Label selectors (aggregation)


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (the NetworkPolicy engine's, one implementation); an invalid one,
    which the API server would reject, selects nothing."""
    try:
        return parse_selector(selector, ()).matches(labels)
    except PolicyError:
        return False


# ---------------------------------------------------------------------------------------------
# Parsing


def _strings(value: Any) -> list[str]:
    return [str(v) for v in as_list(value) if isinstance(v, (str, int, float)) and not isinstance(v, bool)]


def _parse_rules(role: Role, raw: Any) -> list[Rule]:
    out = []
    for i, item in enumerate(as_list(raw)):
        item = as_dict(item)
        out.append(Rule(
            role=role,
            index=i,
            verbs=frozenset(_strings(item.get("verbs"))),
            api_groups=frozenset(_strings(item.get("apiGroups"))),
            resources=tuple(_strings(item.get("resources"))),
            resource_names=frozenset(_strings(item.get("resourceNames"))),
            non_resource_urls=tuple(_strings(item.get("nonResourceURLs"))),
        ))
    return out


def _role_from(kind: str, obj: dict[str, Any], resource: Resource | None, namespace: str | None) -> Role:
    meta = as_dict(obj.get("metadata"))
    labels = {str(k): str(v) for k, v in as_dict(meta.get("labels")).items()}
    role = Role(kind, str(meta.get("name") or ""), namespace, resource, labels)
    role.own_rules = _parse_rules(role, obj.get("rules"))
    aggregation = obj.get("aggregationRule")
    if kind == "ClusterRole" and isinstance(aggregation, dict):
        role.selectors = [as_dict(s) for s in as_list(aggregation.get("clusterRoleSelectors"))]
    return role


def _definition(role: Role) -> Any:
    assert role.resource is not None
    return (role.resource.obj.get("rules"), role.resource.obj.get("aggregationRule"))


def _subjects(raw: Any, binding_namespace: str | None) -> list[tuple[int, Subject]]:
    out = []
    for i, item in enumerate(as_list(raw)):
        item = as_dict(item)
        kind, name = str(item.get("kind") or ""), str(item.get("name") or "")
        if not name:
            continue
        if kind == "ServiceAccount":
            # A RoleBinding's ServiceAccount subject without a namespace means its own namespace.
            ns = item.get("namespace") or binding_namespace
            if not ns:
                continue  # invalid: a ClusterRoleBinding must name the namespace
            out.append((i, Subject(kind, name, str(ns))))
        elif kind in ("User", "Group"):
            out.append((i, Subject(kind, name)))
    return out


@cache
def _bootstrap() -> dict[str, Any]:
    text = importlib_resources.files("kubeharden").joinpath("data/rbac-bootstrap.yaml").read_text("utf-8")
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True, slots=True)
class _BoundRule:
    binding: Binding
    role: Role
    rule: Rule


class RbacModel:
    """Every role and binding of an input plus the built-ins, resolved and indexed."""

    def __init__(self, resources: Iterable[Resource], *, builtins: bool = True) -> None:
        self.cluster_roles: dict[str, Role] = {}
        self.roles: dict[tuple[str, str], Role] = {}
        self.bindings: list[Binding] = []
        self.problems: list[Problem] = []
        input_crb_names: set[str] = set()
        for res in resources:
            if res.kind not in RBAC_KINDS or not res.api_version.startswith("rbac.authorization.k8s.io/"):
                continue
            ns = effective_namespace(res.kind, res.namespace)
            if res.kind in ROLE_KINDS:
                role = _role_from(res.kind, res.obj, res, ns)
                table: dict[Any, Role] = self.cluster_roles if res.kind == "ClusterRole" else self.roles
                key: Any = role.name if res.kind == "ClusterRole" else (ns or DEFAULT_NAMESPACE, role.name)
                previous = table.get(key)
                if (previous is not None and previous.resource is not None
                        and _definition(previous) != _definition(role)):
                    # One name, one role in a cluster: the last object applied wins.
                    first = previous.resource.source
                    self.problems.append(Problem(res, ("rules",), (
                        f"{role.display()} is defined again with different rules (previous definition at {first.file}"
                        f"{':' + str(first.line) if first.line else ''}); the last definition is used")))
                table[key] = role
            else:
                self._add_binding(res.obj, res, ns)
                if res.kind == "ClusterRoleBinding":
                    input_crb_names.add(res.name)
        if builtins:
            self._add_builtins(input_crb_names)
        self._aggregate()
        self._resolve()
        self._index()

    # -- construction --------------------------------------------------------------------------

    def _add_binding(self, obj: dict[str, Any], res: Resource | None, ns: str | None) -> None:
        meta = as_dict(obj.get("metadata"))
        ref = as_dict(obj.get("roleRef"))
        kind = str(obj.get("kind"))
        self.bindings.append(Binding(
            kind=kind,
            name=str(meta.get("name") or ""),
            namespace=ns,
            role_kind=str(ref.get("kind") or ""),
            role_name=str(ref.get("name") or ""),
            subjects=_subjects(obj.get("subjects"), ns),
            resource=res,
        ))

    def _add_builtins(self, input_crb_names: set[str]) -> None:
        data = _bootstrap()
        for raw in as_list(data.get("clusterRoles")):
            role = _role_from("ClusterRole", as_dict(raw), None, None)
            self.cluster_roles.setdefault(role.name, role)  # an input role of that name wins
        for raw in as_list(data.get("roles")):
            raw = as_dict(raw)
            ns = str(as_dict(raw.get("metadata")).get("namespace"))
            role = _role_from("Role", raw, None, ns)
            self.roles.setdefault((ns, role.name), role)
        for raw in as_list(data.get("clusterRoleBindings")):
            raw = as_dict(raw)
            name = str(raw.get("name"))
            if name in input_crb_names:
                continue
            self._add_binding(
                {"kind": "ClusterRoleBinding", "metadata": {"name": name},
                 "roleRef": {"kind": "ClusterRole", "name": raw.get("role")},
                 "subjects": raw.get("subjects")},
                None, None,
            )

    def _aggregate(self) -> None:
        """Effective rules: own rules, or for aggregated ClusterRoles the union of the rules of
        every ClusterRole a selector matches (transitively; cycles are cut)."""
        done: dict[str, list[Rule]] = {}
        visiting: set[str] = set()
        roles = list(self.cluster_roles.values())

        def effective(role: Role) -> list[Rule]:
            if role.name in done:
                return done[role.name]
            if role.selectors is None:
                done[role.name] = role.own_rules
                return role.own_rules
            if role.name in visiting:
                return []
            visiting.add(role.name)
            seen: set[int] = set()
            rules: list[Rule] = []
            for other in roles:
                if other is role or not any(selector_matches(s, other.labels) for s in role.selectors):
                    continue
                for rule in effective(other):
                    if id(rule) not in seen:
                        seen.add(id(rule))
                        rules.append(rule)
            visiting.discard(role.name)
            done[role.name] = rules
            return rules

        for role in roles:
            role.rules = effective(role)
        for role in self.roles.values():
            role.rules = role.own_rules

    def _resolve(self) -> None:
        for b in self.bindings:
            if b.kind == "ClusterRoleBinding" and b.role_kind != "ClusterRole":
                self.problems.append(Problem(b.resource, ("roleRef", "kind"),
                                             f"{b.display()} references a {b.role_kind or 'role of no kind'}: "
                                             "a ClusterRoleBinding can only reference a ClusterRole"))
                continue
            if b.role_kind == "ClusterRole":
                b.role = self.cluster_roles.get(b.role_name)
            elif b.role_kind == "Role":
                b.role = self.roles.get((b.namespace or DEFAULT_NAMESPACE, b.role_name))
            else:
                self.problems.append(Problem(b.resource, ("roleRef", "kind"), (
                    f"{b.display()} has roleRef.kind {b.role_kind!r} (expected Role or ClusterRole)")))
                continue
            if b.role is None:
                where = f" in namespace {b.namespace}" if b.role_kind == "Role" else ""
                self.problems.append(Problem(b.resource, ("roleRef", "name"),
                                             f"{b.display()} references {b.role_kind} {b.role_name!r}{where}, "
                                             "which is not in the input nor a built-in role: it grants nothing"))

    def _index(self) -> None:
        """Index bound rules by verb and resource entry, and bindings by subject, so that a
        question touches only the rules that could answer it."""
        # verb -> resource entry -> bound rules (verb and resource may be "*")
        self._resource_index: dict[str, dict[str, list[_BoundRule]]] = defaultdict(lambda: defaultdict(list))
        self._non_resource: list[_BoundRule] = []
        # ("user", name) / ("group", name) -> [(binding, subject index, subject)]
        self._by_subject: dict[tuple[str, str], list[tuple[Binding, int, Subject]]] = defaultdict(list)
        for b in self.bindings:
            if b.role is None:
                continue
            for i, subject in b.subjects:
                key = ("group", subject.name) if subject.kind == "Group" else ("user", subject.username or "")
                self._by_subject[key].append((b, i, subject))
            for rule in b.role.rules:
                bound = _BoundRule(b, b.role, rule)
                if rule.non_resource_urls and b.kind == "ClusterRoleBinding":
                    self._non_resource.append(bound)
                for verb in rule.verbs:
                    for entry in rule.resources:
                        self._resource_index[verb][entry].append(bound)

    # -- questions -----------------------------------------------------------------------------

    def _candidates(self, request: Request) -> Iterator[_BoundRule]:
        if request.non_resource_url is not None:
            yield from self._non_resource
            return
        entries = ["*", request.combined_resource]
        if request.subresource:
            entries.append(f"*/{request.subresource}")
        for verb in {request.verb, "*"}:
            by_entry = self._resource_index.get(verb)
            if not by_entry:
                continue
            for entry in dict.fromkeys(entries):
                yield from by_entry.get(entry, ())

    def _in_scope(self, binding: Binding, request: Request) -> bool:
        if request.non_resource_url is not None:
            return binding.kind == "ClusterRoleBinding"
        return binding.scope is None or binding.scope == request.namespace

    def who_can(self, request: Request) -> list[Grant]:
        """Every (subject, binding, role, rule) that allows the request."""
        out: list[Grant] = []
        seen: set[tuple[int, int, int]] = set()
        for bound in self._candidates(request):
            if not self._in_scope(bound.binding, request) or not rule_allows(bound.rule, request):
                continue
            for i, subject in bound.binding.subjects:
                key = (id(bound.binding), i, id(bound.rule))
                if key not in seen:
                    seen.add(key)
                    out.append(Grant(subject, i, bound.binding, bound.role, bound.rule))
        return out

    def bindings_for(self, user: UserInfo) -> list[tuple[Binding, int, Subject]]:
        """Bindings with a subject that is this user or one of its groups."""
        out = list(self._by_subject.get(("user", user.name), ()))
        for group in sorted(user.groups):
            out.extend(self._by_subject.get(("group", group), ()))
        return out

    def can(self, user: UserInfo, request: Request) -> list[Grant]:
        """The grants that allow this user the request (empty: denied)."""
        out = []
        for binding, i, subject in self.bindings_for(user):
            if binding.role is None or not self._in_scope(binding, request):
                continue
            for rule in binding.role.rules:
                if rule_allows(rule, request):
                    out.append(Grant(subject, i, binding, binding.role, rule))
        return out

    def permissions(self, user: UserInfo) -> list[Grant]:
        """Every rule this user holds, with the binding that grants it (scope in the grant)."""
        out = []
        for binding, i, subject in self.bindings_for(user):
            if binding.role is None:
                continue
            for rule in binding.role.rules:
                out.append(Grant(subject, i, binding, binding.role, rule))
        return out

    def grants(self) -> Iterator[Grant]:
        """Every (subject, binding, rule) triple of resolved bindings."""
        for b in self.bindings:
            if b.role is None:
                continue
            for i, subject in b.subjects:
                for rule in b.role.rules:
                    yield Grant(subject, i, b, b.role, rule)


def _build_model(inventory: Inventory) -> RbacModel:
    return RbacModel(inventory.of_kind(*RBAC_KINDS))


def model_for(inventory: Inventory) -> RbacModel:
    """The RbacModel of an inventory, built once per scan and shared by every control."""
    return inventory.analysis(_build_model)


# ---------------------------------------------------------------------------------------------
# Naming resources on the command line

# API group of the built-in resources, so that "deployments" means deployments.apps offline.
BUILTIN_RESOURCE_GROUPS: dict[str, str] = {
    r.resource: r.group for r in reversed(BUILTIN_RESOURCES)  # reversed: a shared name keeps its first group
}


def crd_groups(resources: Iterable[Resource]) -> dict[str, str]:
    """plural -> group of the CustomResourceDefinitions in the input."""
    out = {}
    for res in resources:
        if res.kind != "CustomResourceDefinition":
            continue
        spec = as_dict(res.obj.get("spec"))
        plural = as_dict(spec.get("names")).get("plural")
        if plural and spec.get("group"):
            out[str(plural)] = str(spec["group"])
    return out


def crd_names(resources: Iterable[Resource]) -> dict[str, tuple[str, str]]:
    """Every name of the input's CustomResourceDefinitions (plural, singular, short names, kind; lower
    case) -> (plural, group)."""
    out: dict[str, tuple[str, str]] = {}
    for res in resources:
        if res.kind != "CustomResourceDefinition":
            continue
        spec = as_dict(res.obj.get("spec"))
        names = as_dict(spec.get("names"))
        plural, group = names.get("plural"), spec.get("group")
        if not plural or not group:
            continue
        for name in (plural, names.get("singular"), *_strings(names.get("shortNames")), names.get("kind")):
            if name:
                out.setdefault(str(name).lower(), (str(plural), str(group)))
    return out


_VERSION_RE = re.compile(r"^v\d+(?:(?:alpha|beta)\d+)?$")


def _split_resource(text: str) -> tuple[str, str, str | None]:
    """``deployments.apps/scale`` -> ("deployments", "scale", "apps"); ``deployments.v1.apps`` (kubectl's
    resource.version.group) drops the version. Group None: none was written."""
    head, _, subresource = text.strip().partition("/")
    resource, dot, group = head.partition(".")
    if not resource:
        raise ValueError(f"no resource in {text!r}")
    if not dot:
        return resource, subresource, None
    version, vdot, rest = group.partition(".")
    if vdot and _VERSION_RE.match(version):
        group = rest
    return resource, subresource, group


def parse_resource(text: str, known_groups: dict[str, str] | None = None,
                   custom: dict[str, tuple[str, str]] | None = None) -> tuple[str, str, str | None]:
    """``pods``, ``pods/exec``, ``deployments.apps``, ``deployments.apps/scale`` -> (resource,
    subresource, group). Built-in resources may be named as kubectl allows (``deploy``, ``deployment``,
    ``Deployment``), the input's CRDs by any of their names (``custom``, from crd_names). A bare name
    known to neither has group None: any group's resource of that name (see resolve_resource for the
    strict reading of the command line)."""
    resource, subresource, group = _split_resource(text)
    if group is not None:
        builtin = builtin_resources.lookup(resource, group)
        if builtin is not None:
            return builtin.resource, subresource, group
        found = (custom or {}).get(resource.lower())
        if found is not None and found[1] == group:
            return found[0], subresource, group
        return resource, subresource, group
    builtin = builtin_resources.lookup(resource)
    if builtin is not None:
        return builtin.resource, subresource, builtin.group
    if known_groups and resource in known_groups:
        return resource, subresource, known_groups[resource]
    found = (custom or {}).get(resource.lower())
    if found is not None:
        return found[0], subresource, found[1]
    return resource, subresource, None


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The verbs and resources the rules of a model name: a name that a rule uses is not a typo."""

    verbs: frozenset[str]
    resources: dict[str, frozenset[str]]  # "resource" and "resource/sub" -> the apiGroups of its rules

    @classmethod
    def of(cls, model: RbacModel) -> Vocabulary:
        verbs: set[str] = set()
        resources: dict[str, set[str]] = defaultdict(set)
        for role in [*model.cluster_roles.values(), *model.roles.values()]:
            for rule in role.own_rules:
                verbs.update(rule.verbs)
                for entry in rule.resources:
                    resources[entry].update(rule.api_groups)
        return cls(frozenset(verbs), {k: frozenset(v) for k, v in resources.items()})


def resolve_verb(verb: str, vocabulary: Vocabulary) -> str:
    """The verb of a command-line request; ValueError with a did-you-mean for one that neither
    Kubernetes nor any rule of the input knows (`gett` would otherwise answer a confident "no")."""
    verb = verb.strip()
    if verb in builtin_resources.KNOWN_VERBS or verb in vocabulary.verbs:
        return verb
    candidates = [*builtin_resources.KNOWN_VERBS[:-1], *sorted(vocabulary.verbs - {"*"})]
    hint = builtin_resources.did_you_mean(builtin_resources.close_matches(verb, candidates))
    raise ValueError(f"unknown verb {verb!r}{hint}: Kubernetes verbs are "
                     f"{', '.join(builtin_resources.KNOWN_VERBS[:-1])} (or a custom verb a rule of the input uses)")


def _canonical(name: str, custom: dict[str, tuple[str, str]]) -> str:
    """The plural a suggested name stands for (`secret` -> `secrets`), so suggestions do not repeat."""
    builtin = builtin_resources.lookup(name)
    if builtin is not None:
        return builtin.resource
    return custom[name][0] if name in custom else name


def resolve_resource(text: str, vocabulary: Vocabulary,
                     custom: dict[str, tuple[str, str]] | None = None) -> tuple[str, str, str | None]:
    """parse_resource for the command line, strictly: a name that is neither built-in, nor a CRD of the
    input, nor used by a rule of the input is an error with a did-you-mean instead of a confident "no".
    A resource of a group that is not built-in (``widgets.example.com``) is taken as written."""
    custom = custom or {}
    resource, subresource, group = parse_resource(text, custom=custom)
    written_group = _split_resource(text)[2]
    builtin = builtin_resources.lookup(resource, group) if group is not None else None
    rule_groups = vocabulary.resources.get(resource, frozenset())
    in_rules = bool(rule_groups) and (group is None or group in rule_groups or "*" in rule_groups)
    from_crd = (resource, group) in set(custom.values())
    if builtin is None and resource != "*" and not in_rules and not from_crd:
        if written_group is None:
            names = [*builtin_resources.all_names(), *custom, *(r for r in vocabulary.resources if "/" not in r)]
            meant = [_canonical(m, custom) for m in builtin_resources.close_matches(resource, names, n=5)]
            hint = builtin_resources.did_you_mean(list(dict.fromkeys(meant))[:3])
            raise ValueError(f"unknown resource {resource!r}{hint}: not a built-in resource, nor a "
                             "CustomResourceDefinition or a rule of the input; name a custom resource with "
                             "its group (widgets.example.com)")
        if group in builtin_resources.BUILTIN_GROUPS:
            in_group = [n for r in builtin_resources.BUILTIN_RESOURCES if r.group == group for n in r.names()]
            meant = [_canonical(m, {}) for m in builtin_resources.close_matches(resource, in_group, n=5)]
            elsewhere = builtin_resources.lookup(resource)
            if elsewhere is not None:  # secrets.apps: the core group's secrets
                meant.insert(0, elsewhere.resource + (f".{elsewhere.group}" if elsewhere.group else ""))
            hint = builtin_resources.did_you_mean(list(dict.fromkeys(meant))[:3])
            raise ValueError(f"unknown resource {resource!r} in API group {group or 'core'!r}{hint}")
        elsewhere = builtin_resources.lookup(resource)
        groups = builtin_resources.close_matches(group or "", sorted(builtin_resources.BUILTIN_GROUPS - {""}))
        if elsewhere is not None and groups and not any(g == group for g, _ in custom.values()):
            raise ValueError(f"unknown API group {group!r} for {resource!r}"
                             f"{builtin_resources.did_you_mean([f'{elsewhere.resource}.{g}' for g in groups])}")
    if subresource and builtin is not None and subresource not in builtin.subresources \
            and f"{resource}/{subresource}" not in vocabulary.resources:
        known = ", ".join(builtin.subresources) or "none"
        hint = builtin_resources.did_you_mean(builtin_resources.close_matches(subresource, builtin.subresources))
        raise ValueError(f"unknown subresource {resource}/{subresource}{hint}: the subresources of "
                         f"{resource} are {known}")
    return resource, subresource, group
