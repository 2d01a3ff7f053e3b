"""Terminal report: findings grouped by section, then a summary with a score per section."""

from __future__ import annotations

import io
import re
from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubeharden.engine import ScanResult
from kubeharden.model import Finding, Section, Severity, Status
from kubeharden.reporters import DEFAULT_VIEW, Reporter, View

_WARNINGS_SHOWN = 20  # the rest are in the machine-readable reports
_TOP_RESOURCES = 3
_NARROW = 100  # columns below which findings are listed as blocks, not a table

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
}


def _location(f: Finding) -> str:
    if f.file is None:
        return ""
    return f"{f.file}:{f.line}" if f.line else f.file


def _resource(f: Finding) -> str:
    if not f.resource:
        return ""
    ns = f.resource.get("namespace")
    return f"{f.resource.get('kind')}/{ns + '/' if ns else ''}{f.resource.get('name')}"


def _score_text(score: float | None) -> Text:
    if score is None:
        return Text("n/a", style="dim")
    style = "green" if score >= 80 else "yellow" if score >= 50 else "red"
    return Text(f"{score:.0f}%", style=style)


def _shown(result: ScanResult, view: View) -> list[Finding]:
    if view.min_severity is None:
        return result.findings
    return [f for f in result.findings if f.severity >= view.min_severity]


def _print_control_summary(findings: list[Finding], console: Console) -> None:
    """One row per control: what a person reads first on a large scan (--details lists all)."""
    by_control: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        by_control[f.control_id].append(f)
    rows = []
    for control_id, group in by_control.items():
        active = [f for f in group if not f.excepted]
        worst = max((f.severity for f in active or group), default=Severity.LOW)
        rows.append((worst, len(active), control_id, group, active))
    rows.sort(key=lambda r: (-r[0], -r[1], r[2]))
    table = Table(title="Findings by control (--details lists every finding)", title_justify="left", expand=True)
    table.add_column("Severity", no_wrap=True, min_width=8)
    table.add_column("Control", no_wrap=True, min_width=10)
    table.add_column("Title", ratio=2)
    table.add_column("Findings", justify="right", no_wrap=True)
    table.add_column("Top resources", ratio=3)
    for worst, count, control_id, group, active in rows:
        resources: dict[str, int] = defaultdict(int)
        for f in active:
            resources[_resource(f) or _location(f)] += 1
        top = sorted(resources.items(), key=lambda kv: (-kv[1], kv[0]))[:_TOP_RESOURCES]
        top_text = ", ".join(name + (f" ({n})" if n > 1 else "") for name, n in top)
        if len(resources) > _TOP_RESOURCES:
            top_text += f" and {len(resources) - _TOP_RESOURCES} more"
        counted = str(count) + (f" (+{len(group) - count} excepted)" if len(group) > count else "")
        title = group[0].title
        checks = sorted({str(f.evidence["pss_check"]) for f in group if f.evidence.get("pss_check")})
        if checks:  # the Pod Security Standards check's own name, as PSA reports it
            title += f" ({', '.join(checks)})"
        table.add_row(Text(worst.label.upper(), style=SEVERITY_STYLE[worst]), control_id, title, counted, top_text)
    console.print(table)


def print_table(result: ScanResult, console: Console | None = None, view: View = DEFAULT_VIEW) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # pipes and CI logs: wide enough to stay readable
    if view.quiet:
        console.print(summary_line(result))
        if result.errors:
            console.print(Text(f"{len(result.errors)} input errors (listed on stderr)", style="bold red"))
        return
    shown = _shown(result, view)
    if not view.details:
        if shown:
            _print_control_summary(shown, console)
        _print_sections(result, console)
        return
    grouped: dict[Section, list[Finding]] = defaultdict(list)
    for f in shown:
        grouped[f.section].append(f)
    for section in Section:
        findings = sorted(grouped.get(section, []), key=lambda f: (-f.severity, f.control_id, _location(f)))
        if not findings:
            continue
        if console.width < _NARROW:
            _print_findings_stacked(section, findings, console)
            continue
        table = Table(title=section.label, title_justify="left", expand=True)
        table.add_column("Severity", no_wrap=True, min_width=8)
        table.add_column("Control", no_wrap=True, min_width=10)
        table.add_column("Resource / location", overflow="fold", ratio=2)
        table.add_column("Finding", overflow="fold", ratio=3, min_width=30)
        for f in findings:
            sev = Text(f.severity.label.upper(), style=SEVERITY_STYLE[f.severity])
            where = Text(_resource(f))
            if _location(f):
                where.append("\n" + _location(f), style="dim")
            msg = Text(f.message)
            if f.path:
                msg.append("\n" + f.path, style="dim")
            if f.excepted and f.exception:
                sev.stylize("dim strike")
                msg.append(f"\nexcepted: {f.exception.get('reason')}", style="dim")
            table.add_row(sev, f.control_id, where, msg)
        console.print(table)
    _print_sections(result, console)


