"""Fixes for rendered inputs: Kustomize overlays (--kustomize) and Helm charts (--helm).

Kustomize: the fixes of an overlay's objects become one strategic-merge patch file written
into the overlay (kubeharden-fixes.yaml) and listed under `patches:` of its kustomization
(edited with the byte-exact engine, so its comments stay). The base is never edited. Before
anything is written, the overlay is built with the patch through a temporary wrapper
kustomization and re-scanned: a resource whose fixed finding stays or that gains a finding
is left out of the patch.

Helm: templates are never edited. A fix whose fields the template reads from values
(kubeharden.fix.helmvalues: directly, through toYaml of a values map, with and range) is written
into values.yaml (or --values FILE) with the byte-exact engine, after the chart rendered with the
edited values is re-scanned: the finding gone and nothing new. Any other fix is printed with its
template, the template line of the deepest field of its path the template names, and the YAML to add.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import click
import yaml

from kubeharden import safeio
from kubeharden.fix.edit import DocumentEditor, Edit, EditRefused, Style, Text, render_block_entry
from kubeharden.fix.files import FileProblem, hunks, read_file, write_file
from kubeharden.fix.helmvalues import TemplateMap, parse_template
from kubeharden.fix.plan import Fixer, FixRequest
from kubeharden.inventory import CONTAINER_FIELDS, Inventory
from kubeharden.loader import LoadContext, load_paths
from kubeharden.model import Finding, Path, Resource, Severity
from kubeharden.sources.render import KUSTOMIZATION_FILES

PATCH_NAME = "kubeharden-fixes"
MAX_RETRIES = 4
MAX_VALUES_BYTES = 16 * 1024 * 1024  # a values file larger than this is not a values file

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
# Helm: fixes written into the values a template reads; otherwise the template line to change
# (templates are never edited)


@dataclass
class ValuesFix:
    chosen: Chosen
    edits: list[tuple[Edit, int]]  # values edit and its keep_depth
    where: list[str]  # template:line of each op


def _template_of(chart: FsPath, origin: str) -> FsPath | None:
    """The chart's own template a `# Source:` names (chart/templates/x.yaml); None for a subchart's."""
    origin = origin.removeprefix("helm template ")
    _, _, relative = origin.partition("/")
    if not relative.startswith("templates/") or "/charts/" in f"/{relative}":
        return None
    template = chart / relative
    return template if template.is_file() else None


def _template_line(chart: FsPath, origin: str, path: Path) -> tuple[str, int | None]:
    """The template file (inside the chart) and the line of the deepest key of path it names."""
    template = _template_of(chart, origin)
    if template is None:
        relative = origin.removeprefix("helm template ").split("/", 1)[-1]
        return str(chart / relative), None
    try:
        text = template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return str(template), None
    line = parse_template(text).line_of(path)
    if line is not None:
        return str(template), line
    for item in reversed([p for p in path if isinstance(p, str)]):
        pattern = re.compile(rf"^\s*-?\s*{re.escape(item)}\s*:")
        for number, text_line in enumerate(text.splitlines(), 1):
            if pattern.match(text_line):
                return str(template), number
    return str(template), None


def merge_values(base: Any, over: Any) -> Any:
    """Helm's merge of a values file over another: maps merged, null deletes, the rest replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge_values(base.get(key), value)
        return out
    return over


def _load_values(path: FsPath) -> Any:
    try:
        return yaml.safe_load(safeio.read_regular(path, MAX_VALUES_BYTES)) or {}
    except (OSError, yaml.YAMLError, RecursionError):
        return {}  # no mapping can be made: the fixes become template hints


