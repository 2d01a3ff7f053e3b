"""`scan --cluster` through the official client against the loopback API server."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from fake_apiserver import Behaviour, synthetic_cluster
from live_support import (
    FIXTURE_COUNT,
    SECRET_VALUE,
    SECRET_VALUE_B64,
    fake_cluster,
    fixture_objects,
    run,
    scan_json,
    statuses,
)

from kubeharden.catalog import Context, Control, Settings
from kubeharden.engine import Engine
from kubeharden.inventory import Inventory
from kubeharden.model import Resource, Section, Severity, Source, Status, Violation
from kubeharden.scanner import ScanRequest, UsageError, build_inventory, run_scan
from kubeharden.sources.cluster import (
    SECRET_TYPES_LISTED,
    ClusterOptions,
    facts_of,
    read_cluster,
    to_load_result,
)


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
    assert len(inventory.resources) == FIXTURE_COUNT == 26
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
    # equal short strings of different objects are one object (memory of large clusters)
    other = inventory.get("Pod", "shop", "web-5d4f8-1")
    assert other is not None and other.metadata["namespace"] is pod.metadata["namespace"]
    assert other.obj["spec"]["containers"][0]["image"] is pod.obj["spec"]["containers"][0]["image"]
    assert pod.metadata["uid"] == "pod-web-0"
    # pods of a ReplicaSet of a Deployment are judged once, on the Deployment
    owners = {(v.resource.kind, v.resource.name) for v in inventory.pod_specs()}
    assert ("Deployment", "web") in owners
    assert not any(kind in ("ReplicaSet",) or name.startswith("web-5d4f8") for kind, name in owners)


def test_secrets_are_read_as_metadata_only_with_their_types(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        inventory = _inventory(kubeconfig)
        requests = server.list_requests("secrets")
        code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-CRED-003",
                                    "-c", "KH-CRED-004")
    assert requests and all("as=PartialObjectMetadataList" in r["accept"] for r in requests)
    selectors = sorted((r["query"].get("fieldSelector") or [""])[0] for r in requests)
    assert selectors == sorted(["", *(f"type={t}" for t in SECRET_TYPES_LISTED)])
    plain = inventory.get("Secret", "shop", "db-password")
    assert plain is not None
    assert plain.obj == {"metadata": plain.obj["metadata"], "apiVersion": "v1", "kind": "Secret"}
    token = inventory.get("Secret", "shop", "web-token")
    assert token is not None and token.obj["type"] == "kubernetes.io/service-account-token"
    assert "data" not in token.obj
    login = inventory.get("Secret", "shop", "legacy-login")
    assert login is not None and login.obj["type"] == "kubernetes.io/basic-auth"
    text = str(report)
    assert SECRET_VALUE_B64 not in text and SECRET_VALUE not in text
    assert any("metadata only" in n for n in report["notes"])
    # judged by type although no Secret data was read
    assert statuses(report) == {"KH-CRED-003": "fail", "KH-CRED-004": "fail"}
    assert sorted(f["resource"]["name"] for f in report["findings"]) == ["legacy-login", "web-token"]
    assert code == 0


def test_failed_secret_type_list_blocks_the_type_controls(tmp_path: Path) -> None:
    # The Secret LIST works but listing by type keeps failing: types are unknown, so the
    # controls that judge them are not_assessed instead of passing.
    selector = "type=kubernetes.io/basic-auth"
    behaviour = Behaviour(fail_selector={selector: [503] * 3})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        options = {"kubeconfig": str(kubeconfig), "retries": 1, "backoff": 0.01}
        scanned = run_scan(ScanRequest(only=["KH-CRED-003"], sources={"cluster": options}))
    [outcome] = scanned.controls
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason is not None and "cannot tell Secret types" in outcome.reason and "503" in outcome.reason
    assert [e.message for e in scanned.errors if "Secret" in e.message]


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
    behaviour = Behaviour(forbidden={"networkpolicies.networking.k8s.io", "secrets"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    forbidden = inventory.facts["forbidden_kinds"]
    assert set(forbidden) == {"NetworkPolicy", "Secret"}
    assert "the credentials may not list NetworkPolicy, Secret: controls that need these kinds are not_assessed" \
        in inventory.facts["notes"]
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


CALICO_POLICY = {
    "apiVersion": "crd.projectcalico.org/v1", "kind": "NetworkPolicy",
    "metadata": {"name": "allow-web", "namespace": "shop"},
    "spec": {"selector": "app == 'web'", "types": ["Ingress"]},
}


def test_crd_kinds_sharing_a_builtin_name_are_kept_apart(tmp_path: Path) -> None:
    objects = [*fixture_objects(), CALICO_POLICY]
    with fake_cluster(tmp_path, objects=objects) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    by_group = sorted((r.group, r.name) for r in inventory.of_kind("NetworkPolicy"))
    assert ("crd.projectcalico.org", "allow-web") in by_group
    assert any(group == "networking.k8s.io" for group, _ in by_group)
    # Calico's policies unreadable: recorded under their group, so the core kind stays judged
    behaviour = Behaviour(forbidden={"networkpolicies.crd.projectcalico.org"})
    with fake_cluster(tmp_path, objects=objects, behaviour=behaviour) as (_server, kubeconfig):
        inventory = _inventory(kubeconfig)
    assert set(inventory.facts["forbidden_kinds"]) == {"NetworkPolicy.crd.projectcalico.org"}
    assert [r.group for r in inventory.of_kind("NetworkPolicy")] == ["networking.k8s.io"]


def _test_control(control_id: str, check: Any, kinds: tuple[str, ...] = ("Pod",)) -> Control:
    return Control(id=control_id, title="t", section=Section.NETWORK, guidance=("NSA-NET-1",),
                   severity=Severity.LOW, what="w", why="y", fix="f", check=check, kinds=kinds)


def test_controls_reading_an_unreadable_kind_they_do_not_declare_are_not_assessed() -> None:
    pod = Resource.from_obj({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"},
                             "spec": {"containers": [{"name": "c", "image": "x:1"}]}}, Source("f", 1))
    models: dict[int, list[Resource]] = {}

    def roles_model(inventory: Inventory) -> list[Resource]:  # a cache keyed by the inventory, as modules do
        return models.setdefault(id(inventory), inventory.of_kind("Role", "ClusterRole"))

    def first(ctx: Context) -> list[Violation]:
        return [Violation(r, (), "role") for r in roles_model(ctx.inventory)]

    def second(ctx: Context) -> list[Violation]:  # would hit the cache the first one filled
        roles_model(ctx.inventory)
        return [Violation(ctx.inventory.of_kind("Pod")[0], ("spec",), "pod")]

    def pods_only(ctx: Context) -> list[Violation]:
        return [] if ctx.inventory.of_kind("Pod") else [Violation(None, (), "none")]

    controls = [_test_control("KH-TST-001", first), _test_control("KH-TST-002", second),
                _test_control("KH-TST-003", pods_only)]
    forbidden = {"forbidden_kinds": {"Role": "403 Forbidden: cannot list roles"}}
    result = Engine(controls, Settings()).run(Inventory([pod], forbidden))
    outcomes = {r.control.id: r for r in result.controls}
    # the unreadable Role makes both a pass and a finding unreliable
    assert outcomes["KH-TST-001"].status is Status.NOT_ASSESSED
    assert outcomes["KH-TST-001"].reason == "cannot read Role: 403 Forbidden: cannot list roles"
    assert outcomes["KH-TST-002"].status is Status.NOT_ASSESSED
    assert outcomes["KH-TST-003"].status is Status.PASS  # never asked for Role
    assert result.findings == []
    readable = Engine(controls, Settings()).run(Inventory([pod], {}))
    assert [r.status for r in readable.controls] == [Status.PASS, Status.FAIL, Status.PASS]


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
    assert scanned.resources == FIXTURE_COUNT - 2  # the two ConfigMaps
    assert [e.message for e in scanned.errors] == [f"cannot list ConfigMap: {configmaps.failed}"]
    assert scanned.exit_code(Severity.CRITICAL) == 2


def test_slow_list_times_out_without_crashing(tmp_path: Path) -> None:
    behaviour = Behaviour(slow={"services": 2.0})
    with fake_cluster(tmp_path, behaviour=behaviour) as (server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), timeout=0.3, retries=1, backoff=0.01))
        attempts = len(server.list_requests("services"))
    [services] = [o for o in read.lists if o.target.kind == "Service"]
    assert services.failed is not None and "timed out" in services.failed.lower()
    assert attempts == 2  # the first try and the one retry of the setting, then the kind is given up
    assert facts_of(read)["forbidden_kinds"]["Service"] == services.failed
    assert sum(len(o.items) for o in read.lists) == FIXTURE_COUNT - 1  # the Service


def test_timeouts_and_retries_are_command_line_settings(tmp_path: Path) -> None:
    behaviour = Behaviour(slow={"services": 2.0})
    with fake_cluster(tmp_path, behaviour=behaviour) as (server, kubeconfig):
        code, report, stderr = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "--request-timeout", "0.3",
                                         "--retries", "0", "--page-size", "2", "--workers", "2",
                                         "-c", "KH-NET-009")
        service_requests = server.list_requests("services")
        pod_requests = server.list_requests("pods")
    assert len(service_requests) == 1  # --retries 0: no second try
    assert len(pod_requests) == 3  # --page-size 2 over five pods
    assert code == 2  # a kind that could not be read is an input error
    assert "cannot list Service" in stderr and "timed out" in stderr.lower()
    [control] = report["controls"]
    assert control["status"] == "not_assessed" and "cannot read Service" in control["reason"]


def test_bad_credentials_are_a_usage_error(tmp_path: Path) -> None:
    with fake_cluster(tmp_path) as (server, _kubeconfig):
        wrong = server.kubeconfig(tmp_path / "wrong.yaml", token="not-the-token")
        with pytest.raises(UsageError, match=r"rejected the credentials .*401 Unauthorized"):
            _inventory(wrong)
        result = run("scan", "--cluster", "--kubeconfig", str(wrong))
    assert result.exit_code == 2
    assert "401 Unauthorized" in result.stderr and "Traceback" not in result.stderr


def test_credentials_rejected_during_a_list_stop_the_scan(tmp_path: Path) -> None:
    # the token stops working between discovery and a LIST (revoked, expired): exit 2, no report
    with fake_cluster(tmp_path, behaviour=Behaviour(unauthorized_lists={"pods"})) as (_server, kubeconfig):
        result = run("scan", "--cluster", "--kubeconfig", str(kubeconfig), "-f", "json")
    assert result.exit_code == 2
    assert "rejected the credentials" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_failed_discovery_of_a_group_makes_its_kinds_unreadable(tmp_path: Path) -> None:
    behaviour = Behaviour(broken_discovery={"networking.k8s.io"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        options = {"kubeconfig": str(kubeconfig), "retries": 0}
        # namespaces without a default-deny policy; pods no policy selects; workloads in kube-system
        only = ["KH-NET-004", "KH-NET-005", "KH-NET-001"]
        scanned = run_scan(ScanRequest(only=only, sources={"cluster": options}))
        inventory = _inventory(kubeconfig, retries=0)
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        readable = run_scan(ScanRequest(only=only, sources={"cluster": {"kubeconfig": str(kubeconfig)}}))
    forbidden = inventory.facts["forbidden_kinds"]
    assert set(forbidden) == {"NetworkPolicy", "Ingress", "IngressClass"}
    assert "discovery of networking.k8s.io/v1 failed: 503" in forbidden["NetworkPolicy"]
    assert any("cannot list NetworkPolicy" in e.message for e in scanned.errors)
    # With the policies read, the policy controls judge the fixture cluster ...
    assert {r.control.id: r.status for r in readable.controls} == {
        "KH-NET-004": Status.FAIL, "KH-NET-005": Status.FAIL, "KH-NET-001": Status.FAIL}
    # ... without them they cannot: "no NetworkPolicy" would be a false finding (or a false pass).
    # They read NetworkPolicy without declaring it among their kinds; the engine notices the read.
    outcomes = {r.control.id: r for r in scanned.controls}
    for control_id in ("KH-NET-004", "KH-NET-005"):
        assert outcomes[control_id].status is Status.NOT_ASSESSED, control_id
        assert "cannot read NetworkPolicy: discovery of networking.k8s.io/v1 failed" in str(outcomes[control_id].reason)
    assert outcomes["KH-NET-001"].status is Status.FAIL  # needs no policy: unaffected


def test_cluster_options_without_cluster_are_a_usage_error(tmp_path: Path) -> None:
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
                        "spec:\n  containers: [{name: c, image: x:1}]\n")
    result = run("scan", str(manifest), "-n", "shop")
    assert result.exit_code == 2 and "add --cluster" in result.stderr


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
    assert sum(len(o.items) for o in read.lists) == FIXTURE_COUNT


def test_progress_bar_does_not_disturb_the_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), progress=True))
    assert sum(len(o.items) for o in read.lists) == FIXTURE_COUNT
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


def test_ten_thousand_object_cluster(tmp_path: Path) -> None:
    # Time and peak RSS of this size (and of 100,000 objects) are measured by benchmarks/bench_live.py.
    objects = synthetic_cluster(10_000)
    privileged_apps = sum(1 for o in objects if o["kind"] == "Deployment"
                          and o["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"])
    pods = sum(1 for o in objects if o["kind"] == "Pod")
    with fake_cluster(tmp_path, objects=objects) as (server, kubeconfig):
        tracemalloc.start()
        read = read_cluster(ClusterOptions(kubeconfig=str(kubeconfig), page_size=500))
        result = to_load_result(read)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        pod_pages = len(server.list_requests("pods"))
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-POD-005")
    assert result.stats.resources == len(objects) >= 10_000
    assert pod_pages == -(-pods // 500)
    assert not any("managedFields" in r.metadata for r in result.resources)
    # slimmed pages keep memory far below what the raw JSON of 10,000 objects would take
    assert peak < 200 * 2**20
    # one finding per privileged Deployment: its ReplicaSet and Pods are judged on it
    assert privileged_apps > 5
    assert len(report["findings"]) == privileged_apps
    assert {f["resource"]["kind"] for f in report["findings"]} == {"Deployment"}


def test_kubeconfig_from_environment_and_context_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with fake_cluster(tmp_path) as (server, kubeconfig):
        other = server.kubeconfig(tmp_path / "other.yaml", context="staging")
        monkeypatch.setenv("KUBECONFIG", f"{kubeconfig}{':'}{other}")  # merged like kubectl
        read = read_cluster(ClusterOptions(context="staging"))
        default = read_cluster(ClusterOptions())
    assert read.source_name == "cluster:staging"
    # the current-context of the merged files (the Python client lets a later file's win)
    assert default.source_name in ("cluster:fake", "cluster:staging")
    assert sum(len(o.items) for o in default.lists) == FIXTURE_COUNT



def _unaffected_add_ons(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixture with a maintained gateway for ingress-nginx and a fixed capsule-proxy."""
    for obj in objects:
        template = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in template.get("containers", []):
            if "ingress-nginx/controller" in container["image"]:
                # a replacement runs its own binary: ingress-nginx is also recognised by its command
                container["image"] = "docker.io/envoyproxy/gateway:v1.5.0"
                container["args"] = ["server", "--config-path=/config/envoy-gateway.yaml"]
            elif "capsule-proxy" in container["image"]:
                container["image"] = "quay.io/clastix/capsule-proxy:v0.9.3"
    return objects


