"""`kubeharden fix`: choose the fixes, edit in memory, prove each by a re-scan, then write.

1. Scan the inputs as `scan` does; every finding whose control knows a fix carries it.
2. Keep the fixes the user asked for: selected controls (-c), at or below --level; needs-value
   fixes only for the values given with --set; never an excepted finding.
3. Per file, apply the edits to the original text (kubeharden.fix.edit). A fix whose edit is
   refused (an alias, a merge key...) is skipped with the reason, the others go on.
4. Proof, per file: load the edited text and scan it alone, as the original was scanned alone:
   every fixed finding must be gone and no finding may appear that the original did not have.
   Fixes that fail are dropped and the rest proved again. Then, with every edited file in
   place, the whole input is scanned once more: a file under which a new finding appears (or a
   fixed one stays) is left as it was.
5. Rounds: a fix can open another (allowPrivilegeEscalation: false once privileged: true is
   gone); the findings of the original scan that still stand are offered again, up to
   MAX_ROUNDS, so that running `fix` on its own output changes nothing.
6. Write (unless dry-run): atomically, permissions kept, not over a file changed on disk since
   it was read, after a backup unless --no-backup.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeharden import safeio
from kubeharden.catalog import Settings, controls_for_profile, profiles
from kubeharden.engine import Engine, ScanResult, select_controls
from kubeharden.fix.edit import DocumentEditor, Edit, EditRefused, Text, compose_all
from kubeharden.fix.files import FileProblem, Hunk, ReadFile, hunks, outside_of, read_file, write_file
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, LoadResult, load_bytes
from kubeharden.model import Finding, Fix, FixLevel, InputError, Resource, Severity, format_path
from kubeharden.scanner import ScanRequest, UsageError, build_inventory

MAX_ROUNDS = 4
MAX_PROOF_RETRIES = 4

ResourceKey = tuple[str, int, tuple[Any, ...], str, str | None, str]
# control, resource, path and value: a path alone is not stable (removing add[0] moves add[1] there)
FindingKey = tuple[str, ResourceKey | None, str, str | None]


@dataclass
class FixRequest:
    paths: Sequence[str]
    profile: str = "nsa"
    settings: Settings = field(default_factory=Settings)
    load: LoadContext = field(default_factory=LoadContext)
    controls: Sequence[str] = ()  # fix only these controls' findings (ids or wildcards)
    level: FixLevel = FixLevel.SAFE
    values: dict[str, Any] = field(default_factory=dict)  # --set key=value
    dry_run: bool = False
    backup: bool = True


@dataclass
class Outcome:
    """What became of one finding's fix."""

    finding: Finding
    file: str | None
    status: str  # "fixed", "skipped", "needs-value", "refused"
    reason: str | None = None
    round: int = 1
    resource: ResourceKey | None = None  # file, document, place in it, kind, namespace, name
    doc: int = 0
    base: tuple[Any, ...] = ()

    def at(self, res: Resource) -> Outcome:
        self.resource, self.doc, self.base = resource_key(res), res.source.doc_index, tuple(res.source.base_path)
        return self


@dataclass
class FileChange:
    name: str
    original: ReadFile
    new: bytes
    fixed: list[Outcome]
    hunks: list[tuple[Hunk, list[str]]] = field(default_factory=list)  # each with the controls it fixes
    written: bool = False
    backup: str | None = None
    error: str | None = None


@dataclass
class FixReport:
    before: ScanResult
    after: ScanResult
    outcomes: list[Outcome]
    changes: list[FileChange]
    errors: list[InputError]
    resources: list[Resource] = field(default_factory=list)  # what the first scan read

    def exit_code(self, fail_on: Severity | None) -> int:
        if self.errors:
            return 2
        if any(o.status == "refused" for o in self.outcomes) or any(c.error for c in self.changes):
            return 1
        if fail_on is not None and any(f.severity >= fail_on for f in self.after.active_findings()):
            return 1
        return 0


