"""Exit codes, the JSON contract, SARIF and JUnit validity, and the other report formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import CLEAN_POD, PRIVILEGED_POD, run, scan_json, write

ONLY_POD = ("-c", "KH-POD-005", "-c", "KH-POD-006", "-c", "KH-POD-007")


def test_exit_code_0_when_nothing_at_or_above_threshold(tmp_path: Path) -> None:
    code, report = scan_json(str(write(tmp_path, "p.yaml", CLEAN_POD)))
    assert code == 0 and report["findings"] == []


def test_exit_code_1_on_findings_at_threshold(tmp_path: Path) -> None:
    path = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    assert run("scan", path, *ONLY_POD, "-f", "json").exit_code == 1
    host_net = CLEAN_POD.replace("spec:\n", "spec:\n  hostNetwork: true\n")
    path2 = str(write(tmp_path, "h.yaml", host_net))
    assert run("scan", path2, *ONLY_POD, "--fail-on", "critical", "-f", "json").exit_code == 0
    assert run("scan", path2, *ONLY_POD, "--fail-on", "high", "-f", "json").exit_code == 1
    assert run("scan", path, *ONLY_POD, "--fail-on", "none", "-f", "json").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--profile", "nope"),
        ("-c", "KH-NOPE-999"),
        ("--skip", "KH-TYPO-*"),
        ("--fail-on", "severe"),
        ("--kubernetes-version", "one.two"),
        ("--exceptions", "/nonexistent/exceptions.yaml"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = str(write(tmp_path, "p.yaml", CLEAN_POD))
    result = run("scan", path, *args)
    assert result.exit_code == 2, result.output


def test_scan_without_inputs_is_usage_error() -> None:
    assert run("scan").exit_code == 2


def test_json_contract(tmp_path: Path) -> None:
    code, report = scan_json(str(write(tmp_path, "p.yaml", PRIVILEGED_POD)))
    assert code == 1
    assert {"tool", "profile", "kubernetes_version", "summary", "controls", "findings", "errors"} <= set(report)
    assert report["tool"]["name"] == "kubeharden" and report["tool"]["version"]
    assert report["profile"] == "nsa"
    assert report["kubernetes_version"].startswith("1.")
    summary = report["summary"]
    assert {"resources", "findings", "by_severity", "score", "sections"} <= set(summary)
    assert summary["resources"] == 1 and summary["findings"] == 1
    assert summary["by_severity"] == {"low": 0, "medium": 0, "high": 0, "critical": 1}
    assert set(summary["sections"]["pod-security"]) == {"passed", "failed", "not_assessed", "score"}
    assert summary["sections"]["pod-security"]["failed"] == 1
    assert 0 <= summary["score"] < 100
    control = next(c for c in report["controls"] if c["id"] == "KH-POD-005")
    assert {"id", "title", "section", "guidance", "severity", "status", "findings"} <= set(control)
    assert control["status"] == "fail" and control["guidance"] == ["NSA-POD-5"] and control["findings"] == 1
    [finding] = report["findings"]
    assert {"control_id", "severity", "resource", "source", "path", "message", "remediation",
            "fingerprint"} <= set(finding)
    # stable identity (kubeharden.fingerprint): 32 hex digits; "baseline" only when compared with one
    assert len(finding["fingerprint"]) == 32 and int(finding["fingerprint"], 16) >= 0
    assert "baseline" not in finding
    assert finding["resource"] == {"apiVersion": "v1", "kind": "Pod", "namespace": "apps", "name": "priv"}
    assert finding["source"]["line"] == 11 and finding["source"]["file"].endswith("p.yaml")
    assert finding["value"] is True
    assert report["errors"] == []


def test_not_assessed_when_evidence_is_absent(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    code, report = scan_json(str(write(tmp_path, "cm.yaml", cm)))
    assert code == 0
    for control in report["controls"]:
        assert control["status"] == "not_assessed", control
        assert "no " in control["reason"]
    assert report["summary"]["score"] is None


def test_sarif_is_valid_with_relative_paths_and_real_lines(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jsonschema

    monkeypatch.chdir(tmp_path)
    write(tmp_path, "k8s/p.yaml", CLEAN_POD + "---\n" + PRIVILEGED_POD)
    result = run("scan", "k8s", *ONLY_POD, "-f", "sarif", "-o", "out.sarif")
    assert result.exit_code == 1
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    schema = json.loads((shared_dir / "schemas" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    run_ = sarif["runs"][0]
    [res] = run_["results"]
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "k8s/p.yaml", "uriBaseId": "SRCROOT"}
    assert loc["region"]["startLine"] == 21
    rule = run_["tool"]["driver"]["rules"][res["ruleIndex"]]
    assert rule["id"] == "KH-POD-005" and rule["help"]["text"]
    assert res["level"] == "error"


def test_junit_is_well_formed_and_valid(tmp_path: Path, shared_dir: Path) -> None:
    import xmlschema

    out = tmp_path / "out.xml"
    result = run("scan", str(write(tmp_path, "p.yaml", PRIVILEGED_POD)), *ONLY_POD, "-f", "junit", "-o", str(out))
    assert result.exit_code == 1
    xmlschema.XMLSchema(str(shared_dir / "schemas" / "junit.xsd")).validate(str(out))
    root = ET.parse(out).getroot()
    failures = root.findall(".//failure")
    assert len(failures) == 1 and "privileged" in (failures[0].text or "")


def test_junit_well_formed_without_shared(tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    run("scan", str(write(tmp_path, "cm.yaml", cm)), *ONLY_POD, "-o", str(out))
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and len(root.findall(".//skipped")) == 3


def test_several_formats_in_one_run(tmp_path: Path) -> None:
    path = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    outs = {fmt: tmp_path / f"r.{ext}" for fmt, ext in
            [("json", "json"), ("sarif", "sarif"), ("junit", "xml"), ("markdown", "md"), ("html", "html")]}
    args = [a for fmt, p in outs.items() for a in ("-f", fmt, "-o", str(p))]
    result = run("scan", path, *ONLY_POD, *args)
    assert result.exit_code == 1
    assert json.loads(outs["json"].read_text())["summary"]["findings"] == 1
    assert "KH-POD-005" in outs["markdown"].read_text()
    html = outs["html"].read_text()
    assert "<table>" in html and "privileged" in html and "http://" not in html.split("<body>")[0]


def test_format_inferred_from_extension_and_input_never_overwritten(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", PRIVILEGED_POD)
    out = tmp_path / "report.sarif"
    assert run("scan", str(path), *ONLY_POD, "-o", str(out)).exit_code == 1
    assert json.loads(out.read_text())["version"] == "2.1.0"
    result = run("scan", str(path), *ONLY_POD, "-f", "json", "-o", str(path))
    assert result.exit_code == 2
    assert path.read_text() == PRIVILEGED_POD


def test_table_output_has_summary(tmp_path: Path) -> None:
    result = run("scan", str(write(tmp_path, "p.yaml", PRIVILEGED_POD)), *ONLY_POD)
    assert result.exit_code == 1
    assert "KH-POD-005" in result.output and "Summary by guidance section" in result.output
    assert "skipped" not in result.output


def test_table_output_says_how_many_documents_were_not_kubernetes(tmp_path: Path) -> None:
    write(tmp_path, "values.yaml", "replicaCount: 3\n---\napiversion: v1\nkind: Pod\n")
    result = run("scan", str(tmp_path), *ONLY_POD)
    assert "2 documents skipped: no apiVersion/kind" in result.output


def test_controls_and_explain() -> None:
    listing = run("controls", "-f", "json")
    assert listing.exit_code == 0
    ids = {c["id"] for c in json.loads(listing.output)}
    assert "KH-POD-005" in ids
    explained = run("explain", "kh-pod-005")
    assert explained.exit_code == 0 and "NSA-POD-5" in explained.output and "privileged" in explained.output
    assert run("explain", "KH-NOPE-001").exit_code == 2
    assert run("controls", "--profile", "nope").exit_code == 2
    examples = str(Path(__file__).resolve().parents[2] / "examples")
    outside = run("scan", examples, "--profile", "pss-baseline", "-c", "KH-POD-005")
    assert outside.exit_code == 2 and "not in the selected profile" in outside.output
    assert "unknown control 'KH-POD-0055'" in run("scan", examples, "-c", "KH-POD-0055").output


def test_python_m_entry_point() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "kubeharden", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "kubeharden" in out.stdout


def test_bundled_examples() -> None:
    """The insecure shop fails in every manifest-judgeable section; the hardened workload is clean."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    result = run("scan", str(examples / "insecure-shop"), "-f", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    failed_sections = {s for s, v in report["summary"]["sections"].items() if v["failed"]}
    assert {"pod-security", "network", "authentication-authorization", "encryption-secrets"} <= failed_sections
    clean = run("scan", str(examples / "hardened-workload.yaml"), "-f", "json")
    assert clean.exit_code == 0
    clean_report = json.loads(clean.stdout)
    assert clean_report["findings"] == [] and clean_report["summary"]["score"] == 100.0


