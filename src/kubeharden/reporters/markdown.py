"""Markdown report, for pull-request comments and CI summaries."""

from __future__ import annotations

from kubeharden.engine import ScanResult
from kubeharden.model import Section, Status
from kubeharden.reporters import Reporter


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(result: ScanResult) -> str:
    counts = result.by_severity()
    score = result.score()
    out = [
        "# kubeharden report",
        "",
        f"Profile `{result.profile}`, Kubernetes {'.'.join(map(str, result.kubernetes_version))}, "
        f"{result.resources} resources. Score: **{'n/a' if score is None else f'{score:.0f}%'}**. "
        f"Findings: {counts['critical']} critical, {counts['high']} high, {counts['medium']} medium, "
        f"{counts['low']} low.",
        "",
        "| Section | Passed | Failed | Not assessed | Score |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in result.section_scores().items():
        sc = "n/a" if s["score"] is None else f"{s['score']:.0f}%"
        out.append(f"| {Section(name).label} | {s['passed']} | {s['failed']} | {s['not_assessed']} | {sc} |")
    if result.findings:
        out += ["", "## Findings", "", "| Severity | Control | Resource | Location | Message |",
                "|---|---|---|---|---|"]
        for f in sorted(result.findings, key=lambda f: (-f.severity, f.control_id)):
            res = f.resource or {}
            ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
            loc = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "")
            msg = f.message + (f" (excepted: {f.exception.get('reason')})" if f.exception else "")
            out.append(f"| {f.severity.label} | {f.control_id} | {_cell(res.get('kind', ''))}/{_cell(ns)}"
                       f"{_cell(res.get('name', ''))} | {_cell(loc)} | {_cell(msg)} |")
    skipped = [r for r in result.controls if r.status is Status.NOT_ASSESSED]
    if skipped:
        out += ["", "<details><summary>Not assessed</summary>", "", "| Control | Reason |", "|---|---|"]
        out += [f"| {r.control.id} {_cell(r.control.title)} | {_cell(r.reason)} |" for r in skipped]
        out += ["", "</details>"]
    if result.errors:
        out += ["", "## Input errors", ""]
        out += [f"- `{e.where}`: {e.message}" for e in result.errors]
    if result.warnings:
        out += ["", "## Input warnings", ""]
        out += [f"- `{w.where}`: {w.message}" for w in result.warnings]
    for note in result.notes:
        out += ["", f"_{note}_"]
    return "\n".join(out) + "\n"


REPORTER = Reporter("markdown", render, "md")
