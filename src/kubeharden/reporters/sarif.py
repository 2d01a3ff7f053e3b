"""SARIF 2.1.0 report (valid against the OASIS schema): one rule per control that ran, one
result per finding with a relative path and the real line; excepted findings are suppressed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from kubeharden.engine import ScanResult
from kubeharden.fingerprint import FINGERPRINT_VERSION, fingerprint
from kubeharden.model import Finding, Severity, Status
from kubeharden.reporters import Reporter, jsonstream

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/kubeharden/kubeharden"
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
# GitHub code scanning reads this property to rank security results (0.0-10.0).
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0"}


def _artifact(file: str) -> dict[str, Any]:
    """Files under the working directory are relative to SRCROOT (what code scanning maps to the
    repository); others are relative to FILEROOT, the file system root, never `../`."""
    absolute = os.path.abspath(file)
    relative = os.path.relpath(absolute)
    if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
        return {"uri": quote(Path(relative).as_posix()), "uriBaseId": "SRCROOT"}
    return {"uri": quote(Path(absolute).as_posix().lstrip("/")), "uriBaseId": "FILEROOT"}


def _origin_file(f: Finding) -> str | None:
    """The template (Helm `# Source:`) or base file (Kustomize) a rendered object came from, when
    it is a file on disk: the place a person edits, rather than the chart directory."""
    origin = f.evidence.get("origin") if f.evidence else None
    if not isinstance(origin, str) or not f.file or origin.startswith("/api"):
        return None
    origin = origin.split(" (", 1)[0]  # "kustomization.yaml (ConfigMapGenerator)"
    if os.path.isabs(origin):
        return origin if os.path.isfile(origin) else None
    # Helm: "CHART/templates/x.yaml", CHART being the chart's name; the finding's file is its directory
    parts = Path(origin).parts
    if len(parts) > 1 and os.path.isdir(f.file):
        candidate = os.path.join(f.file, *parts[1:])
        if os.path.isfile(candidate):
            return candidate
    return None


def _location(f: Finding) -> dict[str, Any]:
    loc: dict[str, Any] = {}
    origin = _origin_file(f)
    if origin is not None:
        # the line is the rendered text's, not the template's: the file alone is the honest location
        loc["physicalLocation"] = {"artifactLocation": _artifact(origin)}
    elif f.file and not f.file.startswith(("<", "cluster:")):
        physical: dict[str, Any] = {"artifactLocation": _artifact(f.file)}
        if f.line:
            physical["region"] = {"startLine": f.line}
        loc["physicalLocation"] = physical
    if f.resource:
        res = f.resource
        ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
        name = f"{res.get('kind')}/{ns}{res.get('name')}"
        loc["logicalLocations"] = [{"fullyQualifiedName": f"{name}:{f.path}" if f.path else name,
                                    "kind": "resource"}]
    return loc


def _result(f: Finding, rule_index: dict[str, int]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "ruleId": f.control_id,
        "ruleIndex": rule_index[f.control_id],
        "level": _LEVEL[f.severity],
        "message": {"text": f"{f.message}. Fix: {f.remediation}"},
        "locations": [_location(f)],
        "partialFingerprints": {FINGERPRINT_VERSION: fingerprint(f)},
        "properties": {"severity": f.severity.label, "security-severity": _SECURITY_SEVERITY[f.severity],
                       "path": f.path, "resource": f.resource},
    }
    if f.exception:
        item["suppressions"] = [{
            "kind": "inSource" if f.exception.get("kind") == "annotation" else "external",
            "justification": str(f.exception.get("reason", "")),
        }]
    return item


def _rule_index(result: ScanResult) -> dict[str, int]:
    return {r.control.id: i for i, r in enumerate(_ran(result))}


def _ran(result: ScanResult) -> list[Any]:
    return [r for r in result.controls if r.status is not Status.NOT_ASSESSED or r.findings]


def to_sarif(result: ScanResult, results: list[Any] | None = None) -> dict[str, Any]:
    """The whole SARIF log; `results` stands in for the results list when given."""
    ran = _ran(result)
    rule_index = _rule_index(result)
    rules = []
    for r in ran:
        c = r.control
        # Code scanning ranks alerts by their rule's security-severity: a control whose finding
        # was raised above the control's own severity (a docker.sock mount) is ranked by it.
        severity = max((f.severity for f in r.findings if not f.excepted), default=c.severity)
        help_md = (f"**What:** {c.what}\n\n**Why:** {c.why}\n\n**How to fix:** {c.fix}\n\n"
                   f"**Guidance:** {', '.join(c.guidance)}")
        rules.append({
            "id": c.id,
            "name": "".join(w.capitalize() for w in c.title.replace("/", " ").split() if w.isalnum()) or c.id,
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": c.what},
            "help": {"text": f"{c.why} Fix: {c.fix}", "markdown": help_md},
            "defaultConfiguration": {"level": _LEVEL[c.severity]},
            "properties": {
                "tags": ["security", "kubernetes", c.section.value, *c.guidance],
                "security-severity": _SECURITY_SEVERITY[max(severity, c.severity)],
                "precision": "high",
            },
        })
    notifications = [
        {
            "level": level,
            "message": {"text": e.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": _artifact(e.source),
                **({"region": {"startLine": e.line}} if e.line else {}),
            }}] if not e.source.startswith(("<", "control ")) else [],
        }
        for level, problems in (("error", result.errors), ("warning", result.warnings))
        for e in problems
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "kubeharden",
                "version": result.tool["version"],
                "semanticVersion": result.tool["version"],
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "originalUriBaseIds": {"SRCROOT": {"uri": Path.cwd().as_uri() + "/"}, "FILEROOT": {"uri": "file:///"}},
            "invocations": [{
                "executionSuccessful": not result.errors,
                "toolExecutionNotifications": notifications,
            }],
            "results": [_result(f, rule_index) for f in result.findings] if results is None else results,
            "properties": {"profile": result.profile, "score": result.score()},
        }],
    }


def stream(result: ScanResult, out: BinaryIO) -> None:
    rule_index = _rule_index(result)
    jsonstream.stream(lambda results: to_sarif(result, results), result.findings,
                      lambda f: _result(f, rule_index), out)


def render(result: ScanResult) -> bytes:
    rule_index = _rule_index(result)
    return jsonstream.render(lambda results: to_sarif(result, results), result.findings,
                             lambda f: _result(f, rule_index))


REPORTER = Reporter("sarif", render, "sarif", stream)
