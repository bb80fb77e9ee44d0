"""Replace a file so that after a crash or power loss it holds the old or the new bytes.

The sequence is the classic one: write a temporary file in the same directory, fsync it,
rename it over the target (atomic within one file system), then fsync the directory so
the rename itself is durable. A crash before the rename leaves the old file and a stray
temporary, which :func:`remove_stale_temporaries` clears at the next start.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

_SUFFIX = ".tmp"


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data``; ``owner`` (uid, gid) is given to the new file before
    the rename, so the file never appears under the name with the wrong owner."""
    directory = path.parent
    fd, temporary = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if owner is not None:
                os.fchown(handle.fileno(), *owner)
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries a crashed writer left next to ``path``; returns what was removed."""
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f"{_temporary_prefix(path)}*{_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed
