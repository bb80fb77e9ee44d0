"""The host's side of one bulk transfer to one terminal (docs/protocol.md §5): a pure state machine.

Drive it with ``next_message()`` (what to send now: the offer, a chunk, a status request,
or None while waiting for the terminal) and ``on_reply(message)``. After a line cut or a
new session, ``start()`` offers again; the terminal answers with what it holds and only
the rest is sent. The whole content is in memory (the host is the back office).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import (
    DONE_SHA_MISMATCH,
    ID_SIZE,
    MAX_CHUNK_SIZE,
    MAX_SIZE,
    MIN_CHUNK_SIZE,
    REFUSE_UNKNOWN_TRANSFER,
    BulkChunk,
    BulkDone,
    BulkMissing,
    BulkOffer,
    BulkResult,
    BulkState,
    BulkStatus,
    chunk_tag,
)
from terminald.link.bulk_ranges import MAX_CHUNKS, Bitmap, Range

# The largest multiple of 64 whose chunk message fills one frame (docs/protocol.md §5):
# frame payload 2048 ≥ session record 24 + transport data header 5 + room for two
# piggy-backed ACK blocks 12 + chunk array 12 + data; and for broadcast 36 + data ≤ 2048.
DEFAULT_CHUNK_SIZE = 1984

_OFFER, _AWAIT_STATE, _SENDING, _AWAIT_MISSING, _AWAIT_RESULT, _END = range(6)


@dataclass(frozen=True)
class Progress:
    acknowledged: int  # bytes the terminal has reported holding
    total: int  # bytes in the transfer


@dataclass(frozen=True)
class Outcome:
    installed: bool  # False: refused by the terminal or its installer, or failed
    reason: str  # "" when installed


class BulkSender:
    """One transfer to one terminal. ``unicast=False`` (a broadcast plan drives it) keeps
    it from sending chunks itself: it then sends only the offer and, on
    :meth:`request_status`, status requests; the plan broadcasts the chunks."""

    def __init__(
        self,
        data: bytes,
        kind: str,
        transfer_id: bytes,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        group_key: bytes | None = None,
        max_failures: int = 3,
        max_idle_rounds: int = 8,
        unicast: bool = True,
    ) -> None:
        if len(transfer_id) != ID_SIZE or (group_key is not None and len(group_key) != 32):
            raise BulkError("bulk: transfer id must be 8 bytes and a group key 32")
        if not 0 < len(kind) <= 32:
            raise BulkError("bulk: kind must be a short name")
        if not 0 < len(data) <= MAX_SIZE:
            raise BulkError(f"bulk: content of {len(data)} bytes outside 1..{MAX_SIZE}")
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise BulkError(f"bulk: chunk size {chunk_size} out of bounds")
        if -(-len(data) // chunk_size) > MAX_CHUNKS:
            raise BulkError("bulk: too many chunks; choose a larger chunk size")
        self._data = memoryview(data)
        self.offer = BulkOffer(
            transfer_id, kind, len(data), chunk_size, hashlib.sha256(data).digest(), group_key
        )
        self._tag = chunk_tag(transfer_id)
        self._max_failures = max_failures
        self._max_idle_rounds = max_idle_rounds
        self.unicast = unicast
        self._acked = Bitmap(self.offer.chunks)
        self._queue: deque[int] = deque()
        self._phase = _OFFER
        self._ask = False
        self._failures = 0
        self._idle_rounds = 0
        self.outcome: Outcome | None = None
        self.chunks_sent = 0  # every chunk this sender sent (repeats included)

    # -- what to send -------------------------------------------------------------------

    def start(self) -> None:
        """Offer again (a new session after a line cut, or the terminal forgot the transfer)."""
        if self.outcome is None:
            self._phase, self._queue, self._ask = _OFFER, deque(), False

    def request_status(self) -> None:
        """Drop what is pending (a broadcast round just covered it) and ask the terminal
        what it still lacks (a broadcast plan calls it after each round)."""
        if self._phase == _SENDING:
            self._queue, self._ask = deque(), True

    def next_message(self) -> BulkOffer | BulkChunk | BulkStatus | None:
        if self._phase == _OFFER:
            self._phase = _AWAIT_STATE
            return self.offer
        if self._phase != _SENDING:
            return None
        if self.unicast and self._queue:
            index = self._queue.popleft()
            self.chunks_sent += 1
            return self.chunk(index)
        if self.unicast or self._ask:
            self._phase, self._ask = _AWAIT_MISSING, False
            return BulkStatus(self.offer.transfer_id)
        return None

    def chunk(self, index: int) -> BulkChunk:
        size = self.offer.chunk_size
        return BulkChunk(self._tag, index, bytes(self._data[index * size : (index + 1) * size]))

    @property
    def pending(self) -> list[int]:
        """Chunks this terminal is known to lack, in order (what a plan would broadcast)."""
        return list(self._queue) if self._phase == _SENDING else []

    @property
    def waiting(self) -> bool:
        """True while the terminal owes the answer to an offer or a status request (not
        while its installer works: that may take long and holds nobody up)."""
        return self._phase in (_AWAIT_STATE, _AWAIT_MISSING)

    @property
    def receiving(self) -> bool:
        """True while the terminal still takes chunks of this transfer."""
        return self._phase == _SENDING

    @property
    def progress(self) -> Progress:
        if self._phase == _AWAIT_RESULT or (self.outcome is not None and self.outcome.installed):
            return Progress(self.offer.size, self.offer.size)
        size, last = self.offer.chunk_size, self.offer.chunks - 1
        acked = self._acked.held * size
        if last in self._acked:
            acked -= size - (self.offer.size - last * size)
        return Progress(acked, self.offer.size)

    # -- what came back -----------------------------------------------------------------

    def delivered(self, index: int) -> None:
        """The transport acknowledged the message carrying chunk ``index`` (the terminal's
        transport has it, and the receiver stores it as it arrives): progress moves between
        status rounds. Only progress: what to re-send is still the terminal's to say."""
        if self.outcome is None and 0 <= index < self.offer.chunks:
            self._acked.add(index)

    def fail(self, reason: str) -> None:
        """Give up (the terminal is gone for good); the outcome says why."""
        if self.outcome is None:
            self._end(False, reason)

    def on_reply(self, message: BulkState | BulkMissing | BulkDone | BulkResult) -> None:
        """Raises BulkError for another transfer's reply, or one that is not due now."""
        if message.transfer_id != self.offer.transfer_id:
            raise BulkError(f"bulk: reply for transfer {message.transfer_id.hex()}")
        if self.outcome is not None:
            return  # a late copy after the end
        if isinstance(message, BulkState):
            self._on_state(message)
        elif isinstance(message, BulkMissing):
            self._on_missing(message)
        elif isinstance(message, BulkDone):
            self._on_done(message)
        else:
            self._end(message.installed, "" if message.installed else message.reason)

    def _on_state(self, state: BulkState) -> None:
        if not state.accepted:
            if state.reason == REFUSE_UNKNOWN_TRANSFER and self._phase != _AWAIT_STATE:
                self._count_failure(state.reason, then=_OFFER)
            else:
                self._end(False, f"refused: {state.reason}")
            return
        if self._phase != _AWAIT_STATE:
            raise BulkError("bulk.state: no offer is waiting for one")
        self._acked.clear()
        self._mark(state.held, held=True)
        self._phase, self._queue = _SENDING, deque(self._acked.missing())

    def _on_missing(self, missing: BulkMissing) -> None:
        if self._phase != _AWAIT_MISSING:
            raise BulkError("bulk.missing: no status request is waiting for one")
        before = self._acked.held
        if not missing.more:  # a complete list: everything else is held
            self._acked = Bitmap.full(self.offer.chunks)
        self._mark(missing.missing, held=False)
        lacking = [i for start, length in missing.missing for i in range(start, start + length)]
        if self._acked.held > before or self._acked.held == 0:
            self._idle_rounds = 0
        else:
            self._idle_rounds += 1
            if self._idle_rounds > self._max_idle_rounds:
                self._end(False, f"no progress after {self._idle_rounds} status rounds")
                return
        self._phase, self._queue = _SENDING, deque(lacking)

    def _on_done(self, done: BulkDone) -> None:
        if done.ok:
            self._phase = _AWAIT_RESULT
        elif done.outcome == DONE_SHA_MISMATCH:
            # The terminal discarded what it had and keeps the offer: send everything again.
            self._acked.clear()
            self._count_failure(done.outcome, then=_SENDING)
            if self.outcome is None:
                self._queue = deque(range(self.offer.chunks))
        else:
            self._count_failure(done.outcome, then=_OFFER)

    def _count_failure(self, reason: str, then: int) -> None:
        self._failures += 1
        if self._failures >= self._max_failures:
            self._end(False, f"{reason} ({self._failures} times)")
        else:
            self._phase, self._queue = then, deque()

    def _mark(self, runs: tuple[Range, ...], held: bool) -> None:
        count = self.offer.chunks
        for start, length in runs:
            for index in range(start, min(start + length, count)):
                if held:
                    self._acked.add(index)
                else:
                    self._acked.remove(index)

    def _end(self, installed: bool, reason: str) -> None:
        self.outcome = Outcome(installed, reason)
        self._phase, self._queue = _END, deque()
