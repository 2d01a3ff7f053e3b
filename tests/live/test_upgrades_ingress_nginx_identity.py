"""ingress-nginx is recognised by image name and by the controller binary (KH-UPG-005/006/007)."""

from __future__ import annotations

from kubeharden.catalog import Settings, get_control
from kubeharden.engine import Engine, ScanResult
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.model import Status


def _scan(control_id: str, text: str) -> ScanResult:
    loaded = load_bytes(text.encode(), "input.yaml", LoadContext(), keep_text=True)
    assert not loaded.errors, loaded.errors
    ctrl = get_control(control_id)
    assert ctrl is not None
    return Engine([ctrl], Settings()).run(Inventory(loaded.resources, {}))


def _controller(image: str, args: str = "[]", command: str = "[]") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: edge, namespace: edge}}
spec:
  selector: {{matchLabels: {{app: edge}}}}
  template:
    metadata: {{labels: {{app: edge}}}}
    spec:
      containers:
      - name: controller
        image: "{image}"
        command: {command}
        args: {args}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: edge-config, namespace: edge}}
data: {{allow-snippet-annotations: "true"}}
"""


CONFIG_ARG = "--configmap=$(POD_NAMESPACE)/edge-config"


def test_recognised_by_image_name() -> None:
    for image in ("docker.io/bitnami/nginx-ingress-controller:1.10.0-debian-12-r3",
                  "REGISTRY/nginx-ingress-controller:v1.10.0",
                  "mirror.example:5000/platform/k8s/nginx-ingress-controller:v1.10.0",
                  "registry.k8s.io/ingress-nginx/controller:v1.10.0@sha256:" + "ab" * 32):
        text = _controller(image, f"[{CONFIG_ARG}]")
        retired = _scan("KH-UPG-007", text)
        assert retired.controls[0].status is Status.FAIL, image
        cve = _scan("KH-UPG-006", text)
        assert any("CVE-2025-1974" in f.message for f in cve.findings), image
        snippets = _scan("KH-UPG-005", text)
        assert snippets.controls[0].status is Status.FAIL, image
        assert snippets.findings[0].resource is not None and snippets.findings[0].resource["kind"] == "ConfigMap"


def test_recognised_by_the_controller_binary() -> None:
    for command, args in (("[]", f"[/nginx-ingress-controller, {CONFIG_ARG}]"),
                          ("[/usr/bin/dumb-init, --]", f"[/nginx-ingress-controller, {CONFIG_ARG}]"),
                          ("[/bin/sh, -c]", "['exec /nginx-ingress-controller --v=2']")):
        text = _controller("registry.example/platform/edge-proxy:2.4.1", args, command)
        retired = _scan("KH-UPG-007", text)
        assert retired.controls[0].status is Status.FAIL, (command, args)
        assert "runs nginx-ingress-controller" in retired.findings[0].message
        # The tag is the rebuild's own: no CVE verdict is drawn from it.
        cve = _scan("KH-UPG-006", text)
        assert cve.findings == [] and cve.controls[0].status is Status.NOT_ASSESSED
        assert "not an upstream build" in (cve.controls[0].reason or "")


def test_other_ingress_controllers_and_flag_values_are_not_ingress_nginx() -> None:
    for image, args in (("docker.io/nginx/nginx-ingress:3.4.0", "[-nginx-configmaps=edge/edge-config]"),
                        ("registry.example/edge-proxy:1.0.0", "[--publish-service, edge/nginx-ingress-controller]"),
                        ("registry.example/edge-proxy:1.0.0", "[--configmap=edge/nginx-ingress-controller]")):
        result = _scan("KH-UPG-007", _controller(image, args))
        assert result.findings == [], (image, args)
