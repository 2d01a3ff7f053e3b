#!/usr/bin/env python3
"""Scan speed against the YAML parsing floor.

Scans a corpus (default ../shared/corpus/real) replicated N times with the full nsa profile and
the JSON report, and parses the same files with yaml.load_all(..., Loader=yaml.CSafeLoader).
Each measurement runs in its own process so peak RSS is its own. Prints objects, wall time,
objects/s, peak RSS and the scan/parse ratio.

    python benchmarks/bench_scan.py --replicas 25      # ~100,000 objects
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

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"
SUFFIXES = (".yaml", ".yml", ".json")


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix in SUFFIXES and p.is_file())


def measure_parse(corpus: Path, replicas: int) -> dict[str, float]:
    import yaml

    files = corpus_files(corpus)
    start = time.perf_counter()
    objects = 0
    for _ in range(replicas):
        for path in files:
            data = path.read_bytes()
            try:
                for doc in yaml.load_all(data, Loader=yaml.CSafeLoader):
                    if isinstance(doc, dict):
                        items = doc.get("items")
                        objects += len(items) if isinstance(items, list) and str(doc.get("kind", "")).endswith(
                            "List") else 1
            except yaml.YAMLError:
                pass
    return {"seconds": time.perf_counter() - start, "objects": objects}


def measure_scan(corpus: Path, replicas: int) -> dict[str, float]:
    from kubeharden.reporters.json_report import stream
    from kubeharden.scanner import ScanRequest, run_scan

    start = time.perf_counter()
    result = run_scan(ScanRequest(paths=[str(corpus)] * replicas))
    with tempfile.TemporaryFile() as out:  # as `scan -o report.json` writes it
        stream(result, out)
        report_bytes = out.tell()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "objects": result.resources,
        "findings": len(result.findings),
        "errors": len(result.errors),
        "report_bytes": report_bytes,
    }


def child(mode: str, corpus: Path, replicas: int) -> None:
    figures = measure_parse(corpus, replicas) if mode == "parse" else measure_scan(corpus, replicas)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def run_child(mode: str, corpus: Path, replicas: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--corpus", str(corpus), "--replicas", str(replicas)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", "-n", type=int, default=1, help="how many times to replicate the corpus")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--child", choices=["parse", "scan"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus}")
    if args.child:
        child(args.child, args.corpus, args.replicas)
        return
    parse = run_child("parse", args.corpus, args.replicas)
    scan = run_child("scan", args.corpus, args.replicas)
    ratio = scan["seconds"] / parse["seconds"]
    print(f"corpus            {args.corpus} x {args.replicas} ({os.cpu_count()} cores)")
    print(f"objects           {scan['objects']:,} scanned ({parse['objects']:,} parsed)")
    print(f"parse (CSafeLoader) {parse['seconds']:8.2f} s  {parse['objects'] / parse['seconds']:10,.0f} obj/s"
          f"  peak RSS {parse['peak_rss_mb']:7.1f} MB")
    print(f"scan (nsa + JSON)   {scan['seconds']:8.2f} s  {scan['objects'] / scan['seconds']:10,.0f} obj/s"
          f"  peak RSS {scan['peak_rss_mb']:7.1f} MB")
    print(f"findings          {scan['findings']:,}   input errors {scan['errors']:,}")
    print(f"scan / parse      {ratio:.2f}x  (target <= 1.5x)")


if __name__ == "__main__":
    main()
