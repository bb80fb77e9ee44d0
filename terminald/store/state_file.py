"""Reading a state file so that what was read is exactly what was seen.

A writer in another process (``terminald revocation apply``) replaces state files by
rename. A reader that wants to notice the next replacement keeps the file's identity
(device, inode, size, modification time in ns) as of the bytes it read, taken with
``fstat`` on the same open file; a later ``stat`` that differs means "replaced".
"""

from __future__ import annotations

import os
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
