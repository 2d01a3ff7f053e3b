"""Helpers for the guidance tests: scan texts, results by control."""

from __future__ import annotations

from pathlib import Path

from kubeharden.catalog import Settings
from kubeharden.engine import ControlResult, ScanResult
from kubeharden.loader import LoadContext
from kubeharden.scanner import ScanRequest, run_scan


def scan_texts(tmp_path: Path, files: dict[str, str], as_cluster: bool = False, only: tuple[str, ...] = (),
               **sources: dict[str, object]) -> ScanResult:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    paths = [str(tmp_path / name) for name in files]
    return run_scan(ScanRequest(paths=paths, load=LoadContext(), settings=Settings(as_cluster=as_cluster),
                                only=only, sources=dict(sources)))


def result_of(result: ScanResult, control_id: str) -> ControlResult:
    [found] = [r for r in result.controls if r.control.id == control_id]
    return found


def messages(result: ScanResult, control_id: str) -> list[str]:
    return [f.message for f in result_of(result, control_id).findings]
