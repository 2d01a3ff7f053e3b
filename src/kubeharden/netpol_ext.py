"""Cilium and admin network policies for the NetworkPolicy engine (parsing only; netpol.py evaluates).

* ``cilium.io/v2`` CiliumNetworkPolicy (namespaced) and CiliumClusterwideNetworkPolicy at L3/L4:
  ``endpointSelector`` (``spec`` or each entry of ``specs``), ingress/egress allow rules with
  ``fromEndpoints``/``toEndpoints``, ``fromEntities``/``toEntities``, ``fromCIDR``/``toCIDR``,
  ``fromCIDRSet``/``toCIDRSet`` (with ``except``), ``toPorts`` (``port``, ``endPort``, ``protocol``,
  ANY by default), ``ingressDeny``/``egressDeny`` (deny wins over every allow) and
  ``enableDefaultDeny``. A rule with an ingress (egress) section puts the endpoints it selects in
  default deny for that direction; an empty rule (``- {}``) admits nothing; a rule with ports and
  no L3 peer admits every peer on those ports. Endpoint selectors of a CiliumNetworkPolicy select in
  its own namespace unless they name ``io.kubernetes.pod.namespace``. Constructs beyond L3/L4 (L7
  ``rules`` in toPorts, ``toFQDNs``, ``toServices``, ``toGroups``, ``*Requires``, ``*Nodes``,
  ``icmps``, TLS) are recorded, never evaluated: answers say "beyond L4: not evaluated".
* ``policy.networking.k8s.io/v1alpha1`` AdminNetworkPolicy (``priority``, ``subject``, rules with
  ``action`` Allow/Deny/Pass, peers ``namespaces``/``pods``/``networks``/``nodes``, ports
  ``portNumber``/``portRange``/``namedPort``) and BaselineAdminNetworkPolicy (Allow/Deny). Evaluation
  order: AdminNetworkPolicy (by priority, then rule order) → NetworkPolicy (with Cilium policies) →
  BaselineAdminNetworkPolicy → allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubeharden.inventory import as_dict, as_list
from kubeharden.model import Path, Resource
from kubeharden.netpol import (
    ALL_PORTS,
    EGRESS,
    INGRESS,
    MAX_PORT,
    MIN_PORT,
    NO_PORTS,
    PROTOCOLS,
    IpBlock,
    PolicyError,
    PortRule,
    PortSet,
    Selector,
    _inside,
    _parse_network,
    _parse_port,
    _valid_port_name,
    parse_selector,
    resource_namespace,
)

CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
ADMIN_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy")
EXTENDED_KINDS = CILIUM_KINDS + ADMIN_KINDS
ADMIN_TIER, NETWORK_POLICY_TIER, BASELINE_TIER = "admin", "networkpolicy", "baseline"
ALLOW, DENY, PASS = "Allow", "Deny", "Pass"

# Cilium identity labels of a pod beyond its own labels (keys as policies write them, "k8s:" stripped).
CILIUM_NAMESPACE_KEY = "io.kubernetes.pod.namespace"
CILIUM_NAMESPACE_LABEL_PREFIX = "io.cilium.k8s.namespace.labels."
CILIUM_SERVICE_ACCOUNT_KEY = "io.cilium.k8s.policy.serviceaccount"
_CILIUM_CLUSTER_KEY = "io.cilium.k8s.policy.cluster"  # one cluster is modelled: always ours
# Entities that stand for pods of the cluster, and for addresses outside it.
POD_ENTITIES = frozenset({"cluster", "all"})
ADDRESS_ENTITIES = frozenset({"world", "all"})
KNOWN_ENTITIES = frozenset({"world", "world-ipv4", "world-ipv6", "cluster", "host", "remote-node",
                            "kube-apiserver", "ingress", "health", "init", "unmanaged", "all", "none"})
_CILIUM_UNEVALUATED = {INGRESS: ("fromRequires", "fromGroups", "fromNodes", "icmps", "authentication"),
                       EGRESS: ("toRequires", "toServices", "toFQDNs", "toGroups", "toNodes", "icmps",
                                "authentication")}
_BEYOND_PORT_FIELDS = ("rules", "serverNames", "originatingTLS", "terminatingTLS", "listener")
EVERYTHING = Selector()


@dataclass(frozen=True, slots=True)
class ExtPeer:
    """One peer of a Cilium or admin rule: pods (by selectors), an entity, or a network."""

    kind: str  # "pods", "entity" or "network"
    pod_selector: Selector = EVERYTHING
    namespace_selector: Selector | None = None  # admin policies: namespaces whose labels match
    namespace: str | None = None  # CiliumNetworkPolicy: pods of this namespace only
    cilium_labels: bool = False  # pod_selector reads Cilium identity labels (namespace, service account)
    entity: str = ""
    block: IpBlock | None = None

    def describe(self) -> str:
        if self.kind == "entity":
            return f"entity {self.entity}"
        if self.kind == "network" and self.block is not None:
            return f"CIDR {self.block.describe()}"
        parts = []
        if self.namespace is not None:
            parts.append(f"namespace {self.namespace}")
        if self.namespace_selector is not None:
            parts.append(f"namespaces [{self.namespace_selector.describe()}]")
        parts.append(f"pods [{self.pod_selector.describe()}]")
        return " and ".join(parts)


@dataclass(frozen=True, slots=True)
class ExtRule:
    direction: str
    action: str  # Allow, Deny or Pass
    field_name: str  # "spec.ingress[0]", "specs[1].egressDeny[0]"
    path: Path
    peers: tuple[ExtPeer, ...]
    every_peer: bool  # a Cilium rule with ports and no L3 peer
    ports: tuple[PortRule, ...]  # empty: every port
    beyond_l4: tuple[str, ...] = ()  # constructs that are recorded, not evaluated
    name: str = ""

    def port_set(self, named_ports: Any) -> PortSet:
        if not self.ports:
            return ALL_PORTS
        out = NO_PORTS
        for port in self.ports:
            out = out.union(port.resolve(named_ports))
        return out

    def describe(self) -> str:
        word = "from" if self.direction == INGRESS else "to"
        if self.every_peer:
            peers = "any peer"
        else:
            peers = "; ".join(p.describe() for p in self.peers) or "no peer"
        ports = ", ".join(p.describe() for p in self.ports) if self.ports else "any port"
        text = f"{self.action.lower()} {word} {peers} on {ports}"
        if self.beyond_l4:
            text += f" ({', '.join(self.beyond_l4)}: beyond L4, not evaluated)"
        return text


@dataclass(frozen=True, slots=True)
class ExtPolicy:
    resource: Resource
    tier: str
    priority: int  # admin policies: lower first; others 0
    subject: ExtPeer  # the pods the policy applies to
    default_deny: frozenset[str]  # directions it isolates (Cilium)
    ingress: tuple[ExtRule, ...]
    egress: tuple[ExtRule, ...]
    key: str  # "shop/CiliumNetworkPolicy/web", "AdminNetworkPolicy/tenants"
    select_nothing: bool = False  # a Cilium nodeSelector (host) policy: no pod is selected

    def rules(self, direction: str) -> tuple[ExtRule, ...]:
        return self.ingress if direction == INGRESS else self.egress

    @property
    def types(self) -> frozenset[str]:
        return frozenset(d for d in (INGRESS, EGRESS) if self.rules(d) or d in self.default_deny)

    @property
    def name(self) -> str:
        return self.resource.name


# ---------------------------------------------------------------------------------------------
# Cilium


def _cilium_key(key: str) -> str:
    for prefix in ("k8s:", "any:"):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _cilium_selector(raw: Any, path: Path) -> tuple[Selector, bool]:
    """An EndpointSelector (label keys without their source prefix, the cluster label dropped) and
    whether it names the namespace."""
    if raw is not None and not isinstance(raw, dict):
        raise PolicyError(path, "endpoint selector is not a mapping")
    raw = dict(raw or {})
    labels = {_cilium_key(str(k)): v for k, v in as_dict(raw.get("matchLabels")).items()}
    exprs = []
    for expr in as_list(raw.get("matchExpressions")):
        if isinstance(expr, dict) and "key" in expr:
            expr = {**expr, "key": _cilium_key(str(expr["key"]))}
        exprs.append(expr)
    labels.pop(_CILIUM_CLUSTER_KEY, None)
    exprs = [e for e in exprs if not (isinstance(e, dict) and e.get("key") == _CILIUM_CLUSTER_KEY)]
    if any(str(k).startswith("reserved:") for k in labels):
        raise PolicyError(path, "reserved: labels select Cilium entities, not pods (use fromEntities/toEntities)")
    compiled = parse_selector({"matchLabels": labels, "matchExpressions": exprs}, path)
    names_namespace = any(r.key == CILIUM_NAMESPACE_KEY for r in compiled.requirements)
    return compiled, names_namespace


def _cilium_ports(raw: Any, path: Path) -> tuple[tuple[PortRule, ...], tuple[str, ...]]:
    """toPorts: the L4 ports (empty: every port) and the constructs beyond L4 found there."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise PolicyError(path, "toPorts is not a list")
    ports: list[PortRule] = []
    beyond: list[str] = []
    every = False
    for i, entry in enumerate(raw):
        entry = as_dict(entry)
        beyond.extend(f"toPorts[{i}].{f}" for f in _BEYOND_PORT_FIELDS if entry.get(f))
        items = as_list(entry.get("ports"))
        if not items:
            every = True
        for j, item in enumerate(items):
            ports.extend(_cilium_port(item, (*path, i, "ports", j)))
    if every:
        return (), tuple(beyond)
    return tuple(ports), tuple(beyond)


