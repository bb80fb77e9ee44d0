"""Just enough DER to read a certificate's length and serial from its first bytes.

The terminal reads the head of EF 000A first; from it alone it learns how long
the certificate is and which serial it carries, so a card whose certificate is
already verified and cached costs one READ BINARY instead of seven.
"""

from __future__ import annotations


class DerError(ValueError):
    """The bytes are not the DER this module expects."""


def read_tlv_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, header length, value length) of the TLV at ``offset``."""
    if offset + 2 > len(data):
        raise DerError("truncated TLV header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not used in certificates")
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0 or count > 3:
        raise DerError("unsupported DER length form")
    if offset + 2 + count > len(data):
        raise DerError("truncated TLV length")
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    if length < 0x80 or (count > 1 and data[offset + 2] == 0):
        raise DerError("non-minimal DER length")
    return tag, 2 + count, length


def certificate_length(head: bytes) -> int:
    """Total DER length of a certificate from its first bytes (``30 82 HH LL``…)."""
    tag, header, length = read_tlv_header(head, 0)
    if tag != 0x30:
        raise DerError(f"certificate does not start with a SEQUENCE (tag {tag:02X})")
    return header + length


def certificate_serial(head: bytes) -> int:
    """The serial number, parsed from a prefix of a DER X.509 certificate.

    Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
    serialNumber INTEGER, ... } ... } (RFC 5280 §4.1).
    """
    tag, header, _ = read_tlv_header(head, 0)
    if tag != 0x30:
        raise DerError("certificate is not a SEQUENCE")
    offset = header
    tag, header, _ = read_tlv_header(head, offset)
    if tag != 0x30:
        raise DerError("tbsCertificate is not a SEQUENCE")
    offset += header
    tag, header, length = read_tlv_header(head, offset)
    if tag == 0xA0:  # explicit version
        offset += header + length
        tag, header, length = read_tlv_header(head, offset)
    if tag != 0x02:
        raise DerError("serialNumber is not an INTEGER")
    if length == 0 or length > 20:
        raise DerError("serialNumber length out of range (RFC 5280: at most 20 octets)")
    start = offset + header
    if start + length > len(head):
        raise DerError("truncated serialNumber")
    value = head[start : start + length]
    if value[0] & 0x80:
        raise DerError("negative serialNumber")
    return int.from_bytes(value, "big")
