"""Wire codec: Rice blocks, lists, bundles; exact round trips; damage always detected."""

from __future__ import annotations

import contextlib
import struct
import zlib

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminald.revocation import (
    RevocationError,
    RevocationFormatError,
    TrustedKeys,
    open_bundle,
    read_unverified,
    serial_array,
)
from terminald.revocation.chain import decode_chain
from terminald.revocation.codec import decode_list, encode_list
from terminald.revocation.rice import BLOCK_MAX, best_parameter, decode_block, encode_block
from terminald.revocation.serials import MAX_SERIAL

from .revocation_support import ISSUER_A, ISSUER_B, revocations, snapshot

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TRUSTED = TrustedKeys([KEY.public_key()])

serial_sets = st.sets(st.integers(0, MAX_SERIAL), max_size=300)
dense_sets = st.sets(st.integers(0, 5000), max_size=3000)


def roundtrip_list(values: set[int]) -> list[int]:
    encoded = encode_list(serial_array(values))
    decoded, end = decode_list(encoded, 0, len(encoded))
    assert end == len(encoded)
    return [int(v) for v in decoded]


@pytest.mark.parametrize(
    "values",
    [
        set(),
        {0},
        {MAX_SERIAL},
        {0, MAX_SERIAL},
        set(range(10_000)),  # gaps of 1: k = 0, several blocks
        set(range(MAX_SERIAL - 5000, MAX_SERIAL + 1)),
        set(range(0, 4 * BLOCK_MAX * 7, 7)),  # exactly four full blocks
    ],
    ids=["empty", "zero", "max", "extremes", "run", "top-run", "full-blocks"],
)
def test_list_roundtrip_edges(values: set[int]) -> None:
    assert roundtrip_list(values) == sorted(values)


@given(serial_sets | dense_sets)
def test_list_roundtrip_property(values: set[int]) -> None:
    assert roundtrip_list(values) == sorted(values)


def test_rice_parameter_is_optimal() -> None:
    rng = np.random.default_rng(7)
    gaps = rng.geometric(0.05, 4000).astype(np.int64) - 1
    k = best_parameter(gaps)
    cost = [gaps.size * (j + 1) + int(np.sum(gaps >> j)) for j in range(32)]
    assert cost[k] == min(cost)


def test_block_size_is_near_the_bound() -> None:
    # 4096 serials at 5 % density: geometric entropy is 5.73 bits per serial
    # (reference revocation-and-serial.md §0); Rice plus the block header stays within 2 %.
    rng = np.random.default_rng(1)
    values = serial_array(np.sort(rng.choice(4096 * 20, 4096, replace=False)))
    assert len(encode_block(values)) * 8 / 4096 < 5.73 * 1.02


@given(st.binary(max_size=400), st.integers(0, 50))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_block_decoder_on_garbage_raises_only_format_error(data: bytes, offset: int) -> None:
    try:
        values, end = decode_block(data, offset)
    except RevocationFormatError:
        return
    assert offset < end <= len(data)
    assert values.size <= (end - offset) * 8 + 1


@given(st.binary(max_size=600))
def test_bundle_decoder_on_garbage_raises_only_typed_errors(data: bytes) -> None:
    with pytest.raises(RevocationError):
        open_bundle(data, TRUSTED)


def _sample_bundle() -> bytes:
    content = revocations({ISSUER_A: ({1, 5, 9, 300, 70_000}, {2, 3}), ISSUER_B: ((), {77})})
    return snapshot(content, KEY, version=3)


@given(st.data())
def test_mutated_valid_bundle_fails_only_with_typed_errors(data: st.DataObject) -> None:
    bundle = bytearray(_sample_bundle())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(bundle) - 1))
        bundle[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RevocationError):
        read_unverified(bytes(bundle))


def test_every_single_bit_flip_is_detected() -> None:
    good = _sample_bundle()
    assert open_bundle(good, TRUSTED).header.version == 3
    for bit in range(len(good) * 8):
        damaged = bytearray(good)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RevocationError):
            open_bundle(bytes(damaged), TRUSTED)


def test_a_bit_flip_in_a_block_is_found_by_its_checksum_without_the_key() -> None:
    good = _sample_bundle()
    # envelope header 90 + issuer header (1 + 20 + coverage 3 + 4) + list header 12 +
    # block header 15: the byte after that is in ISSUER_A's first revoked block.
    damaged = bytearray(good)
    damaged[90 + 28 + 12 + 15] ^= 0x10
    with pytest.raises(RevocationFormatError, match="block at byte 130: checksum mismatch"):
        read_unverified(bytes(damaged))


def test_every_truncation_and_extension_is_detected() -> None:
    good = _sample_bundle()
    for length in range(len(good)):
        with pytest.raises(RevocationError):
            open_bundle(good[:length], TRUSTED)
    with pytest.raises(RevocationFormatError, match="truncated or padded"):
        open_bundle(good + b"\0", TRUSTED)


def test_block_refuses_huge_declared_lengths_before_allocating() -> None:
    head = struct.pack(">HBII", BLOCK_MAX, 3, 0, 0xFFFF_FFFF) + b"\0\0\0\0"
    with pytest.raises(RevocationFormatError, match="truncated"):
        decode_block(head, 0)


@given(
    st.integers(1, BLOCK_MAX),
    st.integers(0, 31),
    st.integers(0, MAX_SERIAL),
    st.binary(max_size=300),
    st.binary(max_size=300),
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_block_with_a_valid_checksum_but_random_streams_is_refused_or_bounded(
    count: int, k: int, first: int, unary: bytes, low: bytes
) -> None:
    # Garbage behind a correct CRC reaches the Rice decoder itself: it must still answer
    # only with RevocationFormatError, or with sorted 32-bit serials no more numerous
    # than the bits it was given.
    head = struct.pack(">HBII", count, k, first, len(unary))
    low = low[: ((count - 1) * k + 7) // 8]
    crc = zlib.crc32(low, zlib.crc32(unary, zlib.crc32(head)))
    data = head + struct.pack(">I", crc) + unary + low
    try:
        values, end = decode_block(data, 0)
    except RevocationFormatError:
        return
    assert end == len(data)
    assert values.size == count <= len(unary) * 8 + 1
    assert np.all(np.diff(values.astype(np.int64)) > 0)


@given(st.binary(max_size=300))
def test_state_file_decoder_on_garbage_raises_only_format_error(data: bytes) -> None:
    with pytest.raises(RevocationFormatError):
        decode_chain(data)
