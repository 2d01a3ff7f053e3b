"""RBAC engine scenarios: can / who-can answers on a hand-written fixture (rbac_fixture.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubeharden.loader import LoadContext, load_bytes, load_paths
from kubeharden.rbac.engine import (
    RbacModel,
    Request,
    Subject,
    UserInfo,
    parse_resource,
    parse_service_account_user,
    selector_matches,
)

FIXTURE = Path(__file__).with_name("rbac_fixture.yaml")


@pytest.fixture(scope="module")
def model() -> RbacModel:
    loaded = load_paths([str(FIXTURE)], LoadContext())
    assert not loaded.errors
    return RbacModel(loaded.resources)


def _request(verb: str, resource: str = "", namespace: str | None = None, name: str = "",
             url: str | None = None) -> Request:
    if url is not None:
        return Request(verb, non_resource_url=url)
    res, sub, group = parse_resource(resource)
    return Request(verb, res, sub, group, name, namespace)


SA = "system:serviceaccount:"

# (user, extra groups, verb, resource, namespace, name, url, allowed)
CASES = [
    # ClusterRoleBinding to a group: everywhere, only the verbs of the role.
    ("al", ["auditors"], "get", "secrets", None, "", None, True),
    ("al", ["auditors"], "list", "secrets", "shop", "", None, True),
    ("al", ["auditors"], "delete", "secrets", "shop", "", None, False),
    ("al", [], "get", "secrets", None, "", None, False),
    # RoleBinding to a ClusterRole: only in the binding's namespace; SA subject namespace defaults.
    (SA + "shop:app", [], "get", "secrets", "shop", "", None, True),
    (SA + "shop:app", [], "get", "secrets", "billing", "", None, False),
    (SA + "shop:app", [], "get", "secrets", None, "", None, False),
    (SA + "billing:reporter", [], "watch", "secrets", "shop", "", None, True),
    (SA + "billing:reporter", [], "get", "secrets", "billing", "", None, False),
    # Subresources named exactly.
    ("dana", [], "create", "pods/exec", "shop", "", None, True),
    ("dana", [], "create", "pods", "shop", "", None, False),
    ("dana", [], "get", "pods/log", "shop", "", None, True),
    ("dana", [], "get", "pods/attach", "shop", "", None, False),
    ("dana", [], "get", "pods", "other", "", None, False),
    # resourceNames restrict, and a request without a name does not match them.
    ("eve", [], "get", "configmaps", "shop", "app-settings", None, True),
    ("eve", [], "update", "configmaps", "shop", "app-settings", None, True),
    ("eve", [], "get", "configmaps", "shop", "other", None, False),
    ("eve", [], "list", "configmaps", "shop", "", None, False),
    # */scale matches the scale subresource of everything; pods/* is not a wildcard.
    (SA + "ops:autoscaler", [], "update", "deployments.apps/scale", "x", "", None, True),
    (SA + "ops:autoscaler", [], "patch", "replicationcontrollers/scale", None, "", None, True),
    (SA + "ops:autoscaler", [], "update", "deployments.apps", "x", "", None, False),
    (SA + "ops:autoscaler", [], "create", "pods/exec", "x", "", None, False),
    # "*" resources include subresources; verb "*"; other groups untouched.
    ("zed", ["deployers"], "delete", "deployments.apps/scale", "x", "", None, True),
    ("zed", ["deployers"], "escalate", "statefulsets.apps", None, "db", None, True),
    ("zed", ["deployers"], "get", "pods", "x", "", None, False),
    # Non-resource URLs: exact, trailing * as prefix, only through ClusterRoleBindings.
    (SA + "monitoring:prometheus", [], "get", "", None, "", "/metrics", True),
    (SA + "monitoring:prometheus", [], "get", "", None, "", "/debug/pprof/heap", True),
    (SA + "monitoring:prometheus", [], "get", "", None, "", "/debug", False),
    (SA + "monitoring:prometheus", [], "post", "", None, "", "/metrics", False),
    ("frank", [], "get", "", None, "", "/metrics", False),
    # Aggregation into the built-in view role, reached through system:serviceaccounts:<ns>.
    (SA + "shop:anything", [], "list", "widgets.widgets.example.com", "shop", "", None, True),
    (SA + "shop:anything", [], "get", "pods", "shop", "", None, True),
    (SA + "shop:anything", [], "get", "secrets", "shop", "", None, False),
    (SA + "other:x", [], "get", "pods", "shop", "", None, False),
    # A custom aggregated role with matchExpressions; its own rules are replaced.
    ("gina", [], "create", "widgets.widgets.example.com", None, "", None, True),
    ("gina", [], "get", "widgets.widgets.example.com", None, "", None, False),
    ("gina", [], "get", "secrets", None, "", None, False),
    # User subject spelled as a ServiceAccount user name; admin aggregates edit and view.
    (SA + "ci:deployer", [], "create", "rolebindings", "staging", "", None, True),
    (SA + "ci:deployer", [], "create", "pods", "staging", "", None, True),
    (SA + "ci:deployer", [], "get", "secrets", "staging", "", None, True),
    (SA + "ci:deployer", [], "list", "pods", "staging", "", None, True),
    (SA + "ci:deployer", [], "create", "pods", "prod", "", None, False),
    # Group memberships: every SA is in system:serviceaccounts; anonymous is unauthenticated.
    (SA + "any:thing", [], "list", "nodes", None, "", None, True),
    ("alice", [], "list", "nodes", None, "", None, False),
    ("system:anonymous", [], "list", "namespaces", None, "", None, True),
    ("alice", [], "list", "namespaces", None, "", None, False),
    # Missing role and a ClusterRoleBinding to a Role grant nothing.
    ("harry", [], "create", "pods/exec", "shop", "", None, False),
    ("harry", [], "get", "pods", "shop", "", None, False),
    # A RoleBinding's Role is looked up in the binding's own namespace.
    ("ivan", [], "get", "services", "billing", "", None, True),
    ("ivan", [], "create", "pods/exec", "billing", "", None, False),
    # An input ClusterRole replaces the built-in of the same name.
    (SA + "kube-system:heapster", [], "get", "pods", "x", "", None, True),
    (SA + "kube-system:heapster", [], "get", "nodes", None, "", None, False),  # built-in had it
    # Built-in bindings: discovery for authenticated users, public info for everyone.
    ("alice", [], "get", "", None, "", "/version", True),
    ("alice", [], "get", "", None, "", "/apis/apps/v1", True),
    ("alice", [], "get", "", None, "", "/metrics", False),
    ("system:anonymous", [], "get", "", None, "", "/healthz", True),
    ("system:anonymous", [], "get", "", None, "", "/apis", False),
    (SA + "any:thing", [], "get", "", None, "", "/openid/v1/jwks", True),
    ("alice", [], "get", "", None, "", "/openid/v1/jwks", False),
    ("alice", [], "create", "selfsubjectaccessreviews", None, "", None, True),
    ("root", ["system:masters"], "delete", "nodes", None, "", None, True),
    ("root", ["system:masters"], "get", "", None, "", "/anything/at/all", True),
    (SA + "gateway:proxy", [], "impersonate", "users", None, "", None, True),
    (SA + "gateway:proxy", [], "impersonate", "serviceaccounts", "shop", "", None, True),
]


@pytest.mark.parametrize(("user", "groups", "verb", "resource", "namespace", "name", "url", "allowed"), CASES)
def test_can(model: RbacModel, user: str, groups: list[str], verb: str, resource: str, namespace: str | None,
             name: str, url: str | None, allowed: bool) -> None:
    request = _request(verb, resource, namespace, name, url)
    grants = model.can(UserInfo.for_name(user, groups), request)
    assert bool(grants) is allowed, [g.chain() for g in grants]
    # Every grant found by can() is also found by who_can() for the same request.
    who = {(id(g.binding), g.subject_index, id(g.rule)) for g in model.who_can(request)}
    assert all((id(g.binding), g.subject_index, id(g.rule)) in who for g in grants)


def _subjects(model: RbacModel, request: Request) -> set[str]:
    return {g.subject.display() for g in model.who_can(request)}


def test_who_can_read_secrets_in_namespace(model: RbacModel) -> None:
    assert _subjects(model, _request("get", "secrets", "shop")) == {
        "Group auditors", "ServiceAccount shop/app", "ServiceAccount billing/reporter",
        "Group system:masters", "User system:kube-controller-manager",
        # built-in controller bindings: both may read (and delete) anything
        "ServiceAccount kube-system/generic-garbage-collector", "ServiceAccount kube-system/namespace-controller",
    }


def test_who_can_read_secrets_cluster_wide(model: RbacModel) -> None:
    # RoleBindings do not count for a cluster-scope question.
    assert _subjects(model, _request("list", "secrets")) == {
        "Group auditors", "Group system:masters", "User system:kube-controller-manager",
        "ServiceAccount kube-system/generic-garbage-collector", "ServiceAccount kube-system/namespace-controller",
        "ServiceAccount kube-system/resourcequota-controller",  # list/watch on every resource, to count it
    }


def test_who_can_exec(model: RbacModel) -> None:
    assert _subjects(model, _request("create", "pods/exec", "shop")) == {"User dana", "Group system:masters"}
    assert _subjects(model, _request("create", "pods/exec", "staging")) == {
        "User system:serviceaccount:ci:deployer", "Group system:masters"}


def test_who_can_non_resource(model: RbacModel) -> None:
    subjects = _subjects(model, _request("get", url="/metrics"))
    assert subjects == {"ServiceAccount monitoring/prometheus", "Group system:masters", "Group system:monitoring"}


def test_who_can_reports_rule_and_binding(model: RbacModel) -> None:
    grants = [g for g in model.who_can(_request("list", "widgets.widgets.example.com", "shop"))
              if g.subject.name == "system:serviceaccounts:shop"]
    assert len(grants) == 1
    grant = grants[0]
    assert grant.binding.name == "viewers" and grant.role.name == "view"
    assert grant.rule.role.name == "widgets-view"  # aggregated from the custom role
    assert grant.to_dict()["aggregated_from"]["name"] == "widgets-view"
    assert "widgets-view" in grant.chain()


def test_missing_roles_are_reported(model: RbacModel) -> None:
    messages = [p.message for p in model.problems]
    assert any("does-not-exist" in m and "grants nothing" in m for m in messages)
    assert any("crb-to-role" in m and "can only reference a ClusterRole" in m for m in messages)
    assert len(messages) == 2


def test_permissions_lists_everything_of_a_user(model: RbacModel) -> None:
    grants = model.permissions(UserInfo.for_name(SA + "shop:app"))
    bindings = {g.binding.name for g in grants}
    # own RoleBinding, the namespace group's view, all-SA node listing, built-in discovery etc.
    assert {"app-reads-secrets", "viewers", "all-sa-list-nodes", "system:discovery",
            "system:service-account-issuer-discovery"} <= bindings
    assert "auditors-read-secrets" not in bindings


def test_user_groups() -> None:
    sa = UserInfo.for_name(SA + "prod:api")
    assert sa.groups == {"system:serviceaccounts", "system:serviceaccounts:prod", "system:authenticated"}
    assert UserInfo.for_name("system:anonymous").groups == {"system:unauthenticated"}
    assert UserInfo.for_name("bob", ["devs"]).groups == {"system:authenticated", "devs"}
    assert parse_service_account_user(SA + "prod:api") == ("prod", "api")
    assert parse_service_account_user(SA + "prod") is None
    assert parse_service_account_user("bob") is None
    assert Subject("ServiceAccount", "api", "prod").username == SA + "prod:api"


def test_parse_resource() -> None:
    assert parse_resource("pods/exec") == ("pods", "exec", "")
    assert parse_resource("deployments") == ("deployments", "", "apps")
    assert parse_resource("deployments.apps/scale") == ("deployments", "scale", "apps")
    assert parse_resource("widgets", {"widgets": "example.com"}) == ("widgets", "", "example.com")
    assert parse_resource("gizmos") == ("gizmos", "", None)
    with pytest.raises(ValueError):
        parse_resource("/exec")


def test_unknown_group_matches_any_group() -> None:
    loaded = load_bytes(b"""
