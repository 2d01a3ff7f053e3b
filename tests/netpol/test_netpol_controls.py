"""The network and resource controls (KH-NET-*): good/bad cases and not_assessed rules."""

from __future__ import annotations

import pytest
from netpol_fixtures import inventory_of

from kubeharden.catalog import Settings, all_controls, get_control
from kubeharden.engine import ControlResult, Engine
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status

# the NetworkPolicy engine's controls; the mesh controls (KH-NET-040/041, controls/mesh.py) judge a
# whole cluster and are tested in tests/guidance and by the catalog's example tests
NET_CONTROLS = [c for c in all_controls() if c.module == "kubeharden.controls.network"]


def run(control_id: str, text: str, as_cluster: bool = False) -> ControlResult:
    ctrl = get_control(control_id)
    assert ctrl is not None
    result = Engine([ctrl], Settings(as_cluster=as_cluster)).run(inventory_of(text), profile="nsa")
    assert not result.errors, result.errors
    [outcome] = result.controls
    return outcome


def messages(outcome: ControlResult) -> list[str]:
    return [f.message for f in outcome.findings]


NS = "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"


def deploy(name: str, ns: str | None = "shop", labels: str = "{app: web}", extra: str = "",
           kind: str = "Deployment") -> str:
    namespace = f", namespace: {ns}" if ns else ""
    return f"""apiVersion: apps/v1
kind: {kind}
metadata: {{name: {name}{namespace}}}
spec:
  selector: {{matchLabels: {labels}}}
  template:
    metadata: {{labels: {labels}}}
    spec:
{extra}      containers:
      - name: main
        image: registry.example/{name}:1.0
        resources: {{requests: {{cpu: 10m, memory: 10Mi}}, limits: {{cpu: 100m, memory: 100Mi}}}}
"""


def policy(name: str, spec: str, ns: str = "shop") -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\n" \
           f"spec:\n{body}\n"


def docs(*parts: str) -> str:
    return "\n---\n".join(parts)


DENY_ALL = policy("deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]")


# --- every example of every KH-NET control, also without --as-cluster ---------------------------

EXAMPLES = [(c, i, ex) for c in NET_CONTROLS for i, ex in enumerate(c.examples)]


def test_all_expected_controls_exist() -> None:
    assert [c.id for c in NET_CONTROLS] == [f"KH-NET-{i:03d}" for i in range(1, 17)]
    for c in NET_CONTROLS:
        assert "nsa" in c.profiles and c.guidance


@pytest.mark.parametrize(("control", "index", "example"), EXAMPLES,
                         ids=[f"{c.id}-{'bad' if ex.bad else 'good'}{i}" for c, i, ex in EXAMPLES])
def test_examples_without_as_cluster(control, index, example) -> None:
    loaded = load_bytes(example.yaml.encode(), f"{control.id}-{index}.yaml", LoadContext(), keep_text=True)
    result = Engine([control], Settings()).run(Inventory(loaded.resources), profile="nsa")
    [outcome] = result.controls
    if example.bad:
        assert outcome.status is Status.FAIL, outcome.reason
    else:
        assert outcome.status is Status.PASS, (outcome.reason, messages(outcome))


# --- judging absences -------------------------------------------------------------------------

ABSENCE_CONTROLS = ["KH-NET-004", "KH-NET-005", "KH-NET-008", "KH-NET-012", "KH-NET-013"]


@pytest.mark.parametrize("control_id", ABSENCE_CONTROLS)
def test_one_deployment_file_is_not_judged_for_absences(control_id: str) -> None:
    outcome = run(control_id, deploy("web"))
    assert outcome.status is Status.NOT_ASSESSED
    assert "--as-cluster" in (outcome.reason or "")


@pytest.mark.parametrize("control_id", ABSENCE_CONTROLS)
def test_as_cluster_judges_the_same_file(control_id: str) -> None:
    assert run(control_id, deploy("web"), as_cluster=True).status is Status.FAIL