def _cilium_port(raw: Any, path: Path) -> list[PortRule]:
    if not isinstance(raw, dict):
        raise PolicyError(path, "port entry is not a mapping")
    protocol = str(raw.get("protocol") or "ANY").upper()
    if protocol not in (*PROTOCOLS, "ANY", "ICMP", "ICMPV6"):
        raise PolicyError((*path, "protocol"), f"unsupported protocol {protocol!r} (TCP, UDP, SCTP, ANY)")
    protocols = PROTOCOLS if protocol == "ANY" else (protocol,) if protocol in PROTOCOLS else ()
    text = str(raw.get("port") if raw.get("port") is not None else "0").strip()
    end = raw.get("endPort")
    if text.isdigit():
        number = int(text)
        if number == 0:
            return [PortRule(p, None) for p in protocols]  # port 0: every port
        if not MIN_PORT <= number <= MAX_PORT:
            raise PolicyError((*path, "port"), f"port {number} is outside 1-65535")
        if end is not None and (isinstance(end, bool) or not isinstance(end, int) or not number <= end <= MAX_PORT):
            raise PolicyError((*path, "endPort"), f"endPort {end!r} must be a number from port to 65535")
        return [PortRule(p, number, end if end and end != number else None) for p in protocols]
    if not _valid_port_name(text):
        raise PolicyError((*path, "port"), f"port {text!r} is neither a number nor a valid port name")
    return [PortRule(p, text) for p in protocols]