@pytest.mark.parametrize("pods", [0, 1, 900])
def test_streamed_json_and_sarif_reports_are_byte_identical_to_one_dump(tmp_path: Path, pods: int) -> None:
    """The JSON report is written a chunk of findings at a time (bounded memory on large scans);
    the bytes must be exactly one orjson dump of the whole report, whatever the chunking (SARIF too)."""
    import orjson

    from kubeharden.reporters import json_report, jsonstream, sarif
    from kubeharden.scanner import ScanRequest, run_scan

    docs = [PRIVILEGED_POD.replace("name: priv", f"name: priv-{i}", 1) for i in range(pods)] or [CLEAN_POD]
    path = write(tmp_path, "pods.yaml", "\n---\n".join(docs))
    result = run_scan(ScanRequest(paths=[str(path)]))
    assert (len(result.findings) > jsonstream.CHUNK) is (pods == 900)
    options = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    assert json_report.render(result) == orjson.dumps(json_report.to_dict(result), option=options) + b"\n"
    assert sarif.render(result) == orjson.dumps(sarif.to_sarif(result), option=options) + b"\n"
    out = tmp_path / "report.json"
    assert run("scan", str(path), "-o", str(out)).exit_code in (0, 1)
    assert json.loads(out.read_bytes())["summary"]["findings"] == len(result.active_findings())


