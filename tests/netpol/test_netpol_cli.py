"""`kubeharden netpol` through click's CliRunner: answers, exit codes, formats, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubeharden.cli import cli

SHOP = """\
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: shop}
spec:
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      containers: [{name: web, image: registry.example/web:1.0, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: registry.example/api:1.0, ports: [{name: grpc, containerPort: 9000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: debug, namespace: shop, labels: {app: debug}}
spec:
  containers: [{name: sh, image: registry.example/tools:1.0}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-to-api, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: frontend}}}]
    ports: [{port: grpc}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: frontend-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app: frontend}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: api}}}]
  - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
    ports: [{port: 443}]
"""


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["netpol", *args], catch_exceptions=False)


def test_can_allowed_exits_0_and_names_the_rules(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/frontend", "--to", "shop/api", "--port", "9000/TCP")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("yes: shop/frontend -> shop/api on 9000/TCP")
    assert "shop/frontend-egress spec.egress[0]" in result.stdout
    assert "shop/frontend-to-api spec.ingress[0]" in result.stdout


def test_can_named_port_query(shop: Path) -> None:
    assert run("can", str(shop), "--from", "shop/frontend", "--to", "shop/api", "--port", "grpc").exit_code == 0
    assert run("can", str(shop), "--from", "shop/frontend", "--to", "shop/api", "--port", "http").exit_code == 1


def test_can_denied_exits_1_and_says_why(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/debug", "--to", "shop/api", "--port", "9000")
    assert result.exit_code == 1
    assert result.stdout.startswith("no: shop/debug -> shop/api")
    assert "no ingress rule admits shop/debug" in result.stdout
    assert "isolated by shop/default-deny" in result.stdout


def test_can_without_port_asks_for_any_traffic(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/frontend", "--to", "shop/api")
    assert result.exit_code == 0
    assert "allowed ports: TCP/9000" in result.stdout
    assert run("can", str(shop), "--from", "shop/api", "--to", "shop/frontend").exit_code == 1


def test_can_to_ip_metadata(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/frontend", "--to-ip", "169.254.169.254", "--port", "443",
                 "-f", "json")
    assert result.exit_code == 0  # 0.0.0.0/0 without except re-opens the metadata service
    data = json.loads(result.stdout)
    assert data["allowed"] is True
    assert data["allowed_by"][0]["policy"] == "shop/frontend-egress"
    assert data["allowed_by"][0]["rule"] == "spec.egress[1]"
    assert run("can", str(shop), "--from", "shop/frontend", "--to-ip", "169.254.169.254", "--port", "80"
               ).exit_code == 1
    assert run("can", str(shop), "--from", "shop/api", "--to-ip", "169.254.169.254").exit_code == 1


def test_can_from_ip(shop: Path) -> None:
    assert run("can", str(shop), "--from-ip", "203.0.113.7", "--to", "shop/frontend").exit_code == 1


def test_can_json_shape(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/debug", "--to", "shop/frontend", "-f", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["allowed"] is False
    assert data["source"] == "shop/debug" and data["destination"] == "shop/frontend"
    assert data["egress"]["isolated"] is True and data["ingress"]["isolated"] is True
    assert data["ingress"]["policies"] == ["shop/default-deny"]
    assert data["allowed_by"] == [] and data["errors"] == []


def test_kind_qualified_reference(shop: Path) -> None:
    assert run("can", str(shop), "--from", "shop/Deployment/frontend", "--to", "shop/deployment/api",
               "--port", "9000").exit_code == 0


@pytest.mark.parametrize("args", [
    ("--from", "shop/nope", "--to", "shop/api"),
    ("--from", "shop/frontend", "--to", "shop/api", "--port", "99999"),
    ("--from", "shop/frontend", "--to", "shop/api", "--port", "80/ICMP"),
    ("--from", "shop/frontend", "--to", "shop/api", "--to-ip", "1.2.3.4"),
    ("--from", "shop/frontend"),
    ("--from", "shop/frontend", "--to-ip", "not-an-ip"),
    ("--from-ip", "1.1.1.1", "--to-ip", "2.2.2.2"),
])
def test_can_errors_exit_2(shop: Path, args: tuple[str, ...]) -> None:
    result = run("can", str(shop), *args)
    assert result.exit_code == 2, result.output


def test_unknown_reference_lists_candidates(shop: Path) -> None:
    result = run("can", str(shop), "--from", "shop/nope", "--to", "shop/api")
    assert result.exit_code == 2
    assert "no pod or workload 'nope' in namespace 'shop'" in result.stderr
    assert "api" in result.stderr


def test_input_errors_name_file_and_line_and_exit_2(shop: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    result = run("can", str(shop), str(broken), "--from", "shop/frontend", "--to", "shop/api")
    assert result.exit_code == 2
    assert "broken.yaml:" in result.stderr
    assert result.stdout.startswith("yes:")  # the answer is still given


def test_rejected_policy_is_reported_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SHOP + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: shop}
spec:
  podSelector: {}
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8}
      podSelector: {}
""")
    result = run("status", str(path))
    assert result.exit_code == 0
    assert "NetworkPolicy shop/broken ignored" in result.stderr
    line = SHOP.count("\n") + 9  # the peer combining ipBlock with podSelector
    assert f"bad.yaml:{line}:" in result.stderr


