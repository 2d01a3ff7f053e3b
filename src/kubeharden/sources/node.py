"""Named source "node": a node root directory or a collected bundle.

``request.sources["node"] = {"root": DIR}`` or ``{"bundle": FILE}`` (optional
``"processes": bool`` to force reading /proc). Static pod manifests and config files become
Resources with their real file as Source; the snapshot goes to ``facts["node"]``.
"""

from __future__ import annotations

from typing import Any

from kubeharden.loader import LineLocator, LoadResult, load_bytes
from kubeharden.model import InputError, Path, Resource, format_path
from kubeharden.nodeconf.evidence import NodeFacts
from kubeharden.nodeconf.schema import type_problems
from kubeharden.nodeconf.snapshot import YAML_ROLES, BundleError, NodeSnapshot, collect_root, read_bundle
from kubeharden.scanner import ScanRequest, register_source


def snapshot_to_load_result(snapshot: NodeSnapshot, request: ScanRequest) -> tuple[LoadResult, dict[str, Any]]:
    result = LoadResult()
    result.errors.extend(snapshot.errors)
    by_path: dict[str, list[Resource]] = {}
    keep_text = snapshot.origin == "bundle"
    for path, record in sorted(snapshot.files.items()):
        if record.role not in YAML_ROLES or record.text is None:
            continue
        loaded = load_bytes(record.text.encode(), snapshot.display(path), request.load, keep_text=keep_text)
        by_path[path] = list(loaded.resources)
        result.extend(loaded)
    result.errors.extend(_type_errors([r for resources in by_path.values() for r in resources]))
    return result, {"node": NodeFacts(snapshot, by_path)}


def _type_errors(resources: list[Resource]) -> list[InputError]:
    """A node file's field of a type its component refuses: an error naming the file and line."""
    found: list[tuple[Resource, Path, str]] = [
        (res, path, problem) for res in resources for path, problem in type_problems(res.kind, res.obj)]
    lines = LineLocator().resolve([(res.source, path) for res, path, _ in found])
    return [InputError(res.source.file, f"{res.kind} {format_path(path) or '(document)'}: {problem} "
                       "(Kubernetes refuses such a file)", line)
            for (res, path, problem), line in zip(found, lines, strict=True)]


def load_node(request: ScanRequest) -> tuple[LoadResult, dict[str, Any]]:
    options = request.sources.get("node") or {}
    bundle = options.get("bundle")
    if bundle:
        try:
            snapshot = read_bundle(str(bundle))
        except BundleError as exc:
            result = LoadResult()
            result.errors.append(InputError(str(bundle), str(exc)))
            return result, {}
    else:
        snapshot = collect_root(str(options.get("root") or "/"), options.get("processes"))
    return snapshot_to_load_result(snapshot, request)


register_source("node", load_node)
