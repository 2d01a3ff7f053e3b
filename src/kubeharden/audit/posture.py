"""Joins with posture (``--cluster-state``): alerts about an object (or made by a service account)
that the scan finds at fault gain those findings as context, and their severity goes up one step.
An exec into a pod that fails KH-POD-005, a token used off-cluster by a service account that holds
risky RBAC (the grants `kubeharden rbac risks` ranks, indexed by the account, not only by the
binding the RBAC controls report), anonymous success while KH-CP-001 (anonymous auth) fails. The
most severe context comes first and names the alert's suffix."""

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
# Findings that make an alert worse, not just better explained: the target workload's own pod
# security, the acting account's RBAC. A namespace without NetworkPolicy is context, not a reason
# to raise every exec in it.
RAISING_PREFIXES = ("KH-POD-", "KH-RBAC-")
MAX_CONTEXT_PER_OBJECT = 20
_RANK = {s.label: int(s) for s in Severity}


@dataclass
class Posture:
    by_object: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    failing_controls: dict[str, str] = field(default_factory=dict)  # control id -> one message
    owners: dict[Key, Key] = field(default_factory=dict)  # pod/replicaset -> its controller
    findings: int = 0
    # the API server's audit policy when the state holds its static pod (policy coverage)
    audit_policies: list[Any] = field(default_factory=list)
    policy_reasons: list[str] = field(default_factory=list)

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
        posture._index_account_risks(inventory)
        from kubeharden.audit.policy import policies_in

        posture.audit_policies, posture.policy_reasons = policies_in(inventory)
        for f in result.active_findings():
            posture.findings += 1
            posture.failing_controls.setdefault(f.control_id, f.message)
            ref = f.resource or {}
            if ref.get("kind") and ref.get("name"):
                key = (str(ref["kind"]), str(ref.get("namespace") or ""), str(ref["name"]))
                posture.by_object.setdefault(key, []).append(
                    {"control": f.control_id, "severity": f.severity.label, "message": f.message})
        for entries in posture.by_object.values():  # the most severe are the ones kept
            entries.sort(key=lambda c: -_RANK.get(str(c["severity"]), 0))
            del entries[MAX_CONTEXT_PER_OBJECT:]
        problems = [f"{e.source}: {e.message}" for e in result.errors]
        return posture, problems

    def _index_account_risks(self, inventory: Inventory) -> None:
        """Risky grants held by each ServiceAccount (a token used as that account carries them); the
        RBAC input's own problems are the scan's to report."""
        from kubeharden.rbac.engine import RbacModel
        from kubeharden.rbac.risks import rank_subjects

        model = RbacModel(inventory.resources)
        for held in rank_subjects(model):
            subject = held.subject
            if subject.kind != "ServiceAccount" or not subject.name:
                continue
            entries = self.by_object.setdefault(("ServiceAccount", subject.namespace or "", subject.name), [])
            for risky in held.risks:
                entries.append({"control": risky.kind.control, "severity": risky.severity.label,
                                "risk": risky.kind.id, "message": f"{risky.kind.title}: {risky.grant.chain()}"})

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
            context += [{"control": cid, "severity": "high", "message": self.failing_controls[cid],
                         "raises": event.succeeded} for cid in ANONYMOUS_CONTROLS if cid in self.failing_controls]
        if not context:
            return
        for c in context:
            c.setdefault("raises", _RANK.get(str(c.get("severity")), 0) >= Severity.HIGH
                         and str(c.get("control", "")).startswith(RAISING_PREFIXES))
        context.sort(key=lambda c: (not c["raises"], -_RANK.get(str(c.get("severity")), 0)))
        finding.evidence["posture"] = context[:10]
        first = context[0]
        if first["raises"]:
            finding.severity = Severity(min(finding.severity + 1, Severity.CRITICAL))
            finding.message += f" [posture: {first['control']} {first.get('object', '')}]".replace(" ]", "]")
