"""Audit Policy semantics (audit.k8s.io/v1): which rule, and so which level, applies to a
request. The API server takes the first rule that matches; no match means level None."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubeharden.inventory import as_dict, as_list

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
ALL_VERBS = READ_VERBS + WRITE_VERBS


@dataclass(frozen=True)
class RequestKind:
    """A family of requests to one resource: any user, the given verbs, any namespace."""

    group: str
    resource: str
    subresource: str = ""
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def label(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.group}/{name}" if self.group else name


def _resource_matches(rule: dict[str, Any], req: RequestKind, ignore_names: bool) -> bool | None:
    """True: every request of the family matches the rule's resources; None: some may (e.g.
    resourceNames); False: none does."""
    groups = as_list(rule.get("resources"))
    if not groups:
        return True
    result: bool | None = False
    combined = f"{req.resource}/{req.subresource}" if req.subresource else req.resource
    for entry in groups:
        entry = as_dict(entry)
        if str(entry.get("group") or "") != req.group:
            continue
        names = [str(x) for x in as_list(entry.get("resources"))]
        # as the API server matches: exact "resource/sub", "*", "*/sub", and "resource/*" (which the
        # API server also applies to the resource itself)
        hit = not names or any(
            n == combined or n == "*" or n == f"{req.resource}/*"
            or (bool(req.subresource) and n == f"*/{req.subresource}")
            for n in names
        )
        if not hit:
            continue
        if as_list(entry.get("resourceNames")) and not ignore_names:
            result = None
            continue
        return True
    return result


def rule_match(rule: dict[str, Any], req: RequestKind) -> bool | None:
    """True: the rule matches every request of the family; None: some of them; False: none."""
    if as_list(rule.get("nonResourceURLs")):
        return False
    resources = _resource_matches(rule, req, ignore_names=False)
    if resources is False:
        return False
    partial = resources is None
    if as_list(rule.get("users")) or as_list(rule.get("userGroups")) or as_list(rule.get("namespaces")):
        partial = True
    verbs = [str(v) for v in as_list(rule.get("verbs"))]
    if verbs and "*" not in verbs:
        common = [v for v in req.verbs if v in verbs]
        if not common:
            return False
        if len(common) < len(req.verbs):
            partial = True
    return None if partial else True


@dataclass(frozen=True)
class Reachable:
    """The levels requests of a family can get, with the rules that give them."""

    levels: tuple[tuple[str, int], ...]  # (level, rule index); index -1: no rule matched (None)
    covered: bool  # some rule matches every request of the family

    def worst(self) -> tuple[str, int]:
        return min(self.levels, key=lambda item: LEVEL_RANK.get(item[0], 0))


def reachable_levels(rules: list[dict[str, Any]], req: RequestKind,
                     skip: Callable[[dict[str, Any]], bool] | None = None) -> Reachable:
    """``skip``: rules that do not concern the question (they keep their index)."""
    out: list[tuple[str, int]] = []
    for index, rule in enumerate(rules):
        if skip is not None and skip(rule):
            continue
        match = rule_match(rule, req)
        if match is False:
            continue
        out.append((str(rule.get("level") or "None"), index))
        if match is True:
            return Reachable(tuple(out), True)
    out.append(("None", -1))
    return Reachable(tuple(out), False)


def is_catch_all(rule: dict[str, Any]) -> bool:
    """Matches every request (resource and non-resource)."""
    keys = ("users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs")
    return not any(as_list(rule.get(k)) for k in keys)


def rules_of(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in as_list(policy.get("rules")) if isinstance(r, dict)]


def targets_anonymous(rule: dict[str, Any]) -> list[str]:
    users = [str(u) for u in as_list(rule.get("users"))]
    groups = [str(g) for g in as_list(rule.get("userGroups"))]
    return [u for u in users if u == "system:anonymous"] + [g for g in groups if g == "system:unauthenticated"]


def only_anonymous(rule: dict[str, Any]) -> bool:
    """The rule applies to unauthenticated requests only (users/userGroups name nobody else)."""
    users = [str(u) for u in as_list(rule.get("users"))]
    groups = [str(g) for g in as_list(rule.get("userGroups"))]
    return bool(users or groups) and len(targets_anonymous(rule)) == len(users) + len(groups)


def invalid_fields(policy: dict[str, Any]) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """(path, problem) for levels and stages the API server would reject."""
    for stage_index, stage in enumerate(as_list(policy.get("omitStages"))):
        if stage not in STAGES:
            yield ("omitStages", stage_index), f"unknown stage {stage!r}"
    for index, rule in enumerate(as_list(policy.get("rules"))):
        if not isinstance(rule, dict):
            yield ("rules", index), "rule is not a mapping"
            continue
        if rule.get("level") not in LEVELS:
            yield ("rules", index, "level"), f"invalid level {rule.get('level')!r}"
        for stage_index, stage in enumerate(as_list(rule.get("omitStages"))):
            if stage not in STAGES:
                yield ("rules", index, "omitStages", stage_index), f"unknown stage {stage!r}"
