"""Builds inventories for the NetworkPolicy tests from compact scenario descriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_bytes
from kubeharden.netpol import NetworkModel
from kubeharden.yamlsafe import KubernetesDumper

SCENARIOS_FILE = Path(__file__).with_name("netpol_scenarios.yaml")


def load_scenarios() -> list[dict[str, Any]]:
    """networking.k8s.io scenarios, then Cilium and admin network policy ones (netpol_ext_scenarios.yaml)."""
    scenarios: list[dict[str, Any]] = []
    for path in (SCENARIOS_FILE, SCENARIOS_FILE.with_name("netpol_ext_scenarios.yaml")):
        with path.open("rb") as fh:
            scenarios += yaml.load(fh, Loader=yaml.CSafeLoader)
    return scenarios


def _container_ports(specs: list[str]) -> list[dict[str, Any]]:
    """``name:8080/TCP`` or ``8080/UDP`` -> containerPort entries."""
    out = []
    for spec in specs:
        name, _, rest = spec.rpartition(":")
        port, _, proto = rest.partition("/")
        entry: dict[str, Any] = {"containerPort": int(port), "protocol": proto or "TCP"}
        if name:
            entry["name"] = name
        out.append(entry)
    return out


def workload(ref: str, labels: dict[str, str], ports: list[str] | None = None, kind: str = "Pod",
             no_namespace: bool = False) -> dict[str, Any]:
    namespace, name = ref.split("/")
    meta: dict[str, Any] = {"name": name}
    if not no_namespace:
        meta["namespace"] = namespace
    pod_spec = {"containers": [{"name": "main", "image": "registry.example/app:1.0",
                                "ports": _container_ports(ports or [])}]}
    template = {"metadata": {"labels": labels}, "spec": pod_spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "labels": labels}, "spec": pod_spec}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    api = "apps/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {**meta, "labels": {"owner": "team"}},
            "spec": {"selector": {"matchLabels": labels}, "template": template}}


def scenario_yaml(scenario: dict[str, Any]) -> str:
    docs: list[str] = []
    for ns, labels in (scenario.get("namespaces") or {}).items():
        meta: dict[str, Any] = {"name": ns}
        if labels:
            meta["labels"] = labels
        docs.append(yaml.dump({"apiVersion": "v1", "kind": "Namespace", "metadata": meta}, Dumper=KubernetesDumper))
    for ref, pod in (scenario.get("pods") or {}).items():
        obj = workload(ref, pod.get("labels") or {}, pod.get("ports"), pod.get("kind", "Pod"),
                       pod.get("no_namespace", False))
        docs.append(yaml.dump(obj, Dumper=KubernetesDumper))  # a pod named `y` must stay a name
    if scenario.get("policies"):
        docs.append(scenario["policies"])
    return "\n---\n".join(docs)


def inventory_of(text: str, name: str = "scenario.yaml") -> Inventory:
    loaded = load_bytes(text.encode(), name, LoadContext(), keep_text=True)
    assert not loaded.errors, loaded.errors
    return Inventory(loaded.resources)


def model_of(text: str) -> NetworkModel:
    return NetworkModel(inventory_of(text))
