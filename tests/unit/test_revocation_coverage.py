"""Coverage: per issuer, the whole issuer or CRL partitions, on the wire and in the store."""

from __future__ import annotations

import contextlib
import logging
import struct
import zlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from terminald.core.revocation_check import RevocationState
from terminald.revocation import (
    IssuerEntries,
    RevocationDelta,
    RevocationError,
    RevocationFormatError,
    RevocationSet,
    TrustedKeys,
    apply_delta,
    diff,
    open_bundle,
    read_unverified,
    serial_array,
)
from terminald.revocation.bundle import HEADER_SIZE
from terminald.revocation.chain import encode_chain
from terminald.revocation.codec import decode_coverage, encode_coverage
from terminald.revocation.coverage import (
    WHOLE,
    Coverage,
    check_name,
    coverage_change,
    name_text,
    parse_name_text,
)
from terminald.revocation.serials import IssuerChanges, empty_serials
from terminald.store.revocation_store import RevocationStore, RevocationStoreConfig

from .revocation_support import DAY, ISSUER_A, ISSUER_B, T0, delta, snapshot

KEY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
TRUSTED = TrustedKeys([KEY.public_key()])


def town(city: str, prefecture: str = "Tokyo") -> bytes:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, prefecture),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{city} CRLDP"),
        ]
    )
    return name.public_bytes()


KIYOSE, SAPPORO, OSAKA = town("Kiyose-shi"), town("Sapporo-shi", "Hokkaido"), town("Osaka-shi")


def entries(revoked: set[int], hold: set[int], coverage: Coverage = WHOLE) -> IssuerEntries:
    return IssuerEntries(serial_array(revoked), serial_array(hold), coverage)


def sample() -> RevocationSet:
    return RevocationSet(
        {
            ISSUER_A: entries({1, 5, 9}, {2}, Coverage.of([KIYOSE, SAPPORO])),
            ISSUER_B: entries(set(), {77}),
        }
    )


# -- names ---------------------------------------------------------------------------------


def test_names_round_trip_between_der_and_rfc4514() -> None:
    text = name_text(KIYOSE)
    assert text == "CN=Kiyose-shi CRLDP,OU=Tokyo,O=JPKI-TEST,C=JP"
    assert parse_name_text(text) == KIYOSE
    assert name_text(b"\x30\x03\x31\x01") == "der:30033101"  # malformed: shown, not trusted


@pytest.mark.parametrize(
    "der",
    [b"", b"\x31\x00", b"\x30\x01", b"\x30\x02\x31\x00", b"\x30\x00\x00", b"\x30" + bytes(2000)],
    ids=["empty", "set", "short", "empty-rdn", "stray", "huge"],
)
def test_malformed_names_are_refused(der: bytes) -> None:
    with pytest.raises(ValueError):
        check_name(der)


