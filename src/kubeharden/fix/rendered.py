"""Fixes for rendered inputs: Kustomize overlays (--kustomize) and Helm charts (--helm).

Kustomize: the fixes of an overlay's objects become one strategic-merge patch file written
into the overlay (kubeharden-fixes.yaml) and listed under `patches:` of its kustomization
(edited with the byte-exact engine, so its comments stay). The base is never edited. Before
anything is written, the overlay is built with the patch through a temporary wrapper
kustomization and re-scanned: a resource whose fixed finding stays or that gains a finding
is left out of the patch.

Helm: templates are never edited. Each fix is printed with the template it was rendered from,
the template line of the deepest field of its path that the template names, and the YAML to
add; writing fixes into values.yaml is not built yet (docs/fix.md).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import click
import yaml

from kubeharden.fix.edit import DocumentEditor, Edit, EditRefused, Style, Text, render_block_entry
from kubeharden.fix.files import FileProblem, hunks, read_file, write_file
from kubeharden.fix.plan import Fixer, FixRequest
from kubeharden.inventory import CONTAINER_FIELDS, Inventory
from kubeharden.loader import load_paths
from kubeharden.model import Finding, Path, Resource, Severity
from kubeharden.sources.render import KUSTOMIZATION_FILES

PATCH_NAME = "kubeharden-fixes"
MAX_RETRIES = 4

ObjKey = tuple[str, str | None, str]


@dataclass
class Chosen:
    finding: Finding
    resource: Resource
    ops: list[tuple[str, Path, Any]]


def _obj_key(res: Resource) -> ObjKey:
    return (res.kind, res.namespace, res.name)


def _key(f: Finding, refs: dict[int, Resource]) -> tuple[str, ObjKey | None, str, str | None]:
    res = refs.get(id(f.resource)) if f.resource is not None else None
    return (f.control_id, _obj_key(res) if res else None, f.path, repr(f.value) if f.has_value else None)


def _scan(fixer: Fixer, paths: list[str]) -> tuple[Any, dict[int, Resource], list[str]]:
    loaded = load_paths(paths, fixer.request.load)
    inventory = Inventory(loaded.resources, dict(loaded.facts))
    result = fixer.scan(inventory)
    return result, {id(r.ref()): r for r in loaded.resources}, [f"{e.source}: {e.message}" for e in loaded.errors]


def _choose(fixer: Fixer, result: Any, refs: dict[int, Resource]) -> tuple[list[Chosen], list[str]]:
    chosen, notes = [], []
    for f in result.findings:
        if f.fix is None:
            continue
        status, reason, ops = fixer.choose(f)
        if status == "chosen" and ops is not None and id(f.resource) in refs:
            chosen.append(Chosen(f, refs[id(f.resource)], ops))
        elif status != "skipped" or "level" in (reason or ""):
            notes.append(f"{status} {f.control_id} {f.path}: {reason}")
    return chosen, notes


# ---------------------------------------------------------------------------------------------
# Kustomize


def _apply(obj: Any, op: str, path: Path, value: Any) -> None:
    *parents, last = path
    node = obj
    for item in parents:
        if isinstance(item, str) and not isinstance(node.get(item), dict | list):
            node[item] = {}
        node = node[item]
    if op == "set":
        node[last] = value
    elif op == "delete":
        if isinstance(node, dict):
            node.pop(last, None)
    elif op == "append":
        items = node.get(last) if isinstance(node, dict) else None
        node[last] = [*(items or []), *([] if value in (items or []) else [value])]
    else:
        node[last] = [x for x in node.get(last) or [] if x != value]


def _patch_for(res: Resource, fixes: list[Chosen], overlay_sets_namespace: bool) -> dict[str, Any]:
    """A strategic-merge patch carrying every fixed field's final value (containers by name, ports by
    containerPort; other lists, which the patch replaces, whole)."""
    final = copy.deepcopy(res.obj)
    for c in fixes:
        for op, path, value in c.ops:
            _apply(final, op, path, value)
    meta: dict[str, Any] = {"name": res.name}
    if res.namespace and not overlay_sets_namespace:  # patches match before the overlay's namespace applies
        meta["namespace"] = res.namespace
    patch: dict[str, Any] = {"apiVersion": res.api_version, "kind": res.kind, "metadata": meta}
    for c in fixes:
        for op, path, _ in c.ops:
            _merge_path(patch, final, path, delete=op == "delete")
    return patch


def _merge_path(patch: dict[str, Any], final: Any, path: Path, delete: bool) -> None:
    node: Any = patch
    source: Any = final
    for depth, item in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(item, int):
            raise AssertionError("indices are handled with their list")
        nxt = path[depth + 1] if not last else None
        if last:
            node[item] = None if delete else copy.deepcopy(source.get(item))
            return
        child = source.get(item) if isinstance(source, dict) else None
        if isinstance(nxt, int):
            merge_key = "name" if item in CONTAINER_FIELDS else "containerPort" if item == "ports" else None
            if merge_key is None or not isinstance(child, list) or not isinstance(child[nxt], dict):
                node[item] = copy.deepcopy(child)  # a list the patch replaces whole
                return
            element = child[nxt]
            items = node.setdefault(item, [])
            target = next((x for x in items if x.get(merge_key) == element.get(merge_key)), None)
            if target is None:
                target = {merge_key: element.get(merge_key)}
                items.append(target)
            rest = path[depth + 2:]
            if not rest:
                return
            _merge_path(target, element, rest, delete)
            return
        node = node.setdefault(item, {})
        source = child if isinstance(child, dict) else {}


def _kustomization(overlay: FsPath) -> FsPath:
    for name in KUSTOMIZATION_FILES:
        if (overlay / name).is_file():
            return overlay / name
    raise click.UsageError(f"{overlay}: no kustomization.yaml: not a Kustomize overlay")


def _free_patch_name(overlay: FsPath) -> str:
    name, n = f"{PATCH_NAME}.yaml", 1
    while (overlay / name).exists():
        n += 1
        name = f"{PATCH_NAME}-{n}.yaml"
    return name


def _dump(patches: list[dict[str, Any]]) -> str:
    header = "# Written by `kubeharden fix --kustomize`: hardening fixes, each proved by a re-scan.\n"
    return header + "---\n".join(yaml.safe_dump(p, sort_keys=False, default_flow_style=False) for p in patches)


def _build_with(overlay: FsPath, files: dict[str, bytes], fixer: Fixer) -> tuple[Any, dict[int, Resource], list[str]]:
    """Scan of the overlay as it would be with ``files`` (name -> bytes) written into it: built from a
    copy in a hidden sibling directory, so that its relative references (../../base) resolve alike."""
    with tempfile.TemporaryDirectory(prefix=".kubeharden-fix-", dir=overlay.resolve().parent) as tmp:
        copy_dir = FsPath(tmp) / overlay.resolve().name
        shutil.copytree(overlay, copy_dir, symlinks=True)
        for name, data in files.items():
            (copy_dir / name).write_bytes(data)
        # the copy sits one level deeper: point its relative references one level up
        kustomization = _kustomization(copy_dir)
        kustomization.write_bytes(_deeper(kustomization.read_bytes()))
        return _scan(fixer, [str(copy_dir)])


def _deeper(data: bytes) -> bytes:
    """References of a kustomization that leave its directory (../x), one level deeper."""
    return re.sub(rb"(^|[\s\[,'\"])\.\./", rb"\1../../", data)


def _fix_overlay(overlay: FsPath, fixer: Fixer, request: FixRequest) -> tuple[int, int, list[str]]:
    """(fixed, refused, errors) for one overlay; prints the patch and the kustomization's diff."""
    before, refs, errors = _scan(fixer, [str(overlay)])
    if errors:
        return 0, 0, errors
    chosen, notes = _choose(fixer, before, refs)
    for note in notes:
        click.echo(f"  {note}", err=True)
    baseline = Counter(_key(f, refs) for f in before.active_findings())
    refused = 0
    kustomization = _kustomization(overlay)
    original = read_file(str(kustomization))
    patch_name = _free_patch_name(overlay)
    text = Text(original.data)
    try:
        DocumentEditor(text, 0).apply(Edit("append", ("patches",), {"path": patch_name}))
    except EditRefused as exc:
        return 0, len(chosen), [f"{kustomization}: cannot add the patch: {exc.reason}"]
    new_kustomization = text.encode()
    sets_namespace = isinstance(yaml.safe_load(original.data), dict) and "namespace" in yaml.safe_load(original.data)
    patch_text = ""
    for _ in range(MAX_RETRIES):
        if not chosen:
            break
        by_res: dict[ObjKey, list[Chosen]] = {}
        for c in chosen:
            by_res.setdefault(_obj_key(c.resource), []).append(c)
        patch_text = _dump([_patch_for(items[0].resource, items, sets_namespace) for items in by_res.values()])
        after, after_refs, errors = _build_with(overlay, {patch_name: patch_text.encode(),
                                                          kustomization.name: new_kustomization}, fixer)
        if errors:
            return 0, len(chosen), [f"the overlay with the patch does not build: {errors[0]}"]
        after_keys = Counter(_key(f, after_refs) for f in after.active_findings())
        new = after_keys - baseline
        bad = {k[1] for k in new}
        bad |= {_obj_key(c.resource) for c in chosen if _key(c.finding, refs) in after_keys}
        if not bad:
            break
        for c in chosen:
            if _obj_key(c.resource) in bad:
                refused += 1
                click.echo(f"  refused {c.finding.control_id} {c.resource.display()} {c.finding.path}: the re-scan "
                           "of the patched overlay has the finding or a new one", err=True)
        chosen = [c for c in chosen if _obj_key(c.resource) not in bad]
    if not chosen:
        return 0, refused, []
    if request.dry_run:
        click.echo(f"--- /dev/null\n+++ b/{overlay / patch_name}")
        for line in patch_text.splitlines():
            click.echo("+" + line)
        click.echo(f"--- a/{kustomization}\n+++ b/{kustomization}")
        for hunk in hunks(Text(original.data).text, Text(new_kustomization).text):
            click.echo(hunk.header)
            click.echo("".join(hunk.lines), nl=False)
    else:
        _write_new(overlay / patch_name, patch_text)
        try:
            write_file(original, new_kustomization, request.backup)
        except FileProblem as problem:
            os.unlink(overlay / patch_name)
            return 0, len(chosen), [f"{kustomization}: {problem.message}"]
        click.echo(f"{overlay}: wrote {patch_name} and listed it in {kustomization.name}", err=True)
    return len(chosen), refused, []


