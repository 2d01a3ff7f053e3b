"""`kubeharden cis` (NSA-UPG-5): kube-bench JSON (written to kube-bench's documented shape)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from kubeharden.cis import map_item, parse_report
from kubeharden.cli import cli

DATA = Path(__file__).parent / "data" / "kube-bench.json"


def test_results_are_mapped_by_what_they_check() -> None:
    results = {r.number: r for r in parse_report(DATA.read_text())}
    assert results["1.2.1"].controls == ["KH-CP-001"] and "NSA-AUTH-3" in results["1.2.1"].guidance
    assert results["4.2.1"].controls == ["KH-NODE-001"] and "NSA-NODE-4" in results["4.2.1"].guidance
    assert results["1.2.16"].controls == ["KH-LOG-001"] and results["1.2.16"].status == "FAIL"
    assert results["1.1.1"].controls == ["KH-CP-032"]
    assert results["1.2.29"].controls == ["KH-CP-006"]
    assert results["4.2.99"].controls == [] and results["4.2.99"].guidance == []
    assert map_item("Ensure that the CNI in use supports NetworkPolicies (Manual)", "policies")[1] == [
        "NSA-NET-5", "NSA-NET-6", "NSA-NET-4"]


def test_old_list_shape_is_read() -> None:
    controls = json.loads(DATA.read_text())["Controls"]
    assert len(parse_report(json.dumps(controls))) == len(parse_report(DATA.read_text())) == 6


def test_cli_json_with_our_report(tmp_path: Path) -> None:
    ours = tmp_path / "kh.json"
    ours.write_text(json.dumps({"controls": [{"id": "KH-LOG-001", "status": "fail"},
                                             {"id": "KH-CP-001", "status": "pass"}]}))
    result = CliRunner().invoke(cli, ["cis", str(DATA), "--report", str(ours), "-f", "json"])
    assert result.exit_code == 1  # kube-bench has failures
    doc = json.loads(result.output)
    assert doc["summary"] == {"PASS": 2, "FAIL": 2, "WARN": 1, "INFO": 1}
    assert doc["checked_by_kubeharden"] == ["1.1.1", "1.2.1", "1.2.16", "1.2.29", "4.2.1"]
    rows = {r["cis"]: r for r in doc["results"]}
    assert rows["1.2.16"]["kubeharden_status"] == {"KH-LOG-001": "fail"}
    assert rows["1.1.1"]["kubeharden_status"] == {"KH-CP-032": "not run"}
    table = CliRunner().invoke(cli, ["cis", str(DATA), "--only-failed"], env={"COLUMNS": "200"})
    assert "1.2.16" in table.output and "4.2.1" not in table.output


def test_bad_reports_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(cli, ["cis", str(bad)])
    assert result.exit_code == 2 and "not JSON" in result.output
    bad.write_text('{"Controls": [{"tests": [{"results": [{"test_number": "1", "status": "MAYBE"}]}]}]}')
    result = CliRunner().invoke(cli, ["cis", str(bad)])
    assert result.exit_code == 2 and "unknown status 'MAYBE'" in result.output