def _cilium_rule(raw: Any, direction: str, action: str, field: str, index: int, prefix: Path,
                 namespace: str | None) -> ExtRule:
    path: Path = (*prefix, field, index)
    word = "from" if direction == INGRESS else "to"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(path, "rule is not a mapping")
    peers: list[ExtPeer] = []
    for i, sel in enumerate(as_list(raw.get(f"{word}Endpoints"))):
        selector, names_namespace = _cilium_selector(sel, (*path, f"{word}Endpoints", i))
        peers.append(ExtPeer("pods", selector, namespace=None if names_namespace else namespace,
                             cilium_labels=True))
    for i, entity in enumerate(as_list(raw.get(f"{word}Entities"))):
        if str(entity) not in KNOWN_ENTITIES:
            raise PolicyError((*path, f"{word}Entities", i), f"unknown entity {entity!r}")
        peers.append(ExtPeer("entity", entity=str(entity)))
    for i, cidr in enumerate(as_list(raw.get(f"{word}CIDR"))):
        peers.append(ExtPeer("network", block=IpBlock(_parse_network(cidr, (*path, f"{word}CIDR", i)))))
    for i, item in enumerate(as_list(raw.get(f"{word}CIDRSet"))):
        where = (*path, f"{word}CIDRSet", i)
        item = as_dict(item)
        if not item.get("cidr"):
            if item.get("cidrGroupRef") or item.get("cidrGroupSelector"):
                continue  # a CiliumCIDRGroup: addresses not in the manifest
            raise PolicyError(where, "CIDR set entry needs a cidr")
        cidr = _parse_network(item["cidr"], (*where, "cidr"))
        excepts = []
        for j, raw_except in enumerate(as_list(item.get("except"))):
            net = _parse_network(raw_except, (*where, "except", j))
            if not _inside(net, cidr):
                raise PolicyError((*where, "except", j), f"except {net} is not inside {cidr}")
            excepts.append(net)
        peers.append(ExtPeer("network", block=IpBlock(cidr, tuple(excepts))))
    beyond = [f for f in _CILIUM_UNEVALUATED[direction] if raw.get(f)]
    beyond.extend(f for f in (f"{word}CIDRSet",) if any(as_dict(i).get("cidrGroupRef") or
                                                       as_dict(i).get("cidrGroupSelector")
                                                       for i in as_list(raw.get(f"{word}CIDRSet"))))
    ports, port_beyond = _cilium_ports(raw.get("toPorts"), (*path, "toPorts"))
    has_l3 = bool(peers) or bool(beyond) or any(raw.get(f) is not None for f in (
        f"{word}Endpoints", f"{word}Entities", f"{word}CIDR", f"{word}CIDRSet"))
    # No L3 peer: ports alone admit every peer on them; nothing at all (`- {}`) admits nothing.
    every_peer = not has_l3 and raw.get("toPorts") is not None
    field_name = ("spec" if prefix == ("spec",) else f"specs[{prefix[1]}]") + f".{field}[{index}]"
    return ExtRule(direction, action, field_name, path, tuple(peers), every_peer, ports,
                   tuple(beyond) + port_beyond)


