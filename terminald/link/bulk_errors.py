"""Errors of the bulk transfer layer (docs/protocol.md §5).

:class:`BulkError` is bad input: a malformed message, a chunk that does not fit its
transfer, a broadcast frame that does not open. The caller counts it and drops the input;
nothing has changed. :class:`ChunkStoreError` is the terminal's spool failing (a full disk,
an I/O error); a store outside the pure core raises it (or :class:`ChunkStoreFull`) so the
receiver can refuse or stop a transfer with a reason instead of a traceback.
"""

from __future__ import annotations


class BulkError(ValueError):
    """Input the bulk layer refuses; the message says what was wrong."""


class ChunkStoreError(Exception):
    """The place chunks are kept failed; the message says what and where."""


class ChunkStoreFull(ChunkStoreError):
    """No room: the disk (ENOSPC) or the spool's configured limits."""
