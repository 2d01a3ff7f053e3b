"""The HTML dashboard: one self-contained file (no external asset, a Content-Security-Policy that
forbids every request), readable offline.

The summary (score per guidance section as an inline SVG chart, counts by severity) is rendered
here; the findings travel as compact JSON (a table of distinct strings and one small array per
finding) that the page's script filters, groups (by resource, by control) and shows a page at a
time, so that 100,000 findings open without freezing the browser.

Each finding carries the lines of YAML around it, read from its file with every value that may be a
credential masked (Secret and ConfigMap values, env values, credential-named keys, credential-shaped
strings): the engine never keeps secret values, and the snippet must not bring them back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from kubeharden import jsonout, safeio
from kubeharden.engine import ScanResult
from kubeharden.fingerprint import fingerprint
from kubeharden.loader import REDACTED, InputProblem, decode_input
from kubeharden.model import Finding, Section, Severity, Status
from kubeharden.reporters import Reporter
from kubeharden.yamlsafe import Limits

_ENV = Environment(loader=PackageLoader("kubeharden.reporters", "templates"),
                   autoescape=select_autoescape(["html", "j2"]))

SNIPPET_CONTEXT = 2  # lines shown before and after the finding's line
MAX_SNIPPET_LINE = 240  # characters kept of a long line
MAX_SNIPPET_FILES_BYTES = 512 * 1024**2  # source text held at once for snippets; beyond it, files are re-read
SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]

# -- masking -----------------------------------------------------------------------------------------

_KEY_VALUE = re.compile(r"^(?P<lead>\s*(?:-\s+)*)(?P<key>\"[^\"]*\"|'[^']*'|[^\s:#][^:#]*?)(?P<colon>:)"
                        r"(?P<space>\s+)(?P<value>\S.*)$")
_LIST_SCALAR = re.compile(r"^(?P<lead>\s*-\s+)(?P<value>[^\s{\[].*)$")
_CREDENTIAL_KEY = re.compile(r"pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|credential|private|auth|"
                             r"(^|[-_.])key$|cert(ificate)?[-_]?key|session|cookie|signature|salt", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY|(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}|gh[opsur]_[A-Za-z0-9]{20,}|github_pat_|"
    r"xox[abeoprs]-|eyJ[A-Za-z0-9_-]{8,}\.|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|(Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}|"
    r"[A-Za-z0-9+/_-]{32,}={0,2}|[0-9a-fA-F]{32,}")
# keys whose values a snippet shows even in a Secret or ConfigMap: they describe it, they hold no data
_DESCRIPTIVE_KEYS = frozenset({"apiVersion", "kind", "metadata", "name", "namespace", "type", "labels",
                               "annotations", "data", "stringData", "binaryData", "immutable"})
_MASK = REDACTED
_PLAIN = re.compile(r"^[\"']?(true|false|null|~|-?[0-9][0-9_.]*)[\"']?\s*(#.*)?$", re.IGNORECASE)


def match_end(item: re.Match[str], flag: str) -> int:
    return item.start("value") + len(flag)


_FLOW_PAIR = re.compile(r"(?P<key>[\"']?[A-Za-z0-9_.-]+[\"']?)(?P<sep>\s*:\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^,}\]]*)")


def _mask_flow(text: str, start: int, whole_document: bool) -> str:
    """`- {name: TOKEN, value: ...}`: each pair of a flow mapping judged like a line of its own."""
    def pair(m: re.Match[str]) -> str:
        key, value = m["key"].strip("\"'"), m["value"].strip()
        if not value or (_PLAIN.match(value) and not whole_document):
            return m.group(0)
        sensitive = ((whole_document and key not in _DESCRIPTIVE_KEYS) or key == "value"
                     or _CREDENTIAL_KEY.search(key) is not None or _CREDENTIAL_VALUE.search(value) is not None)
        return f"{m['key']}{m['sep']}{_MASK}" if sensitive else m.group(0)

    return text[:start] + _FLOW_PAIR.sub(pair, text[start:])


def _mask_line(text: str, whole_document: bool) -> str:
    """The line with its value masked when it may be a credential. `whole_document`: the
    document is a Secret or ConfigMap, whose every data value is masked."""
    content = text.lstrip(" -")
    if content.startswith(("{", "[")):
        return _mask_flow(text, len(text) - len(content), whole_document)
    match = _KEY_VALUE.match(text)
    if match is not None:
        key = match["key"].strip("\"'")
        value = match["value"]
        if value.startswith("#") or value in ("|", ">", "|-", ">-", "|+", ">+", "{}", "[]"):
            return text
        if _PLAIN.match(value) and not whole_document:
            return text  # a boolean or a number is never a credential
        if value.startswith(("{", "[")):
            return _mask_flow(text, match.start("value"), whole_document)
        sensitive = ((whole_document and key not in _DESCRIPTIVE_KEYS) or key == "value"
                     or _CREDENTIAL_KEY.search(key) is not None or _CREDENTIAL_VALUE.search(value) is not None)
        return text[:match.start("value")] + _MASK if sensitive else text
    stripped = text.strip()
    if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
        return text
    item = _LIST_SCALAR.match(text)
    if item is not None and not whole_document and _CREDENTIAL_VALUE.search(item["value"]) is None:
        flag, equals, value = item["value"].partition("=")
        if equals and _CREDENTIAL_KEY.search(flag) and not _PLAIN.match(value):
            return text[:match_end(item, flag)] + "=" + _MASK  # `- --token=...`
        return text  # `- NET_ADMIN`, `- --anonymous-auth=true`
    # a continuation line of a block scalar or a flow collection: its parent key is out of sight
    if whole_document or _CREDENTIAL_VALUE.search(stripped) is not None or "=" in stripped:
        return text[:len(text) - len(text.lstrip())] + _MASK
    return text


class _Snippets:
    """The lines around each finding, masked, from each file read once (while they fit in memory)."""

    def __init__(self) -> None:
        self.files: dict[str, list[str] | None] = {}
        self.held = 0
        self.max_bytes = Limits().max_file_bytes

    def _lines(self, file: str) -> list[str] | None:
        if file in self.files:
            return self.files[file]
        lines: list[str] | None = None
        try:
            if os.path.isfile(file):
                lines = decode_input(safeio.read_regular(file, self.max_bytes))[1].split("\n")
        except (OSError, safeio.UnsafePathError, InputProblem):  # a snippet is a courtesy, never an error
            lines = None
        size = sum(len(line) for line in lines) if lines else 0
        if self.held + size <= MAX_SNIPPET_FILES_BYTES:
            self.files[file] = lines
            self.held += size
        return lines

    def of(self, f: Finding) -> list[Any] | None:
        if not f.file or not f.line or f.file.startswith(("<", "cluster")):
            return None
        lines = self._lines(f.file)
        if not lines or f.line > len(lines):
            return None
        start = max(1, f.line - SNIPPET_CONTEXT)
        end = min(len(lines), f.line + SNIPPET_CONTEXT)
        start = _document_start(lines, start, f.line)
        end = _document_end(lines, f.line, end)
        whole = (f.resource or {}).get("kind") in ("Secret", "ConfigMap")
        shown = [_mask_line(lines[i - 1].rstrip("\r"), whole)[:MAX_SNIPPET_LINE] for i in range(start, end + 1)]
        return [start, f.line, shown]


def _document_start(lines: list[str], start: int, line: int) -> int:
    for i in range(line - 1, start - 1, -1):  # do not show the end of the previous document
        if lines[i - 1].startswith("---"):
            return i + 1 if i < line else line
    return start


def _document_end(lines: list[str], line: int, end: int) -> int:
    for i in range(line + 1, end + 1):
        if lines[i - 1].startswith("---"):
            return i - 1
    return end


# -- the data the page's script reads ----------------------------------------------------------------


class _Strings:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: str | None) -> int:
        if value is None:
            return -1
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


def _resource_name(f: Finding) -> str:
    res = f.resource or {}
    if not res:
        return ""
    ns = f"{res.get('namespace')}/" if res.get("namespace") else ""
    return f"{res.get('kind', '')}/{ns}{res.get('name', '')}"


_BASELINE = {None: 0, "new": 1, "existing": 2}


def page_data(result: ScanResult, snippet: Callable[[Finding], list[Any] | None] | None = None) -> dict[str, Any]:
    strings = _Strings()
    snippets: list[Any] = []
    fixes: list[Any] = []
    fix_index: dict[bytes, int] = {}
    control_fix = {r.control.id: r.control.fix for r in result.controls}
    snippet = snippet or _Snippets().of
    rows = []
    for f in result.findings:
        shown = snippet(f)
        if shown is not None:
            snippets.append(shown)
        fix_ref = -1
        if f.fix is not None:
            key = jsonout.dumps(f.fix.to_dict(), orjson.OPT_SORT_KEYS)
            fix_ref = fix_index.get(key, -1)
            if fix_ref < 0:
                fix_ref = fix_index[key] = len(fixes)
                fixes.append(f.fix.to_dict())
        res = f.resource or {}
        rows.append([
            SEVERITIES.index(f.severity.label), strings(f.control_id), strings(_resource_name(f)),
            strings(res.get("namespace") or ""), strings(f.file), f.line or 0, strings(f.path), strings(f.message),
            -1 if f.remediation == control_fix.get(f.control_id) else strings(f.remediation),
            1 if f.excepted else 0, strings(str((f.exception or {}).get("reason", ""))) if f.excepted else -1,
            len(snippets) - 1 if shown is not None else -1, fix_ref, _BASELINE.get(f.baseline, 0),
            strings(fingerprint(f)),
        ])
    controls = [{
        "id": r.control.id, "title": r.control.title, "section": r.control.section.value,
        "severity": r.control.severity.label, "status": r.status.value, "reason": r.reason,
        "what": r.control.what, "why": r.control.why, "fix": r.control.fix, "guidance": list(r.control.guidance),
        "findings": sum(1 for f in r.findings if not f.excepted),
    } for r in result.controls]
    return {
        "strings": strings.values, "findings": rows, "snippets": snippets, "fixes": fixes, "controls": controls,
        "severities": SEVERITIES,
        "sections": {s.value: s.label for s in Section},
        "baseline": any(f.baseline is not None for f in result.findings),
    }


def _json_for_script(value: Any) -> Markup:
    # `<` never occurs outside JSON strings, where \u003c means the same: no `</script>` can close the block
    return Markup(jsonout.dumps(value).replace(b"<", b"\\u003c").decode())


# -- the summary chart -------------------------------------------------------------------------------

_BAR_WIDTH, _LABEL_WIDTH, _ROW = 360, 300, 26


def _score_color(score: float | None) -> str:
    if score is None:
        return "#9aa0a6"
    return "#1e8e3e" if score >= 80 else "#e37400" if score >= 50 else "#c5221f"


def section_chart(result: ScanResult) -> list[dict[str, Any]]:
    bars = []
    for i, (name, s) in enumerate(result.section_scores().items()):
        score = s["score"]
        bars.append({
            "y": i * _ROW, "label": Section(name).label, "section": name,
            "width": 0 if score is None else round(_BAR_WIDTH * score / 100, 1),
            "text": "n/a" if score is None else f"{score:.0f}%", "color": _score_color(score),
            "passed": s["passed"], "failed": s["failed"], "not_assessed": s["not_assessed"],
        })
    return bars


def render(result: ScanResult) -> str:
    score = result.score()
    counts = result.by_severity()
    bars = section_chart(result)
    data = page_data(result)
    return _ENV.get_template("report.html.j2").render(
        profile=result.profile,
        version=".".join(map(str, result.kubernetes_version)),
        resources=result.resources,
        tool=f"{result.tool['name']} {result.tool['version']}",
        score="n/a" if score is None else f"{score:.0f}%",
        score_color=_score_color(score),
        by_severity=[(s, counts[s]) for s in SEVERITIES],
        excepted=len(result.findings) - len(result.active_findings()),
        bars=bars, chart_height=max(len(bars), 1) * _ROW + 8, bar_width=_BAR_WIDTH, label_width=_LABEL_WIDTH,
        not_assessed=[{"id": r.control.id, "title": r.control.title, "reason": r.reason}
                      for r in result.controls if r.status is Status.NOT_ASSESSED],
        errors=[f"{e.where}: {e.message}" for e in result.errors],
        warnings=[f"{w.where}: {w.message}" for w in result.warnings],
        notes=result.notes,
        controls=data["controls"], section_labels=data["sections"],
        data=_json_for_script(data),
    )


REPORTER = Reporter("html", render, "html")
