"""`-f gitlab` (GitLab code quality) and the pre-commit hook definitions."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import orjson
import yaml
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.reporters import gitlab
from kubeharden.scanner import ScanRequest, run_scan

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def test_gitlab_code_quality_report() -> None:
    result = run_scan(ScanRequest(paths=[str(EXAMPLES / "insecure-shop")]))
    issues = json.loads(gitlab.render(result))
    assert len(issues) == len(result.active_findings()) > 0
    assert gitlab.render(result) == orjson.dumps(issues, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    severities = {"blocker", "critical", "major", "minor", "info"}
    for issue, finding in zip(issues, result.active_findings(), strict=True):
        assert issue["type"] == "issue" and issue["check_name"] == finding.control_id
        assert issue["severity"] in severities and re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"])
        assert issue["location"]["lines"]["begin"] >= 1 and not issue["location"]["path"].startswith("/")
    assert len({i["fingerprint"] for i in issues}) == len(issues)


def test_gitlab_report_of_a_clean_input(tmp_path: Path) -> None:
    out = tmp_path / "gl-code-quality-report.json"
    result = CliRunner().invoke(cli, ["scan", str(EXAMPLES / "hardened-workload.yaml"), "-f", "gitlab", "-o", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0 and json.loads(out.read_text()) == []


def test_pre_commit_hooks_run_real_commands(tmp_path: Path) -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"kubeharden", "kubeharden-new"}
    for hook in hooks:
        assert hook["language"] == "python" and re.compile(hook["files"]).search("k8s/deploy.yaml")
        assert not re.compile(hook["exclude"]).search("k8s/deploy.yaml")
        assert re.compile(hook["exclude"]).search("chart/values.yaml")
        argv = shlex.split(hook["entry"])
        assert argv[0] == "kubeharden"
        # pre-commit appends the staged files to the entry
        baseline = tmp_path / "kubeharden-baseline.json"
        CliRunner().invoke(cli, ["scan", str(EXAMPLES / "insecure-shop"), "-f", "json", "-o", str(baseline),
                                 "--force"], catch_exceptions=False)
        args = [str(baseline) if a == "kubeharden-baseline.json" else a for a in argv[1:]]
        clean = CliRunner().invoke(cli, [*args, str(EXAMPLES / "hardened-workload.yaml")], catch_exceptions=False)
        assert clean.exit_code == 0, clean.output
    first = shlex.split(hooks[0]["entry"])[1:]
    dirty = CliRunner().invoke(cli, [*first, str(EXAMPLES / "insecure-shop")], catch_exceptions=False)
    assert dirty.exit_code == 1
