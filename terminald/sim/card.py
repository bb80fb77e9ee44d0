"""A virtual My Number Card: the JPKI AP and, with synthetic data, the two card-face APs.

Pure card logic: bytes in, bytes out, no sockets, no sleeps. The transports are
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

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from terminald.card.apdu import EXTENDED_MAX, SHORT_LE_MAX, SW, ParsedCommand, parse_command
from terminald.sim.profile import CardProfile

# AIDs (§1.1). The card-face AIDs may appear only under terminald/sim/: the terminal must
# never select them (DESIGN.md §2), and a hook greps the rest of the package for them.
JPKI_AID = bytes.fromhex("D392F000260100000001")
TEXT_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
VISUAL_AID = bytes.fromhex("D3921000310001010402")  # 券面AP

# JPKI AP files (§1.2).
EF_SIGN_CERT = 0x0001
EF_SIGN_CA_CERT = 0x0002
EF_TOKEN_INFO = 0x0006
EF_AUTH_CERT = 0x000A
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
EF_SIGN_KEY = 0x001A
EF_SIGN_PIN = 0x001B
# 券面事項入力補助AP files (§4.1).
EF_TEXT_NUMBER = 0x0001
EF_TEXT_BASIC4 = 0x0002
EF_TEXT_PIN = 0x0011

AUTH_PIN_MAX_TRIES = 3  # §3
SIGN_PIN_MAX_TRIES = 5  # §3
TEXT_PIN_MAX_TRIES = 3  # §3: UNCONFIRMED, 3 assumed

# EF 0006: a PKCS#11 CK_TOKEN_INFO, label space-padded to 32 bytes; 160 bytes in all (§1.2).
TOKEN_INFO = b"JPKIAPICCTOKEN2".ljust(32, b" ") + bytes(128)

# Synthetic card-face data. 123456789010 fails the My Number check digit (the valid one
# would end in 8), so it can never be a real person's number.
SYNTHETIC_MY_NUMBER = b"123456789010"
SYNTHETIC_NAME = "試験\u3000花子"
SYNTHETIC_ADDRESS = "東京都千代田区霞が関９丁目９番９号"
SYNTHETIC_BIRTH = b"19900101"
SYNTHETIC_SEX = b"2"

# DigestInfo prefixes (RFC 8017 §9.2 note 1; §2.4) → the hash they announce.
_DIGEST_INFO_PREFIXES: tuple[tuple[bytes, hashes.HashAlgorithm], ...] = (
    (bytes.fromhex("3021300906052B0E03021A05000414"), hashes.SHA1()),  # noqa: S303
    (bytes.fromhex("3031300D060960864801650304020105000420"), hashes.SHA256()),
    (bytes.fromhex("3041300D060960864801650304020205000430"), hashes.SHA384()),
    (bytes.fromhex("3051300D060960864801650304020305000440"), hashes.SHA512()),
)

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


@dataclass
class _DataEf:
    content: bytes
    read_pin: int | None = None  # PIN EF that must be verified before reading


@dataclass
class _KeyEf:
    key: rsa.RSAPrivateKey | None
    pin: int  # PIN EF that unlocks the key


@dataclass
class _PinEf:
    secret: bytes | None  # None: no reference data (face-authentication card)
    max_tries: int
    tries: int  # persists across power cycles for the life of the card object


_Ef = _DataEf | _KeyEf | _PinEf


@dataclass
class _Application:
    name: str
    aid: bytes
    files: dict[int, _Ef] = field(default_factory=dict)


@functools.lru_cache(maxsize=64)
def _load_key(pem: bytes) -> rsa.RSAPrivateKey | None:
    # Cached: loading checks the key, which costs tens of ms, and tests build many cards.
    if not pem:
        return None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a JPKI card key must be RSA")
    return key


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: bytes, value: bytes) -> bytes:
    return tag + _ber_length(len(value)) + value


def synthetic_basic4() -> bytes:
    """EF 0002 of the 券面事項入力補助AP: ``FF 20`` { DF21 offsets, DF22–DF25 } (§4.2)."""
    items = [
        _tlv(b"\xdf\x22", SYNTHETIC_NAME.encode("utf-8")),
        _tlv(b"\xdf\x23", SYNTHETIC_ADDRESS.encode("utf-8")),
        _tlv(b"\xdf\x24", SYNTHETIC_BIRTH),
        _tlv(b"\xdf\x25", SYNTHETIC_SEX),
    ]
    inner_length = 3 + 8 + sum(len(item) for item in items)  # DF21 08 + four offsets
    header_length = 2 + len(_ber_length(inner_length))
    # The DF21 offsets count from the start of the file (§4.2).
    offsets = b""
    position = header_length + 3 + 8
    for item in items:
        offsets += position.to_bytes(2, "big")
        position += len(item)
    return _tlv(b"\xff\x20", _tlv(b"\xdf\x21", offsets) + b"".join(items))


def _pin_ef(secret: str | None, max_tries: int, tries: int) -> _PinEf:
    encoded = secret.encode("ascii") if secret is not None else None
    return _PinEf(encoded, max_tries, max(0, min(tries, max_tries)))


def _applications(profile: CardProfile) -> list[_Application]:
    if profile.kind == "non_jpki":
        return []  # answers 6A82 to every AID, the JPKI one included
    jpki = _Application("jpki", JPKI_AID)
    files = jpki.files
    files[EF_TOKEN_INFO] = _DataEf(TOKEN_INFO)
    # An empty certificate in the profile means the EF does not exist (a face-auth card has
    # no signing certificate, §3); answering 6A82 for it is our model.
    for fid, content, read_pin in (
        (EF_AUTH_CERT, profile.auth_cert, None),
        (EF_AUTH_CA_CERT, profile.auth_ca_cert, None),
        (EF_SIGN_CERT, profile.sign_cert, EF_SIGN_PIN),  # needs the signing password (§1.2)
        (EF_SIGN_CA_CERT, profile.sign_ca_cert, None),
    ):
        if content:
            files[fid] = _DataEf(content, read_pin)
    files[EF_AUTH_KEY] = _KeyEf(_load_key(profile.auth_key_pem), EF_AUTH_PIN)
    files[EF_SIGN_KEY] = _KeyEf(_load_key(profile.sign_key_pem), EF_SIGN_PIN)
    # Both PIN EFs always exist: OpenSC queries both at every bind and needs SW1=63.
    # A face-authentication card has no PIN set (§3), whatever the profile's auth_pin says.
    auth_pin = None if profile.kind == "face_auth" else profile.auth_pin
    files[EF_AUTH_PIN] = _pin_ef(auth_pin, AUTH_PIN_MAX_TRIES, profile.auth_tries)
    files[EF_SIGN_PIN] = _pin_ef(profile.sign_password, SIGN_PIN_MAX_TRIES, profile.sign_tries)

    text = _Application("text", TEXT_AID)
    text.files[EF_TEXT_NUMBER] = _DataEf(
        b"\xff\x10\x0c" + SYNTHETIC_MY_NUMBER + b"\xff\xff", EF_TEXT_PIN
    )
    text.files[EF_TEXT_BASIC4] = _DataEf(synthetic_basic4(), EF_TEXT_PIN)
    # The text AP's PIN is set to the auth PIN at issuance; its own counter (§3, §4.1).
    text.files[EF_TEXT_PIN] = _pin_ef(auth_pin, TEXT_PIN_MAX_TRIES, TEXT_PIN_MAX_TRIES)

    visual = _Application("visual", VISUAL_AID)  # selectable only; no files modelled
    return [jpki, text, visual]


def _split_digest_info(data: bytes) -> tuple[hashes.HashAlgorithm, bytes] | None:
    for prefix, algorithm in _DIGEST_INFO_PREFIXES:
        if data.startswith(prefix) and len(data) == len(prefix) + algorithm.digest_size:
            return algorithm, data[len(prefix) :]
    return None


def pkcs1_type1_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """``00 01 FF..FF 00 || data`` then the raw RSA private operation, with CRT (§2.4)."""
    size = (key.key_size + 7) // 8
    if len(data) > size - 11:
        raise ValueError("input longer than k-11 bytes")
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(data)) + b"\x00" + data
    numbers = key.private_numbers()
    m = int.from_bytes(block, "big")
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = numbers.iqmp * (m1 - m2) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def card_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """What the card returns for ``data``: a DigestInfo through ``cryptography``, else raw."""
    split = _split_digest_info(data)
    if split is None:
        return pkcs1_type1_sign(key, data)
    algorithm, digest = split
    return key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))


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
        self._applications = _applications(profile)
        self._powered = False
        self._current_app: _Application | None = None
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
        pin = self._applications[0].files[pin_fid] if self._applications else None
        if not isinstance(pin, _PinEf):
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
            app = next((a for a in self._applications if a.aid == c.data), None)
            if app is None:
                answer = self.profile.quirks.unknown_aid_sw
                if answer != SW.OK:
                    return _sw(answer)
                app = _Application("default", c.data)  # a default applet: no JPKI files
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

    def _ef(self, fid: int) -> _Ef | None:
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
        if not isinstance(ef, _DataEf):
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

    def _referenced_ef(self, p2: int, want: type[_PinEf] | type[_KeyEf]) -> _Ef | int:
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
        pin = self._referenced_ef(c.p2, _PinEf)
        if isinstance(pin, int):
            return _sw(pin)
        assert isinstance(pin, _PinEf)
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
        key_ef = self._referenced_ef(c.p2, _KeyEf)
        if isinstance(key_ef, int):
            return _sw(key_ef)
        assert isinstance(key_ef, _KeyEf)
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
