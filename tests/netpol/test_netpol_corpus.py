"""`kubeharden netpol` on real manifests of the shared corpus: pair answers checked by hand against
the policies' YAML (the file:line of the deciding rule is in each case's comment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubeharden.cli import cli

KUBE_PROMETHEUS = "corpus/real/kube-prometheus/manifests"
ARGO_CD = "corpus/real/argo-cd/manifests/install.yaml"
MICROSERVICES = "corpus/real/microservices-demo/release/kubernetes-manifests.yaml"
KUBEFLOW = "corpus/real/kubeflow-manifests/common"

# The Prometheus pods are created by the operator from the Prometheus resource; this stand-in has the
# labels of prometheus-prometheus.yaml spec.podMetadata.
PROMETHEUS_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: prometheus-k8s-0
  namespace: monitoring
  labels:
    app.kubernetes.io/component: prometheus
    app.kubernetes.io/instance: k8s
    app.kubernetes.io/name: prometheus
    app.kubernetes.io/part-of: kube-prometheus
spec:
  containers:
  - {name: prometheus, image: quay.io/prometheus/prometheus:v3.0.0, ports: [{name: web, containerPort: 9090}]}
"""


def netpol(*args: str) -> Result:
    return CliRunner().invoke(cli, ["netpol", *args], catch_exceptions=False)


def matrix_pairs(paths: list[Path], namespace: str) -> dict[tuple[str, str], dict]:
    result = netpol("matrix", *map(str, paths), "-n", namespace, "-f", "json")
    assert result.exit_code == 0, result.output
    [block] = json.loads(result.stdout)["namespaces"]
    return {(p["source"].split("/")[-1], p["destination"].split("/")[-1]): p for p in block["pairs"]}


def rules(pair: dict) -> set[str]:
    return {f"{m['policy']} {m['rule']}" for m in pair["allowed_by"]}


def test_kube_prometheus_matrix(shared_dir: Path) -> None:
    pairs = matrix_pairs([shared_dir / KUBE_PROMETHEUS], "monitoring")
    assert len(pairs) == 36  # 6 workloads; Prometheus and Alertmanager pods come from custom resources
    # prometheusAdapter-networkPolicy.yaml:14-15 `ingress: [{}]`, grafana-networkPolicy.yaml:12-13 `egress: [{}]`
    adapter = pairs[("grafana", "prometheus-adapter")]
    assert adapter["allowed"] and adapter["ports"] == "all"
    assert rules(adapter) == {"monitoring/grafana spec.egress[0]", "monitoring/prometheus-adapter spec.ingress[0]"}
    # kubeStateMetrics-networkPolicy.yaml:15-23 admits only app.kubernetes.io/name=prometheus (8443, 9443)
    assert not pairs[("grafana", "kube-state-metrics")]["allowed"]
    # nodeExporter-networkPolicy.yaml:15-21: only prometheus, 9100
    assert not pairs[("prometheus-operator", "node-exporter")]["allowed"]
    # blackboxExporter-networkPolicy.yaml:15-23: a pod is not its own peer unless a rule selects it
    assert not pairs[("blackbox-exporter", "blackbox-exporter")]["allowed"]
    # every destination but the adapter is isolated for ingress and admits only prometheus
    assert {dst for (_, dst), pair in pairs.items() if pair["allowed"]} == {"prometheus-adapter"}


def test_kube_prometheus_with_a_prometheus_pod(shared_dir: Path, tmp_path: Path) -> None:
    stand_in = tmp_path / "prometheus-pod.yaml"
    stand_in.write_text(PROMETHEUS_POD)
    pairs = matrix_pairs([shared_dir / KUBE_PROMETHEUS, stand_in], "monitoring")
    # kubeStateMetrics-networkPolicy.yaml:15-23: from prometheus on 8443 and 9443
    scrape = pairs[("prometheus-k8s-0", "kube-state-metrics")]
    assert scrape["allowed"] and scrape["ports"] == "TCP/8443, TCP/9443"
    assert rules(scrape) == {"monitoring/prometheus-k8s spec.egress[0]",
                             "monitoring/kube-state-metrics spec.ingress[0]"}
    # prometheus-networkPolicy.yaml:32-38: grafana may query prometheus on 9090 only (8080 is for prometheus)
    query = pairs[("grafana", "prometheus-k8s-0")]
    assert query["allowed"] and query["ports"] == "TCP/9090"
    assert "monitoring/prometheus-k8s spec.ingress[2]" in rules(query)
    paths = [str(shared_dir / KUBE_PROMETHEUS), str(stand_in)]
    assert netpol("can", *paths, "--from", "monitoring/grafana", "--to", "monitoring/prometheus-k8s-0",
                  "--port", "web").exit_code == 0  # the named container port resolves to 9090
    assert netpol("can", *paths, "--from", "monitoring/grafana", "--to", "monitoring/prometheus-k8s-0",
                  "--port", "8080").exit_code == 1
    node = netpol("can", *paths, "--from", "monitoring/prometheus-k8s-0", "--to", "monitoring/node-exporter",
                  "--port", "9100")
    assert node.exit_code == 0 and "hostNetwork" in node.stdout


