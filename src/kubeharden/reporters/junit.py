from __future__ import annotations

from kubeharden.engine import ScanResult
from kubeharden.reporters import Reporter


def render(result: ScanResult) -> str:
    raise NotImplementedError("junit")


REPORTER = Reporter("junit", render, "junit")
