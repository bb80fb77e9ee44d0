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
from collections.abc import Iterator
from pathlib import Path

from terminald.files import FileIdentity, identity, read_with_identity

__all__ = ["FileIdentity", "current_identity", "identity", "read_state"]


def current_identity(path: Path) -> FileIdentity | None:
    """The identity of ``path`` now, None when it does not exist or cannot be stat'ed."""
    try:
        return identity(os.stat(path))
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None


def read_state(path: Path, max_size: int) -> tuple[FileIdentity, bytes]:
    """The file's identity and bytes, from one open (terminald.files.read_with_identity).

    Raises ``FileNotFoundError``, or ``OSError`` with a readable ``strerror`` for a
    file that is not a regular file (a FIFO would block the reader for ever) or is
    larger than ``max_size`` bytes (refused before it is read into memory).
    """
    return read_with_identity(path, max_size)


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
