"""Hostile input on the audit reader: a line without end, /dev/zero, a FIFO, a gzip bomb, time
going backwards in a merge. Memory stays bounded, the problem is reported with file:line, the run
goes on."""

from __future__ import annotations

import gzip
import io
import os
import threading
import tracemalloc
from pathlib import Path

import orjson
import pytest

from kubeharden.audit.detectors._events import event
from kubeharden.audit.reader import ReaderLimits, ReaderStats, iter_events, iter_stream
from kubeharden.audit.synthetic import benign_day

LINE = orjson.dumps(event("get", "pods")) + b"\n"


class Endless(io.RawIOBase):
    """``head``, then ``fill`` bytes for ever (a line with no newline, however long)."""

    def __init__(self, head: bytes, fill: bytes = b"x") -> None:
        self.head, self.fill, self.served = head, fill, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        if self.head:
            chunk, self.head = self.head[:n], self.head[n:]
        else:
            chunk = self.fill * n
        buffer[:len(chunk)] = chunk
        self.served += len(chunk)
        return len(chunk)


def test_a_line_without_end_is_capped_and_the_input_stopped_with_bounded_memory() -> None:
    limits = ReaderLimits(max_line_bytes=64 * 1024, max_skip_bytes=64 * 1024 * 1024)
    stats = ReaderStats()
    raw = Endless(LINE * 3)
    tracemalloc.start()
    events = list(iter_stream(io.BufferedReader(raw), "endless.log", stats, limits))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(events) == 3  # what came before stands
    assert raw.served > 64 * 1024 * 1024  # it did read past the limit, a megabyte at a time
    assert peak < 8 * 1024 * 1024
    assert stats.problems["oversized lines"] == 1 and stats.problems["inputs stopped"] == 1
    stopped = [e for e in stats.reported if "no newline" in e.message]
    assert stopped and stopped[0].source == "endless.log" and stopped[0].line == 4


def test_a_10_gb_file_of_nul_bytes_stops_at_once(tmp_path: Path) -> None:
    path = tmp_path / "sparse.log"
    with open(path, "wb") as fh:
        fh.write(LINE)
        fh.truncate(10 * 1024 ** 3)  # sparse: no disk used, 10 GB with no newline after line 1
    stats = ReaderStats()
    events = list(iter_events([str(path)], stats))
    assert len(events) == 1
    assert stats.bytes < 64 * 1024 * 1024
    assert any("binary data" in e.message and e.line == 2 for e in stats.reported)


def test_dev_zero_is_refused_by_name() -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    stats = ReaderStats()
    assert list(iter_events(["/dev/zero", "/dev/zero"], stats)) == []
    assert stats.unreadable and all(e.source == "/dev/zero" and "not a regular file" in e.message
                                    for e in stats.unreadable)


def test_a_fifo_named_on_the_command_line_is_read_as_a_stream(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:
            fh.write(LINE * 5)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    stats = ReaderStats()
    events = list(iter_events([str(fifo)], stats))
    writer.join(timeout=10)
    assert not writer.is_alive()
    assert len(events) == 5 and not stats.unreadable


def test_a_gzip_bomb_is_stopped_by_the_running_ratio_cap(tmp_path: Path) -> None:
    path = tmp_path / "bomb.log.gz"
    path.write_bytes(gzip.compress(LINE * 2 + b" " * (48 * 1024 * 1024) + b"\n" + LINE))
    limits = ReaderLimits(max_line_bytes=64 * 1024, max_skip_bytes=1024 ** 3, gzip_ratio_after=1024 * 1024)
    stats = ReaderStats()
    events = list(iter_events([str(path)], stats, limits))
    assert len(events) == 2
    assert stats.problems["inputs stopped"] == 1
    assert any("decompression bomb" in e.message and e.source == str(path) for e in stats.reported)


def test_an_ordinary_gzip_log_is_not_a_bomb(tmp_path: Path) -> None:
    day = b"".join(orjson.dumps(e) + b"\n" for e in benign_day(10_000, seed=5, big_body_every=500))
    for name, data, count in (("day.log.gz", day, 10_000), ("repeated.log.gz", LINE * 20_000, 20_000)):
        path = tmp_path / name
        path.write_bytes(gzip.compress(data))
        stats = ReaderStats()
        assert len(list(iter_events([str(path)], stats, ReaderLimits(gzip_ratio_after=1024 * 1024)))) == count
        assert not stats.problems


def test_time_going_backwards_in_a_merge_is_reported_and_every_event_judged(tmp_path: Path) -> None:
    def line(t: str) -> bytes:
        return orjson.dumps(event("get", "pods", time=t)) + b"\n"

    a = tmp_path / "a.log"
    b = tmp_path / "b.log"
    a.write_bytes(line("2026-11-02T10:00:00Z") + line("2026-11-02T12:00:00Z") + line("2026-11-02T09:00:00Z"))
    b.write_bytes(line("2026-11-02T11:00:00Z"))
    stats = ReaderStats()
    events = list(iter_events([str(a), str(b)], stats))
    assert len(events) == 4
    assert stats.problems["events out of time order"] == 1
    assert [(e.source, e.line) for e in stats.reported] == [(str(a), 3)]
