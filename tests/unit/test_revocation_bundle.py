"""Signed bundles, deltas and the acceptance rules (rollback, freeze, base, keys)."""

from __future__ import annotations

from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from terminald.revocation import (
    BundleKind,
    BundleRejected,
    Installed,
    RejectReason,
    RevocationFormatError,
    TrustedKeys,
    apply_delta,
    check_acceptable,
    diff,
    key_id_of,
    open_bundle,
)
from terminald.revocation.chain import decode_chain, encode_chain, replay
from terminald.revocation.keys import load_public_keys, public_key_pem

from .revocation_support import DAY, ISSUER_A, ISSUER_B, T0, delta, revocations, snapshot

_NAME = bytes.fromhex("3011310f300d06035504030c064b69796f7365")  # CN=Kiyose
OLD_KEY = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
NEW_KEY = Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32)
BASE = revocations({ISSUER_A: ({10, 20, 30}, {40}), ISSUER_B: ((), ())})
NEXT = revocations({ISSUER_A: ({10, 30, 40, 50}, {60}), ISSUER_B: ({7}, ())})


def test_snapshot_roundtrip_keeps_header_and_content() -> None:
    data = snapshot(BASE, OLD_KEY, version=5)
    bundle = open_bundle(data, TrustedKeys([OLD_KEY.public_key()]))
    assert bundle.header.kind is BundleKind.SNAPSHOT
    assert (bundle.header.version, bundle.header.base_version) == (5, 0)
    assert bundle.header.issued_at == T0
    assert bundle.header.valid_until == T0 + 7 * DAY
    assert bundle.header.signer_key_id == key_id_of(OLD_KEY.public_key())
    assert bundle.header.size == len(data)
    assert bundle.snapshot.status(ISSUER_A, 40) == "hold"
    assert bundle.snapshot.status(ISSUER_A, 20) == "revoked"
    assert bundle.snapshot.status(ISSUER_B, 20) == "good"
    assert bundle.snapshot.status(b"\x99", 20) is None


def test_delta_moves_hold_to_revoked_and_removes_expired() -> None:
    change = diff(BASE, NEXT)
    assert apply_delta(BASE, change) == NEXT
    data = delta(change, OLD_KEY, version=6, base=5)
    opened = open_bundle(data, TrustedKeys([OLD_KEY.public_key()]))
    assert opened.header.base_version == 5
    assert apply_delta(BASE, opened.delta) == NEXT


small = st.sets(st.integers(0, 2000), max_size=60)


@given(small, small, small, small)
def test_diff_then_apply_gives_the_new_set(
    r1: set[int], h1: set[int], r2: set[int], h2: set[int]
) -> None:
    base = revocations({ISSUER_A: (r1, h1 - r1)})
    new = revocations({ISSUER_A: (r2, h2 - r2), ISSUER_B: (r1, ())})
    change = diff(base, new)
    data = delta(change, OLD_KEY, version=2, base=1)
    opened = open_bundle(data, TrustedKeys([OLD_KEY.public_key()]))
    assert apply_delta(base, opened.delta) == new


def test_delta_against_the_wrong_content_is_refused() -> None:
    change = diff(BASE, NEXT)
    other_base = revocations({ISSUER_A: ({11}, ()), ISSUER_B: ((), ())})
    with pytest.raises(RevocationFormatError, match=r"built from other data"):
        apply_delta(other_base, change)


def test_a_delta_built_against_another_set_of_the_same_version_is_refused() -> None:
    # The reviewer's case: the terminal holds v1-real (nothing revoked); the delta was built
    # against v1-other (same version, revokes 16777225). v2 revokes 16777225 and 16777220,
    # so the delta only adds 16777220: it fits v1-real's content, and applied there it
    # would leave 16777225 GOOD. The base digest in the signed header refuses it.
    real = revocations({ISSUER_A: ((), ())})
    other = revocations({ISSUER_A: ({16777225}, ())})
    v2 = revocations({ISSUER_A: ({16777225, 16777220}, ())})
    trusted = TrustedKeys([OLD_KEY.public_key()])
    data = delta(diff(other, v2), OLD_KEY, version=2, base=1)
    opened = open_bundle(data, trusted)
    assert opened.header.base_digest == other.digest() != real.digest()
    with pytest.raises(RevocationFormatError, match="built from other data"):
        apply_delta(real, opened.delta)
    assert apply_delta(other, opened.delta) == v2
    chain = [snapshot(real, OLD_KEY, 1), data]
    with pytest.raises(RevocationFormatError, match="built from other data"):
        replay(chain, trusted)


