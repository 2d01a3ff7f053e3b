"""`kubeharden audit --follow` as a user runs it: a subprocess tailing a log that grows and rotates
(rename, then copytruncate), alerts streamed to a jsonl file as they are found, detector state
kept across rotations, SIGINT/SIGTERM ending the run with its report. Bounded: every wait has a
deadline, --idle-exit backs them up, the process is killed if it outlives the test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audit_helpers import jsonl

from kubeharden.audit.detectors._events import event

DEADLINE = 30.0


def _denial(i: int, user: str = "eve") -> dict:
    return event("get", "secrets", name=f"s{i}", code=403, user=user, ips=("192.0.2.9",),
                 time=f"2026-11-02T10:00:{i:02d}Z")


def _exec(name: str) -> dict:
    return event("create", "pods", name=name, subresource="exec", code=101)


def _append(path: Path, events: list[dict]) -> None:
    with path.open("ab") as fh:
        fh.write(jsonl(events))


def _alerts(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[:-1]]  # only complete lines: the writer may be mid-line


def _wait_for(path: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        alerts = _alerts(path)
        if len(alerts) >= count:
            return alerts
        time.sleep(0.05)
    raise AssertionError(f"expected {count} alerts in {path}, have {_alerts(path)}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_follow_subprocess_rotation_state_and_clean_stop(tmp_path, stop_signal) -> None:
    log, alerts_file, report = tmp_path / "audit.log", tmp_path / "alerts.jsonl", tmp_path / "report.json"
    settings = tmp_path / "settings.yaml"
    settings.write_text("forbiddenBurst: {threshold: 3, windowSeconds: 60}\n")
    log.write_bytes(jsonl([_exec("a"), _denial(1), _denial(2)]))  # two denials: under the burst threshold
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubeharden", "audit", "--follow", str(log), "--poll-interval", "0.05",
         "--idle-exit", "60", "--settings", str(settings), "--fail-on", "none",
         "-f", "jsonl", "-o", str(alerts_file), "-f", "json", "-o", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        assert [a["control_id"] for a in _wait_for(alerts_file, 1)] == ["D05"]
        # rename rotation: the API server's log backend moves the file and starts a new one
        os.rename(log, tmp_path / "audit-2026-11-02T10-00-03.log")
        log.write_bytes(jsonl([_denial(3)]))  # the third denial, in the new file: a burst only if state is kept
        alerts = _wait_for(alerts_file, 2)
        assert alerts[1]["control_id"] == "D06" and "3 denied requests by eve" in alerts[1]["message"]
        # copytruncate: logrotate copies the file and truncates it in place
        log.write_bytes(b"")
        time.sleep(0.3)
        _append(log, [_exec("b")])
        alerts = _wait_for(alerts_file, 3)
        assert alerts[2]["control_id"] == "D05" and alerts[2]["resource"]["name"] == "b"
        proc.send_signal(stop_signal)
        _out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert [a["control_id"] for a in _alerts(alerts_file)] == ["D05", "D06", "D05"]
    result = json.loads(report.read_text())
    assert any(n.startswith(f"stopped by {stop_signal.name}") for n in result["notes"])
    assert sorted(f["control_id"] for f in result["findings"]) == ["D05", "D05", "D06"]
    statuses = {c["id"]: c["status"] for c in result["controls"]}
    assert statuses["D06"] == "fail" and statuses["D05"] == "fail"
