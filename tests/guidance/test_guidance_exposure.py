"""API server exposure (KH-CP-040/041), node ports (KH-NODE-020) and placement (KH-NODE-021)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from guidance_helpers import POD_KINDS, dump, messages, result_of, scan_texts, workload

from kubeharden.model import Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from node_layout import build_node

CONTROLS = ("KH-CP-040", "KH-CP-041", "KH-NODE-020", "KH-NODE-021")


def service(name: str, kind: str, selector: dict[str, str], namespace: str = "shop", **extra: object) -> dict:
    spec = {"type": kind, "selector": selector, "ports": [{"port": 80, "targetPort": 8080}], **extra}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def node(name: str, labels: dict[str, str], taints: list[dict[str, str]] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"taints": taints or []}}


def scan(tmp_path: Path, *objects: dict, **kwargs):
    return scan_texts(tmp_path, {"in.yaml": dump(*objects)}, only=CONTROLS, **kwargs)


def test_kubernetes_service_turned_into_a_load_balancer(tmp_path: Path) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
           "spec": {"type": "LoadBalancer", "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}
    result = scan(tmp_path, svc)
    assert messages(result, "KH-CP-040") == [
        "API server Service 'kubernetes' is a LoadBalancer open to every address (no loadBalancerSourceRanges)"]
    svc["spec"]["loadBalancerSourceRanges"] = ["0.0.0.0/0"]
    assert result_of(scan(tmp_path / "b", svc), "KH-CP-040").status is Status.FAIL
    svc["spec"]["loadBalancerSourceRanges"] = ["198.51.100.0/24"]
    assert result_of(scan(tmp_path / "c", svc), "KH-CP-040").status is Status.PASS
    svc["spec"] = {"type": "ClusterIP", "ports": [{"port": 443, "targetPort": 6443}], "externalIPs": ["203.0.113.9"]}
    assert messages(scan(tmp_path / "d", svc), "KH-CP-040") == [
        "API server Service 'kubernetes' is published on external IPs 203.0.113.9"]


def test_ordinary_load_balancers_are_not_the_api_server(tmp_path: Path) -> None:
    result = scan(tmp_path, service("web", "LoadBalancer", {"app": "web"}))
    assert result_of(result, "KH-CP-040").status is Status.PASS


def test_bind_address_from_a_node_and_managed_clusters(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_node(root, hardened=True)
    result = scan_texts(tmp_path, {}, only=("KH-CP-041",), node={"root": str(root)})
    text = (root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    outcome = result_of(result, "KH-CP-041")
    if "--bind-address" in text and "0.0.0.0" not in text:
        assert outcome.status is Status.PASS
    else:
        assert outcome.status is Status.FAIL and "listens on every interface" in outcome.findings[0].message
    managed = scan(tmp_path / "m", service("web", "ClusterIP", {"app": "web"}))
    reason = result_of(managed, "KH-CP-041").reason or ""
    assert "no kube-apiserver configuration" in reason and "authorizedIpRanges" in reason


def test_bind_address_flag(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_node(root, hardened=True)
    manifest = root / "etc/kubernetes/manifests/kube-apiserver.yaml"
    pod = yaml.safe_load(manifest.read_text())
    command = [a for a in pod["spec"]["containers"][0]["command"] if not a.startswith("--bind-address")]
    pod["spec"]["containers"][0]["command"] = [*command, "--bind-address=10.0.0.10"]
    manifest.write_text(yaml.safe_dump(pod))
    result = scan_texts(tmp_path, {}, only=("KH-CP-041",), node={"root": str(root)})
    assert result_of(result, "KH-CP-041").status is Status.PASS
    pod["spec"]["containers"][0]["command"] = [*command, "--bind-address=0.0.0.0"]
    manifest.write_text(yaml.safe_dump(pod))
    result = scan_texts(tmp_path / "b", {}, only=("KH-CP-041",), node={"root": str(root)})
    [finding] = result_of(result, "KH-CP-041").findings
    assert finding.message.startswith("kube-apiserver listens on every interface (--bind-address 0.0.0.0)")


@pytest.mark.parametrize("kind", POD_KINDS)
def test_node_port_names_the_workloads_of_every_kind(tmp_path: Path, kind: str) -> None:
    app = workload(kind, "admin", "shop", {"app": "admin"}, {"containers": [{"name": "c", "image": "x:1"}]})
    other = workload(kind, "other", "other-ns", {"app": "admin"}, {"containers": [{"name": "c", "image": "x:1"}]})
    svc = service("admin", "NodePort", {"app": "admin"}, externalTrafficPolicy="Local")
    result = scan(tmp_path, app, other, svc)
    assert messages(result, "KH-NODE-020") == [
        f"NodePort Service 'admin' opens node port(s) allocated on every node to {kind} admin "
        "(externalTrafficPolicy Local)"]


@pytest.mark.parametrize("kind", POD_KINDS)
def test_host_network_and_host_port_listeners_of_every_kind(tmp_path: Path, kind: str) -> None:
    spec = {"hostNetwork": True, "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 9100}]}],
            "initContainers": [{"name": "i", "image": "x:1", "ports": [{"containerPort": 80, "hostPort": 8080}]}]}
    result = scan(tmp_path, workload(kind, "exp", "mon", {"app": "exp"}, spec))
    assert sorted(messages(result, "KH-NODE-020")) == [
        "container 'c' listens on the node's address, port 9100 (hostNetwork)",
        "container 'i' listens on node port 8080 (hostPort)"]


def test_load_balancer_without_node_ports_and_clusterip(tmp_path: Path) -> None:
    result = scan(tmp_path, service("a", "LoadBalancer", {"app": "a"}, allocateLoadBalancerNodePorts=False),
                  service("b", "ClusterIP", {"app": "b"}))
    assert result_of(result, "KH-NODE-020").status is Status.PASS


NODES = (node("edge-1", {"pool": "edge"}, [{"key": "pool", "value": "edge", "effect": "NoSchedule"}]),
         node("core-1", {"pool": "core"}))
EDGE = {"nodeSelector": {"pool": "edge"},
        "tolerations": [{"key": "pool", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}]}


@pytest.mark.parametrize("kind", POD_KINDS)
def test_internet_facing_next_to_privileged(tmp_path: Path, kind: str) -> None:
    front = workload(kind, "web", "shop", {"app": "web"}, {"containers": [{"name": "c", "image": "x:1"}]})
    priv = workload(kind, "agent", "ops", {"app": "agent"},
                    {"containers": [{"name": "c", "image": "x:1", "securityContext": {"privileged": True}}]})
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}
    svc = service("web", "ClusterIP", {"app": "web"})
    result = scan(tmp_path, *NODES, front, priv, ingress, svc)
    assert messages(result, "KH-NODE-021") == [
        f"Internet-facing {kind} 'web' can run on the same nodes as {kind} agent (privileged container) on core-1"]
    pinned = workload(kind, "web", "shop", {"app": "web"}, {**EDGE, "containers": [{"name": "c", "image": "x:1"}]})
    result = scan(tmp_path / "pinned", *NODES, pinned, priv, ingress, svc)
    assert result_of(result, "KH-NODE-021").status is Status.PASS


def test_secret_reading_service_account_counts_as_sensitive(tmp_path: Path) -> None:
    front = workload("Deployment", "web", "shop", {"app": "web"}, {"containers": [{"name": "c", "image": "x:1"}]})
    reader = workload("Deployment", "sync", "shop", {"app": "sync"},
                      {"serviceAccountName": "sync", "containers": [{"name": "c", "image": "x:1"}]})
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "shop"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "rb", "namespace": "shop"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": "sync", "namespace": "shop"}]}
    result = scan(tmp_path, *NODES, front, reader, role, binding, service("web", "LoadBalancer", {"app": "web"}))
    [message] = messages(result, "KH-NODE-021")
    assert "Deployment sync (ServiceAccount sync can read Secrets) on core-1" in message


def test_placement_needs_nodes_and_exposed_workloads(tmp_path: Path) -> None:
    front = workload("Deployment", "web", "shop", {"app": "web"}, {"containers": [{"name": "c", "image": "x:1"}]})
    result = scan(tmp_path, front, service("web", "LoadBalancer", {"app": "web"}))
    assert result_of(result, "KH-NODE-021").status is Status.NOT_ASSESSED
    result = scan(tmp_path / "b", *NODES, front)
    assert result_of(result, "KH-NODE-021").status is Status.NOT_ASSESSED
