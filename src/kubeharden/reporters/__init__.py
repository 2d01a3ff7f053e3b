"""Reporters format a ScanResult; they never re-evaluate anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from kubeharden.engine import ScanResult


@dataclass(frozen=True)
class Reporter:
    name: str
    render: Callable[[ScanResult], str | bytes]  # bytes: UTF-8 already (large JSON reports)
    extension: str
    # Reporters whose output grows with the findings stream it, so that a large scan never holds
    # the whole report (and its intermediate objects) in memory at once.
    stream: Callable[[ScanResult, BinaryIO], None] | None = None

    def write(self, result: ScanResult, out: BinaryIO) -> None:
        if self.stream is not None:
            self.stream(result, out)
            return
        text = self.render(result)
        out.write(text if isinstance(text, bytes) else text.encode("utf-8"))


def reporters() -> dict[str, Reporter]:
    from kubeharden.reporters import html, json_report, junit, markdown, sarif, table

    found = [json_report.REPORTER, sarif.REPORTER, junit.REPORTER, markdown.REPORTER, html.REPORTER,
             table.REPORTER]
    return {r.name: r for r in found}
