"""The JPKI application of a My Number Card: one session per powered card.

APDUs and status words follow shared/reference/jpki-card.md §2. The session
uses the short-EF (SFI) forms wherever they save a SELECT, so a cached card
costs 6 APDUs (its head and a 32-byte tail, core.cert_cache) and a first-seen one
11 with 256-byte reads (6 with one extended read). It never selects any
application other than the JPKI AP.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import Enum

from terminald.card.apdu import EXTENDED_MAX, SW, CommandApdu, is_retry_counter, wrong_le
from terminald.card.connection import CardConnection, ReaderLimits, reader_limits
from terminald.card.der import DerError, certificate_length
from terminald.card.errors import (
    ApduError,
    CardCommunicationError,
    CardError,
    PinStateUnknownError,
    ReadLimitError,
)

logger = logging.getLogger(__name__)

JPKI_AID = bytes.fromhex("D392F000260100000001")

EF_AUTH_CERT = 0x000A
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018

AUTH_PIN_LENGTH = 4
# 3 tries, no reset by time; a correct VERIFY restores all 3 (jpki-card.md §3).
AUTH_PIN_MAX_TRIES = 3
RSA2048_SIGNATURE_LENGTH = 256
SHORT_READ = 256
# READ BINARY offsets are 15 bits (P1 bit 8 selects the short-EF form).
MAX_OFFSET = 0x7FFF
# EF 000A holds ~1.6 KB; refuse anything absurd before reading it.
MAX_CERTIFICATE_LENGTH = 8192
# READs a certificate span may take beyond ceil(span / Le): a 6Cxx re-send, a short
# answer at the end of the EF. A card returning a byte or two per READ hits this bound.
_SPARE_READS = 4
# A 6Cxx smaller than this is not learned as the reader's limit (it is the end of the EF,
# or a card that would otherwise make the read bound useless).
_MIN_USEFUL_LE = 32
# SELECT-by-AID answers meaning "no such application": 6A82 file not found, 6A86/6D00/6E00
# (a card that does not do SELECT this way), 6A81 function not supported, 6300 (seen from
# cards refusing an unknown AID; ISO 7816-4 "no information given"), 6999 (Java Card's
# SW_APPLET_SELECT_FAILED).
_NO_SUCH_APPLICATION = frozenset(
    {
        SW.FILE_NOT_FOUND,
        SW.INCORRECT_P1P2,
        SW.INS_NOT_SUPPORTED,
        SW.CLA_NOT_SUPPORTED,
        SW.FUNCTION_NOT_SUPPORTED,
        SW.NO_RETRY_LIMIT,
        SW.APPLET_SELECT_FAILED,
    }
)


class NotJpkiCardError(CardError):
    """The card has no JPKI application (SELECT by AID refused, or no EF 000A in it)."""


class CertificateReadError(CardError):
    """EF 000A does not hold a readable DER certificate."""


class PinState(Enum):
    TRIES_LEFT = "tries_left"
    BLOCKED = "blocked"
    NO_PIN = "no_pin"  # a face-authentication card: no PIN reference data


@dataclass(frozen=True, slots=True)
class PinStatus:
    state: PinState
    tries_left: int


class WrongPinError(CardError):
    """VERIFY failed; ``tries_left`` is what the card reported."""

    def __init__(self, tries_left: int) -> None:
        super().__init__(f"wrong PIN, {tries_left} tries left")
        self.tries_left = tries_left


class PinBlockedError(CardError):
    """The PIN is blocked; only the municipal office can reset it."""


class NoPinError(CardError):
    """The card has no user-authentication PIN (face-authentication card)."""


def _short_ef_p1(fid: int) -> int:
    # P1 = 100xxxxx: short EF identifier, which on this card equals the FID (0001-001E).
    return 0x80 | fid


class JpkiSession:
    """Select the JPKI AP on ``connection`` and offer its user-auth operations.

    ``limits`` (default: what the connection carries, see
    :func:`~terminald.card.connection.reader_limits`) caps every READ BINARY's Le at the
    reader's ``max_response``.
    """

    def __init__(self, connection: CardConnection, *, limits: ReaderLimits | None = None) -> None:
        self._connection = connection
        self._limits = limits or reader_limits(connection) or ReaderLimits()
        # The Le a 6Cxx answer taught (never raised again): a reader or card that cannot
        # return 256 bytes says so once, and every later READ asks for what it can give.
        self._learned_le: int | None = None
        _, sw = self._send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, JPKI_AID))
        if sw in _NO_SUCH_APPLICATION:
            raise NotJpkiCardError(f"no JPKI application (SELECT answered {sw:04X})")
        if sw != SW.OK:
            raise ApduError(sw, "SELECT JPKI AP")

    def _send(self, command: CommandApdu) -> tuple[bytes, int]:
        return self._connection.transmit(command.encode())

    # -- certificate --------------------------------------------------------------

    def _max_le(self, extended: bool) -> int:
        le = EXTENDED_MAX if extended else SHORT_READ
        if self._limits.max_response is not None:
            le = min(le, self._limits.max_response)
        if self._learned_le is not None:
            le = min(le, self._learned_le)
        return le

    def _limit_detail(self, what: str) -> str:
        limits = self._limits
        reader = limits.reader or "this reader"
        if limits.max_response is None:
            limit = f"{reader} has no max_response in hw/readers.toml ({limits.source})"
        else:
            limit = f"{reader} passes at most {limits.max_response} bytes ({limits.source})"
        return f"{what}; {limit}"

    def _read_once(self, offset: int, le: int, short_ef: bool) -> tuple[bytes, int, int]:
        """One READ BINARY of EF 000A (with its 6Cxx re-send); returns data, SW, APDUs."""
        if short_ef:
            p1, p2 = _short_ef_p1(EF_AUTH_CERT), offset
        else:
            p1, p2 = offset >> 8, offset & 0xFF
        try:
            data, sw = self._send(CommandApdu(0x00, 0xB0, p1, p2, le=le))
            exact = wrong_le(sw)
            if exact is None or exact >= le:
                return data, sw, 1
            if exact >= _MIN_USEFUL_LE:
                self._learned_le = exact
            data, sw = self._send(CommandApdu(0x00, 0xB0, p1, p2, le=exact))
            return data, sw, 2
        except CardCommunicationError as exc:
            # The reader failed the exchange (e.g. a response larger than its buffer).
            detail = f"READ BINARY of {le} bytes at offset {offset} failed: {exc}"
            raise ReadLimitError(self._limit_detail(detail)) from exc

    def _read_span(self, start: int, end: int, *, short_ef: bool, extended: bool) -> bytes:
        """Bytes ``start``..``end`` of EF 000A, fewer only if the EF ends first.

        Bounded: a card that returns a byte or two per READ is cut off after the number
        of APDUs the reader's Le would need, plus ``_SPARE_READS``.
        """
        parts: list[bytes] = []
        offset = start
        reads = 0
        selected = False
        while offset < end:
            if offset > MAX_OFFSET:
                raise CertificateReadError("certificate extends past the 15-bit offset range")
            le = min(end - offset, self._max_le(extended))
            allowed = math.ceil((end - start) / self._max_le(extended)) + _SPARE_READS
            if reads >= allowed:
                raise ReadLimitError(
                    self._limit_detail(
                        f"EF 000A: {offset - start} of {end - start} bytes after {reads} "
                        f"READ BINARY commands; the card returns too little per READ, "
                        f"so the read was stopped"
                    )
                )
            data, sw, sent = self._read_once(offset, le, short_ef)
            reads += sent
            if sw == SW.COMMAND_NOT_ALLOWED_NO_EF and not short_ef and not selected:
                # The card did not make EF 000A current on the short-EF read
                # (ISO 7816-4 says it should); select it and carry on.
                self._select_ef(EF_AUTH_CERT)
                selected = True
                continue
            if sw == SW.FILE_NOT_FOUND and short_ef:
                # The AP answered its SELECT but has no EF 000A: not a JPKI card.
                raise NotJpkiCardError("the selected application has no EF 000A (SW=6A82)")
            if sw in (SW.OK, SW.END_REACHED_BEFORE_LE) and data:
                parts.append(data[:le])
                offset += min(len(data), le)
                short_ef = False
                if sw == SW.END_REACHED_BEFORE_LE:
                    break
                continue
            if sw == SW.WRONG_P1P2_OFFSET:
                break  # the end of the EF (jpki-card.md §2.2); the caller checks the length
            raise ReadLimitError(
                self._limit_detail(
                    f"READ BINARY of {le} bytes at offset {offset} answered SW={sw:04X}"
                )
            )
        return b"".join(parts)

    def read_certificate_head(self) -> bytes:
        """The first bytes of EF 000A: 256, or the reader's limit (short-EF READ BINARY,
        which also makes the EF current)."""
        head = self._read_span(0, self._max_le(False), short_ef=True, extended=False)
        if len(head) < 4:
            raise CertificateReadError(f"EF 000A holds only {len(head)} bytes")
        return head

    def _total_length(self, head: bytes) -> int:
        try:
            total = certificate_length(head)
        except DerError as exc:
            raise CertificateReadError(f"EF 000A is not a DER certificate: {exc}") from exc
        if total > MAX_CERTIFICATE_LENGTH:
            raise CertificateReadError(f"EF 000A claims {total} bytes; refusing")
        return total

    def _complete(self, start: int, total: int, *, extended: bool) -> bytes:
        data = self._read_span(start, total, short_ef=False, extended=extended)
        if start + len(data) < total:
            raise CertificateReadError(
                f"EF 000A ends after {start + len(data)} bytes; its DER header says {total}"
            )
        return data

    def read_certificate_tail(self, head: bytes, length: int) -> bytes:
        """The last ``length`` bytes of the certificate whose first bytes are ``head``."""
        total = self._total_length(head)
        offset = max(0, total - length)
        if total <= len(head):
            return head[offset:total]
        return self._complete(offset, total, extended=False)

    def read_certificate_rest(self, head: bytes, *, extended: bool = False) -> bytes:
        """Complete the certificate whose first bytes are ``head``.

        Reads never go past the DER end. With ``extended`` the rest comes in one
        extended-length READ BINARY (only where the reader profile allows it), capped
        at the reader's ``max_response``.
        """
        total = self._total_length(head)
        if total <= len(head):
            return head[:total]
        return head + self._complete(len(head), total, extended=extended)

    def _select_ef(self, fid: int) -> None:
        _, sw = self._send(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        if sw != SW.OK:
            raise ApduError(sw, f"SELECT EF {fid:04X}")

    # -- PIN ----------------------------------------------------------------------

    def pin_status(self) -> PinStatus:
        """Ask for the tries left without using one (VERIFY with no data)."""
        _, sw = self._send(CommandApdu(0x00, 0x20, 0x00, _short_ef_p1(EF_AUTH_PIN)))
        if is_retry_counter(sw):
            tries = sw & 0x0F
            if tries > AUTH_PIN_MAX_TRIES:
                # More than the JPKI maximum: this is not the counter we know, so the
                # count of tries left cannot be trusted with a person's PIN.
                raise PinStateUnknownError(sw, f"VERIFY retry query: {tries} tries is above 3")
            return PinStatus(PinState.BLOCKED if tries == 0 else PinState.TRIES_LEFT, tries)
        if sw in (SW.REFERENCE_DATA_NOT_USABLE, SW.AUTH_METHOD_BLOCKED):
            return PinStatus(PinState.BLOCKED, 0)
        if sw in (SW.REFERENCE_DATA_NOT_FOUND, SW.FILE_NOT_FOUND):
            return PinStatus(PinState.NO_PIN, 0)
        # 9000 (already verified: the card was not unpowered) or 6300 (no limit)
        # leave the counter unknown; never guess about a person's last try.
        raise ApduError(sw, "VERIFY retry query")

    def verify_pin(self, pin: str) -> None:
        """VERIFY the user-auth PIN. The caller has checked the tries left first."""
        if len(pin) != AUTH_PIN_LENGTH or not pin.isascii() or not pin.isdigit():
            # Never send a malformed PIN: the card would count it as a wrong try.
            raise ValueError("the user-authentication PIN is exactly 4 digits")
        _, sw = self._send(
            CommandApdu(0x00, 0x20, 0x00, _short_ef_p1(EF_AUTH_PIN), pin.encode("ascii"))
        )
        if sw == SW.OK:
            return
        if sw == 0x63C0:
            raise PinBlockedError("wrong PIN; that was the last try: the PIN is now blocked")
        if is_retry_counter(sw):
            raise WrongPinError(sw & 0x0F)
        if sw in (SW.REFERENCE_DATA_NOT_USABLE, SW.AUTH_METHOD_BLOCKED):
            raise PinBlockedError("PIN blocked")
        if sw in (SW.REFERENCE_DATA_NOT_FOUND, SW.FILE_NOT_FOUND):
            raise NoPinError("card has no user-authentication PIN")
        raise ApduError(sw, "VERIFY")

    # -- signature ------------------------------------------------------------------

    def sign(self, digest_info: bytes) -> bytes:
        """Have the user-auth key sign ``digest_info``; the card adds PKCS#1 v1.5 padding."""
        data, sw = self._send(
            CommandApdu(0x80, 0x2A, 0x00, _short_ef_p1(EF_AUTH_KEY), digest_info, le=256)
        )
        if sw != SW.OK:
            raise ApduError(sw, "COMPUTE SIGNATURE")
        if len(data) != RSA2048_SIGNATURE_LENGTH:
            raise CardCommunicationError(f"signature of {len(data)} bytes, expected 256")
        return data
