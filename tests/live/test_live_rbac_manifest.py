"""deploy/kubeharden-reader-rbac.yaml grants exactly what the live reader lists, read-only."""

from __future__ import annotations

from pathlib import Path

import yaml
from fake_apiserver import Behaviour
from live_support import FIXTURE_COUNT, fake_cluster, scan_json

from kubeharden.sources.cluster import WANTED_KINDS, ClusterOptions, facts_of, read_cluster

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "kubeharden-reader-rbac.yaml"


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith("s"):
        return lower + "es"
    return lower + "s"


def _granted(roles: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """(group, resource) pairs the manifest's ClusterRoles (or only the named ones) grant."""
    granted: set[tuple[str, str]] = set()
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc["kind"] != "ClusterRole" or (roles and doc["metadata"]["name"] not in roles):
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


def test_live_scan_with_exactly_these_permissions_reads_everything(tmp_path: Path) -> None:
    # The fake API server authorizes like RBAC with the manifest's rules: any LIST they do not
    # grant answers 403. With both roles nothing is forbidden and every object is read.
    behaviour = Behaviour(allowed=_granted())
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig)))
    assert facts_of(read)["forbidden_kinds"] == {}
    assert sum(len(o.items) for o in read.lists) == FIXTURE_COUNT


def test_without_the_secrets_role_only_secrets_are_unreadable(tmp_path: Path) -> None:
    behaviour = Behaviour(allowed=_granted(("kubeharden-reader",)))
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig)))
        _, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-CRED-004")
    assert set(facts_of(read)["forbidden_kinds"]) == {"Secret"}
    [control] = report["controls"]
    assert control["status"] == "not_assessed" and "cannot read Secret: 403 Forbidden" in control["reason"]
