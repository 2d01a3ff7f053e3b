"""Conformance: every upstream pod-security-admission fixture, through pss.evaluate and the scan pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeharden import pss
from kubeharden.catalog import Settings
from kubeharden.model import Status
from kubeharden.scanner import ScanRequest, run_scan


def _cases(shared_dir: Path) -> list[dict[str, Any]]:
    base = shared_dir / "conformance" / "pss"
    with open(base / "cases.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def cases(shared_dir: Path) -> list[dict[str, Any]]:
    found = _cases(shared_dir)
    assert len(found) > 100  # the manifest is there and was read
    return found


def _load(shared_dir: Path, case: dict[str, Any]) -> dict[str, Any]:
    path = shared_dir / "conformance" / "pss" / case["file"]
    obj = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    assert isinstance(obj, dict)
    return obj


def test_direct_evaluation_agrees_with_every_fixture(shared_dir: Path, cases: list[dict[str, Any]]) -> None:
    disagreements: list[tuple[str, object]] = []
    for case in cases:
        obj = _load(shared_dir, case)
        found = pss.evaluate(obj.get("metadata"), obj.get("spec"), case["level"],
                             pss.parse_pss_version(case["version"]))
        checks = {v.check for v in found}
        if case["expect"] == "pass":
            if found:
                disagreements.append((case["file"], sorted(checks)))
        elif case["effective_check"] not in checks:
            disagreements.append((case["file"], f"expected {case['effective_check']}, got {sorted(checks)}"))
    assert not disagreements, disagreements


def test_scan_pipeline_agrees_with_every_fixture(shared_dir: Path, cases: list[dict[str, Any]]) -> None:
    disagreements: list[tuple[str, object]] = []
    for case in cases:
        path = shared_dir / "conformance" / "pss" / case["file"]
        request = ScanRequest(paths=[str(path)], profile=f"pss-{case['level']}",
                              settings=Settings(extra={"pss_version": case["version"]}))
        result = run_scan(request)
        assert not result.errors, (case["file"], result.errors)
        assert result.resources == 1
        failed = [r for r in result.controls if r.status is Status.FAIL]
        checks = {f.evidence["pss_check"] for f in result.findings}
        if case["expect"] == "pass":
            if failed or result.findings:
                disagreements.append((case["file"], sorted(checks)))
        elif case["effective_check"] not in checks:
            disagreements.append((case["file"], f"expected {case['effective_check']}, got {sorted(checks)}"))
        for finding in result.findings:
            assert finding.line is not None and finding.line >= 1, (case["file"], finding.path)
            assert finding.evidence["pss_version"] == case["version"]
    assert not disagreements, disagreements


def test_fixtures_cover_both_levels_versions_and_outcomes(cases: list[dict[str, Any]]) -> None:
    seen = {(c["level"], c["version"], c["expect"]) for c in cases}
    for level in ("baseline", "restricted"):
        for version in ("v1.0", "v1.37"):
            assert (level, version, "pass") in seen
            assert (level, version, "fail") in seen
