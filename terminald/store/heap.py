"""Give freed heap back to the operating system after a large, one-off load.

Decoding a multi-megabyte revocation set allocates and frees many temporary arrays; glibc
keeps the freed pages in its heap, so the daemon's resident size would stay several times
the size of the bitmaps it actually keeps (measured: scripts/bench-revocation).
``malloc_trim(0)`` releases every free page. On a C library without it this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

_trim: Callable[[int], int] | None = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
    _trim = None


def release_free_heap() -> None:
    if _trim is not None:
        _trim(0)
