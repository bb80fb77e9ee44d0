"""Fixtures for tests through the real stack: pyscard → pcscd → vpcd → the virtual card.

``pcscd`` (session): the real /usr/sbin/pcscd, started by terminald.sim.pcscd. Outside
scripts/sandbox it FAILS (never skips): an integration run that silently tested nothing
would be worse than a red one.

``vpcd_card(profile_or_card, port=35963, realtime=False)`` (function): inserts a virtual card
into a vpcd slot, waits until pcscd reports it present, and removes it at teardown.

``throwaway_profile`` (session): card-001 of the shared test PKI with PIN 1234 and signing
password ABC123.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator

import pytest

from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_PORTS, Pcscd, wait_for_card_state
from terminald.sim.profile import CardProfile
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard

READER_BY_PORT = {port: name for name, port in READER_PORTS.items()}
VpcdCardFactory = Callable[..., VpcdCard]


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    if os.environ.get("TERMINALD_SANDBOX") != "1":
        pytest.fail(
            "integration tests run the real pcscd and must run inside the sandbox: "
            "scripts/sandbox .venv/bin/python -m pytest tests/integration",
            pytrace=False,
        )
    daemon = Pcscd(log_path=tmp_path_factory.mktemp("pcscd") / "pcscd.log")
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def vpcd_card(pcscd: Pcscd) -> Iterator[VpcdCardFactory]:
    slots: list[VpcdCard] = []

    def insert(
        card: CardProfile | VirtualJpkiCard, port: int = 35963, realtime: bool = False
    ) -> VpcdCard:
        virtual = card if isinstance(card, VirtualJpkiCard) else VirtualJpkiCard(card)
        slot = VpcdCard(virtual, port=port, realtime=realtime)
        slots.append(slot)
        slot.start()
        if not wait_for_card_state(READER_BY_PORT[port], True, 10):
            pytest.fail(
                f"pcscd did not report the card in {READER_BY_PORT[port]}; see {pcscd.log_path}"
            )
        return slot

    yield insert
    for slot in slots:
        slot.stop()
    if pcscd.running:
        for slot in slots:
            wait_for_card_state(READER_BY_PORT[slot.port], False, 5)


@pytest.fixture(scope="session")
def throwaway_profile(test_pki: TestPkiManifest) -> CardProfile:
    """A good card of the shared test PKI, with the PIN and password these tests type."""
    return dataclasses.replace(
        test_pki.load_profile("card-001"), name="throwaway", auth_pin="1234", sign_password="ABC123"
    )


# The back-office link's daemon-on-a-line fixtures.
from tests.integration.link_rig import linked, terminal  # noqa: E402, F401
