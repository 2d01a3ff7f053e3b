"""NetworkPolicy engine: networking.k8s.io/v1 semantics over an Inventory (no printing).

Pods are stood for by the pod templates of the input (``Inventory.pod_specs()``): a Deployment
is one endpoint whose labels are its template labels. What the engine implements:

* label selectors (matchLabels + matchExpressions In/NotIn/Exists/DoesNotExist; empty = all);
* ``policyTypes`` and its API-server defaulting (Ingress always; Egress when ``egress`` is
  non-empty);
* peers: podSelector (policy namespace), namespaceSelector (namespace labels, including the
  automatic ``kubernetes.io/metadata.name``), both in one peer (AND), ipBlock with except;
* ports: protocol (TCP default, UDP, SCTP), numeric or named (resolved against the
  destination's container ports), endPort ranges; no ``ports`` = every port;
* isolation: a pod is isolated for a direction once a policy selecting it has that type;
  allowed traffic is the union of the rules of those policies; pod-to-pod traffic needs the
  source's egress and the destination's ingress.

ipBlock peers are matched against addresses only, never against pods: pod IPs are not in a
manifest, and whether a CNI applies ipBlock to in-cluster pod IPs is implementation-defined
(a verdict then carries a note).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubeharden.inventory import Inventory, PodSpecView, as_list, service_account_name
from kubeharden.loader import paused_gc
from kubeharden.model import Path, Resource

INGRESS = "Ingress"
EGRESS = "Egress"
DIRECTIONS = (INGRESS, EGRESS)
PROTOCOLS = ("TCP", "UDP", "SCTP")
MIN_PORT, MAX_PORT = 1, 65535
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DEFAULT_NAMESPACE = "default"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

if TYPE_CHECKING:
    from kubeharden.netpol_ext import ExtPeer, ExtPolicy, ExtRule


class PolicyError(ValueError):
    """A NetworkPolicy the API server would reject (the engine then ignores it)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# ---------------------------------------------------------------------------------------------
