"""Prometheus text exposition format (version 0.0.4), for node-exporter's textfile collector
(`-f prometheus -o /var/lib/node-exporter/kubeharden.prom`) or a Pushgateway.

Counts are of active findings (not excepted); excepted ones have their own metric. A control's
status is a state set: one series per status, 1 for the current one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

from kubeharden.engine import ScanResult
from kubeharden.model import Status
from kubeharden.reporters import Reporter


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, kind: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(**labels)} {_number(value)}")


def render(result: ScanResult, now: float | None = None) -> str:
    out = _Exposition()
    active: Counter[tuple[str, str, str]] = Counter()
    excepted: Counter[tuple[str, str, str]] = Counter()
    for f in result.findings:
        key = (f.severity.label, f.section.value, f.control_id)
        (excepted if f.excepted else active)[key] += 1
    out.family("kubeharden_findings", "Findings (not excepted) by severity, guidance section and control.", "gauge",
               ((dict(severity=s, section=sec, control=c), n) for (s, sec, c), n in sorted(active.items())))
    out.family("kubeharden_findings_excepted", "Findings covered by an exception.", "gauge",
               ((dict(severity=s, section=sec, control=c), n) for (s, sec, c), n in sorted(excepted.items())))
    out.family("kubeharden_control_status", "Control status: 1 for the status the control ended in.", "gauge",
               ((dict(control=r.control.id, status=status.value), 1 if r.status is status else 0)
                for r in result.controls for status in Status))
    sections = result.section_scores()
    out.family("kubeharden_score", "Score per guidance section (percent of the severity weight of assessed "
               "controls that passed).", "gauge",
               ((dict(section=name), s["score"]) for name, s in sections.items() if s["score"] is not None))
    score = result.score()
    out.family("kubeharden_score_overall", "Score over all assessed controls (percent).", "gauge",
               [({}, score)] if score is not None else [])
    out.family("kubeharden_controls", "Controls by status.", "gauge",
               ((dict(status=status.value), sum(1 for r in result.controls if r.status is status))
                for status in Status))
    out.family("kubeharden_resources", "Kubernetes objects scanned.", "gauge", [({}, result.resources)])
    out.family("kubeharden_input_errors", "Inputs that could not be read.", "gauge", [({}, len(result.errors))])
    out.family("kubeharden_input_warnings", "Documents skipped or read with a warning.", "gauge",
               [({}, len(result.warnings))])
    out.family("kubeharden_scan_duration_seconds", "Time the controls took.", "gauge", [({}, float(result.duration))])
    out.family("kubeharden_last_run_timestamp_seconds", "When the report was written (Unix time).", "gauge",
               [({}, float(time.time() if now is None else now))])
    major, minor = result.kubernetes_version
    out.family("kubeharden_info", "The scanner and what it assumed.", "gauge",
               [(dict(version=result.tool["version"], profile=result.profile,
                      kubernetes_version=f"{major}.{minor}"), 1)])
    return "\n".join(out.lines) + "\n"


REPORTER = Reporter("prometheus", render, "prom")
