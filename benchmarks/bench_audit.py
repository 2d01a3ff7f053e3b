#!/usr/bin/env python3
"""`kubeharden audit` throughput and memory over a generated audit log.

Writes a realistic synthetic log (kubelets, controllers, the scheduler, applications, a CD system,
probes and people from audit.synthetic, ~1 KB average, a 50 KB ConfigMap body every 500 events,
attacks sprinkled in), then measures, each in a fresh process so peak RSS is its own:

* floor     a bare `orjson.loads` loop over the same lines
* audit     reader + every detector (settings and a baseline as in a real deployment)

and prints events/s, MB/s, peak RSS and the ratio to the floor, with the issue's targets beside them.

    python benchmarks/bench_audit.py                 # ~200 MB
    python benchmarks/bench_audit.py --size-mb 1100  # the 1 GB run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

FLOOR_EVENTS_PER_S = 100_000
MAX_RSS_MB_1GB = 300
MAX_RATIO = 2.0


def generate(path: Path, size_mb: int) -> int:
    import orjson

    from kubeharden.audit.synthetic import attacks, benign_day

    target = size_mb * 1024 * 1024
    written = events = 0
    seed = 0
    with open(path, "wb") as fh:
        while written < target:
            chunk = list(benign_day(20_000, seed=seed, big_body_every=500))
            if seed % 5 == 0:
                chunk[len(chunk) // 2:len(chunk) // 2] = attacks()
            for e in chunk:
                line = orjson.dumps(e) + b"\n"
                fh.write(line)
                written += len(line)
                events += 1
            seed += 1
    return events


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). ru_maxrss is not: after fork+exec Linux carries the
    parent's peak over, so every mode used to print the generator's 93 MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, path: str) -> dict[str, float]:
    import orjson

    started = time.perf_counter()
    count = 0
    if mode == "floor":
        loads = orjson.loads
        with open(path, "rb") as fh:
            for line in fh:
                loads(line)
                count += 1
        alerts = 0
    else:
        from kubeharden.audit.baseline import Baseline
        from kubeharden.audit.detectors import all_detectors
        from kubeharden.audit.event import AuditEvent
        from kubeharden.audit.reader import ReaderStats, iter_events
        from kubeharden.audit.runner import AuditRun
        from kubeharden.audit.settings import settings_from_mapping
        from kubeharden.audit.synthetic import SETTINGS, benign_day

        baseline = Baseline()
        baseline.learn_all(AuditEvent(e) for e in benign_day(5000, seed=99))
        stats = ReaderStats()
        run = AuditRun(all_detectors(), settings_from_mapping(SETTINGS), baseline=baseline, keep_findings=10_000)
        started = time.perf_counter()
        run.feed_all(iter_events([path], stats))
        run.flush()
        count = stats.events
        alerts = sum(run.counts.values())
    elapsed = time.perf_counter() - started
    rss_mb = peak_rss_mb()
    return {"events": count, "seconds": elapsed, "rss_mb": rss_mb, "alerts": alerts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--keep", metavar="FILE", help="write the log here and keep it")
    parser.add_argument("--measure", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    tmp = tempfile.TemporaryDirectory()
    path = Path(args.keep) if args.keep else Path(tmp.name) / "audit.log"
    t0 = time.perf_counter()
    events = generate(path, args.size_mb)
    size = os.path.getsize(path)
    print(f"log: {events} events, {size / 1e6:.0f} MB ({size / events:.0f} B/event), generated in "
          f"{time.perf_counter() - t0:.0f}s")
    results = {}
    for mode in ("floor", "audit"):
        out = subprocess.run([sys.executable, __file__, "--measure", mode, str(path)], check=True,
                             capture_output=True, text=True)
        results[mode] = json.loads(out.stdout)
    floor, audit = results["floor"], results["audit"]
    for mode, r in results.items():
        print(f"{mode:6s} {r['events'] / r['seconds']:>10,.0f} events/s  {size / 1e6 / r['seconds']:>7.1f} MB/s  "
              f"peak RSS {r['rss_mb']:>6.0f} MB" + (f"  alerts {r['alerts']}" if mode == "audit" else ""))
    ratio = audit["seconds"] / floor["seconds"]
    eps = audit["events"] / audit["seconds"]
    print(f"audit events/s: {eps:,.0f}   (target >= {FLOOR_EVENTS_PER_S:,} per core)  "
          f"{'ok' if eps >= FLOOR_EVENTS_PER_S else 'BELOW TARGET'}")
    print(f"ratio to bare orjson.loads: {ratio:.2f}x   (target <= {MAX_RATIO}x)  "
          f"{'ok' if ratio <= MAX_RATIO else 'ABOVE TARGET'}")
    scale = " (scaled target for this size)" if size < 1e9 else ""
    print(f"peak RSS: {audit['rss_mb']:.0f} MB   (target < {MAX_RSS_MB_1GB} MB on 1 GB){scale}  "
          f"{'ok' if audit['rss_mb'] < MAX_RSS_MB_1GB else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