@given(st.binary(max_size=80))
def test_name_checker_is_total(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        check_name(data)
    name_text(data)  # never raises


def test_coverage_rules() -> None:
    assert WHOLE.covers(()) and WHOLE.covers([OSAKA])
    part = Coverage.of([KIYOSE])
    assert part.covers([KIYOSE]) and part.covers([OSAKA, KIYOSE])
    assert not part.covers(()) and not part.covers([OSAKA])
    assert part.union(Coverage.of([OSAKA])) == Coverage.of([KIYOSE, OSAKA])
    assert part.union(WHOLE) == WHOLE  # a whole-issuer CRL covers every partition
    assert coverage_change(part, Coverage.of([KIYOSE, OSAKA])) == Coverage.of([OSAKA])
    assert coverage_change(part, WHOLE) == WHOLE
    assert coverage_change(part, part) is None
    for narrower in ((WHOLE, part), (Coverage.of([KIYOSE, OSAKA]), part)):
        with pytest.raises(ValueError, match="shrinks"):
            coverage_change(*narrower)
    with pytest.raises(ValueError):
        Coverage(frozenset())


# -- wire ----------------------------------------------------------------------------------


def test_snapshot_round_trip_keeps_coverage() -> None:
    data = snapshot(sample(), KEY, 1)
    opened = open_bundle(data, TRUSTED).snapshot
    assert opened == sample()
    assert opened.issuers[ISSUER_A].coverage == Coverage.of([KIYOSE, SAPPORO])
    assert opened.issuers[ISSUER_B].coverage is WHOLE or opened.issuers[ISSUER_B].coverage.whole


def test_coverage_encoding_is_canonical() -> None:
    part = Coverage.of([SAPPORO, KIYOSE])
    encoded = encode_coverage(part)
    assert decode_coverage(encoded, 0, len(encoded), delta=False) == (part, len(encoded))
    names = sorted([KIYOSE, SAPPORO])
    swapped = struct.pack(">BH", 2, 2) + b"".join(
        struct.pack(">H", len(n)) + n for n in reversed(names)
    )
    with pytest.raises(RevocationFormatError, match="out of order"):
        decode_coverage(swapped, 0, len(swapped), delta=False)
    for bad in (
        struct.pack(">BH", 0, 0),  # "unchanged" is for deltas only
        struct.pack(">BH", 1, 1),  # whole carries no names
        struct.pack(">BH", 2, 0),  # partitions need at least one
        struct.pack(">BH", 3, 0),
        struct.pack(">BH", 2, 0xFFFF),
    ):
        with pytest.raises(RevocationFormatError):
            decode_coverage(bad, 0, len(bad), delta=False)
    assert decode_coverage(struct.pack(">BH", 0, 0), 0, 3, delta=True) == (None, 3)


def test_a_bundle_with_a_malformed_name_behind_a_valid_checksum_is_refused() -> None:
    # A signed bundle whose issuer header (CRC fixed up) carries a name that is not DER.
    head = bytes([len(ISSUER_A)]) + ISSUER_A + struct.pack(">BHH", 2, 1, 3) + b"\x30\x05\x31"
    empty_list = struct.pack(">II", 0, 0) + struct.pack(">I", zlib.crc32(struct.pack(">II", 0, 0)))
    body = head + struct.pack(">I", zlib.crc32(head)) + empty_list * 2  # revoked, on hold
    good = snapshot(RevocationSet({ISSUER_A: entries(set(), set())}), KEY, 1)
    envelope = bytearray(good[:HEADER_SIZE])
    struct.pack_into(">I", envelope, HEADER_SIZE - 10, len(body))
    struct.pack_into(">I", envelope, HEADER_SIZE - 4, zlib.crc32(bytes(envelope[:-4])))
    signed = bytes(envelope) + body
    with pytest.raises(RevocationFormatError, match="bad partition name"):
        open_bundle(signed + KEY.sign(signed), TRUSTED)


def test_every_single_bit_flip_and_truncation_of_a_coverage_bundle_is_detected() -> None:
    good = snapshot(sample(), KEY, 2)
    for bit in range(len(good) * 8):
        damaged = bytearray(good)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(RevocationError):
            open_bundle(bytes(damaged), TRUSTED)
    for length in range(len(good)):
        with pytest.raises(RevocationError):
            open_bundle(good[:length], TRUSTED)


@given(st.data())
def test_mutated_coverage_bundles_fail_only_with_typed_errors(data: st.DataObject) -> None:
    bundle = bytearray(snapshot(sample(), KEY, 2))
    start = HEADER_SIZE + 1 + len(ISSUER_A)  # into ISSUER_A's coverage
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(start, start + 120))
        bundle[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RevocationError):
        read_unverified(bytes(bundle))


def test_a_format_1_bundle_is_refused_with_a_rebuild_message() -> None:
    old = bytearray(snapshot(sample(), KEY, 1))
    old[4] = 1
    struct.pack_into(">I", old, HEADER_SIZE - 4, zlib.crc32(bytes(old[: HEADER_SIZE - 4])))
    with pytest.raises(RevocationFormatError, match="rebuild it with this version"):
        read_unverified(bytes(old))


partition_sets = st.frozensets(st.sampled_from([KIYOSE, SAPPORO, OSAKA]), min_size=1)
coverages = st.one_of(st.just(WHOLE), partition_sets.map(Coverage))


@given(coverages, coverages, st.sets(st.integers(0, 500)), st.sets(st.integers(0, 500)))
def test_deltas_round_trip_and_widen_coverage(
    old: Coverage, new: Coverage, revoked_old: set[int], revoked_new: set[int]
) -> None:
    base = RevocationSet({ISSUER_A: entries(revoked_old, set(), old)})
    target = RevocationSet(
        {ISSUER_A: entries(revoked_new, set(), new), ISSUER_B: entries({3}, set(), new)}
    )
    try:
        change = diff(base, target)
    except ValueError as exc:  # only a narrowing is refused
        assert "covers less" in str(exc)
        widens = new.whole or (old.partitions is not None and old.partitions <= set(new.names()))
        assert not widens
        return
    data = delta(change, KEY, 2, 1)
    opened = open_bundle(data, TRUSTED).delta
    assert opened == change
    assert apply_delta(base, opened) == target


def test_a_delta_that_does_not_fit_the_base_coverage_is_refused() -> None:
    empty = empty_serials()
    base = RevocationSet({ISSUER_A: entries(set(), set(), Coverage.of([KIYOSE]))})
    for added, match in (
        (Coverage.of([KIYOSE]), "already covers"),
        (None, None),  # unchanged: fine
    ):
        change = RevocationDelta(
            {ISSUER_A: IssuerChanges(empty, empty, empty, empty, added)}, base.digest()
        )
        if match is None:
            assert apply_delta(base, change) == base
        else:
            with pytest.raises(RevocationFormatError, match=match):
                apply_delta(base, change)
    whole = RevocationSet({ISSUER_A: entries(set(), set())})
    widen = RevocationDelta(
        {ISSUER_A: IssuerChanges(empty, empty, empty, empty, WHOLE)}, whole.digest()
    )
    with pytest.raises(RevocationFormatError, match="already the whole issuer"):
        apply_delta(whole, widen)
    new_issuer = RevocationDelta(
        {ISSUER_B: IssuerChanges(empty, empty, empty, empty, None)}, base.digest()
    )
    with pytest.raises(RevocationFormatError, match="must state its coverage"):
        apply_delta(base, new_issuer)