def _write_new(path: FsPath, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fp:
        fp.write(text)


# ---------------------------------------------------------------------------------------------
# Helm: where to change the chart (never an edit of a template)


def _template_line(chart: FsPath, origin: str, path: Path) -> tuple[str, int | None]:
    """The template file (inside the chart) and the line of the deepest key of path it names."""
    relative = origin.split("/", 1)[1] if "/" in origin else origin
    template = chart / relative
    try:
        lines = template.read_text(encoding="utf-8").splitlines()
    except OSError:
        return str(template), None
    for item in reversed([p for p in path if isinstance(p, str)]):
        pattern = re.compile(rf"^\s*-?\s*{re.escape(item)}\s*:")
        for number, line in enumerate(lines, 1):
            if pattern.match(line):
                return str(template), number
    return str(template), None


def _helm(request: FixRequest, fixer: Fixer) -> tuple[int, list[str]]:
    suggested = 0
    errors: list[str] = []
    for chart_path in request.paths:
        chart = FsPath(chart_path)
        if not (chart / "Chart.yaml").is_file():
            errors.append(f"{chart}: no Chart.yaml: not a Helm chart")
            continue
        before, refs, load_errors = _scan(fixer, [str(chart)])
        errors.extend(load_errors)
        chosen, notes = _choose(fixer, before, refs)
        for note in notes:
            click.echo(f"  {note}", err=True)
        for c in chosen:
            origin = c.resource.source.origin or ""
            template, line = _template_line(chart, origin.removeprefix("helm template "), c.ops[0][1])
            where = f"{template}:{line}" if line else template
            click.echo(f"{where}: {c.finding.control_id} {c.resource.display()} {c.finding.path}")
            for op, path, value in c.ops:
                if op == "set":
                    click.echo("\n".join("    " + x for x in render_block_entry(path[-1], value, 0, Style())))
                else:
                    click.echo(f"    # {op} {'.'.join(str(p) for p in path)}" + (f" {value}" if op != "delete" else ""))
            suggested += 1
    click.echo(f"{suggested} fix(es) to make in the chart's templates or values (templates are never edited)",
               err=True)
    return suggested, errors


def run(request: FixRequest, helm: bool, values_file: str | None, fail_on: Severity | None) -> int:
    fixer = Fixer(request)
    if helm:
        if values_file is not None:
            raise click.UsageError("--values: writing fixes into a values file is not available yet; "
                                   "the fixes are printed with the template line to change")
        suggested, errors = _helm(request, fixer)
        for error in errors:
            click.echo(f"error: {error}", err=True)
        return 2 if errors else (1 if suggested else 0)
    total_refused = 0
    all_errors: list[str] = []
    for overlay in request.paths:
        _, refused, errors = _fix_overlay(FsPath(overlay), fixer, request)
        total_refused += refused
        all_errors.extend(errors)
    for error in all_errors:
        click.echo(f"error: {error}", err=True)
    if all_errors:
        return 2
    return 1 if total_refused else 0

