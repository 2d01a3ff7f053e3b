"""Read audit events: JSON lines (the log backend), gzip, stdin, a JSON ``EventList`` (the webhook
backend's batches, one per line or one pretty-printed document), several files merged in time order.

Reads, never judges. Memory stays bounded whatever the file size: lines are streamed, an oversized
line is skipped without being held, and bad lines are counted and reported with file:line (the
first ones in full) while the run goes on.
"""

from __future__ import annotations

import gzip
import heapq
import io
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from kubeharden.audit.event import AuditEvent
from kubeharden.model import InputError
from kubeharden.safeio import open_regular

STDIN = "<stdin>"
GZIP_MAGIC = b"\x1f\x8b"
REQUIRED_FIELDS = ("stage", "verb", "user")


@dataclass(frozen=True)
class ReaderLimits:
    max_line_bytes: int = 16 * 1024 * 1024  # one event; the API server itself caps bodies near 3 MB
    max_document_bytes: int = 512 * 1024 * 1024  # a pretty-printed EventList must be decoded whole
    max_reported_problems: int = 50  # the rest are counted
    max_skip_bytes: int = 1024 * 1024 * 1024  # an oversized line longer than this: the input is not a log
    max_gzip_ratio: int = 500  # decompressed/compressed beyond this (after 64 MiB out): a bomb (deflate tops out
    # near 1030x; real audit logs compress 10-30x, a log of one line repeated about 200x)
    gzip_ratio_after: int = 64 * 1024 * 1024


@dataclass
class ReaderStats:
    files: int = 0
    lines: int = 0
    events: int = 0
    bytes: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    reported: list[InputError] = field(default_factory=list)
    unreadable: list[InputError] = field(default_factory=list)

    def problem(self, kind: str, source: str, line: int | None, message: str, limits: ReaderLimits) -> None:
        self.problems[kind] += 1
        if len(self.reported) < limits.max_reported_problems:
            self.reported.append(InputError(source, message, line))

    def summary(self) -> list[str]:
        return [f"{count} {kind}" for kind, count in sorted(self.problems.items())]


class InputStopped(Exception):
    """The rest of one input is not read (binary data, a line without end, a decompression bomb)."""


