"""deploy/kubeharden-reader-rbac.yaml grants exactly what the live reader lists, read-only."""

from __future__ import annotations

from pathlib import Path

import yaml

from kubeharden.sources.cluster import WANTED_KINDS

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "kubeharden-reader-rbac.yaml"


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def _granted() -> set[tuple[str, str]]:
    granted: set[tuple[str, str]] = set()
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc["kind"] != "ClusterRole":
            continue
        for rule in doc["rules"]:
            assert rule["verbs"] == ["list"], rule  # read-only, and only what is used
            assert "*" not in rule["apiGroups"] and "*" not in rule["resources"]
            granted |= {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
    return granted


def test_role_covers_every_listed_kind_and_nothing_more() -> None:
    wanted = {(group, _plural(kind)) for group, kinds in WANTED_KINDS.items() for kind in kinds}
    assert _granted() == wanted


def test_manifest_passes_kubeharden_itself() -> None:
    from kubeharden.loader import LoadContext, load_paths

    loaded = load_paths([str(RBAC)], LoadContext())
    assert not loaded.errors
    kinds = sorted(r.kind for r in loaded.resources)
    assert kinds.count("ClusterRole") == 2 and kinds.count("ClusterRoleBinding") == 2
