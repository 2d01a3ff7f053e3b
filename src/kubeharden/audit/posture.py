"""Joins with posture (``--cluster-state``): alerts about an object (or made by a service account)
that the scan finds at fault gain those findings as context, and their severity goes up one step.
An exec into a pod that fails KH-POD-005, a token used off-cluster by a service account the RBAC
controls flag, anonymous success while KH-CP-001 (anonymous auth) fails."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeharden.audit.event import AuditEvent
from kubeharden.catalog import Settings
from kubeharden.inventory import Inventory
from kubeharden.model import Finding, Severity

Key = tuple[str, str, str]  # kind, namespace, name
ANONYMOUS_CONTROLS = ("KH-CP-001",)


@dataclass
class Posture:
    by_object: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    failing_controls: dict[str, str] = field(default_factory=dict)  # control id -> one message
    owners: dict[Key, Key] = field(default_factory=dict)  # pod/replicaset -> its controller
    findings: int = 0

    @classmethod
    def from_paths(cls, paths: Sequence[str]) -> tuple[Posture, list[str]]:
        from kubeharden.catalog import controls_for_profile
        from kubeharden.engine import Engine
        from kubeharden.scanner import ScanRequest, build_inventory

        request = ScanRequest(paths=paths, settings=Settings(as_cluster=True))
        inventory, loaded = build_inventory(request)
        result = Engine(controls_for_profile("nsa"), request.settings).run(inventory, errors=loaded.errors)
        posture = cls()
        posture._index_owners(inventory)
        for f in result.active_findings():
            posture.findings += 1
            posture.failing_controls.setdefault(f.control_id, f.message)
            ref = f.resource or {}
            if ref.get("kind") and ref.get("name"):
                key = (str(ref["kind"]), str(ref.get("namespace") or ""), str(ref["name"]))
                entries = posture.by_object.setdefault(key, [])
                if len(entries) < 20:
                    entries.append({"control": f.control_id, "severity": f.severity.label, "message": f.message})
        problems = [f"{e.source}: {e.message}" for e in result.errors]
        return posture, problems

    def _index_owners(self, inventory: Inventory) -> None:
        for res in inventory.resources:
            owner = inventory.controller_of(res)
            if owner is not None:
                self.owners[(res.kind, res.namespace or "", res.name)] = (owner.kind, owner.namespace or "", owner.name)

    def _context_of(self, key: Key) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        seen: set[Key] = set()
        while key not in seen:
            seen.add(key)
            out += [{**entry, "object": "/".join(p for p in key if p)} for entry in self.by_object.get(key, [])]
            if key not in self.owners:
                break
            key = self.owners[key]
        return out

    def join(self, finding: Finding, event: AuditEvent) -> None:
        context: list[dict[str, Any]] = []
        if event.resource and event.name:
            context += self._context_of((event.kind, event.namespace, event.name))
        user = event.user
        if user.startswith("system:serviceaccount:"):
            parts = user.split(":")
            if len(parts) == 4:
                context += self._context_of(("ServiceAccount", parts[2], parts[3]))
        if finding.control_id == "D07":
            context += [{"control": cid, "message": self.failing_controls[cid]} for cid in ANONYMOUS_CONTROLS
                        if cid in self.failing_controls]
        if not context:
            return
        finding.evidence["posture"] = context[:10]
        serious = any(c.get("severity") in ("high", "critical") or c.get("control") in ANONYMOUS_CONTROLS
                      for c in context)
        if serious:
            finding.severity = Severity(min(finding.severity + 1, Severity.CRITICAL))
            finding.message += f" [posture: {context[0]['control']} {context[0].get('object', '')}]".replace(" ]", "]")