@pytest.mark.parametrize("control_id", ABSENCE_CONTROLS)
def test_namespace_object_makes_its_namespace_judged(control_id: str) -> None:
    assert run(control_id, docs(NS.format(name="shop"), deploy("web"))).status is Status.FAIL


def test_only_namespaces_in_the_input_are_judged() -> None:
    text = docs(NS.format(name="shop"), deploy("web"), DENY_ALL, deploy("other", ns="elsewhere"))
    outcome = run("KH-NET-004", text)
    assert outcome.status is Status.PASS
    # KH-NET-005: the unjudged namespace keeps it from passing
    assert run("KH-NET-005", text).status is Status.NOT_ASSESSED
    assert run("KH-NET-005", text, as_cluster=True).status is Status.FAIL


CLUSTER_SCOPED = """apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: fast}
provisioner: ebs.csi.aws.com
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: letsencrypt}
spec: {acme: {server: https://acme.example/directory}}
"""


@pytest.mark.parametrize("control_id", ["KH-NET-004", "KH-NET-012", "KH-NET-013"])
def test_cluster_scoped_objects_do_not_put_default_under_judgement(control_id: str) -> None:
    text = docs(CLUSTER_SCOPED, NS.format(name="shop"), deploy("web"))
    outcome = run(control_id, text, as_cluster=True)
    assert outcome.status is Status.FAIL
    assert all("'default'" not in m for m in messages(outcome)), messages(outcome)
    # a namespaced object without a namespace does land in default
    assert any("'default'" in m for m in messages(run(control_id, docs(text, deploy("x", ns=None)), as_cluster=True)))


# --- KH-NET-004 default deny (engine-judged) ----------------------------------------------------

def test_default_deny_judged_by_isolation_not_by_shape() -> None:
    # no podSelector: {} policy, but every pod is selected for both directions
    text = docs(NS.format(name="shop"), deploy("web", labels="{app: web}"), deploy("db", labels="{app: db}"),
                policy("web", "podSelector: {matchLabels: {app: web}}\npolicyTypes: [Ingress, Egress]"),
                policy("db", "podSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}\n"
                             "egress: [{to: [{podSelector: {}}]}]"))
    assert run("KH-NET-004", text).status is Status.PASS


def test_default_deny_missing_egress_is_reported() -> None:
    text = docs(NS.format(name="shop"), deploy("web"), policy("deny", "podSelector: {}"))
    outcome = run("KH-NET-004", text)
    assert outcome.status is Status.FAIL
    [msg] = messages(outcome)
    assert msg == "namespace 'shop' has no default deny: egress of web not isolated"


def test_default_deny_empty_namespace_needs_select_all() -> None:
    assert run("KH-NET-004", NS.format(name="shop")).status is Status.FAIL
    assert run("KH-NET-004", docs(NS.format(name="shop"), DENY_ALL)).status is Status.PASS


def test_default_deny_exempts_system_namespaces() -> None:
    outcome = run("KH-NET-004", docs(NS.format(name="kube-system"), deploy("coredns", ns="kube-system")))
    assert outcome.status is Status.NOT_ASSESSED


# --- KH-NET-005 unselected pods -------------------------------------------------------------------

def test_unselected_pod_is_named() -> None:
    text = docs(NS.format(name="shop"), deploy("web", labels="{app: web}"), deploy("db", labels="{app: db}"),
                policy("db", "podSelector: {matchLabels: {app: db}}"))
    outcome = run("KH-NET-005", text)
    assert outcome.status is Status.FAIL
    assert messages(outcome) == ["Deployment 'web' in namespace 'shop' is selected by no NetworkPolicy: "
                                 "ingress and egress are open"]
    assert outcome.findings[0].line is not None


# --- KH-NET-006 allow-all rules -------------------------------------------------------------------

