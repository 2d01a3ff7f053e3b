"""Policy coverage: which detectors cannot fire because the audit Policy records what they need
below the level they need, omits the stage they judge, or drops the identities they watch.
Reuses the policy semantics KH-LOG-* judge with (nodeconf.auditpolicy): first matching rule wins."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubeharden.audit.detectors import LEVEL_RANK, Detector
from kubeharden.audit.settings import AuditSettings
from kubeharden.inventory import Inventory, as_list
from kubeharden.model import Finding, Section, Severity
from kubeharden.nodeconf import auditpolicy as ap
from kubeharden.safeio import read_regular
from kubeharden.yamlsafe import Limits, YamlInputError, iter_yaml_documents


class PolicyError(Exception):
    pass


def load_policy(path: str) -> tuple[dict[str, Any], int]:
    """The audit.k8s.io Policy document of a file, with its first line."""
    limits = Limits(max_file_bytes=8 * 1024 * 1024)
    try:
        raw = read_regular(path, limits.max_file_bytes)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    problems: list[YamlInputError] = []
    for doc in iter_yaml_documents(raw, limits, problems):
        data = doc.data
        if isinstance(data, dict) and data.get("kind") == "Policy" and str(data.get("apiVersion") or "").startswith(
                "audit.k8s.io/"):
            return data, doc.start_line
    if problems:
        raise PolicyError(f"{path}:{problems[0].line or 1}: invalid YAML: {problems[0].message}")
    raise PolicyError(f"{path}: no audit.k8s.io Policy document")


@dataclass
class FoundPolicy:
    """An audit Policy the API server uses, found through its --audit-policy-file."""

    policy: dict[str, Any]
    where: str  # the file (a host path under --root, or the input file holding it)
    line: int | None
    via: str  # which API server named it


def node_inventory(root: str | None = None, bundle: str | None = None) -> tuple[Inventory, list[str]]:
    """The node source's view of a node root or a `collect-node` bundle (static pods, the files
    their flags name); no processes are read (the audit run is not about this host's processes)."""
    from kubeharden.catalog import Settings
    from kubeharden.scanner import ScanRequest, UsageError, build_inventory

    source: dict[str, Any] = {"bundle": bundle} if bundle else {"root": root, "processes": False}
    request = ScanRequest(settings=Settings(as_cluster=False), sources={"node": source})
    try:
        inventory, loaded = build_inventory(request)
    except UsageError as exc:
        raise PolicyError(f"{'--node-bundle ' + bundle if bundle else '--root ' + str(root)}: {exc}") from None
    return inventory, [f"{e.source}: {e.message}" for e in loaded.errors]


def policies_in(inventory: Inventory) -> tuple[list[FoundPolicy], list[str]]:
    """The audit Policies named by the kube-apiserver instances of an inventory (node root, node
    bundle, snapshot or manifests with the static pods), resolved as KH-LOG-* resolve them; with
    the reasons when there is none. Identical files (an HA control plane) count once."""
    from kubeharden.nodeconf.evidence import node_evidence

    evidence = node_evidence(inventory)
    apis = evidence.components.get("kube-apiserver") or []
    if not apis:
        return [], ["no kube-apiserver static pod or process in the input"]
    found: dict[str, FoundPolicy] = {}
    reasons: list[str] = []
    for api in apis:
        ref = evidence.referenced_config(api, "audit-policy-file", "Policy")
        if not ref.flag_value:
            reasons.append(f"{api.label}: --audit-policy-file is not set, audit logging is off (KH-LOG-001)")
            continue
        policies = [r for r in ref.resources if r.group == "audit.k8s.io" and isinstance(r.obj, dict)]
        if not policies:
            reasons.append(f"{api.label}: --audit-policy-file={ref.flag_value}: {ref.problem or 'no Policy'}")
        for res in policies:
            found.setdefault(ref.host_path or res.source.file, FoundPolicy(
                res.obj, res.source.file, res.source.line, f"{api.label} --audit-policy-file={ref.flag_value}"))
    return list(found.values()), reasons


def _rule_text(rules: list[dict[str, Any]], index: int) -> str:
    if index < 0:
        return "no rule matches (not logged)"
    rule = rules[index]
    who = []
    for key in ("users", "userGroups", "namespaces", "verbs"):
        values = as_list(rule.get(key))
        if values:
            who.append(f"{key}: {', '.join(str(v) for v in values[:4])}")
    return f"rule {index + 1} (level {rule.get('level')}{'; ' + '; '.join(who) if who else ''})"


def _only_exempt(rule: dict[str, Any], settings: AuditSettings) -> bool:
    """A rule that only concerns identities the detectors exempt anyway (the control plane, nodes)."""
    users = [str(u) for u in as_list(rule.get("users"))]
    groups = [str(g) for g in as_list(rule.get("userGroups"))]
    if not users and not groups:
        return False
    return all(settings.control_plane(u) or settings.pod_creators(u) or u.startswith("system:node:")
               for u in users) and all(g == "system:nodes" for g in groups)


def coverage_findings(policy: dict[str, Any], detectors: Iterable[Detector], settings: AuditSettings,
                      where: str, line: int | None = None) -> Iterator[Finding]:
    rules = ap.rules_of(policy)
    global_omit = {str(s) for s in as_list(policy.get("omitStages"))}
    for det in detectors:
        if det.check is None:
            continue
        problems: list[str] = []
        need = LEVEL_RANK.get(det.min_level, 1)

        def irrelevant(rule: dict[str, Any]) -> bool:
            # rules for identities the detectors exempt, or for anonymous requests only (the
            # needs_users check below reports those to the detectors that watch anonymous)
            return _only_exempt(rule, settings) or ap.only_anonymous(rule)

        for req in det.needs:
            reach = ap.reachable_levels(rules, req, skip=irrelevant)
            level, index = reach.worst()
            if LEVEL_RANK.get(level, 0) < need:
                problems.append(f"{req.label} is logged at {level} by {_rule_text(rules, index)}, below "
                                f"{det.min_level}")
                continue
            deciding = [rules[i] for _, i in reach.levels if i >= 0]
            for rule in deciding:
                omitted = global_omit | {str(s) for s in as_list(rule.get("omitStages"))}
                if all(stage in omitted for stage in det.stages):
                    by = "policy omitStages" if det.stages[0] in global_omit else _rule_text(rules, rules.index(rule))
                    problems.append(f"{req.label}: stage {'/'.join(det.stages)} omitted ({by})")
                    break
        for user in det.needs_users:
            for index, rule in enumerate(rules):
                targets = [str(u) for u in as_list(rule.get("users"))] + [
                    str(g) for g in as_list(rule.get("userGroups"))]
                if user in targets and str(rule.get("level")) == "None":
                    problems.append(f"requests of {user} are dropped by {_rule_text(rules, index)}")
        if not problems:
            continue
        yield Finding(
            control_id=det.id, severity=Severity.MEDIUM, resource={"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                                                    "namespace": None, "name": where},
            file=where, line=line, path="rules",
            message=f"{det.id} cannot fire on all it watches: " + "; ".join(dict.fromkeys(problems)),
            remediation=f"Record these requests at {det.min_level} or above in the audit policy, keep stage "
            f"{'/'.join(det.stages)} (kubeharden generate audit-policy writes such a policy).",
            evidence={"kind": "policy-coverage", "detector": det.id, "problems": list(dict.fromkeys(problems))},
            section=Section.LOGGING, title=f"Audit policy hides what {det.id} needs")