# Label selectors


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and str(labels[self.key]) in self.values
        if self.operator == "NotIn":
            return not present or str(labels[self.key]) not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist

    def describe(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={values}"
        return f"{self.key} {'in' if self.operator == 'In' else 'notin'} ({values})"


@dataclass(frozen=True, slots=True)
class Selector:
    """A compiled metav1.LabelSelector; no requirements selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, Any]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def selects_everything(self) -> bool:
        return not self.requirements

    def describe(self) -> str:
        return ",".join(r.describe() for r in self.requirements) or "<all>"


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def parse_selector(raw: Any, path: Path) -> Selector:
    """Compile a LabelSelector; ``None`` or ``{}`` selects everything."""
    if raw is None:
        return Selector()
    if not isinstance(raw, dict):
        raise PolicyError(path, "label selector is not a mapping")
    reqs: list[Requirement] = []
    match_labels = raw.get("matchLabels")
    if match_labels is not None:
        if not isinstance(match_labels, dict):
            raise PolicyError((*path, "matchLabels"), "matchLabels is not a mapping")
        for key, value in match_labels.items():
            reqs.append(Requirement(str(key), "In", frozenset({"" if value is None else str(value)})))
    expressions = raw.get("matchExpressions")
    if expressions is not None and not isinstance(expressions, list):
        raise PolicyError((*path, "matchExpressions"), "matchExpressions is not a list")
    for i, expr in enumerate(expressions or []):
        where = (*path, "matchExpressions", i)
        if not isinstance(expr, dict) or not expr.get("key"):
            raise PolicyError(where, "match expression without a key")
        op = expr.get("operator")
        values = expr.get("values")
        if op not in _OPERATORS:
            raise PolicyError((*where, "operator"), f"unknown operator {op!r} ({', '.join(_OPERATORS)})")
        if values is not None and not isinstance(values, list):
            raise PolicyError((*where, "values"), "values is not a list")
        if op in ("In", "NotIn") and not values:
            raise PolicyError((*where, "values"), f"operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise PolicyError((*where, "values"), f"operator {op} takes no values")
        reqs.append(Requirement(str(expr["key"]), str(op), frozenset(str(v) for v in values or ())))
    return Selector(tuple(reqs))


# ---------------------------------------------------------------------------------------------
# Port sets: per protocol, sorted disjoint inclusive ranges


@dataclass(frozen=True, slots=True)
class PortSet:
    ranges: tuple[tuple[str, int, int], ...] = ()

    @staticmethod
    def of(items: Iterable[tuple[str, int, int]]) -> PortSet:
        by_proto: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for proto, lo, hi in items:
            if lo <= hi:
                by_proto[proto].append((lo, hi))
        out: list[tuple[str, int, int]] = []
        for proto in sorted(by_proto, key=_proto_order):
            merged: list[list[int]] = []
            for lo, hi in sorted(by_proto[proto]):
                if merged and lo <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], hi)
                else:
                    merged.append([lo, hi])
            out.extend((proto, lo, hi) for lo, hi in merged)
        return PortSet(tuple(out))

    def union(self, other: PortSet) -> PortSet:
        return PortSet.of((*self.ranges, *other.ranges))

    def intersect(self, other: PortSet) -> PortSet:
        if self == ALL_PORTS or other.empty:
            return other  # the common case of an unisolated side: no merging needed
        if other == ALL_PORTS or self.empty:
            return self
        out = []
        for p1, lo1, hi1 in self.ranges:
            for p2, lo2, hi2 in other.ranges:
                if p1 == p2 and max(lo1, lo2) <= min(hi1, hi2):
                    out.append((p1, max(lo1, lo2), min(hi1, hi2)))
        return PortSet.of(out)

    def minus(self, other: PortSet) -> PortSet:
        if other.empty or self.empty:
            return self
        out: list[tuple[str, int, int]] = []
        for proto, lo, hi in self.ranges:
            pieces = [(lo, hi)]
            for p2, lo2, hi2 in other.ranges:
                if p2 != proto:
                    continue
                kept = []
                for a, b in pieces:
                    if hi2 < a or lo2 > b:
                        kept.append((a, b))
                        continue
                    if a < lo2:
                        kept.append((a, lo2 - 1))
                    if hi2 < b:
                        kept.append((hi2 + 1, b))
                pieces = kept
            out.extend((proto, a, b) for a, b in pieces)
        return PortSet.of(out)

    def contains(self, protocol: str, port: int) -> bool:
        return any(p == protocol and lo <= port <= hi for p, lo, hi in self.ranges)

    @property
    def empty(self) -> bool:
        return not self.ranges

    @property
    def everything(self) -> bool:
        return self == ALL_PORTS

    def describe(self) -> str:
        if self.empty:
            return "none"
        if self.everything:
            return "all"
        parts = []
        for proto, lo, hi in self.ranges:
            if lo == MIN_PORT and hi == MAX_PORT:
                parts.append(f"{proto}/*")
            else:
                parts.append(f"{proto}/{lo}" if lo == hi else f"{proto}/{lo}-{hi}")
        return ", ".join(parts)

    def to_json(self) -> list[dict[str, Any]]:
        return [{"protocol": p, "from": lo, "to": hi} for p, lo, hi in self.ranges]


def _proto_order(proto: str) -> int:
    return PROTOCOLS.index(proto) if proto in PROTOCOLS else len(PROTOCOLS)


ALL_PORTS = PortSet(tuple((p, MIN_PORT, MAX_PORT) for p in PROTOCOLS))
NO_PORTS = PortSet()


@dataclass(frozen=True, slots=True)
class PortRule:
    """One entry of a rule's ``ports``."""

    protocol: str
    port: int | str | None  # None: every port of the protocol
    end_port: int | None = None

    def resolve(self, named_ports: Mapping[tuple[str, str], frozenset[int]]) -> PortSet:
        """The ports this entry opens on a destination with these named container ports."""
        if self.port is None:
            return PortSet(((self.protocol, MIN_PORT, MAX_PORT),))
        if isinstance(self.port, str):
            numbers = named_ports.get((self.port, self.protocol), frozenset())
            return PortSet.of((self.protocol, n, n) for n in numbers)
        return PortSet(((self.protocol, self.port, self.end_port or self.port),))

    def describe(self) -> str:
        if self.port is None:
            return f"{self.protocol}/*"
        if self.end_port:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


_PORT_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _valid_port_name(name: str) -> bool:
    """IANA_SVC_NAME as the API server checks it (k8s.io/apimachinery IsValidPortName)."""
    return len(name) <= 15 and _PORT_NAME.fullmatch(name) is not None and any(c.isalpha() for c in name)


def _parse_port(raw: Any, path: Path) -> PortRule:
    if not isinstance(raw, dict):
        raise PolicyError(path, "port entry is not a mapping")
    protocol = raw.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise PolicyError((*path, "protocol"), f"unsupported protocol {protocol!r} (TCP, UDP, SCTP)")
    port = raw.get("port")
    end_port = raw.get("endPort")
    if isinstance(port, bool) or (port is not None and not isinstance(port, int | str)):
        raise PolicyError((*path, "port"), f"port {port!r} is neither a number nor a name")
    if isinstance(port, str) and not _valid_port_name(port):
        # a quoted number too: IntOrString keeps it a string, and the API server validates it as a name
        raise PolicyError((*path, "port"), f"port {port!r} is not a valid port name (1-15 characters a-z, 0-9, "
                                           "'-' with at least one letter)")
    if isinstance(port, int) and not MIN_PORT <= port <= MAX_PORT:
        raise PolicyError((*path, "port"), f"port {port} is outside 1-65535")
    if end_port is not None:
        if not isinstance(port, int):
            raise PolicyError((*path, "endPort"), "endPort needs a numeric port")
        if isinstance(end_port, bool) or not isinstance(end_port, int) or not port <= end_port <= MAX_PORT:
            raise PolicyError((*path, "endPort"), f"endPort {end_port!r} must be a number from port to 65535")
    return PortRule(str(protocol), port, end_port)


# ---------------------------------------------------------------------------------------------
# Policies


@dataclass(frozen=True, slots=True)
class IpBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def covers(self, net: IPNetwork) -> bool:
        """Every address of ``net`` is inside the block and outside its excepts."""
        if net.version != self.cidr.version or not net.subnet_of(self.cidr):  # type: ignore[arg-type]
            return False
        return not any(net.overlaps(e) for e in self.excepts)

    def touches(self, net: IPNetwork) -> bool:
        """Some address of ``net`` is allowed by the block."""
        if net.version != self.cidr.version or not net.overlaps(self.cidr):
            return False
        return not any(net.subnet_of(e) for e in self.excepts)  # type: ignore[arg-type]

    @property
    def whole_internet(self) -> bool:
        return self.cidr.prefixlen == 0 and not self.excepts

    def describe(self) -> str:
        text = str(self.cidr)
        if self.excepts:
            text += " except " + ", ".join(str(e) for e in self.excepts)
        return text


def _parse_network(raw: Any, path: Path) -> IPNetwork:
    network = _network(str(raw))
    if network is None:
        raise PolicyError(path, f"invalid CIDR {raw!r}")
    return network


@functools.lru_cache(maxsize=4096)
def _network(text: str) -> IPNetwork | None:
    # the same few CIDRs recur in thousands of policies; ipaddress parsing is slow
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Peer:
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IpBlock | None = None

    def describe(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block.describe()}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces [{self.namespace_selector.describe()}]")
        if self.pod_selector is not None:
            parts.append(f"pods [{self.pod_selector.describe()}]")
        return " and ".join(parts)


def _parse_peer(raw: Any, path: Path) -> Peer:
    if not isinstance(raw, dict):
        raise PolicyError(path, "peer is not a mapping")
    has_pod = raw.get("podSelector") is not None
    has_ns = raw.get("namespaceSelector") is not None
    block = raw.get("ipBlock")
    if block is not None:
        if has_pod or has_ns:
            raise PolicyError(path, "ipBlock cannot be combined with podSelector or namespaceSelector")
        if not isinstance(block, dict) or not block.get("cidr"):
            raise PolicyError((*path, "ipBlock"), "ipBlock needs a cidr")
        cidr = _parse_network(block["cidr"], (*path, "ipBlock", "cidr"))
        excepts = []
        for i, raw_except in enumerate(as_list(block.get("except"))):
            net = _parse_network(raw_except, (*path, "ipBlock", "except", i))
            if not _inside(net, cidr) or net.prefixlen <= cidr.prefixlen:
                raise PolicyError((*path, "ipBlock", "except", i), f"except {net} is not a strict subset of {cidr}")
            excepts.append(net)
        return Peer(ip_block=IpBlock(cidr, tuple(excepts)))
    if not has_pod and not has_ns:
        raise PolicyError(path, "peer sets none of podSelector, namespaceSelector, ipBlock")
    return Peer(
        parse_selector(raw["podSelector"], (*path, "podSelector")) if has_pod else None,
        parse_selector(raw["namespaceSelector"], (*path, "namespaceSelector")) if has_ns else None,
    )


@dataclass(frozen=True, slots=True)
class Rule:
    direction: str
    index: int
    peers: tuple[Peer, ...]  # empty: every source (ingress) / destination (egress)
    ports: tuple[PortRule, ...]  # empty: every port

    @property
    def path(self) -> Path:
        return ("spec", "ingress" if self.direction == INGRESS else "egress", self.index)

    @property
    def field_name(self) -> str:
        return f"spec.{'ingress' if self.direction == INGRESS else 'egress'}[{self.index}]"

    def port_set(self, named_ports: Mapping[tuple[str, str], frozenset[int]]) -> PortSet:
        if not self.ports:
            return ALL_PORTS
        out = NO_PORTS
        for port in self.ports:
            out = out.union(port.resolve(named_ports))
        return out

    def describe(self) -> str:
        peers = "; ".join(p.describe() for p in self.peers) if self.peers else "any peer"
        ports = ", ".join(p.describe() for p in self.ports) if self.ports else "any port"
        word = "from" if self.direction == INGRESS else "to"
        return f"{word} {peers} on {ports}"


def _parse_rule(raw: Any, direction: str, index: int) -> Rule:
    peer_field = "from" if direction == INGRESS else "to"
    path: Path = ("spec", "ingress" if direction == INGRESS else "egress", index)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(path, "rule is not a mapping")
    raw_peers = raw.get(peer_field)
    raw_ports = raw.get("ports")
    if raw_peers is not None and not isinstance(raw_peers, list):
        raise PolicyError((*path, peer_field), f"{peer_field} is not a list")
    if raw_ports is not None and not isinstance(raw_ports, list):
        raise PolicyError((*path, "ports"), "ports is not a list")
    peers = tuple(_parse_peer(p, (*path, peer_field, i)) for i, p in enumerate(raw_peers or []))
    ports = tuple(_parse_port(p, (*path, "ports", i)) for i, p in enumerate(raw_ports or []))
    return Rule(direction, index, peers, ports)


@dataclass(frozen=True, slots=True)
class Policy:
    resource: Resource
    namespace: str
    pod_selector: Selector
    types: frozenset[str]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    types_defaulted: bool  # policyTypes was absent and got the API-server default

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...]:
        """The rules that count: none for a direction the policy does not have."""
        if direction not in self.types:
            return ()
        return self.ingress if direction == INGRESS else self.egress


