"""The terminal's side of a bulk transfer (docs/protocol.md §5): a pure state machine.

Messages in, messages out; the chunks go straight to a :class:`ChunkStore` (the spool of
``terminald.store.spool`` in the daemon, a dict in tests), so memory stays bounded by one
chunk until the end, when the verified whole is read back once for the installer. Only one
transfer is active; an offer of another one parks the current one in the store (its
bitmap stays there for a later resume).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from terminald.link import broadcast
from terminald.link.bulk_errors import BulkError, ChunkStoreError, ChunkStoreFull
from terminald.link.bulk_messages import (
    DONE_OK,
    DONE_SHA_MISMATCH,
    KINDS,
    REFUSE_BUSY,
    REFUSE_NO_SPACE,
    REFUSE_STORE,
    REFUSE_TOO_BIG,
    REFUSE_UNKNOWN_KIND,
    REFUSE_UNKNOWN_TRANSFER,
    BulkChunk,
    BulkDone,
    BulkMessage,
    BulkMissing,
    BulkOffer,
    BulkResult,
    BulkState,
    BulkStatus,
    chunk_tag,
)
from terminald.link.bulk_ranges import Bitmap, bounded_runs


class ChunkFile(Protocol):
    """One partial transfer in a store. ``held`` is every chunk written (durable or not yet);
    a chunk is durable after ``sync`` (or a ``write``/``tick`` that batched one). Methods
    raise :class:`ChunkStoreError` (:class:`ChunkStoreFull` for no room)."""

    @property
    def held(self) -> Bitmap: ...
    def write(self, index: int, data: bytes, now: float) -> None: ...
    def read(self, index: int) -> bytes: ...
    def tick(self, now: float) -> None: ...
    def sync(self) -> None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class ChunkStore(Protocol):
    def open(self, sha256: bytes, size: int, chunk_size: int, now: float) -> ChunkFile:
        """The partial transfer of that content, created empty or resumed with the chunks
        durably held. Raises ChunkStoreError / ChunkStoreFull."""
        ...


@dataclass(frozen=True)
class InstallVerdict:
    installed: bool
    reason: str = ""  # why it was refused, ≤ 200 printable characters


# (kind, sha256, the verified bytes) → a verdict now, or None: the caller will call
# BulkReceiver.finish_install later (installing goes through the daemon's event loop).
Installer = Callable[[str, bytes, bytes], InstallVerdict | None]

_RECEIVING, _INSTALLING, _FINISHED = "receiving", "installing", "finished"


class BulkReceiver:
    """``on_message`` / ``on_broadcast`` return the messages to send back to the host, in
    order. Bad input raises BulkError and changes nothing."""

    def __init__(
        self,
        store: ChunkStore,
        installer: Installer,
        *,
        max_size: int,
        kinds: frozenset[str] = KINDS,
    ) -> None:
        self._store = store
        self._installer = installer
        self._max_size = max_size
        self._kinds = kinds
        self._offer: BulkOffer | None = None
        self._file: ChunkFile | None = None
        self._held: Bitmap | None = None
        self._phase = _RECEIVING
        self._done: BulkDone | None = None
        self._result: BulkResult | None = None

    @property
    def active(self) -> BulkOffer | None:
        return self._offer

    @property
    def held(self) -> Bitmap | None:
        return self._held

    def on_message(
        self, message: BulkOffer | BulkStatus | BulkChunk, now: float
    ) -> list[BulkMessage]:
        if isinstance(message, BulkOffer):
            return self._on_offer(message, now)
        if isinstance(message, BulkStatus):
            return self._on_status(message)
        if isinstance(message, BulkChunk):
            offer = self._offer
            if offer is None or message.tag != chunk_tag(offer.transfer_id):
                raise BulkError(f"bulk.chunk: tag {message.tag:#010x} is not the active transfer")
            return self._on_chunk(message.index, message.data, now)
        raise BulkError(f"bulk: a terminal does not take {type(message).__name__}")

    def on_broadcast(self, header: bytes, payload: bytes, now: float) -> list[BulkMessage]:
        """A BROADCAST-channel frame (header = its 3 bytes, payload as sealed)."""
        offer = self._offer
        if offer is None or offer.group_key is None:
            raise BulkError("broadcast: no broadcast transfer is active")
        index, data = broadcast.open_chunk(offer.group_key, offer.transfer_id, header, payload)
        return self._on_chunk(index, data, now)

    def tick(self, now: float) -> None:
        """Let the store make batched chunks durable (call every second or so)."""
        if self._file is not None and self._phase == _RECEIVING:
            with contextlib.suppress(ChunkStoreError):  # the next write or status reports it
                self._file.tick(now)

    def finish_install(self, transfer_id: bytes, verdict: InstallVerdict) -> BulkResult:
        """The verdict of an installer that returned None. Raises BulkError when no install
        of that transfer is pending."""
        offer = self._offer
        if offer is None or offer.transfer_id != transfer_id or self._phase != _INSTALLING:
            raise BulkError("bulk: no install pending for that transfer")
        return self._finish(offer, verdict)

    def close(self) -> None:
        """Park the active transfer (the store keeps it for a resume)."""
        if self._file is not None:
            self._file.close()
        self._reset()

    # -- offers -------------------------------------------------------------------------

    def _on_offer(self, offer: BulkOffer, now: float) -> list[BulkMessage]:
        current = self._offer
        if current is not None and current.transfer_id == offer.transfer_id:
            if current != offer:
                raise BulkError("bulk.offer: same transfer id, different transfer")
            return self._replay()
        if self._phase == _INSTALLING:
            return [_refuse(offer, REFUSE_BUSY)]
        if offer.kind not in self._kinds:
            return [_refuse(offer, REFUSE_UNKNOWN_KIND)]
        if offer.size > self._max_size:
            return [_refuse(offer, REFUSE_TOO_BIG)]
        if current is not None and _content(current) == _content(offer):
            # The same content under a new id (the host restarted): carry on, or tell again
            # how it ended, under the new id.
            self._offer = offer
            if self._done is not None:
                self._done = BulkDone(offer.transfer_id, self._done.outcome)
            if self._result is not None:
                self._result = BulkResult(
                    offer.transfer_id, self._result.installed, self._result.reason
                )
            return self._replay()
        try:
            opened = self._store.open(offer.sha256, offer.size, offer.chunk_size, now)
        except ChunkStoreFull:
            return [_refuse(offer, REFUSE_NO_SPACE)]
        except ChunkStoreError:
            return [_refuse(offer, REFUSE_STORE)]
        if opened.held.count != offer.chunks:
            opened.close()
            raise BulkError("bulk.offer: the store's bitmap does not fit the offer")
        self.close()
        self._offer, self._file, self._held = offer, opened, opened.held.copy()
        replies: list[BulkMessage] = [self._state()]
        if self._held.complete:  # everything was already here (a restart before the install)
            replies += self._complete(offer, now)
        return replies

    def _state(self) -> BulkState:
        assert self._offer is not None and self._held is not None
        runs, more = bounded_runs(self._held.runs(held=True))
        return BulkState(self._offer.transfer_id, True, tuple(runs), more)

    def _replay(self) -> list[BulkMessage]:
        """The answers so far, again (the host re-offered after a line cut)."""
        replies: list[BulkMessage] = [self._state()]
        if self._done is not None:
            replies.append(self._done)
        if self._result is not None:
            replies.append(self._result)
        return replies

    def _on_status(self, status: BulkStatus) -> list[BulkMessage]:
        offer = self._offer
        if offer is None or offer.transfer_id != status.transfer_id:
            return [BulkState(status.transfer_id, False, reason=REFUSE_UNKNOWN_TRANSFER)]
        if self._phase != _RECEIVING:
            return self._replay()[1:]
        assert self._held is not None and self._file is not None
        try:
            self._file.sync()  # the host asks after a burst: a good moment to make it durable
        except ChunkStoreError as exc:
            return [self._abandon(offer, exc)]
        runs, more = bounded_runs(self._held.runs(held=False))
        return [BulkMissing(offer.transfer_id, tuple(runs), more, self._held.held)]

    # -- chunks -------------------------------------------------------------------------

    def _on_chunk(self, index: int, data: bytes, now: float) -> list[BulkMessage]:
        offer = self._offer
        assert offer is not None
        if self._phase != _RECEIVING:
            return []  # a late copy of a chunk of a transfer already complete
        assert self._held is not None and self._file is not None
        if not 0 <= index < offer.chunks:
            raise BulkError(f"bulk.chunk: index {index} outside 0..{offer.chunks - 1}")
        expected = min(offer.chunk_size, offer.size - index * offer.chunk_size)
        if len(data) != expected:
            raise BulkError(f"bulk.chunk: chunk {index} has {len(data)} bytes, not {expected}")
        if index in self._held:
            return []
        try:
            self._file.write(index, data, now)
        except ChunkStoreError as exc:
            return [self._abandon(offer, exc)]
        self._held.add(index)
        return self._complete(offer, now) if self._held.complete else []

    def _complete(self, offer: BulkOffer, now: float) -> list[BulkMessage]:
        assert self._file is not None
        try:
            self._file.sync()
            # One pass: the installer needs the bytes anyway (memory ≤ the offer's size,
            # which the terminal's max_size bounds).
            parts = [self._file.read(index) for index in range(offer.chunks)]
            if hashlib.sha256(b"".join(parts)).digest() != offer.sha256:
                # Wrong data somewhere (a lie of the host, or a claim the disk did not keep):
                # start over from nothing under the same offer; the host re-sends it all.
                self._file.discard()
                self._file = self._store.open(offer.sha256, offer.size, offer.chunk_size, now)
                self._held = self._file.held.copy()
                return [BulkDone(offer.transfer_id, DONE_SHA_MISMATCH)]
            whole = b"".join(parts)
            del parts
        except ChunkStoreError as exc:
            return [self._abandon(offer, exc)]
        self._done = BulkDone(offer.transfer_id, DONE_OK)
        self._phase = _INSTALLING
        verdict = self._installer(offer.kind, offer.sha256, whole)
        if verdict is None:
            return [self._done]
        return [self._done, self._finish(offer, verdict)]

    def _finish(self, offer: BulkOffer, verdict: InstallVerdict) -> BulkResult:
        reason = "".join(c for c in verdict.reason if c.isprintable())[:200]
        self._result = BulkResult(offer.transfer_id, verdict.installed, reason)
        self._phase = _FINISHED
        if self._file is not None:
            # Installed or refused: the bytes are not needed again (if the discard fails,
            # the spool's own limits clean it later).
            with contextlib.suppress(ChunkStoreError):
                self._file.discard()
        return self._result

    def _abandon(self, offer: BulkOffer, exc: ChunkStoreError) -> BulkDone:
        outcome = REFUSE_NO_SPACE if isinstance(exc, ChunkStoreFull) else REFUSE_STORE
        if self._file is not None:
            with contextlib.suppress(ChunkStoreError):
                self._file.discard()
        self._reset()
        return BulkDone(offer.transfer_id, outcome)

    def _reset(self) -> None:
        self._offer, self._file, self._held = None, None, None
        self._phase, self._done, self._result = _RECEIVING, None, None


def _content(offer: BulkOffer) -> tuple[bytes, int, int, str]:
    return (offer.sha256, offer.size, offer.chunk_size, offer.kind)


def _refuse(offer: BulkOffer, reason: str) -> BulkState:
    return BulkState(offer.transfer_id, False, reason=reason)


__all__: Sequence[str] = ("BulkReceiver", "ChunkFile", "ChunkStore", "InstallVerdict", "Installer")