def test_argo_cd_matrix(shared_dir: Path) -> None:
    pairs = matrix_pairs([shared_dir / ARGO_CD], "default")  # install.yaml sets no namespace
    assert len(pairs) == 49
    # install.yaml:34391-34394 `from: [{namespaceSelector: {}}]` on 8084 admits every pod of every namespace
    dex_to_repo = pairs[("argocd-dex-server", "argocd-repo-server")]
    assert dex_to_repo["allowed"] and dex_to_repo["ports"] == "TCP/8084"
    assert rules(dex_to_repo) == {"default/argocd-repo-server-network-policy spec.ingress[1]"}
    # install.yaml:34375-34390 adds 8081 for argocd-server, -application-controller, -notifications-controller,
    # -applicationset-controller
    assert pairs[("argocd-server", "argocd-repo-server")]["ports"] == "TCP/8081, TCP/8084"
    # install.yaml:34295-34308: 5556-5557 from argocd-server, 5558 from every namespace
    assert pairs[("argocd-server", "argocd-dex-server")]["ports"] == "TCP/5556-5558"
    # install.yaml:34346-34358: redis admits server, repo-server and application-controller on 6379 only
    assert pairs[("argocd-repo-server", "argocd-redis")]["ports"] == "TCP/6379"
    assert not pairs[("argocd-applicationset-controller", "argocd-redis")]["allowed"]
    assert not pairs[("argocd-dex-server", "argocd-redis")]["allowed"]
    # install.yaml:34410-34411 `ingress: [{}]`
    assert {pair["ports"] for (_, dst), pair in pairs.items() if dst == "argocd-server"} == {"all"}


def test_argo_cd_can_explains_the_port(shared_dir: Path) -> None:
    path = str(shared_dir / ARGO_CD)
    denied = netpol("can", path, "--from", "argocd-dex-server", "--to", "argocd-repo-server", "--port", "8081")
    assert denied.exit_code == 1
    assert "rules admit default/argocd-dex-server only on TCP/8084, not on 8081/TCP" in denied.stdout


def test_microservices_demo_has_no_isolation(shared_dir: Path) -> None:
    # the release manifests ship no NetworkPolicy: every pod reaches every pod on every port
    pairs = matrix_pairs([shared_dir / MICROSERVICES], "default")
    assert len(pairs) == 12 * 12
    assert all(p["allowed"] and p["ports"] == "all" for p in pairs.values())
    assert pairs[("frontend", "cartservice")]["allowed_by"] == []


@pytest.mark.parametrize(("source", "destination", "port", "allowed"), [
    # allow-istio-gateways-to-activator.yaml:14-28: namespace istio-system AND app in (gateways), TCP/8012
    ("istio-system/istio-ingressgateway", "knative-serving/activator", "8012", True),
    ("istio-system/istio-ingressgateway", "knative-serving/activator", "9090", False),
    ("istio-system/istiod", "knative-serving/activator", "8012", False),
    # allow-knative-to-istio-gateways.yaml:15-22: namespaceSelector kubernetes.io/metadata.name=knative-serving
    ("knative-serving/activator", "istio-system/istio-ingressgateway", "8080", True),
    ("knative-serving/activator", "istio-system/istio-ingressgateway", "8443", False),
    # knative-serving default-allow-same-namespace.yaml:8-10: `from: [{podSelector: {}}]`
    ("knative-serving/controller", "knative-serving/activator", "9090", True),
])
def test_kubeflow_namespace_selectors(shared_dir: Path, source: str, destination: str, port: str,
                                      allowed: bool) -> None:
    base = shared_dir / KUBEFLOW
    paths = [base / "knative/knative-serving/base", base / "istio/istio-namespace/base",
             base / "istio/istio-install/base/install.yaml"]
    result = netpol("can", *map(str, paths), "--from", source, "--to", destination, "--port", port)
    assert result.exit_code == (0 if allowed else 1), result.output