# ---------------------------------------------------------------------------------------------
# Keys that survive a re-load (objects and lines change; file, document and identity do not)


def resource_key(res: Resource) -> ResourceKey:
    src = res.source
    return (src.file, src.doc_index, tuple(src.base_path), res.kind, res.namespace, res.name)


def finding_key(f: Finding, resources: dict[int, Resource]) -> FindingKey:
    res = resources.get(id(f.resource)) if f.resource is not None else None
    return keyed(f, resource_key(res) if res is not None else None)


# Lists that fixes remove items from: an item's index moves, its value identifies it.
_SHIFTING_INDEX = re.compile(r"(\.(?:add|drop|supplementalGroups|sysctls))\[\d+\]")


def keyed(f: Finding, resource: ResourceKey | None) -> FindingKey:
    path = _SHIFTING_INDEX.sub(r"\1[*]", f.path) if f.has_value else f.path
    return (f.control_id, resource, path, repr(f.value) if f.has_value else None)


def _by_ref(inventory: Inventory) -> dict[int, Resource]:
    return {id(r.ref()): r for r in inventory.resources}


def _active_keys(result: ScanResult, resources: dict[int, Resource]) -> Counter[FindingKey]:
    return Counter(finding_key(f, resources) for f in result.active_findings())


# ---------------------------------------------------------------------------------------------


