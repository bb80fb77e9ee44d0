"""Awkward cards and readers, on the in-process virtual card: each gets its precise reason.

The card's behaviour comes from its profile's ``quirks`` (sim/profile.py), the same
options the pcscd tests use; the reader's limit from the ``ReaderLimits`` a PC/SC
connection carries (backends/pcsc.py, from hw/readers.toml).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from terminald.card.connection import CountingConnection, ReaderLimits
from terminald.core.auth import Authenticator, AuthResult, AuthSettings, PinRequest
from terminald.core.reasons import Reason
from terminald.pki.anchors import TrustStore
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.inprocess import InProcessConnection
from terminald.sim.profile import CardProfile, CardQuirks
from terminald.sim.testpki import TestPkiManifest

NOW = datetime.now(UTC)
READ = 0xB0


class OnReader:
    """An in-process card behind a reader with known limits (as PcscConnection carries)."""

    def __init__(self, inner: InProcessConnection, limits: ReaderLimits) -> None:
        self._inner = inner
        self.limits = limits

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        return self._inner.transmit(apdu)


def quirky(pki: TestPkiManifest, name: str, **quirks: object) -> VirtualJpkiCard:
    profile = pki.load_profile(name)
    return VirtualJpkiCard(dataclasses.replace(profile, quirks=CardQuirks(**quirks)))  # type: ignore[arg-type]


def begin(
    pki: TestPkiManifest,
    card: VirtualJpkiCard,
    *,
    limits: ReaderLimits | None = None,
    settings: AuthSettings | None = None,
) -> tuple[AuthResult | PinRequest, int]:
    trust = TrustStore.from_paths([pki.trust_dir])
    auth = Authenticator(trust, settings or AuthSettings(terminal_id="unit"))
    inner = InProcessConnection(card)
    conn = CountingConnection(OnReader(inner, limits) if limits else inner)
    return auth.begin(conn, NOW), conn.apdus


def pin_verifies(card: VirtualJpkiCard) -> list[bytes]:
    return [c for c in card.commands() if c[1] == 0x20 and len(c) > 5]


def reads(card: VirtualJpkiCard) -> list[tuple[int, int]]:
    """(Le asked, SW) of every READ BINARY."""
    out = []
    for event in card.log:
        if event.kind == "apdu" and event.command[1] == READ:
            out.append((event.command[-1] or 256, event.sw or 0))
    return out


def test_select_answered_6300_is_not_a_jpki_card(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "non-jpki", unknown_aid_sw=0x6300)
    step, apdus = begin(test_pki, card)
    assert isinstance(step, AuthResult)
    assert step.reason is Reason.NOT_JPKI_CARD, step
    assert apdus == 1


def test_select_9000_then_no_ef_000a_is_not_a_jpki_card(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "non-jpki", unknown_aid_sw=0x9000)
    step, apdus = begin(test_pki, card)
    assert isinstance(step, AuthResult)
    assert step.reason is Reason.NOT_JPKI_CARD, step
    assert "000A" in step.detail and apdus == 2
    assert [e.sw for e in card.log if e.kind == "apdu"] == [0x9000, 0x6A82]


def test_verify_answering_63c0_is_pin_blocked(test_pki: TestPkiManifest) -> None:
    card = VirtualJpkiCard(test_pki.load_profile("last-try"))
    settings = AuthSettings(terminal_id="unit", pin_floor=0)  # allowed to use the last try
    step, _ = begin(test_pki, card, settings=settings)
    assert isinstance(step, PinRequest) and step.tries_left == 1
    trust = TrustStore.from_paths([test_pki.trust_dir])
    right = test_pki.card("last-try").pin
    wrong = "0000" if right != "0000" else "1111"
    result = Authenticator(trust, settings).finish(step, wrong, NOW)
    assert card.commands()[-1][1] == 0x20 and card.log[-1].sw == 0x63C0
    assert result.reason is Reason.PIN_BLOCKED and result.pin_tries_left == 0


@pytest.mark.parametrize("sw", [0x63C4, 0x63CF])
def test_a_retry_counter_above_three_sends_no_pin(test_pki: TestPkiManifest, sw: int) -> None:
    card = quirky(test_pki, "card-001", pin_query_sw=sw)
    step, _ = begin(test_pki, card)
    assert isinstance(step, AuthResult), "no PIN may be asked for"
    assert step.reason is Reason.PIN_STATE_UNKNOWN
    assert f"{sw & 0xF} tries" in step.detail
    assert pin_verifies(card) == []


def test_6cxx_is_answered_with_the_length_the_card_gives(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "card-001", read_max=128, read_over_max="6cxx")
    step, _ = begin(test_pki, card)
    assert isinstance(step, PinRequest), step
    total = len(card.profile.auth_cert)
    asked = reads(card)
    # One 6C80, then every READ asks for at most 128 bytes.
    assert asked[0] == (256, 0x6C80)
    assert all(le <= 128 and sw == 0x9000 for le, sw in asked[1:])
    assert len(asked) == 1 + -(-total // 128)


def test_reader_max_response_caps_every_read(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "card-001", read_max=100, read_over_max="wrong_length")
    limits = ReaderLimits("Small Reader 00 00", 100, "hw/readers.toml: small")
    step, _ = begin(test_pki, card, limits=limits)
    assert isinstance(step, PinRequest), step
    assert all(le <= 100 and sw == 0x9000 for le, sw in reads(card))


def test_extended_reads_are_capped_by_the_reader_too(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "card-001", read_max=200, read_over_max="wrong_length")
    limits = ReaderLimits("Small Reader 00 00", 200, "hw/readers.toml: small")
    settings = AuthSettings(terminal_id="unit", extended_reads=True)
    step, _ = begin(test_pki, card, limits=limits, settings=settings)
    assert isinstance(step, PinRequest), step


def test_a_read_the_reader_cannot_carry_is_card_error_naming_the_limit(
    test_pki: TestPkiManifest,
) -> None:
    card = quirky(test_pki, "card-001", read_max=128, read_over_max="wrong_length")
    step, _ = begin(test_pki, card, limits=ReaderLimits("Small Reader 00 00"))
    assert isinstance(step, AuthResult)
    assert step.reason is Reason.CARD_ERROR, step
    assert "6700" in step.detail and "Small Reader 00 00" in step.detail
    assert "max_response" in step.detail
    assert pin_verifies(card) == []


def test_one_byte_per_read_is_cut_off(test_pki: TestPkiManifest) -> None:
    card = quirky(test_pki, "card-001", read_chunk=1)
    step, apdus = begin(test_pki, card)
    assert isinstance(step, AuthResult)
    assert step.reason is Reason.CARD_ERROR, step
    assert "too little per READ" in step.detail
    assert apdus <= 1 + 5  # SELECT + ceil(256/256) + the spare reads


def test_a_small_chunk_card_within_the_reader_limit_still_works(
    test_pki: TestPkiManifest,
) -> None:
    # A card that returns 64 bytes per READ behind a reader known to pass 64: fine.
    card = quirky(test_pki, "card-001", read_chunk=64)
    step, _ = begin(test_pki, card, limits=ReaderLimits("Small", 64, "test"))
    assert isinstance(step, PinRequest), step


def test_quirks_round_trip_through_json(test_pki: TestPkiManifest) -> None:
    profile = dataclasses.replace(
        test_pki.load_profile("card-001"),
        quirks=CardQuirks(unknown_aid_sw=0x6300, read_max=64, read_chunk=7, pin_query_sw=0x63C5),
    )
    assert CardProfile.from_json(profile.to_json()) == profile


@pytest.mark.parametrize(
    "raw",
    [{"read_max": -1}, {"read_max": 300}, {"nonsense": 1}, {"read_over_max": "x"}, []],
)
def test_bad_quirks_are_refused_with_a_message(raw: object) -> None:
    with pytest.raises(ValueError, match="quirks"):
        CardQuirks.from_dict(raw)