def _values_fix(chart: FsPath, c: Chosen, values: Any, maps: dict[FsPath, TemplateMap]) -> ValuesFix | str:
    """The values edits of one fix, or why the template must change instead."""
    from kubeharden.model import format_path

    template = _template_of(chart, c.resource.source.origin or "")
    if template is None:
        return "rendered from a subchart or an unknown template"
    if template not in maps:
        try:
            maps[template] = parse_template(template.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return f"{template} cannot be read"
    tmap = maps[template]
    edits, where = [], []
    for op, path, value in c.ops:
        target = tmap.target((*c.resource.source.base_path, *path), values)
        if target is None:
            return f"{format_path(path)} is not read from values"
        if target.keep_depth == 0 and op != "set":
            return f"{format_path(path)} is one value: the template decides whether the field is there"
        edits.append((Edit(op, target.values, value), target.keep_depth))
        where.append(f"{template}:{target.line} .Values.{'.'.join(str(p) for p in target.values)}")
    return ValuesFix(c, edits, where)


def _edit_values(data: bytes, fixes: list[ValuesFix]) -> tuple[bytes, list[tuple[ValuesFix, str]]]:
    text = Text(data)
    editor = DocumentEditor(text, 0)
    refused = []
    for vf in fixes:
        saved = text.text
        try:
            for edit, keep in vf.edits:
                editor.keep_depth = keep
                editor.apply(edit)
        except EditRefused as exc:
            text.text = saved
            refused.append((vf, exc.reason))
    return text.encode(), refused


def _render_with_values(chart: FsPath, values_file: FsPath, data: bytes, fixer: Fixer,
                        in_chart: bool) -> tuple[Any, dict[int, Resource], list[str]]:
    """Scan of the chart rendered with ``data`` as the values file: for the chart's values.yaml, a
    copy of the chart in a hidden sibling directory (so its relative dependencies resolve alike);
    for a --values file, a temporary copy of that file given instead."""
    options = dict(fixer.request.load.options)
    with tempfile.TemporaryDirectory(prefix=".kubeharden-fix-", dir=chart.resolve().parent) as tmp:
        target = chart
        if in_chart:
            target = FsPath(tmp) / chart.resolve().name
            shutil.copytree(chart, target, symlinks=True)
            (target / values_file.name).write_bytes(data)
        else:
            copy = FsPath(tmp) / values_file.name
            copy.write_bytes(data)
            given = [str(v) for v in options.get("helm_values") or ()]
            options["helm_values"] = [str(copy) if os.path.abspath(v) == os.path.abspath(values_file) else v
                                      for v in given]
        loaded = load_paths([str(target)], LoadContext(fixer.request.load.limits, options))
        inventory = Inventory(loaded.resources, dict(loaded.facts))
        return (fixer.scan(inventory), {id(r.ref()): r for r in loaded.resources},
                [f"{e.source}: {e.message}" for e in loaded.errors])


def _print_hint(chart: FsPath, c: Chosen, reason: str | None) -> None:
    origin = c.resource.source.origin or ""
    template, line = _template_line(chart, origin, (*c.resource.source.base_path, *c.ops[0][1]))
    where = f"{template}:{line}" if line else template
    click.echo(f"{where}: {c.finding.control_id} {c.resource.display()} {c.finding.path}"
               + (f" (not in values: {reason})" if reason else ""))
    for op, path, value in c.ops:
        if op == "set":
            click.echo("\n".join("    " + x for x in render_block_entry(path[-1], value, 0, Style())))
        else:
            click.echo(f"    # {op} {'.'.join(str(p) for p in path)}" + (f" {value}" if op != "delete" else ""))


@dataclass
class HelmOutcome:
    written: int = 0
    hinted: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


def _fix_chart(chart: FsPath, fixer: Fixer, request: FixRequest, values_file: FsPath | None) -> HelmOutcome:
    out = HelmOutcome()
    if not (chart / "Chart.yaml").is_file():
        out.errors.append(f"{chart}: no Chart.yaml: not a Helm chart")
        return out
    before, refs, load_errors = _scan(fixer, [str(chart)])
    if load_errors:
        out.errors.extend(load_errors)
        return out
    chosen, notes = _choose(fixer, before, refs)
    for note in notes:
        click.echo(f"  {note}", err=True)
    in_chart = values_file is None
    target_file = values_file if values_file is not None else chart / "values.yaml"
    values = _load_values(chart / "values.yaml")
    if values_file is not None:
        values = merge_values(values, _load_values(values_file))
    maps: dict[FsPath, TemplateMap] = {}
    fixes: list[ValuesFix] = []
    hints: list[tuple[Chosen, str | None]] = []
    for c in chosen:
        mapped = _values_fix(chart, c, values, maps) if target_file.is_file() else f"no {target_file}"
        if isinstance(mapped, str):
            hints.append((c, mapped))
        else:
            fixes.append(mapped)
    original = read_file(str(target_file)) if fixes else None
    baseline = Counter(_key(f, refs) for f in before.active_findings())
    data = original.data if original else b""
    for _ in range(MAX_RETRIES):
        if not fixes or original is None:
            break
        data, edit_refused = _edit_values(original.data, fixes)
        for vf, reason in edit_refused:
            hints.append((vf.chosen, f"the values edit is refused: {reason}"))
        refused_ids = {id(vf) for vf, _ in edit_refused}
        fixes = [vf for vf in fixes if id(vf) not in refused_ids]
        if not fixes:
            break
        after, after_refs, errors = _render_with_values(chart, target_file, data, fixer, in_chart)
        if errors:
            for vf in fixes:
                hints.append((vf.chosen, f"the chart does not render with the edited values: {errors[0]}"))
            fixes = []
            break
        after_keys = Counter(_key(f, after_refs) for f in after.active_findings())
        new = after_keys - baseline
        bad = {k[1] for k in new}
        bad |= {_obj_key(vf.chosen.resource) for vf in fixes if _key(vf.chosen.finding, refs) in after_keys}
        if not bad:
            break
        for vf in fixes:
            if _obj_key(vf.chosen.resource) in bad:
                out.refused += 1
                click.echo(f"  refused {vf.chosen.finding.control_id} {vf.chosen.resource.display()} "
                           f"{vf.chosen.finding.path}: rendered with the edited values, the chart has the finding "
                           "or a new one", err=True)
        fixes = [vf for vf in fixes if _obj_key(vf.chosen.resource) not in bad]
    else:
        fixes = []  # no proof within the retries: nothing is written
    if fixes and original is not None:
        for vf in fixes:
            click.echo(f"{target_file}: {vf.chosen.finding.control_id} {vf.chosen.resource.display()} "
                       f"{vf.chosen.finding.path} <- {', '.join(vf.where)}")
        if request.dry_run:
            click.echo(f"--- a/{target_file}\n+++ b/{target_file}")
            for hunk in hunks(Text(original.data).text, Text(data).text):
                click.echo(hunk.header)
                click.echo("".join(hunk.lines), nl=False)
            out.written = len(fixes)
        else:
            try:
                backup = write_file(original, data, request.backup)
            except FileProblem as problem:
                out.errors.append(f"{target_file}: {problem.message}")
                return out
            out.written = len(fixes)
            click.echo(f"{target_file}: wrote {len(fixes)} fix(es)" + (f" (backup {backup})" if backup else ""),
                       err=True)
    for hinted, why in hints:
        _print_hint(chart, hinted, why)
    out.hinted = len(hints)
    return out


# What a chart's or overlay's own files can raise while being read or edited: an error for that
# path, the others still fixed (never a traceback, never the file's text: YAML errors quote it).
_PROBLEMS = (FileProblem, EditRefused, yaml.YAMLError, OSError, RecursionError)


def _problem_text(exc: BaseException) -> str:
    if isinstance(exc, FileProblem):
        return exc.message
    if isinstance(exc, EditRefused):
        return f"not edited: {exc.reason}"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"invalid YAML at line {exc.problem_mark.line + 1}"
    if isinstance(exc, yaml.YAMLError):
        return "invalid YAML"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return "nested too deeply"


def run(request: FixRequest, helm: bool, values_file: str | None, fail_on: Severity | None) -> int:
    fixer = Fixer(request)
    if helm:
        if values_file is not None:
            if not os.path.isfile(values_file):
                raise click.UsageError(f"--values {values_file}: no such file")
            given = list(request.load.options.get("helm_values") or ())
            if values_file not in given:
                request.load.options["helm_values"] = [*given, values_file]
        total = HelmOutcome()
        for chart_path in request.paths:
            try:
                one = _fix_chart(FsPath(chart_path), fixer, request, FsPath(values_file) if values_file else None)
            except _PROBLEMS as exc:
                one = HelmOutcome(errors=[f"{chart_path}: {_problem_text(exc)}"])
            total.written += one.written
            total.hinted += one.hinted
            total.refused += one.refused
            total.errors.extend(one.errors)
        verb = "would write" if request.dry_run else "wrote"
        click.echo(f"{verb} {total.written} fix(es) into values; {total.hinted} to make in the templates "
                   "(templates are never edited)", err=True)
        for error in total.errors:
            click.echo(f"error: {error}", err=True)
        return 2 if total.errors else (1 if total.hinted or total.refused else 0)
    total_refused = 0
    all_errors: list[str] = []
    for overlay in request.paths:
        try:
            _, refused, errors = _fix_overlay(FsPath(overlay), fixer, request)
        except _PROBLEMS as exc:
            refused, errors = 0, [f"{overlay}: {_problem_text(exc)}"]
        total_refused += refused
        all_errors.extend(errors)
    for error in all_errors:
        click.echo(f"error: {error}", err=True)
    if all_errors:
        return 2
    return 1 if total_refused else 0

