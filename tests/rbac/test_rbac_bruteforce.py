"""who-can on the real-world corpus, checked against a brute-force evaluator written separately
from the engine: plain dicts, a fixpoint for aggregation, and for every question a naive loop
over every binding, every rule and every subject."""

from __future__ import annotations

import random
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeharden.loader import LoadContext, load_paths
from kubeharden.rbac.engine import RbacModel, Request

Answer = set[tuple[Any, ...]]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _texts(value: Any) -> list[str]:
    return [str(v) for v in _list(value) if isinstance(v, (str, int, float)) and not isinstance(v, bool)]


def _labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    ok = all(labels.get(str(k)) == str(v) for k, v in _dict(selector.get("matchLabels")).items())
    for expr in _list(selector.get("matchExpressions")):
        key, op = str(expr.get("key")), expr.get("operator")
        values = [str(v) for v in _list(expr.get("values"))]
        ok = ok and {
            "In": key in labels and labels[key] in values,
            "NotIn": not (key in labels and labels[key] in values),
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(str(op), False)
    return ok


class BruteForce:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        data = yaml.load(importlib_resources.files("kubeharden").joinpath("data/rbac-bootstrap.yaml")
                         .read_text("utf-8"), Loader=yaml.CSafeLoader)
        # name -> {"labels", "rules": [(origin, index, rule)], "selectors"}
        cluster_roles: dict[str, dict[str, Any]] = {}
        roles: dict[tuple[str, str], list[tuple[str, int, dict[str, Any]]]] = {}
        builtins = [dict(r, kind="ClusterRole") for r in data["clusterRoles"]]
        builtin_roles = [dict(r, kind="Role") for r in data.get("roles", [])]
        input_crbs = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"}
        builtin_bindings = [
            {"kind": "ClusterRoleBinding", "metadata": {"name": b["name"]},
             "roleRef": {"kind": "ClusterRole", "name": b["role"]}, "subjects": b["subjects"]}
            for b in data["clusterRoleBindings"] if b["name"] not in input_crbs
        ]
        for obj in builtins + builtin_roles + objects:  # later objects replace earlier ones
            meta = _dict(obj.get("metadata"))
            name = str(meta.get("name") or "")
            rules = [(name, i, _dict(r)) for i, r in enumerate(_list(obj.get("rules")))]
            if obj["kind"] == "ClusterRole":
                agg = obj.get("aggregationRule")
                cluster_roles[name] = {
                    "labels": {str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
                    "rules": rules,
                    "selectors": [_dict(s) for s in _list(agg.get("clusterRoleSelectors"))]
                    if isinstance(agg, dict) else None,
                }
            elif obj["kind"] == "Role":
                roles[(str(meta.get("namespace") or "default"), name)] = rules
        # Aggregation to a fixpoint.
        effective = {n: (r["rules"] if r["selectors"] is None else []) for n, r in cluster_roles.items()}
        changed = True
        while changed:
            changed = False
            for name, role in cluster_roles.items():
                if role["selectors"] is None:
                    continue
                union: list[tuple[str, int, dict[str, Any]]] = []
                for other, other_role in cluster_roles.items():
                    if other != name and any(_labels_match(s, other_role["labels"]) for s in role["selectors"]):
                        for item in effective[other]:
                            if all((item[0], item[1]) != (u[0], u[1]) for u in union):
                                union.append(item)
                if {(u[0], u[1]) for u in union} != {(u[0], u[1]) for u in effective[name]}:
                    effective[name] = union
                    changed = True
        self.bindings: list[tuple[dict[str, Any], list[tuple[str, int, dict[str, Any]]]]] = []
        for obj in builtin_bindings + [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]:
            ref = _dict(obj.get("roleRef"))
            ns = str(_dict(obj.get("metadata")).get("namespace") or "default")
            if ref.get("kind") == "ClusterRole":
                rules = effective.get(str(ref.get("name")))
            elif ref.get("kind") == "Role" and obj["kind"] == "RoleBinding":
                rules = roles.get((ns, str(ref.get("name"))))
            else:
                rules = None
            if rules is not None:
                self.bindings.append((obj, rules))

    def who_can(self, verb: str, group: str, resource: str, sub: str, namespace: str | None) -> Answer:
        out: Answer = set()
        wanted = resource + ("/" + sub if sub else "")
        for obj, rules in self.bindings:
            meta = _dict(obj.get("metadata"))
            binding_ns = str(meta.get("namespace") or "default") if obj["kind"] == "RoleBinding" else None
            if binding_ns is not None and binding_ns != namespace:
                continue
            for origin, index, rule in rules:
                verbs = _texts(rule.get("verbs"))
                if verb not in verbs and "*" not in verbs:
                    continue
                groups = _texts(rule.get("apiGroups"))
                if group not in groups and "*" not in groups:
                    continue
                hit = False
                for entry in _texts(rule.get("resources")):
                    if entry in ("*", wanted) or (sub and entry.startswith("*/") and entry[2:] == sub):
                        hit = True
                if not hit or _texts(rule.get("resourceNames")):
                    continue  # questions ask about any object: names never match
                for subject in _list(obj.get("subjects")):
                    subject = _dict(subject)
                    kind, name = subject.get("kind"), subject.get("name")
                    if not name or kind not in ("User", "Group", "ServiceAccount"):
                        continue
                    sns = None
                    if kind == "ServiceAccount":
                        sns = subject.get("namespace") or binding_ns
                        if not sns:
                            continue
                    out.add((kind, str(name), sns, obj["kind"], binding_ns, str(meta.get("name")), origin, index))
        return out


def _engine_answer(model: RbacModel, verb: str, group: str, resource: str, sub: str,
                   namespace: str | None) -> Answer:
    grants = model.who_can(Request(verb, resource, sub, group, "", namespace))
    return {(g.subject.kind, g.subject.name, g.subject.namespace, g.binding.kind, g.binding.namespace,
             g.binding.name, g.rule.role.name, g.rule.index) for g in grants}


def test_who_can_matches_brute_force_on_corpus(shared_dir: Path) -> None:
    loaded = load_paths([str(shared_dir / "corpus" / "real")], LoadContext())
    rbac = [r for r in loaded.resources if r.kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
            and r.api_version.startswith("rbac.authorization.k8s.io/")]
    assert len(rbac) > 600
    model = RbacModel(rbac)
    brute = BruteForce([r.obj for r in rbac])

    verbs: set[str] = set()
    targets: set[tuple[str, str, str]] = set()
    for res in rbac:
        for rule in _list(res.obj.get("rules")):
            verbs.update(v for v in _texts(_dict(rule).get("verbs")) if v != "*")
            for group in _texts(_dict(rule).get("apiGroups")):
                for entry in _texts(_dict(rule).get("resources")):
                    if group != "*" and not entry.startswith("*"):
                        resource, _, sub = entry.partition("/")
                        targets.add((group, resource, sub))
    namespaces = sorted({str(r.namespace or "default") for r in rbac if r.kind == "RoleBinding"})
    questions = [(v, g, r, s, None) for v in sorted(verbs) for g, r, s in sorted(targets)]
    rng = random.Random(20260101)
    questions = rng.sample(questions, min(len(questions), 6000))
    # namespaced questions: every namespace for the sensitive resources, a sample for the rest
    for ns in namespaces:
        for verb in ("get", "list", "create", "delete", "update", "patch", "watch", "escalate"):
            for group, resource, sub in (("", "secrets", ""), ("", "pods", "exec"), ("", "pods", ""),
                                         ("apps", "deployments", ""), ("", "configmaps", "")):
                questions.append((verb, group, resource, sub, ns))
    all_targets = sorted(targets)
    for _ in range(3000):
        group, resource, sub = rng.choice(all_targets)
        questions.append((rng.choice(sorted(verbs)), group, resource, sub, rng.choice(namespaces)))

    mismatches = []
    non_empty = 0
    for q in questions:
        expected = brute.who_can(*q)
        got = _engine_answer(model, *q)
        non_empty += bool(expected)
        if expected != got:
            mismatches.append((q, sorted(expected - got)[:3], sorted(got - expected)[:3]))
    assert not mismatches, mismatches[:5]
    assert non_empty > len(questions) // 4  # the questions do exercise grants


@pytest.mark.parametrize("question", [("get", "", "secrets", "", "argocd")])
def test_brute_force_itself_finds_known_grant(shared_dir: Path, question: tuple[str, str, str, str, str]) -> None:
    # argo-cd's install binds ClusterRole argocd-server (get on * of *) to argocd/argocd-server.
    loaded = load_paths([str(shared_dir / "corpus" / "real" / "argo-cd")], LoadContext())
    brute = BruteForce([r.obj for r in loaded.resources
                        if r.kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")])
    answer = brute.who_can(*question)
    assert ("ServiceAccount", "argocd-server", "argocd", "ClusterRoleBinding", None, "argocd-server",
            "argocd-server", 0) in answer