def parse_cilium(resource: Resource) -> list[ExtPolicy]:
    """One ExtPolicy per rule of ``spec`` and ``specs``; raises PolicyError for an invalid one."""
    clusterwide = resource.kind == "CiliumClusterwideNetworkPolicy"
    namespace = None if clusterwide else resource_namespace(resource)
    entries: list[tuple[Path, Any]] = []
    if resource.obj.get("spec") is not None:
        entries.append((("spec",), resource.obj["spec"]))
    for i, spec in enumerate(as_list(resource.obj.get("specs"))):
        entries.append((("specs", i), spec))
    if not entries:
        raise PolicyError(("spec",), "neither spec nor specs is set")
    base = f"{resource.kind}/{resource.name}" if clusterwide else f"{namespace}/{resource.kind}/{resource.name}"
    out = []
    for prefix, spec in entries:
        if not isinstance(spec, dict):
            raise PolicyError(prefix, "rule is not a mapping")
        host_policy = spec.get("nodeSelector") is not None
        if host_policy and spec.get("endpointSelector") is not None:
            raise PolicyError(prefix, "endpointSelector and nodeSelector are mutually exclusive")
        if not host_policy and spec.get("endpointSelector") is None:
            raise PolicyError((*prefix, "endpointSelector"), "endpointSelector or nodeSelector is required")
        selector, _ = _cilium_selector(spec.get("endpointSelector"), (*prefix, "endpointSelector"))
        subject = ExtPeer("pods", selector, namespace=namespace, cilium_labels=True)
        rules: dict[str, list[ExtRule]] = {INGRESS: [], EGRESS: []}
        for direction, allow_field, deny_field in ((INGRESS, "ingress", "ingressDeny"),
                                                   (EGRESS, "egress", "egressDeny")):
            for field, action in ((deny_field, DENY), (allow_field, ALLOW)):
                raw_rules = spec.get(field)
                if raw_rules is not None and not isinstance(raw_rules, list):
                    raise PolicyError((*prefix, field), f"{field} is not a list")
                rules[direction].extend(_cilium_rule(r, direction, action, field, i, prefix, namespace)
                                        for i, r in enumerate(raw_rules or []))
        default_deny = set()
        switches = as_dict(spec.get("enableDefaultDeny"))
        for direction, name in ((INGRESS, "ingress"), (EGRESS, "egress")):
            wanted = switches.get(name)
            if wanted is True or (wanted is None and rules[direction]):
                default_deny.add(direction)
        out.append(ExtPolicy(resource, NETWORK_POLICY_TIER, 0, subject, frozenset(default_deny),
                             tuple(rules[INGRESS]), tuple(rules[EGRESS]), base, select_nothing=host_policy))
    return out


