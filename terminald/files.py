"""Reading a file named by configuration or a command line: type and size first.

Every file the terminal reads because a person named it (trust anchors, back-office
keys, the enrolled cards, the revocation state, bundles and CRLs) goes through
:func:`read_limited`. It opens without blocking, then checks with ``fstat`` on that
same open file that it is a regular file no larger than the caller's limit, and only
then reads. So a FIFO or a device is refused at once (a FIFO would otherwise block the
reader until someone writes to it), and a 3 GiB file is refused without reading it.

Problems are ``OSError`` with a one-line ``strerror`` (callers already print
``exc.strerror``); ``FileNotFoundError`` stays itself, for callers that treat a
missing file as "nothing yet".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

FileIdentity = tuple[int, int, int, int]

KIB: Final = 1024
MIB: Final = 1024 * KIB
# Limits by kind of file; each far above any genuine file, far below what hurts a Pi.
MAX_CONFIG_SIZE: Final = 1 * MIB  # terminald.toml
MAX_CERT_FILE_SIZE: Final = 1 * MIB  # a certificate or a PEM bundle of roots
MAX_KEY_FILE_SIZE: Final = 1 * MIB  # back-office public keys (PEM)
MAX_ENROLLED_SIZE: Final = 64 * MIB  # ~100 bytes an entry: far beyond any site
MAX_CRL_SIZE: Final = 256 * MIB  # J-LIS CRLs are tens of MB at most

_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnsuitableFileError(OSError):
    """The path exists but is not something to read: wrong type, too large, bad name."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(errno.EINVAL, problem, str(path))


def identity(info: os.stat_result) -> FileIdentity:
    """(device, inode, size, mtime in ns): what tells one version of a file from the next."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_with_identity(path: Path, max_size: int) -> tuple[FileIdentity, bytes]:
    """The file's identity and bytes, from one open; see the module docstring."""
    if "\0" in str(path):
        raise UnsuitableFileError(path, "the path contains a NUL byte")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except IsADirectoryError:  # never reached with O_RDONLY on Linux, but say it plainly
        raise UnsuitableFileError(path, "a directory, not a file") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsuitableFileError(path, f"{kind_of(info.st_mode)}, not a regular file")
        if info.st_size > max_size:
            raise UnsuitableFileError(
                path, f"{info.st_size} bytes, more than the {max_size} allowed"
            )
        data = handle.read(max_size + 1)
    if len(data) > max_size:  # grew between fstat and read
        raise UnsuitableFileError(path, f"more than the {max_size} bytes allowed")
    return identity(info), data


def read_limited(path: Path, max_size: int) -> bytes:
    """The bytes of a regular file of at most ``max_size`` bytes; OSError otherwise."""
    return read_with_identity(path, max_size)[1]


def describe_error(exc: OSError) -> str:
    """One line for an OSError from :func:`read_limited`: the reason, never a traceback."""
    return exc.strerror or str(exc)
