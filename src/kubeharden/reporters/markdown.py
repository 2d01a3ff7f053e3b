"""Markdown report, for pull-request comments and CI summaries."""

from __future__ import annotations

from kubeharden.engine import ScanResult
from kubeharden.model import Section, Status
from kubeharden.reporters import DEFAULT_VIEW, Reporter, View


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_TRUNCATED = "\n\n_Report cut at {limit} bytes ({left} findings not shown): the JSON or SARIF report has them all._\n"


def render(result: ScanResult, view: View = DEFAULT_VIEW) -> str:
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
    shown = [f for f in result.findings if view.min_severity is None or f.severity >= view.min_severity]
    findings_at = None
    if shown:
        out += ["", "## Findings", "", "| Severity | Control | Resource | Location | Message |",
                "|---|---|---|---|---|"]
        findings_at = len(out)
        for f in sorted(shown, key=lambda f: (-f.severity, f.control_id)):
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
    text = "\n".join(out) + "\n"
    if view.max_bytes is None or len(text.encode()) <= view.max_bytes or findings_at is None:
        return text
    return _cut(out, findings_at, len(shown), view.max_bytes)


def _cut(lines: list[str], findings_at: int, findings: int, limit: int) -> str:
    """Keep the summary and as many finding rows (most severe first) as fit, then the note."""
    head = "\n".join(lines[:findings_at]) + "\n"
    size = len(head.encode()) + len(_TRUNCATED.format(limit=limit, left=findings).encode()) + 16
    kept: list[str] = []
    for row in lines[findings_at:findings_at + findings]:
        size += len(row.encode()) + 1
        if size > limit:
            break
        kept.append(row)
    note = _TRUNCATED.format(limit=limit, left=findings - len(kept))
    return head + "".join(row + "\n" for row in kept) + note


REPORTER = Reporter("markdown", render, "md", render_view=render)
