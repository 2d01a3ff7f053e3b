"""Per-identity baselines for D04/D15/D20 (``kubeharden audit learn``): the verb/resource pairs,
source networks, user agents and hours each identity was seen with. Bounded: at most
MAX_IDENTITIES identities and a cap per set; what does not fit is counted, not kept."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubeharden.audit.event import AuditEvent

FORMAT = "kubeharden.io/audit-baseline/v1"
MAX_IDENTITIES = 20_000
MAX_PAIRS = 1_000
MAX_NETWORKS = 200
MAX_AGENTS = 100


class BaselineError(Exception):
    pass


def pair_of(event: AuditEvent) -> str:
    if event.resource:
        res = f"{event.resource}/{event.subresource}" if event.subresource else event.resource
        group = f"{event.api_group}/" if event.api_group else ""
        return f"{event.verb} {group}{res}"
    path = event.request_uri.split("?", 1)[0]
    return f"{event.verb} {path[:64]}"


_NET_CACHE: dict[str, str] = {}


def network_of(address: str) -> str:
    """IPv4 /24 or IPv6 /64: a host's neighbourhood, not the host (DHCP moves people around)."""
    hit = _NET_CACHE.get(address)
    if hit is None:
        try:
            ip = ipaddress.ip_address(address)
            prefix = 24 if ip.version == 4 else 64
            hit = str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
        except ValueError:
            hit = address[:64]
        if len(_NET_CACHE) > 65536:
            _NET_CACHE.clear()
        _NET_CACHE[address] = hit
    return hit


def agent_of(user_agent: str) -> str:
    """'kubectl/v1.30.2 (linux/amd64) kubernetes/abc' -> 'kubectl/v1.30': patch upgrades are not new."""
    product = user_agent.split(" ", 1)[0]
    name, _, version = product.partition("/")
    if version:
        parts = version.split(".")
        version = ".".join(parts[:2])
    return f"{name}/{version}" if version else name


def hour_of(event: AuditEvent) -> int | None:
    t = event.time
    return dt.datetime.fromtimestamp(t, dt.UTC).hour if t is not None else None


@dataclass
class IdentityProfile:
    events: int = 0
    pairs: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    hours: set[int] = field(default_factory=set)

    def learn(self, event: AuditEvent) -> None:
        self.events += 1
        _add(self.pairs, pair_of(event), MAX_PAIRS)
        if event.client_ip:
            _add(self.networks, network_of(event.client_ip), MAX_NETWORKS)
        if event.user_agent:
            _add(self.agents, agent_of(event.user_agent), MAX_AGENTS)
        hour = hour_of(event)
        if hour is not None:
            self.hours.add(hour)

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events, "pairs": sorted(self.pairs), "networks": sorted(self.networks),
                "agents": sorted(self.agents), "hours": sorted(self.hours)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IdentityProfile:
        def strings(key: str) -> set[str]:
            value = data.get(key)
            return {str(v) for v in value} if isinstance(value, list) else set()

        hours = data.get("hours")
        events = data.get("events")
        return cls(events=events if isinstance(events, int) else 0, pairs=strings("pairs"),
                   networks=strings("networks"), agents=strings("agents"),
                   hours={h for h in hours if isinstance(h, int)} if isinstance(hours, list) else set())


def _add(values: set[str], value: str, cap: int) -> None:
    if len(values) < cap or value in values:
        values.add(value)


@dataclass
class Baseline:
    identities: dict[str, IdentityProfile] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None
    dropped_identities: int = 0

    def learn(self, event: AuditEvent) -> None:
        if not event.succeeded:
            return  # a denied request is not "normal" behaviour to learn
        user = event.user
        profile = self.identities.get(user)
        if profile is None:
            if len(self.identities) >= MAX_IDENTITIES:
                self.dropped_identities += 1
                return
            profile = self.identities[user] = IdentityProfile()
        profile.learn(event)
        t = event.time
        if t is not None:
            self.start = t if self.start is None else min(self.start, t)
            self.end = t if self.end is None else max(self.end, t)

    def learn_all(self, events: Iterable[AuditEvent]) -> None:
        for event in events:
            self.learn(event)

    def get(self, user: str) -> IdentityProfile | None:
        return self.identities.get(user)

    def to_json(self) -> bytes:
        doc = {"format": FORMAT, "start": self.start, "end": self.end, "droppedIdentities": self.dropped_identities,
               "identities": {k: v.to_dict() for k, v in sorted(self.identities.items())}}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Baseline:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise BaselineError(f"{where}: not JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise BaselineError(f"{where}: not a kubeharden audit baseline (format {FORMAT})")
        identities = doc.get("identities")
        if not isinstance(identities, dict):
            raise BaselineError(f"{where}: identities must be a mapping")
        out = cls(start=doc.get("start"), end=doc.get("end"))
        for name, profile in list(identities.items())[:MAX_IDENTITIES]:
            if isinstance(profile, dict):
                out.identities[str(name)] = IdentityProfile.from_dict(profile)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Baseline:
        return cls.from_json(orjson.dumps({"format": FORMAT, **doc}), "baseline")
