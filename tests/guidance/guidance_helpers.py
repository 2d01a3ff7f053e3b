"""Helpers for the guidance tests: scan texts, results by control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubeharden.catalog import Settings
from kubeharden.engine import ControlResult, ScanResult
from kubeharden.loader import LoadContext
from kubeharden.scanner import ScanRequest, run_scan


def scan_texts(tmp_path: Path, files: dict[str, str], as_cluster: bool = False, only: tuple[str, ...] = (),
               **sources: dict[str, object]) -> ScanResult:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    paths = [str(tmp_path / name) for name in files]
    return run_scan(ScanRequest(paths=paths, load=LoadContext(), settings=Settings(as_cluster=as_cluster),
                                only=only, sources=dict(sources)))


def result_of(result: ScanResult, control_id: str) -> ControlResult:
    [found] = [r for r in result.controls if r.control.id == control_id]
    return found


def messages(result: ScanResult, control_id: str) -> list[str]:
    return [f.message for f in result_of(result, control_id).findings]


POD_KINDS = ("Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob",
             "ReplicationController", "PodTemplate")


def workload(kind: str, name: str, namespace: str, labels: dict[str, str], spec: dict[str, Any]) -> dict[str, Any]:
    """A workload of ``kind`` whose pods have ``labels`` and ``spec``."""
    meta = {"name": name, "namespace": namespace}
    template = {"metadata": {"labels": labels}, "spec": spec}
    api = {"Pod": "v1", "ReplicationController": "v1", "PodTemplate": "v1", "Job": "batch/v1",
           "CronJob": "batch/v1"}.get(kind, "apps/v1")
    if kind == "Pod":
        return {"apiVersion": api, "kind": kind, "metadata": {**meta, "labels": labels}, "spec": spec}
    if kind == "PodTemplate":
        return {"apiVersion": api, "kind": kind, "metadata": meta, "template": template}
    if kind == "CronJob":
        return {"apiVersion": api, "kind": kind, "metadata": meta,
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}
    body: dict[str, Any] = {"template": template}
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        body["selector"] = {"matchLabels": labels}
    if kind == "ReplicationController":
        body["selector"] = labels
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": body}


def dump(*objects: dict[str, Any]) -> str:
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objects)