class Fixer:
    def __init__(self, request: FixRequest) -> None:
        if request.profile not in profiles():
            raise UsageError(f"unknown profile {request.profile!r} (known: {', '.join(sorted(profiles()))})")
        self.request = request
        self.controls = controls_for_profile(request.profile)
        try:
            self.wanted = {c.id for c in select_controls(self.controls, request.controls)}
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def scan(self, inventory: Inventory, loaded: LoadResult | None = None) -> ScanResult:
        engine = Engine(self.controls, self.request.settings)
        return engine.run(inventory, profile=self.request.profile,
                          errors=loaded.errors if loaded else None, stats=loaded.stats if loaded else None)

    # -- choosing -----------------------------------------------------------------------------

    def choose(self, finding: Finding) -> tuple[str, str | None, list[Any] | None]:
        """(status, reason, ops with values) for one finding with a fix."""
        fix = finding.fix
        assert fix is not None
        if finding.excepted:
            return "skipped", "an exception covers the finding", None
        if finding.control_id not in self.wanted:
            return "skipped", "control not selected (-c)", None
        if fix.level is FixLevel.NEEDS_VALUE:
            given = [op for op in fix.ops if op.value_from is None or op.value_from in self.request.values]
            if not any(op.value_from is not None for op in given):
                keys = " ".join(f"--set {key}=..." for key in fix.needs)
                return "needs-value", f"needs a value only you can choose: {keys}", None
            return "chosen", None, [(op.op, op.path, op.value if op.value_from is None
                                     else self.request.values[op.value_from]) for op in given]
        if fix.level.rank > self.request.level.rank:
            return "skipped", f"{fix.level.value} fix (use --level {fix.level.value})" + (
                f": {fix.note}" if fix.note else ""), None
        return "chosen", None, [(op.op, op.path, op.value) for op in fix.ops]

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> FixReport:
        request = self.request
        inventory, loaded = build_inventory(ScanRequest(paths=request.paths, profile=request.profile,
                                                        settings=request.settings, load=request.load))
        before = self.scan(inventory, loaded)
        resources = _by_ref(inventory)
        bad_files = {e.source for e in loaded.errors}
        outcomes: list[Outcome] = []
        by_file: dict[str, list[tuple[Finding, Resource, list[Any]]]] = {}
        names_of_real: dict[str, str] = {}
        for f in before.findings:
            if f.fix is None:
                continue
            res = resources.get(id(f.resource)) if f.resource is not None else None
            file = res.source.file if res is not None else f.file
            status, reason, ops = self.choose(f)
            if status != "chosen":
                outcomes.append(Outcome(f, file, status, reason))
                continue
            assert res is not None and ops is not None
            file = res.source.file
            if res.source.origin is not None and res.source.line is None:
                outcomes.append(Outcome(f, file, "skipped", f"rendered from {res.source.origin}: use --helm or "
                                        "--kustomize to fix the chart's values or the overlay"))
                continue
            if file in bad_files:
                outcomes.append(Outcome(f, file, "refused", "the file has input errors: fix them first"))
                continue
            # one file reached by two names (a symlink beside its target) is edited once
            claimed = names_of_real.setdefault(os.path.realpath(file), file)
            if claimed != file:
                outcomes.append(Outcome(f, file, "skipped", f"the same file as {claimed}: fixed there"))
                continue
            by_file.setdefault(file, []).append((f, res, ops))
        baseline_keys = _active_keys(before, resources)
        changes: list[FileChange] = []
        new_resources: dict[str, list[Resource]] = {}
        for file, items in by_file.items():
            offered = {finding_key(f, resources) for f in before.findings if f.fix is not None and f.file == file}
            change, file_outcomes, reloaded = self._fix_file(file, items, inventory, baseline_keys, resources, offered)
            outcomes.extend(file_outcomes)
            if change is not None:
                changes.append(change)
                new_resources[file] = reloaded
        after, changes = self._global_proof(inventory, before, resources, changes, new_resources, outcomes)
        for change in changes:
            change.hunks = _annotated_hunks(change)
            if not request.dry_run:
                try:
                    change.backup = write_file(change.original, change.new, request.backup)
                    change.written = True
                except FileProblem as problem:
                    change.error = problem.message
                    for o in change.fixed:
                        o.status, o.reason = "refused", problem.message
        return FixReport(before, after, outcomes, changes, list(loaded.errors), inventory.resources)

    # -- one file -----------------------------------------------------------------------------

    def _fix_file(self, file: str, items: list[tuple[Finding, Resource, list[Any]]], inventory: Inventory,
                  baseline: Counter[FindingKey], resources: dict[int, Resource], offered: set[FindingKey],
                  ) -> tuple[FileChange | None, list[Outcome], list[Resource]]:
        try:
            outside = outside_of(file, self.request.paths)
            if outside is not None:
                raise FileProblem(f"not written: {outside}")
            original = read_file(file)
        except FileProblem as problem:
            return None, [Outcome(f, file, "refused", problem.message) for f, _, _ in items], []
        ctx = self.request.load
        first = load_bytes(original.data, file, ctx)
        if first.errors or not _same_objects(first.resources, [r for r in inventory.resources
                                                                if r.source.file == file]):
            return None, [Outcome(f, file, "refused", "the file changed since it was scanned")
                          for f, _, _ in items], []
        local_before = self.scan(Inventory(first.resources))
        local_before_keys = _active_keys(local_before, _by_ref(Inventory(first.resources)))
        pending = [(f, res, ops, 1) for f, res, ops in items]
        applied: list[tuple[Finding, Resource, list[Any], int]] = []
        outcomes: list[Outcome] = []
        data = original.data
        reloaded = first.resources
        attempted = offered | {finding_key(f, resources) for f, _, _ in items}
        for round_no in range(1, MAX_ROUNDS + 1):
            if not pending:
                break
            candidate = applied + pending
            result = self._prove(original, candidate, local_before_keys, outcomes)
            if result is None:
                # nothing of this round holds: keep what earlier rounds proved
                break
            data, reloaded, applied, after = result
            # findings of the original scan that still stand and now have a fix (the next round)
            pending = []
            new_refs = _by_ref(Inventory(reloaded))
            for f in after.findings:
                key = finding_key(f, new_refs)
                if f.fix is None or key in attempted or key not in baseline:
                    continue
                status, reason, ops = self.choose(f)
                attempted.add(key)
                if status != "chosen":
                    outcomes.append(Outcome(f, file, status, reason, round_no + 1))
                    continue
                res = new_refs[id(f.resource)]
                assert ops is not None
                pending.append((f, res, ops, round_no + 1))
        if not applied:
            return None, outcomes, []
        fixed = [Outcome(f, file, "fixed", None, rnd).at(res) for f, res, _, rnd in applied]
        outcomes.extend(fixed)
        if data == original.data:
            return None, outcomes, reloaded
        return FileChange(file, original, data, fixed), outcomes, reloaded

    def _edit(self, original: ReadFile, fixes: list[tuple[Finding, Resource, list[Any], int]],
              outcomes: list[Outcome]) -> tuple[bytes, list[tuple[Finding, Resource, list[Any], int]]]:
        """The text with every fix applied that the editor can make; refused ones become outcomes."""
        text = Text(original.data)
        editors: dict[int, DocumentEditor] = {}
        kept = []
        for item in fixes:
            f, res, ops, _ = item
            editor = editors.setdefault(res.source.doc_index,
                                        DocumentEditor(text, res.source.doc_index, original.json_mode))
            saved = text.text
            try:
                for op, path, value in ops:
                    editor.apply(Edit(op, (*res.source.base_path, *path), value))
            except EditRefused as refused:
                text.text = saved
                outcomes.append(Outcome(f, original.name, "refused", refused.reason))
                continue
            kept.append(item)
        return text.encode(), kept

    def _prove(self, original: ReadFile, fixes: list[tuple[Finding, Resource, list[Any], int]],
               before_keys: Counter[FindingKey], outcomes: list[Outcome],
               ) -> tuple[bytes, list[Resource], list[tuple[Finding, Resource, list[Any], int]], ScanResult] | None:
        """Edit and re-scan until every kept fix is proved (or none is left)."""
        for _ in range(MAX_PROOF_RETRIES):
            data, kept = self._edit(original, fixes, outcomes)
            fixes = kept
            if not fixes:
                return None
            loaded = load_bytes(data, original.name, self.request.load)
            if loaded.errors:
                for f, _, _, _ in fixes:
                    outcomes.append(Outcome(f, original.name, "refused", "the edited file does not load: "
                                            + loaded.errors[0].message))
                return None
            inventory = Inventory(loaded.resources)
            after = self.scan(inventory)
            edited = _edited_fields((res, ops) for _, res, ops, _ in fixes)
            after_keys = _loose(_active_keys(after, _by_ref(inventory)), edited)
            new = after_keys - _loose(before_keys, edited)
            failed = []
            for item in fixes:
                f, res, _, _ = item
                key = _loose_key(keyed(f, resource_key(res)), edited)
                if key in after_keys:
                    failed.append((item, "the finding is still there after the edit"))
                elif any(k[1] == resource_key(res) for k in new):
                    added = sorted({k[0] + " at " + k[2] for k in new if k[1] == resource_key(res)})
                    failed.append((item, "the edit brings a new finding: " + ", ".join(added)))
            if not failed and new:  # a new finding on no fixed resource: nothing is proved
                for f, _, _, _ in fixes:
                    outcomes.append(Outcome(f, original.name, "refused", "the edits bring new findings"))
                return None
            if not failed:
                return data, loaded.resources, fixes, after
            failed_ids = {id(item) for item, _ in failed}
            for item, reason in failed:
                outcomes.append(Outcome(item[0], original.name, "refused", reason))
            fixes = [item for item in fixes if id(item) not in failed_ids]
            if not fixes:
                return None
        return None

    # -- the whole input ----------------------------------------------------------------------

    def _global_proof(self, inventory: Inventory, before: ScanResult, resources: dict[int, Resource],
                      changes: list[FileChange], new_resources: dict[str, list[Resource]],
                      outcomes: list[Outcome]) -> tuple[ScanResult, list[FileChange]]:
        baseline = _active_keys(before, resources)
        for _ in range(MAX_PROOF_RETRIES):
            changed = {c.name for c in changes}
            merged = [r for r in inventory.resources if r.source.file not in changed]
            for c in changes:
                merged.extend(new_resources[c.name])
            inv = Inventory(merged, dict(inventory.facts))
            after = self.scan(inv)
            refs = _by_ref(inv)
            edited = {(o.resource, format_path(op.path)) for c in changes for o in c.fixed
                      if o.finding.fix is not None for op in o.finding.fix.ops}
            after_keys = _loose(_active_keys(after, refs), edited)
            new = after_keys - _loose(baseline, edited)
            fixed_still = {c.name for c in changes for o in c.fixed
                           if _loose_key(keyed(o.finding, o.resource), edited) in after_keys}
            blamed = {k[1][0] for k in new if k[1] is not None} & changed
            blamed |= fixed_still
            if any(k[1] is None for k in new) and changes:
                blamed = changed
            if not blamed:
                return after, changes
            for c in changes:
                if c.name in blamed:
                    for o in c.fixed:
                        o.status, o.reason = "refused", "the whole input scanned with this file's edits has new " \
                                                        "findings; the file is left as it was"
            changes = [c for c in changes if c.name not in blamed]
        return self.scan(inventory), []


