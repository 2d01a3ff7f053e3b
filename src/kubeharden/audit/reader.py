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


def _open(path: str) -> tuple[IO[bytes], str]:
    if path == "-":
        raw: Any = sys.stdin.buffer
        name = STDIN
    else:
        raw = open_regular(path)
        name = path
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb"), name  # type: ignore[return-value]
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


def _skip_rest_of_line(fh: IO[bytes]) -> int:
    skipped = 0
    while True:
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
        line = readline(limit + 1)
        if not line:
            return
        lineno += 1
        stats.lines += 1
        stats.bytes += len(line)
        if len(line) > limit and not line.endswith(b"\n"):
            stats.bytes += _skip_rest_of_line(fh)
            stats.problem("oversized lines", name, lineno, f"line longer than {limit} bytes: skipped", limits)
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
        fh, name = _open(path)
    except OSError as exc:
        stats.unreadable.append(InputError(path, f"cannot read: {exc.strerror or exc}"))
        return
    stats.files += 1
    try:
        yield from iter_stream(fh, name, stats, limits)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        # a cut gzip member or a read error: what was read stands, the rest is reported
        stats.unreadable.append(InputError(name, f"read stopped: {exc}"))
    finally:
        if fh is not sys.stdin.buffer:
            fh.close()


def _time_key(event: AuditEvent) -> float:
    t = event.time
    return t if t is not None else 0.0


def iter_events(paths: Iterable[str], stats: ReaderStats,
                limits: ReaderLimits = ReaderLimits()) -> Iterator[AuditEvent]:
    """Every event of every path, merged in time order (each file is already in order: the API
    server appends); one file streams straight through."""
    paths = list(paths)
    if len(paths) == 1:
        yield from iter_file(paths[0], stats, limits)
        return
    yield from heapq.merge(*(iter_file(p, stats, limits) for p in paths), key=_time_key)
