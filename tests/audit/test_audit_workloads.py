"""The same privileged pod through every way in; benign writes that must stay quiet."""

from __future__ import annotations

import pytest
from audit_helpers import ids, judge

from kubeharden.audit.detectors._events import deployment, event, pod_template, privileged_containers

PRIV_SPEC = pod_template(privileged_containers())["spec"]
SA = ("system:serviceaccounts", "system:authenticated")


def _template_of(kind: str) -> dict:
    template = pod_template(privileged_containers())
    if kind == "cronjobs":
        return {"kind": "CronJob", "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": template}}}}
    if kind == "pods":
        return {"kind": "Pod", "metadata": {"name": "x"}, "spec": template["spec"]}
    if kind == "podtemplates":
        return {"kind": "PodTemplate", "template": template}
    return {"kind": kind, "spec": {"template": template}}


@pytest.mark.parametrize(("resource", "group"), [
    ("pods", ""), ("deployments", "apps"), ("replicasets", "apps"), ("statefulsets", "apps"), ("daemonsets", "apps"),
    ("jobs", "batch"), ("cronjobs", "batch"), ("replicationcontrollers", ""), ("podtemplates", ""),
])
def test_every_pod_spec_kind(resource: str, group: str) -> None:
    run = judge([event("create", resource, group=group, body=_template_of(resource))], ["D01"])
    [finding] = [f for f in run.findings if "privileged" in f.message]
    assert finding.value is True and "containers[0].securityContext.privileged" in finding.path


PATCH_PATH = "/spec/template/spec/containers/0/securityContext/privileged"


@pytest.mark.parametrize("body", [
    pytest.param({"spec": {"template": {"spec": {"containers": [{"name": "web", "securityContext": {
        "privileged": True}}]}}}}, id="merge-or-strategic"),
    pytest.param({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "web"}], "containers": [
        {"name": "web", "securityContext": {"privileged": True}}]}}}}, id="strategic-with-directives"),
    pytest.param([{"op": "add", "path": PATCH_PATH, "value": True}], id="json-patch-leaf"),
    pytest.param([{"op": "replace", "path": "/spec/template/spec/containers/0/securityContext",
                   "value": {"privileged": True}}], id="json-patch-object"),
    pytest.param([{"op": "add", "path": "/spec/template/spec/initContainers", "value": [
        {"name": "init", "image": "busybox", "securityContext": {"privileged": True}}]}], id="json-patch-init"),
])
def test_privileged_through_patches(body) -> None:
    run = judge([event("patch", "deployments", group="apps", body=body)], ["D01", "D11"])
    assert set(ids(run)) == {"D01", "D11"}
    d01 = next(f for f in run.findings if f.control_id == "D01")
    assert d01.value is True and d01.evidence["patch"] is True
    if isinstance(body, list):  # the path points into the operation inside the event
        assert d01.path.startswith("requestObject[0].value")


def test_update_and_response_object() -> None:
    update = event("update", "deployments", group="apps", body=deployment(pod_template(privileged_containers())))
    assert "D01" in ids(judge([update], ["D01"]))
    patch_seen_only_in_response = event("patch", "deployments", group="apps", level="RequestResponse",
                                        response=deployment(pod_template(privileged_containers())))
    assert "D01" in ids(judge([patch_seen_only_in_response], ["D01"]))


def test_ephemeral_debug_container() -> None:
    body = {"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox",
                                              "securityContext": {"privileged": True}}]}}
    run = judge([event("patch", "pods", name="web-1", subresource="ephemeralcontainers", body=body)], ["D01", "D05"])
    assert sorted(ids(run)) == ["D01", "D05"]


def test_a_patch_proves_nothing_by_leaving_fields_out() -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "registry.example.com/x:2"}]}}}}
    assert ids(judge([event("patch", "deployments", group="apps", body=body)], ["D01", "D02", "D11"])) == []


@pytest.mark.parametrize("raw", [
    pytest.param(event("create", "pods", name="web-abc", user="system:serviceaccount:kube-system:daemon-set-controller",
                       groups=SA, body={"kind": "Pod", "spec": {"hostNetwork": True, **PRIV_SPEC}}),
                 id="controller-created-pod"),
    pytest.param(event("create", "pods", name="etcd-cp1", namespace="kube-system", user="system:node:cp1",
                       groups=("system:nodes", "system:authenticated"),
                       body={"kind": "Pod", "metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}},
                             "spec": {"hostNetwork": True, **PRIV_SPEC}}), id="mirror-pod"),
    pytest.param(event("create", "deployments", group="apps", code=403, body=deployment(
        pod_template(privileged_containers()))), id="denied"),
    pytest.param(event("get", "", name="", namespace=None, user="system:anonymous",
                       groups=("system:unauthenticated",), uri="/livez?verbose"), id="anonymous-livez"),
    pytest.param(event("update", "pods", name="web-abc", subresource="status", user="system:node:w1",
                       groups=("system:nodes", "system:authenticated"), body={"kind": "Pod", "spec": PRIV_SPEC}),
                 id="kubelet-status-update"),
])
def test_benign_writes_stay_quiet(raw) -> None:
    assert ids(judge([raw])) == []


def test_alerts_of_one_event_share_a_correlation_key() -> None:
    body = deployment(pod_template([{"name": "web", "image": "docker.io/evil/x", "securityContext": {
        "privileged": True}}], volumes=[{"name": "h", "hostPath": {"path": "/etc"}}]))
    run = judge([event("create", "deployments", group="apps", body=body)], ["D01", "D02", "D14"],
                settings={"approvedImagePrefixes": ["registry.example.com/"]})
    assert {"D01", "D02", "D14"} <= set(ids(run))
    assert len({f.evidence["correlation"] for f in run.findings}) == 1


def test_pss_annotation_at_metadata_level() -> None:
    raw = event("create", "deployments", group="apps", annotations={
        "pod-security.kubernetes.io/audit-violations": 'would violate PodSecurity "restricted:latest": privileged'})
    [f] = judge([raw], ["D01"]).findings
    assert "restricted" in f.message