def test_the_base_digest_is_of_content_so_a_replayed_base_matches() -> None:
    # The terminal's version N may come from snapshot + deltas: the digest is of the set,
    # so a delta built against the snapshot of version N applies to the replayed N.
    third = revocations({ISSUER_A: ({10, 30, 50}, {60}), ISSUER_B: ({7, 8}, ())})
    trusted = TrustedKeys([OLD_KEY.public_key()])
    chain = [
        snapshot(BASE, OLD_KEY, 5),
        delta(diff(BASE, NEXT), OLD_KEY, 6, 5),
        delta(diff(NEXT, third), OLD_KEY, 7, 6, issued=T0 + DAY),
    ]
    assert replay(chain, trusted).revocations == third
    # Coverage is part of the content: same serials, other coverage, other digest.
    from terminald.revocation import IssuerEntries
    from terminald.revocation.coverage import Coverage

    entries = BASE.issuers[ISSUER_A]
    partitioned = dict(BASE.issuers) | {
        ISSUER_A: IssuerEntries(entries.revoked, entries.hold, Coverage.of([_NAME]))
    }
    from terminald.revocation import RevocationSet

    assert RevocationSet(partitioned).digest() != BASE.digest()


def test_a_snapshot_with_a_base_digest_or_a_delta_without_one_is_refused() -> None:
    import struct
    import zlib

    from terminald.revocation.bundle import HEADER_SIZE

    good = bytearray(snapshot(BASE, OLD_KEY, 5))
    good[48] ^= 1  # first byte of the base digest
    struct.pack_into(">I", good, HEADER_SIZE - 4, zlib.crc32(bytes(good[: HEADER_SIZE - 4])))
    with pytest.raises(RevocationFormatError, match="base digest"):
        open_bundle(bytes(good), TrustedKeys([OLD_KEY.public_key()]))


def test_format_2_bundles_are_refused_with_a_rebuild_message() -> None:
    import struct
    import zlib

    from terminald.revocation.bundle import HEADER_SIZE

    old = bytearray(snapshot(BASE, OLD_KEY, 5))
    old[4] = 2
    struct.pack_into(">I", old, HEADER_SIZE - 4, zlib.crc32(bytes(old[: HEADER_SIZE - 4])))
    with pytest.raises(RevocationFormatError, match=r"format 2 .* rebuild it"):
        open_bundle(bytes(old), TrustedKeys([OLD_KEY.public_key()]))


def test_diff_refuses_to_drop_an_issuer() -> None:
    with pytest.raises(ValueError, match="in the base but not in the new set"):
        diff(BASE, revocations({ISSUER_A: ((), ())}))


def test_unknown_key_and_rotation() -> None:
    data = snapshot(BASE, NEW_KEY, version=1)
    with pytest.raises(BundleRejected) as info:
        open_bundle(data, TrustedKeys([OLD_KEY.public_key()]))
    assert info.value.reason is RejectReason.UNKNOWN_KEY
    both = TrustedKeys([OLD_KEY.public_key(), NEW_KEY.public_key()])
    assert open_bundle(data, both).header.version == 1
    assert open_bundle(snapshot(BASE, OLD_KEY, version=1), both).header.version == 1


def test_forged_signature_with_a_trusted_key_id_is_refused() -> None:
    good = snapshot(BASE, OLD_KEY, version=1)
    forged = good[:-64] + NEW_KEY.sign(good[:-64])
    with pytest.raises(BundleRejected) as info:
        open_bundle(forged, TrustedKeys([OLD_KEY.public_key()]))
    assert info.value.reason is RejectReason.BAD_SIGNATURE