def test_allow_all_rules() -> None:
    text = docs(
        policy("a", "podSelector: {}\npolicyTypes: [Egress]\negress: [{}]"),
        policy("b", "podSelector: {}\npolicyTypes: [Egress]\ningress: [{}]"),  # ignored: not an Ingress policy
        policy("c", "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: '::/0'}}]}]"),
        policy("d", "podSelector: {}\ningress: [{from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}]"),
        policy("e", "podSelector: {}\ningress: [{ports: [{port: 443}]}]"),
    )
    outcome = run("KH-NET-006", text)
    got = messages(outcome)
    assert len(got) == 3, got
    assert any("shop/a" in m and "to every pod and address on every port" in m for m in got)
    assert any("shop/c" in m and "::/0 without except" in m for m in got)
    assert any("shop/e" in m and "TCP/443" in m for m in got)


# --- KH-NET-007 ineffective policies ------------------------------------------------------------

def test_ineffective_policies() -> None:
    text = docs(
        policy("bad-op", "podSelector: {matchExpressions: [{key: a, operator: Equals, values: [b]}]}"),
        policy("endport-named", "podSelector: {}\ningress: [{ports: [{port: http, endPort: 90}]}]"),
        policy("ingress-ignored", "podSelector: {}\npolicyTypes: [Egress]\ningress: [{}]"),
        policy("fine", "podSelector: {}\negress: []"),
    )
    got = messages(run("KH-NET-007", text))
    assert len(got) == 3, got
    assert any("bad-op" in m and "unknown operator 'Equals'" in m for m in got)
    assert any("endport-named" in m and "endPort needs a numeric port" in m for m in got)
    assert any("ingress-ignored" in m and "ignored because policyTypes is [Egress]" in m for m in got)


# --- KH-NET-008 metadata service ----------------------------------------------------------------

@pytest.mark.parametrize(("spec", "bad"), [
    ("podSelector: {}\npolicyTypes: [Egress]\negress: [{}]", True),
    ("podSelector: {}\npolicyTypes: [Egress]\negress: [{to: [{ipBlock: {cidr: 169.254.0.0/16}}]}]", True),
    ("podSelector: {}\npolicyTypes: [Egress]\negress: [{to: [{ipBlock: {cidr: '::/0'}}]}]", True),
    ("podSelector: {}\npolicyTypes: [Egress]", False),
    ("podSelector: {}\npolicyTypes: [Egress]\negress: [{to: [{namespaceSelector: {}}]}]", False),
    ("podSelector: {}\npolicyTypes: [Egress]\n"
     "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [169.254.169.254/32]}}]}]", False),
])
def test_metadata_reachability(spec: str, bad: bool) -> None:
    # the pod's egress is isolated, so the answer needs no Namespace object
    outcome = run("KH-NET-008", docs(deploy("web"), policy("egress", spec)))
    assert outcome.status is (Status.FAIL if bad else Status.PASS), (outcome.reason, messages(outcome))


def test_metadata_message_names_the_rule() -> None:
    outcome = run("KH-NET-008", docs(deploy("web"), policy("egress", "podSelector: {}\npolicyTypes: [Egress]\n"
                                                           "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0}}]}]")))
    assert messages(outcome) == ["Deployment 'web' can reach the metadata service (169.254.169.254) through "
                                 "shop/egress spec.egress[0]"]


def test_metadata_ignores_system_namespaces_and_host_network() -> None:
    text = docs(deploy("coredns", ns="kube-system"), deploy("agent", extra="      hostNetwork: true\n"))
    assert run("KH-NET-008", text, as_cluster=True).status is Status.NOT_ASSESSED


# --- KH-NET-001..003 namespaces -----------------------------------------------------------------