# ---------------------------------------------------------------------------------------------
# AdminNetworkPolicy / BaselineAdminNetworkPolicy


def _admin_pods(raw: Any, path: Path) -> ExtPeer:
    raw = as_dict(raw)
    if "namespaceSelector" not in raw or "podSelector" not in raw:
        raise PolicyError(path, "pods needs namespaceSelector and podSelector")
    return ExtPeer("pods", parse_selector(raw["podSelector"] or {}, (*path, "podSelector")),
                   namespace_selector=parse_selector(raw["namespaceSelector"] or {}, (*path, "namespaceSelector")))


def _admin_subject(raw: Any, path: Path) -> ExtPeer:
    if not isinstance(raw, dict) or len([k for k in ("namespaces", "pods") if raw.get(k) is not None]) != 1:
        raise PolicyError(path, "subject needs exactly one of namespaces, pods")
    if raw.get("namespaces") is not None:
        return ExtPeer("pods", Selector(), namespace_selector=parse_selector(raw["namespaces"],
                                                                             (*path, "namespaces")))
    return _admin_pods(raw["pods"], (*path, "pods"))


def _admin_peers(raw: Any, direction: str, path: Path) -> tuple[list[ExtPeer], list[str]]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(path, f"{'from' if direction == INGRESS else 'to'} needs at least one peer")
    peers: list[ExtPeer] = []
    beyond: list[str] = []
    allowed = ("namespaces", "pods") if direction == INGRESS else ("namespaces", "pods", "nodes", "networks")
    for i, item in enumerate(raw):
        where = (*path, i)
        keys = [k for k in allowed if isinstance(item, dict) and item.get(k) is not None]
        if len(keys) != 1 or len(as_dict(item)) != 1:
            raise PolicyError(where, f"a peer sets exactly one of {', '.join(allowed)}")
        key = keys[0]
        if key == "namespaces":
            peers.append(ExtPeer("pods", Selector(), namespace_selector=parse_selector(item[key], (*where, key))))
        elif key == "pods":
            peers.append(_admin_pods(item[key], (*where, key)))
        elif key == "networks":
            for j, cidr in enumerate(as_list(item[key])):
                peers.append(ExtPeer("network", block=IpBlock(_parse_network(cidr, (*where, key, j)))))
        else:
            beyond.append("nodes")  # node addresses are not in manifests
    return peers, beyond


