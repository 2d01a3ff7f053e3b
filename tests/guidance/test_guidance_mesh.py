"""Service-mesh mTLS (KH-NET-040/041): Istio precedence, DestinationRules, Linkerd, Cilium, corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from guidance_helpers import POD_KINDS, dump, messages, result_of, scan_texts, workload

from kubeharden.controls.mesh import effective_mode
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status

CONTROLS = ("KH-NET-040", "KH-NET-041")


def pa(name: str, namespace: str, mode: str | None, selector: dict[str, str] | None = None, **extra: object) -> dict:
    spec: dict = {**extra}
    if mode:
        spec["mtls"] = {"mode": mode}
    if selector:
        spec["selector"] = {"matchLabels": selector}
    return {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def namespace(name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


def inventory(*objects: dict) -> Inventory:
    return Inventory(load_bytes(dump(*objects).encode(), "in.yaml", LoadContext()).resources)


def scan(tmp_path: Path, *objects: dict, **kwargs):
    return scan_texts(tmp_path, {"in.yaml": dump(*objects)}, only=CONTROLS, **kwargs)


def test_precedence_workload_over_namespace_over_mesh() -> None:
    inv = inventory(pa("default", "istio-system", "STRICT"), pa("default", "shop", "PERMISSIVE"),
                    pa("legacy", "shop", "DISABLE", {"app": "legacy"}), pa("unset", "shop", "UNSET", {"app": "new"}))
    assert effective_mode(inv, "shop", {"app": "legacy"})[0] == "DISABLE"
    assert effective_mode(inv, "shop", {"app": "new"})[0] == "PERMISSIVE"  # UNSET inherits the namespace
    assert effective_mode(inv, "shop", {"app": "web"})[0] == "PERMISSIVE"
    assert effective_mode(inv, "other", {})[0] == "STRICT"
    assert effective_mode(inventory(), "other", {}) == ("PERMISSIVE", None)  # Istio's default


def test_weak_policies_and_meshed_namespaces_without_strict(tmp_path: Path) -> None:
    result = scan(tmp_path, namespace("shop", {"istio-injection": "enabled"}), namespace("plain"),
                  pa("legacy", "shop", "DISABLE", {"app": "legacy"}),
                  pa("hooks", "shop", None, {"app": "hook"}, portLevelMtls={"8443": {"mode": "PERMISSIVE"}}))
    assert sorted(messages(result, "KH-NET-040")) == [
        "PeerAuthentication shop/hooks accepts plaintext on port 8443 (PERMISSIVE)",
        "namespace 'shop' is in the Istio mesh but no PeerAuthentication makes it STRICT (Istio's default is "
        "PERMISSIVE)",
        "workload PeerAuthentication shop/legacy is DISABLE: plaintext is accepted",
    ]
    strict = scan(tmp_path / "s", namespace("shop", {"istio-injection": "enabled"}), pa("default", "istio-system",
                                                                                          "STRICT"))
    assert result_of(strict, "KH-NET-040").status is Status.PASS


def test_destination_rule_disable_at_every_level(tmp_path: Path) -> None:
    dr = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
          "metadata": {"name": "db", "namespace": "shop"},
          "spec": {"host": "db", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"},
                                                   "portLevelSettings": [{"port": {"number": 5432},
                                                                          "tls": {"mode": "DISABLE"}}]},
                   "subsets": [{"name": "v1", "trafficPolicy": {"tls": {"mode": "DISABLE"}}}]}}
    result = scan(tmp_path, dr)
    assert {f.path for f in result_of(result, "KH-NET-040").findings} == {
        "spec.trafficPolicy.portLevelSettings[0].tls.mode", "spec.subsets[0].trafficPolicy.tls.mode"}


@pytest.mark.parametrize("kind", POD_KINDS)
def test_linkerd_opt_out_and_skip_ports_on_every_kind(tmp_path: Path, kind: str) -> None:
    spec = {"containers": [{"name": "c", "image": "x:1"}]}
    out = workload(kind, "out", "shop", {"app": "out"}, spec)
    skip = workload(kind, "skip", "shop", {"app": "skip"}, spec)
    meta = "metadata" if kind == "Pod" else None
    for obj, notes in ((out, {"linkerd.io/inject": "disabled"}),
                       (skip, {"config.linkerd.io/skip-outbound-ports": "5432"})):
        target = obj[meta] if meta else _template(obj)["metadata"]
        target["annotations"] = notes
    result = scan(tmp_path, namespace("shop", annotations={"linkerd.io/inject": "enabled"}), out, skip)
    assert sorted(messages(result, "KH-NET-040")) == [
        f"{kind} 'out' opts out of the Linkerd mesh in an injected namespace",
        f"{kind} 'skip' bypasses Linkerd mTLS on ports 5432 (config.linkerd.io/skip-outbound-ports)"]


def _template(obj: dict) -> dict:
    if obj["kind"] == "PodTemplate":
        return obj["template"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def cilium_config(data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": data}


def test_cilium_mutual_auth_needs_the_agent_setting(tmp_path: Path) -> None:
    rule = {"fromEndpoints": [{}], "authentication": {"mode": "required"}}
    cnp = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
           "metadata": {"name": "db", "namespace": "shop"}, "spec": {"endpointSelector": {}, "ingress": [rule]}}
    config = cilium_config({"mesh-auth-enabled": "false"})
    assert len(messages(scan(tmp_path, cnp, config), "KH-NET-040")) == 1
    config["data"]["mesh-auth-enabled"] = "true"
    assert result_of(scan(tmp_path / "on", cnp, config), "KH-NET-040").status is Status.PASS


def test_no_mesh_is_advisory_for_a_whole_cluster(tmp_path: Path) -> None:
    objects = (namespace("shop"), namespace("kube-system"))
    assert result_of(scan(tmp_path, *objects), "KH-NET-041").status is Status.NOT_ASSESSED
    result = scan(tmp_path / "c", *objects, as_cluster=True)
    assert messages(result, "KH-NET-041") == [
        "namespace 'shop': no service mesh or transparent encryption protects its pod-to-pod traffic"]
    wireguard = cilium_config({"enable-wireguard": "true"})
    assert result_of(scan(tmp_path / "w", *objects, wireguard, as_cluster=True), "KH-NET-041").status is Status.PASS


def test_corpus_istio_samples(shared_dir: Path) -> None:
    """By hand: the Istio samples hold no PeerAuthentication (bookinfo relies on auto mTLS; its
    destination-rule-all-mtls uses ISTIO_MUTUAL, egress rules SIMPLE origination to external
    hosts); GKE's tutorial applies a STRICT namespace policy; knative's net-istio opens port
    8443 of its webhooks PERMISSIVE so the API server can call them (a deliberate, port-level
    exception: reported low)."""
    real = shared_dir / "corpus" / "real"
    paths = [real / "istio" / "samples", real / "kubernetes-engine-samples" / "service-mesh",
             real / "kubeflow-manifests" / "common" / "knative"]
    from kubeharden.scanner import ScanRequest, run_scan

    result = run_scan(ScanRequest(paths=[str(p) for p in paths if p.exists()], load=LoadContext(), only=CONTROLS))
    findings = result_of(result, "KH-NET-040").findings
    assert sorted((f.resource["name"], f.path) for f in findings if f.resource) == [
        ("net-istio-webhook", "spec.portLevelMtls.8443.mode"), ("webhook", "spec.portLevelMtls.8443.mode")]
    assert all(f.severity.label == "low" for f in findings)
