"""Reading a state file so that what was read is exactly what was seen.

A writer in another process (``terminald revocation apply``) replaces state files by
rename. A reader that wants to notice the next replacement keeps the file's identity
(device, inode, size, modification time in ns) as of the bytes it read, taken with
``fstat`` on the same open file; a later ``stat`` that differs means "replaced".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

FileIdentity = tuple[int, int, int, int]


def identity(info: os.stat_result) -> FileIdentity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def current_identity(path: Path) -> FileIdentity | None:
    """The identity of ``path`` now, None when it does not exist or cannot be stat'ed."""
    try:
        return identity(os.stat(path))
    except OSError:
        return None


def read_state(path: Path, max_size: int) -> tuple[FileIdentity, bytes]:
    """The file's identity and bytes, from one open.

    Raises ``FileNotFoundError``, or ``OSError`` with a readable ``strerror`` for a
    file that is not a regular file (a FIFO would block the reader for ever) or is
    larger than ``max_size`` bytes (refused before it is read into memory).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        if info.st_size > max_size:
            raise OSError(0, f"{info.st_size} bytes, more than the {max_size} allowed")
        return identity(info), handle.read(max_size + 1)


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory`` itself, across processes.

    Writers of a state file (``terminald revocation apply``, the daemon's link) hold it
    from reading what is installed to renaming the new file, so two installs cannot both
    decide on the same old state and the later rename silently undo the earlier one.
    Readers need no lock: a rename is atomic. Locking the directory needs no lock file
    (which would need an owner and could be left behind).
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
