"""Readers through the real pcscd: every reader watched, reader limits, awkward cards.

vpcd offers two slots ("Virtual PCD 00 00" on TCP 35963, "Virtual PCD 00 01" on 35964);
they stand for a dual-interface reader that lists its contact slot first. The awkward
cards are the virtual card's profile quirks (sim/profile.py CardQuirks), so every APDU
goes pyscard → pcscd → vpcd → the card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from terminald.backends.pcsc import PcscReader
from terminald.backends.reader_profiles import ReaderProfiles, parse_reader_profiles
from terminald.core.auth import Authenticator, AuthSettings, PinRequest
from terminald.core.reasons import Reason
from terminald.daemon.transaction import Transaction, run_transaction
from terminald.pki.anchors import TrustStore
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, READER_1, READER_PORTS, Pcscd, wait_for_card_state
from terminald.sim.profile import CardQuirks
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard
from tests.integration.daemon_rig import gate_config, open_rig

pytestmark = pytest.mark.pcscd

Insert = Callable[..., VpcdCard]


def small_reader(max_response: int) -> ReaderProfiles:
    return parse_reader_profiles(
        {
            "reader": [
                {
                    "name": "small",
                    "match": ["Virtual PCD"],
                    "extended_apdus": False,
                    "max_response": max_response,
                }
            ]
        },
        "test readers.toml",
    )


def card(pki: TestPkiManifest, name: str, **quirks: object) -> VirtualJpkiCard:
    profile = pki.load_profile(name)
    if quirks:
        profile = dataclasses.replace(profile, quirks=CardQuirks(**quirks))  # type: ignore[arg-type]
    return VirtualJpkiCard(profile)


def pin_of(pki: TestPkiManifest, name: str) -> str:
    pin = pki.card(name).pin
    assert pin is not None
    return pin


def pin_verifies(c: VirtualJpkiCard) -> int:
    return sum(1 for cmd in c.commands() if cmd[1] == 0x20 and len(cmd) > 5)


@pytest.fixture
def authenticator(test_pki: TestPkiManifest) -> Authenticator:
    trust = TrustStore.from_paths([test_pki.trust_dir])
    return Authenticator(trust, AuthSettings(terminal_id="test-gate"))


@pytest.fixture
def slots(pcscd: Pcscd) -> Iterator[Insert]:
    made: list[VpcdCard] = []

    def insert(c: VirtualJpkiCard, reader: str = READER_0, inserted: bool = True) -> VpcdCard:
        slot = VpcdCard(c, port=READER_PORTS[reader], inserted=inserted)
        made.append(slot)
        slot.start()
        if inserted:
            assert wait_for_card_state(reader, True, 10), f"pcscd never saw a card in {reader}"
        return slot

    yield insert
    for slot in made:
        slot.stop()
    for reader in READER_PORTS:
        wait_for_card_state(reader, False, 5)


def tap(reader: PcscReader, auth: Authenticator, pin: str | None) -> Transaction:
    assert reader.wait_for_card(10), "the reader never saw the card"
    return run_transaction(reader, auth, lambda _request: pin)


# -- every reader watched ------------------------------------------------------------------


def test_unset_reader_watches_the_second_slot(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    # The "contact slot" (00 00) is listed first and stays empty; the card is in 00 01.
    slots(card(test_pki, "card-002"), READER_0, inserted=False)
    good = card(test_pki, "card-001")
    slots(good, READER_1)
    reader = PcscReader(None)
    try:
        assert READER_0 in reader.watched() and READER_1 in reader.watched()
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.OK, done.result
        assert reader.name == READER_1
        assert pin_verifies(good) == 1
    finally:
        reader.close()


def test_two_cards_at_once_are_served_one_after_the_other(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    first, second = card(test_pki, "card-001"), card(test_pki, "card-002")
    slot0 = slots(first, READER_0)
    slots(second, READER_1)
    reader = PcscReader(None)
    try:
        # Both present in one pass: the first listed reader is served, alone.
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.OK and reader.name == READER_0
        assert second.commands() == [], "the other card was touched during a transaction"
        # The second card is not looked at until the first leaves.
        assert not reader.wait_for_removal(0.5)
        slot0.remove()
        assert reader.wait_for_removal(5)
        done = tap(reader, authenticator, pin_of(test_pki, "card-002"))
        assert done.result.reason is Reason.OK and reader.name == READER_1
        assert pin_verifies(first) == 1 and pin_verifies(second) == 1
    finally:
        reader.close()


def test_daemon_with_reader_unset_opens_for_a_card_in_the_second_slot(
    tmp_path: Path, test_pki: TestPkiManifest, slots: Insert
) -> None:
    config = gate_config(tmp_path, test_pki, enrolled=["card-001"])
    text = config.read_text()
    assert f'reader = "{READER_0}"\n' in text
    config.write_text(text.replace(f'reader = "{READER_0}"\n', ""))
    rig = open_rig(config, test_pki)
    try:
        good = card(test_pki, "card-001")
        slots(good, READER_1)
        rig.wait_state("pin_entry")
        rig.type(pin_of(test_pki, "card-001") + "#")
        assert rig.verdict() is Reason.OK
        rig.wait_until(lambda: not good.powered)
        assert pin_verifies(good) == 1
    finally:
        rig.stop()


# -- reader limits ----------------------------------------------------------------------------


def test_reader_max_response_lets_a_small_reader_read_the_certificate(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    c = card(test_pki, "card-001", read_max=128, read_over_max="wrong_length")
    slots(c)
    reader = PcscReader(READER_0, small_reader(128))
    try:
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.OK, done.result
        reads = [cmd for cmd in c.commands() if cmd[1] == 0xB0]
        assert reads and all(cmd[-1] <= 128 and cmd[-1] != 0 for cmd in reads)
    finally:
        reader.close()


def test_a_read_the_reader_cannot_carry_is_card_error_naming_the_limit(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    c = card(test_pki, "card-001", read_max=128, read_over_max="wrong_length")
    slots(c)
    reader = PcscReader(READER_0)  # no profile says this reader is small
    try:
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.CARD_ERROR, done.result
        assert READER_0 in done.result.detail and "max_response" in done.result.detail
        assert "6700" in done.result.detail
        assert pin_verifies(c) == 0
    finally:
        reader.close()


def test_6cxx_is_followed_through_pcscd(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    c = card(test_pki, "card-001", read_max=200, read_over_max="6cxx")
    slots(c)
    reader = PcscReader(READER_0)
    try:
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.OK, done.result
        sws = [e.sw for e in c.log if e.kind == "apdu" and e.command[1] == 0xB0]
        assert sws.count(0x6CC8) == 1  # learned once, then every READ asks for 200
    finally:
        reader.close()


def test_a_card_returning_one_byte_per_read_is_cut_off(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    c = card(test_pki, "card-001", read_chunk=1)
    slots(c)
    reader = PcscReader(READER_0)
    try:
        done = tap(reader, authenticator, pin_of(test_pki, "card-001"))
        assert done.result.reason is Reason.CARD_ERROR, done.result
        assert len(c.commands()) <= 6  # SELECT + at most 5 READs
        assert pin_verifies(c) == 0
    finally:
        reader.close()


# -- precise reasons --------------------------------------------------------------------------


@pytest.mark.parametrize("select_sw", [0x6300, 0x9000])
def test_no_jpki_application_is_not_jpki_card(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert, select_sw: int
) -> None:
    c = card(test_pki, "non-jpki", unknown_aid_sw=select_sw)
    slots(c)
    reader = PcscReader(READER_0)
    try:
        done = tap(reader, authenticator, None)
        assert done.result.reason is Reason.NOT_JPKI_CARD, done.result
    finally:
        reader.close()


def test_a_retry_counter_above_three_sends_no_pin(
    test_pki: TestPkiManifest, authenticator: Authenticator, slots: Insert
) -> None:
    c = card(test_pki, "card-001", pin_query_sw=0x63C9)
    slots(c)
    reader = PcscReader(READER_0)
    asked: list[PinRequest] = []
    try:
        assert reader.wait_for_card(10)
        done = run_transaction(reader, authenticator, lambda r: asked.append(r) or "1234")
        assert done.result.reason is Reason.PIN_STATE_UNKNOWN, done.result
        assert asked == [] and pin_verifies(c) == 0
    finally:
        reader.close()


def test_verify_answering_63c0_is_pin_blocked(test_pki: TestPkiManifest, slots: Insert) -> None:
    trust = TrustStore.from_paths([test_pki.trust_dir])
    auth = Authenticator(trust, AuthSettings(terminal_id="test-gate", pin_floor=0))
    c = card(test_pki, "last-try")
    slots(c)
    reader = PcscReader(READER_0)
    right = pin_of(test_pki, "last-try")
    try:
        done = tap(reader, auth, "0000" if right != "0000" else "1111")
        assert done.result.reason is Reason.PIN_BLOCKED, done.result
        (verify,) = [
            e for e in c.log if e.kind == "apdu" and e.command[1] == 0x20 and e.sw != 0x63C1
        ]
        assert verify.sw == 0x63C0 and c.tries_left() == 0
    finally:
        reader.close()
