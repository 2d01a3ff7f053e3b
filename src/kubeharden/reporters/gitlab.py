"""GitLab code quality report (`-f gitlab`, artifacts:reports:codequality): one issue per active
finding, with the stable fingerprint, so merge requests show the findings they add or fix."""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from kubeharden.engine import ScanResult
from kubeharden.fingerprint import fingerprint
from kubeharden.model import Finding, Severity
from kubeharden.reporters import Reporter, jsonstream

_SEVERITY = {Severity.CRITICAL: "blocker", Severity.HIGH: "critical", Severity.MEDIUM: "major", Severity.LOW: "minor"}


def _issue(f: Finding) -> dict[str, Any]:
    path = f.file if f.file and not f.file.startswith(("<", "cluster")) else "(no file)"
    if os.path.isabs(path):
        relative = os.path.relpath(path)
        path = path if relative.startswith(os.pardir) else relative
    return {
        "type": "issue",
        "check_name": f.control_id,
        "description": f"{f.control_id}: {f.message}",
        "content": {"body": f"Fix: {f.remediation}"},
        "categories": ["Security"],
        "fingerprint": fingerprint(f),
        "severity": _SEVERITY[f.severity],
        "location": {"path": path.replace(os.sep, "/"), "lines": {"begin": f.line or 1}},
    }


def _active(result: ScanResult) -> list[Finding]:
    return result.active_findings()


def stream(result: ScanResult, out: BinaryIO) -> None:
    jsonstream.stream(lambda items: items, _active(result), _issue, out)


def render(result: ScanResult) -> bytes:
    return jsonstream.render(lambda items: items, _active(result), _issue)


REPORTER = Reporter("gitlab", render, "json", stream)