def test_system_component_recognition() -> None:
    text = docs(
        deploy("calico-node", ns="kube-system", kind="DaemonSet"),
        deploy("metrics", ns="kube-system", labels="{k8s-app: metrics}"),
        deploy("critical", ns="kube-system", extra="      priorityClassName: system-node-critical\n"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver-node1\n  namespace: kube-system\n"
        "  annotations: {kubernetes.io/config.mirror: abc}\nspec:\n  containers: [{name: a, image: b}]\n",
        deploy("shop-api", ns="kube-public"),
        deploy("webapp", ns="kube-system"),
        deploy("elsewhere", ns="shop"),
    )
    got = messages(run("KH-NET-001", text))
    assert got == [
        "Deployment 'shop-api' runs in kube-public but is not a recognised system component",
        "Deployment 'webapp' runs in kube-system but is not a recognised system component",
    ]


def test_system_component_recognition_survives_malformed_fields() -> None:
    # a list where a string belongs (priorityClassName, a label value) once crashed the control
    text = docs(
        deploy("odd", ns="kube-system", labels="{component: [etcd]}", extra="      priorityClassName: [x]\n"),
        deploy("odd-map", ns="kube-system", extra="      priorityClassName: {name: system-node-critical}\n"),
    )
    got = messages(run("KH-NET-001", text))
    assert got == [
        "Deployment 'odd' runs in kube-system but is not a recognised system component",
        "Deployment 'odd-map' runs in kube-system but is not a recognised system component",
    ]


def test_default_namespace() -> None:
    assert run("KH-NET-002", deploy("web", ns=None)).status is Status.NOT_ASSESSED
    assert run("KH-NET-002", deploy("web", ns=None), as_cluster=True).status is Status.FAIL
    assert run("KH-NET-002", deploy("web", ns="default")).status is Status.FAIL


def test_kube_prefix() -> None:
    got = messages(run("KH-NET-003", docs(NS.format(name="kube-system"), NS.format(name="kube-node-lease"),
                                          deploy("x", ns="kube-tools"))))
    assert got == ["namespace 'kube-tools' uses the reserved kube- prefix (no Namespace object in the input: "
                   "namespace inferred from its resources)"]


def test_kube_prefix_whole_cluster_knows_its_namespaces() -> None:
    # a manifest without metadata.namespace says nothing about namespaces; a whole cluster has 'default'
    assert run("KH-NET-003", deploy("x", ns=None)).status is Status.NOT_ASSESSED
    assert run("KH-NET-003", deploy("x", ns=None), as_cluster=True).status is Status.PASS


# --- KH-NET-009..011 TLS ----------------------------------------------------------------------------

def service(spec: str, annotations: str = "{}") -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: shop, annotations: {annotations}}}\n" \
           f"spec:\n{body}\n"


@pytest.mark.parametrize(("spec", "annotations", "bad"), [
    ("type: NodePort\nports: [{port: 80}]", "{}", True),
    ("type: LoadBalancer\nports: [{name: web, port: 8000, appProtocol: http}]", "{}", True),
    ("externalIPs: [192.0.2.10]\nports: [{name: http, port: 8000}]", "{}", True),
    ("type: ClusterIP\nports: [{port: 80}]", "{}", False),
    ("type: LoadBalancer\nports: [{name: https, port: 443}, {name: grpc, port: 9000}]", "{}", False),
    ("type: LoadBalancer\nports: [{name: http, port: 80}]",
     "{service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn}", False),
    ("type: LoadBalancer\nports: [{name: http, port: 80}]",
     "{service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn, "
     "service.beta.kubernetes.io/aws-load-balancer-ssl-ports: '443'}", True),
    # malformed port numbers (once an unhashable-type crash) are simply not HTTP ports
    ("type: NodePort\nports: [{port: [80]}, {port: {number: 80}}]", "{}", False),
])
def test_service_plain_http(spec: str, annotations: str, bad: bool) -> None:
    outcome = run("KH-NET-009", service(spec, annotations))
    assert outcome.status is (Status.FAIL if bad else Status.PASS), messages(outcome)


def ingress(spec: str) -> str:
    body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
    return f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i, namespace: shop}}\nspec:\n{body}\n"


