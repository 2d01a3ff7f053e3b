"""Issue 12 items 8, 10 and 11: duplicate keys warn unless --strict, --request-timeout units, --skip-dirs,
the file-scan progress callback, .kubeharden.yaml and KUBEHARDEN_* variables, -n/-A/-l."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.commands.netpol import parse_label_selector
from kubeharden.commands.progress import FileProgress
from kubeharden.commands.snapshot import Duration
from kubeharden.loader import LoadContext, load_paths

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: shop, labels: {{app: {name}}}}}
spec:
  containers:
  - name: c
    image: registry.example.com/{name}:1.0
    securityContext:
      privileged: true
{extra}"""
# a third-party chart's output: the key twice, as the API server keeps the last value
DUPLICATE = POD.format(name="dup", extra="      privileged: false\n")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def scan_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    code, out, err = run("scan", *args, "-f", "json", env=env)
    return code, json.loads(out), err


# ---------------------------------------------------------------------------------------- item 8


def test_duplicate_keys_are_a_warning_by_default_and_an_error_with_strict(tmp_path: Path) -> None:
    path = tmp_path / "chart.yaml"
    path.write_text(DUPLICATE)
    code, report, err = scan_json(str(path), "--fail-on", "none")
    assert code == 0  # the message says the last value is used: the run is not failed for it
    assert "warning:" in err and "duplicate key 'privileged'" in err and f"{path.name}:10" in err
    assert not report["errors"]
    # the last value is the one judged, as the API server would keep it
    assert not [f for f in report["findings"] if f["control_id"] == "KH-POD-005"]
    code, report, err = scan_json(str(path), "--fail-on", "none", "--strict")
    assert code == 2
    assert "error:" in err and "duplicate key 'privileged'" in err and "--strict" in err
    # library callers choose too
    assert load_paths([str(path)]).warnings and not load_paths([str(path)]).errors
    assert load_paths([str(path)], LoadContext(strict=True)).errors


@pytest.mark.parametrize(("text", "seconds"), [
    ("30", 30.0), ("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1m30s", 90.0), ("1.5s", 1.5), ("1h", 3600.0),
])
def test_request_timeout_units(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["30x", "s", "-1s", "10ms", "1m 30s", "inf", "nan"])
def test_request_timeout_rejects_non_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        Duration().convert(text, None, None)


def test_request_timeout_on_the_command_line() -> None:
    code, _, err = run("snapshot", "--request-timeout", "30x", "-o", "x.json")
    assert code == 2 and "not a duration" in err
    code, _, err = run("scan", "--cluster", "--request-timeout", "0.05s")
    assert code == 2 and "at least" in err


# --------------------------------------------------------------------------------------- item 10


