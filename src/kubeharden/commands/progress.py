"""A progress display for file scans on a terminal (as the live cluster read has, sources.cluster): the
loader calls ``file_done`` after each file (LoadContext.on_file); loaders never print themselves."""

from __future__ import annotations

import sys
from typing import Any


class FileProgress:
    """Files and bytes read so far, on stderr, only when stderr is a terminal; transient (erased when done)."""

    def __init__(self, wanted: bool | None = None) -> None:
        enabled = sys.stderr.isatty() if wanted is None else wanted
        self._bar: Any = None
        self._files = 0
        self._bytes = 0
        if enabled:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn

            self._bar = Progress(
                SpinnerColumn(), TextColumn("scanning"),
                TextColumn("{task.fields[files]} files  {task.fields[size]}  {task.description}"),
                console=Console(stderr=True), transient=True,
            )
            self._task = self._bar.add_task("", total=None, files=0, size="0 B")
            self._bar.start()

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def file_done(self, name: str, size: int) -> None:
        self._files += 1
        self._bytes += size
        if self._bar is not None:
            self._bar.update(self._task, files=self._files, size=_human(self._bytes), description=name[-60:])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
