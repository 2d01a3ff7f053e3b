#!/usr/bin/env python3
"""Results store sizing: time to store a run of 100,000 findings, rows per run, bytes per finding,
and `history` latency, for SQLite and PostgreSQL (a throwaway server from Debian `postgresql`, or
--postgres-url).

The findings come from a scan of the corpus (default ../shared/corpus/real), replicated (the file
path carries the replica) up to --findings. Each run is stored --runs times into one series, so
history reads a store of runs x findings rows.

    python benchmarks/bench_store.py                     # 100,000 findings, 5 runs, both backends
    python benchmarks/bench_store.py --backend sqlite --findings 300000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubeharden.scanner import ScanRequest, run_scan
from kubeharden.store import FindingRow, RunRecord, open_store, run_record

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"
HISTORY_FLOOR = 1.0  # seconds: the bound for `history` on a store of 100,000 findings


def corpus_run(corpus: Path, findings: int) -> tuple[RunRecord, float, int]:
    started = time.perf_counter()
    result = run_scan(ScanRequest(paths=[str(corpus)]))
    scan_seconds = time.perf_counter() - started
    record = run_record(result, {"cluster": "bench"})
    base = record.findings
    if not base:
        sys.exit(f"{corpus}: the scan found nothing to store")
    rows: list[FindingRow] = []
    replica = 0
    while len(rows) < findings:
        for f in base:
            if len(rows) == findings:
                break
            # another replica of the corpus: another file, so another fingerprint
            rows.append(dataclasses.replace(f, file=f"replica-{replica}/{f.file}",
                                            fingerprint=f"{replica:04d}{f.fingerprint[4:]}"))
        replica += 1
    record.findings = rows
    return record, scan_seconds, len(base)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def bench(url: str, record: RunRecord, runs: int, size: Callable[[], int]) -> dict[str, Any]:
    before = size()
    store_times = []
    with open_store(url) as store:
        for _ in range(runs):
            seconds, info = timed(lambda: store.record(record))
            store_times.append(seconds)
        read_seconds, rows = timed(lambda: store.findings(info.id))
        assert len(rows) == len(record.findings)
        history_seconds, history = timed(lambda: store.runs({"cluster": "bench"}))
        assert len(history) == runs and history[-1].new == 0
    env = {**os.environ, "KUBEHARDEN_STORE": url}
    cli_seconds, proc = timed(lambda: subprocess.run(
        [sys.executable, "-m", "kubeharden", "history", "--label", "cluster=bench", "-f", "json"],
        env=env, capture_output=True, timeout=120))
    assert proc.returncode == 0, proc.stderr.decode()
    stored = size() - before
    return {"store": store_times, "read": read_seconds, "history": history_seconds, "history_cli": cli_seconds,
            "bytes": stored, "rows_per_run": len(record.findings) + len(record.controls) + len(record.labels) + 1}


def report(name: str, figures: dict[str, Any], findings: int, runs: int) -> None:
    best, worst = min(figures["store"]), max(figures["store"])
    print(f"{name}:")
    print(f"  store one run of {findings:,} findings: {best:.2f} s best, {worst:.2f} s worst "
          f"({findings / best:,.0f} findings/s)")
    print(f"  rows per run: {figures['rows_per_run']:,} ({findings:,} findings + controls + labels + 1 run)")
    print(f"  size: {figures['bytes'] / (runs * findings):.0f} bytes per finding "
          f"({figures['bytes'] / 1e6:.1f} MB for {runs} runs, indexes included)")
    print(f"  read one run's findings: {figures['read']:.2f} s")
    status = "ok" if figures["history"] < HISTORY_FLOOR else "SLOWER than"
    print(f"  history over {runs * findings:,} stored findings: {figures['history'] * 1000:.1f} ms in process, "
          f"{figures['history_cli']:.2f} s as a command (Python start included); "
          f"{status} the {HISTORY_FLOOR:.0f} s bound")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres-url", help="an existing database instead of a throwaway server")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus} (give --corpus)")
    record, scan_seconds, base = corpus_run(args.corpus, args.findings)
    print(f"corpus {args.corpus}: {base:,} findings in {scan_seconds:.1f} s; stored runs hold {args.findings:,}")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "results.db")

            def sqlite_size() -> int:
                return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))

            report("SQLite", bench(f"sqlite://{path}", record, args.runs, sqlite_size), args.findings, args.runs)
    if args.backend in ("postgresql", "both"):
        import psycopg

        def postgres(url: str) -> None:
            def pg_size() -> int:
                with psycopg.connect(url) as db:
                    row = db.execute("SELECT pg_database_size(current_database())").fetchone()
                    return int(row[0]) if row else 0

            report("PostgreSQL", bench(url, record, args.runs, pg_size), args.findings, args.runs)

        if args.postgres_url:
            postgres(args.postgres_url)
        else:
            from kubeharden.store.tempserver import temporary_postgres

            with temporary_postgres() as server:
                with psycopg.connect(server.url(), autocommit=True) as admin:
                    admin.execute("CREATE DATABASE kh_bench")
                postgres(server.url("kh_bench"))


if __name__ == "__main__":
    main()
