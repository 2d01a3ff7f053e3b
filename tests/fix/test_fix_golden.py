"""Golden pairs, compared byte for byte: every editing situation, every fixable control and level."""

from __future__ import annotations

import copy
import itertools
import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubeharden.cli import cli
from kubeharden.fix.edit import Edit, EditRefused, apply_edits

GOLDEN = Path(__file__).parent / "golden"
EDIT_CASES = sorted(p.name for p in (GOLDEN / "edits").iterdir() if p.is_dir())
CONTROL_CASES = sorted(p.name for p in (GOLDEN / "controls").iterdir() if p.is_dir())


def _edit_case(name: str) -> tuple[Path, bytes, int, list[Edit], bool]:
    case = GOLDEN / "edits" / name
    [source] = case.glob("input.*")
    spec = json.loads((case / "edits.json").read_text())
    edits = [Edit(e["op"], tuple(e["path"]), e.get("value")) for e in spec["edits"]]
    return case, source.read_bytes(), spec["doc"], edits, source.suffix == ".json"


def _reference(data: Any, edits: list[Edit]) -> Any:
    """What the edits mean on the data (an independent, naive implementation)."""
    data = copy.deepcopy(data)
    for e in edits:
        *parents, last = e.path
        node = data
        for item in parents:
            if isinstance(item, str) and not isinstance(node.get(item), dict | list):
                node[item] = {}
            node = node[item]
        if e.op == "set":
            node[last] = e.value
        elif e.op == "delete":
            node.pop(last, None)
            _prune(data, e.path[:-1])
        elif e.op == "append":
            items = node.setdefault(last, []) if isinstance(node, dict) else node[last]
            if items is None:
                items = node[last] = []
            if e.value not in items:
                items.append(e.value)
        else:
            node[last] = [x for x in node[last] if x != e.value]
            _prune(data, e.path)
    return data


def _prune(data: Any, path: tuple[Any, ...]) -> None:
    """A mapping entry whose value became empty goes with its key, and so on up; an emptied
    sequence item or document stays (as {} or [])."""
    while path and isinstance(path[-1], str):
        parent = data
        for item in path[:-1]:
            parent = parent[item]
        if parent[path[-1]] not in ({}, []):
            return
        del parent[path[-1]]
        path = path[:-1]


@pytest.mark.parametrize("name", EDIT_CASES)
def test_edit_golden(name: str) -> None:
    case, data, doc, edits, json_mode = _edit_case(name)
    refused = case / "refused.txt"
    if refused.exists():
        with pytest.raises(EditRefused) as info:
            apply_edits(data, doc, edits, json_mode)
        assert info.value.reason == refused.read_text().strip()
        return
    [expected] = case.glob("expected.*")
    out = apply_edits(data, doc, edits, json_mode)
    assert out == expected.read_bytes()
    # idempotent: the same edits on the output change nothing
    assert apply_edits(out, doc, edits, json_mode) == out
    # the edit means what it says, and every other document is untouched
    text_in = data.decode("utf-8-sig")
    text_out = out.decode("utf-8-sig")
    before = list(yaml.safe_load_all(text_in))
    after = list(yaml.safe_load_all(text_out))
    assert len(before) == len(after)
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        assert a == (_reference(b, edits) if i == doc else b)
    if json_mode:
        json.loads(text_out)


def test_golden_keeps_line_endings_and_bom() -> None:
    crlf = (GOLDEN / "edits" / "crlf" / "expected.yaml").read_bytes()
    assert crlf.count(b"\r\n") == crlf.count(b"\n")
    assert (GOLDEN / "edits" / "bom" / "expected.yaml").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("name", CONTROL_CASES)
def test_control_golden(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = GOLDEN / "controls" / name
    args = shlex.split((case / "args.txt").read_text())
    manifest = tmp_path / "manifest.yaml"
    shutil.copy(case / "input.yaml", manifest)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["fix", "manifest.yaml", "--no-backup", *args])
    assert result.exit_code == 0, result.output
    assert manifest.read_bytes() == (case / "expected.yaml").read_bytes()
    changed = manifest.read_bytes() != (case / "input.yaml").read_bytes()
    assert changed != name.endswith("-not-at-safe")
    # a second run on the output changes nothing
    again = runner.invoke(cli, ["fix", "manifest.yaml", "--no-backup", *args])
    assert again.exit_code == 0, again.output
    assert manifest.read_bytes() == (case / "expected.yaml").read_bytes()
    # the control's finding is gone from a scan of the output
    controls = [c for a, b in itertools.pairwise(args) if a == "-c" for c in b.split(",")]
    scan = runner.invoke(cli, ["scan", "manifest.yaml", "-f", "json", "--fail-on", "none"])
    report = json.loads(scan.stdout)
    fixable_left = [f for f in report["findings"] if f["control_id"] in controls and f.get("fix")
                    and f["fix"]["level"] != "needs-value" and not name.endswith("-not-at-safe")]
    assert not [f for f in fixable_left if _within_level(f["fix"]["level"], args)]
    assert os.listdir(tmp_path) == ["manifest.yaml"]  # --no-backup


def _within_level(level: str, args: list[str]) -> bool:
    chosen = args[args.index("--level") + 1] if "--level" in args else "safe"
    order = ["safe", "tightening"]
    return order.index(level) <= order.index(chosen)
