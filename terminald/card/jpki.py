"""The JPKI application of a My Number Card: one session per powered card.

APDUs and status words follow shared/reference/jpki-card.md §2. The session
uses the short-EF (SFI) forms wherever they save a SELECT, so a cached card
costs 6 APDUs (its head and a 32-byte tail, core.cert_cache) and a first-seen one
11 with 256-byte reads (6 with one extended read). It never selects any
application other than the JPKI AP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from terminald.card.apdu import SW, CommandApdu, is_retry_counter
from terminald.card.connection import CardConnection
from terminald.card.der import DerError, certificate_length
from terminald.card.errors import ApduError, CardCommunicationError, CardError

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


class NotJpkiCardError(CardError):
    """The card has no JPKI application (SELECT by AID answered 6A82)."""


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
    """Select the JPKI AP on ``connection`` and offer its user-auth operations."""

    def __init__(self, connection: CardConnection) -> None:
        self._connection = connection
        _, sw = self._send(CommandApdu(0x00, 0xA4, 0x04, 0x0C, JPKI_AID))
        if sw in (SW.FILE_NOT_FOUND, SW.INCORRECT_P1P2, SW.INS_NOT_SUPPORTED, SW.CLA_NOT_SUPPORTED):
            raise NotJpkiCardError(f"no JPKI application (SW={sw:04X})")
        if sw != SW.OK:
            raise ApduError(sw, "SELECT JPKI AP")

    def _send(self, command: CommandApdu) -> tuple[bytes, int]:
        return self._connection.transmit(command.encode())

    # -- certificate --------------------------------------------------------------

    def read_certificate_head(self) -> bytes:
        """First 256 bytes of EF 000A (short-EF READ BINARY, which also makes it current)."""
        data, sw = self._send(CommandApdu(0x00, 0xB0, _short_ef_p1(EF_AUTH_CERT), 0, le=SHORT_READ))
        if sw not in (SW.OK, 0x6282) or len(data) < 4:
            raise CertificateReadError(f"reading the certificate head failed (SW={sw:04X})")
        return data

    def read_certificate_tail(self, head: bytes, length: int) -> bytes:
        """The last ``length`` bytes of the certificate whose first bytes are ``head``."""
        try:
            total = certificate_length(head)
        except DerError as exc:
            raise CertificateReadError(f"EF 000A is not a DER certificate: {exc}") from exc
        if total > MAX_CERTIFICATE_LENGTH:
            raise CertificateReadError(f"EF 000A claims {total} bytes; refusing")
        offset = max(0, total - length)
        if offset + length <= len(head):
            return head[offset:total]
        command = CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=total - offset)
        data, sw = self._send(command)
        if sw == SW.COMMAND_NOT_ALLOWED_NO_EF:
            self._select_ef(EF_AUTH_CERT)  # as in read_certificate_rest
            data, sw = self._send(command)
        if sw != SW.OK or not data:
            raise CertificateReadError(f"READ BINARY at {offset} failed (SW={sw:04X})")
        return data[: total - offset]

    def read_certificate_rest(self, head: bytes, *, extended: bool = False) -> bytes:
        """Complete the certificate whose first bytes are ``head``.

        Reads never go past the DER end. With ``extended`` the rest comes in one
        extended-length READ BINARY (only where the reader profile allows it).
        """
        try:
            total = certificate_length(head)
        except DerError as exc:
            raise CertificateReadError(f"EF 000A is not a DER certificate: {exc}") from exc
        if total > MAX_CERTIFICATE_LENGTH:
            raise CertificateReadError(f"EF 000A claims {total} bytes; refusing")
        parts = [head[:total]]
        offset = min(len(head), total)
        selected = False
        while offset < total:
            want = total - offset
            if not extended:
                want = min(want, SHORT_READ)
            if offset > MAX_OFFSET:
                raise CertificateReadError("certificate extends past the 15-bit offset range")
            command = CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=want)
            data, sw = self._send(command)
            if sw == SW.COMMAND_NOT_ALLOWED_NO_EF and not selected:
                # The card did not make EF 000A current on the short-EF read
                # (ISO 7816-4 says it should); select it and carry on.
                self._select_ef(EF_AUTH_CERT)
                selected = True
                continue
            if sw != SW.OK or not data:
                raise CertificateReadError(f"READ BINARY at {offset} failed (SW={sw:04X})")
            parts.append(data[:want])
            offset += min(len(data), want)
        return b"".join(parts)

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