def _admin_ports(raw: Any, path: Path) -> tuple[PortRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise PolicyError(path, "ports needs at least one entry")
    out = []
    for i, item in enumerate(raw):
        where = (*path, i)
        item = as_dict(item)
        if len(item) != 1:
            raise PolicyError(where, "a port sets exactly one of portNumber, portRange, namedPort")
        if "portNumber" in item:
            number = as_dict(item["portNumber"])
            out.append(_parse_port({"protocol": number.get("protocol"), "port": number.get("port")},
                                   (*where, "portNumber")))
        elif "portRange" in item:
            span = as_dict(item["portRange"])
            start, end = span.get("start"), span.get("end")
            if not isinstance(start, int) or not isinstance(end, int) or not MIN_PORT <= start < end <= MAX_PORT:
                raise PolicyError((*where, "portRange"), "portRange needs start < end within 1-65535")
            out.append(_parse_port({"protocol": span.get("protocol"), "port": start, "endPort": end},
                                   (*where, "portRange")))
        elif "namedPort" in item:
            out.append(_parse_port({"port": str(item["namedPort"])}, (*where, "namedPort")))
        else:
            raise PolicyError(where, "a port sets exactly one of portNumber, portRange, namedPort")
    return tuple(out)


def parse_admin(resource: Resource) -> ExtPolicy:
    baseline = resource.kind == "BaselineAdminNetworkPolicy"
    spec = resource.obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(("spec",), "spec is required")
    if baseline and resource.name != "default":
        raise PolicyError(("metadata", "name"), "a BaselineAdminNetworkPolicy must be named 'default'")
    priority = spec.get("priority", 0 if baseline else None)
    if not baseline and (isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000):
        raise PolicyError(("spec", "priority"), "priority must be a number from 0 to 1000")
    subject = _admin_subject(spec.get("subject"), ("spec", "subject"))
    actions = (ALLOW, DENY) if baseline else (ALLOW, DENY, PASS)
    rules: dict[str, list[ExtRule]] = {INGRESS: [], EGRESS: []}
    for direction, field, word in ((INGRESS, "ingress", "from"), (EGRESS, "egress", "to")):
        raw_rules = spec.get(field)
        if raw_rules is not None and not isinstance(raw_rules, list):
            raise PolicyError(("spec", field), f"{field} is not a list")
        if len(raw_rules or []) > 100:
            raise PolicyError(("spec", field), f"more than 100 {field} rules")
        for i, raw in enumerate(raw_rules or []):
            path: Path = ("spec", field, i)
            raw = as_dict(raw)
            action = raw.get("action")
            if action not in actions:
                raise PolicyError((*path, "action"), f"action {action!r} is not one of {', '.join(actions)}")
            peers, beyond = _admin_peers(raw.get(word), direction, (*path, word))
            rules[direction].append(ExtRule(direction, str(action), f"spec.{field}[{i}]", path, tuple(peers),
                                            False, _admin_ports(raw.get("ports"), (*path, "ports")),
                                            tuple(beyond), str(raw.get("name") or "")))
    return ExtPolicy(resource, BASELINE_TIER if baseline else ADMIN_TIER, int(priority or 0), subject,
                     frozenset(), tuple(rules[INGRESS]), tuple(rules[EGRESS]), f"{resource.kind}/{resource.name}")


def parse_extended(resource: Resource) -> list[ExtPolicy]:
    """The policies of a Cilium or admin policy object ([] for other API groups of those kinds)."""
    if resource.kind in CILIUM_KINDS and resource.group == "cilium.io":
        return parse_cilium(resource)
    if resource.kind in ADMIN_KINDS and resource.group == "policy.networking.k8s.io":
        return [parse_admin(resource)]
    return []


def admin_denies_everything(rule: ExtRule) -> bool:
    """An admin Deny rule for every pod of every namespace on every port: a default deny."""
    return (rule.action == DENY and not rule.ports and any(
        p.kind == "pods" and p.namespace_selector is not None and p.namespace_selector.selects_everything
        and p.pod_selector.selects_everything for p in rule.peers))
