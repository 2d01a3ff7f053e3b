"""Hostile or unlucky input to the readers and writers added after issue 11 (fix, the results
store, diff, cis, rbac diff, controls --coverage --spec, log agent configurations): never a
crash (exit 3), a hang, a leak or an overwrite; errors name the file (and line), exit 2."""

from __future__ import annotations

import codecs
import json
import os
import resource
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubeharden import safeio
from kubeharden.cli import cli
from kubeharden.inventory import Inventory
from kubeharden.loader import LoadContext, load_paths
from kubeharden.logpipeline import MAX_INCLUDES
from kubeharden.logpipeline.sources import from_configmaps

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: nginx:1.25
    securityContext:
      privileged: true
"""
FIX = ("fix", "--level", "tightening", "-c", "KH-POD-005")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    out = result.stdout + result.stderr
    assert "internal error" not in out
    return result.exit_code, out


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    safeio.forget_inputs()


# -- fix ----------------------------------------------------------------------------------------


def test_fix_does_not_write_through_a_symlink_leading_outside_the_tree(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "tree").mkdir()
    target = tmp_path / "outside" / "pod.yaml"
    target.write_text(POD)
    (tmp_path / "tree" / "link.yaml").symlink_to(target)
    code, out = run(*FIX, "tree")
    assert code == 1
    assert "outside the paths given" in out
    assert target.read_text() == POD and os.listdir(tmp_path / "outside") == ["pod.yaml"]
    # named itself, the same link is the user's choice
    code, out = run(*FIX, "tree/link.yaml")
    assert code == 0, out
    assert "privileged: false" in target.read_text()


def test_fix_edits_a_file_reached_by_two_names_once(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "pod.yaml").write_text(POD)
    (tmp_path / "tree" / "alias.yaml").symlink_to("pod.yaml")
    code, out = run(*FIX, "tree")
    assert code == 0, out
    assert "the same file as" in out and "replaced since it was read" not in out
    assert "privileged: false" in (tmp_path / "tree" / "pod.yaml").read_text()
    assert sorted(os.listdir(tmp_path / "tree")) == ["alias.yaml", "pod.yaml", "pod.yaml.kubeharden-backup"]


def test_fix_leaves_a_read_only_file_alone(tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_text(POD)
    pod.chmod(0o444)
    code, out = run(*FIX, "pod.yaml")
    assert code == 1
    assert "read-only" in out
    assert pod.read_text() == POD and stat.S_IMODE(pod.stat().st_mode) == 0o444
    assert os.listdir(tmp_path) == ["pod.yaml"]


def test_fix_on_a_full_disk_leaves_no_partial_backup_or_file(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(POD)

    def full_disk() -> None:  # the backup is the first write: it cannot be completed
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    proc = subprocess.run([sys.executable, "-m", "kubeharden", *FIX, "pod.yaml"], cwd=tmp_path,
                          preexec_fn=full_disk, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "cannot write the backup" in proc.stderr and "internal error" not in proc.stderr
    assert os.listdir(tmp_path) == ["pod.yaml"] and (tmp_path / "pod.yaml").read_text() == POD


def test_fix_reads_a_fifo_as_an_error_and_fixes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "pod.yaml").write_text(POD)
    os.mkfifo(tmp_path / "tree" / "pipe.yaml")
    code, out = run(*FIX, "tree")
    assert code == 2
    assert "pipe.yaml" in out and "FIFO" in out


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_fix_keeps_a_utf16_or_utf32_file_in_its_encoding(tmp_path: Path, codec: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE}
    pod = tmp_path / "pod.yaml"
    pod.write_bytes(bom[codec] + POD.encode(codec))
    code, out = run(*FIX, "pod.yaml")
    assert code == 0, out
    data = pod.read_bytes()
    assert data.startswith(bom[codec])
    assert "privileged: false" in data[len(bom[codec]):].decode(codec)


def _ops(tmp_path: Path, ops: object, name: str = "ops.json") -> str:
    (tmp_path / name).write_text(ops if isinstance(ops, str) else json.dumps(ops))
    return name


SET_X = {"file": "pod.yaml", "op": "set", "path": ["metadata", "labels", "x"]}


@pytest.mark.parametrize(("content", "expected"), [
    ("[" * 100_000, "nested too deeply"),
    ('[{"file": "pod.yaml", "op": "set", "path": ["a"], "value": NaN}]', "invalid JSON"),
    ('[{"file": "pod.yaml", "op": "set", "path": ["a"], "value": 1e400}]', "out of range"),
    (json.dumps([{**SET_X, "value": json.loads("[" * 70 + "1" + "]" * 70)}]), "nested deeper"),
    ("[1,\n2,\n{", "ops.json:3:"),
])
def test_fix_ops_bad_json_is_an_error_naming_the_file(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    code, out = run("fix", "--ops", _ops(tmp_path, content), "--dry-run")
    assert code == 2
    assert "ops.json" in out and expected in out
    assert (tmp_path / "pod.yaml").read_text() == POD


def test_fix_ops_special_files_are_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.json")
    for path in ("fifo.json", "/dev/zero"):
        code, out = run("fix", "--ops", path)
        assert code == 2
        assert path in out and "not a regular file" in out


def test_fix_ops_on_a_utf16_target_and_files_inside_a_directory_given(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    pod = tmp_path / "tree" / "pod.yaml"
    pod.write_bytes(codecs.BOM_UTF16_LE + POD.encode("utf-16-le"))
    ops = _ops(tmp_path, [{**SET_X, "file": "tree/pod.yaml", "value": "blue"}])
    code, out = run("fix", "tree", "--ops", ops, "--no-backup")
    assert code == 0, out
    assert "x: blue" in pod.read_bytes()[2:].decode("utf-16-le")
    code, out = run("fix", "tree", "--ops", _ops(tmp_path, [{**SET_X, "file": "other.yaml", "value": 1}]))
    assert code == 2 and "other.yaml" in out


def test_fix_ops_invalid_utf8_target_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_bytes(POD.encode() + b"# \xff\xfe\n")
    code, out = run("fix", "--ops", _ops(tmp_path, [{**SET_X, "value": 1}]))
    assert code == 1
    assert "pod.yaml" in out and "not UTF-8" in out


# -- the results store -------------------------------------------------------------------------


def test_store_that_is_a_directory_fifo_or_an_input(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    os.mkfifo(tmp_path / "fifo.db")
    for store in ("dir.db", "fifo.db"):
        code, out = run("history", "--store", store)
        assert code == 2
        assert f"{store}: the store must be a regular file" in out
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "link.db").symlink_to("pod.yaml")
    code, out = run("scan", "pod.yaml", "--store", "link.db")
    assert code == 2
    assert "refusing to use an input file as the store" in out
    assert (tmp_path / "pod.yaml").read_text() == POD


def test_foreign_sqlite_files_are_not_changed(tmp_path: Path) -> None:
    for name, table in (("other.db", "t"), ("lookalike.db", "kh_runs")):
        with sqlite3.connect(tmp_path / name) as db:
            db.execute(f"CREATE TABLE {table} (x)")
        before = (tmp_path / name).read_bytes()
        code, out = run("history", "--store", name)
        assert code == 2
        assert f"{name}: not a kubeharden results store" in out
        with sqlite3.connect(tmp_path / name) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables == [table] and (tmp_path / name).read_bytes() == before
    (tmp_path / "garbage.db").write_bytes(b"not sqlite at all" * 100)
    code, out = run("history", "--store", "garbage.db")
    assert code == 2 and "garbage.db" in out


@pytest.mark.parametrize(("sql", "expected"), [
    ("UPDATE kh_runs SET labels = '[1]'", "corrupt row"),
    ("UPDATE kh_runs SET sections = 'not json'", "corrupt row"),
    ("UPDATE kh_schema SET version = 'x'", "schema version is unreadable"),
    ("INSERT INTO kh_schema (version) VALUES (1)", "schema version is unreadable"),
    ("UPDATE kh_schema SET version = 99", "newer than this kubeharden"),
])
def test_corrupt_or_future_store_is_an_error(tmp_path: Path, sql: str, expected: str) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    code, out = run("scan", "pod.yaml", "--store", "runs.db")
    assert code == 1, out
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute(sql)
    code, out = run("history", "--store", "runs.db")
    assert code == 2
    assert "runs.db" in out or "upgrade" in out
    assert expected in out


@pytest.mark.parametrize("url", [
    "postgresql://kh:hunter2@[::1/db",  # urlsplit refuses it: the driver quotes the URL
    "postgresql://kh:hunter2@127.0.0.1:99999/db",
    "postgresql://kh:hunter2@127.0.0.1:port/db",
    "postgresql://kh:hun%74er2@127.0.0.1:1/db",
    "postgresql://127.0.0.1:1/db?user=kh&password=hunter2",
    "postgres://kh:p%40ss@127.0.0.1:1/db?password=hunter2",
])
def test_store_password_never_printed(tmp_path: Path, url: str) -> None:
    pytest.importorskip("psycopg")
    (tmp_path / "pod.yaml").write_text(POD)
    for args in (("history", "--store", url), ("history", "--store", url, "-f", "json"),
                 ("scan", "pod.yaml", "--store", url)):
        code, out = run(*args)
        assert code == 2, out
        assert "hunter2" not in out and "hun%74er2" not in out and "p%40ss" not in out and "p@ss" not in out


@pytest.mark.parametrize("value", ["a\u202eb", "a\x85b", "a\x9bb", "a\x7fb", "a\u2028b"])
def test_store_labels_must_be_printable(tmp_path: Path, value: str) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    code, out = run("scan", "pod.yaml", "--store", "runs.db", "--label", f"cluster={value}")
    assert code == 2 and "--label" in out
    assert not (tmp_path / "runs.db").exists()


# -- diff, cis, rbac diff, coverage --spec ---------------------------------------------------------


def _report(tmp_path: Path, name: str, findings: list[object]) -> str:
    (tmp_path / name).write_text(json.dumps({"tool": {"name": "kubeharden"}, "findings": findings}))
    return name


@pytest.mark.parametrize("finding", [
    {"control_id": 5}, {"resource": "x"}, {"resource": {"kind": ["Pod"]}}, {"source": []},
    {"source": {"line": "7"}}, {"severity": {"x": 1}}, {"excepted": "no"}, {"path": 1},
])
def test_diff_and_baseline_refuse_findings_of_the_wrong_type(tmp_path: Path, finding: dict[str, object]) -> None:
    bad = _report(tmp_path, "bad.json", [finding])
    good = _report(tmp_path, "good.json", [])
    for args in (("diff", bad, good), ("diff", good, bad, "-f", "markdown"), ("diff", good, bad, "-f", "json")):
        code, out = run(*args)
        assert code == 2
        assert "bad.json: finding 0" in out
    (tmp_path / "pod.yaml").write_text(POD)
    code, out = run("scan", "pod.yaml", "--baseline", bad)
    assert code == 2 and "bad.json" in out


def test_deep_json_is_an_error_in_diff_cis_and_rbac_diff(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000)
    good = _report(tmp_path, "good.json", [])
    for args in (("diff", "deep.json", good), ("cis", "deep.json"), ("rbac", "diff", "deep.json", "deep.json")):
        code, out = run(*args)
        assert code == 2, args
        assert "deep.json" in out


def test_cis_report_with_wrong_types_is_read_without_crashing(tmp_path: Path) -> None:
    (tmp_path / "kb.json").write_text(json.dumps([{"tests": 5}, {"tests": [{"results": "x"}, 3]}]))
    code, out = run("cis", "kb.json", "-f", "json")
    assert code in (0, 2), out


def test_coverage_spec_special_files_and_bad_text(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "spec.md")
    (tmp_path / "bad.md").write_bytes(b"# spec\n\xff\xfe\n")
    for spec, expected in (("spec.md", "not a regular file"), ("/dev/zero", "not a regular file"),
                           ("bad.md", "bad.md:2: not UTF-8")):
        code, out = run("controls", "--coverage", "--spec", spec)
        assert code == 2
        assert expected in out


# -- log agent configurations -------------------------------------------------------------------


def _configmap(tmp_path: Path, data: dict[str, str], name: str = "cm.yaml") -> Path:
    """A ConfigMap with each value as a block scalar, as people write them."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: agent, namespace: logging}", "data:"]
    for key, text in data.items():
        lines.append(f"  {key}: |")
        lines += [f"    {line}" for line in text.splitlines()]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("include", ["@INCLUDE k*.conf", "@include k*.conf"])