def resource_namespace(resource: Resource) -> str:
    """The namespace an object lands in (kubectl's default when the manifest names none)."""
    return resource.namespace or DEFAULT_NAMESPACE


def parse_policy(resource: Resource) -> Policy:
    """Compile a NetworkPolicy; raises PolicyError for one the API server would reject."""
    spec = resource.obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise PolicyError(("spec",), "spec is not a mapping")
    selector = parse_selector(spec.get("podSelector"), ("spec", "podSelector"))
    raw_ingress, raw_egress = spec.get("ingress"), spec.get("egress")
    for name, value in (("ingress", raw_ingress), ("egress", raw_egress)):
        if value is not None and not isinstance(value, list):
            raise PolicyError(("spec", name), f"{name} is not a list")
    ingress = tuple(_parse_rule(r, INGRESS, i) for i, r in enumerate(raw_ingress or []))
    egress = tuple(_parse_rule(r, EGRESS, i) for i, r in enumerate(raw_egress or []))
    raw_types = spec.get("policyTypes")
    if raw_types is not None and not isinstance(raw_types, list):
        raise PolicyError(("spec", "policyTypes"), "policyTypes is not a list")
    if raw_types:
        for i, t in enumerate(raw_types):
            if t not in DIRECTIONS:
                raise PolicyError(("spec", "policyTypes", i), f"unknown policy type {t!r} (Ingress, Egress)")
        types = frozenset(str(t) for t in raw_types)
        defaulted = False
    else:
        # API-server defaulting: Ingress always, Egress only when egress rules are given.
        types = frozenset({INGRESS, EGRESS}) if egress else frozenset({INGRESS})
        defaulted = True
    return Policy(resource, resource_namespace(resource), selector, types, ingress, egress, defaulted)


# ---------------------------------------------------------------------------------------------
# Endpoints (pods, stood for by their templates)


@dataclass(frozen=True, slots=True)
class ContainerPort:
    port: int
    protocol: str
    name: str | None
    container: str


@dataclass(eq=False, slots=True)
class Endpoint:
    """The pods of one Pod or workload template."""

    pod: PodSpecView
    namespace: str
    labels: dict[str, str]
    ports: tuple[ContainerPort, ...]

    @property
    def resource(self) -> Resource:
        return self.pod.resource

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def qualified(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def host_network(self) -> bool:
        return self.pod.spec.get("hostNetwork") is True

    @property
    def named_ports(self) -> dict[tuple[str, str], frozenset[int]]:
        out: dict[tuple[str, str], set[int]] = defaultdict(set)
        for p in self.ports:
            if p.name:
                out[(p.name, p.protocol)].add(p.port)
        return {k: frozenset(v) for k, v in out.items()}


def _endpoint(pod: PodSpecView) -> Endpoint:
    ports = []
    for c in pod.containers(("initContainers", "containers")):
        for raw in as_list(c.obj.get("ports")):
            if not isinstance(raw, dict):
                continue
            number = raw.get("containerPort")
            if isinstance(number, str) and number.isdigit():
                number = int(number)
            if not isinstance(number, int) or isinstance(number, bool):
                continue
            name = raw.get("name")
            ports.append(ContainerPort(number, str(raw.get("protocol") or "TCP"), str(name) if name else None,
                                       c.name))
    labels = {str(k): "" if v is None else str(v) for k, v in pod.labels.items()}
    return Endpoint(pod, pod.namespace or DEFAULT_NAMESPACE, labels, tuple(ports))


# ---------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True, slots=True)
class RuleMatch:
    policy: Policy | ExtPolicy
    rule: Rule | ExtRule
    ports: PortSet  # what this rule opens for the pair (denies, for a deny rule)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.key,
            "rule": self.rule.field_name,
            "description": self.rule.describe(),
            "ports": self.ports.describe(),
        }