apiVersion: rbac.authorization.k8s.io/v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: gizmo-reader}
  rules: [{apiGroups: [gizmos.example.com], resources: [gizmos], verbs: [get]}]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: gizmo-readers}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gizmo-reader}
  subjects: [{kind: User, name: kim}]
""", "inline.yaml", LoadContext())
    model = RbacModel(loaded.resources)
    kim = UserInfo.for_name("kim")
    assert model.can(kim, Request("get", "gizmos", "", None))
    assert not model.can(kim, Request("get", "gizmos", "", "other.example.com"))


def test_selector_matching() -> None:
    labels = {"team": "a", "tier": "x"}
    assert selector_matches({}, labels)
    assert selector_matches({"matchLabels": {"team": "a"}}, labels)
    assert not selector_matches({"matchLabels": {"team": "b"}}, labels)
    assert selector_matches({"matchExpressions": [{"key": "team", "operator": "In", "values": ["a", "b"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["a"]}]},
                                labels)
    assert selector_matches({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "team", "operator": "Bogus"}]}, labels)
    # selectors the API server would reject select nothing (NotIn without values once selected everything)
    assert not selector_matches({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": []}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]},
                                labels)
    assert not selector_matches({"matchLabels": ["team", "a"]}, labels)


def test_aggregation_cycle_is_cut() -> None:
    loaded = load_bytes(b"""
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: a, labels: {agg: b}}
  aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: a}}]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: b, labels: {agg: a}}
  aggregationRule: {clusterRoleSelectors: [{matchLabels: {agg: b}}]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: leaf, labels: {agg: b}}
  rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
""", "cycle.yaml", LoadContext())
    model = RbacModel(loaded.resources)
    assert [r.role.name for r in model.cluster_roles["b"].rules] == ["leaf"]
    assert [r.role.name for r in model.cluster_roles["a"].rules] == ["leaf"]


def test_duplicate_role_definitions_warn_and_last_wins() -> None:
    loaded = load_bytes(b"""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: twice}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: twice}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
""", "twice.yaml", LoadContext())
    model = RbacModel(loaded.resources)
    assert model.cluster_roles["twice"].rules[0].resources == ("secrets",)
    assert any("defined again" in p.message for p in model.problems)


def test_namespaceless_rolebinding_lands_in_default() -> None:
    loaded = load_bytes(b"""
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: nons}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: ServiceAccount, name: app}]
""", "nons.yaml", LoadContext())
    model = RbacModel(loaded.resources)
    assert model.can(UserInfo.for_name(SA + "default:app"), Request("get", "pods", "", "", "", "default"))
    assert not model.can(UserInfo.for_name(SA + "default:app"), Request("get", "pods", "", "", "", "shop"))
