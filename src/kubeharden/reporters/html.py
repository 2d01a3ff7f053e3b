"""Self-contained HTML report (no external assets, so opening it makes no network request)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, select_autoescape

from kubeharden.engine import ScanResult
from kubeharden.model import Section, Severity, Status
from kubeharden.reporters import Reporter

_ENV = Environment(loader=PackageLoader("kubeharden.reporters", "templates"),
                   autoescape=select_autoescape(["html", "j2"]))


def render(result: ScanResult) -> str:
    score = result.score()
    counts = result.by_severity()
    findings = []
    for f in sorted(result.findings, key=lambda f: (f.excepted, -f.severity, f.control_id)):
        res = f.resource or {}
        ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
        findings.append({
            "severity": f.severity.label, "control_id": f.control_id,
            "resource": f"{res.get('kind', '')}/{ns}{res.get('name', '')}" if res else "",
            "location": f"{f.file}:{f.line}" if f.file and f.line else (f.file or ""),
            "path": f.path, "message": f.message, "remediation": f.remediation,
            "excepted": f.excepted, "reason": (f.exception or {}).get("reason"),
        })
    sections = [
        {**s, "title": Section(name).label, "score": "n/a" if s["score"] is None else f"{s['score']:.0f}%"}
        for name, s in result.section_scores().items()
    ]
    return _ENV.get_template("report.html.j2").render(
        profile=result.profile,
        version=".".join(map(str, result.kubernetes_version)),
        resources=result.resources,
        tool=f"{result.tool['name']} {result.tool['version']}",
        score="n/a" if score is None else f"{score:.0f}%",
        by_severity=[(s.label, counts[s.label]) for s in sorted(Severity, reverse=True)],
        sections=sections,
        findings=findings,
        not_assessed=[{"id": r.control.id, "title": r.control.title, "reason": r.reason}
                      for r in result.controls if r.status is Status.NOT_ASSESSED],
        errors=[f"{e.where}: {e.message}" for e in result.errors],
        warnings=[f"{w.where}: {w.message}" for w in result.warnings],
        notes=result.notes,
    )


REPORTER = Reporter("html", render, "html")
