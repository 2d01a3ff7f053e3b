"""Engine pieces: selectors, port sets, validation, lookups and the notes of a verdict."""

from __future__ import annotations

import pytest
from netpol_fixtures import inventory_of, model_of, scenario_yaml

from kubeharden.netpol import (
    ALL_PORTS,
    NO_PORTS,
    PolicyError,
    PortSet,
    model_for,
    parse_address,
    parse_port_query,
    parse_selector,
)


def test_selector_semantics() -> None:
    sel = parse_selector({"matchLabels": {"app": "web"},
                          "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]},
                                               {"key": "canary", "operator": "DoesNotExist"}]}, ())
    assert sel.matches({"app": "web"})
    assert sel.matches({"app": "web", "env": "prod"})
    assert not sel.matches({"app": "web", "env": "dev"})
    assert not sel.matches({"app": "web", "canary": "true"})
    assert not sel.matches({"app": "api"})
    assert parse_selector({}, ()).selects_everything and parse_selector(None, ()).matches({"x": "y"})
    assert sel.describe() == "app=web,env notin (dev),!canary"


@pytest.mark.parametrize(("raw", "message"), [
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "needs at least one value"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "takes no values"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "without a key"),
    ({"matchLabels": ["a"]}, "not a mapping"),
])
def test_selector_errors(raw: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_selector(raw, ("spec", "podSelector"))


def test_port_sets() -> None:
    a = PortSet.of([("TCP", 80, 80), ("TCP", 81, 90), ("UDP", 53, 53)])
    assert a.ranges == (("TCP", 80, 90), ("UDP", 53, 53))
    assert a.describe() == "TCP/80-90, UDP/53"
    assert a.intersect(PortSet.of([("TCP", 85, 100)])).describe() == "TCP/85-90"
    assert a.intersect(PortSet.of([("SCTP", 1, 65535)])).empty
    assert ALL_PORTS.everything and ALL_PORTS.describe() == "all" and NO_PORTS.describe() == "none"
    assert a.union(ALL_PORTS) == ALL_PORTS
    assert PortSet.of([("UDP", 1, 65535)]).describe() == "UDP/*"


def test_port_queries_and_addresses() -> None:
    assert parse_port_query("443").describe() == "443/TCP"
    assert parse_port_query("53/udp").describe() == "53/UDP"
    assert parse_port_query("http/SCTP").port == "http"
    for bad in ("0", "70000", "80/ICMP", ""):
        with pytest.raises(ValueError):
            parse_port_query(bad)
    assert str(parse_address("169.254.169.254")) == "169.254.169.254/32"
    with pytest.raises(ValueError):
        parse_address("metadata")


POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: p, namespace: ns}}\nspec: {spec}\n"


@pytest.mark.parametrize(("spec", "message"), [
    ("{ingress: [{from: [{}]}]}", "sets none of"),
    ("{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}]}]}", "cannot be combined"),
    ("{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/8]}}]}]}", "not a strict subset"),
    ("{ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]}", "not a strict subset"),
    ("{ingress: [{from: [{ipBlock: {cidr: not-a-cidr}}]}]}", "invalid CIDR"),
    ("{ingress: [{ports: [{port: 80, protocol: ICMP}]}]}", "unsupported protocol"),
    ("{ingress: [{ports: [{port: 0}]}]}", "outside 1-65535"),
    ("{ingress: [{ports: [{port: 90, endPort: 80}]}]}", "endPort 80"),
    ("{policyTypes: [Inbound]}", "unknown policy type"),
    ("{ingress: {from: []}}", "ingress is not a list"),
    # port names are validated like the API server does; these were once read as every port / port 80
    ("{ingress: [{ports: [{port: ''}]}]}", "not a valid port name"),
    ("{ingress: [{ports: [{port: '80'}]}]}", "not a valid port name"),
    ("{ingress: [{ports: [{port: Web}]}]}", "not a valid port name"),
    ("{ingress: [{ports: [{port: web--ui}]}]}", "not a valid port name"),
    ("{ingress: [{ports: [{port: metrics-endpoint}]}]}", "not a valid port name"),
])
def test_rejected_policies(spec: str, message: str) -> None:
    model = model_of(POLICY.format(spec=spec))
    assert not model.policies
    [problem] = model.problems
    assert message in problem.message


