"""JSON report. The contract (top-level keys and their fields) is stable and pinned by tests."""

from __future__ import annotations

from typing import Any, BinaryIO

from kubeharden.engine import ScanResult
from kubeharden.fingerprint import fingerprint
from kubeharden.model import Finding
from kubeharden.reporters import Reporter, jsonstream


def finding_to_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "control_id": f.control_id,
        "title": f.title,
        "severity": f.severity.label,
        "section": f.section.value,
        "resource": f.resource,
        "source": {"file": f.file, "line": f.line},
        "path": f.path,
        "message": f.message,
        "remediation": f.remediation,
    }
    if f.has_value:
        out["value"] = f.value
    if f.evidence:
        out["evidence"] = f.evidence
    if f.fix is not None:
        out["fix"] = f.fix.to_dict()
    out["excepted"] = f.excepted
    if f.exception is not None:
        out["exception"] = f.exception
    out["fingerprint"] = fingerprint(f)
    if f.baseline is not None:
        out["baseline"] = f.baseline
    return out


def to_dict(result: ScanResult, findings: list[Any] | None = None) -> dict[str, Any]:
    """The whole report as one dict; `findings` stands in for the findings list when given."""
    major, minor = result.kubernetes_version
    active = result.active_findings()
    return {
        "tool": result.tool,
        "profile": result.profile,
        "kubernetes_version": f"{major}.{minor}",
        "summary": {
            "resources": result.resources,
            "findings": len(active),
            "excepted": len(result.findings) - len(active),
            "by_severity": result.by_severity(),
            "score": result.score(),
            "sections": result.section_scores(),
            "errors": len(result.errors),
            "files": result.stats.files,
            "skipped": {
                "non_kubernetes": result.stats.skipped_non_kubernetes,
                "empty": result.stats.skipped_empty,
            },
        },
        "controls": [
            {
                "id": r.control.id,
                "title": r.control.title,
                "section": r.control.section.value,
                "guidance": list(r.control.guidance),
                "severity": r.control.severity.label,
                "status": r.status.value,
                **({"reason": r.reason} if r.reason else {}),
                "findings": sum(1 for f in r.findings if not f.excepted),
            }
            for r in result.controls
        ],
        "findings": [finding_to_dict(f) for f in result.findings] if findings is None else findings,
        "errors": [e.to_dict() for e in result.errors],
        "warnings": [e.to_dict() for e in result.warnings],
        "exceptions": {
            "expired": [r.to_dict() for r in result.exceptions.expired],
            "unused": [r.to_dict() for r in result.exceptions.unused],
        },
        "notes": result.notes,
    }


def stream(result: ScanResult, out: BinaryIO) -> None:
    jsonstream.stream(lambda findings: to_dict(result, findings), result.findings, finding_to_dict, out)


def render(result: ScanResult) -> bytes:
    return jsonstream.render(lambda findings: to_dict(result, findings), result.findings, finding_to_dict)


REPORTER = Reporter("json", render, "json", stream)
