"""Bulk transfer over the link (docs/protocol.md §5): the names the rest of terminald uses.

- :mod:`terminald.link.bulk_messages` — the ``bulk.*`` messages and their wire shapes;
- :mod:`terminald.link.bulk_sender` — the host's state machine for one terminal;
- :mod:`terminald.link.bulk_plan` — the host's broadcast to many terminals on one line;
- :mod:`terminald.link.bulk_receiver` — the terminal's state machine;
- :mod:`terminald.link.bulk_ranges` — bitmaps and the run form of chunk sets;
- :mod:`terminald.link.broadcast` — sealing chunks for the BROADCAST channel.
"""

from __future__ import annotations

from terminald.link.bulk_errors import BulkError, ChunkStoreError, ChunkStoreFull
from terminald.link.bulk_messages import (
    KINDS,
    BulkChunk,
    BulkDone,
    BulkMessage,
    BulkMissing,
    BulkOffer,
    BulkResult,
    BulkState,
    BulkStatus,
    bulk_from_wire,
    chunk_tag,
)
from terminald.link.bulk_plan import BROADCAST_ADDRESS, BroadcastPlan, PlanProgress
from terminald.link.bulk_ranges import Bitmap
from terminald.link.bulk_receiver import (
    BulkReceiver,
    ChunkFile,
    ChunkStore,
    Installer,
    InstallVerdict,
)
from terminald.link.bulk_sender import DEFAULT_CHUNK_SIZE, BulkSender, Outcome, Progress

__all__ = [
    "BROADCAST_ADDRESS",
    "DEFAULT_CHUNK_SIZE",
    "KINDS",
    "Bitmap",
    "BroadcastPlan",
    "BulkChunk",
    "BulkDone",
    "BulkError",
    "BulkMessage",
    "BulkMissing",
    "BulkOffer",
    "BulkReceiver",
    "BulkResult",
    "BulkSender",
    "BulkState",
    "BulkStatus",
    "ChunkFile",
    "ChunkStore",
    "ChunkStoreError",
    "ChunkStoreFull",
    "InstallVerdict",
    "Installer",
    "Outcome",
    "PlanProgress",
    "Progress",
    "bulk_from_wire",
    "chunk_tag",
]
