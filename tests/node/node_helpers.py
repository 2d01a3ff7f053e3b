"""Scan helpers for the node tests."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kubeharden.catalog import Settings
from kubeharden.cli import cli
from kubeharden.engine import ControlResult, ScanResult
from kubeharden.loader import LoadContext
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan

NODE_MODULES = ("control_plane", "kubelet", "encryption", "audit")


def scan_node(root: Path | None = None, bundle: Path | None = None, version: tuple[int, int] | None = None,
              processes: bool = False) -> ScanResult:
    source = {"bundle": str(bundle)} if bundle else {"root": str(root), "processes": processes}
    return run_scan(ScanRequest(settings=Settings(kubernetes_version=version), sources={"node": source}))


def scan_paths(*paths: str | Path) -> ScanResult:
    return run_scan(ScanRequest(paths=[str(p) for p in paths], load=LoadContext()))


def node_results(result: ScanResult) -> dict[str, ControlResult]:
    return {r.control.id: r for r in result.controls if r.control.module.rsplit(".", 1)[-1] in NODE_MODULES}


def status_of(result: ScanResult, control_id: str) -> Status:
    return node_results(result)[control_id].status


def messages(result: ScanResult, control_id: str) -> list[str]:
    return [f.message for f in node_results(result)[control_id].findings]


def collect_bundle(root: Path, out: Path) -> Path:
    """`kubeharden collect-node` of a node root (no /proc: the root is a copy)."""
    result = CliRunner().invoke(cli, ["collect-node", "--root", str(root), "--no-processes", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out
