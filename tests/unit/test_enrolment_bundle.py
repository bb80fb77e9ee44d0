"""The signed enrolment set: signature over every byte, acceptance (the revocation rules)."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.enrolment.acceptance import Installed, check_acceptable, resulting_content
from terminald.enrolment.bundle import (
    DOMAIN,
    HEADER_SIZE,
    SetKind,
    open_set,
    parse_header,
    read_unverified,
)
from terminald.enrolment.codec import content_digest
from terminald.enrolment.errors import (
    EnrolmentError,
    EnrolmentFormatError,
    EnrolmentRejected,
    RejectReason,
)
from terminald.enrolment.model import Credential, EnrolmentContent
from terminald.revocation.keys import TrustedKeys

from .enrolment_support import NOW, ROOT_A, signed, small_content

KEY = Ed25519PrivateKey.generate()
TRUSTED = TrustedKeys([KEY.public_key()])


def installed_of(data: bytes) -> Installed:
    header = parse_header(data)
    return Installed(header.version, header.issued_at, header.content_digest)


def test_a_full_set_opens_to_its_content_and_digest() -> None:
    content = small_content()
    opened = open_set(signed(content, KEY, 3), TRUSTED)
    assert opened.header.kind is SetKind.FULL and opened.header.version == 3
    assert opened.content == content
    assert opened.header.content_digest == content_digest(content)


def test_tampering_with_any_byte_is_refused() -> None:
    data = signed(small_content(), KEY, 1)
    for index in range(len(data)):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(EnrolmentError):
            open_set(bytes(tampered), TRUSTED)


def test_a_body_recompressed_and_resigned_by_another_key_is_unknown() -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(EnrolmentRejected) as caught:
        open_set(signed(small_content(), other, 1), TRUSTED)
    assert caught.value.reason is RejectReason.UNKNOWN_KEY


def test_a_signature_without_the_domain_does_not_verify() -> None:
    """A signature over the same bytes made for another purpose (no domain) is refused."""
    data = signed(small_content(), KEY, 1)
    body_end = len(data) - 64
    forged = data[:body_end] + KEY.sign(data[:body_end])
    with pytest.raises(EnrolmentRejected) as caught:
        open_set(forged, TRUSTED)
    assert caught.value.reason is RejectReason.BAD_SIGNATURE
    assert KEY.sign(DOMAIN + data[:body_end]) == data[body_end:]


def test_a_truncated_or_padded_set_is_malformed() -> None:
    data = signed(small_content(), KEY, 1)
    for bad in (data[:-1], data + b"\0", data[:10], b""):
        with pytest.raises(EnrolmentFormatError):
            open_set(bad, TRUSTED)


def resigned(data: bytes, **fields: int) -> bytes:
    """``data`` with header fields changed (by name), its checksum and signature redone."""
    names = ("kind", "version", "base_version", "issued", "until", "body_length", "raw_length")
    offsets = {"kind": 5, "version": 8, "base_version": 16, "issued": 24, "until": 32}
    offsets |= {"body_length": HEADER_SIZE - 12, "raw_length": HEADER_SIZE - 8}
    head = bytearray(data[: HEADER_SIZE - 4])
    for name, value in fields.items():
        assert name in names
        fmt = ">B" if name == "kind" else ">I" if name.endswith("length") else ">Q"
        struct.pack_into(fmt, head, offsets[name], value)
    signed_part = bytes(head) + struct.pack(">I", zlib.crc32(head)) + data[HEADER_SIZE:-64]
    return signed_part + KEY.sign(DOMAIN + signed_part)


def test_a_body_inflating_beyond_its_stated_length_is_refused() -> None:
    """Only a signer could do this, but the inflation stays bounded all the same."""
    data = signed(small_content(), KEY, 1)
    header = parse_header(data)
    body = data[HEADER_SIZE : HEADER_SIZE + header.body_length]
    assert len(zlib.decompress(body)) == header.raw_length
    open_set(resigned(data), TRUSTED)  # the helper itself leaves a valid set
    for wrong in (header.raw_length - 1, header.raw_length + 1, 0):
        with pytest.raises(EnrolmentFormatError, match="inflates"):
            open_set(resigned(data, raw_length=wrong), TRUSTED)
    with pytest.raises(EnrolmentRejected, match="too_large"):
        parse_header(data, max_size=len(data) - 1)


def test_a_full_body_under_a_delta_header_is_malformed() -> None:
    data = signed(small_content(), KEY, 2)
    with pytest.raises(EnrolmentFormatError, match="base"):
        open_set(resigned(data, kind=2, base_version=1), TRUSTED)


def test_a_delta_applies_to_its_base_and_gives_the_signed_content() -> None:
    base = small_content()
    new = small_content({"E3": 77})
    data = signed(new, KEY, 2, base=(1, base))
    opened = open_set(data, TRUSTED)
    assert opened.header.kind is SetKind.DELTA and opened.header.base_version == 1
    assert opened.header.base_digest == content_digest(base)
    check_acceptable(installed_of(signed(base, KEY, 1)), opened.header, NOW)
    assert resulting_content(opened, base) == new


def test_a_delta_to_another_content_of_the_same_version_is_wrong_base() -> None:
    base = small_content()
    other_base = small_content({"X": 1})
    data = signed(small_content({"E3": 77}), KEY, 2, base=(1, other_base))
    held = installed_of(signed(base, KEY, 1))
    with pytest.raises(EnrolmentRejected) as caught:
        check_acceptable(held, parse_header(data), NOW)
    assert caught.value.reason is RejectReason.WRONG_BASE and "digest" in caught.value.detail


def test_a_delta_to_another_version_or_without_a_base_is_refused() -> None:
    base = small_content()
    data = signed(small_content({"E3": 77}), KEY, 3, base=(2, base))
    held = Installed(1, NOW, content_digest(base))
    with pytest.raises(EnrolmentRejected, match="wrong_base"):
        check_acceptable(held, parse_header(data), NOW)
    with pytest.raises(EnrolmentRejected, match="no_base"):
        check_acceptable(None, parse_header(data), NOW)


def test_a_delta_whose_result_differs_from_its_signed_digest_is_refused() -> None:
    base = small_content()
    data = signed(small_content({"E3": 77}), KEY, 2, base=(1, base))
    opened = open_set(data, TRUSTED)
    drifted = dataclasses.replace(
        base, credentials={**base.credentials, (ROOT_A, 5): Credential(ROOT_A, 5, "E2")}
    )
    with pytest.raises(EnrolmentRejected) as caught:
        resulting_content(opened, drifted)
    assert caught.value.reason is RejectReason.DIGEST_MISMATCH


def test_a_delta_that_does_not_fit_its_base_is_inconsistent() -> None:
    base = small_content({"E3": 77})
    data = signed(small_content(), KEY, 2, base=(1, base))  # removes E3
    opened = open_set(data, TRUSTED)
    with pytest.raises(EnrolmentRejected) as caught:
        resulting_content(opened, small_content())  # which has no E3 to remove
    assert caught.value.reason is RejectReason.INCONSISTENT_DELTA


@pytest.mark.parametrize(
    ("installed_version", "issued_shift", "reason"),
    [
        (5, 0, RejectReason.ROLLBACK),  # same version
        (6, 0, RejectReason.ROLLBACK),  # older version
        (4, 3600, RejectReason.ROLLBACK),  # newer version issued before the installed one
    ],
)
def test_rollback_is_refused(
    installed_version: int, issued_shift: int, reason: RejectReason
) -> None:
    data = signed(small_content(), KEY, 5, issued=NOW)
    held = Installed(installed_version, NOW + timedelta(seconds=issued_shift), b"")
    with pytest.raises(EnrolmentRejected) as caught:
        check_acceptable(held, parse_header(data), NOW + timedelta(hours=2))
    assert caught.value.reason is reason


def test_expired_and_future_sets_are_refused() -> None:
    data = signed(small_content(), KEY, 1, issued=NOW, days=1)
    header = parse_header(data)
    check_acceptable(None, header, NOW + timedelta(hours=23))
    with pytest.raises(EnrolmentRejected, match="expired"):
        check_acceptable(None, header, NOW + timedelta(days=1))
    with pytest.raises(EnrolmentRejected, match="issued_in_future"):
        check_acceptable(None, header, NOW - timedelta(minutes=11))
    check_acceptable(None, header, NOW - timedelta(minutes=9))  # within the clock skew


def test_the_header_fields_are_where_the_docs_say() -> None:
    data = signed(small_content(), KEY, 7)
    magic, fmt, kind, flags, version = struct.unpack_from(">4sBBHQ", data)
    assert (magic, fmt, kind, flags, version) == (b"TDEN", 1, 1, 0, 7)
    assert read_unverified(data).header.version == 7


def test_an_empty_set_is_a_valid_set() -> None:
    data = signed(EnrolmentContent(), KEY, 1)
    assert open_set(data, TRUSTED).content == EnrolmentContent()
