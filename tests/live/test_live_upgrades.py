"""Versions, CVEs and removed APIs (KH-UPG-*) and the data they rest on."""

from __future__ import annotations

import itertools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from kubeharden import versions
from kubeharden.catalog import Settings, get_control
from kubeharden.engine import Engine, ScanResult
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status


def _scan(control_id: str, text: str, facts: dict[str, Any] | None = None,
          settings: Settings | None = None) -> ScanResult:
    loaded = load_bytes(text.encode(), "input.yaml", LoadContext(), keep_text=True)
    assert not loaded.errors, loaded.errors
    ctrl = get_control(control_id)
    assert ctrl is not None
    return Engine([ctrl], settings or Settings()).run(Inventory(loaded.resources, dict(facts or {})))


def _node(name: str, kubelet: str, proxy: str | None = None) -> str:
    return f"""---
apiVersion: v1
kind: Node
metadata: {{name: {name}}}
status: {{nodeInfo: {{kubeletVersion: {kubelet}, kubeProxyVersion: {proxy or kubelet}}}}}
"""


def _pod(name: str, image: str, node: str | None = None, extra: str = "") -> str:
    node_line = f"  nodeName: {node}\n" if node else ""
    return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: apps}}
spec:
{node_line}  containers:
  - name: main
    image: {image}
{extra}"""


# --- data -------------------------------------------------------------------------------------


def test_release_data_is_consistent() -> None:
    doc = json.loads(resources.files("kubeharden").joinpath("data", "kubernetes-releases.json").read_text())
    assert doc["data_date"] and doc["source"]
    rel = versions.releases()
    assert rel[0].minor == versions.NEWEST_SUPPORTED == (1, 37)
    assert versions.supported_minors() == ((1, 37), (1, 36), (1, 35))
    for newer, older in itertools.pairwise(rel):
        assert newer.minor[1] == older.minor[1] + 1  # no gap
        assert newer.release_date > older.release_date
        assert newer.end_of_life > older.end_of_life
        assert newer.latest_patch[:2] == newer.minor
    assert "release data as of 2026-11-24" in versions.data_note()


def test_version_parsing_and_ranges() -> None:
    assert versions.parse_version("v1.21.3-eks-abc") == (1, 21, 3)
    assert versions.parse_version("1.30") == (1, 30, 0)
    assert versions.parse_version("latest") is None
    assert versions.parse_minor("v1.30.2-gke.1") == (1, 30)
    cve = versions.cve("CVE-2021-25741")
    affected = ["1.19.14", "1.20.0", "1.20.10", "1.21.4", "1.22.1"]
    fixed = ["1.19.15", "1.20.11", "1.21.5", "1.22.2", "1.23.0"]
    assert all(cve.affects(versions.parse_version(v) or (0, 0, 0)) for v in affected)
    assert not any(cve.affects(versions.parse_version(v) or (0, 0, 0)) for v in fixed)


@pytest.mark.parametrize(("image", "expected"), [
    ("registry.k8s.io/kube-apiserver:v1.34.1", ("kube-apiserver", (1, 34, 1))),
    ("k8s.gcr.io/kube-proxy-amd64:v1.20.2", ("kube-proxy", (1, 20, 2))),
    ("registry.k8s.io/ingress-nginx/controller:v1.0.4@sha256:abc", ("ingress-nginx", (1, 0, 4))),
    ("registry.k8s.io/ingress-nginx/controller@sha256:abc", ("ingress-nginx", None)),
    ("quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.33.0", ("ingress-nginx", (0, 33, 0))),
    ("localhost:5000/clastix/capsule-proxy:v0.2.0", ("capsule-proxy", (0, 2, 0))),
    ("nginx/nginx-ingress:3.0.0", None),  # NGINX Inc's controller is another product
    ("registry.example/controller:1.0", None),
])
def test_component_images(image: str, expected: tuple[str, Any] | None) -> None:
    assert versions.component_of_image(image) == expected


# --- KH-UPG-001 / 002 / 003 ---------------------------------------------------------------------


def test_unsupported_versions_from_nodes_and_server() -> None:
    result = _scan("KH-UPG-001", _node("old", "v1.34.2") + _node("new", "v1.36.0"),
                   facts={"server_version": "v1.33.1", "source": "cluster:prod"})
    [outcome] = result.controls
    assert outcome.status is Status.FAIL
    messages = sorted(f.message for f in outcome.findings)
    assert len(messages) == 2
    assert messages[0].startswith("kube-apiserver v1.33.1 on API server /version is Kubernetes 1.33")
    assert messages[1].startswith("kubelet v1.34.2 on node old is Kubernetes 1.34 (end of life 2026-10-27)")
    server = next(f for f in outcome.findings if f.resource is None)
    assert server.file == "cluster:prod" and server.evidence["origin"] == "/version"
    assert any(n.startswith("version data:") for n in result.notes)


def test_no_version_evidence_is_not_assessed() -> None:
    result = _scan("KH-UPG-001", _pod("app", "registry.example/app:1.0"))
    [outcome] = result.controls
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason is not None and "no Kubernetes version in the input" in outcome.reason
    blocked = _scan("KH-UPG-001", _pod("app", "registry.example/app:1.0"),
                    facts={"forbidden_kinds": {"Node": "403 Forbidden: no"}})
    assert "cannot read Node: 403 Forbidden" in (blocked.controls[0].reason or "")


def test_kube_proxy_from_node_info_only_when_it_differs() -> None:
    result = _scan("KH-UPG-001", _node("n1", "v1.36.0", "v1.33.0") + _node("n2", "v1.36.0"))
    [outcome] = result.controls
    assert [f.path for f in outcome.findings] == ["status.nodeInfo.kubeProxyVersion"]


def test_behind_latest_patch() -> None:
    result = _scan("KH-UPG-002", _pod("kube-apiserver-cp", "registry.k8s.io/kube-apiserver:v1.37.0")
                   + _node("n1", "v1.37.1"))
    [outcome] = result.controls
    assert outcome.status is Status.FAIL
    [finding] = outcome.findings
    assert "kube-apiserver v1.37.0" in finding.message and "behind 1.37.1" in finding.message
    assert finding.path == "spec.containers[0].image"
    # only unsupported minors: that is KH-UPG-001's, this one cannot judge
    old = _scan("KH-UPG-002", _node("n1", "v1.20.1"))
    assert old.controls[0].status is Status.NOT_ASSESSED


def test_version_skew() -> None:
    newer = _scan("KH-UPG-003", _node("n1", "v1.37.1"), facts={"server_version": "v1.36.0"})
    [outcome] = newer.controls
    assert outcome.status is Status.FAIL
    assert "newer than the API server" in outcome.findings[0].message
    # kubelet 1.24 may be only two minors behind; from 1.25 three
    old = _scan("KH-UPG-003", _node("a", "v1.24.0") + _node("b", "v1.25.0"), facts={"server_version": "v1.28.0"})
    assert [f.message.split(" on ")[0] for f in old.controls[0].findings] == ["kubelet v1.24.0"]
    ok = _scan("KH-UPG-003", _node("b", "v1.34.0"), facts={"server_version": "v1.37.0"})
    assert ok.controls[0].status is Status.PASS
    none = _scan("KH-UPG-003", _node("b", "v1.34.0"))
    assert none.controls[0].status is Status.NOT_ASSESSED


def test_unreadable_nodes_make_version_controls_not_assessed() -> None:
    blocked = {"forbidden_kinds": {"Node": "403 Forbidden: cannot list nodes"}, "cluster": True}
    current = {"server_version": "v1.37.1", **blocked}
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n"  # no version evidence
    for control_id in ("KH-UPG-001", "KH-UPG-002"):
        [outcome] = _scan(control_id, namespace, facts=current).controls
        assert outcome.status is Status.NOT_ASSESSED, control_id
        assert outcome.reason is not None and "cannot read Node: 403 Forbidden" in outcome.reason
    skew = _scan("KH-UPG-003", _pod("kube-scheduler-cp", "registry.k8s.io/kube-scheduler:v1.37.1"), facts=current)
    assert skew.controls[0].status is Status.NOT_ASSESSED
    # like any control that needs an unreadable kind: not_assessed, even with a finding in sight
    [old] = _scan("KH-UPG-001", namespace, facts={**blocked, "server_version": "v1.30.2"}).controls
    assert old.status is Status.NOT_ASSESSED
    # and everything readable and current passes
    [fine] = _scan("KH-UPG-001", _node("n", "v1.37.1"), facts={"server_version": "v1.37.1", "cluster": True}).controls
    assert fine.status is Status.PASS


# --- CVEs -------------------------------------------------------------------------------------

SUBPATH = ("    volumeMounts: [{name: v, mountPath: /x, subPathExpr: $(POD_NAME)}]\n"
           "  volumes: [{name: v, emptyDir: {}}]\n")


def test_cve_2021_25741_needs_vulnerable_kubelet_and_subpath() -> None:
    nodes = _node("bad", "v1.22.1") + _node("good", "v1.22.2")
    result = _scan("KH-UPG-004", nodes + _pod("on-bad", "app:1", "bad", SUBPATH)
                   + _pod("on-good", "app:1", "good", SUBPATH) + _pod("no-subpath", "app:1", "bad"))
    [outcome] = result.controls
    assert outcome.status is Status.FAIL
    [finding] = outcome.findings
    assert finding.resource is not None and finding.resource["name"] == "on-bad"
    assert finding.path == "spec.containers[0].volumeMounts[0].subPathExpr"
    fixed = _scan("KH-UPG-004", _node("good", "v1.22.2") + _pod("p", "app:1", None, SUBPATH))
    assert fixed.controls[0].status is Status.PASS
    no_nodes = _scan("KH-UPG-004", _pod("p", "app:1", None, SUBPATH))
    assert no_nodes.controls[0].status is Status.NOT_ASSESSED


def _nginx(version: str, configmap: str | None) -> str:
    text = _pod("ingress-nginx-controller", f"registry.k8s.io/ingress-nginx/controller:{version}", None,
                "    args: [/nginx-ingress-controller, --configmap=$(POD_NAMESPACE)/nginx-conf]\n")
    if configmap is not None:
        text += f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: nginx-conf, namespace: apps}}\n" \
                f"data: {configmap}\n"
    return text


def test_cve_2021_25742_cases() -> None:
    def status(version: str, configmap: str | None, as_cluster: bool = False) -> Status:
        result = _scan("KH-UPG-005", _nginx(version, configmap), settings=Settings(as_cluster=as_cluster))
        return result.controls[0].status

    assert status("v0.49.0", '{allow-snippet-annotations: "false"}') is Status.FAIL  # no switch yet
    assert status("v1.0.0", '{allow-snippet-annotations: "false"}') is Status.FAIL
    assert status("v1.0.1", '{allow-snippet-annotations: "false"}') is Status.PASS
    assert status("v1.0.1", '{allow-snippet-annotations: "true"}') is Status.FAIL
    assert status("v1.8.0", "{}") is Status.FAIL  # default allowed snippets before 1.9
    assert status("v1.9.0", "{}") is Status.PASS  # default off from 1.9
    assert status("v1.9.0", '{allow-snippet-annotations: "true"}') is Status.FAIL
    assert status("v1.8.0", None) is Status.NOT_ASSESSED  # ConfigMap elsewhere: cannot tell
    assert status("v1.8.0", None, as_cluster=True) is Status.FAIL  # whole cluster: it does not exist
    unreadable = _scan("KH-UPG-005", _nginx("v1.8.0", None), settings=Settings(as_cluster=True),
                       facts={"forbidden_kinds": {"ConfigMap": "403 Forbidden: cannot list configmaps"}})
    [outcome] = unreadable.controls
    assert outcome.status is Status.NOT_ASSESSED  # absent because unreadable, not because missing
    assert outcome.reason == "cannot read ConfigMap: 403 Forbidden: cannot list configmaps"


def test_known_cve_table() -> None:
    result = _scan("KH-UPG-006", _pod("proxy", "quay.io/clastix/capsule-proxy:v0.2.0")
                   + _pod("nginx", "registry.k8s.io/ingress-nginx/controller:v1.12.0"))
    [outcome] = result.controls
    found = sorted((f.evidence["cve"], f.severity.label) for f in outcome.findings)
    assert found == [("CVE-2022-23652", "high"), ("CVE-2025-1974", "critical")]
    assert all(f.remediation.startswith("Upgrade") for f in outcome.findings)
    fixed = _scan("KH-UPG-006", _pod("proxy", "quay.io/clastix/capsule-proxy:v0.2.1"))
    assert fixed.controls[0].status is Status.PASS
    digest = _scan("KH-UPG-006", _pod("proxy", "quay.io/clastix/capsule-proxy@sha256:0123"))
    assert digest.controls[0].status is Status.NOT_ASSESSED


def test_retired_ingress_nginx_even_by_digest() -> None:
    result = _scan("KH-UPG-007", _pod("nginx", "registry.k8s.io/ingress-nginx/controller@sha256:0123"))
    [outcome] = result.controls
    assert outcome.status is Status.FAIL
    assert "retired in March 2026" in outcome.findings[0].message


# --- KH-UPG-008 -------------------------------------------------------------------------------

OLD_INGRESS = """\
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: web, namespace: apps}
spec: {backend: {serviceName: web, servicePort: 80}}
"""


def test_removed_and_deprecated_apis_follow_the_target_version() -> None:
    removed = _scan("KH-UPG-008", OLD_INGRESS, settings=Settings(kubernetes_version=(1, 22)))
    [finding] = removed.controls[0].findings
    assert finding.severity.label == "medium" and "removed in Kubernetes 1.22" in finding.message
    assert finding.line == 1 and finding.path == "apiVersion"
    deprecated = _scan("KH-UPG-008", OLD_INGRESS, settings=Settings(kubernetes_version=(1, 21)))
    [finding] = deprecated.controls[0].findings
    assert finding.severity.label == "low" and "deprecated" in finding.message
    before = _scan("KH-UPG-008", OLD_INGRESS, settings=Settings(kubernetes_version=(1, 13)))
    assert before.controls[0].status is Status.PASS
    # a live cluster's own version is the target when none is given
    live = _scan("KH-UPG-008", OLD_INGRESS, facts={"server_version": "v1.21.3"})
    assert live.controls[0].findings[0].severity.label == "low"


def test_reports_print_the_date_of_the_version_data(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kubeharden.cli import cli

    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(_node("n1", "v1.30.1"))
    result = CliRunner().invoke(cli, ["scan", str(nodes), "-c", "KH-UPG-001", "--fail-on", "none"])
    date = versions.releases_data_date()
    assert f"Kubernetes release data as of {date}" in " ".join(result.stdout.split())
    markdown = CliRunner().invoke(cli, ["scan", str(nodes), "-c", "KH-UPG-001", "-f", "markdown"])
    assert f"as of {date}" in markdown.stdout
