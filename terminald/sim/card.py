"""A virtual My Number Card: the JPKI AP and, with synthetic data, the two card-face APs.

Pure card logic: bytes in, bytes out, no sockets, no sleeps. The files it answers over
are built by ``sim/card_apps.py``. The transports are
``sim/inprocess.py`` (unit tests) and ``sim/vpcd.py`` (the real pcscd). Behaviour follows
shared/reference/jpki-card.md (cited as §n) and the card OpenSC's JPKI driver accepted
(shared/reference/opensc-interop.md). Where the real card's answer is unknown, the
comment says the answer is our model.

Every power event and every command APDU is recorded in :attr:`VirtualJpkiCard.log`, so a
test can prove what a terminal sent (and that it never selected the card-face APs). The
record holds the command bytes as received, PIN included, because tests must check the
exact VERIFY bytes; every text form of an event masks VERIFY data.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from terminald.card.apdu import EXTENDED_MAX, SHORT_LE_MAX, SW, ParsedCommand, parse_command
from terminald.sim.card_apps import (
    EF_AUTH_PIN,
    JPKI_AID,
    TEXT_AID,
    VISUAL_AID,
    Application,
    DataEf,
    Ef,
    KeyEf,
    PinEf,
    build_applications,
    card_sign,
    pkcs1_type1_sign,
    synthetic_basic4,
)
from terminald.sim.profile import CardProfile

# Re-exported: tests and the sim CLI know these by this module.
__all__ = [
    "JPKI_AID",
    "TEXT_AID",
    "VISUAL_AID",
    "CardEvent",
    "CardNotPoweredError",
    "VirtualJpkiCard",
    "card_sign",
    "pkcs1_type1_sign",
    "synthetic_basic4",
]

EventKind = Literal["power_on", "power_off", "reset", "apdu"]


class CardNotPoweredError(RuntimeError):
    """An APDU reached a card with no power: a transport bug, not a card answer."""


@dataclass(frozen=True, slots=True, repr=False)
class CardEvent:
    """One power event or one command APDU with the status word the card answered."""

    kind: EventKind
    command: bytes = b""
    sw: int | None = None
    response_length: int = 0  # data bytes, without the SW

    @property
    def masked_command(self) -> str:
        """Upper-case hex with the data of VERIFY / CHANGE REFERENCE DATA as ``*``."""
        if len(self.command) > 5 and self.command[1] in (0x20, 0x24):
            return self.command[:5].hex().upper() + "**" * (len(self.command) - 5)
        return self.command.hex().upper()

    def describe(self) -> str:
        """One line, never carrying a PIN: ``apdu 00A4... 9000 0`` or ``power_on``."""
        if self.kind != "apdu":
            return self.kind
        return f"apdu {self.masked_command} {self.sw or 0:04X} {self.response_length}"

    def __repr__(self) -> str:
        return f"CardEvent({self.describe()})"


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


def _is_private_key_operation(command: bytes) -> bool:
    return len(command) >= 2 and command[0] == 0x80 and command[1] == 0x2A


class VirtualJpkiCard:
    """One virtual My Number Card built from a :class:`CardProfile`.

    PIN tries persist for the life of the object (like the chip's EEPROM); verified state
    lives only while the card is powered.
    """

    def __init__(self, profile: CardProfile) -> None:
        self.profile = profile
        self.log: list[CardEvent] = []
        self._listeners: list[Callable[[CardEvent], None]] = []
        self.build_applications = build_applications(profile)
        self._powered = False
        self._current_app: Application | None = None
        self._current_ef: int | None = None
        self._verified: set[tuple[str, int]] = set()

    # -- observation ---------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.profile.atr

    @property
    def powered(self) -> bool:
        return self._powered

    def add_listener(self, listener: Callable[[CardEvent], None]) -> None:
        """Call ``listener`` with every event as it is recorded (e.g. an APDU log file)."""
        self._listeners.append(listener)

    def selected_aids(self) -> list[bytes]:
        """The AID of every SELECT-by-AID received, in order, whether or not it succeeded."""
        aids = []
        for command in self.commands():
            if command[1:3] == b"\xa4\x04":
                try:
                    aids.append(parse_command(command).data)
                except ValueError:
                    continue  # malformed: the card answered 6700 and selected nothing
        return aids

    def commands(self) -> list[bytes]:
        """Every command APDU received, in order."""
        return [e.command for e in self.log if e.kind == "apdu"]

    def tries_left(self, pin_fid: int = EF_AUTH_PIN) -> int:
        """The JPKI AP counter of ``pin_fid`` (for tests; a terminal must ask the card)."""
        pin = self.build_applications[0].files[pin_fid] if self.build_applications else None
        if not isinstance(pin, PinEf):
            raise KeyError(f"no PIN EF {pin_fid:04X}")
        return pin.tries

    def _record(self, event: CardEvent) -> None:
        self.log.append(event)
        for listener in self._listeners:
            listener(event)

    # -- power ------------------------------------------------------------------------------

    def power_on(self) -> None:
        self._powered = True
        self._forget_session()
        self._record(CardEvent("power_on"))

    def power_off(self) -> None:
        self._powered = False
        self._forget_session()
        self._record(CardEvent("power_off"))

    def reset(self) -> None:
        """Warm reset: the real card keeps a successful VERIFY (§2.3, [1] MYNACARD).

        So this model keeps everything, including the selected AP: a terminal that only
        resets leaves the key usable, which is why it must unpower the card.
        """
        if not self._powered:
            self._forget_session()  # resetting an unpowered card is a cold start
        self._powered = True
        self._record(CardEvent("reset"))

    def _forget_session(self) -> None:
        self._current_app = None
        self._current_ef = None
        self._verified.clear()

    # -- timing -----------------------------------------------------------------------------

    def delay_for(self, command: bytes, response: bytes) -> float:
        """Seconds this exchange takes under the profile's :class:`TimingModel`."""
        timing = self.profile.timing
        seconds = timing.apdu_ms / 1e3 + timing.per_byte_us * (len(command) + len(response)) / 1e6
        if _is_private_key_operation(command) and response[-2:] == b"\x90\x00":
            seconds += timing.sign_ms / 1e3
        return seconds

    # -- commands -----------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU: response data followed by SW1 SW2."""
        if not self._powered:
            raise CardNotPoweredError("APDU sent to an unpowered card")
        response = self._answer(apdu)
        sw = int.from_bytes(response[-2:], "big")
        self._record(CardEvent("apdu", bytes(apdu), sw, len(response) - 2))
        return response

    def _answer(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return _sw(SW.WRONG_LENGTH)
        cla = apdu[0]
        # Secure-messaging indication in CLA bits 4-3: the JPKI AP has no SM (§2.3: 6882).
        if cla & 0x0C and cla & 0x60 == 0:
            return _sw(SW.SM_NOT_SUPPORTED)
        if cla not in (0x00, 0x80):
            return _sw(SW.CLA_NOT_SUPPORTED)
        try:
            command = parse_command(apdu)
        except ValueError:
            return _sw(SW.WRONG_LENGTH)
        handler = _HANDLERS.get((cla, command.ins))
        if handler is None:
            return _sw(SW.INS_NOT_SUPPORTED)
        return handler(self, command)

    def _select(self, c: ParsedCommand) -> bytes:
        if c.p1 == 0x04:  # by DF name (AID)
            if c.p2 not in (0x00, 0x0C):
                return _sw(SW.INCORRECT_P1P2)
            if not c.data:
                return _sw(SW.WRONG_LENGTH)
            app = next((a for a in self.build_applications if a.aid == c.data), None)
            if app is None:
                answer = self.profile.quirks.unknown_aid_sw
                if answer != SW.OK:
                    return _sw(answer)
                app = Application("default", c.data)  # a default applet: no JPKI files
            # Selecting an AP (again) drops PIN state; OpenSC >= 0.24 logs out this way.
            self._forget_session()
            self._current_app = app
            return _sw(SW.OK)
        if c.p1 == 0x00:
            # No usable MF (§2.1, [1] MYNACARD): 3F00 is not found; an empty SELECT MF
            # is refused after power-up and accepted without effect once an AP is current.
            if c.data == b"\x3f\x00":
                return _sw(SW.FILE_NOT_FOUND)
            return _sw(SW.INCORRECT_P1P2 if self._current_app is None else SW.OK)
        if c.p1 == 0x02:  # EF under the current DF
            if c.p2 not in (0x00, 0x0C):
                return _sw(SW.INCORRECT_P1P2)
            if len(c.data) != 2:
                return _sw(SW.WRONG_LENGTH)
            fid = int.from_bytes(c.data, "big")
            if self._current_app is None or fid not in self._current_app.files:
                return _sw(SW.FILE_NOT_FOUND)
            self._current_ef = fid
            return _sw(SW.OK)
        return _sw(SW.INCORRECT_P1P2)

    def _ef(self, fid: int) -> Ef | None:
        return None if self._current_app is None else self._current_app.files.get(fid)

    def _is_verified(self, pin_fid: int) -> bool:
        return self._current_app is not None and (self._current_app.name, pin_fid) in (
            self._verified
        )

    def _read_binary(self, c: ParsedCommand) -> bytes:
        if c.data or c.le is None:
            return _sw(SW.WRONG_LENGTH)
        if c.p1 & 0x80:
            # Short-EF form: P1 = 100 SFI, P2 = offset; it also makes the EF current
            # (ISO 7816-4; §2.2). SFI equals the FID on this card.
            if c.p1 & 0x60:
                return _sw(SW.INCORRECT_P1P2)
            fid, offset = c.p1 & 0x1F, c.p2
            if self._ef(fid) is None:
                return _sw(SW.FILE_NOT_FOUND)
            self._current_ef = fid
        else:
            if self._current_ef is None:
                return _sw(SW.COMMAND_NOT_ALLOWED_NO_EF)
            fid, offset = self._current_ef, c.p1 << 8 | c.p2
        ef = self._ef(fid)
        if not isinstance(ef, DataEf):
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)  # keys and PINs never leave the chip
        if ef.read_pin is not None and not self._is_verified(ef.read_pin):
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)
        if offset >= len(ef.content):
            return _sw(SW.WRONG_P1P2_OFFSET)  # end of file (§2.2)
        remaining = len(ef.content) - offset
        quirks = self.profile.quirks
        if quirks.read_max and c.le > quirks.read_max:
            if quirks.read_over_max == "6cxx":
                return _sw(0x6C00 | quirks.read_max & 0xFF)  # 6C00 = 256
            return _sw(SW.WRONG_LENGTH)
        if quirks.read_chunk:
            return ef.content[offset : offset + min(c.le, quirks.read_chunk)] + _sw(SW.OK)
        le_is_maximum = c.le == (EXTENDED_MAX if c.extended else SHORT_LE_MAX)
        if c.le > remaining and not le_is_maximum:
            # An explicit Le past the end: what there is, with a warning (ISO 7816-4 6282).
            return ef.content[offset:] + _sw(0x6282)
        return ef.content[offset : offset + c.le] + _sw(SW.OK)

    def _referenced_ef(self, p2: int, want: type[PinEf] | type[KeyEf]) -> Ef | int:
        """The EF a VERIFY/SIGN P2 names: ``80`` = current EF, ``80|SFI`` = that EF.

        Returns the EF, or the SW to answer.
        """
        if p2 == 0x80:
            ef = None if self._current_ef is None else self._ef(self._current_ef)
            return ef if isinstance(ef, want) else SW.CONDITIONS_NOT_SATISFIED
        if 0x81 <= p2 <= 0x9E:
            ef = self._ef(p2 & 0x1F)
            return ef if isinstance(ef, want) else SW.REFERENCE_DATA_NOT_FOUND
        return SW.INCORRECT_P1P2

    def _pin_fid(self, p2: int) -> int:
        return p2 & 0x1F if p2 != 0x80 else self._current_ef or 0

    def _verify(self, c: ParsedCommand) -> bytes:
        if c.p1 != 0x00:
            return _sw(SW.INCORRECT_P1P2)
        pin = self._referenced_ef(c.p2, PinEf)
        if isinstance(pin, int):
            return _sw(pin)
        assert isinstance(pin, PinEf)
        if pin.secret is None:
            # Face-authentication card: no PIN reference data. 6A88 is our model; the real
            # card's answer is not public (§3, UNCONFIRMED).
            return _sw(SW.REFERENCE_DATA_NOT_FOUND)
        if c.le is not None and not c.data:
            return _sw(SW.WRONG_LENGTH)
        if not c.data and self.profile.quirks.pin_query_sw:
            return _sw(self.profile.quirks.pin_query_sw)
        if not c.data:
            # Retry query without using a try (§2.3). A blocked PIN still answers 63C0:
            # OpenSC's bind fails on anything but SW1=63 (opensc-interop.md).
            return _sw(0x63C0 | pin.tries)
        if pin.tries == 0:
            return _sw(SW.REFERENCE_DATA_NOT_USABLE)  # blocked (§2.3)
        key = (self._current_app.name if self._current_app else "", self._pin_fid(c.p2))
        if hmac.compare_digest(c.data, pin.secret):
            pin.tries = pin.max_tries
            self._verified.add(key)
            return _sw(SW.OK)
        pin.tries -= 1
        self._verified.discard(key)
        return _sw(0x63C0 | pin.tries)

    def _sign(self, c: ParsedCommand) -> bytes:
        if c.p1 != 0x00:
            return _sw(SW.INCORRECT_P1P2)  # other schemes are [1]-only (§2.4); not modelled
        key_ef = self._referenced_ef(c.p2, KeyEf)
        if isinstance(key_ef, int):
            return _sw(key_ef)
        assert isinstance(key_ef, KeyEf)
        if not self._is_verified(key_ef.pin) or key_ef.key is None:
            return _sw(SW.SECURITY_STATUS_NOT_SATISFIED)  # expected SW (§8 item 2)
        size = (key_ef.key.key_size + 7) // 8
        if not c.data or len(c.data) > size - 11:
            return _sw(SW.WRONG_LENGTH)  # PKCS#1 v1.5 takes 1..k-11 bytes (245 for RSA-2048)
        return card_sign(key_ef.key, c.data) + _sw(SW.OK)


_HANDLERS: dict[tuple[int, int], Callable[[VirtualJpkiCard, ParsedCommand], bytes]] = {
    (0x00, 0xA4): VirtualJpkiCard._select,
    (0x00, 0xB0): VirtualJpkiCard._read_binary,
    (0x00, 0x20): VirtualJpkiCard._verify,
    (0x80, 0x2A): VirtualJpkiCard._sign,
}
