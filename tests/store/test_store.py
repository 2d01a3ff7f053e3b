"""The results store, the same tests over SQLite and a real PostgreSQL server (conftest.store_url)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubeharden.cli import cli
from kubeharden.engine import ScanResult
from kubeharden.scanner import ScanRequest, run_scan
from kubeharden.store import StoreError, open_store, redact_url, run_record
from kubeharden.store.tempserver import TempServer

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: apps
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    securityContext:
      privileged: {privileged}
"""
ONLY = ("KH-POD-005", "KH-POD-006", "KH-POD-007")


def pods(tmp: Path, names: list[str], privileged: bool = True, file: str = "pods.yaml") -> Path:
    path = tmp / file
    text = "---\n".join(POD.format(name=n, privileged=str(privileged).lower()) for n in names)
    path.write_text(text or "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: empty}\n")
    return path


def scan(path: Path) -> ScanResult:
    return run_scan(ScanRequest(paths=[str(path)], only=ONLY))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_round_trip_of_a_run(store_url: str, tmp_path: Path) -> None:
    result = scan(pods(tmp_path, ["a", "b"]))
    with open_store(store_url) as store:
        info = store.record(run_record(result, {"cluster": "prod-eu", "team": "core"}))
        assert info.new is None and info.fixed is None  # the first run of its series
        [stored] = store.runs()
        assert stored.id == info.id and stored.labels == {"cluster": "prod-eu", "team": "core"}
        assert stored.findings == 2 and stored.by_severity == {"critical": 2, "high": 0, "medium": 0, "low": 0}
        assert stored.score == result.score() and stored.resources == 2
        assert stored.sections == result.section_scores()
        findings = store.findings(info.id)
        assert sorted(f.name for f in findings) == ["a", "b"]
        assert {f.control_id for f in findings} == {"KH-POD-005"}
        assert sorted(f.line for f in findings) == [11, 23]  # the line of `privileged: true` in each document
        assert all(f.path.endswith("privileged") and len(f.fingerprint) == 32 for f in findings)
        states = {c.control_id: c.status for c in store.controls(info.id)}
        assert states == {"KH-POD-005": "fail", "KH-POD-006": "pass", "KH-POD-007": "pass"}


def test_new_and_fixed_against_the_previous_run_of_the_same_series(store_url: str, tmp_path: Path) -> None:
    with open_store(store_url) as store:
        first = store.record(run_record(scan(pods(tmp_path, ["a", "b"])), {"cluster": "x"}))
        other = store.record(run_record(scan(pods(tmp_path, ["z"])), {"cluster": "y"}))
        second = store.record(run_record(scan(pods(tmp_path, ["b", "c", "d"])), {"cluster": "x"}))
        assert other.new is None  # another series: not compared with cluster=x
        assert (second.previous, second.new, second.fixed) == (first.id, 2, 1)  # c, d new; a fixed
        moved = pods(tmp_path, ["b", "c", "d"], file="moved.yaml")
        moved.write_text("# a comment moves every line\n" + moved.read_text())
        # same findings from another file are other findings (the file is part of the identity) ...
        third = store.record(run_record(scan(moved), {"cluster": "x"}))
        assert (third.new, third.fixed) == (3, 3)
        # ... but the same file with the lines moved is not
        again = pods(tmp_path, ["b", "c", "d"], file="moved.yaml")
        again.write_text("# one\n# two\n# three\n" + again.read_text())
        fourth = store.record(run_record(scan(again), {"cluster": "x"}))
        assert (fourth.new, fourth.fixed) == (0, 0)
        assert [r.id for r in store.runs({"cluster": "x"})] == [first.id, second.id, third.id, fourth.id]


def test_label_filters_and_last_n(store_url: str, tmp_path: Path) -> None:
    result = scan(pods(tmp_path, ["a"]))
    with open_store(store_url) as store:
        for labels in ({"cluster": "a", "env": "prod"}, {"cluster": "b", "env": "prod"}, {"cluster": "a", "env": "dev"},
                       {"cluster": "a", "env": "prod"}, {}):
            store.record(run_record(result, labels))
        assert len(store.runs()) == 5
        assert [r.labels for r in store.runs({"env": "prod"})] == [
            {"cluster": "a", "env": "prod"}, {"cluster": "b", "env": "prod"}, {"cluster": "a", "env": "prod"}]
        assert len(store.runs({"cluster": "a", "env": "prod"})) == 2
        assert store.runs({"cluster": "nope"}) == []
        latest = store.runs({"env": "prod"}, limit=1)  # the newest of each series, oldest first
        assert [r.labels["cluster"] for r in latest] == ["b", "a"]


def test_retention_keeps_the_newest_runs_of_the_series_only(store_url: str, tmp_path: Path) -> None:
    result = scan(pods(tmp_path, ["a", "b"]))
    with open_store(store_url) as store:
        kept_other = store.record(run_record(result, {"cluster": "other"}))
        ids = [store.record(run_record(result, {"cluster": "x"}), keep_runs=2).id for _ in range(4)]
        assert [r.id for r in store.runs({"cluster": "x"})] == ids[-2:]
        assert [r.id for r in store.runs({"cluster": "other"})] == [kept_other.id]
        assert store.findings(ids[0]) == [] and store.controls(ids[0]) == []
        assert len(store.findings(ids[-1])) == 2
        # the next run is compared with the newest kept one
        assert store.record(run_record(result, {"cluster": "x"}), keep_runs=2).previous == ids[-1]


