"""The engine: runs controls over an inventory and turns violations into findings.

Every control ends a scan in one of three states: pass, fail (with findings) or
not_assessed (with the reason). A control whose evidence is absent never passes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

from kubeharden import __version__
from kubeharden.builtin_exceptions import builtin_exception
from kubeharden.catalog import Context, Control, KubeVersion, Settings, all_controls
from kubeharden.controls.fixes import fix_for
from kubeharden.exceptions import ExceptionRule, ExceptionsOutcome, parse_inline
from kubeharden.inventory import POD_SPEC_PATHS, Inventory, PodSpecView
from kubeharden.loader import REDACTED, LineLocator, LoadStats
from kubeharden.model import (
    EXIT_INTERNAL,
    REPORT_BUGS,
    Finding,
    InputError,
    NotAssessed,
    Path,
    Resource,
    Section,
    SettingError,
    Severity,
    Source,
    Status,
    Violation,
    format_path,
    internal_error_site,
)
from kubeharden.versions import NEWEST_SUPPORTED

# How much a control counts in a score, by severity.
SEVERITY_WEIGHT = {Severity.LOW: 1, Severity.MEDIUM: 3, Severity.HIGH: 6, Severity.CRITICAL: 10}
_SENSITIVE_KEYS = {"data", "stringData", "binaryData"}


@dataclass
class ControlResult:
    control: Control
    status: Status
    findings: list[Finding] = field(default_factory=list)
    reason: str | None = None


@dataclass
class ScanResult:
    profile: str
    kubernetes_version: KubeVersion
    controls: list[ControlResult]
    findings: list[Finding]
    errors: list[InputError]
    warnings: list[InputError] = field(default_factory=list)
    stats: LoadStats = field(default_factory=LoadStats)
    resources: int = 0
    exceptions: ExceptionsOutcome = field(default_factory=ExceptionsOutcome)
    notes: list[str] = field(default_factory=list)  # e.g. the date of shipped version data
    duration: float = 0.0
    tool: dict[str, str] = field(default_factory=lambda: {"name": "kubeharden", "version": __version__})

    def active_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.excepted]

    def by_severity(self) -> dict[str, int]:
        counts = {s.label: 0 for s in Severity}
        for f in self.active_findings():
            counts[f.severity.label] += 1
        return counts

    def section_scores(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for section in Section:
            results = [r for r in self.controls if r.control.section is section]
            if not results:
                continue
            out[section.value] = _score(results)
        return out

    def score(self) -> float | None:
        return _score(self.controls)["score"]

    def exit_code(self, fail_on: Severity | None) -> int:
        if any(e.internal for e in self.errors):
            return EXIT_INTERNAL
        if self.errors:
            return 2
        if fail_on is None:
            return 0
        if any(f.severity >= fail_on for f in self.active_findings()):
            return 1
        return 0


def _score(results: Iterable[ControlResult]) -> dict[str, Any]:
    passed = failed = not_assessed = 0
    got = total = 0
    for r in results:
        weight = SEVERITY_WEIGHT[r.control.severity]
        if r.status is Status.PASS:
            passed += 1
            got += weight
            total += weight
        elif r.status is Status.FAIL:
            failed += 1
            total += weight
        else:
            not_assessed += 1
    score = round(100.0 * got / total, 1) if total else None
    return {"passed": passed, "failed": failed, "not_assessed": not_assessed, "score": score}


def _redact(violation: Violation) -> Any:
    if not violation.has_value:
        return None
    path = violation.path
    res = violation.resource
    if res is not None and res.kind in ("Secret", "ConfigMap") and _SENSITIVE_KEYS.intersection(
        p for p in path if isinstance(p, str)
    ):
        return REDACTED
    # env[i].value of a container may carry a credential; controls that report it pass no value
    if len(path) >= 3 and path[-1] == "value" and path[-3] == "env":
        return REDACTED
    return violation.value


def _unreadable_reason(kinds: Iterable[str], forbidden: dict[str, str]) -> str:
    return "; ".join(f"cannot read {kind}: {forbidden[kind]}" for kind in kinds)


def _requirement_reason(ctrl: Control, ctx: Context) -> str | None:
    if ctrl.manual:
        return ctrl.manual
    if not ctrl.applies_to_version(ctx.kubernetes_version):
        major, minor = ctx.kubernetes_version
        return f"does not apply to Kubernetes {major}.{minor}"
    if ctrl.requires is not None:
        reason = ctrl.requires(ctx)
        if reason:
            return reason
    forbidden = ctx.inventory.facts.get("forbidden_kinds") or {}
    blocked = [kind for kind in ctrl.kinds if kind in forbidden]
    if blocked:
        return _unreadable_reason(blocked, forbidden)
    if ctrl.kinds and not ctx.inventory.has_kind(*ctrl.kinds):
        return f"no {', '.join(ctrl.kinds)} in the input"
    return None


_T = TypeVar("_T")


class _KindTracker(Inventory):
    """The inventory as one control sees it, noting the kinds the control asks for.

    Used when some kinds could not be read (a live scan with partial permissions): a control
    that asked for an unreadable kind is not_assessed, as if it had declared the kind. A fresh
    object per control whose analyses (the NetworkPolicy model, the RBAC model...) are built
    through it, so that their reads are recorded too.
    """

    # Slots, not the shared attribute dict: these belong to this tracker alone.
    __slots__ = ("_own_analyses", "asked")
    asked: set[str]
    _own_analyses: dict[Callable[..., Any], Any]

    @classmethod
    def of(cls, inventory: Inventory) -> _KindTracker:
        tracker = cls.__new__(cls)
        # One attribute dict with the inventory: its cached indexes are computed once for all controls.
        tracker.__dict__ = inventory.__dict__
        tracker.asked = set()
        tracker._own_analyses = {}
        return tracker

    def analysis(self, build: Callable[[Inventory], _T]) -> _T:
        if build not in self._own_analyses:
            self._own_analyses[build] = build(self)
        return self._own_analyses[build]

    def of_kind(self, *kinds: str) -> list[Resource]:
        self.asked.update(kinds)
        return super().of_kind(*kinds)

    def has_kind(self, *kinds: str) -> bool:
        self.asked.update(kinds)
        return super().has_kind(*kinds)

    def get(self, kind: str, namespace: str | None, name: str) -> Resource | None:
        self.asked.add(kind)
        return super().get(kind, namespace, name)

    def with_labels(self, labels: dict[str, str], *kinds: str) -> list[Resource]:
        self.asked.update(kinds)
        return super().with_labels(labels, *kinds)

    def pod_specs(self) -> list[PodSpecView]:
        self.asked.update(POD_SPEC_PATHS)
        return super().pod_specs()


class Engine:
    def __init__(
        self,
        controls: list[Control],
        settings: Settings,
        exceptions: list[ExceptionRule] | None = None,
        today: dt.date | None = None,
    ) -> None:
        self.controls = controls
        self.settings = settings
        self.rules = exceptions or []
        self.today = today or dt.date.today()
        self._pending_lines: list[tuple[Finding, Source, Path]] = []
        self._inventory: Inventory | None = None  # the scan's, for built-in exceptions

    def _finding(self, ctrl: Control, v: Violation) -> Finding:
        res = v.resource
        source = v.source or (res.source if res is not None else None)
        line = v.line
        locate_later = line is None and res is not None and v.source is None
        if line is None and not locate_later and source is not None:
            line = source.line
        file = source.file if source is not None else None
        evidence = dict(v.evidence)
        if source is not None and source.origin:
            evidence.setdefault("origin", source.origin)
        # Evidence that is no input object may still be about one: a namespace without its Namespace
        # object, the node a kubelet command line runs on (controls put its reference in "resource").
        subject = evidence.pop("resource", None) if res is None else None
        finding = Finding(
            control_id=ctrl.id,
            severity=v.severity or ctrl.severity,
            resource=res.ref() if res is not None else subject,
            file=file,
            line=line,
            path=format_path(v.path),
            message=v.message,
            remediation=v.remediation or ctrl.fix,
            value=_redact(v),
            has_value=v.has_value,
            evidence=evidence,
            section=ctrl.section,
            title=ctrl.title,
            fix=v.fix if v.fix is not None else fix_for(ctrl.id, v),
        )
        if locate_later:
            assert res is not None
            self._pending_lines.append((finding, res.source, v.path))
        return finding

    def run(
        self,
        inventory: Inventory,
        *,
        profile: str = "nsa",
        errors: list[InputError] | None = None,
        warnings: list[InputError] | None = None,
        stats: LoadStats | None = None,
    ) -> ScanResult:
        started = time.perf_counter()
        version = self.settings.kubernetes_version or NEWEST_SUPPORTED
        ctx = Context(inventory, self.settings, version)
        self._inventory = inventory
        errors = list(errors or [])
        known_ids = {c.id for c in all_controls()}  # unknown = not in the catalog, not "not selected"
        inline: dict[int, dict[str, str]] = {}
        for res in inventory.resources:
            if "kubeharden.io/ignore" in res.annotations:
                parsed, problems = parse_inline(res, known_ids)
                inline[id(res.obj)] = parsed
                errors.extend(problems)
        active_rules = [r for r in self.rules if not r.expired(self.today)]
        results: list[ControlResult] = []
        all_findings: list[Finding] = []
        unreadable: dict[str, str] = inventory.facts.get("forbidden_kinds") or {}
        for ctrl in self.controls:
            reason = _requirement_reason(ctrl, ctx)
            if reason is not None:
                results.append(ControlResult(ctrl, Status.NOT_ASSESSED, reason=reason))
                continue
            assert ctrl.check is not None
            tracker = _KindTracker.of(inventory) if unreadable else None
            try:
                violations = list(ctrl.check(Context(tracker, self.settings, version) if tracker else ctx))
            except NotAssessed as na:
                results.append(ControlResult(ctrl, Status.NOT_ASSESSED, reason=na.reason))
                continue
            except SettingError as exc:
                errors.append(InputError(f"control {ctrl.id}", str(exc)))
                results.append(ControlResult(ctrl, Status.NOT_ASSESSED, reason=str(exc)))
                continue
            except Exception as exc:  # a bug in one control must not sink the scan
                # The exception's text can quote input values (a Secret's data): name only its type and place.
                where = internal_error_site(exc)
                errors.append(InputError(f"control {ctrl.id}", f"internal error: {where}; {REPORT_BUGS}",
                                         internal=True))
                results.append(ControlResult(ctrl, Status.NOT_ASSESSED, reason=f"internal error: {where}"))
                continue
            # As for the kinds a control declares: what it judged rests on a kind it could not
            # read (an absence may be a false finding, a pass may be false), so it is not_assessed.
            blocked = sorted(tracker.asked.intersection(unreadable)) if tracker is not None else []
            if blocked:
                results.append(ControlResult(ctrl, Status.NOT_ASSESSED, reason=_unreadable_reason(blocked, unreadable)))
                continue
            findings = []
            for v in violations:
                finding = self._finding(ctrl, v)
                self._apply_exceptions(finding, v, inline, active_rules)
                findings.append(finding)
            status = Status.FAIL if any(not f.excepted for f in findings) else Status.PASS
            results.append(ControlResult(ctrl, status, findings))
            all_findings.extend(findings)
        self._locate_lines()
        outcome = ExceptionsOutcome(
            expired=[r for r in self.rules if r.expired(self.today)],
            unused=[r for r in active_rules if r.uses == 0],
        )
        notes = list(inventory.facts.get("notes", []))
        return ScanResult(
            profile=profile,
            kubernetes_version=version,
            controls=results,
            findings=all_findings,
            errors=errors,
            warnings=list(warnings or []),
            stats=stats or LoadStats(),
            resources=len(inventory.resources),
            exceptions=outcome,
            notes=notes,
            duration=time.perf_counter() - started,
        )

    def _locate_lines(self) -> None:
        pending, self._pending_lines = self._pending_lines, []
        lines = LineLocator().resolve([(source, path) for _, source, path in pending])
        for (finding, _, _), line in zip(pending, lines, strict=True):
            finding.line = line

    def _apply_exceptions(
        self, finding: Finding, v: Violation, inline: dict[int, dict[str, str]], rules: list[ExceptionRule]
    ) -> None:
        if v.resource is not None:
            reason = inline.get(id(v.resource.obj), {}).get(finding.control_id)
            if reason is not None:
                finding.exception = {"kind": "annotation", "reason": reason}
                return
        for rule in rules:
            if rule.matches(finding):
                rule.uses += 1
                finding.exception = {
                    "kind": "file",
                    "reason": rule.reason,
                    "owner": rule.owner,
                    "expires": rule.expires.isoformat() if rule.expires else None,
                    "origin": rule.origin,
                }
                return
        if self.settings.builtin_exceptions and self._inventory is not None:
            finding.exception = builtin_exception(finding.control_id, v.resource, v.path, self._inventory)


def select_controls(
    controls: list[Control], only: Iterable[str] = (), skip: Iterable[str] = ()
) -> list[Control]:
    """Filter by control ids, guidance ids (NSA-POD-5: the controls implementing it) or wildcards
    of either, also comma-separated; a pattern that matches nothing is an error."""

    def matches(c: Control, pat: str) -> bool:
        return fnmatchcase(c.id, pat) or any(fnmatchcase(g.upper(), pat) for g in c.guidance)

    def expand(patterns: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for pattern in (p for group in patterns for p in group.split(",") if p.strip()):
            pat = pattern.strip().upper()
            matched = {c.id for c in controls if matches(c, pat)}
            if not matched:
                if any(matches(c, pat) for c in all_controls()):
                    raise ValueError(f"control {pattern!r} is not in the selected profile "
                                     "(see `kubeharden controls --profile NAME`)")
                raise ValueError(f"unknown control {pattern!r} (see `kubeharden controls`)")
            out |= matched
        return out

    only_set = expand(only)
    skip_set = expand(skip)
    return [c for c in controls if (not only_set or c.id in only_set) and c.id not in skip_set]
