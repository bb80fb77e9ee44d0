"""The PC/SC card reader, through pyscard's low-level ``scard`` module.

This adapter owns its SCardGetStatusChange loop instead of pyscard's
CardMonitor, which dies for good when pcscd restarts (pcsc-in-ci.md §4): any
service error drops the context, and the next call builds a new one. Cards are
held with SCARD_SHARE_EXCLUSIVE and always released with SCARD_UNPOWER_CARD,
because a successful VERIFY stays valid until the card loses power
(jpki-card.md §2.3).

With no reader name, every reader pcscd lists is watched: readers with a contact and a
contactless slot may list the contact slot first, so "the first reader" can be the
wrong one. One transaction at a time: the first card seen (in reader-list order when
several appear in the same pass) is the active one, and another card is not looked at
until the active card is removed; if it is still there then, it is served next. The
reader the monitor thread watches and the one the card thread connects through share
that choice (:meth:`PcscReader.sibling`), each with its own PC/SC context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from smartcard import scard

from terminald.backends.reader_profiles import ReaderProfiles
from terminald.card.apdu import redact
from terminald.card.connection import ReaderLimits
from terminald.card.errors import (
    CardCommunicationError,
    CardRemovedError,
    ReaderUnavailableError,
)

logger = logging.getLogger(__name__)

TRAFFIC = 5  # below DEBUG: APDU hex, PIN data masked
PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
# SCardStatus state bit from pcsc-lite's pcsclite.h; pyscard does not export it.
_SCARD_PRESENT = 0x0004
_REMOVAL_SETTLE = 0.6
# How long one blocking status wait lasts before the loop looks at its deadline.
_WAIT_SLICE_MS = 1000
_RETRY_AFTER_SERVICE_LOSS = 0.25

_REMOVED = {
    scard.SCARD_W_REMOVED_CARD,
    scard.SCARD_E_NO_SMARTCARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_W_UNPOWERED_CARD,
}
_SERVICE_GONE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_F_INTERNAL_ERROR,
}


def _message(hresult: int) -> str:
    return f"{scard.SCardGetErrorMessage(hresult).rstrip('.')} (0x{hresult & 0xFFFFFFFF:08X})"


def _raise_for(hresult: int, what: str) -> None:
    if hresult == scard.SCARD_S_SUCCESS:
        return
    if hresult in _REMOVED:
        raise CardRemovedError(f"{what}: {_message(hresult)}")
    if hresult in _SERVICE_GONE:
        raise ReaderUnavailableError(f"{what}: {_message(hresult)}")
    if hresult == scard.SCARD_E_SHARING_VIOLATION:
        raise CardCommunicationError(f"{what}: the card is held by another program")
    raise CardCommunicationError(f"{what}: {_message(hresult)}")


class PcscConnection:
    """One exclusively held card; implements :class:`~terminald.card.connection.CardConnection`."""

    def __init__(self, handle: Any, protocol: int, limits: ReaderLimits | None = None) -> None:
        self._handle = handle
        # Read by the JPKI session (card.connection.reader_limits): caps READ BINARY's Le.
        self.limits = limits or ReaderLimits()
        self._pci = (
            scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
        )
        self.apdus = 0

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if self._handle is None:
            raise CardRemovedError("connection already released")
        logger.log(TRAFFIC, "> %s", redact(apdu))
        hresult, response = scard.SCardTransmit(self._handle, self._pci, list(apdu))
        failed = hresult != scard.SCARD_S_SUCCESS or len(response) < 2
        if failed and self._card_gone():
            # A card pulled mid-APDU surfaces as a transport error or an empty answer
            # (vpcd, some NFC readers); say what actually happened.
            raise CardRemovedError(f"card removed during transmit ({_message(hresult)})")
        _raise_for(hresult, "transmit")
        self.apdus += 1
        if len(response) < 2:
            raise CardCommunicationError(f"response of {len(response)} bytes has no status word")
        data = bytes(response[:-2])
        sw = response[-2] << 8 | response[-1]
        logger.log(TRAFFIC, "< %s %04X", data.hex(" "), sw)
        return data, sw

    def _card_gone(self) -> bool:
        """After a failed exchange: is the card out of the field?

        pcscd learns of a removal by polling (every ~400 ms on vpcd and many
        readers), so give it up to ``_REMOVAL_SETTLE`` seconds. Only failures pay this.
        """
        deadline = time.monotonic() + _REMOVAL_SETTLE
        while True:
            hresult, _reader, state, _protocol, _atr = scard.SCardStatus(self._handle)
            if hresult in _REMOVED:
                return True
            if hresult != scard.SCARD_S_SUCCESS:
                return False
            if not int(state) & _SCARD_PRESENT:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def release(self) -> None:
        """Disconnect and unpower; never raises (the card may already be gone)."""
        if self._handle is None:
            return
        hresult = scard.SCardDisconnect(self._handle, scard.SCARD_UNPOWER_CARD)
        if hresult != scard.SCARD_S_SUCCESS:
            logger.debug("disconnect: %s", _message(hresult))
        self._handle = None


class _Selection:
    """Which reader holds the card being served; shared by a reader and its sibling."""

    def __init__(self) -> None:
        self.active: str | None = None


class PcscReader:
    """A PC/SC reader by name (exact, or the first whose name starts with it), or every one.

    ``name=None`` watches every reader (see the module docstring). ``profiles``
    (hw/readers.toml) give each connection its reader's :class:`ReaderLimits`.
    """

    def __init__(
        self,
        name: str | None = None,
        profiles: ReaderProfiles | None = None,
        *,
        _selection: _Selection | None = None,
    ) -> None:
        self._wanted = name
        self._profiles = profiles
        self._context: Any = None
        self._resolved: str | None = None
        self._selection = _selection or _Selection()
        # Why the last wait could not watch the reader (None: it could). Read by the
        # daemon for its STATUS; changes are logged once, not on every retry.
        self.problem: str | None = None

    def sibling(self) -> PcscReader:
        """The same reader(s) on a context of its own, sharing the choice of active reader.

        The daemon's monitor thread waits on one and its card thread connects through the
        other: pcsc-lite serialises calls on one context.
        """
        return PcscReader(self._wanted, self._profiles, _selection=self._selection)

    @property
    def watches_all(self) -> bool:
        return self._wanted is None

    @property
    def name(self) -> str:
        if self.watches_all:
            return self._selection.active or "(every PC/SC reader)"
        return self._resolved or self._wanted or "(every PC/SC reader)"

    def watched(self) -> list[str]:
        """The readers present now that this object watches (doctor applies the same rule)."""
        readers = self.list_readers()
        if self.watches_all:
            return readers
        found = self._resolve()
        return [found] if found else []

    # -- context lifetime -----------------------------------------------------------

    def _ensure_context(self) -> Any:
        if self._context is None:
            hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                raise ReaderUnavailableError(f"PC/SC service: {_message(hresult)}")
            self._context = context
            logger.debug("PC/SC context established")
        return self._context

    def _drop_context(self) -> None:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)
            self._context = None
            self._resolved = None

    def close(self) -> None:
        self._drop_context()

    def list_readers(self) -> list[str]:
        context = self._ensure_context()
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _raise_for(hresult, "list readers")
        return list(readers)

    def _resolve(self) -> str | None:
        readers = self.list_readers()
        if self._wanted is None:
            found = self._selection.active if self._selection.active in readers else None
        elif self._wanted in readers:
            found = self._wanted
        else:
            found = next((r for r in readers if r.startswith(self._wanted)), None)
        self._resolved = found
        return found

    # -- waiting ----------------------------------------------------------------------

    def _states(self, readers: list[str]) -> list[int]:
        hresult, states = scard.SCardGetStatusChange(
            self._ensure_context(), 0, [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
        )
        _raise_for(hresult, "reader status")
        return [int(st[1]) & ~int(scard.SCARD_STATE_CHANGED) for st in states]

    @staticmethod
    def _present(state: int) -> bool:
        return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE

    def _readers_to_watch(self, want_present: bool) -> list[str]:
        if not self.watches_all:
            reader = self._resolve()
            return [reader] if reader else []
        if want_present:
            return self.list_readers()
        # Waiting for the removal of the card being served: only its reader matters.
        active = self._selection.active
        return [active] if active and active in self.list_readers() else []

    def _wait(self, want_present: bool, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                context = self._ensure_context()
                readers = self._readers_to_watch(want_present)
                if not readers:
                    if not want_present:
                        self._selection.active = None
                        return True  # the card's reader is gone: so is the card
                    self._set_problem(
                        "no PC/SC reader"
                        if self.watches_all
                        else f"no reader matching {self.name!r}"
                    )
                    # No reader: sleep until one is plugged in.
                    scard.SCardGetStatusChange(
                        context,
                        min(_WAIT_SLICE_MS, int(remaining * 1000)),
                        [(PNP_NOTIFICATION, scard.SCARD_STATE_UNAWARE)],
                    )
                    continue
                states = self._states(readers)
                self._set_problem(None)
                present = [r for r, st in zip(readers, states, strict=True) if self._present(st)]
                if want_present and present:
                    self._selection.active = present[0]
                    return True
                if not want_present and not present:
                    self._selection.active = None
                    return True
                # Sleep until a watched reader changes; a reader plugged in meanwhile is
                # listed at the next pass (at most one slice later).
                hresult, _ = scard.SCardGetStatusChange(
                    context,
                    min(_WAIT_SLICE_MS, int(remaining * 1000) + 1),
                    list(zip(readers, states, strict=True)),
                )
                if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                    _raise_for(hresult, "waiting for the card")
            except ReaderUnavailableError as exc:
                self._set_problem(f"PC/SC unavailable: {exc}")
                self._drop_context()
                time.sleep(min(_RETRY_AFTER_SERVICE_LOSS, max(0.0, deadline - time.monotonic())))

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        if problem is None:
            logger.info("reader %s available again", self.name)
        elif self.problem is None:
            logger.warning("%s; waiting for it", problem)
        else:
            logger.debug("%s", problem)
        self.problem = problem

    def wait_for_card(self, timeout: float) -> bool:
        return self._wait(True, timeout)

    def wait_for_removal(self, timeout: float) -> bool:
        return self._wait(False, timeout)

    # -- holding the card ---------------------------------------------------------------

    @contextmanager
    def connect(self) -> Iterator[PcscConnection]:
        try:
            context = self._ensure_context()
            if self.watches_all:
                reader = self._selection.active or self._first_with_card()
            else:
                reader = self._resolved or self._resolve()
            if reader is None:
                raise ReaderUnavailableError(
                    "no reader holds a card"
                    if self.watches_all
                    else f"no reader matching {self.name!r}"
                )
            hresult, handle, protocol = scard.SCardConnect(
                context,
                reader,
                scard.SCARD_SHARE_EXCLUSIVE,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            _raise_for(hresult, f"connect to {reader}")
        except ReaderUnavailableError:
            self._drop_context()
            raise
        limits = self._profiles.limits(reader) if self._profiles else ReaderLimits(reader)
        connection = PcscConnection(handle, protocol, limits)
        try:
            yield connection
        except ReaderUnavailableError:
            self._drop_context()
            raise
        finally:
            connection.release()

    def _first_with_card(self) -> str | None:
        readers = self.list_readers()
        if not readers:
            return None
        present = [
            r for r, st in zip(readers, self._states(readers), strict=True) if self._present(st)
        ]
        return present[0] if present else None


def open_reader(name: str | None = None, profiles: ReaderProfiles | None = None) -> PcscReader:
    return PcscReader(name, profiles)