@pytest.mark.parametrize(("spec", "bad"), [
    ("rules: [{host: a.example.com}]", True),
    ("tls: [{hosts: [a.example.com]}]\nrules: [{host: a.example.com}, {host: b.example.com}]", True),
    ("tls: [{hosts: ['*.example.com']}]\nrules: [{host: a.b.example.com}]", True),
    ("tls: [{hosts: ['*.example.com']}]\nrules: [{host: a.example.com}]", False),
    ("tls: [{secretName: default-cert}]\nrules: [{host: a.example.com}]", False),
    ("tls: [{hosts: [a.example.com]}]\nrules: [{host: a.example.com}, {http: {paths: []}}]", False),
])
def test_ingress_tls(spec: str, bad: bool) -> None:
    outcome = run("KH-NET-010", ingress(spec))
    assert outcome.status is (Status.FAIL if bad else Status.PASS), messages(outcome)


def test_gateway_only_gateway_api() -> None:
    istio = ("apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\n"
             "spec:\n  servers: [{port: {number: 80, protocol: HTTP}}]\n")
    assert run("KH-NET-011", istio).status is Status.PASS
    api = ("apiVersion: gateway.networking.k8s.io/v1beta1\nkind: Gateway\nmetadata: {name: g, namespace: shop}\n"
           "spec:\n  listeners: [{name: a, port: 443, protocol: HTTPS}, {name: b, port: 80, protocol: HTTP}]\n")
    outcome = run("KH-NET-011", api)
    assert messages(outcome) == ["Gateway shop/g: listener 'b' on port 80 uses plain HTTP"]
    assert outcome.findings[0].path == "spec.listeners[1].protocol"


# --- KH-NET-012..014 resources --------------------------------------------------------------------

def limit_range(limits: str) -> str:
    return f"apiVersion: v1\nkind: LimitRange\nmetadata: {{name: lr, namespace: shop}}\nspec:\n  limits: {limits}\n"


def test_limit_range_keys() -> None:
    partial = limit_range("[{type: Container, max: {cpu: '2', memory: 1Gi}, default: {cpu: '1'}}]")
    [msg] = messages(run("KH-NET-012", docs(NS.format(name="shop"), partial)))
    assert msg == "namespace 'shop': LimitRange sets no container default.memory, defaultRequest.cpu, " \
                  "defaultRequest.memory, min.cpu, min.memory"
    pod_only = limit_range("[{type: Pod, max: {cpu: '2', memory: 1Gi}}]")
    assert run("KH-NET-012", docs(NS.format(name="shop"), pod_only)).status is Status.FAIL


def quota(spec: str) -> str:
    return f"apiVersion: v1\nkind: ResourceQuota\nmetadata: {{name: q, namespace: shop}}\nspec: {spec}\n"


@pytest.mark.parametrize(("spec", "bad"), [
    ("{hard: {cpu: '1', memory: 1Gi, limits.cpu: '2', limits.memory: 2Gi}}", False),
    ("{hard: {requests.cpu: '1', requests.memory: 1Gi, limits.cpu: '2'}}", True),
    ("{scopes: [BestEffort], hard: {requests.cpu: '1', requests.memory: 1Gi, limits.cpu: '2', "
     "limits.memory: 2Gi}}", True),
])
def test_quota_keys(spec: str, bad: bool) -> None:
    outcome = run("KH-NET-013", docs(NS.format(name="shop"), quota(spec)))
    assert outcome.status is (Status.FAIL if bad else Status.PASS), messages(outcome)


def pod_with(resources: str, ns: str = "shop") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: {ns}}}\nspec:\n"
            f"  initContainers: [{{name: init, image: i, resources: {{limits: {{cpu: '1', memory: 1Gi}}}}}}]\n"
            f"  containers: [{{name: app, image: i, resources: {resources}}}]\n")


