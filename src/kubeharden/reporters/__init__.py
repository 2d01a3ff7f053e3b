"""Reporters format a ScanResult; they never re-evaluate anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from kubeharden.engine import ScanResult
from kubeharden.model import Severity


@dataclass(frozen=True)
class View:
    """How a person asked to see the report. It changes what is shown, never what was found:
    machine-readable formats (JSON, SARIF, HTML) always hold everything."""

    details: bool = False               # the table lists every finding, not a summary per control
    min_severity: Severity | None = None  # table and Markdown show findings at or above this only
    quiet: bool = False                 # the table prints the summary line only
    fail_on: Severity | None = Severity.HIGH  # JUnit: what counts as a failed test (--fail-on)
    max_bytes: int | None = None        # Markdown: cut at this size with a note (PR comments: 64 KB)


DEFAULT_VIEW = View()


@dataclass(frozen=True)
class Reporter:
    name: str
    render: Callable[[ScanResult], str | bytes]  # bytes: UTF-8 already (large JSON reports)
    extension: str
    # Reporters whose output grows with the findings stream it, so that a large scan never holds
    # the whole report (and its intermediate objects) in memory at once.
    stream: Callable[[ScanResult, BinaryIO], None] | None = None
    # Reporters whose output follows the View (table, Markdown, JUnit).
    render_view: Callable[[ScanResult, View], str] | None = None

    def write(self, result: ScanResult, out: BinaryIO, view: View = DEFAULT_VIEW) -> None:
        if self.stream is not None:
            self.stream(result, out)
            return
        text = self.render_view(result, view) if self.render_view is not None else self.render(result)
        out.write(text if isinstance(text, bytes) else text.encode("utf-8"))


def reporters() -> dict[str, Reporter]:
    from kubeharden.reporters import gitlab, html, json_report, junit, markdown, prometheus, sarif, table

    found = [json_report.REPORTER, sarif.REPORTER, junit.REPORTER, markdown.REPORTER, html.REPORTER,
             table.REPORTER, prometheus.REPORTER, gitlab.REPORTER]
    return {r.name: r for r in found}