def test_two_reports_cannot_share_stdout(tmp_path: Path) -> None:
    pod = str(write(tmp_path, "p.yaml", PRIVILEGED_POD))
    result = run("scan", pod, *ONLY_POD, "-f", "json", "-f", "sarif")
    assert result.exit_code == 2 and "only one report can go to standard output" in result.output
    out = tmp_path / "r.sarif"
    result = run("scan", pod, *ONLY_POD, "-f", "sarif", "-o", str(out), "-f", "json")
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"] and json.loads(out.read_text())


def test_controls_table_stays_readable_and_explain_examples_are_whole() -> None:
    from rich.console import Console

    from kubeharden.catalog import all_controls, get_control
    from kubeharden.reporters.catalog import print_catalog, print_explanation

    for width in (100, 160):
        console = Console(width=width, record=True, no_color=True)
        print_catalog(all_controls(), console)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        # the title column keeps a readable width (it was once squeezed to one character per line)
        header = next(line for line in text.splitlines() if "Title" in line and "Needs" in line)
        assert len(header.split("┃")[5]) >= 20
    control = get_control("KH-POD-010")
    assert control is not None
    console = Console(width=40, record=True, no_color=True)  # not a terminal: written as-is
    print_explanation(control, console)
    text = console.export_text()
    for example in control.examples:
        assert example.yaml.strip("\n") in text  # no line cropped at the console width
