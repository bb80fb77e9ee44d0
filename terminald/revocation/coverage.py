"""What revocation data covers for one issuer: all of it, or named CRL partitions.

J-LIS user-authentication certificates name a per-municipality CRL distribution point (a
directoryName in CRLDistributionPoints) and a CRL may be partitioned by a critical
IssuingDistributionPoint naming one such point. A CRL without an IDP speaks for every
certificate of its issuer; a partitioned CRL only for the certificates whose distribution
point it names. A card whose partition the data does not cover has no answer, and the
terminal must refuse it as unavailable, never call it good (DESIGN.md §5).

Partition names are kept as the DER of the X.501 Name and matched byte for byte. Why not
RFC 5280 §7.1 name matching (case folding, whitespace, string types)? An exact match can
only err towards "not covered", which fails closed; a looser one could let a lookalike name
cover a card it does not. J-LIS encodes the CRLDP in a certificate and the IDP of the CRL
for that point from one system, so equal names are equal bytes. People see RFC 4514 text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

MAX_NAME_LENGTH = 1024
MAX_PARTITIONS = 4096


# -- DER Names: just enough to check a name's structure and show it -------------------------


def _tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER TLV at ``offset``; ValueError if malformed."""
    if offset + 2 > end:
        raise ValueError("truncated TLV")
    tag, first = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tag")
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 2 or start + count > end:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        if length < 0x80 or (count == 2 and length < 0x100):
            raise ValueError("non-minimal DER length")
        start += count
    if start + length > end:
        raise ValueError("TLV runs past its container")
    return tag, start, start + length


def _oid_text(body: bytes) -> str:
    if not body or body[-1] & 0x80:
        raise ValueError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in body:
        if value == 0 and byte == 0x80:
            raise ValueError("non-minimal OID arc")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in (first, arcs[0] - 40 * first, *arcs[1:]))


_STRINGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


def _attributes(der: bytes) -> list[list[tuple[str, bytes, int]]]:
    """RDNs of a DER Name as (OID, value bytes, value tag); ValueError unless well formed."""
    tag, offset, end = _tlv(der, 0, len(der))
    if tag != 0x30 or end != len(der):
        raise ValueError("not one DER SEQUENCE")
    rdns = []
    while offset < end:
        tag, rdn_at, rdn_end = _tlv(der, offset, end)
        if tag != 0x31 or rdn_at == rdn_end:
            raise ValueError("an RDN is not a non-empty SET")
        rdn = []
        while rdn_at < rdn_end:
            tag, atv_at, atv_end = _tlv(der, rdn_at, rdn_end)
            if tag != 0x30:
                raise ValueError("an attribute is not a SEQUENCE")
            tag, oid_at, oid_end = _tlv(der, atv_at, atv_end)
            if tag != 0x06:
                raise ValueError("an attribute type is not an OID")
            vtag, value_at, value_end = _tlv(der, oid_end, atv_end)
            if value_end != atv_end:
                raise ValueError("stray bytes in an attribute")
            rdn.append((_oid_text(der[oid_at:oid_end]), der[value_at:value_end], vtag))
            rdn_at = atv_end
        rdns.append(rdn)
        offset = rdn_end
    return rdns


def check_name(der: bytes) -> None:
    """Raise ValueError unless ``der`` is a well-formed DER Name of a usable size."""
    if not 1 <= len(der) <= MAX_NAME_LENGTH:
        raise ValueError(f"a partition name must be 1..{MAX_NAME_LENGTH} bytes, got {len(der)}")
    _attributes(der)


def name_der(name: x509.Name) -> bytes:
    return name.public_bytes()


def name_text(der: bytes) -> str:
    """RFC 4514 text of a DER Name for people; ``der:<hex>`` if it cannot be shown."""
    try:
        rdns = []
        for rdn in _attributes(der):
            attributes = []
            for oid, value, tag in rdn:
                codec = _STRINGS.get(tag)
                if codec is None:
                    raise ValueError("unsupported string type")
                attributes.append(
                    x509.NameAttribute(x509.ObjectIdentifier(oid), value.decode(codec))
                )
            rdns.append(x509.RelativeDistinguishedName(attributes))
        return x509.Name(rdns).rfc4514_string()
    except ValueError:
        return f"der:{der.hex()}"