def test_unreadable_nodes_block_only_the_version_controls_that_read_them(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"nodes"})
    with fake_cluster(tmp_path, behaviour=behaviour) as (_server, kubeconfig):
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-UPG-00[1-7]")
    status = statuses(report)
    reasons = {c["id"]: c.get("reason") or "" for c in report["controls"]}
    # add-on images (ingress-nginx v1.0.4, capsule-proxy v0.2.0) are judged without Node objects
    assert status["KH-UPG-005"] == "fail", reasons["KH-UPG-005"]
    assert status["KH-UPG-006"] == "fail", reasons["KH-UPG-006"]
    assert status["KH-UPG-007"] == "fail", reasons["KH-UPG-007"]
    cves = {f["evidence"].get("cve") for f in report["findings"] if f["control_id"] == "KH-UPG-006"}
    assert {"CVE-2022-23652", "CVE-2025-1974"} <= cves
    # node versions cannot be judged
    for control_id in ("KH-UPG-001", "KH-UPG-004"):
        assert status[control_id] == "not_assessed", control_id
        assert "cannot read Node: 403 Forbidden" in reasons[control_id]


def test_unreadable_nodes_and_unaffected_add_ons_pass(tmp_path: Path) -> None:
    behaviour = Behaviour(forbidden={"nodes"})
    objects = _unaffected_add_ons(fixture_objects())
    with fake_cluster(tmp_path, objects=objects, behaviour=behaviour) as (_server, kubeconfig):
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), "-c", "KH-UPG-00[4-7]")
    status = statuses(report)
    assert [status[c] for c in ("KH-UPG-005", "KH-UPG-006", "KH-UPG-007")] == ["pass"] * 3
    assert status["KH-UPG-004"] == "not_assessed"


def test_unreadable_pods_name_the_reason_of_missing_control_plane_evidence(tmp_path: Path) -> None:
    controls = ("KH-CP-001", "KH-CP-006", "KH-SEC-001", "KH-LOG-001")
    args = [arg for c in controls for arg in ("-c", c)]
    with fake_cluster(tmp_path, behaviour=Behaviour(forbidden={"pods"})) as (_server, kubeconfig):
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), *args)
    for outcome in report["controls"]:
        assert outcome["status"] == "not_assessed", outcome["id"]
        assert outcome["reason"].startswith("cannot read Pod: 403 Forbidden"), outcome
        assert "in the input" not in outcome["reason"]
    # readable Pods: the fixture's kube-apiserver mirror pod is judged
    with fake_cluster(tmp_path) as (_server, kubeconfig):
        _code, report, _ = scan_json("--cluster", "--kubeconfig", str(kubeconfig), *args)
    status = statuses(report)
    assert status["KH-CP-001"] in ("pass", "fail")
    assert not any("cannot read Pod" in (c.get("reason") or "") for c in report["controls"])
