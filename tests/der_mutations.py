"""Structured mutations of a DER certificate for the property tests (hypothesis).

A certificate is parsed into a tree of TLVs; a mutation changes the tree (duplicate,
drop, truncate or re-tag an extension, swap an algorithm identifier, ...) and
:func:`encode` writes it back with correct lengths, so the mutation reaches the
decoder of that field instead of failing at the outer SEQUENCE. Raw byte flips,
length tweaks and truncation work on the bytes themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import strategies as st


@dataclass
class Tlv:
    tag: int
    value: bytes = b""  # primitive content
    children: list[Tlv] | None = None  # constructed content
    offset: int = 0  # where the header starts in the original bytes
    header: int = 0  # header length in the original bytes

    def copy(self) -> Tlv:
        kids = None if self.children is None else [c.copy() for c in self.children]
        return Tlv(self.tag, self.value, kids, self.offset, self.header)


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(node: Tlv) -> bytes:
    content = node.value if node.children is None else b"".join(encode(c) for c in node.children)
    return bytes([node.tag]) + _length(len(content)) + content


def parse(data: bytes, offset: int = 0, end: int | None = None) -> list[Tlv]:
    """Every TLV in ``data[offset:end]``; constructed ones (bit 0x20) recursively."""
    end = len(data) if end is None else end
    nodes = []
    while offset < end:
        tag = data[offset]
        first = data[offset + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            count = first & 0x7F
            length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
            header = 2 + count
        start = offset + header
        node = Tlv(tag, offset=offset, header=header)
        if tag & 0x20:
            node.children = parse(data, start, start + length)
        else:
            node.value = data[start : start + length]
        nodes.append(node)
        offset = start + length
    return nodes


@dataclass
class Certificate:
    """The three parts of a parsed certificate and handles on the interesting nodes."""

    root: Tlv
    tbs: Tlv = field(init=False)
    extensions: list[Tlv] = field(init=False)  # each Extension SEQUENCE

    def __post_init__(self) -> None:
        assert self.root.children is not None
        self.tbs = self.root.children[0]
        assert self.tbs.children is not None
        wrapper = next(c for c in self.tbs.children if c.tag == 0xA3)
        assert wrapper.children is not None and wrapper.children[0].children is not None
        self.extensions = wrapper.children[0].children

    def algorithm_slots(self) -> list[Tlv]:
        """The OID nodes of: tbs signature, SPKI algorithm, outer signatureAlgorithm."""
        assert self.tbs.children is not None and self.root.children is not None
        tbs_sig = self.tbs.children[2]
        spki = self.tbs.children[6]
        outer = self.root.children[1]
        assert spki.children is not None
        slots = [tbs_sig, spki.children[0], outer]
        return [s.children[0] for s in slots if s.children]


# Algorithm identifiers a card might carry: others' keys and hashes, broken forms.
ODD_OIDS = [
    bytes.fromhex("2a864886f70d01010b"),  # sha256WithRSAEncryption (the real one)
    bytes.fromhex("2a864886f70d010104"),  # md5WithRSAEncryption
    bytes.fromhex("2a864886f70d010105"),  # sha1WithRSAEncryption
    bytes.fromhex("2a864886f70d01010a"),  # RSASSA-PSS
    bytes.fromhex("2a864886f70d010101"),  # rsaEncryption
    bytes.fromhex("2a8648ce3d040302"),  # ecdsa-with-SHA256
    bytes.fromhex("2a8648ce3d0201"),  # id-ecPublicKey
    bytes.fromhex("2b6570"),  # Ed25519
    bytes.fromhex("2b6571"),  # Ed448
    bytes.fromhex("2a8648ce380403"),  # dsa-with-sha1
    b"",  # empty OID
    bytes.fromhex("80"),  # non-minimal arc
    bytes.fromhex("2a864886f70d01010b00"),  # trailing byte
]


def resign(root: Tlv, key: rsa.RSAPrivateKey) -> Tlv:
    """The certificate with its signature recomputed over the (mutated) TBS: the
    mutation then reaches the checks behind the signature (usage, CRLDP, time)."""
    assert root.children is not None
    tbs = encode(root.children[0])
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    out = root.copy()
    assert out.children is not None
    out.children[2] = Tlv(0x03, b"\x00" + signature)
    return out


@st.composite
def mutated(draw: st.DrawFn, der: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """One certificate mutation of ``der`` (signed by ``key``'s root when re-signed)."""
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "length",
                "truncate",
                "duplicate_extension",
                "drop_extension",
                "truncate_extension",
                "retag_extension",
                "mangle_extension_value",
                "algorithm",
                "retag_any",
            ]
        )
    )
    if kind == "flip":
        data = bytearray(der)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "truncate":
        return der[: draw(st.integers(0, len(der) - 1))]
    if kind == "length":
        # Change one length byte of a TLV anywhere in the tree, by a little or a lot.
        nodes: list[Tlv] = []

        def walk(items: list[Tlv]) -> None:
            for item in items:
                nodes.append(item)
                walk(item.children or [])

        walk(parse(der))
        node = draw(st.sampled_from(nodes))
        at = node.offset + node.header - 1
        data = bytearray(der)
        data[at] = (data[at] + draw(st.sampled_from([1, -1, 2, 0x7F, 0x80, 0xFF]))) % 256
        return bytes(data)
    cert = Certificate(parse(der)[0])
    extensions = cert.extensions
    index = draw(st.integers(0, len(extensions) - 1))
    chosen = extensions[index]
    if kind == "duplicate_extension":
        extensions.insert(draw(st.integers(0, len(extensions))), chosen.copy())
    elif kind == "drop_extension":
        del extensions[index]
    elif kind in ("truncate_extension", "mangle_extension_value", "retag_extension"):
        assert chosen.children is not None
        octets = chosen.children[-1]  # extnValue OCTET STRING
        inner = octets.value
        if kind == "truncate_extension":
            octets.value = inner[: draw(st.integers(0, max(0, len(inner) - 1)))]
        elif kind == "mangle_extension_value":
            data = bytearray(inner)
            if data:
                data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
            octets.value = bytes(data)
        else:
            tag = draw(st.sampled_from([0x04, 0x03, 0x30, 0x31, 0x0C, 0x80, 0xA0, 0x05]))
            if draw(st.booleans()) or not inner:
                octets.tag = tag  # the extnValue wrapper itself
            else:
                octets.value = bytes([tag]) + inner[1:]  # the extension's own outer tag
    elif kind == "algorithm":
        slot = draw(st.sampled_from(cert.algorithm_slots()))
        slot.value = draw(st.sampled_from(ODD_OIDS))
    else:  # retag_any: one TLV of the TBS gets another tag
        assert cert.tbs.children is not None
        victim = draw(st.sampled_from(cert.tbs.children))
        victim.tag = draw(st.integers(0, 255))
        if not victim.tag & 0x20 and victim.children is not None:
            victim.value, victim.children = b"".join(encode(c) for c in victim.children), None
        elif victim.tag & 0x20 and victim.children is None:
            victim.tag &= ~0x20
    root = resign(cert.root, key) if draw(st.booleans()) else cert.root
    return encode(root)
