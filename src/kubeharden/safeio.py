"""Reading and writing files defensively.

Reads: only regular files are read (a FIFO, socket or device would hang or never end), never
more than a limit, and every file read is remembered by inode so that no report, snapshot or
bundle can later be written over an input, whatever name (symlink, hardlink) it is reached by.

Writes: atomic. The data goes to a temporary file created with O_EXCL in the target's own
directory, which is renamed over the target only once it is complete, so a failed write (full
disk, /dev/full, an exception in a reporter) never leaves a truncated file under the real name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, BinaryIO, cast

StrPath = str | os.PathLike[str]

# (st_dev, st_ino) of every file this process read as input.
_inputs_read: set[tuple[int, int]] = set()


class UnsafePathError(OSError):
    """A path that must not be read or written, with a message fit for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def remember_input(st: os.stat_result) -> None:
    _inputs_read.add((st.st_dev, st.st_ino))


def forget_inputs() -> None:
    """Tests and long-running servers start from a clean slate."""
    _inputs_read.clear()


def read_limited(fp: IO[bytes], max_bytes: int, what: str = "input") -> bytes:
    """Read at most max_bytes from a stream; more is an error, not a silent cut."""
    data = fp.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafePathError(f"{what} is larger than {max_bytes} bytes (limit: max_file_bytes)")
    return data


def open_regular(path: StrPath, follow_symlinks: bool = True) -> IO[bytes]:
    """Open a regular file for reading (symlinks followed unless follow_symlinks is false: a
    path already resolved, e.g. inside a node root, must not be redirected by a link swapped
    in meanwhile). O_NONBLOCK keeps the open itself from hanging on a FIFO; the file type is
    then checked on the opened descriptor, so there is no window between the check and the open."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{kind_of(st.st_mode)}, not a regular file: not read")
        os.set_blocking(fd, True)
        remember_input(st)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: StrPath, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most max_bytes (UnsafePathError / OSError otherwise)."""
    with open_regular(path, follow_symlinks) as fp:
        size = os.fstat(fp.fileno()).st_size
        if size > max_bytes:
            raise UnsafePathError(f"file is larger than {max_bytes} bytes (limit: max_file_bytes)")
        return read_limited(fp, max_bytes, "file")


def is_input(path: StrPath) -> bool:
    """True when path (followed through symlinks) is a file this process read as input."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) in _inputs_read


def check_output_path(path: StrPath, force: bool = False, protected: Iterable[StrPath] = (),
                      read_suffixes: tuple[str, ...] = ()) -> None:
    """Refuse an output path before any work is done: a directory, a missing parent directory,
    an input file (by inode, so symlinks and hardlinks count), an existing file inside an input
    directory that the run would read (its name ends with one of read_suffixes), or any other
    existing file unless force. A new file in an input directory is fine (`scan . -o out.sarif`)."""
    text = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(text)) or "."
    if os.path.isdir(text):
        raise UnsafePathError(f"{text} is a directory; give a file name")
    if not os.path.isdir(parent):
        raise UnsafePathError(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UnsafePathError(f"directory {parent} is not writable")
    exists = os.path.lexists(text)
    real = os.path.realpath(text)
    for item in protected:
        item_real = os.path.realpath(item)
        if real == item_real or _same_file(text, item):
            raise UnsafePathError(f"refusing to write {text}: it is an input")
        if (exists and os.path.isdir(item_real) and os.path.commonpath([item_real, real]) == item_real
                and real.lower().endswith(read_suffixes)):
            raise UnsafePathError(f"refusing to write {text}: it is an input inside {os.fspath(item)}")
    if is_input(text):
        raise UnsafePathError(f"refusing to write {text}: it is an input")
    if exists and not force:
        raise UnsafePathError(f"{text} exists; use --force to replace it")


def _same_file(a: StrPath, b: StrPath) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(path: StrPath, mode: int = 0o644, force: bool = True) -> Iterator[BinaryIO]:
    """Write a file atomically: yields a binary file; on success it replaces path, on any
    error the temporary file is removed and path is untouched.

    A special file (/dev/null, /dev/stdout, a FIFO) cannot be replaced by a rename: it is
    written directly, which is what the user asked for. An input file is never replaced.
    """
    text = os.fspath(path)
    try:
        st = os.stat(text)
    except FileNotFoundError:
        st = None
    if st is not None and (st.st_dev, st.st_ino) in _inputs_read:
        raise UnsafePathError(f"refusing to write {text}: it is an input")
    if st is not None and not force:
        raise UnsafePathError(f"{text} exists; use --force to replace it")
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        with open(text, "wb") as special:
            yield cast(BinaryIO, special)
            special.flush()
        return
    directory = os.path.dirname(os.path.abspath(text))
    # mkstemp uses O_CREAT | O_EXCL with a random name: never follows a planted symlink.
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(text)}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fp:
            yield cast(BinaryIO, fp)
            fp.flush()
            os.fsync(fp.fileno())
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, text)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: StrPath, write: Callable[[BinaryIO], Any], mode: int = 0o644, force: bool = True) -> None:
    with atomic_output(path, mode=mode, force=force) as fp:
        write(fp)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
