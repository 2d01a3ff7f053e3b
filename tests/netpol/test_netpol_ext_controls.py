"""KH-NET-* and `kubeharden netpol` with Cilium and admin network policies (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from test_netpol_controls import NS, deploy, messages, run

from kubeharden.cli import cli
from kubeharden.model import Status

SHOP = NS.format(name="shop") + "---\n" + deploy("web") + "---\n" + deploy("api", labels="{app: api}")

CCNP_DEFAULT_DENY = """---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: default-deny}
spec:
  endpointSelector: {}
  ingress:
  - {}
  egress:
  - toEndpoints: [{matchLabels: {k8s-app: kube-dns, "k8s:io.kubernetes.pod.namespace": kube-system}}]
    toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]
"""

CNP_WEB = """---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
  - fromEntities: [world]
    toPorts: [{ports: [{port: "8080"}]}]
"""


def test_net_005_pods_selected_by_cilium_policies_are_selected() -> None:
    outcome = run("KH-NET-005", SHOP + CNP_WEB)
    assert outcome.status is Status.FAIL
    assert messages(outcome) == ["Deployment 'api' in namespace 'shop' is selected by no NetworkPolicy: "
                                 "ingress and egress are open"]
    assert run("KH-NET-005", SHOP + CCNP_DEFAULT_DENY).status is Status.PASS


def test_net_004_clusterwide_cilium_default_deny_isolates_the_namespace() -> None:
    assert run("KH-NET-004", SHOP + CCNP_DEFAULT_DENY).status is Status.PASS
    # a namespace without pods in the input: the empty endpointSelector covers its future pods too
    assert run("KH-NET-004", NS.format(name="empty") + CCNP_DEFAULT_DENY).status is Status.PASS
    ingress_only = CCNP_DEFAULT_DENY.split("  egress:")[0]
    outcome = run("KH-NET-004", SHOP + ingress_only)
    assert outcome.status is Status.FAIL
    assert messages(outcome) == ["namespace 'shop' has no default deny: egress of api, web not isolated"]
    # an enableDefaultDeny: false policy isolates nothing
    soft = ingress_only.replace("spec:\n", "spec:\n  enableDefaultDeny: {ingress: false}\n")
    assert "ingress of api, web not isolated" in messages(run("KH-NET-004", SHOP + soft))[0]


def test_net_004_admin_baseline_deny_isolates() -> None:
    banp = """---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{name: deny, action: Deny, from: [{namespaces: {}}]}]
  egress: [{name: deny, action: Deny, to: [{namespaces: {}}]}]
"""
    assert run("KH-NET-004", SHOP + banp).status is Status.PASS
    assert run("KH-NET-004", NS.format(name="empty") + banp).status is Status.PASS


def test_net_008_metadata_through_cilium_world_and_beyond_l4() -> None:
    world = """---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{}]
  egress: [{toEntities: [world]}]
"""
    outcome = run("KH-NET-008", SHOP + world)
    assert outcome.status is Status.FAIL
    assert all("shop/CiliumNetworkPolicy/out spec.egress[0]" in m for m in messages(outcome))
    fqdn = world.replace("toEntities: [world]", "toFQDNs: [{matchName: api.example.com}]")
    assert run("KH-NET-008", SHOP + fqdn).status is Status.PASS
    denied = world.replace("  egress: [{toEntities: [world]}]\n",
                           "  egress: [{toEntities: [world]}]\n  egressDeny: [{toCIDR: [169.254.169.254/32, "
                           "fd00:ec2::254/128]}]\n")
    assert run("KH-NET-008", SHOP + denied).status is Status.PASS


def test_netpol_commands_understand_cilium_and_admin_policies(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP + CCNP_DEFAULT_DENY + CNP_WEB)
    result = CliRunner().invoke(cli, ["netpol", "status", str(path), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)["endpoints"]}
    assert rows["web"]["ingress_isolated"] and rows["web"]["egress_isolated"]
    assert {p["name"] for p in rows["web"]["policies"]} == {"CiliumClusterwideNetworkPolicy/default-deny",
                                                           "shop/CiliumNetworkPolicy/web"}
    table = CliRunner().invoke(cli, ["netpol", "status", str(path)])
    assert "CiliumNetworkPolicy/web" in table.stdout
    can = CliRunner().invoke(cli, ["netpol", "can", str(path), "--from-ip", "203.0.113.7", "--to", "shop/web",
                                   "--port", "8080"])
    assert can.exit_code == 0 and can.stdout.startswith("yes")
    dns = CliRunner().invoke(cli, ["netpol", "can", str(path), "--from", "shop/api", "--to-ip", "192.0.2.53",
                                   "--port", "53/UDP"])
    assert dns.exit_code == 1
    matrix = CliRunner().invoke(cli, ["netpol", "matrix", str(path), "-n", "shop", "-f", "json"])
    assert matrix.exit_code == 0
    [block] = json.loads(matrix.stdout)["namespaces"]
    assert [(p["source"], p["destination"], p["allowed"]) for p in block["pairs"]] == [
        ("shop/api", "shop/api", False), ("shop/api", "shop/web", False),
        ("shop/web", "shop/api", False), ("shop/web", "shop/web", False)]
    beyond = CliRunner().invoke(cli, ["netpol", "can", str(path), "--from", "shop/api", "--to", "shop/web",
                                      "--port", "8080"])
    assert beyond.exit_code == 1  # web admits only the world; api's egress admits only DNS
    dns_pod = CliRunner().invoke(cli, ["netpol", "can", str(path), "--from", "shop/api", "--to",
                                       "kube-system/coredns", "--port", "53/UDP"])
    assert dns_pod.exit_code == 2  # no such workload in the input: an error, not an answer


def test_net_007_reports_invalid_cilium_and_admin_policies() -> None:
    bad = """apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bad-entity, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{fromEntities: [everywhere]}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-priority}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
"""
    outcome = run("KH-NET-007", bad)
    assert outcome.status is Status.FAIL
    assert sorted(messages(outcome)) == [
        "AdminNetworkPolicy no-priority would be rejected by the API server: priority must be a number from 0 "
        "to 1000",
        "CiliumNetworkPolicy shop/bad-entity would be rejected by the API server: unknown entity 'everywhere'",
    ]