def test_schema_is_created_once_and_a_newer_schema_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    with open_store(store_url) as store:  # second open: migrations already applied
        assert store.runs() == []
        with store._transaction() as cur:  # type: ignore[attr-defined]
            cur.execute(store.sql("UPDATE kh_schema SET version = ?"), (99,))  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="newer than this kubeharden"):
        open_store(store_url)


def _writer(url: str, path: str, worker: int, runs: int) -> None:
    result = run_scan(ScanRequest(paths=[path], only=ONLY))
    for _ in range(runs):
        with open_store(url) as store:
            store.record(run_record(result, {"cluster": f"c{worker % 2}", "writer": str(worker)}), keep_runs=None)


def test_concurrent_writers_from_several_processes_lose_nothing(store_url: str, tmp_path: Path) -> None:
    """Like several clusters' CronJobs writing at the same moment, on a store nobody created yet."""
    path = pods(tmp_path, [f"p{i}" for i in range(50)])
    workers, runs_each = 4, 5
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_url, str(path), w, runs_each)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    with open_store(store_url) as store:
        runs = store.runs()
        assert len(runs) == workers * runs_each
        assert all(len(store.findings(r.id)) == 50 for r in runs)
        for w in range(workers):
            series = store.runs({"writer": str(w)})
            assert len(series) == runs_each
            # each run was compared with the one before it in its own series, none skipped
            assert [r.previous for r in series] == [None, *(r.id for r in series[:-1])]
            assert all(r.new == 0 and r.fixed == 0 for r in series[1:])


def test_scan_store_and_history_commands(store_url: str, tmp_path: Path) -> None:
    path = str(pods(tmp_path, ["a", "b"], file="one.yaml"))
    args = ("-c", ONLY[0], "--store", store_url, "--label", "cluster=prod-eu", "-f", "json", "-o")
    assert run("scan", path, *args, str(tmp_path / "r1.json")).exit_code == 1
    pods(tmp_path, ["b", "c", "d"], file="one.yaml")  # the same file, rewritten: a fixed, c and d new
    stored = run("scan", path, *args, str(tmp_path / "r2.json"), "--keep-runs", "5")
    assert stored.exit_code == 1
    assert "stored run" in stored.stderr and "2 new, 1 fixed" in stored.stderr
    history = run("history", "--store", store_url, "-f", "json")
    assert history.exit_code == 0
    doc = json.loads(history.stdout)
    [series] = doc["series"]
    assert series["labels"] == {"cluster": "prod-eu"}
    assert [(r["findings"], r["new"], r["fixed"]) for r in series["runs"]] == [(2, None, None), (3, 2, 1)]
    table = run("history", "--store", store_url, "--label", "cluster=prod-eu")
    assert table.exit_code == 0 and "cluster=prod-eu" in table.stdout
    trend = tmp_path / "trend.html"
    assert run("history", "--store", store_url, "-o", str(trend)).exit_code == 0
    html = trend.read_text()
    assert "<svg" in html and "<polyline" in html and "cluster=prod-eu" in html
    assert "<script" not in html and "http://" not in html.split("<body>")[1].replace("http://www.w3.org", "")
    assert run("history", "--store", store_url, "--label", "cluster=nope").stdout.startswith("no runs")


def test_store_usage_errors(tmp_path: Path) -> None:
    path = str(pods(tmp_path, ["a"]))
    assert run("scan", path, "--store", "mysql://db/x").exit_code == 2
    assert run("scan", path, "--label", "cluster=a").exit_code == 2  # labels without a store
    assert run("scan", path, "--store", str(tmp_path / "r.db"), "--label", "no value").exit_code == 2
    assert run("scan", path, "--store", str(tmp_path / "r.db"), "--keep-runs", "0").exit_code == 2


def test_a_store_that_cannot_be_written_is_an_error_and_the_report_is_still_written(tmp_path: Path) -> None:
    path = str(pods(tmp_path, ["a"]))
    out = tmp_path / "r.json"
    missing = tmp_path / "no" / "such" / "dir" / "r.db"
    result = run("scan", path, "-c", ONLY[0], "--store", str(missing), "-o", str(out))
    assert result.exit_code == 2 and str(missing.parent) in result.stderr
    assert json.loads(out.read_text())["summary"]["findings"] == 1


def test_unreachable_postgres_error_names_the_server_never_the_password(postgres_server: TempServer,
                                                                       tmp_path: Path) -> None:
    url = f"postgresql://kh:s3cr3t-pw@/nosuchdb?host={postgres_server.socket_dir}"
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert "s3cr3t-pw" not in str(err.value) and "nosuchdb" in str(err.value)
    result = run("scan", str(pods(tmp_path, ["a"])), "--store", url, "-q")
    assert result.exit_code == 2 and "s3cr3t-pw" not in result.output + result.stderr
    assert redact_url("postgresql://kh:pw@db:5432/x") == "postgresql://kh:***@db:5432/x"
