"""One transfer to many terminals on one multi-drop line: broadcast once, repair what each lacks.

Rounds (docs/protocol.md §5):

1. Each terminal gets ``bulk.offer`` (with the group key) over its own session and answers
   with what it already holds.
2. A broadcast round sends, once each, the union of the chunks any terminal lacks, sealed
   for the BROADCAST channel (address 0x7F).
3. Each terminal is asked ``bulk.status`` and answers with what it still lacks.
4. Repeat 2–3 with the new union for at most ``broadcast_rounds`` rounds; then the rest goes
   unicast over each terminal's session (its reliable transport ends it).

Why re-broadcast the union rather than repair each terminal alone: a chunk sent once on the
shared line serves every terminal that lacks it, and a broadcast frame costs fewer bytes than
a unicast one (no transport header, no acknowledgement), so the union costs at most what the
per-terminal repairs would. The cap on rounds bounds the price of broadcast being
unacknowledged: a terminal on a bad line ends up on its reliable session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from terminald.link import broadcast
from terminald.link.bulk_errors import BulkError
from terminald.link.bulk_messages import (
    BulkChunk,
    BulkDone,
    BulkMissing,
    BulkOffer,
    BulkResult,
    BulkState,
    BulkStatus,
)
from terminald.link.bulk_ranges import Bitmap
from terminald.link.bulk_sender import DEFAULT_CHUNK_SIZE, BulkSender, Outcome, Progress

BROADCAST_ADDRESS = 0x7F


@dataclass(frozen=True)
class PlanProgress:
    acknowledged: int  # bytes acknowledged, summed over the terminals
    total: int  # size × number of terminals
    per_terminal: dict[int, Progress]
    broadcast: int  # distinct bytes broadcast at least once (size: the first round is over)


class BroadcastPlan:
    """Drive with ``next_unicast(address)`` for each terminal's session, ``next_broadcast()``
    for the BROADCAST channel, and ``on_reply(address, message)``. ``header`` is the 3-byte
    frame header of the broadcast frames (it is authenticated with each chunk)."""

    def __init__(
        self,
        data: bytes,
        kind: str,
        transfer_id: bytes,
        group_key: bytes,
        addresses: Sequence[int],
        header: bytes,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        broadcast_rounds: int = 3,
        max_failures: int = 3,
    ) -> None:
        if not addresses or len(set(addresses)) != len(addresses):
            raise BulkError("broadcast plan: addresses must be given, each once")
        if any(not 0x01 <= a <= 0x7E for a in addresses):
            raise BulkError("broadcast plan: terminal addresses are 0x01..0x7E")
        self._senders = {
            address: BulkSender(
                data,
                kind,
                transfer_id,
                chunk_size=chunk_size,
                group_key=group_key,
                max_failures=max_failures,
                unicast=False,
            )
            for address in addresses
        }
        self._group_key = group_key
        self._header = header
        self._rounds_left = broadcast_rounds
        self._round: deque[int] = deque()
        self._in_round = False
        self._counter = 0
        self._sent_once = Bitmap(next(iter(self._senders.values())).offer.chunks)
        self.frames_broadcast = 0

    @property
    def offer(self) -> BulkOffer:
        return next(iter(self._senders.values())).offer

    def sender(self, address: int) -> BulkSender:
        return self._senders[address]

    @property
    def finished(self) -> bool:
        return all(s.outcome is not None for s in self._senders.values())

    @property
    def outcomes(self) -> dict[int, Outcome | None]:
        return {address: s.outcome for address, s in self._senders.items()}

    @property
    def progress(self) -> PlanProgress:
        per = {address: s.progress for address, s in self._senders.items()}
        acknowledged = sum(p.acknowledged for p in per.values())
        size, last = self.offer.chunk_size, self.offer.chunks - 1
        sent = self._sent_once.held * size
        if last in self._sent_once:
            sent -= size - (self.offer.size - last * size)
        return PlanProgress(acknowledged, sum(p.total for p in per.values()), per, sent)

    @property
    def unicast_chunks(self) -> int:
        return sum(s.chunks_sent for s in self._senders.values())

    # -- what to send -------------------------------------------------------------------

    def next_unicast(self, address: int) -> BulkOffer | BulkChunk | BulkStatus | None:
        """The next message for that terminal's session, or None for now."""
        return self._senders[address].next_message()

    def next_broadcast(self) -> bytes | None:
        """The next BROADCAST payload, or None (no round under way, or every terminal has
        not answered yet)."""
        if not self._in_round:
            self._maybe_start_round()
        if not self._in_round:
            return None
        if not self._round:
            self._in_round = False
            for s in self._senders.values():
                s.request_status()
            return None
        index = self._round.popleft()
        payload = broadcast.seal_chunk(
            self._group_key,
            self.offer.transfer_id,
            self._counter,
            self._header,
            index,
            self._senders_chunk(index),
        )
        self._counter += 1
        self.frames_broadcast += 1
        self._sent_once.add(index)
        return payload

    def _senders_chunk(self, index: int) -> bytes:
        return next(iter(self._senders.values())).chunk(index).data

    def _maybe_start_round(self) -> None:
        """A round starts when no terminal owes a reply and someone lacks chunks."""
        senders = [s for s in self._senders.values() if s.outcome is None]
        if any(s.waiting for s in senders) or not any(s.receiving for s in senders):
            return
        if self._rounds_left <= 0:
            for s in senders:
                s.unicast = True  # the rest over each reliable session
            return
        union = sorted({index for s in senders for index in s.pending})
        if not union:
            for s in senders:
                s.request_status()  # nothing known lacking, yet not done: ask again
            return
        self._rounds_left -= 1
        self._round, self._in_round = deque(union), True

    # -- what came back -----------------------------------------------------------------

    def on_reply(
        self, address: int, message: BulkState | BulkMissing | BulkDone | BulkResult
    ) -> None:
        """Raises BulkError for an unknown address or a reply not due (see BulkSender)."""
        sender = self._senders.get(address)
        if sender is None:
            raise BulkError(f"broadcast plan: no terminal at address {address:#04x}")
        sender.on_reply(message)

    def lost(self, address: int, reason: str) -> None:
        """The terminal's session is gone for good: it fails with ``reason``."""
        self._senders[address].fail(reason)

    def reconnected(self, address: int) -> None:
        """A new session to that terminal: offer again (it answers with what it holds)."""
        self._senders[address].start()