@dataclass(slots=True)
class SideVerdict:
    """What one side (the source's egress or the destination's ingress) allows."""

    direction: str
    endpoint: Endpoint
    isolated: bool
    policies: list[Policy | ExtPolicy]  # policies of this type selecting the endpoint
    matches: list[RuleMatch]  # rules that admit the peer (any port)
    ports: PortSet  # allowed ports (ALL when not isolated)
    denials: list[RuleMatch] = field(default_factory=list)  # deny rules that took ports away
    notes: list[str] = field(default_factory=list)  # constructs beyond L4 among the deciding policies

    def deciding(self, protocol: str | None, ports: Iterable[int]) -> list[RuleMatch]:
        """The rules that admit the queried port (all matching rules when no port is given)."""
        if protocol is None:
            return [m for m in self.matches if not m.ports.empty]
        wanted = list(ports)
        return [m for m in self.matches if any(m.ports.contains(protocol, p) for p in wanted)]

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "endpoint": self.endpoint.key,
            "isolated": self.isolated,
            "policies": [p.key for p in self.policies],
            "allowed_ports": self.ports.describe(),
            "rules": [m.to_json() for m in self.matches],
            **({"denied_by": [m.to_json() for m in self.denials]} if self.denials else {}),
        }


@dataclass(frozen=True, slots=True)
class PortQuery:
    port: int | str
    protocol: str = "TCP"

    def describe(self) -> str:
        return f"{self.port}/{self.protocol}"


def parse_port_query(text: str) -> PortQuery:
    """``443``, ``443/TCP``, ``53/udp``, ``http`` or ``http/TCP``."""
    port_text, _, proto = text.strip().partition("/")
    protocol = (proto or "TCP").upper()
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {proto!r} (TCP, UDP, SCTP)")
    if not port_text:
        raise ValueError("empty port")
    if port_text.isdigit():
        number = int(port_text)
        if not MIN_PORT <= number <= MAX_PORT:
            raise ValueError(f"port {number} is outside 1-65535")
        return PortQuery(number, protocol)
    return PortQuery(port_text, protocol)


@dataclass(slots=True)
class Verdict:
    source: str
    destination: str
    port: PortQuery | None
    allowed: bool
    ports: PortSet  # every port the pair may use
    egress: SideVerdict | None
    ingress: SideVerdict | None
    reasons: list[str] = field(default_factory=list)
    deciding: list[RuleMatch] = field(default_factory=list)  # rules that allow it (when allowed)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "port": self.port.describe() if self.port else None,
            "allowed": self.allowed,
            "allowed_ports": self.ports.describe(),
            "reasons": self.reasons,
            "allowed_by": [m.to_json() for m in self.deciding],
            "egress": self.egress.to_json() if self.egress else None,
            "ingress": self.ingress.to_json() if self.ingress else None,
            "notes": self.notes,
        }


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    resource: Resource
    path: Path
    message: str

    @property
    def policy_key(self) -> str:
        if self.resource.kind in ("CiliumClusterwideNetworkPolicy", "AdminNetworkPolicy",
                                  "BaselineAdminNetworkPolicy"):
            return f"{self.resource.kind}/{self.resource.name}"
        if self.resource.kind == "CiliumNetworkPolicy":
            return f"{resource_namespace(self.resource)}/{self.resource.kind}/{self.resource.name}"
        return f"{resource_namespace(self.resource)}/{self.resource.name}"

    @property
    def label(self) -> str:
        """`NetworkPolicy shop/web`, `CiliumNetworkPolicy shop/web`, `AdminNetworkPolicy tenants`."""
        if self.resource.kind == "NetworkPolicy":
            return f"NetworkPolicy {self.policy_key}"
        return f"{self.resource.kind} {self.policy_key.replace(self.resource.kind + '/', '')}"


# ---------------------------------------------------------------------------------------------
# The model


