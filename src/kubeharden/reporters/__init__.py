"""Reporters format a ScanResult; they never re-evaluate anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubeharden.engine import ScanResult


@dataclass(frozen=True)
class Reporter:
    name: str
    render: Callable[[ScanResult], str | bytes]  # bytes: UTF-8 already (large JSON reports)
    extension: str


def reporters() -> dict[str, Reporter]:
    from kubeharden.reporters import html, json_report, junit, markdown, sarif, table

    found = [json_report.REPORTER, sarif.REPORTER, junit.REPORTER, markdown.REPORTER, html.REPORTER,
             table.REPORTER]
    return {r.name: r for r in found}
