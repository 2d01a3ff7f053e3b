#!/usr/bin/env python3
"""`kubeharden audit serve` (the audit webhook backend) under load, over loopback.

Starts the real CLI (`kubeharden audit serve --listen 127.0.0.1:0`, every detector, the synthetic
cluster's settings, alerts streamed to a jsonl file) in its own process with a fresh self-signed
certificate, then drives it from this process with keep-alive HTTPS connections posting
audit.k8s.io/v1 EventList batches of 400 events (the API server's --audit-webhook-batch-max-size
default), as the API server's batching backend does:

* paced   batches sent at 1.25x the target rate (25,000 events/s) for --seconds: response times at
          the load the issue asks for, and whether the consumer keeps up with no drop
* flood   as fast as --connections connections go for --seconds: the backend's capacity; beyond
          it batches are refused with 503 (the designed back-pressure: the API server retries)

Then SIGTERM: the server drains its queue and writes its report; the events it judged and the
time the drain took give the sustained rate (events judged / (send time + drain time)).
Everything is bounded: fixed durations, timeouts on every socket, the server killed if it hangs.

    python benchmarks/bench_audit_serve.py                   # 10 s per phase, 4 connections
    python benchmarks/bench_audit_serve.py --seconds 30 --connections 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
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

TARGET_EVENTS_PER_S = 20_000
MAX_P99_MS = 50.0
BATCH = 400


def make_certs(directory: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def make_batches(count: int) -> list[bytes]:
    """EventLists of 400 events of the synthetic cluster's day (attacks included), ~1 KB each."""
    import orjson

    from kubeharden.audit.synthetic import attacks, benign_day

    events = list(benign_day(count * BATCH, seed=11, big_body_every=500))
    events[len(events) // 2:len(events) // 2] = attacks()
    events = events[:count * BATCH]
    return [orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events[i:i + BATCH]})
            for i in range(0, len(events), BATCH)]


