"""`-f prometheus`: valid text exposition (parsed with prometheus_client's parser, a test dependency)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.reporters import prometheus
from kubeharden.scanner import ScanRequest, run_scan

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is not installed (test dependency)")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {family.name: [(dict(s.labels), s.value) for s in family.samples]
            for family in parser.text_string_to_metric_families(text)}


def test_exposition_parses_and_agrees_with_the_report() -> None:
    result = run_scan(ScanRequest(paths=[str(EXAMPLES / "insecure-shop")]))
    text = prometheus.render(result, now=1_700_000_000.0)
    metrics = families(text)
    findings = metrics["kubeharden_findings"]
    by_severity: dict[str, float] = {}
    for labels, value in findings:
        assert set(labels) == {"severity", "section", "control"}
        by_severity[labels["severity"]] = by_severity.get(labels["severity"], 0) + value
    assert {k: v for k, v in result.by_severity().items() if v} == by_severity
    status = metrics["kubeharden_control_status"]
    assert len(status) == 3 * len(result.controls)
    for r in result.controls:
        values = {labels["status"]: value for labels, value in status if labels["control"] == r.control.id}
        assert values == {s: (1.0 if s == r.status.value else 0.0) for s in ("pass", "fail", "not_assessed")}
    scores = {labels["section"]: value for labels, value in metrics["kubeharden_score"]}
    assert scores == {name: s["score"] for name, s in result.section_scores().items() if s["score"] is not None}
    assert metrics["kubeharden_score_overall"] == [({}, result.score())]
    assert metrics["kubeharden_resources"] == [({}, float(result.resources))]
    assert metrics["kubeharden_scan_duration_seconds"][0][1] == pytest.approx(result.duration)
    assert metrics["kubeharden_last_run_timestamp_seconds"] == [({}, 1_700_000_000.0)]
    [(info, one)] = metrics["kubeharden_info"]
    assert one == 1 and info["profile"] == "nsa"
    assert text.endswith("\n") and "\r" not in text


def test_label_values_are_escaped() -> None:
    text = "# HELP m x\n# TYPE m gauge\nm" + prometheus._labels(v='a "quoted"\\ value\nnext') + " 1\n"
    [(labels, _)] = families(text)["m"]
    assert labels == {"v": 'a "quoted"\\ value\nnext'}


def test_prom_extension_and_an_input_without_findings(tmp_path: Path) -> None:
    out = tmp_path / "kubeharden.prom"
    cm = tmp_path / "cm.yaml"
    cm.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = CliRunner().invoke(cli, ["scan", str(cm), "-c", "KH-POD-005", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0
    metrics = families(out.read_text())
    assert metrics["kubeharden_findings"] == []
    assert metrics["kubeharden_score"] == [] and metrics["kubeharden_score_overall"] == []  # nothing assessed
    status = metrics["kubeharden_control_status"]
    assert all(value == 0 for labels, value in status if labels["status"] != "not_assessed")