def test_public_key_file_may_hold_several_keys() -> None:
    pem = public_key_pem(OLD_KEY.public_key()) + public_key_pem(NEW_KEY.public_key())
    assert len(TrustedKeys(load_public_keys(pem, "keys.pem"))) == 2


@pytest.mark.parametrize(
    ("installed", "incoming", "now", "reason"),
    [
        (Installed(5, T0), snapshot(BASE, OLD_KEY, 5), T0, RejectReason.ROLLBACK),
        (Installed(5, T0), snapshot(BASE, OLD_KEY, 4), T0, RejectReason.ROLLBACK),
        (Installed(5, T0 + DAY), snapshot(BASE, OLD_KEY, 6), T0 + DAY, RejectReason.ROLLBACK),
        (Installed(5, T0), snapshot(BASE, OLD_KEY, 6), T0 + 8 * DAY, RejectReason.EXPIRED),
        (None, snapshot(BASE, OLD_KEY, 6, issued=T0 + DAY), T0, RejectReason.ISSUED_IN_FUTURE),
        (None, delta(diff(BASE, NEXT), OLD_KEY, 6, 5), T0, RejectReason.NO_BASE),
        (Installed(4, T0), delta(diff(BASE, NEXT), OLD_KEY, 6, 5), T0, RejectReason.WRONG_BASE),
    ],
    ids=["replay", "older", "issued-earlier", "freeze", "future", "delta-no-base", "wrong-base"],
)
def test_acceptance_refusals(
    installed: Installed | None, incoming: bytes, now: datetime, reason: RejectReason
) -> None:
    header = open_bundle(incoming, TrustedKeys([OLD_KEY.public_key()])).header
    with pytest.raises(BundleRejected) as info:
        check_acceptable(installed, header, now)
    assert info.value.reason is reason


def test_acceptance_allows_the_next_delta_and_a_newer_snapshot() -> None:
    trusted = TrustedKeys([OLD_KEY.public_key()])
    d = open_bundle(delta(diff(BASE, NEXT), OLD_KEY, 6, 5), trusted).header
    check_acceptable(Installed(5, T0), d, T0 + DAY)
    s = open_bundle(snapshot(NEXT, OLD_KEY, 9, issued=T0 + DAY), trusted).header
    check_acceptable(Installed(6, T0), s, T0 + DAY)


def test_chain_replays_snapshot_and_deltas() -> None:
    trusted = TrustedKeys([OLD_KEY.public_key()])
    third = revocations({ISSUER_A: ({10, 30, 40, 50, 51}, ()), ISSUER_B: ({7}, ())})
    bundles = [
        snapshot(BASE, OLD_KEY, 5),
        delta(diff(BASE, NEXT), OLD_KEY, 6, 5),
        delta(diff(NEXT, third), OLD_KEY, 7, 6, issued=T0 + DAY),
    ]
    replayed = replay(decode_chain(encode_chain(bundles)), trusted)
    assert replayed.latest.version == 7 and replayed.snapshot.version == 5
    assert replayed.revocations == third
    with pytest.raises(BundleRejected) as info:
        replay([bundles[0], bundles[2]], trusted)
    assert info.value.reason is RejectReason.WRONG_BASE


def test_chain_file_damage_is_detected() -> None:
    encoded = encode_chain([snapshot(BASE, OLD_KEY, 5)])
    for length in range(len(encoded)):
        with pytest.raises(RevocationFormatError):
            decode_chain(encoded[:length])
    flipped = bytearray(encoded)
    flipped[len(encoded) // 2] ^= 1
    with pytest.raises(RevocationFormatError, match="digest mismatch"):
        decode_chain(bytes(flipped))


def test_encode_refuses_what_the_header_cannot_hold() -> None:
    from datetime import UTC

    from terminald.revocation import encode_bundle

    for version in (0, 2**64):
        with pytest.raises(ValueError, match="version"):
            snapshot(BASE, OLD_KEY, version)
    with pytest.raises(ValueError, match="9999"):
        encode_bundle(
            BASE,
            version=1,
            issued_at=T0,
            valid_until=datetime(9999, 12, 31, 23, tzinfo=UTC),
            signing_key=OLD_KEY,
        )