@pytest.mark.parametrize(("resources", "extra", "missing"), [
    ("{}", "", "limits.cpu, requests.cpu, limits.memory, requests.memory"),
    ("{limits: {cpu: '1', memory: 1Gi}}", "", None),  # requests default to the limits
    ("{requests: {cpu: '1', memory: 1Gi}}", "", "limits.cpu, limits.memory"),
    ("{}", limit_range("[{type: Container, default: {cpu: '1', memory: 1Gi}}]"), None),
    ("{}", limit_range("[{type: Container, defaultRequest: {cpu: '1', memory: 1Gi}}]"),
     "limits.cpu, limits.memory"),
    ("{requests: {cpu: '1'}, limits: {cpu: '1'}}", limit_range("[{type: Container, default: {memory: 1Gi}}]"),
     None),
])
def test_container_resources(resources: str, extra: str, missing: str | None) -> None:
    text = docs(pod_with(resources), extra) if extra else pod_with(resources)
    got = messages(run("KH-NET-014", text))
    # without the namespace or one of its LimitRanges in the input, the finding says what it could not see
    unseen = "" if extra else " (no LimitRange of namespace 'shop' in the input could default them)"
    assert got == ([] if missing is None else [f"container 'app' sets no {missing}{unseen}"])
    if missing is not None and not extra:
        judged = messages(run("KH-NET-014", docs(NS.format(name="shop"), pod_with(resources))))
        assert judged == [f"container 'app' sets no {missing}"]


def test_limit_range_of_another_namespace_does_not_count() -> None:
    text = docs(pod_with("{}", ns="other"), limit_range("[{type: Container, default: {cpu: '1', memory: 1Gi}}]"))
    assert len(messages(run("KH-NET-014", text))) == 1


# --- KH-NET-015 CNI ---------------------------------------------------------------------------------

def daemonset(name: str, *images: str) -> str:
    containers = ", ".join(f"{{name: c{i}, image: '{img}'}}" for i, img in enumerate(images))
    return (f"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {{name: {name}, namespace: kube-system}}\n"
            f"spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n"
            f"  template:\n    metadata: {{labels: {{app: {name}}}}}\n"
            f"    spec:\n      containers: [{containers}]\n")


def test_cni_needs_a_whole_cluster() -> None:
    outcome = run("KH-NET-015", daemonset("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1"))
    assert outcome.status is Status.NOT_ASSESSED
    assert "whole cluster" in (outcome.reason or "")


@pytest.mark.parametrize(("daemonsets", "status"), [
    ([daemonset("kube-flannel-ds", "docker.io/flannel/flannel:v0.25.1")], Status.FAIL),
    ([daemonset("canal", "docker.io/calico/node:v3.28.0", "docker.io/flannel/flannel:v0.25.1")], Status.PASS),
    ([daemonset("kube-flannel-ds", "flannel/flannel:v0.25.1"), daemonset("cilium", "quay.io/cilium/cilium:v1.15")],
     Status.PASS),
    ([daemonset("aws-node", "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0")], Status.FAIL),
    ([daemonset("aws-node", "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.0",
                "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon/aws-network-policy-agent:v1.1.0")],
     Status.PASS),
    ([daemonset("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.0")], Status.NOT_ASSESSED),
])
def test_cni_detection(daemonsets: list[str], status: Status) -> None:
    assert run("KH-NET-015", docs(*daemonsets), as_cluster=True).status is status


# --- KH-NET-016 kube-system Internet egress ----------------------------------------------------

def test_kube_system_internet_egress() -> None:
    coredns = deploy("coredns", ns="kube-system", labels="{k8s-app: kube-dns}")
    assert run("KH-NET-016", coredns).status is Status.NOT_ASSESSED
    assert run("KH-NET-016", coredns, as_cluster=True).status is Status.FAIL
    internet = policy("egress", "podSelector: {}\npolicyTypes: [Egress]\n"
                      "egress: [{to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]}]", ns="kube-system")
    outcome = run("KH-NET-016", docs(coredns, internet))
    assert messages(outcome) == ["Deployment 'coredns' in kube-system may reach the Internet through "
                                 "kube-system/egress spec.egress[0]"]
    cluster_only = policy("egress", "podSelector: {}\npolicyTypes: [Egress]\n"
                          "egress: [{to: [{namespaceSelector: {}}]}]", ns="kube-system")
    assert run("KH-NET-016", docs(coredns, cluster_only)).status is Status.PASS