class NetworkModel:
    """Endpoints, namespaces and compiled policies of one inventory, with the queries."""

    def __init__(self, inventory: Inventory) -> None:
        self.namespace_objects: dict[str, Resource] = {r.name: r for r in inventory.of_kind("Namespace")}
        self.problems: list[PolicyProblem] = []
        self.policies: list[Policy] = []
        self.policies_by_namespace: dict[str, list[Policy]] = defaultdict(list)
        for res in inventory.of_kind("NetworkPolicy"):
            if res.group != "networking.k8s.io":
                continue  # Calico / Cilium CRDs share the kind name but not the semantics
            try:
                policy = parse_policy(res)
            except PolicyError as exc:
                self.problems.append(PolicyProblem(res, exc.path, exc.message))
                continue
            self.policies.append(policy)
            self.policies_by_namespace[policy.namespace].append(policy)
        from kubeharden.netpol_ext import EXTENDED_KINDS, parse_extended

        # Cilium and admin policies (netpol_ext): evaluated in side() around the NetworkPolicies.
        self.extended: list[ExtPolicy] = []
        for res in inventory.of_kind(*EXTENDED_KINDS):
            try:
                self.extended.extend(parse_extended(res))
            except PolicyError as exc:
                self.problems.append(PolicyProblem(res, exc.path, exc.message))
        self._ext_position = {id(p): i for i, p in enumerate(self.extended)}
        self._ext_selecting: dict[int, list[ExtPolicy]] = {}
        self.endpoints: list[Endpoint] = [_endpoint(pod) for pod in inventory.pod_specs()]
        self.endpoints_by_namespace: dict[str, list[Endpoint]] = defaultdict(list)
        for ep in self.endpoints:
            self.endpoints_by_namespace[ep.namespace].append(ep)
        # Policies indexed by one label pair their podSelector requires, so finding the policies
        # of a pod does not test every policy of a big namespace.
        self._position = {id(p): i for i, p in enumerate(self.policies)}  # keeps input order
        self._by_label: dict[tuple[str, str, str], list[Policy]] = defaultdict(list)
        self._unindexed: dict[str, list[Policy]] = defaultdict(list)
        for policy in self.policies:
            pair = next((r for r in policy.pod_selector.requirements
                         if r.operator == "In" and len(r.values) == 1), None)
            if pair is None:
                self._unindexed[policy.namespace].append(policy)
            else:
                self._by_label[(policy.namespace, pair.key, next(iter(pair.values)))].append(policy)
        self._selecting: dict[int, list[Policy]] = {}
        self._ns_labels: dict[str, dict[str, str]] = {}
        names = Counter((ep.namespace, ep.name) for ep in self.endpoints)
        self._display_names = {id(ep): ep.qualified if names[(ep.namespace, ep.name)] > 1 else ep.key
                        for ep in self.endpoints}

    # -- namespaces and selection -------------------------------------------------------------

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels = self._ns_labels.get(namespace)
        if labels is None:
            obj = self.namespace_objects.get(namespace)
            labels = {str(k): "" if v is None else str(v) for k, v in (obj.labels if obj else {}).items()}
            labels[NAMESPACE_NAME_LABEL] = namespace  # set by the API server on every namespace
            self._ns_labels[namespace] = labels
        return labels

    def namespaces(self) -> list[str]:
        names = set(self.namespace_objects) | set(self.endpoints_by_namespace)
        names |= {p.subject.namespace for p in self.extended if p.subject.namespace is not None}
        return sorted(names | set(self.policies_by_namespace))

    # -- Cilium and admin policies -------------------------------------------------------------

    def cilium_labels(self, endpoint: Endpoint) -> dict[str, str]:
        """The identity labels Cilium gives the pods: their own, namespace, namespace labels, account."""
        labels = dict(endpoint.labels)
        labels["io.kubernetes.pod.namespace"] = endpoint.namespace
        labels["io.cilium.k8s.policy.serviceaccount"] = service_account_name(endpoint.pod)
        for key, value in self.namespace_labels(endpoint.namespace).items():
            labels["io.cilium.k8s.namespace.labels." + key] = value
        return labels

    def ext_peer_selects(self, peer: ExtPeer, other: Endpoint) -> bool:
        """Whether a pods peer (or subject) of a Cilium or admin policy selects ``other``."""
        if peer.kind == "entity":
            return peer.entity in ("cluster", "all")
        if peer.kind != "pods" or other.host_network:
            return False  # host-network pods are the host to Cilium and outside admin policies
        if peer.namespace is not None and other.namespace != peer.namespace:
            return False
        if peer.namespace_selector is not None and \
                not peer.namespace_selector.matches(self.namespace_labels(other.namespace)):
            return False
        labels = self.cilium_labels(other) if peer.cilium_labels else other.labels
        return peer.pod_selector.matches(labels)

    def ext_selecting(self, endpoint: Endpoint, direction: str | None = None) -> list[ExtPolicy]:
        """Cilium and admin policies whose subject selects the endpoint (having that direction)."""
        found = self._ext_selecting.get(id(endpoint))
        if found is None:
            found = [p for p in self.extended if not p.select_nothing and self.ext_peer_selects(p.subject, endpoint)]
            self._ext_selecting[id(endpoint)] = found
        if direction is None:
            return list(found)
        return [p for p in found if direction in p.types]

    def _ext_isolates(self, policy: ExtPolicy, direction: str) -> bool:
        from kubeharden.netpol_ext import NETWORK_POLICY_TIER, admin_denies_everything

        if policy.tier == NETWORK_POLICY_TIER:
            return direction in policy.default_deny
        return any(admin_denies_everything(r) for r in policy.rules(direction))

    def selecting(self, endpoint: Endpoint, direction: str | None = None) -> list[Policy]:
        """Policies whose podSelector selects the endpoint (of one type, when given)."""
        found = self._selecting.get(id(endpoint))
        if found is None:
            ns = endpoint.namespace
            candidates = {id(p): p for p in self._unindexed.get(ns, ())}
            for key, value in endpoint.labels.items():
                for p in self._by_label.get((ns, key, value), ()):
                    candidates[id(p)] = p
            found = [p for p in sorted(candidates.values(), key=lambda p: self._position[id(p)])
                     if p.pod_selector.matches(endpoint.labels)]
            self._selecting[id(endpoint)] = found
        if direction is None:
            return list(found)
        return [p for p in found if direction in p.types]

    def isolated(self, endpoint: Endpoint, direction: str) -> bool:
        """Default deny applies: a NetworkPolicy of that type or a Cilium policy with that section
        selects it, or an admin policy denies every peer."""
        return bool(self.selecting(endpoint, direction)) or any(
            self._ext_isolates(p, direction) for p in self.ext_selecting(endpoint, direction))

    def namespace_isolated_by_default(self, namespace: str, direction: str) -> bool:
        """A policy of that type selects every pod of the namespace, present and future."""
        if any(direction in p.types and p.pod_selector.selects_everything
               for p in self.policies_by_namespace.get(namespace, ())):
            return True
        labels = {"io.kubernetes.pod.namespace": namespace,
                  **{"io.cilium.k8s.namespace.labels." + k: v for k, v in self.namespace_labels(namespace).items()}}
        for policy in self.extended:
            subject = policy.subject
            if policy.select_nothing or not self._ext_isolates(policy, direction):
                continue
            if subject.namespace is not None and subject.namespace != namespace:
                continue
            if subject.namespace_selector is not None and \
                    not subject.namespace_selector.matches(self.namespace_labels(namespace)):
                continue
            # Only requirements on the namespace: every pod of it, present and future.
            requirements = subject.pod_selector.requirements
            if all(r.key in labels or r.key.startswith("io.cilium.k8s.namespace.labels.") for r in requirements) \
                    and subject.pod_selector.matches(labels) if subject.cilium_labels else not requirements:
                return True
        return False

    # -- peers ---------------------------------------------------------------------------------

    def peer_selects(self, peer: Peer, policy: Policy, other: Endpoint) -> bool:
        """Whether a podSelector/namespaceSelector peer of ``policy`` selects ``other``."""
        if peer.ip_block is not None:
            return False  # ipBlock is matched against addresses only (see module docstring)
        if peer.namespace_selector is not None:
            if not peer.namespace_selector.matches(self.namespace_labels(other.namespace)):
                return False
        elif other.namespace != policy.namespace:
            return False  # a podSelector alone means pods of the policy's own namespace
        return peer.pod_selector is None or peer.pod_selector.matches(other.labels)

    # -- one side ------------------------------------------------------------------------------

    def side(self, endpoint: Endpoint, direction: str, peer: Endpoint | IPNetwork,
             port_owner: Endpoint | None) -> SideVerdict:
        """What ``endpoint``'s policies of ``direction`` allow with ``peer``. Named ports resolve
        against ``port_owner`` (the destination pod; None for an address outside the model)."""
        policies = self.selecting(endpoint, direction)
        extended = self.ext_selecting(endpoint, direction)
        if extended:
            return self._layered_side(endpoint, direction, peer, port_owner, policies, extended)
        if not policies:
            return SideVerdict(direction, endpoint, False, [], [], ALL_PORTS)
        named = port_owner.named_ports if port_owner is not None else {}
        selected: list[Policy | ExtPolicy] = list(policies)
        matches: list[RuleMatch] = []
        allowed = NO_PORTS
        for policy in policies:
            for rule in policy.rules(direction):
                if not self._rule_admits(rule, policy, peer):
                    continue
                ports = rule.port_set(named)
                matches.append(RuleMatch(policy, rule, ports))
                allowed = allowed.union(ports)
        return SideVerdict(direction, endpoint, True, selected, matches, allowed)

    def _layered_side(self, endpoint: Endpoint, direction: str, peer: Endpoint | IPNetwork,
                      port_owner: Endpoint | None, policies: list[Policy], extended: list[ExtPolicy]) -> SideVerdict:
        """AdminNetworkPolicy (by priority) -> NetworkPolicy and Cilium policies (deny wins) ->
        BaselineAdminNetworkPolicy -> allowed; each port is decided by the first tier that decides it."""
        from kubeharden.netpol_ext import ADMIN_TIER, ALLOW, BASELINE_TIER, DENY, NETWORK_POLICY_TIER

        named = port_owner.named_ports if port_owner is not None else {}
        side = SideVerdict(direction, endpoint, False, [], [], NO_PORTS)
        admin = sorted((p for p in extended if p.tier == ADMIN_TIER),
                       key=lambda p: (p.priority, self._ext_position[id(p)]))
        cilium = [p for p in extended if p.tier == NETWORK_POLICY_TIER]
        baseline = [p for p in extended if p.tier == BASELINE_TIER]
        allowed, remaining = NO_PORTS, ALL_PORTS  # remaining: ports no tier has decided yet

        def first_match(tier: list[ExtPolicy], pending: PortSet) -> PortSet:
            """Apply the ordered rules of an admin tier to the pending ports; returns what stays pending."""
            nonlocal allowed
            for policy in tier:
                for rule in policy.rules(direction):
                    self._note_beyond_l4(side, policy, rule)
                    if not self._ext_rule_admits(rule, peer):
                        continue
                    ports = rule.port_set(named).intersect(pending)
                    if ports.empty:
                        continue
                    pending = pending.minus(ports)
                    if rule.action == ALLOW:
                        allowed = allowed.union(ports)
                        side.matches.append(RuleMatch(policy, rule, ports))
                    elif rule.action == DENY:
                        side.denials.append(RuleMatch(policy, rule, ports))
                    else:  # Pass: the NetworkPolicy tier decides these ports
                        passed.append(ports)
            return pending

        passed: list[PortSet] = []
        remaining = first_match(admin, remaining)
        for ports in passed:
            remaining = remaining.union(ports)
        side.policies.extend(p for p in admin if p.rules(direction))

        # NetworkPolicy tier: NetworkPolicies and Cilium policies together; a Cilium deny beats every allow.
        denied = NO_PORTS
        for policy in cilium:
            for rule in policy.rules(direction):
                self._note_beyond_l4(side, policy, rule)
                if rule.action == DENY and self._ext_rule_admits(rule, peer):
                    ports = rule.port_set(named).intersect(remaining)
                    if not ports.empty:
                        denied = denied.union(ports)
                        side.denials.append(RuleMatch(policy, rule, ports))
        isolating: list[Policy | ExtPolicy] = [*policies, *(p for p in cilium if direction in p.default_deny)]
        if isolating:
            side.isolated = True
            side.policies.extend(isolating)
            opened = NO_PORTS
            for np in policies:
                for np_rule in np.rules(direction):
                    if self._rule_admits(np_rule, np, peer):
                        ports = np_rule.port_set(named)
                        side.matches.append(RuleMatch(np, np_rule, ports.intersect(remaining).minus(denied)))
                        opened = opened.union(ports)
            for policy in cilium:
                for rule in policy.rules(direction):
                    if rule.action == ALLOW and self._ext_rule_admits(rule, peer):
                        ports = rule.port_set(named)
                        side.matches.append(RuleMatch(policy, rule, ports.intersect(remaining).minus(denied)))
                        opened = opened.union(ports)
            allowed = allowed.union(opened.intersect(remaining).minus(denied))
        else:
            remaining = remaining.minus(denied)
            passed = []
            remaining = first_match(baseline, remaining)
            side.policies.extend(p for p in baseline if p.rules(direction))
            allowed = allowed.union(remaining)  # nothing decided them: allowed
        side.isolated = side.isolated or bool(side.policies) or bool(side.denials)
        side.ports = allowed
        return side

    def _ext_rule_admits(self, rule: ExtRule, peer: Endpoint | IPNetwork) -> bool:
        if rule.every_peer:
            return True
        for candidate in rule.peers:
            if isinstance(peer, Endpoint):
                if self.ext_peer_selects(candidate, peer):
                    return True
            elif candidate.kind == "entity":
                if candidate.entity in ("world", "all") or candidate.entity == f"world-ipv{peer.version}":
                    return True
            elif candidate.block is not None and candidate.block.covers(peer):
                return True
        return False

    @staticmethod
    def _note_beyond_l4(side: SideVerdict, policy: ExtPolicy, rule: ExtRule) -> None:
        if rule.beyond_l4:
            note = (f"{policy.key} {rule.field_name} uses {', '.join(rule.beyond_l4)}: beyond L4, not evaluated "
                    "(the answer stands on its L3/L4 part)")
            if note not in side.notes:
                side.notes.append(note)

    def _rule_admits(self, rule: Rule, policy: Policy, peer: Endpoint | IPNetwork) -> bool:
        if not rule.peers:
            return True
        for candidate in rule.peers:
            if isinstance(peer, Endpoint):
                if self.peer_selects(candidate, policy, peer):
                    return True
            elif candidate.ip_block is not None and candidate.ip_block.covers(peer):
                return True
        return False

    # -- questions -----------------------------------------------------------------------------

    def can(self, source: Endpoint, destination: Endpoint, port: PortQuery | None = None) -> Verdict:
        """Can the pods of ``source`` open connections to the pods of ``destination``?"""
        egress = self.side(source, EGRESS, destination, destination)
        ingress = self.side(destination, INGRESS, source, destination)
        ports = egress.ports.intersect(ingress.ports)
        verdict = Verdict(source.key, destination.key, port, False, ports, egress, ingress)
        protocol, numbers = self._query_ports(port, destination, verdict)
        for side in (egress, ingress):
            self._explain_side(verdict, side, protocol, numbers, destination.key if side is egress else source.key)
        if protocol is None and ports.empty and not egress.ports.empty and not ingress.ports.empty:
            verdict.reasons.append(f"the ports egress allows ({egress.ports.describe()}) and the ports "
                                   f"ingress allows ({ingress.ports.describe()}) do not overlap")
        _decide(verdict, (egress, ingress), protocol, numbers)
        self._pod_notes(verdict, source, destination)
        _side_notes(verdict, (egress, ingress))
        return verdict

    def can_reach_address(self, source: Endpoint, address: IPNetwork,
                          port: PortQuery | None = None) -> Verdict:
        """Can the pods of ``source`` reach an address outside the model (egress only)?"""
        egress = self.side(source, EGRESS, address, None)
        verdict = Verdict(source.key, str(address), port, False, egress.ports, egress, None)
        protocol, numbers = self._query_ports(port, None, verdict)
        self._explain_side(verdict, egress, protocol, numbers, str(address))
        _decide(verdict, (egress,), protocol, numbers)
        if not verdict.allowed and egress.isolated and self._partially_allowed(egress, address):
            verdict.notes.append(f"part of {address} is allowed by an ipBlock; ask for a single address")
        if source.host_network:
            verdict.notes.append(_host_network_note(source))
        _side_notes(verdict, (egress,))
        return verdict

    def can_be_reached_from_address(self, address: IPNetwork, destination: Endpoint,
                                    port: PortQuery | None = None) -> Verdict:
        """Can an address outside the model open connections to ``destination`` (ingress only)?"""
        ingress = self.side(destination, INGRESS, address, destination)
        verdict = Verdict(str(address), destination.key, port, False, ingress.ports, None, ingress)
        protocol, numbers = self._query_ports(port, destination, verdict)
        self._explain_side(verdict, ingress, protocol, numbers, str(address))
        _decide(verdict, (ingress,), protocol, numbers)
        if destination.host_network:
            verdict.notes.append(_host_network_note(destination))
        _side_notes(verdict, (ingress,))
        return verdict

    def _partially_allowed(self, side: SideVerdict, address: IPNetwork) -> bool:
        for policy in side.policies:
            if not isinstance(policy, Policy):
                if any(p.block is not None and p.block.touches(address) for r in policy.rules(EGRESS)
                       if r.action == "Allow" for p in r.peers):
                    return True
                continue
            for rule in policy.rules(EGRESS):
                if any(p.ip_block is not None and p.ip_block.touches(address) for p in rule.peers):
                    return True
        return False

    def _query_ports(self, port: PortQuery | None, destination: Endpoint | None,
                     verdict: Verdict) -> tuple[str | None, list[int]]:
        if port is None:
            return None, []
        if isinstance(port.port, int):
            return port.protocol, [port.port]
        if destination is None:
            verdict.notes.append(f"named port {port.port!r} cannot be resolved for an address")
            return port.protocol, []
        numbers = sorted(destination.named_ports.get((port.port, port.protocol), ()))
        if not numbers:
            verdict.notes.append(
                f"{destination.key} has no container port named {port.port!r} ({port.protocol})")
        return port.protocol, numbers

    def _explain_side(self, verdict: Verdict, side: SideVerdict, protocol: str | None, numbers: list[int],
                      peer: str) -> None:
        word = "egress" if side.direction == EGRESS else "ingress"
        who = side.endpoint.key
        if not side.isolated:
            verdict.reasons.append(f"{word}: {who} is not isolated for {word} (no NetworkPolicy with "
                                   f"policyTypes {side.direction} selects it): everything is allowed")
            return
        names = ", ".join(p.key for p in side.policies)
        denied = [m for m in side.denials if (protocol is None and not m.ports.empty)
                  or (protocol is not None and any(m.ports.contains(protocol, n) for n in numbers))]
        if denied and (protocol is not None or side.ports.empty):
            rules = "; ".join(f"{m.policy.key} {m.rule.field_name} ({m.rule.describe()})" for m in denied)
            verdict.reasons.append(f"{word}: denied by {rules}")
            return
        deciding = side.deciding(protocol, numbers)
        if not deciding and not side.matches and side.ports.everything:
            verdict.reasons.append(f"{word}: no rule of {names} decides it: allowed")
            return
        if deciding:
            rules = "; ".join(f"{m.policy.key} {m.rule.field_name} ({m.rule.describe()})" for m in deciding)
            verdict.reasons.append(f"{word}: allowed by {rules}")
        elif side.matches:
            opened = side.ports.describe()
            asked = f" on {verdict.port.describe()}" if verdict.port is not None else ""
            verdict.reasons.append(f"{word}: {who} is isolated by {names}; rules admit {peer} only on "
                                   f"{opened}, not{asked or ' on any port'}")
        else:
            verdict.reasons.append(f"{word}: {who} is isolated by {names} and no {word} rule admits {peer}")

    def _pod_notes(self, verdict: Verdict, source: Endpoint, destination: Endpoint) -> None:
        for ep in (source, destination):
            if ep.host_network:
                verdict.notes.append(_host_network_note(ep))
        if verdict.allowed:
            return
        unlabelled: set[str] = set()
        for side, peer_endpoint in ((verdict.egress, destination), (verdict.ingress, source)):
            if side is None or not side.isolated:
                continue
            for policy in side.policies:
                if not isinstance(policy, Policy):
                    continue
                for rule in policy.rules(side.direction):
                    for peer in rule.peers:
                        if peer.ip_block is not None and peer.ip_block.cidr.prefixlen == 0:
                            verdict.notes.append(
                                f"{policy.key} {rule.field_name} allows ipBlock {peer.ip_block.describe()}; "
                                "whether a CNI applies ipBlock to pod IPs is implementation-defined "
                                "(kubeharden does not)")
                        if self._labels_unknown(peer, peer_endpoint.namespace):
                            unlabelled.add(peer_endpoint.namespace)
        for namespace in sorted(unlabelled):
            # absence of evidence: the real namespace may carry the labels a namespaceSelector asks for
            verdict.notes.append(
                f"the Namespace object of {namespace!r} is not in the input, so only its "
                f"{NAMESPACE_NAME_LABEL} label is known; a namespaceSelector on other labels may admit it")

    def _labels_unknown(self, peer: Peer, namespace: str) -> bool:
        """The peer's namespaceSelector asks for labels a namespace without an object may carry."""
        if peer.namespace_selector is None or namespace in self.namespace_objects:
            return False
        return any(r.key != NAMESPACE_NAME_LABEL for r in peer.namespace_selector.requirements)

    # -- lookups -------------------------------------------------------------------------------

    def find(self, ref: str) -> Endpoint:
        """Resolve ``ns/name``, ``ns/Kind/name`` or ``name`` (namespace default)."""
        parts = ref.strip().split("/")
        if len(parts) == 1:
            namespace, kind, name = DEFAULT_NAMESPACE, None, parts[0]
        elif len(parts) == 2:
            namespace, kind, name = parts[0], None, parts[1]
        elif len(parts) == 3:
            namespace, kind, name = parts
        else:
            raise LookupError(f"{ref!r}: expected NAMESPACE/NAME or NAMESPACE/KIND/NAME")
        found = [
            ep for ep in self.endpoints_by_namespace.get(namespace, ())
            if ep.name == name and (kind is None or ep.kind.lower() == kind.lower())
        ]
        if not found:
            known = ", ".join(sorted(ep.name for ep in self.endpoints_by_namespace.get(namespace, ()))[:10])
            hint = f" (pods and workloads there: {known})" if known else " (no pods or workloads there)"
            raise LookupError(f"no pod or workload {name!r} in namespace {namespace!r}{hint}")
        if len(found) > 1:
            kinds = ", ".join(sorted(f"{namespace}/{ep.kind}/{name}" for ep in found))
            raise LookupError(f"{ref!r} is ambiguous: {kinds}")
        return found[0]

    def display_name(self, endpoint: Endpoint) -> str:
        """The shortest unambiguous name of an endpoint."""
        return self._display_names[id(endpoint)]

    # -- summaries -----------------------------------------------------------------------------

    def status(self, endpoint: Endpoint) -> dict[str, Any]:
        selecting = self.selecting(endpoint)
        return {
            "endpoint": self.display_name(endpoint),
            "kind": endpoint.kind,
            "namespace": endpoint.namespace,
            "name": endpoint.name,
            "ingress_isolated": self.isolated(endpoint, INGRESS),
            "egress_isolated": self.isolated(endpoint, EGRESS),
            "policies": [{"name": p.key, "types": sorted(p.types)} for p in selecting]
            + self._ext_status(endpoint),
            "host_network": endpoint.host_network,
        }

    def _ext_status(self, endpoint: Endpoint) -> list[dict[str, Any]]:
        """The Cilium and admin policies selecting the endpoint (one entry per object)."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.ext_selecting(endpoint):
            entry = out.setdefault(p.key, {"name": p.key, "kind": p.resource.kind, "types": []})
            entry["types"] = sorted(set(entry["types"]) | p.types)
        return list(out.values())

    def matrix(self, namespace: str) -> tuple[list[Endpoint], list[list[Verdict]]]:
        """Who can reach whom among the endpoints of one namespace (rows: sources)."""
        endpoints = sorted(self.endpoints_by_namespace.get(namespace, ()), key=lambda e: (e.name, e.kind))
        rows = [[self.can(src, dst) for dst in endpoints] for src in endpoints]
        return endpoints, rows


def _decide(verdict: Verdict, sides: tuple[SideVerdict, ...], protocol: str | None, numbers: list[int]) -> None:
    """Set whether ``verdict.ports`` admit the query (any port when none was asked) and, if so, which
    rules of ``sides`` allow it."""
    if protocol is None:
        verdict.allowed = not verdict.ports.empty
    else:
        verdict.allowed = any(verdict.ports.contains(protocol, n) for n in numbers)
    if verdict.allowed:
        verdict.deciding = [m for side in sides for m in side.deciding(protocol, numbers)]


def _side_notes(verdict: Verdict, sides: tuple[SideVerdict, ...]) -> None:
    for side in sides:
        verdict.notes.extend(n for n in side.notes if n not in verdict.notes)


def _host_network_note(endpoint: Endpoint) -> str:
    return f"{endpoint.key} uses hostNetwork: NetworkPolicy does not reliably apply to it"


def _build_model(inventory: Inventory) -> NetworkModel:
    with paused_gc():  # thousands of small acyclic objects: see loader.paused_gc
        return NetworkModel(inventory)


def model_for(inventory: Inventory) -> NetworkModel:
    """The model of an inventory, built once and shared by the controls of a scan."""
    return inventory.analysis(_build_model)


def parse_address(text: str) -> IPNetwork:
    """An IP address or CIDR given on the command line."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or CIDR") from None
