"""Reading, diffing and writing the files `kubeharden fix` edits.

A file is read once, with its status and hash; it is written only if it is unchanged on disk
since (same inode, size, modification time and content hash), atomically (temporary file in
the same directory, renamed over it), with its permission bits kept, after a backup that never
replaces an existing one.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from kubeharden import safeio

MAX_FILE_BYTES = 64 * 1024 * 1024
BACKUP_SUFFIX = ".kubeharden-backup"


class FileProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(slots=True)
class ReadFile:
    name: str  # as given / displayed
    real: str  # the file a symlink leads to: what is replaced
    data: bytes
    digest: str
    st: os.stat_result

    @property
    def json_mode(self) -> bool:
        return self.name.lower().endswith(".json")


def read_file(name: str) -> ReadFile:
    real = os.path.realpath(name)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileProblem("not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise FileProblem(f"file is larger than {MAX_FILE_BYTES} bytes")
        os.set_blocking(fd, True)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    return ReadFile(name, real, data, hashlib.sha256(data).hexdigest(), st)


def changed_on_disk(original: ReadFile) -> str | None:
    """Why the file is no longer what was read (None when it is the same)."""
    try:
        st = os.stat(original.real)
    except OSError as exc:
        return f"it can no longer be read: {exc.strerror or exc}"
    before = original.st
    if (st.st_ino, st.st_dev) != (before.st_ino, before.st_dev):
        return "it was replaced since it was read"
    if (st.st_size, st.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return "it was modified since it was read"
    try:
        current = read_file(original.real)
    except FileProblem as problem:
        return problem.message
    if current.digest != original.digest:
        return "it was modified since it was read"
    return None


def backup_name(path: str) -> str:
    """The first free backup name: FILE.kubeharden-backup, then .1, .2 ..."""
    candidate = path + BACKUP_SUFFIX
    n = 0
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{path}{BACKUP_SUFFIX}.{n}"
    return candidate


def write_backup(original: ReadFile) -> str:
    """A copy of the original bytes next to the file, created exclusively (never replacing one,
    never following a planted symlink). A copy that cannot be completed (full disk) is removed:
    FileProblem."""
    for _ in range(100):
        name = backup_name(original.real)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         stat.S_IMODE(original.st.st_mode))
        except FileExistsError:
            continue  # taken between the check and the create: try the next name
        except OSError as exc:
            raise FileProblem(f"not written: cannot create the backup {name}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(original.data)
                fp.flush()
                os.fsync(fp.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise FileProblem(f"not written: cannot write the backup {name}: {exc.strerror or exc}") from None
        return name
    raise FileProblem("not written: no free backup name")


def outside_of(name: str, roots: Iterable[str]) -> str | None:
    """Why a file reached through a symlink must not be written: its real path is outside every
    path the user gave (None when it is inside one of them, or is one of them). A link in a
    checked-out repository must not make `fix` edit the rest of the machine."""
    real = os.path.realpath(name)
    for root in roots:
        top = os.path.realpath(root)
        if real == top or os.path.commonpath([top, real]) == top:
            return None
    return f"it leads to {real}, outside the paths given (name that file itself to fix it)"


def write_file(original: ReadFile, data: bytes, backup: bool) -> str | None:
    """Replace the file with data; returns the backup's name. FileProblem when it changed on disk,
    has other hard links (a rename would split them) or cannot be written."""
    why = changed_on_disk(original)
    if why is not None:
        raise FileProblem(f"not written: {why}")
    if original.st.st_nlink > 1:
        raise FileProblem("not written: the file has other hard links, which an atomic replace would separate")
    if not original.st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(original.real,
                                                                                              os.W_OK):
        raise FileProblem("not written: the file is read-only (make it writable to fix it)")
    # The scan remembered every file it read so that no report lands on an input; replacing
    # inputs is what `fix` is for, and it writes no report.
    safeio.forget_inputs()
    saved = write_backup(original) if backup else None
    mode = stat.S_IMODE(original.st.st_mode)
    try:
        with safeio.atomic_output(original.real, mode=mode) as fp:
            fp.write(data)
        os.chmod(original.real, mode)  # atomic_output applies the umask; the file keeps its own bits
    except OSError as exc:
        if saved is not None:
            with contextlib.suppress(OSError):
                os.unlink(saved)  # the original is intact: its copy would only confuse
        raise FileProblem(f"cannot write: {exc.strerror or exc}") from None
    return saved


@dataclass(slots=True)
class Hunk:
    header: str
    lines: list[str]
    new_start: int  # 1-based, in the new text
    new_end: int


def hunks(old: str, new: str) -> list[Hunk]:
    """Unified-diff hunks (3 lines of context), lines with their line ends."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    out = []
    for group in difflib.SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        lines = []
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                lines += [" " + line for line in a[a1:a2]]
                continue
            lines += ["-" + line for line in a[a1:a2]]
            lines += ["+" + line for line in b[b1:b2]]
        header = f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@"
        out.append(Hunk(header, lines, j1 + 1, max(j1 + 1, j2)))
    return out


def _range(start: int, end: int) -> str:
    length = end - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def ensure_line_end(line: str) -> str:
    return line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