_FILE_SEPARATORS = re.compile(r"(?<=/)")
_JSONPATH_SEPARATORS = re.compile(r"(?<=[.\]])")


def wrap_at_separators(text: str, width: int, indent: str = "", separators: re.Pattern[str] = _FILE_SEPARATORS) -> str:
    """Break a long file path after '/' (a JSONPath after '.' or ']') so that no line is wider
    than width; a segment longer than the width stays whole (copying it still works)."""
    lines, current = [], ""
    for piece in separators.split(text):
        if current and len(current) + len(piece) > width:
            lines.append(current)
            current = indent
        current += piece
    lines.append(current)
    return "\n".join(lines)


def _print_findings_stacked(section: Section, findings: list[Finding], console: Console) -> None:
    """On a narrow terminal a table would fold paths mid-word: one block per finding instead."""
    console.print(Text(section.label, style="bold"))
    width = max(console.width - 4, 20)
    for f in findings:
        head = Text(f.severity.label.upper(), style=SEVERITY_STYLE[f.severity])
        head.append(f" {f.control_id} {_resource(f)}")
        if f.excepted and f.exception:
            head.stylize("dim strike", 0, len(f.severity.label))
        console.print(head)
        if _location(f):
            console.print(Text("  " + wrap_at_separators(_location(f), width, "    "), style="dim"), overflow="ignore",
                          crop=False)
        console.print(Text("  " + f.message))
        if f.path:
            console.print(Text("  " + wrap_at_separators(f.path, width, "    ", _JSONPATH_SEPARATORS), style="dim"),
                          overflow="ignore",
                          crop=False)
        if f.excepted and f.exception:
            console.print(Text(f"  excepted: {f.exception.get('reason')}", style="dim"))


def summary_line(result: ScanResult) -> Text:
    """`412 resources, 96 findings (3 critical, ...), score 71% of 47 assessed controls (78 not assessed)`."""
    counts = result.by_severity()
    sev_text = ", ".join(f"{counts[s.label]} {s.label}" for s in sorted(Severity, reverse=True))
    excepted = len(result.findings) - len(result.active_findings())
    line = Text(f"{result.resources} resources, {len(result.active_findings())} findings ({sev_text})")
    if excepted:
        line.append(f", {excepted} excepted")
    line.append(", score ")
    line.append_text(_score_text(result.score()))
    assessed = sum(1 for r in result.controls if r.status is not Status.NOT_ASSESSED)
    not_assessed = len(result.controls) - assessed
    # a score says nothing of what was not assessed: say what it covers
    line.append(f" of {assessed} assessed control{'s' if assessed != 1 else ''}, weighted by severity")
    if not_assessed:
        line.append(f" ({not_assessed} not assessed)")
    return line


def _print_sections(result: ScanResult, console: Console) -> None:
    summary = Table(title="Summary by guidance section", title_justify="left")
    summary.add_column("Section")
    summary.add_column("Passed", justify="right")
    summary.add_column("Failed", justify="right")
    summary.add_column("Not assessed", justify="right")
    summary.add_column("Score", justify="right")
    for name, s in result.section_scores().items():
        summary.add_row(Section(name).label, str(s["passed"]), str(s["failed"]), str(s["not_assessed"]),
                        _score_text(s["score"]))
    console.print(summary)
    console.print(summary_line(result))
    not_assessed = sum(1 for r in result.controls if r.status is Status.NOT_ASSESSED)
    if not_assessed:
        console.print(Text(f"{not_assessed} controls not assessed (see JSON report for reasons)", style="dim"))
    if result.stats.skipped_non_kubernetes:
        # said aloud: a typo in apiVersion/kind would otherwise hide a whole manifest without a trace
        skipped = result.stats.skipped_non_kubernetes
        console.print(Text(f"{skipped} document{'s' if skipped != 1 else ''} skipped: no apiVersion/kind "
                           "(not Kubernetes objects)", style="dim"))
    for warning in result.warnings[:_WARNINGS_SHOWN]:
        console.print(Text(f"warning: {warning.where}: {warning.message}", style="yellow"))
    if len(result.warnings) > _WARNINGS_SHOWN:
        console.print(Text(f"... and {len(result.warnings) - _WARNINGS_SHOWN} more warnings (all in the JSON report)",
                           style="yellow"))
    if result.errors:
        console.print(Text(f"{len(result.errors)} input errors (listed on stderr)", style="bold red"))
    for note in result.notes:
        console.print(Text(note, style="dim"))


def render(result: ScanResult, view: View = DEFAULT_VIEW) -> str:
    buf = io.StringIO()
    print_table(result, Console(file=buf, width=160, no_color=True), view)
    return buf.getvalue()


REPORTER = Reporter("table", render, "txt", render_view=render)