def test_file_scans_report_each_file_to_the_progress_callback(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.yaml").write_text(POD.format(name=name, extra=""))
    seen: list[tuple[str, int]] = []
    load_paths([str(tmp_path)], LoadContext(on_file=lambda name, size: seen.append((name, size))))
    assert sorted(Path(name).name for name, _ in seen) == ["a.yaml", "b.yaml", "c.yaml"]
    assert all(size > 100 for _, size in seen)


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    assert not FileProgress(False).enabled
    bar = FileProgress(True)
    try:
        assert bar.enabled
        bar.file_done("a.yaml", 2048)
    finally:
        bar.close()
    # a scan whose stderr is not a terminal prints no progress (CliRunner's stderr is a buffer)
    (tmp_path / "a.yaml").write_text(POD.format(name="a", extra=""))
    _, _, err = run("scan", str(tmp_path), "--fail-on", "none")
    assert "scanning" not in err


# --------------------------------------------------------------------------------------- item 11


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for sub, name in (("app", "web"), ("vendor/lib", "vendored"), ("charts/x/tests", "chart-test"),
                      ("tests", "fixture")):
        (root / sub).mkdir(parents=True)
        (root / sub / "pod.yaml").write_text(POD.format(name=name, extra=""))
    return root


def _names(report: dict) -> set[str]:
    return {f["resource"]["name"] for f in report["findings"] if f.get("resource")}


def test_skip_dirs_by_name_and_by_path(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _, report, _ = scan_json(str(root), "--fail-on", "none")
    assert _names(report) == {"web", "vendored", "chart-test", "fixture"}
    _, report, _ = scan_json(str(root), "--fail-on", "none", "--skip-dirs", "vendor", "--skip-dirs", "charts/*/tests")
    assert _names(report) == {"web", "fixture"}
    _, report, _ = scan_json(str(root), "--fail-on", "none", "--skip-dirs", "test*")
    assert _names(report) == {"web", "vendored"}  # charts/x/tests too: its name matches


def test_config_file_env_and_flags_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    (tmp_path / "accepted.yaml").write_text(
        "exceptions:\n  - control: KH-POD-005\n    resource: {name: web}\n    reason: reviewed\n")
    (tmp_path / ".kubeharden.yaml").write_text(
        "# defaults for this repository\nfail-on: critical\nskip-dirs: [vendor, charts]\nexceptions: accepted.yaml\n"
        "skip:\n  - KH-POD-001\n")
    monkeypatch.chdir(tmp_path)
    code, report, _ = scan_json("repo")
    assert code == 1  # privileged containers are critical, and critical fails
    assert _names(report) == {"web", "fixture"}
    assert report["summary"]["excepted"] >= 1  # the path in the file is relative to the file
    assert "KH-POD-001" not in {c["id"] for c in report["controls"]}
    # the environment beats the file, a flag beats both
    assert scan_json("repo", env={"KUBEHARDEN_SCAN_FAIL_ON": "none"})[0] == 0
    assert scan_json("repo", "--fail-on", "critical", env={"KUBEHARDEN_SCAN_FAIL_ON": "none"})[0] == 1
    # --config elsewhere; KUBEHARDEN_CONFIG the same
    other = tmp_path / "ci.yaml"
    other.write_text("fail-on: none\n")
    assert scan_json("repo", env={"KUBEHARDEN_CONFIG": str(other)})[0] == 0
    assert run("--config", str(other), "scan", "repo", "-q")[0] == 0


@pytest.mark.parametrize(("text", "line", "expected"), [
    ("fail-on: none\nfial-on: high\n", 2, "unknown key 'fial-on' (did you mean 'fail-on'?)"),
    ("profile: nsa\nskip: {a: 1}\n", 2, "'skip' takes a list of text"),
    ("strict: yes-please\n", 1, "'strict' is a flag"),
    ("fail-on: [high, low]\n", 1, "takes one value"),
])
def test_config_file_errors_name_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str,
                                               line: int, expected: str) -> None:
    (tmp_path / "pod.yaml").write_text(POD.format(name="a", extra=""))
    (tmp_path / ".kubeharden.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    code, _, err = run("scan", "pod.yaml")
    assert code == 2
    assert f".kubeharden.yaml:{line}: " in err and expected in err


def test_config_file_does_not_touch_other_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".kubeharden.yaml").write_text("not-an-option: 1\n")
    monkeypatch.chdir(tmp_path)
    assert run("controls", "-f", "json")[0] == 0


def test_selector_and_namespace_flags_need_cluster_on_scan(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(POD.format(name="a", extra=""))
    code, _, err = run("scan", str(tmp_path), "-l", "app=web")
    assert code == 2 and "--cluster" in err
    code, _, err = run("scan", "--cluster", "-n", "shop", "-A")
    assert code == 2 and "not both" in err


def test_label_selector_syntax() -> None:
    selector = parse_label_selector("tier in (front, back),app!=db,!legacy,team")
    assert selector.matches({"tier": "front", "app": "web", "team": "x"})
    assert not selector.matches({"tier": "back", "app": "db", "team": "x"})
    assert not selector.matches({"tier": "front", "team": "x", "legacy": "1"})
    assert not selector.matches({"tier": "front"})
    assert parse_label_selector("app=web").matches({"app": "web"})
    assert parse_label_selector("app==web,env notin (prod)").matches({"app": "web"})
    for bad in ("a=b=c", "!a=b", "in (x)", ""):
        with pytest.raises(click.BadParameter):
            parse_label_selector(bad)


def test_netpol_namespace_all_and_selector(tmp_path: Path) -> None:
    path = tmp_path / "pods.yaml"
    path.write_text("---\n".join(POD.format(name=n, extra="") for n in ("web", "db", "cache")))
    code, out, _ = run("netpol", "status", str(path), "-l", "app in (web,db)", "-f", "json")
    assert code == 0 and sorted(e["name"] for e in json.loads(out)["endpoints"]) == ["db", "web"]
    code, out, _ = run("netpol", "matrix", str(path), "-A", "-l", "app!=cache", "-f", "csv")
    assert code == 0 and "cache" not in out and "shop/web,shop/db" in out
    code, _, err = run("netpol", "status", str(path), "-A", "-n", "shop")
    assert code == 2 and "not both" in err
    code, _, err = run("netpol", "status")
    assert code == 2 and "--cluster" in err


def test_node_strict_makes_duplicate_keys_errors(tmp_path: Path) -> None:
    manifests = tmp_path / "etc" / "kubernetes" / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "kube-apiserver.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n"
        "  name: kube-apiserver\nspec:\n  containers:\n  - name: kube-apiserver\n"
        "    image: registry.k8s.io/kube-apiserver:v1.31.0\n    command: [kube-apiserver]\n")
    lenient = CliRunner().invoke(cli, ["node", "--root", str(tmp_path), "-f", "json", "--fail-on", "none"])
    assert lenient.exit_code == 0
    assert any(w.get("line") == 6 for w in json.loads(lenient.stdout)["warnings"])
    strict = CliRunner().invoke(cli, ["node", "--root", str(tmp_path), "-f", "json", "--fail-on", "none", "--strict"])
    assert strict.exit_code == 2 and "kube-apiserver.yaml:6" in strict.stderr