def test_include_fan_out_is_bounded(tmp_path: Path, include: str) -> None:
    body = ("[INPUT]\n    Name tail\n" if include.startswith("@INCLUDE") else "<source>\n  @type tail\n</source>\n")
    main = ("[SERVICE]\n    Flush 1\n" if include.startswith("@INCLUDE") else "<match **>\n  @type stdout\n</match>\n")
    data = {f"k{i}.conf": f"{include}\n{body}" for i in range(10)}  # each includes all: 10**8 reads unbounded
    data["agent.conf"] = f"{main}{include}\n"
    loaded = load_paths([str(_configmap(tmp_path, data))], LoadContext())
    [config] = from_configmaps(Inventory(loaded.resources))
    assert config.includes_read == MAX_INCLUDES + 1
    assert any("included files" in p.message for p in config.problems)


def test_keys_that_all_include_each_other_are_still_read(tmp_path: Path) -> None:
    data = {"a.conf": "[OUTPUT]\n    Name es\n    Host 10.1.2.3\n@INCLUDE *.conf\n",
            "b.conf": "[INPUT]\n    Name tail\n@INCLUDE *.conf\n"}
    loaded = load_paths([str(_configmap(tmp_path, data))], LoadContext())
    assert from_configmaps(Inventory(loaded.resources)), "nothing was read: a silent pass"


def test_unreadable_agent_configuration_is_an_input_error_at_its_line(tmp_path: Path) -> None:
    _configmap(tmp_path, {
        "fluent.conf": "<match **>\n  @type forward\n@include elsewhere.conf\n",
        "vector.toml": "[sinks.x]\ntype = \"http\n",
        "fluent-bit.yaml": "pipeline:\n  outputs: 5\n",
    })
    text = (tmp_path / "cm.yaml").read_text().splitlines()
    code, out = run("scan", "cm.yaml", "-c", "KH-LOG-*")
    assert code == 2
    match_line = next(i for i, line in enumerate(text, 1) if "<match **>" in line)
    toml_line = next(i for i, line in enumerate(text, 1) if 'type = "http' in line)
    assert f"error: cm.yaml:{match_line}: ConfigMap logging/agent data[fluent.conf]: <match> is not closed" in out
    assert f"error: cm.yaml:{toml_line}: ConfigMap logging/agent data[vector.toml]: not valid TOML" in out
    assert "ConfigMap logging/agent data[fluent-bit.yaml]: pipeline.outputs is not a list" in out
    # an include that may come from another volume is a warning, not an error
    assert "warning: cm.yaml:" in out and "@include elsewhere.conf: not found" in out
