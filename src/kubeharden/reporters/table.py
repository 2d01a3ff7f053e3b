"""Terminal report: findings grouped by section, then a summary with a score per section."""

from __future__ import annotations

import io
from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kubeharden.engine import ScanResult
from kubeharden.model import Finding, Section, Severity, Status
from kubeharden.reporters import Reporter

_WARNINGS_SHOWN = 20  # the rest are in the machine-readable reports

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


def print_table(result: ScanResult, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # pipes and CI logs: wide enough to stay readable
    grouped: dict[Section, list[Finding]] = defaultdict(list)
    for f in result.findings:
        grouped[f.section].append(f)
    for section in Section:
        findings = sorted(grouped.get(section, []), key=lambda f: (-f.severity, f.control_id, _location(f)))
        if not findings:
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
    counts = result.by_severity()
    sev_text = ", ".join(f"{counts[s.label]} {s.label}" for s in sorted(Severity, reverse=True))
    excepted = len(result.findings) - len(result.active_findings())
    line = Text(f"{result.resources} resources, {len(result.active_findings())} findings ({sev_text})")
    if excepted:
        line.append(f", {excepted} excepted")
    line.append(", score ")
    line.append_text(_score_text(result.score()))
    console.print(line)
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


def render(result: ScanResult) -> str:
    buf = io.StringIO()
    print_table(result, Console(file=buf, width=160, no_color=True))
    return buf.getvalue()


REPORTER = Reporter("table", render, "txt")
