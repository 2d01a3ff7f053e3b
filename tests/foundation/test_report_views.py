"""What a person sees: a summary per control by default, --details, --severity, -q, Markdown caps,
JUnit following --fail-on, guidance ids as selectors, the summary line on stderr with -o."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from helpers import PRIVILEGED_POD, run, write

MANY = "---\n".join(PRIVILEGED_POD.replace("name: priv", f"name: priv-{i}") for i in range(40))


def test_default_table_is_one_row_per_control_and_details_lists_every_finding(tmp_path: Path) -> None:
    path = str(write(tmp_path, "pods.yaml", MANY))
    summary = run("scan", path, "-c", "KH-POD-005").stdout
    assert summary.count("KH-POD-005") == 1
    assert " 40 " in summary and "and 37" in summary  # three top resources named, the rest counted
    details = run("scan", path, "-c", "KH-POD-005", "--details").stdout
    assert details.count("KH-POD-005") == 40
    assert "spec.containers[0].securityContext.privileged" in details


def test_severity_filters_what_is_shown_not_what_fails(tmp_path: Path) -> None:
    path = str(write(tmp_path, "pod.yaml", PRIVILEGED_POD))
    shown = run("scan", path, "-c", "KH-POD-005", "-c", "KH-POD-027", "--severity", "critical")
    assert "KH-POD-005" in shown.stdout and "KH-POD-027" not in shown.stdout.split("Summary by")[0]
    assert shown.exit_code == 1
    assert run("scan", path, "--severity", "urgent").exit_code == 2


def test_quiet_prints_the_summary_line_only(tmp_path: Path) -> None:
    result = run("scan", str(write(tmp_path, "pod.yaml", PRIVILEGED_POD)), "-q", "-c", "KH-POD-005")
    assert result.exit_code == 1
    [line] = result.stdout.strip().splitlines()
    assert "1 findings (1 critical" in line and "assessed control" in line


def test_the_score_says_what_it_covers(tmp_path: Path) -> None:
    out = run("scan", str(write(tmp_path, "pod.yaml", PRIVILEGED_POD)), "-q").stdout
    assert "score" in out and "assessed controls, weighted by severity" in out and "not assessed)" in out


def test_summary_line_on_stderr_when_reports_go_to_files(tmp_path: Path) -> None:
    pod = write(tmp_path, "in/pod.yaml", PRIVILEGED_POD)
    result = run("scan", str(pod), "-c", "KH-POD-005", "-o", str(tmp_path / "r.json"))
    assert result.stdout == ""
    assert "1 findings (1 critical" in result.stderr


def test_markdown_is_cut_at_max_bytes_with_a_note(tmp_path: Path) -> None:
    path = str(write(tmp_path, "pods.yaml", MANY))
    full = run("scan", path, "-f", "markdown").stdout
    assert len(full.encode()) > 4096
    cut = run("scan", path, "-f", "markdown", "--max-bytes", "4096").stdout
    assert len(cut.encode()) <= 4096
    assert "Report cut at 4096 bytes" in cut and "| critical | KH-POD-005 |" in cut  # most severe kept
    assert cut.startswith(full.split("## Findings")[0])  # the summary survives whole


def _failures(xml: str) -> int:
    return int(ET.fromstring(xml).get("failures", "-1"))


def test_junit_follows_fail_on(tmp_path: Path) -> None:
    path = str(write(tmp_path, "pod.yaml", PRIVILEGED_POD))
    args = ["scan", path, "-f", "junit", "-c", "KH-POD-005", "-c", "KH-POD-027"]  # critical + low
    assert _failures(run(*args).stdout) == 1  # --fail-on high: the low finding does not fail a test
    assert _failures(run(*args, "--fail-on", "low").stdout) == 2
    none = run(*args, "--fail-on", "none").stdout
    assert _failures(none) == 0 and "KH-POD-005" in none and "<system-out>" in none


def test_guidance_ids_and_commas_select_controls(tmp_path: Path) -> None:
    path = str(write(tmp_path, "pod.yaml", PRIVILEGED_POD))
    out = run("scan", path, "-c", "NSA-POD-5", "--details").stdout
    assert "KH-POD-005" in out and "KH-POD-004" not in out
    both = run("scan", path, "-c", "KH-POD-005,KH-POD-004", "--details").stdout
    assert "KH-POD-005" in both and "KH-POD-004" in both
    assert run("scan", path, "-c", "NSA-NOPE-1").exit_code == 2


def test_narrow_terminals_wrap_paths_at_separators_never_mid_word(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from kubeharden.reporters import View
    from kubeharden.reporters.table import print_table
    from kubeharden.scanner import ScanRequest, run_scan

    deep = tmp_path / "a-rather-long-directory-name" / "with-another-long-level" / "and-a-third-one-here"
    pod = write(deep, "privileged-workload-manifest.yaml", PRIVILEGED_POD)
    result = run_scan(ScanRequest(paths=[str(pod)], only=("KH-POD-005",)))
    out = io.StringIO()
    print_table(result, Console(file=out, width=80, no_color=True), View(details=True))
    text = out.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines() if "/" in line or "spec." in line)
    whole = ("a-rather-long-directory-name/", "with-another-long-level/", "privileged-workload-manifest.yaml:11")
    for segment in whole:
        assert segment in text  # whole: broken only after a separator
    assert "spec.containers[0].securityContext.privileged" in text.replace("\n    ", "")
