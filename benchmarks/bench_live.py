#!/usr/bin/env python3
"""Live-cluster read, scan and snapshot against the loopback API server of the test suite.

Starts tests/live/fake_apiserver.py in its own process serving a synthetic cluster of N
objects (Deployments with ReplicaSets and Pods, Services, ConfigMaps, ServiceAccounts, with
managedFields and last-applied annotations as a real server sends them), then measures, each
in a fresh process so peak RSS is its own:

* read      read_cluster + conversion to resources (what every live scan does first)
* scan      `scan --cluster` with the whole nsa profile and the JSON report
* snapshot  read + write of cluster.json.gz
* snapshot-scan  scan of that snapshot with the whole nsa profile and the JSON report

    python benchmarks/bench_live.py --objects 10000
    python benchmarks/bench_live.py --objects 100000 --page-size 500
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAKE_SERVER = ROOT / "tests" / "live" / "fake_apiserver.py"
STEPS = ("read", "scan", "snapshot", "snapshot-scan")


def measure(step: str, kubeconfig: str, snapshot: str, page_size: int) -> dict[str, Any]:
    from kubeharden.reporters.json_report import render
    from kubeharden.scanner import ScanRequest, run_scan
    from kubeharden.sources.cluster import ClusterOptions, read_cluster, to_load_result
    from kubeharden.sources.snapshot import write_snapshot

    options = ClusterOptions(kubeconfig=kubeconfig, page_size=page_size, progress=False)
    started = time.perf_counter()
    out: dict[str, Any] = {}
    if step == "read":
        out["objects"] = to_load_result(read_cluster(options)).stats.resources
    elif step == "snapshot":
        out["objects"] = write_snapshot(read_cluster(options), snapshot)
        out["snapshot_bytes"] = Path(snapshot).stat().st_size
    else:
        if step == "scan":
            request = ScanRequest(sources={"cluster": {"kubeconfig": kubeconfig, "page_size": page_size,
                                                       "progress": False}})
        else:
            request = ScanRequest(paths=[snapshot])
        result = run_scan(request)
        render(result)
        out["objects"] = result.resources
        out["findings"] = len(result.findings)
    out["seconds"] = time.perf_counter() - started
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_step(step: str, kubeconfig: Path, snapshot: Path, page_size: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--measure", step, "--kubeconfig", str(kubeconfig),
            "--snapshot", str(snapshot), "--page-size", str(page_size)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    value: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--measure", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.kubeconfig, args.snapshot, args.page_size)))
        return
    with tempfile.TemporaryDirectory(prefix="kh-bench-live-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig.yaml"
        snapshot = Path(tmp) / "cluster.json.gz"
        server = subprocess.Popen(
            [sys.executable, str(FAKE_SERVER), "--objects", str(args.objects), "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None
            ready = server.stdout.readline().split()
            if not ready or ready[0] != "READY":
                raise SystemExit("the fake API server did not start")
            print(f"synthetic cluster: {ready[1]} objects, page size {args.page_size}")
            print(f"{'step':<14} {'objects':>8} {'seconds':>8} {'obj/s':>8} {'peak RSS':>10}  notes")
            for step in STEPS:
                row = run_step(step, kubeconfig, snapshot, args.page_size)
                notes = []
                if "findings" in row:
                    notes.append(f"{row['findings']} findings")
                if "snapshot_bytes" in row:
                    notes.append(f"snapshot {row['snapshot_bytes'] / 2**20:.1f} MiB")
                rate = row["objects"] / row["seconds"] if row["seconds"] else 0.0
                print(f"{step:<14} {row['objects']:>8} {row['seconds']:>8.2f} {rate:>8.0f} "
                      f"{row['peak_rss_mib']:>7.0f} MiB  {', '.join(notes)}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