# A finding at a field the fix edits keeps its identity when only its value changes (KH-UPG-011
# reports the image it judges: pinning the digest changes that value, not the finding).
EditedFields = set[tuple[ResourceKey | None, str]]


def _edited_fields(items: Iterable[tuple[Resource, list[Any]]]) -> EditedFields:
    return {(resource_key(res), format_path(path)) for res, ops in items for _, path, _ in ops}


def _loose_key(key: FindingKey, edited: EditedFields) -> FindingKey:
    return (key[0], key[1], key[2], None) if (key[1], key[2]) in edited else key


def _loose(keys: Counter[FindingKey], edited: EditedFields) -> Counter[FindingKey]:
    out: Counter[FindingKey] = Counter()
    for key, n in keys.items():
        out[_loose_key(key, edited)] += n
    return out


def _same_objects(a: Iterable[Resource], b: Iterable[Resource]) -> bool:
    return [resource_key(r) for r in a] == [resource_key(r) for r in b]


def _annotated_hunks(change: FileChange) -> list[tuple[Hunk, list[str]]]:
    """The diff's hunks, each with the controls whose fix lands in it."""
    old = Text(change.original.data).text
    new_text = Text(change.new).text
    lines: list[tuple[int, str]] = []
    docs = compose_all(new_text)
    from kubeharden.yamlsafe import locate

    for o in change.fixed:
        f = o.finding
        fix: Fix | None = f.fix
        if fix is None:
            continue
        root = docs[o.doc] if o.doc < len(docs) else None
        for op in fix.ops:
            line = locate(root, (*o.base, *op.path)) if root is not None else None
            if line is not None:
                lines.append((line + 1, f.control_id))
    out = []
    for hunk in hunks(old, new_text):
        ids = sorted({cid for line, cid in lines if hunk.new_start - 1 <= line <= hunk.new_end + 1})
        out.append((hunk, ids))
    return out