def test_status_and_covers_follow_the_distribution_points() -> None:
    content = sample()
    assert content.status(ISSUER_A, 1, [KIYOSE]) == "revoked"
    assert content.status(ISSUER_A, 3, [SAPPORO]) == "good"
    assert content.status(ISSUER_A, 1, [OSAKA]) is None
    assert content.status(ISSUER_A, 1) is None  # no CRLDP: partitions do not cover it
    assert content.status(ISSUER_B, 77) == "hold"  # whole issuer covers a card without CRLDP
    assert not content.covers(ISSUER_A, [OSAKA]) and content.covers(ISSUER_B, [OSAKA])


# -- the store -----------------------------------------------------------------------------


def store_with(tmp_path: Path, *bundles: bytes, creating: bool = False) -> RevocationStore:
    config = RevocationStoreConfig(tmp_path / "rev.state", TRUSTED, creating=creating)
    store = RevocationStore(config)
    for bundle in bundles:
        store.apply(bundle, T0)
    return store


def test_store_refuses_a_card_whose_partition_is_not_covered(tmp_path: Path) -> None:
    store = store_with(tmp_path, snapshot(sample(), KEY, 1))
    assert store.check(ISSUER_A, 1, T0, [KIYOSE]).state is RevocationState.REVOKED
    assert store.check(ISSUER_A, 2, T0, [SAPPORO]).state is RevocationState.ON_HOLD
    assert store.check(ISSUER_A, 3, T0, [OSAKA, SAPPORO]).state is RevocationState.GOOD
    other = store.check(ISSUER_A, 1, T0, [OSAKA])
    assert other.state is RevocationState.UNAVAILABLE
    assert "does not cover CRL partition CN=Osaka-shi CRLDP,OU=Tokyo" in other.detail
    assert "CN=Kiyose-shi CRLDP" in other.detail  # and says what it does cover
    bare = store.check(ISSUER_A, 3, T0)
    assert bare.state is RevocationState.UNAVAILABLE
    assert "names no CRL distribution point" in bare.detail
    assert store.check(ISSUER_B, 3, T0).state is RevocationState.GOOD
    assert store.check(ISSUER_B, 3, T0, [OSAKA]).state is RevocationState.GOOD
    in_grace = store.check(ISSUER_A, 1, T0 + 7 * DAY, [OSAKA])  # past valid-until, no grace
    assert in_grace.state is RevocationState.STALE


def test_a_delta_adds_a_partition_in_the_store(tmp_path: Path) -> None:
    v1 = sample()
    v2 = RevocationSet(
        {
            ISSUER_A: entries({1, 5, 9, 11}, {2}, Coverage.of([KIYOSE, SAPPORO, OSAKA])),
            ISSUER_B: entries(set(), {77}),
        }
    )
    store = store_with(tmp_path, snapshot(v1, KEY, 1), delta(diff(v1, v2), KEY, 2, 1))
    assert store.check(ISSUER_A, 11, T0, [OSAKA]).state is RevocationState.REVOKED
    restarted = RevocationStore(RevocationStoreConfig(tmp_path / "rev.state", TRUSTED))
    assert restarted.check(ISSUER_A, 11, T0, [OSAKA]).state is RevocationState.REVOKED
    assert restarted.coverage()[ISSUER_A] == frozenset({KIYOSE, SAPPORO, OSAKA})
    assert restarted.coverage()[ISSUER_B] is None


def test_a_store_holding_a_format_1_bundle_fails_closed_asking_for_a_rebuild(
    tmp_path: Path,
) -> None:
    old = bytearray(snapshot(sample(), KEY, 1))
    old[4] = 1
    struct.pack_into(">I", old, HEADER_SIZE - 4, zlib.crc32(bytes(old[: HEADER_SIZE - 4])))
    (tmp_path / "rev.state").write_bytes(encode_chain([bytes(old)]))
    verdict = store_with(tmp_path).check(ISSUER_B, 3, T0)
    assert verdict.state is RevocationState.UNAVAILABLE
    assert "format 1" in verdict.detail and "rebuild" in verdict.detail


def test_a_store_not_yet_written_logs_no_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        store = store_with(tmp_path, creating=True)  # an installer: the file comes next
    assert store.check(ISSUER_A, 1, T0).state is RevocationState.UNAVAILABLE
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no revocation data yet" in caplog.text
    caplog.clear()
    store_with(tmp_path)  # a terminal running without data: that is an ERROR
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
