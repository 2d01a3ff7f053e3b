"""JUnit XML report: a test suite per guidance section, a test case per control; failures list
the findings, not-assessed controls are skipped with their reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from kubeharden.engine import ControlResult, ScanResult
from kubeharden.model import Section, Severity, Status
from kubeharden.reporters import DEFAULT_VIEW, Reporter, View


def _finding_lines(r: ControlResult) -> str:
    lines = []
    for f in r.findings:
        if f.excepted:
            continue
        where = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "")
        res = f.resource or {}
        ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
        lines.append(f"[{f.severity.label}] {res.get('kind', '')}/{ns}{res.get('name', '')} {where} "
                     f"{f.path}: {f.message}")
    return "\n".join(lines)


def _failed(r: ControlResult, fail_on: Severity | None) -> bool:
    """A test fails as CI would: a finding at or above --fail-on (none: nothing fails)."""
    return r.status is Status.FAIL and fail_on is not None and any(
        f.severity >= fail_on for f in r.findings if not f.excepted)


def render(result: ScanResult, view: View = DEFAULT_VIEW) -> str:
    grouped: dict[Section, list[ControlResult]] = defaultdict(list)
    for r in result.controls:
        grouped[r.control.section].append(r)
    root = ET.Element("testsuites", name="kubeharden", tests=str(len(result.controls)),
                      failures=str(sum(_failed(r, view.fail_on) for r in result.controls)),
                      errors=str(len(result.errors)), time=f"{result.duration:.3f}")
    for section in Section:
        results = grouped.get(section)
        if not results:
            continue
        suite = ET.SubElement(
            root, "testsuite", name=section.label, tests=str(len(results)),
            failures=str(sum(_failed(r, view.fail_on) for r in results)), errors="0",
            skipped=str(sum(r.status is Status.NOT_ASSESSED for r in results)),
        )
        for r in results:
            case = ET.SubElement(suite, "testcase", name=f"{r.control.id} {r.control.title}",
                                 classname=f"kubeharden.{section.value}")
            if _failed(r, view.fail_on):
                count = sum(not f.excepted for f in r.findings)
                failure = ET.SubElement(case, "failure", type=r.control.severity.label,
                                        message=f"{count} finding(s); fix: {r.control.fix}")
                failure.text = _finding_lines(r)
            elif r.status is Status.FAIL:  # findings below --fail-on: reported, not failing
                ET.SubElement(case, "system-out").text = _finding_lines(r)
            elif r.status is Status.NOT_ASSESSED:
                ET.SubElement(case, "skipped", message=r.reason or "not assessed")
    if result.errors or result.warnings:
        suite = ET.SubElement(root, "testsuite", name="Input", tests=str(len(result.errors) + len(result.warnings)),
                              failures="0", errors=str(len(result.errors)), skipped=str(len(result.warnings)))
        for e in result.errors:
            case = ET.SubElement(suite, "testcase", name=e.where, classname="kubeharden.input")
            ET.SubElement(case, "error", type="input", message=e.message)
        for w in result.warnings:  # e.g. a document skipped as not Kubernetes: read, not judged
            case = ET.SubElement(suite, "testcase", name=w.where, classname="kubeharden.input")
            ET.SubElement(case, "skipped", message=w.message)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


REPORTER = Reporter("junit", render, "xml", render_view=render)
