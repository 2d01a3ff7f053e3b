"""`kubeharden controls --coverage`: every recommendation of the spec is accounted for."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kubeharden.catalog import all_controls
from kubeharden.cli import cli
from kubeharden.coverage import TOOLS, coverage, load_recommendations, packaged_recommendations, parse_spec


def _spec_ids(shared_dir) -> list[str]:
    ids = [r.id for r in parse_spec((shared_dir / "spec" / "guidance.md").read_text("utf-8"))]
    assert len(ids) == len(set(ids))
    return ids


def test_packaged_list_is_the_specs_list(shared_dir) -> None:
    spec = parse_spec((shared_dir / "spec" / "guidance.md").read_text("utf-8"))
    assert [(r.id, r.recommendation) for r in packaged_recommendations()] == [(r.id, r.recommendation) for r in spec]


def test_every_spec_id_is_covered_in_the_table(shared_dir) -> None:
    ids = _spec_ids(shared_dir)
    result = CliRunner().invoke(cli, ["controls", "--coverage", "-f", "json",
                                      "--spec", str(shared_dir / "spec" / "guidance.md")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {r["id"]: r for r in doc["recommendations"]}
    assert list(rows) == ids
    missing = [i for i, r in rows.items() if r["status"] == "missing"]
    assert not missing, f"recommendations nothing implements: {missing}"
    for gid, row in rows.items():
        if row["status"] == "implemented":
            assert row["controls"] or row["detectors"] or row["tools"], gid
        else:
            assert row["status"] == "manual" and all(m["reason"] for m in row["manual"]), gid
    assert doc["counts"]["total"] == len(ids)
    assert doc["counts"]["implemented"] + doc["counts"]["manual"] == len(ids)


def test_packaged_table_without_the_shared_directory() -> None:
    result = CliRunner().invoke(cli, ["controls", "--coverage", "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["counts"]["total"] == len(packaged_recommendations()) == 109
    table = CliRunner().invoke(cli, ["controls", "--coverage"], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    for rec in packaged_recommendations():
        assert rec.id in table.output


def test_status_follows_what_implements_an_id() -> None:
    recs = load_recommendations()
    rows = {r.recommendation.id: r for r in coverage(recs)}
    manual_only = {c.id for c in all_controls() if c.manual}
    # a manual control alone never makes an id implemented
    assert rows["NSA-LOG-8"].status == "manual"
    assert {cid for cid, _ in rows["NSA-LOG-8"].manual} <= manual_only
    assert rows["NSA-POD-5"].status == "implemented" and "KH-POD-005" in rows["NSA-POD-5"].controls
    assert "D01" in rows["NSA-POD-5"].detectors
    # without controls only the tools' ids are implemented; the rest is missing
    bare = coverage(recs, [])
    assert {r.recommendation.id for r in bare if r.status != "missing"} == {g for ids in TOOLS.values() for g in ids}
    assert all(r.status in ("implemented", "missing") for r in bare)


def test_a_spec_without_rows_is_a_usage_error(tmp_path) -> None:
    spec = tmp_path / "guidance.md"
    spec.write_text("# nothing here\n")
    result = CliRunner().invoke(cli, ["controls", "--coverage", "--spec", str(spec)])
    assert result.exit_code == 2
    assert "no recommendation rows" in result.output
