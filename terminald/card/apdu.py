"""ISO 7816-4 command APDU encoding and the status words the JPKI card uses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

SHORT_LC_MAX = 255
SHORT_LE_MAX = 256
EXTENDED_MAX = 65536


class SW(IntEnum):
    """Status words this project acts on (see shared/reference/jpki-card.md §2.5)."""

    OK = 0x9000
    END_REACHED_BEFORE_LE = 0x6282  # fewer bytes than Le: the end of the EF (ISO 7816-4)
    NO_RETRY_LIMIT = 0x6300  # also "verification failed, no information" (ISO 7816-4)
    WRONG_LENGTH = 0x6700
    SM_NOT_SUPPORTED = 0x6882
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCE_DATA_NOT_USABLE = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED_NO_EF = 0x6986
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1P2 = 0x6A86
    REFERENCE_DATA_NOT_FOUND = 0x6A88
    WRONG_P1P2_OFFSET = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00
    # Java Card's ISO7816.SW_APPLET_SELECT_FAILED: no applet with that AID on the card.
    APPLET_SELECT_FAILED = 0x6999


def wrong_le(sw: int) -> int | None:
    """``6Cxx``: "wrong Le field; SW2 encodes the exact number of available data bytes"
    (ISO/IEC 7816-4:2013 §5.6, table 6); the command is to be sent again with that Le.

    Returns the Le to ask for (``6C00`` = 256), or None for any other status word.
    """
    if sw >> 8 != 0x6C:
        return None
    return sw & 0xFF or SHORT_LE_MAX


def is_retry_counter(sw: int) -> bool:
    """``63Cx``: a VERIFY answer carrying the number of tries left."""
    return sw & 0xFFF0 == 0x63C0


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """One command APDU; ``le`` is the number of bytes expected (None = case 1/3)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} out of range")
        if len(self.data) > EXTENDED_MAX - 1:
            raise ValueError("command data longer than 65535 bytes")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX:
            raise ValueError("Le must be 1..65536")

    @property
    def extended(self) -> bool:
        return len(self.data) > SHORT_LC_MAX or (self.le is not None and self.le > SHORT_LE_MAX)

    def encode(self) -> bytes:
        """Short form where both fields fit, extended form otherwise (ISO 7816-4 §5.1)."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.extended:
            body = bytes((len(self.data),)) + self.data if self.data else b""
            if self.le is not None:
                body += bytes((self.le % 256,))
            return header + body
        body = b"\x00"  # extended marker
        if self.data:
            body += len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            body += (self.le % EXTENDED_MAX).to_bytes(2, "big")
        return header + body


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """A command APDU as a card sees it, after decoding (used by the virtual card)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None
    extended: bool


def parse_command(raw: bytes) -> ParsedCommand:
    """Decode the four ISO 7816-4 cases in short and extended form.

    Raises ValueError on any encoding that is not one of them, so a card can
    answer ``6700`` instead of guessing.
    """
    if len(raw) < 4:
        raise ValueError("command APDU shorter than 4 bytes")
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:  # case 1
        return ParsedCommand(cla, ins, p1, p2, b"", None, False)
    if len(body) == 1:  # case 2 short
        return ParsedCommand(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0] != 0:  # short case 3 or 4
        lc = body[0]
        if len(body) == 1 + lc:
            return ParsedCommand(cla, ins, p1, p2, body[1:], None, False)
        if len(body) == 2 + lc:
            return ParsedCommand(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256, False)
        raise ValueError("short APDU length fields do not match its size")
    # extended: body[0] == 0
    if len(body) == 3:  # case 2 extended
        le = int.from_bytes(body[1:3], "big") or EXTENDED_MAX
        return ParsedCommand(cla, ins, p1, p2, b"", le, True)
    if len(body) < 3:
        raise ValueError("truncated extended APDU")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise ValueError("extended Lc of zero")
    if len(body) == 3 + lc:
        return ParsedCommand(cla, ins, p1, p2, body[3:], None, True)
    if len(body) == 5 + lc:
        le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX
        return ParsedCommand(cla, ins, p1, p2, body[3 : 3 + lc], le, True)
    raise ValueError("extended APDU length fields do not match its size")


def redact(apdu: bytes) -> str:
    """Hex for logs, with the data of VERIFY and CHANGE REFERENCE DATA masked.

    The PIN travels in clear inside VERIFY (jpki-card.md §2.3); a log line must
    never carry it.
    """
    if len(apdu) > 5 and apdu[1] in (0x20, 0x24):
        return apdu[:5].hex(" ") + " " + "**" * (len(apdu) - 5)
    return apdu.hex(" ")
