"""Noticing that a state file was replaced, and locking its writers against each other.

A writer in another process (``terminald revocation apply``) replaces state files by
rename. A reader that wants to notice the next replacement keeps the file's identity
(device, inode, size, modification time in ns) as of the bytes it read, taken with
``fstat`` on the same open file (``terminald.files.read_with_identity``); a later
``stat`` that differs means "replaced".
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from terminald.files import FileIdentity, identity

__all__ = ["FileIdentity", "current_identity", "directory_lock", "identity"]


def current_identity(path: Path) -> FileIdentity | None:
    """The identity of ``path`` now, None when it does not exist or cannot be stat'ed."""
    try:
        return identity(os.stat(path))
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None


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
