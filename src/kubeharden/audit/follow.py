"""``kubeharden audit --follow FILE``: tail a growing audit log and survive its rotation.

The API server's log backend rotates by renaming (audit.log -> audit-<time>.log, a new audit.log
is created); logrotate's copytruncate copies and truncates in place. Both are seen at end of
data: a new inode under the name means a rename (the old file is read to its end first), a size
below the read position means a truncation (read again from the start). A partial last line is
kept until its newline arrives. Loops are bounded by ``stop()`` and ``idle_timeout``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import IO

from kubeharden.audit.event import AuditEvent
from kubeharden.audit.reader import ReaderLimits, ReaderStats, parse_line
from kubeharden.model import InputError
from kubeharden.safeio import open_regular


def _open(path: str) -> tuple[IO[bytes], int] | None:
    try:
        fh = open_regular(path)
    except OSError:
        return None
    return fh, os.fstat(fh.fileno()).st_ino


def follow(path: str, stats: ReaderStats, limits: ReaderLimits | None = None, *, poll: float = 0.25,
           stop: Callable[[], bool] = lambda: False, idle_timeout: float | None = None,
           on_idle: Callable[[], None] | None = None) -> Iterator[AuditEvent]:
    limits = limits or ReaderLimits()
    opened = _open(path)
    waited = 0.0
    while opened is None:
        if stop() or (idle_timeout is not None and waited >= idle_timeout):
            stats.unreadable.append(InputError(path, "cannot read: the file does not exist"))
            return
        time.sleep(poll)
        waited += poll
    fh, inode = opened
    stats.files += 1
    lineno = 0
    partial = b""
    idle_since = time.monotonic()
    try:
        while not stop():
            line = fh.readline(limits.max_line_bytes + 1)
            if line:
                idle_since = time.monotonic()
                stats.bytes += len(line)
                if not line.endswith(b"\n"):
                    partial += line
                    if len(partial) > limits.max_line_bytes:
                        lineno += 1
                        stats.problem("oversized lines", path, lineno, "line longer than "
                                      f"{limits.max_line_bytes} bytes: skipped", limits)
                        partial = b""
                    continue
                lineno += 1
                stats.lines += 1
                yield from parse_line(partial + line, path, lineno, stats, limits)
                partial = b""
                continue
            # end of the data written so far: rotated, truncated, or just quiet?
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            position = fh.tell()
            if st is not None and st.st_ino != inode:
                reopened = _open(path)
                if reopened is not None:
                    if partial:  # the old file ended without a newline
                        stats.problem("truncated lines", path, lineno + 1, "last line of a rotated file had no "
                                      "newline: skipped", limits)
                        partial = b""
                    fh.close()
                    fh, inode = reopened
                    stats.files += 1
                    lineno = 0
                    continue
            elif st is not None and st.st_size < position:
                fh.seek(0)  # copytruncate: the file starts again
                partial = b""
                lineno = 0
                continue
            if on_idle is not None:
                on_idle()
            if idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                return
            time.sleep(poll)
    finally:
        fh.close()
