"""Noise: D01's root by omission ("may run as root": no runAsNonRoot, no non-root user, the image
decides) is said at the mayRunAsRoot setting's severity (low by default, or off); the predicate is
the scan's, so over real manifests the audit alerts are exactly the scan's KH-POD-002 findings.
D03 for an in-cluster CD system (a deployerIdentity) is low. Corpus: ../shared/corpus/real."""

from __future__ import annotations

from collections import Counter

import pytest
from audit_helpers import judge

from kubeharden.audit.detectors._events import deployment, event, pod_template
from kubeharden.audit.settings import SettingsError, settings_from_mapping
from kubeharden.audit.synthetic import CD, deployed

MAYBE_ROOT = [{"name": "web", "image": "registry.example.com/web:1",
               "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]
NO_POD_USER = {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}


def _d01(containers, setting: str | None = None, **spec):
    body = deployment(pod_template(containers, **{**NO_POD_USER, **spec}))
    run = judge([event("create", "deployments", group="apps", body=body)], ["D01"],
                {"mayRunAsRoot": setting} if setting else None)
    return [(f.severity.label, f.evidence["field"]) for f in run.findings]


FIELD = "spec.template.spec.containers[0].securityContext.runAsNonRoot"


@pytest.mark.parametrize(("setting", "expected"), [(None, [("low", FIELD)]), ("low", [("low", FIELD)]),
                                                    ("medium", [("medium", FIELD)]), ("off", [])])
def test_may_run_as_root_follows_the_setting(setting, expected) -> None:
    assert _d01(MAYBE_ROOT, setting) == expected


@pytest.mark.parametrize("setting", ["off", "low"])
def test_explicit_root_and_privileged_stay_high_whatever_the_setting(setting) -> None:
    uid0 = [{**MAYBE_ROOT[0], "securityContext": {**MAYBE_ROOT[0]["securityContext"], "runAsUser": 0}}]
    assert _d01(uid0, setting) == [("high", "spec.template.spec.containers[0].securityContext.runAsUser")]
    privileged = [{**MAYBE_ROOT[0], "securityContext": {"privileged": True, "runAsNonRoot": True}}]
    assert ("high", "spec.template.spec.containers[0].securityContext.privileged") in _d01(privileged, setting)


def test_may_run_as_root_setting_is_validated() -> None:
    assert settings_from_mapping(None).mayRunAsRoot == "low"
    with pytest.raises(SettingsError, match="mayRunAsRoot"):
        settings_from_mapping({"mayRunAsRoot": "loud"})
    with pytest.raises(SettingsError, match="mayRunAsRoot"):
        settings_from_mapping({"mayRunAsRoot": ["low"]})


def test_d03_is_low_for_a_deployer_and_high_for_anyone_else() -> None:
    pod = {"kind": "Pod", "spec": pod_template()["spec"]}
    settings = {"podCIDRs": ["10.244.0.0/16"], "deployerIdentities": [CD]}
    groups = ("system:serviceaccounts", "system:authenticated")
    by_cd = event("create", "pods", name="a", user=CD, groups=groups, ips=("10.244.9.4",), body=pod)
    stolen = event("create", "pods", name="b", user="system:serviceaccount:apps:web", groups=groups,
                   ips=("10.244.3.17",), body=pod)
    run = judge([by_cd, stolen], ["D03"], settings)
    assert [(f.resource["name"], f.severity.label) for f in run.findings] == [("a", "low"), ("b", "high")]


def _key(kind: str, namespace: str | None, name: str, field: str) -> tuple[str, str, str, str]:
    return kind, namespace or "default", name, field


def test_corpus_may_run_as_root_alerts_are_the_scans_kh_pod_002_findings(shared_dir) -> None:
    from kubeharden.catalog import Settings, get_control
    from kubeharden.engine import Engine
    from kubeharden.inventory import Inventory
    from kubeharden.loader import load_paths

    loaded = load_paths([str(shared_dir / "corpus" / "real")])
    control = get_control("KH-POD-002")
    assert control is not None
    scan = Engine([control], Settings()).run(Inventory(loaded.resources, dict(loaded.facts)))
    # a generateName create has no name in its audit event (the server picks it)
    generated = {(r.kind, r.name) for r in loaded.resources if not (r.obj.get("metadata") or {}).get("name")}
    expected = Counter(_key(f.resource["kind"], f.resource.get("namespace"),
                            "" if (f.resource["kind"], f.resource["name"]) in generated else f.resource["name"], f.path)
                       for f in scan.findings if f.severity.label == "medium" and f.path.endswith("runAsNonRoot"))
    # no deployerIdentities: nothing is exempt, every workload is judged as the scan judges it
    run = judge(deployed(r.obj for r in loaded.resources), ["D01"], {"mayRunAsRoot": "medium"})
    medium = [f for f in run.findings if f.severity.label == "medium" and f.evidence["field"].endswith("runAsNonRoot")]
    got = Counter(_key(f.resource["kind"], f.resource.get("namespace"), f.resource["name"], f.evidence["field"])
                  for f in medium)
    assert len(expected) > 100 and got == expected
    # by default the same alerts are low: none of them reaches medium
    default = judge(deployed(r.obj for r in loaded.resources), ["D01"])
    assert not [f for f in default.findings if f.severity.label != "low" and f.evidence["field"].endswith(
        "runAsNonRoot")]
    assert sum(1 for f in default.findings if f.evidence["field"].endswith("runAsNonRoot")) >= sum(expected.values())


def _privileged_ds(verb: str, user: str = "alice@example.com", path: str = "/") -> dict:
    body = deployment(pod_template([{"name": "agent", "image": "registry.example.com/agent:1",
                                     "securityContext": {"privileged": True, "runAsNonRoot": True}}],
                                   volumes=[{"name": "host", "hostPath": {"path": path}}]), name="agent")
    return event(verb, "daemonsets", group="apps", name="agent", body={**body, "kind": "DaemonSet"}, user=user)


def test_a_restated_update_by_the_same_identity_is_not_news() -> None:
    steady = judge([_privileged_ds("create"), _privileged_ds("update"), _privileged_ds("update")], ["D01", "D02"])
    assert Counter(f.control_id for f in steady.findings) == {"D01": 1, "D02": 1}  # the create only
    other = judge([_privileged_ds("create"), _privileged_ds("update", user="mallory")], ["D01", "D02"])
    assert Counter(f.control_id for f in other.findings) == {"D01": 2, "D02": 2}
    changed = judge([_privileged_ds("create"), _privileged_ds("update", path="/etc")], ["D02"])
    assert [f.value for f in changed.findings] == ["/", "/etc"]
    recreated = judge([_privileged_ds("create"), _privileged_ds("create")], ["D01"])
    assert len(recreated.findings) == 2  # a create always speaks (deleted and made again)


def test_corpus_reapplied_by_the_deployer_adds_no_alert(shared_dir) -> None:
    from kubeharden.loader import load_paths

    objects = [r.obj for r in load_paths([str(shared_dir / "corpus" / "real")]).resources]
    creates = list(deployed(objects))
    updates = [{**e, "verb": "update", "auditID": e["auditID"] + "-u"} for e in creates if e["objectRef"].get("name")]
    first = judge(creates, ["D01", "D02"])
    again = judge([*creates, *updates], ["D01", "D02"])
    assert len(first.findings) > 100 and len(again.findings) == len(first.findings)