def test_valid_port_names_are_kept() -> None:
    model = model_of(POLICY.format(spec="{ingress: [{ports: [{port: http-alt}, {port: h2c}, {port: 9x}]}]}"))
    assert not model.problems
    assert [p.port for p in model.policies[0].ingress[0].ports] == ["http-alt", "h2c", "9x"]


def test_other_networkpolicy_groups_are_not_read() -> None:
    model = model_of("apiVersion: crd.projectcalico.org/v1\nkind: NetworkPolicy\n"
                     "metadata: {name: p, namespace: ns}\nspec: {selector: all()}\n")
    assert not model.policies and not model.problems


PODS = """
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ns, labels: {app: web}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns}
spec:
  selector: {matchLabels: {app: web2}}
  template:
    metadata: {labels: {app: web2}}
    spec: {hostNetwork: true, containers: [{name: c, image: i}]}
"""


def test_ambiguous_and_qualified_references() -> None:
    model = model_of(PODS)
    with pytest.raises(LookupError, match="ambiguous"):
        model.find("ns/web")
    assert model.find("ns/Pod/web").kind == "Pod"
    assert model.display_name(model.find("ns/deployment/web")) == "ns/Deployment/web"
    with pytest.raises(LookupError, match="expected NAMESPACE/NAME"):
        model.find("a/b/c/d")


def test_notes_for_host_network_and_ip_blocks() -> None:
    text = PODS + """---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: out, namespace: ns}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]
"""
    model = model_of(text)
    verdict = model.can(model.find("ns/Pod/web"), model.find("ns/Deployment/web"))
    assert not verdict.allowed
    assert any("hostNetwork" in n for n in verdict.notes)
    assert any("implementation-defined" in n for n in verdict.notes)


def test_model_is_built_once_per_inventory() -> None:
    inventory = inventory_of(PODS)
    assert model_for(inventory) is model_for(inventory)
    assert model_for(inventory_of(PODS)) is not model_for(inventory)


def test_disjoint_ports_are_explained() -> None:
    text = PODS + """---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: ns, labels: {app: db}}
spec: {containers: [{name: c, image: i}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-out, namespace: ns}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress: [{ports: [{port: 443}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-in, namespace: ns}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{ports: [{port: 5432}]}]
"""
    model = model_of(text)
    verdict = model.can(model.find("ns/Pod/web"), model.find("ns/db"))
    assert not verdict.allowed
    assert verdict.reasons[-1] == ("the ports egress allows (TCP/443) and the ports ingress allows (TCP/5432) "
                                   "do not overlap")
    named = model.can(model.find("ns/Pod/web"), model.find("ns/db"), parse_port_query("postgres"))
    assert not named.allowed
    assert any("no container port named 'postgres'" in n for n in named.notes)


NAMESPACE_SELECTOR_SCENARIO = {
    "pods": {"shop/api": {"labels": {"app": "api"}}, "monitoring/scraper": {"labels": {"app": "scraper"}},
             "ops/agent": {"labels": {"app": "agent"}}},
    "policies": """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-monitoring, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {purpose: monitoring}}}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ops}}}]
    ports: [{port: 9090}]
""",
}


def test_unknown_namespace_labels_are_noted_not_assumed() -> None:
    model = model_of(scenario_yaml(NAMESPACE_SELECTOR_SCENARIO))
    verdict = model.can(model.find("monitoring/scraper"), model.find("shop/api"))
    assert not verdict.allowed  # only kubernetes.io/metadata.name is known for 'monitoring'
    assert any("Namespace object of 'monitoring' is not in the input" in n for n in verdict.notes)
    with_namespace = {**NAMESPACE_SELECTOR_SCENARIO, "namespaces": {"monitoring": {"purpose": "monitoring"}}}
    labelled = model_of(scenario_yaml(with_namespace))
    verdict = labelled.can(labelled.find("monitoring/scraper"), labelled.find("shop/api"))
    assert verdict.allowed and not verdict.notes
    # 'ops' is admitted on 9090 by its name label; on other ports only the purpose=monitoring peer
    # could admit it, if its real Namespace carried that label
    ops = model.can(model.find("ops/agent"), model.find("shop/api"), parse_port_query("8080"))
    assert not ops.allowed
    assert any("Namespace object of 'ops'" in n for n in ops.notes)
    assert model.can(model.find("ops/agent"), model.find("shop/api"), parse_port_query("9090")).allowed
