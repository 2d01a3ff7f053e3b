#!/usr/bin/env python3
"""`kubeharden webhook` latency under load: real corpus objects as AdmissionReviews over keep-alive HTTPS.

The webhook runs in its own process (`kubeharden webhook`, full nsa profile, enforce) on 127.0.0.1; this
process is the load generator: an open loop at a fixed rate spread over keep-alive connections (as the
API server keeps a pool), replaying the workloads of ../shared/corpus/real (the examples when the corpus
is absent) in a fixed order. Bounded: each rate runs --duration seconds (5 by default, 60 with --long),
every request has a 10 s timeout. Printed per rate: requests, errors, p50/p99/max latency, requests the
generator could not start on time, and the webhook's CPU time per request, with the floors beside them.
A `floor` line measures the HTTP+TLS layer alone (an empty object list: DELETE reviews are not judged).

    python benchmarks/bench_webhook.py               # 100, 500, 1000 req/s for 5 s each
    python benchmarks/bench_webhook.py --long        # 60 s each
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

P99_FLOOR_MS_AT_500 = 10.0
RATES = (100, 500, 1000)
CONNECTIONS = 8


def corpus_reviews(limit: int = 2000) -> list[bytes]:
    import yaml

    from kubeharden.admission.review import review_body
    from kubeharden.inventory import WORKLOAD_KINDS

    shared = Path(os.environ.get("KUBEHARDEN_SHARED", ROOT.parent / "shared")) / "corpus" / "real"
    files = sorted(shared.rglob("*.yaml")) if shared.is_dir() else sorted((ROOT / "examples").rglob("*.yaml"))
    bodies = []
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS and isinstance(doc.get("metadata"), dict):
                doc["metadata"].setdefault("namespace", "bench")
                bodies.append(review_body(doc, uid=f"bench-{len(bodies)}"))
                if len(bodies) >= limit:
                    return bodies
    return bodies


def cpu_seconds(pid: int) -> float:
    """CPU time of the webhook and its worker processes (--workers: the children serve)."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start_webhook(tmp: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], int, str]:
    from kubeharden.admission import certs

    bundle = certs.generate(("localhost",))
    for name, data in (("ca.crt", bundle.ca_cert), ("tls.crt", bundle.cert), ("tls.key", bundle.key)):
        (tmp / name).write_bytes(data)
    import socket

    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kubeharden", "webhook", "--listen", f"127.0.0.1:{port}",
                             "--tls-cert", str(tmp / "tls.crt"), "--tls-key", str(tmp / "tls.key"),
                             "--profile", "nsa", "--mode", "enforce", "--workers", str(workers)],
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    context = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port, str(tmp / "ca.crt")
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the webhook did not become ready within 30 s")


def run_rate(port: int, ca: str, bodies: list[bytes], rate: int, duration: float) -> dict[str, float]:
    context = ssl.create_default_context(cafile=ca)
    latencies: list[float] = []
    errors = 0
    late = 0
    lock = threading.Lock()
    per_thread = rate / CONNECTIONS
    total = int(rate * duration)
    start = time.monotonic() + 0.2

    def worker(index: int) -> None:
        nonlocal errors, late
        conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
        mine: list[float] = []
        failed = slow_start = 0
        n = index
        k = 0
        while n < total:
            due = start + k / per_thread + index / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 0.005:
                slow_start += 1
            body = bodies[n % len(bodies)]
            began = time.monotonic()
            try:
                conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except OSError:
                failed += 1
                conn.close()
                conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
            mine.append(time.monotonic() - began)
            n += CONNECTIONS
            k += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed
            late += slow_start

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 120)
    latencies.sort()
    count = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p * count))] * 1000 if count else float("nan")

    return {"requests": count, "errors": errors, "late": late, "p50": pct(0.50), "p99": pct(0.99),
            "max": latencies[-1] * 1000 if count else float("nan"),
            "achieved": count / max(1e-9, time.monotonic() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate (bounded to 120)")
    parser.add_argument("--long", action="store_true", help="60 s per rate")
    parser.add_argument("--rates", type=int, nargs="*", default=list(RATES))
    parser.add_argument("--workers", type=int, default=1, help="webhook worker processes (--workers)")
    args = parser.parse_args()
    duration = min(120.0, 60.0 if args.long else args.duration)
    bodies = corpus_reviews()
    from kubeharden.admission.review import review_body

    floor_bodies = [review_body(None, operation="DELETE", old={"apiVersion": "v1", "kind": "Pod",
                                                               "metadata": {"name": "x", "namespace": "bench"}})]
    print(f"{len(bodies)} workload objects replayed; {CONNECTIONS} keep-alive connections; {duration:.0f} s per rate; "
          f"{os.cpu_count()} CPUs; {args.workers} webhook worker(s)")
    with tempfile.TemporaryDirectory(prefix="kh-bench-webhook-") as tmp:
        proc, port, ca = start_webhook(Path(tmp), args.workers)
        try:
            run_rate(port, ca, bodies, 100, 1.0)  # warm-up
            print(f"{'run':>10} {'req':>7} {'err':>4} {'late':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
                  f"{'cpu ms/req':>10}  floor")
            for label, rate, payload in [("floor", 500, floor_bodies), *[(f"{r}/s", r, bodies) for r in args.rates]]:
                before = cpu_seconds(proc.pid)
                stats = run_rate(port, ca, payload, rate, duration)
                cpu = (cpu_seconds(proc.pid) - before) / max(1, stats["requests"]) * 1000
                floor = f"p99 < {P99_FLOOR_MS_AT_500:.0f} ms, 0 errors" if rate == 500 and label != "floor" else \
                    "HTTP+TLS only (DELETE, not judged)" if label == "floor" else "0 errors"
                print(f"{label:>10} {stats['requests']:>7.0f} {stats['errors']:>4.0f} {stats['late']:>5.0f} "
                      f"{stats['p50']:>7.2f} {stats['p99']:>7.2f} {stats['max']:>7.1f} {cpu:>10.2f}  {floor}")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
