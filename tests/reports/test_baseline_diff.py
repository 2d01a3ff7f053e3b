"""Fingerprints, --baseline / --fail-on-new and `kubeharden diff`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from kubeharden.cli import cli
from kubeharden.fingerprint import fingerprint, fingerprint_of_report_item
from kubeharden.reporters.json_report import finding_to_dict
from kubeharden.scanner import ScanRequest, run_scan

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: apps
spec:
  containers:
  - name: app
    image: registry.example/{image}:latest
    securityContext:
      privileged: true
"""
ONLY = ("-c", "KH-POD-005", "-c", "KH-POD-019")  # privileged; image without a fixed tag (its value: the image)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_pods(path: Path, names: list[str], image: str = "app", prefix: str = "") -> Path:
    path.write_text(prefix + "---\n".join(POD.format(name=n, image=image) for n in names))
    return path


def report(tmp: Path, pods: Path, name: str, *extra: str) -> tuple[int, dict[str, Any], Result]:
    out = tmp / name
    result = run("scan", str(pods), *ONLY, "-f", "json", "-o", str(out), "--force", *extra)
    return result.exit_code, json.loads(out.read_text()), result


def test_fingerprint_ignores_the_line_and_tells_control_resource_path_value_apart(tmp_path: Path) -> None:
    pods = write_pods(tmp_path / "p.yaml", ["a", "b"])
    _, first, _ = report(tmp_path, pods, "1.json")
    write_pods(pods, ["a", "b"], prefix="# moved\n# down\n")
    _, moved, _ = report(tmp_path, pods, "2.json")
    prints = [f["fingerprint"] for f in first["findings"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in prints)
    assert len(set(prints)) == len(prints) == 4  # two controls x two pods
    assert [f["fingerprint"] for f in moved["findings"]] == prints
    assert [f["source"]["line"] for f in moved["findings"]] == [f["source"]["line"] + 2 for f in first["findings"]]
    # another value at the same field is another finding
    write_pods(pods, ["a", "b"], image="other")
    _, other_value, _ = report(tmp_path, pods, "3.json")
    changed = {f["control_id"] for f in other_value["findings"] if f["fingerprint"] not in prints}
    assert changed == {"KH-POD-019"}


def test_fingerprint_of_a_report_item_matches_the_findings(tmp_path: Path) -> None:
    """Reports written before fingerprints existed are matched by the same computation."""
    result = run_scan(ScanRequest(paths=[str(write_pods(tmp_path / "p.yaml", ["a"]))]))
    assert result.findings
    for f in result.findings:
        item = finding_to_dict(f)
        assert item["fingerprint"] == fingerprint(f)
        del item["fingerprint"]
        assert fingerprint_of_report_item(json.loads(json.dumps(item))) == fingerprint(f)


def test_secret_values_never_enter_a_fingerprint(tmp_path: Path) -> None:
    env_pod = """\
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: apps}}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    env:
    - name: DB_PASSWORD
      value: {value}
"""
    prints = []
    for value in ("hunter2-correct-horse", "another-Pa55word-entirely"):
        path = tmp_path / "p.yaml"
        path.write_text(env_pod.format(value=value))
        result = run_scan(ScanRequest(paths=[str(path)], only=["KH-CRED-001"]))
        [finding] = result.findings
        prints.append(fingerprint(finding))
        assert value not in json.dumps(finding_to_dict(finding))
    assert prints[0] == prints[1]  # the value is withheld: the fingerprint cannot confirm a guess


def test_baseline_marks_new_and_existing_and_fail_on_new_fails_only_on_new(tmp_path: Path) -> None:
    pods = write_pods(tmp_path / "p.yaml", ["a", "b"])
    code, baseline, _ = report(tmp_path, pods, "base.json")
    assert code == 1
    base = str(tmp_path / "base.json")
    write_pods(pods, ["a", "b"], prefix="# lines move\n")
    code, same, result = report(tmp_path, pods, "same.json", "--baseline", base, "--fail-on-new")
    assert code == 0, result.output  # findings, but none new
    assert {f["baseline"] for f in same["findings"]} == {"existing"}
    assert "0 new, 4 existing, 0 fixed" in result.stderr
    write_pods(pods, ["b", "c"])
    code, changed, result = report(tmp_path, pods, "changed.json", "--baseline", base, "--fail-on-new")
    assert code == 1  # pod c: a new critical finding
    status = {(f["resource"]["name"], f["control_id"]): f["baseline"] for f in changed["findings"]}
    assert status == {("b", "KH-POD-005"): "existing", ("b", "KH-POD-019"): "existing",
                      ("c", "KH-POD-005"): "new", ("c", "KH-POD-019"): "new"}
    assert "2 new, 2 existing, 2 fixed" in result.stderr
    # only new findings at or above --fail-on count
    code, _, _ = report(tmp_path, pods, "c.json", "--baseline", base, "--fail-on-new", "--fail-on", "none")
    assert code == 0
    only_root = ("-c", "KH-POD-019")
    out = tmp_path / "root.json"
    result = run("scan", str(pods), *only_root, "--baseline", base, "--fail-on-new", "--fail-on", "critical",
                 "-o", str(out))
    assert result.exit_code == 0  # the new KH-POD-019 finding is below critical
    # without --fail-on-new the baseline only marks: every finding counts
    code, _, _ = report(tmp_path, write_pods(pods, ["a", "b"]), "d.json", "--baseline", base)
    assert code == 1
    assert "baseline" not in baseline["findings"][0]


@pytest.mark.parametrize("content", ["not json", '{"findings": []}', "[]"])
def test_a_bad_baseline_is_a_usage_error_naming_the_file(tmp_path: Path, content: str) -> None:
    pods = write_pods(tmp_path / "p.yaml", ["a"])
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run("scan", str(pods), "--baseline", str(bad))
    assert result.exit_code == 2 and "bad.json" in result.output


def test_fail_on_new_needs_a_baseline(tmp_path: Path) -> None:
    result = run("scan", str(write_pods(tmp_path / "p.yaml", ["a"])), "--fail-on-new")
    assert result.exit_code == 2 and "--baseline" in result.output


def test_diff_new_fixed_unchanged_in_every_format(tmp_path: Path) -> None:
    pods = write_pods(tmp_path / "p.yaml", ["a", "b"])
    report(tmp_path, pods, "old.json")
    write_pods(pods, ["b", "c", "d"], prefix="# a comment moves b's lines\n")
    report(tmp_path, pods, "new.json")
    old, new = str(tmp_path / "old.json"), str(tmp_path / "new.json")
    result = run("diff", old, new, "-f", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"new": 4, "fixed": 2, "unchanged": 2}
    assert {f["resource"]["name"] for f in doc["new"]} == {"c", "d"}
    assert {f["resource"]["name"] for f in doc["fixed"]} == {"a"}
    assert {f["resource"]["name"] for f in doc["unchanged"]} == {"b"}
    assert doc["by_control"]["KH-POD-005"] == {"new": 2, "fixed": 1, "unchanged": 1}
    assert doc["by_resource"]["Pod/apps/a"] == {"new": 0, "fixed": 2, "unchanged": 0}
    table = run("diff", old, new)
    assert table.exit_code == 0
    assert "4 new, 2 fixed, 2 unchanged" in table.stdout and "New findings" in table.stdout
    assert "Pod/apps/c" in table.stdout and "Unchanged findings" not in table.stdout
    assert "Unchanged findings" in run("diff", old, new, "--unchanged").stdout
    md_file = tmp_path / "diff.md"
    assert run("diff", old, new, "-o", str(md_file)).exit_code == 0
    markdown = md_file.read_text()
    assert markdown.startswith("# kubeharden diff") and "**4 new**" in markdown and "## Fixed findings" in markdown
    assert run("diff", old, new, "-o", str(md_file)).exit_code == 2  # exists: --force to replace
    assert run("diff", old, new, "--fail-on", "high").exit_code == 1
    assert run("diff", new, new, "--fail-on", "low").exit_code == 0
    assert run("diff", old, str(tmp_path / "p.yaml")).exit_code == 2


def test_diff_matches_reports_without_fingerprints(tmp_path: Path) -> None:
    pods = write_pods(tmp_path / "p.yaml", ["a"])
    _, old, _ = report(tmp_path, pods, "old.json")
    for f in old["findings"]:
        del f["fingerprint"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    write_pods(pods, ["a"], prefix="# moved\n")
    report(tmp_path, pods, "new.json")
    doc = json.loads(run("diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"), "-f", "json").stdout)
    assert doc["summary"] == {"new": 0, "fixed": 0, "unchanged": 2}
