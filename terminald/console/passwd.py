"""The console password: an argon2id hash in a root-only file (``terminald console passwd``).

argon2-cffi's ``PasswordHasher`` with its defaults (RFC 9106's second recommended option:
argon2id, 64 MiB, 3 passes, 4 lanes; about 0.3 s to verify on the development VM, see
docs/console.md), so a stolen file costs an attacker that much per guess. The hash is one
line of PHC text (``$argon2id$v=19$m=...``); nothing else is in the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH: Final = 10  # characters; a console is reachable by anyone at the cabinet
MAX_LENGTH: Final = 256  # the line editor's bound
MAX_FILE: Final = 1024  # bytes; a PHC argon2 line is about 100


class PasswdError(Exception):
    """The password file is missing, unreadable or not a hash; the message says which."""


def check_new(password: str) -> str | None:
    """Why ``password`` may not be set, or None."""
    if len(password) < MIN_LENGTH:
        return f"too short: at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"too long: at most {MAX_LENGTH} characters"
    if not all(0x20 <= ord(c) < 0x7F for c in password):
        return "only printable ASCII can be typed on a serial console"
    return None


def hash_password(password: str) -> str:
    return PasswordHasher().hash(password)


def read_hash(path: Path) -> str:
    """The hash in ``path``. A file others may read or write is refused (PasswdError)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise PasswdError(f"{path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # a directory, a FIFO, a device: never read it
        os.close(fd)
        raise PasswdError(f"{path}: not a regular file")
    with os.fdopen(fd, "rb") as handle:
        # Group read is how the daemon's group reads a root-owned file (console passwd).
        if info.st_mode & 0o037:
            raise PasswdError(f"{path}: writable by its group or open to others (chmod 640)")
        try:
            data = handle.read(MAX_FILE + 1)
        except OSError as exc:
            raise PasswdError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE:
        raise PasswdError(f"{path}: larger than {MAX_FILE} bytes, not a password hash")
    text = data.decode("ascii", "replace").strip()
    if not text.startswith("$argon2"):
        raise PasswdError(f"{path}: not an argon2 hash (write it with terminald console passwd)")
    return text


def verify(hashed: str, password: str) -> bool:
    """Whether ``password`` matches; a malformed hash is PasswdError. Takes ~50-100 ms:
    never call it on the daemon's event loop."""
    try:
        return PasswordHasher().verify(hashed, password)
    except VerifyMismatchError:
        return False
    except (InvalidHashError, VerificationError) as exc:
        raise PasswdError(f"the password hash is unusable: {type(exc).__name__}") from None
