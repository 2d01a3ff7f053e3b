"""`scan --cluster` through the official client against the loopback API server."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import Behaviour
from live_support import SECRET_VALUE, SECRET_VALUE_B64, fake_cluster, scan_json, statuses

from kubeharden.catalog import Context, Control, Settings
from kubeharden.engine import Engine
from kubeharden.inventory import Inventory
from kubeharden.model import Section, Severity, Status, Violation
from kubeharden.scanner import ScanRequest, UsageError, build_inventory, run_scan
from kubeharden.sources.cluster import ClusterOptions, facts_of, read_cluster, to_load_result


def _inventory(kubeconfig: Path, **options: Any) -> Inventory:
    request = ScanRequest(sources={"cluster": {"kubeconfig": str(kubeconfig), **options}})
    inventory, _ = build_inventory(request)
    return inventory


def test_scan_cluster_reads_every_fixture_object(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    kinds = {r.kind for r in inventory.resources}
    assert {"Namespace", "Node", "Pod", "Deployment", "ReplicaSet", "Secret", "ConfigMap", "Ingress",
            "NetworkPolicy", "ClusterRole", "RoleBinding", "ServiceAccount", "Service"} <= kinds
    assert len(inventory.resources) == 24
    facts = inventory.facts
    assert facts["cluster"] is True
    assert facts["server_version"] == "v1.34.1"
    assert facts["forbidden_kinds"] == {}
    assert {n["name"]: n["kubeletVersion"] for n in facts["nodes"]} == {"node-a": "v1.21.3", "node-b": "v1.34.1"}
    web = inventory.get("Deployment", "shop", "web")
    assert web is not None
    assert web.source.file == "cluster:fake" and web.source.line is None
    assert web.source.origin == "/apis/apps/v1/namespaces/shop/deployments/web"
    assert web.api_version == "apps/v1"


def test_cluster_objects_are_slimmed_and_owners_kept(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    web = inventory.get("Deployment", "shop", "web")
    assert web is not None
    assert "managedFields" not in web.metadata  # the server sends them; they are dropped
    assert "kubectl.kubernetes.io/last-applied-configuration" not in web.annotations
    assert "status" not in web.obj
    node = inventory.get("Node", None, "node-a")
    assert node is not None
    assert set(node.obj["status"]) == {"nodeInfo"}  # images, conditions, capacity dropped
    pod = inventory.get("Pod", "shop", "web-5d4f8-0")
    assert pod is not None and pod.obj["status"] == {"phase": "Running"}
    assert pod.metadata["uid"] == "pod-web-0"
    # pods of a ReplicaSet of a Deployment are judged once, on the Deployment
    owners = {(v.resource.kind, v.resource.name) for v in inventory.pod_specs()}
    assert ("Deployment", "web") in owners
    assert not any(kind in ("ReplicaSet",) or name.startswith("web-5d4f8") for kind, name in owners)


def test_secrets_are_read_as_metadata_only(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        inventory = _inventory(kubeconfig)
        [request] = server.list_requests("secrets")
        code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig))
    assert "as=PartialObjectMetadataList" in request["accept"]
    secret = inventory.get("Secret", "shop", "db-password")
    assert secret is not None
    assert secret.obj == {"metadata": secret.obj["metadata"], "apiVersion": "v1", "kind": "Secret"}
    assert "data" not in secret.obj
    text = str(report)
    assert SECRET_VALUE_B64 not in text and SECRET_VALUE not in text
    assert any("metadata only" in n for n in report["notes"])
    assert code == 0


def test_pagination_reads_three_pages(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        inventory = _inventory(kubeconfig, page_size=2)
        pod_requests = server.list_requests("pods")
    assert len(pod_requests) == 3  # 5 pods, 2 per page
    assert [r["query"].get("limit") for r in pod_requests] == [["2"]] * 3
    assert "continue" not in pod_requests[0]["query"]
    assert all("continue" in r["query"] for r in pod_requests[1:])
    names = sorted(r.name for r in inventory.of_kind("Pod"))
    assert names == ["debug", "kube-apiserver-cp-1", "web-5d4f8-0", "web-5d4f8-1", "web-5d4f8-2"]


def test_expired_continue_token_restarts_the_list(tmp_path: Path) -> None:
    behaviour = Behaviour(expire_continue_once={"pods"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), page_size=2))
        pod_requests = server.list_requests("pods")
    [pods] = [o for o in read.lists if o.target.kind == "Pod"]
    assert pods.restarts == 1
    # first page, expired continue (410), then a fresh full list of three pages
    assert len(pod_requests) == 5
    assert "continue" not in pod_requests[2]["query"]
    names = [item["metadata"]["name"] for item in pods.items]
    assert len(names) == 5 and len(set(names)) == 5  # nothing lost, nothing doubled


def test_forbidden_kind_is_recorded_and_blocks_controls(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"networkpolicies", "secrets"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    forbidden = inventory.facts["forbidden_kinds"]
    assert set(forbidden) == {"NetworkPolicy", "Secret"}
    assert "403 Forbidden" in forbidden["NetworkPolicy"]
    assert 'cannot list resource "networkpolicies"' in forbidden["NetworkPolicy"]
    assert not inventory.of_kind("NetworkPolicy")

    def any_policy(ctx: Context) -> list[Violation]:  # would pass on an empty list
        return []

    ctrl = Control(id="KH-TST-001", title="t", section=Section.NETWORK, guidance=("NSA-NET-1",),
                   severity=Severity.LOW, what="w", why="y", fix="f", check=any_policy,
                   kinds=("NetworkPolicy", "Namespace"))
    result = Engine([ctrl], Settings()).run(inventory)
    [outcome] = result.controls
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason is not None and "cannot read NetworkPolicy: 403 Forbidden" in outcome.reason


def test_transient_errors_are_retried(tmp_path: Path) -> None:
    behaviour = Behaviour(fail_next={"configmaps": [503, 429, 503]})
    with fake_cluster(tmp_path, behaviour=behaviour) as (server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), retries=3, backoff=0.01))
        assert len(server.list_requests("configmaps")) == 4
    [configmaps] = [o for o in read.lists if o.target.kind == "ConfigMap"]
    assert configmaps.failed is None and len(configmaps.items) == 2


def test_persistent_server_errors_make_the_kind_unreadable(tmp_path: Path) -> None:
    behaviour = Behaviour(fail_next={"configmaps": [503] * 4})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), retries=1, backoff=0.01))
        options = {"kubeconfig": str(kubeconfig), "retries": 1, "backoff": 0.01}
        scanned = run_scan(ScanRequest(only=["KH-UPG-001"], sources={"cluster": options}))
    [configmaps] = [o for o in read.lists if o.target.kind == "ConfigMap"]
    assert configmaps.failed is not None and "503" in configmaps.failed
    result = to_load_result(read)
    assert result.facts["forbidden_kinds"]["ConfigMap"] == configmaps.failed
    assert [e.message for e in result.errors] == [f"cannot list ConfigMap: {configmaps.failed}"]
    # the scan goes on without the kind; the input error makes the exit code 2
    assert scanned.resources == 22
    assert [e.message for e in scanned.errors] == [f"cannot list ConfigMap: {configmaps.failed}"]
    assert scanned.exit_code(Severity.CRITICAL) == 2


def test_slow_list_times_out_without_crashing(tmp_path: Path) -> None:
    behaviour = Behaviour(slow={"services": 2.0})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        started = time.perf_counter()
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), timeout=0.3, retries=1, backoff=0.01))
        elapsed = time.perf_counter() - started
    [services] = [o for o in read.lists if o.target.kind == "Service"]
    assert services.failed is not None and "timed out" in services.failed.lower()
    assert elapsed < 10
    assert facts_of(read)["forbidden_kinds"]["Service"] == services.failed
    assert sum(len(o.items) for o in read.lists) == 23


def test_bad_credentials_are_a_usage_error(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, _kubeconfig):
        wrong = server.kubeconfig(tmp_path / "wrong.yaml", token="not-the-token")
        with pytest.raises(UsageError, match=r"rejected the credentials .*401 Unauthorized"):
            _inventory(wrong)
        from live_support import run

        result = run("scan", "--cluster", "--kubeconfig", str(wrong))
    assert result.exit_code == 2
    assert "401 Unauthorized" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_server_and_bad_kubeconfig_are_usage_errors(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        text = kubeconfig.read_text()
    # the server is gone now: the same kubeconfig points at a closed port
    with pytest.raises(UsageError, match="cannot reach the API server"):
        _inventory(kubeconfig, retries=0, timeout=2)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("current-context: fake", "current-context: missing"))
    with pytest.raises(UsageError, match="cannot load cluster configuration"):
        _inventory(broken)


def test_namespace_limited_read(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        inventory = _inventory(kubeconfig, namespaces=("shop",))
        pod_requests = server.list_requests("pods")
    assert [r["namespace"] for r in pod_requests] == ["shop"]
    assert {r.namespace for r in inventory.resources if r.namespace} == {"shop"}
    assert inventory.of_kind("Node")  # cluster-scoped kinds are still read
    assert inventory.facts["cluster"] is False
    assert inventory.facts["namespaces_scanned"] == ["shop"]


def test_in_cluster_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    with fake_cluster(tmp_path) as (server, _kubeconfig):
        token = tmp_path / "token"
        token.write_text(server.behaviour.token)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(server.cert_path))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
        monkeypatch.delenv("KUBECONFIG", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
        read = read_cluster(ClusterOptions())
    assert read.source_name == "cluster:in-cluster"
    assert sum(len(o.items) for o in read.lists) == 24


def test_progress_bar_does_not_disturb_the_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), progress=True))
    assert sum(len(o.items) for o in read.lists) == 24
    assert capsys.readouterr().out == ""  # the bar goes to stderr only


def test_live_scan_findings(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-UPG-*",
                                    "-c", "KH-POD-005")
    status = statuses(report)
    assert status["KH-POD-005"] == "fail"
    assert status["KH-UPG-001"] == "fail"
    assert status["KH-UPG-004"] == "fail"
    privileged = [f for f in report["findings"] if f["control_id"] == "KH-POD-005"]
    assert len(privileged) == 1  # the Deployment, not its ReplicaSet and three pods
    assert privileged[0]["source"]["file"] == "cluster:fake"
    assert privileged[0]["evidence"]["origin"] == "/apis/apps/v1/namespaces/shop/deployments/web"
    assert any(n.startswith("version data:") for n in report["notes"])
    assert code == 0


def _many_pods(count: int) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{i}"}} for i in range(20)
    ]
    for i in range(count):
        objects.append({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"pod-{i:05d}", "namespace": f"ns-{i % 20}", "labels": {"app": f"a{i % 50}"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x" * 400}},
            "spec": {"containers": [{"name": "app", "image": f"registry.example/app:{i % 7}",
                                     "securityContext": {"privileged": i % 100 == 0},
                                     "env": [{"name": "MODE", "value": "prod"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}] * 4},
        })
    return objects


def test_ten_thousand_object_cluster(tmp_path: Path) -> None:
    objects = _many_pods(10_000)
    with fake_cluster(tmp_path, objects=objects) as (server, kubeconfig):
        tracemalloc.start()
        started = time.perf_counter()
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), page_size=500))
        elapsed_read = time.perf_counter() - started
        result = to_load_result(read)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        pages = len(server.list_requests("pods"))
    assert result.stats.resources == 10_020
    assert pages == 20
    _code, report, _ = (0, {}, "")
    started = time.perf_counter()
    with fake_cluster(tmp_path, objects=objects) as (_server, kubeconfig):
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-POD-005")
    elapsed_scan = time.perf_counter() - started
    assert len(report["findings"]) == 100
    print(f"\n10,020-object cluster: read {elapsed_read:.2f} s (traced peak {peak / 2**20:.1f} MiB); "
          f"full CLI scan {elapsed_scan:.2f} s")
    assert elapsed_scan < 60
    assert peak < 400 * 2**20


def test_kubeconfig_from_environment_and_context_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        other = server.kubeconfig(tmp_path / "other.yaml", context="staging")
        monkeypatch.setenv("KUBECONFIG", f"{kubeconfig}{':'}{other}")  # merged like kubectl
        read = read_cluster(ClusterOptions(context="staging"))
        default = read_cluster(ClusterOptions())
    assert read.source_name == "cluster:staging"
    # the current-context of the merged files (the Python client lets a later file's win)
    assert default.source_name in ("cluster:fake", "cluster:staging")
    assert sum(len(o.items) for o in default.lists) == 24
