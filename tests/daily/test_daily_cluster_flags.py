"""Issue 12 item 11 against the fake API server of tests/live: -l on `scan --cluster` selects workload
LISTs only; `rbac` and `netpol` answer from `--cluster`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))

from live_support import fake_cluster

from kubeharden.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_scan_cluster_selector_applies_to_workload_lists_only(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        code, out, err = run("scan", "--cluster", "--kubeconfig", str(kubeconfig), "-l", "app=web",
                             "--request-timeout", "10s", "-f", "json", "--fail-on", "none")
    assert code == 0, err
    selected = {r["plural"] for r in server.requests if (r["query"].get("labelSelector") or [""])[0] == "app=web"}
    unselected = {r["plural"] for r in server.requests if "labelSelector" not in r["query"]}
    assert {"pods", "deployments", "replicasets"} <= selected
    assert {"networkpolicies", "namespaces", "rolebindings"} <= unselected
    assert not selected & {"networkpolicies", "namespaces", "rolebindings", "clusterroles"}
    assert any("label selector 'app=web'" in note for note in json.loads(out)["notes"])


def test_rbac_and_netpol_read_the_live_cluster(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        live = ("--cluster", "--kubeconfig", str(kubeconfig))
        code, out, err = run("rbac", "who-can", "get", "secret", *live, "-n", "shop", "-f", "json")
        assert code == 0, err
        assert "ServiceAccount shop/web" in json.loads(out)["subjects"]
        code, out, _ = run("rbac", "can-i", "get", "secrets", *live, "--as", "system:serviceaccount:shop:web",
                           "-n", "shop")
        assert code == 0 and out.startswith("yes")
        code, out, err = run("netpol", "status", *live, "-n", "shop", "-f", "json")
        assert code == 0, err
        assert any(e["name"].startswith("web") for e in json.loads(out)["endpoints"])
    code, _, err = run("rbac", "who-can", "get", "pods", "x.yaml", "--cluster")
    assert code == 2 and "not both" in err