def parse_assignments(assignments: Iterable[str], parse: Callable[[str], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {text!r}: expected KEY=VALUE")
        out[key.strip()] = parse(value)
    return out


# ---------------------------------------------------------------------------------------------
# --ops OPS.json: operations given as data (no proof scan: no control asked for them)


@dataclass(frozen=True, slots=True)
class OpSpec:
    file: str
    doc: int
    edit: Edit


MAX_OPS_BYTES = 16 * 1024 * 1024


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def read_ops(path: str) -> list[OpSpec]:
    """The operations of an --ops file: a regular file of at most MAX_OPS_BYTES of strict JSON
    (no NaN/Infinity); UsageError `FILE:LINE: reason` otherwise."""
    try:
        raw = safeio.read_regular(path, MAX_OPS_BYTES)
    except OSError as exc:
        reason = exc.message if isinstance(exc, safeio.UnsafePathError) else (exc.strerror or type(exc).__name__)
        raise UsageError(f"{path}: cannot read: {reason}") from None
    try:
        data = json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # NaN, Infinity; integers of more than 4300 digits
        raise UsageError(f"{path}: invalid JSON: {exc}") from None
    return parse_ops(data, path)


def parse_ops(data: Any, origin: str) -> list[OpSpec]:
    """A JSON list of {"file", "doc", "op", "path", "value"} (UsageError naming the entry otherwise)."""
    if not isinstance(data, list):
        raise UsageError(f"{origin}: expected a JSON list of operations")
    out = []
    for i, item in enumerate(data):
        where = f"{origin}: operation {i}"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: not an object")
        file, doc, op, path = item.get("file"), item.get("doc", 0), item.get("op"), item.get("path")
        if not isinstance(file, str) or not file:
            raise UsageError(f"{where}: \"file\" must be a file name")
        if not isinstance(doc, int) or isinstance(doc, bool) or doc < 0:
            raise UsageError(f"{where}: \"doc\" must be a 0-based document index")
        if not isinstance(path, list) or not path or not all(
                isinstance(p, str) or (isinstance(p, int) and not isinstance(p, bool)) for p in path):
            raise UsageError(f"{where}: \"path\" must be a non-empty list of keys and indices")
        if op in ("set", "append", "remove-item") and "value" not in item:
            raise UsageError(f"{where}: {op} needs a \"value\"")
        problem = _value_problem(item.get("value"))
        if problem is not None:
            raise UsageError(f"{where}: \"value\" {problem}")
        try:
            edit = Edit(str(op), tuple(path), item.get("value"))
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
        out.append(OpSpec(file, doc, edit))
    return out


MAX_VALUE_DEPTH = 64  # deeper than any manifest field; the editor writes values recursively


def _value_problem(value: Any) -> str | None:
    """Why a value cannot be written into a manifest (None when it can): only what JSON and
    Kubernetes hold, finite numbers, nested at most MAX_VALUE_DEPTH levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_VALUE_DEPTH:
            return f"is nested deeper than {MAX_VALUE_DEPTH} levels"
        if isinstance(item, float) and not math.isfinite(item):
            return "holds a number out of range"
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return None


def apply_ops(specs: list[OpSpec], ctx: LoadContext, dry_run: bool, backup: bool) -> tuple[list[FileChange],
                                                                                          list[str]]:
    """Apply operations file by file: a file whose edits cannot all be made, or whose result no
    longer loads, is left as it was (the reason is returned)."""
    changes: list[FileChange] = []
    problems: list[str] = []
    by_file: dict[str, list[OpSpec]] = {}
    for spec in specs:
        by_file.setdefault(spec.file, []).append(spec)
    for name, file_specs in by_file.items():
        try:
            original = read_file(name)
            text = Text(original.data)
            editors: dict[int, DocumentEditor] = {}
            for spec in file_specs:
                editor = editors.setdefault(spec.doc, DocumentEditor(text, spec.doc, original.json_mode))
                editor.apply(spec.edit)
        except FileProblem as problem:
            problems.append(f"{name}: {problem.message}")
            continue
        except EditRefused as refused:
            problems.append(f"{name}: not changed: {refused.reason}")
            continue
        data = text.encode()
        if data == original.data:
            continue
        loaded = load_bytes(data, name, ctx)
        if loaded.errors:
            problems.append(f"{name}: not changed: the edited file does not load: {loaded.errors[0].message}")
            continue
        change = FileChange(name, original, data, [])
        change.hunks = [(h, ["--ops"]) for h in hunks(Text(original.data).text, Text(data).text)]
        if not dry_run:
            try:
                change.backup = write_file(original, data, backup)
                change.written = True
            except FileProblem as problem:
                change.error = problem.message
                problems.append(f"{name}: {problem.message}")
        changes.append(change)
    return changes, problems