class _CountingReader(io.RawIOBase):
    """The compressed side of a gzip input, counted (the decompression bomb check)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


class _BombCheckedGzip(gzip.GzipFile):
    """A GzipFile whose output may grow to at most ``ratio`` times the compressed bytes read
    (checked on every read, once ``after`` bytes are out): a running cap, not a size limit."""

    def setup_cap(self, counter: _CountingReader, ratio: int, after: int) -> None:
        self._counter, self._ratio, self._after, self._out = counter, ratio, after, 0

    def _check(self, n: int) -> None:
        self._out += n
        if self._out > self._after and self._out > self._ratio * max(1, self._counter.count):
            raise InputStopped(f"gzip data expands more than {self._ratio}x ({self._out} bytes from "
                               f"{self._counter.count}): a decompression bomb? the rest is not read")

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self._check(len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self._check(len(data))
        return data


def _open_path(path: str) -> IO[bytes]:
    """A regular file, or a FIFO named on the command line: read as a stream, as stdin is (the
    open waits for a writer, as `cat` does). Devices (/dev/zero), sockets, directories: refused."""
    try:
        return open_regular(path)
    except OSError:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if not stat.S_ISFIFO(st.st_mode):
            raise
        fh = open(path, "rb")  # noqa: SIM115 - closed by iter_file; blocks until a writer opens it
        if (os.fstat(fh.fileno()).st_dev, os.fstat(fh.fileno()).st_ino) != (st.st_dev, st.st_ino):
            fh.close()
            raise OSError(f"{path}: replaced while opening") from None
        return fh


def _open(path: str, limits: ReaderLimits = ReaderLimits()) -> tuple[IO[bytes], str]:
    if path == "-":
        raw: Any = sys.stdin.buffer
        name = STDIN
    else:
        raw = _open_path(path)
        name = path
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        counter = _CountingReader(buffered)
        gz = _BombCheckedGzip(fileobj=io.BufferedReader(counter), mode="rb")
        gz.setup_cap(counter, limits.max_gzip_ratio, limits.gzip_ratio_after)
        return gz, name  # type: ignore[return-value]
    return buffered, name


def _event(obj: Any, name: str, line: int | None, stats: ReaderStats, limits: ReaderLimits,
           where: str = "") -> AuditEvent | None:
    if not isinstance(obj, dict):
        stats.problem("not an event", name, line, f"{where}not a JSON object", limits)
        return None
    missing = [f for f in REQUIRED_FIELDS if not obj.get(f)]
    if missing:
        stats.problem("missing fields", name, line, f"{where}event without {', '.join(missing)}: skipped", limits)
        return None
    stats.events += 1
    return AuditEvent(obj, name, line)


def expand(obj: Any, name: str, line: int | None, stats: ReaderStats, limits: ReaderLimits) -> Iterator[AuditEvent]:
    """One decoded JSON value: an Event, an EventList, or a JSON array of events."""
    if isinstance(obj, dict) and obj.get("kind") == "EventList":
        items = obj.get("items")
        if not isinstance(items, list):
            stats.problem("not an event", name, line, "EventList without items", limits)
            return
        for i, item in enumerate(items):
            event = _event(item, name, line, stats, limits, f"items[{i}]: ")
            if event is not None:
                yield event
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            event = _event(item, name, line, stats, limits, f"[{i}]: ")
            if event is not None:
                yield event
        return
    event = _event(obj, name, line, stats, limits)
    if event is not None:
        yield event


def _skip_rest_of_line(fh: IO[bytes], head: bytes, limits: ReaderLimits) -> int:
    """Read past the rest of an oversized line, holding 1 MiB at a time. Binary data (NUL bytes:
    /dev/zero, an image) or no newline within max_skip_bytes: the input is not a log (InputStopped)."""
    skipped = 0
    chunk = head
    while True:
        if b"\0" in chunk:
            raise InputStopped("binary data (NUL bytes), not an audit log: the rest is not read")
        if skipped > limits.max_skip_bytes:
            raise InputStopped(f"no newline in {skipped + len(head)} bytes: not an audit log, the rest is not read")
        chunk = fh.readline(1 << 20)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def iter_stream(fh: IO[bytes], name: str, stats: ReaderStats, limits: ReaderLimits = ReaderLimits(),
                start_line: int = 0) -> Iterator[AuditEvent]:
    """Events of one open stream, line by line (a stream whose first line is not JSON but whose text
    is one JSON document, e.g. a pretty-printed EventList, is decoded whole, within the limit)."""
    loads = orjson.loads
    JSONDecodeError = orjson.JSONDecodeError
    limit = limits.max_line_bytes
    lineno = start_line
    first = True
    readline = fh.readline
    while True:
        try:
            line = readline(limit + 1)
        except InputStopped as exc:  # the gzip bomb check
            stats.problem("inputs stopped", name, lineno + 1, str(exc), limits)
            return
        if not line:
            return
        lineno += 1
        stats.lines += 1
        stats.bytes += len(line)
        if len(line) > limit and not line.endswith(b"\n"):
            stats.problem("oversized lines", name, lineno, f"line longer than {limit} bytes: skipped", limits)
            try:
                stats.bytes += _skip_rest_of_line(fh, line, limits)
            except InputStopped as exc:
                stats.problem("inputs stopped", name, lineno, str(exc), limits)
                return
            first = False
            continue
        try:
            obj = loads(line)
        except JSONDecodeError:
            stripped = line.strip()
            if not stripped:
                continue
            if first and stripped[:1] in (b"{", b"["):
                yield from _whole_document(line, fh, name, stats, limits, lineno)
                return
            if not line.endswith(b"\n"):  # readline stopped short of the limit: the end of the stream
                stats.problem("truncated lines", name, lineno, "truncated last line (the log is still being "
                              "written, or was cut): skipped", limits)
            else:
                stats.problem("non-JSON lines", name, lineno, "not JSON: skipped", limits)
            first = False
            continue
        first = False
        # the common case, inline: one event per line
        if type(obj) is dict and obj.get("stage") and obj.get("verb") and obj.get("user") \
                and obj.get("kind") != "EventList":
            stats.events += 1
            yield AuditEvent(obj, name, lineno)
            continue
        yield from expand(obj, name, lineno, stats, limits)


def _whole_document(head: bytes, fh: IO[bytes], name: str, stats: ReaderStats, limits: ReaderLimits,
                    lineno: int) -> Iterator[AuditEvent]:
    rest = fh.read(limits.max_document_bytes - len(head) + 1)
    stats.bytes += len(rest)
    data = head + rest
    if len(data) > limits.max_document_bytes:
        stats.problem("oversized documents", name, lineno, f"JSON document larger than "
                      f"{limits.max_document_bytes} bytes: not read", limits)
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        stats.problem("non-JSON lines", name, lineno, f"not JSON lines and not one JSON document ({exc.msg} at "
                      f"line {exc.lineno + lineno - 1})", limits)
        return
    yield from expand(obj, name, lineno, stats, limits)


def parse_line(line: bytes, name: str, lineno: int, stats: ReaderStats,
               limits: ReaderLimits = ReaderLimits()) -> Iterator[AuditEvent]:
    """One complete line (follow mode and the webhook backend share this with the file reader)."""
    if len(line) > limits.max_line_bytes:
        stats.problem("oversized lines", name, lineno, f"line longer than {limits.max_line_bytes} bytes: skipped",
                      limits)
        return
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        if line.strip():
            stats.problem("non-JSON lines", name, lineno, "not JSON: skipped", limits)
        return
    yield from expand(obj, name, lineno, stats, limits)


def iter_file(path: str, stats: ReaderStats, limits: ReaderLimits = ReaderLimits()) -> Iterator[AuditEvent]:
    try:
        fh, name = _open(path, limits)
    except OSError as exc:
        stats.unreadable.append(InputError(path, f"cannot read: {exc.strerror or exc}"))
        return
    stats.files += 1
    try:
        yield from iter_stream(fh, name, stats, limits)
    except InputStopped as exc:  # a gzip bomb: what was read stands
        stats.problem("inputs stopped", name, None, str(exc), limits)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        # a cut gzip member or a read error: what was read stands, the rest is reported
        stats.unreadable.append(InputError(name, f"read stopped: {exc}"))
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _time_key(event: AuditEvent) -> float:
    t = event.time
    return t if t is not None else 0.0


def _in_order(events: Iterator[AuditEvent], stats: ReaderStats, limits: ReaderLimits) -> Iterator[AuditEvent]:
    """One input of a merge, checked for time going backwards: the merge takes each file as the API
    server appends it (in order); a file that is not is reported at file:line and its events are
    judged in the order read (windows and baselines tolerate it; exact interleaving is lost)."""
    latest = None
    for event in events:
        t = event.time
        if t is not None:
            if latest is not None and t < latest:
                stats.problem("events out of time order", event.file, event.line, "timestamp earlier than an "
                              "earlier line's: the merge by time is approximate for this file", limits)
            else:
                latest = t
        yield event


def iter_events(paths: Iterable[str], stats: ReaderStats,
                limits: ReaderLimits = ReaderLimits()) -> Iterator[AuditEvent]:
    """Every event of every path, merged in time order (each file is already in order: the API
    server appends); one file streams straight through."""
    paths = list(paths)
    if len(paths) == 1:
        yield from iter_file(paths[0], stats, limits)
        return
    yield from heapq.merge(*(_in_order(iter_file(p, stats, limits), stats, limits) for p in paths), key=_time_key)
