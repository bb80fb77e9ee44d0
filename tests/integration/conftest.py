"""Fixtures for tests through the real stack: pyscard → pcscd → vpcd → the virtual card.

``pcscd`` (session): the real /usr/sbin/pcscd, started by terminald.sim.pcscd. Outside
scripts/sandbox it FAILS (never skips): an integration run that silently tested nothing
would be worse than a red one.

``vpcd_card(profile_or_card, port=35963, realtime=False)`` (function): inserts a virtual card
into a vpcd slot, waits until pcscd reports it present, and removes it at teardown.

``throwaway_profile`` (session): a jpki CardProfile with fresh RSA-2048 test keys and DER
certificates made here (PIN 1234, signing password ABC123), until tests use the test PKI.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_PORTS, Pcscd, wait_for_card_state
from terminald.sim.profile import MYNUMBER_CONTACT_ATR, CardProfile
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


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cert(subject: rsa.RSAPrivateKey, issuer: rsa.RSAPrivateKey, cn: str, filler: int) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "THROWAWAY")]))
        .public_key(subject.public_key())
        .serial_number(0x0705D990)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        # An opaque extension brings the size near the real ~1.6 KB EF 000A.
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.99999.2"),
                b"\x04\x82" + filler.to_bytes(2, "big") + b"\x5a" * filler,
            ),
            critical=False,
        )
        .sign(issuer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def throwaway_profile() -> CardProfile:
    ca, auth, sign = _key(), _key(), _key()
    return CardProfile(
        name="throwaway",
        kind="jpki",
        atr=MYNUMBER_CONTACT_ATR,
        auth_cert=_cert(auth, ca, "THROWAWAYAUTH0000000001A", 700),
        auth_ca_cert=_cert(ca, ca, "THROWAWAY CA", 10),
        auth_key_pem=_pem(auth),
        auth_pin="1234",
        sign_cert=_cert(sign, ca, "THROWAWAY SIGN", 10),
        sign_ca_cert=_cert(ca, ca, "THROWAWAY SIGN CA", 10),
        sign_key_pem=_pem(sign),
        sign_password="ABC123",
    )