def _upper_types(text: str) -> str:
    """``text`` with each attribute type's short name in upper case, values untouched.

    RFC 4514 §3 takes types as RFC 4512 descriptors, which are case-insensitive (§1.4):
    ``cn=`` is ``CN=``. cryptography only knows the upper-case spellings. A type starts
    the text or follows an unescaped ``,`` or ``+`` and ends at ``=``; a ``\\`` in a
    value escapes the next character.
    """
    out: list[str] = []
    in_type, escaped = True, False
    for char in text:
        if in_type:
            if char == "=":
                in_type = False
            out.append(char.upper() if in_type else char)
            continue
        out.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            in_type = True
    return "".join(out)


def rfc4514_name(text: str) -> x509.Name:
    """Parse RFC 4514 text (attribute types in any case); ValueError with a reason."""
    try:
        name = x509.Name.from_rfc4514_string(_upper_types(text))
    except ValueError as exc:
        reason = str(exc) or "expected TYPE=value pairs separated by ',', such as CN=...,OU=..."
        raise ValueError(f"{text!r} is not an RFC 4514 name ({reason})") from None
    if not name.rdns:
        raise ValueError("an empty name names no partition")
    return name


def parse_name_text(text: str) -> bytes:
    """The DER of an RFC 4514 name, encoded as cryptography and J-LIS do (C as
    PrintableString, the rest UTF8String); attribute types in any case."""
    return name_der(rfc4514_name(text))


# -- coverage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """The whole issuer (``partitions`` is None) or a non-empty set of partition names (DER)."""

    partitions: frozenset[bytes] | None = None

    def __post_init__(self) -> None:
        if self.partitions is None:
            return
        if not 1 <= len(self.partitions) <= MAX_PARTITIONS:
            raise ValueError(f"partition coverage names 1..{MAX_PARTITIONS} partitions")
        for name in self.partitions:
            check_name(name)

    @classmethod
    def of(cls, names: Iterable[bytes]) -> Coverage:
        return cls(frozenset(names))

    @property
    def whole(self) -> bool:
        return self.partitions is None

    def covers(self, points: Sequence[bytes]) -> bool:
        """Whether data with this coverage answers for a certificate naming ``points``.

        A certificate without a distribution point is covered only by the whole issuer;
        with several, one named partition suffices (each point's CRL is complete for it).
        """
        if self.partitions is None:
            return True
        return any(point in self.partitions for point in points)

    def union(self, other: Coverage) -> Coverage:
        if self.partitions is None or other.partitions is None:
            return WHOLE
        return Coverage(self.partitions | other.partitions)

    def names(self) -> list[bytes]:
        """Partition names in canonical (bytewise) order; empty for the whole issuer."""
        return sorted(self.partitions or ())

    def describe(self) -> list[str]:
        return [name_text(n) for n in self.names()]


WHOLE = Coverage()


def coverage_change(old: Coverage, new: Coverage) -> Coverage | None:
    """What a delta adds to go from ``old`` to ``new``: None (nothing), WHOLE, or partitions.

    Raises ValueError if ``new`` covers less than ``old``: a delta only widens coverage.
    """
    if old == new:
        return None
    if new.partitions is None:
        return WHOLE
    if old.partitions is None or not old.partitions <= new.partitions:
        raise ValueError("coverage shrinks")
    return Coverage(new.partitions - old.partitions)


def widen(old: Coverage | None, added: Coverage | None) -> Coverage:
    """``old`` (None: an issuer new to the set) with a delta's ``added``; ValueError if unsound.

    Exact, like the serial lists: a delta adds only what the base lacks, so a delta
    built for another base does not fit.
    """
    if added is None:
        if old is None:
            raise ValueError("an issuer new in a delta must state its coverage")
        return old
    if old is None:
        return added
    if old.partitions is None:
        raise ValueError("widens coverage that is already the whole issuer")
    if added.partitions is None:
        return WHOLE
    if old.partitions & added.partitions:
        raise ValueError("adds partitions the base already covers")
    return Coverage(old.partitions | added.partitions)