def test_status_table_and_json(shop: Path) -> None:
    table = run("status", str(shop))
    assert table.exit_code == 0
    assert "Deployment/frontend" in table.stdout and "default-deny" in table.stdout
    data = json.loads(run("status", str(shop), "-f", "json").stdout)
    rows = {row["name"]: row for row in data["endpoints"]}
    assert set(rows) == {"frontend", "api", "debug"}
    assert rows["api"]["ingress_isolated"] and rows["api"]["egress_isolated"]
    assert [p["name"] for p in rows["api"]["policies"]] == ["shop/default-deny", "shop/frontend-to-api"]


def test_status_without_policies_is_open(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i}]\n")
    data = json.loads(run("status", str(path), "-f", "json").stdout)
    assert data["endpoints"] == [{
        "endpoint": "default/p", "kind": "Pod", "namespace": "default", "name": "p",
        "ingress_isolated": False, "egress_isolated": False, "policies": [], "host_network": False,
    }]


def test_matrix_formats(shop: Path) -> None:
    data = json.loads(run("matrix", str(shop), "-f", "json").stdout)
    [block] = data["namespaces"]
    pairs = {(p["source"], p["destination"]): p for p in block["pairs"]}
    assert len(pairs) == 9
    assert pairs[("shop/frontend", "shop/api")]["allowed"] is True
    assert pairs[("shop/frontend", "shop/api")]["ports"] == "TCP/9000"
    assert pairs[("shop/api", "shop/frontend")]["allowed"] is False
    assert pairs[("shop/debug", "shop/api")]["allowed"] is False

    rows = list(csv.DictReader(io.StringIO(run("matrix", str(shop), "-f", "csv").stdout)))
    allowed = {(r["source"], r["destination"]) for r in rows if r["allowed"] == "yes"}
    assert allowed == {("shop/frontend", "shop/api")}

    dot = run("matrix", str(shop), "-f", "dot").stdout
    assert dot.startswith("digraph netpol {")
    assert '"shop/frontend" -> "shop/api" [label="TCP/9000"];' in dot
    assert '"shop/api" -> "shop/frontend"' not in dot

    table = run("matrix", str(shop), "-n", "shop")
    assert table.exit_code == 0 and "namespace shop" in table.stdout


def test_matrix_unknown_namespace_is_empty(shop: Path) -> None:
    data = json.loads(run("matrix", str(shop), "-n", "nowhere", "-f", "json").stdout)
    assert data["namespaces"] == [{"namespace": "nowhere", "endpoints": [], "pairs": []}]
    table = run("matrix", str(shop), "-n", "nowhere")
    assert table.exit_code == 0
    assert table.stdout.strip() == "namespace nowhere: no pods or workloads in the input"


def test_no_paths_is_a_usage_error() -> None:
    assert run("status").exit_code == 2