class Client(threading.Thread):
    """One keep-alive HTTPS connection posting batches; paced (one every ``interval`` s) or flat out."""

    def __init__(self, port: int, cert: str, batches: list[bytes], until: float, interval: float | None,
                 offset: int) -> None:
        super().__init__(daemon=True)
        self.port, self.batches, self.until, self.interval, self.offset = port, batches, until, interval, offset
        self.context = ssl.create_default_context(cafile=cert)
        self.latencies: list[float] = []
        self.codes: dict[int, int] = {}
        self.errors = 0
        self.sent_events = 0

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context, timeout=10)
        conn.connect()
        return conn

    def run(self) -> None:
        conn = self._connect()
        i = self.offset
        next_at = time.perf_counter()
        while True:
            now = time.perf_counter()
            if now >= self.until:
                break
            if self.interval is not None:
                if now < next_at:
                    time.sleep(min(next_at - now, self.until - now))
                    continue
                next_at += self.interval
            body = self.batches[i % len(self.batches)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = self._connect()
                continue
            self.latencies.append(time.perf_counter() - started)
            self.codes[response.status] = self.codes.get(response.status, 0) + 1
            if response.status == 200:
                self.sent_events += BATCH
        conn.close()


def phase(port: int, cert: str, batches: list[bytes], seconds: float, connections: int,
          rate: float | None) -> dict[str, float]:
    until = time.perf_counter() + seconds
    interval = connections * BATCH / rate if rate else None
    clients = [Client(port, cert, batches, until, interval, k * 7) for k in range(connections)]
    started = time.perf_counter()
    for c in clients:
        c.start()
    for c in clients:
        c.join(seconds + 30)
    elapsed = time.perf_counter() - started
    latencies = sorted(x for c in clients for x in c.latencies)
    codes: dict[int, int] = {}
    for c in clients:
        for code, n in c.codes.items():
            codes[code] = codes.get(code, 0) + n

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    accepted = sum(c.sent_events for c in clients)
    return {"seconds": elapsed, "accepted_events": accepted, "accepted_per_s": accepted / elapsed,
            "batches": len(latencies), "refused_503": codes.get(503, 0),
            "other_codes": sum(n for code, n in codes.items() if code not in (200, 503)),
            "errors": sum(c.errors for c in clients), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000 if latencies else float("nan")}


def start_server(workdir: Path, cert: str, key: str, queue_size: int, name: str) -> tuple[subprocess.Popen[str], int]:
    from kubeharden.audit.synthetic import SETTINGS

    settings = workdir / "settings.json"  # JSON is YAML
    settings.write_text(json.dumps(SETTINGS))
    cmd = [sys.executable, "-m", "kubeharden", "audit", "serve", "--listen", "127.0.0.1:0", "--tls-cert", cert,
           "--tls-key", key, "--queue-size", str(queue_size), "--settings", str(settings), "--fail-on", "none",
           "--max-seconds", "600", "-f", "jsonl", "-o", str(workdir / f"{name}.jsonl"),
           "-f", "json", "-o", str(workdir / f"{name}.json")]
    stderr = open(workdir / f"{name}.stderr", "w+")  # noqa: SIM115 (read back after the run)
    proc = subprocess.Popen(cmd, stderr=stderr, stdout=subprocess.DEVNULL, text=True, cwd=workdir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stderr.seek(0)
        match = re.search(r"listening on https://[^:]+:(\d+)/", stderr.read())
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    stderr.seek(0)
    raise SystemExit(f"the server did not start:\n{stderr.read()}")


def stop_server(proc: subprocess.Popen[str], workdir: Path, name: str) -> dict[str, float]:
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("the server did not stop within 120 s of SIGTERM") from None
    drain = time.perf_counter() - started
    report = json.loads((workdir / f"{name}.json").read_text())
    note = next(n for n in report["notes"] if n.startswith("webhook:"))
    batches, events, refused = (int(x) for x in re.findall(r"(\d+) (?:batches|events|refused)", note))
    with open(workdir / f"{name}.jsonl", "rb") as fh:
        alerts = sum(1 for _ in fh)
    return {"drain_s": drain, "judged_events": events, "server_batches": batches, "server_refused": refused,
            "alerts": alerts, "exit": proc.returncode}


def show(title: str, r: dict[str, float], s: dict[str, float]) -> bool:
    sustained = s["judged_events"] / (r["seconds"] + s["drain_s"])
    kept_up = s["judged_events"] >= r["accepted_events"]
    print(f"{title}: {r['batches']:.0f} batches in {r['seconds']:.1f}s, drain {s['drain_s']:.1f}s after SIGTERM, "
          f"server exit {s['exit']}")
    print(f"  accepted      {r['accepted_per_s']:>9,.0f} events/s")
    print(f"  sustained     {sustained:>9,.0f} events/s judged   (target >= {TARGET_EVENTS_PER_S:,})  "
          f"{'ok' if sustained >= TARGET_EVENTS_PER_S else 'BELOW TARGET'}")
    print(f"  response      p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  max {r['max_ms']:.1f} ms   "
          f"(target p99 < {MAX_P99_MS:.0f} ms)  {'ok' if r['p99_ms'] < MAX_P99_MS else 'ABOVE TARGET'}")
    print(f"  drops         {r['refused_503']:.0f} batches refused (503, queue full), {r['errors']:.0f} connection "
          f"errors, {r['other_codes']:.0f} other codes; judged {s['judged_events']:,} of "
          f"{r['accepted_events']:,.0f} accepted events ({'all' if kept_up else 'NOT ALL'}); {s['alerts']} alerts")
    return sustained >= TARGET_EVENTS_PER_S and r["p99_ms"] < MAX_P99_MS and kept_up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1.25 * TARGET_EVENTS_PER_S,
                        help="events/s offered in the paced phase (above the target, so a backend that keeps "
                        "up sustains more than the target)")
    parser.add_argument("--queue-size", type=int, default=256)
    parser.add_argument("--phases", default="paced,flood")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        cert, key = make_certs(workdir)
        batches = make_batches(250)
        size = sum(len(b) for b in batches) / len(batches)
        print(f"batches: {len(batches)} EventLists of {BATCH} events, {size / 1024:.0f} KiB average; "
              f"{args.connections} keep-alive HTTPS connections; {os.cpu_count()} cores shared with the server")
        ok = True
        for name in args.phases.split(","):
            rate = args.rate if name == "paced" else None
            proc, port = start_server(workdir, cert, key, args.queue_size, name)
            try:
                r = phase(port, cert, batches, args.seconds, args.connections, rate)
            finally:
                s = stop_server(proc, workdir, name)
            label = f"{name} ({args.rate:,.0f} events/s offered)" if rate else f"{name} (as fast as it goes)"
            ok = show(label, r, s) and ok
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
