"""The virtual JPKI card, byte for byte (shared/reference/jpki-card.md, opensc-interop.md)."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from terminald.card.errors import CardRemovedError
from terminald.card.jpki import JpkiSession
from terminald.cli import build_parser, main
from terminald.cli.common import CliError
from terminald.cli.sim_card_cmd import parse_endpoint, run_card
from terminald.sim.card import (
    CardNotPoweredError,
    VirtualJpkiCard,
    card_sign,
    pkcs1_type1_sign,
    synthetic_basic4,
)
from terminald.sim.inprocess import InProcessConnection
from terminald.sim.profile import MYNUMBER_CONTACT_ATR, OTHER_CARD_ATR, CardProfile, TimingModel
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_TEXT = "00A4040C0AD3921000310001010408"
SELECT_VISUAL = "00A4040C0AD3921000310001010402"
SHA256_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")
OK = "9000"


# -- throwaway test keys and certificates (until the test PKI exists) -----------------------


@functools.cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@functools.cache
def certificate(subject_key: str, issuer_key: str, cn: str, filler: int = 600) -> bytes:
    """A DER certificate; ``filler`` bytes of an opaque extension make it ~1.5 KB like EF 000A."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )
        )
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-THROWAWAY")]))
        .public_key(rsa_key(subject_key).public_key())
        .serial_number(0x054CFCD8)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                b"\x04\x82" + filler.to_bytes(2, "big") + b"\x5a" * filler,
            ),
            critical=False,
        )
    )
    return builder.sign(rsa_key(issuer_key), hashes.SHA256()).public_bytes(
        serialization.Encoding.DER
    )


@functools.cache
def base_profile() -> CardProfile:
    return CardProfile(
        name="unit",
        kind="jpki",
        atr=MYNUMBER_CONTACT_ATR,
        auth_cert=certificate("auth", "ca", "UNITTESTAUTH00000000001A"),
        auth_ca_cert=certificate("ca", "ca", "CA", filler=100),
        auth_key_pem=pem(rsa_key("auth")),
        auth_pin="1234",
        sign_cert=certificate("sign", "ca", "UNITTESTSIGN", filler=300),
        sign_ca_cert=certificate("ca", "ca", "SIGNCA", filler=50),
        sign_key_pem=pem(rsa_key("sign")),
        sign_password="ABC123",
    )


def profile(**changes: object) -> CardProfile:
    return dataclasses.replace(base_profile(), **changes)  # type: ignore[arg-type]


class Card:
    """A powered virtual card driven with hex strings; answers ``(data, "SW")``."""

    def __init__(self, prof: CardProfile | None = None) -> None:
        self.card = VirtualJpkiCard(prof or base_profile())
        self.card.power_on()

    def send(self, apdu: str) -> tuple[bytes, str]:
        response = self.card.process(bytes.fromhex(apdu.replace(" ", "")))
        return response[:-2], response[-2:].hex().upper()

    def sw(self, apdu: str) -> str:
        return self.send(apdu)[1]


@pytest.fixture
def card() -> Card:
    return Card()


@pytest.fixture
def jpki(card: Card) -> Card:
    assert card.sw(SELECT_JPKI) == OK
    return card


def digest_info(message: bytes) -> bytes:
    return SHA256_PREFIX + hashlib.sha256(message).digest()


def sign_apdu(p2: int, data: bytes) -> str:
    return f"802A00{p2:02X}{len(data):02X}{data.hex()}00"


def auth_public() -> rsa.RSAPublicKey:
    return rsa_key("auth").public_key()


# -- power, ATR and the log ---------------------------------------------------------------


def test_atr_comes_from_the_profile() -> None:
    assert VirtualJpkiCard(base_profile()).atr == bytes.fromhex("3BE000FF8131FE4514")
    assert VirtualJpkiCard(profile(kind="non_jpki", atr=OTHER_CARD_ATR)).atr == OTHER_CARD_ATR


def test_an_unpowered_card_does_not_answer() -> None:
    card = VirtualJpkiCard(base_profile())
    with pytest.raises(CardNotPoweredError):
        card.process(bytes.fromhex(SELECT_JPKI))
    card.power_on()
    card.power_off()
    with pytest.raises(CardNotPoweredError):
        card.process(bytes.fromhex(SELECT_JPKI))


def test_log_records_power_events_and_every_apdu_with_its_sw(card: Card) -> None:
    card.sw(SELECT_JPKI)
    card.sw("00A4020C020005")
    card.card.reset()
    card.card.power_off()
    log = card.card.log
    assert [e.kind for e in log] == ["power_on", "apdu", "apdu", "reset", "power_off"]
    assert log[1].command == bytes.fromhex(SELECT_JPKI) and log[1].sw == 0x9000
    assert log[2].sw == 0x6A82
    assert card.card.commands() == [bytes.fromhex(SELECT_JPKI), bytes.fromhex("00A4020C020005")]


def test_text_forms_of_the_log_never_carry_the_pin(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    event = jpki.card.log[-1]
    assert event.command.endswith(b"1234")  # tests may check the exact bytes
    assert event.describe() == "apdu 0020009804******** 9000 0"
    assert "3132" not in repr(event) and "1234" not in repr(event)


def test_selected_aids_lists_every_select_by_aid_in_order(card: Card) -> None:
    card.sw("00A404000AA0000000030000000000")
    card.sw(SELECT_JPKI)
    card.sw("00A4020C02000A")
    card.sw(SELECT_TEXT)
    assert card.card.selected_aids() == [
        bytes.fromhex("A0000000030000000000"),
        bytes.fromhex("D392F000260100000001"),
        bytes.fromhex("D3921000310001010408"),
    ]


# -- SELECT ------------------------------------------------------------------------------


def test_select_jpki_ap_with_and_without_fci_request(card: Card) -> None:
    assert card.send(SELECT_JPKI) == (b"", OK)
    assert card.send("00A404000AD392F00026010000000100") == (b"", OK)  # P2=00, case 4


def test_unknown_aid_is_not_found(card: Card) -> None:
    assert card.sw("00A4040006A00000000101") == "6A82"  # muscle probe (opensc-interop.md)
    assert card.sw("00A4040C0AD392F000260100000002") == "6A82"


def test_non_jpki_card_has_no_jpki_ap() -> None:
    other = Card(profile(kind="non_jpki", atr=OTHER_CARD_ATR))
    assert other.sw(SELECT_JPKI) == "6A82"
    assert other.sw(SELECT_TEXT) == "6A82"


def test_select_mf_refused_before_an_ap_and_ignored_after(card: Card) -> None:
    assert card.sw("00A40000") == "6A86"
    assert card.sw(SELECT_JPKI) == OK
    assert card.sw("00A40000") == OK
    assert card.sw("00A4020C02000A") == OK  # still in the JPKI AP
    assert card.sw("00A4000C023F00") == "6A82"


def test_select_ef(jpki: Card) -> None:
    for fid in ("0006", "000A", "000B", "0001", "0002", "0017", "0018", "001A", "001B"):
        assert jpki.sw(f"00A4020C02{fid}") == OK, fid
    assert jpki.sw("00A4020C020005") == "6A82"
    assert jpki.sw("00A4020C03000A00") == "6700"
    assert jpki.sw("00A4080C02000A") == "6A86"


def test_select_ef_before_any_ap_is_not_found(card: Card) -> None:
    assert card.sw("00A4020C02000A") == "6A82"


# -- READ BINARY ----------------------------------------------------------------------------


def test_token_info_ef(jpki: Card) -> None:
    assert jpki.sw("00A4020C020006") == OK
    data, sw = jpki.send("00B0000000")
    assert sw == OK and len(data) == 160
    assert data[:32] == b"JPKIAPICCTOKEN2                 " and data[32:] == bytes(128)


def test_read_without_current_ef(jpki: Card) -> None:
    assert jpki.sw("00B0000004") == "6986"


def test_certificate_in_short_chunks(jpki: Card) -> None:
    cert = base_profile().auth_cert
    assert 1024 < len(cert) < 2048 and cert[:2] == b"\x30\x82"
    assert jpki.sw("00A4020C02000A") == OK
    head, sw = jpki.send("00B0000004")
    assert (head, sw) == (cert[:4], OK)
    total = int.from_bytes(head[2:4], "big") + 4
    assert total == len(cert)
    got = b""
    while len(got) < total:
        want = min(256, total - len(got))
        data, sw = jpki.send(f"00B0{len(got):04X}{want % 256:02X}")
        assert sw == OK and len(data) == want
        got += data
    assert got == cert


def test_le_00_returns_what_is_left_with_9000(jpki: Card) -> None:
    cert = base_profile().auth_cert
    jpki.sw("00A4020C02000A")
    last = len(cert) - 10
    assert jpki.send(f"00B0{last:04X}00") == (cert[last:], OK)


def test_explicit_le_past_the_end_warns_6282(jpki: Card) -> None:
    cert = base_profile().auth_cert
    jpki.sw("00A4020C02000A")
    last = len(cert) - 10
    assert jpki.send(f"00B0{last:04X}20") == (cert[last:], "6282")


def test_offset_at_or_past_the_end_is_6b00(jpki: Card) -> None:
    size = len(base_profile().auth_cert)
    jpki.sw("00A4020C02000A")
    assert jpki.sw(f"00B0{size:04X}01") == "6B00"
    assert jpki.sw("00B07FFF01") == "6B00"
    assert jpki.send(f"00B0{size - 1:04X}01") == (base_profile().auth_cert[-1:], OK)


def test_extended_read_of_the_whole_certificate(jpki: Card) -> None:
    cert = base_profile().auth_cert
    jpki.sw("00A4020C02000A")
    assert jpki.send("00B00000000000") == (cert, OK)  # Le=0000 = 65536, the maximum
    assert jpki.send(f"00B0000000{len(cert):04X}") == (cert, OK)
    assert jpki.send("00B000000007D0") == (cert, "6282")  # explicit 2000 > size


def test_short_ef_read_makes_the_ef_current(jpki: Card) -> None:
    cert = base_profile().auth_cert
    assert jpki.send("00B08A0004") == (cert[:4], OK)  # SFI 0A, offset 0
    assert jpki.send("00B0000400") == (cert[4:260], OK)  # now relative to EF 000A
    assert jpki.send("00B08A1010") == (cert[0x10:0x20], OK)  # P2 = 8-bit offset
    ca = base_profile().auth_ca_cert
    assert jpki.send("00B08B0004") == (ca[:4], OK)
    assert jpki.send("00B0000400") == (ca[4:260], OK)


def test_short_ef_read_of_missing_ef(jpki: Card) -> None:
    assert jpki.sw("00B0850004") == "6A82"
    assert jpki.sw("00B0E00004") == "6A86"  # P1 bits 7-6 must be 0 in the SFI form


def test_keys_and_pins_are_not_readable(jpki: Card) -> None:
    for fid in ("0017", "0018", "001A", "001B"):
        jpki.sw(f"00A4020C02{fid}")
        assert jpki.sw("00B0000004") == "6982", fid
    assert jpki.sw("00B0970000") == "6982"
    assert jpki.sw("00B0980000") == "6982"


def test_sign_certificate_needs_the_sign_password(jpki: Card) -> None:
    sign_cert = base_profile().sign_cert
    assert jpki.sw("00A4020C020001") == OK
    assert jpki.sw("00B0000004") == "6982"  # OpenSC #3169: the card enforces it
    assert jpki.sw("00A4020C020002") == OK
    assert jpki.send("00B0000004") == (base_profile().sign_ca_cert[:4], OK)  # CA: no PIN
    assert jpki.sw("00A4020C02001B") == OK
    assert jpki.sw("002000800641424331323" + "3") == OK
    assert jpki.send("00B0810004") == (sign_cert[:4], OK)


def test_read_binary_length_errors(jpki: Card) -> None:
    jpki.sw("00A4020C02000A")
    assert jpki.sw("00B00000") == "6700"  # no Le
    assert jpki.sw("00B000000200") == "6700"  # Lc=2 but one byte follows


# -- VERIFY -------------------------------------------------------------------------------


def test_retry_query_does_not_use_a_try(jpki: Card) -> None:
    jpki.sw("00A4020C020018")
    assert [jpki.sw("00200080") for _ in range(5)] == ["63C3"] * 5
    assert jpki.card.tries_left() == 3
    assert jpki.sw("00200098") == "63C3"
    assert jpki.sw("0020009B") == "63C5"  # signing password: 5 tries


def test_tries_left_at_power_up_come_from_the_profile() -> None:
    one = Card(profile(auth_tries=1))
    one.sw(SELECT_JPKI)
    assert one.sw("00200098") == "63C1"
    blocked = Card(profile(auth_tries=0))
    blocked.sw(SELECT_JPKI)
    assert blocked.sw("00200098") == "63C0"  # OpenSC needs SW1=63 even when blocked
    assert blocked.sw("0020009804 31323334") == "6984"  # even the right PIN
    assert blocked.sw("00200098") == "63C0"


def test_correct_pin(jpki: Card) -> None:
    jpki.sw("00A4020C020018")
    assert jpki.sw("002000800431323334") == OK
    assert jpki.sw("00200080") == "63C3"  # full count, not 9000 (opensc-interop.md item 6)
    assert jpki.sw("002000800431323334") == OK  # repeating VERIFY while verified is fine


def test_wrong_pins_count_down_then_block(jpki: Card) -> None:
    jpki.sw("00A4020C020018")
    assert jpki.sw("002000800430303030") == "63C2"
    assert jpki.sw("00200080") == "63C2"
    assert jpki.sw("002000800430303030") == "63C1"
    assert jpki.sw("002000800430303030") == "63C0"  # the exhausting attempt
    assert jpki.sw("002000800431323334") == "6984"  # blocked: even the right PIN
    assert jpki.sw("002000800430303030") == "6984"
    assert jpki.sw("00200080") == "63C0"
    assert jpki.card.tries_left() == 0


def test_correct_pin_restores_the_full_count(jpki: Card) -> None:
    assert jpki.sw("0020009804 30303030") == "63C2"
    assert jpki.sw("0020009804 30303030") == "63C1"
    assert jpki.sw("0020009804 31323334") == OK
    assert jpki.sw("00200098") == "63C3"


def test_malformed_pin_counts_as_a_wrong_try(jpki: Card) -> None:
    assert jpki.sw("0020009803 313233") == "63C2"


def test_wrong_pin_clears_verified_state(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    assert jpki.sw("0020009804 39393939") == "63C2"
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == "6982"


def test_sign_password_counts_to_five(jpki: Card) -> None:
    jpki.sw("00A4020C02001B")
    assert jpki.sw("00200080") == "63C5"
    assert jpki.sw("002000800641424331323A") == "63C4"
    assert jpki.sw("00200080") == "63C4"
    assert jpki.sw("002000800641424331323" + "3") == OK
    assert jpki.sw("0020009B") == "63C5"
    assert jpki.card.tries_left(0x001B) == 5


def test_verify_needs_a_pin_ef(jpki: Card) -> None:
    assert jpki.sw("00200080") == "6985"  # no current EF
    jpki.sw("00A4020C02000A")
    assert jpki.sw("002000800431323334") == "6985"  # current EF is a certificate
    assert jpki.sw("00200097") == "6A88"  # short form naming the key EF
    assert jpki.sw("00200180") == "6A86"
    assert jpki.sw("00200000") == "6A86"
    assert jpki.card.tries_left() == 3


def test_face_auth_card_has_no_pin_reference_data() -> None:
    face = Card(profile(kind="face_auth", auth_pin=None, sign_password=None, sign_cert=b""))
    assert face.sw(SELECT_JPKI) == OK
    assert face.sw("00200098") == "6A88"
    assert face.sw("0020009804 31323334") == "6A88"
    face.sw("00A4020C020018")
    assert face.sw("00200080") == "6A88"
    assert face.sw("00A4020C020001") == "6A82"  # no signing certificate
    assert face.send("00B08A0004") == (base_profile().auth_cert[:4], OK)  # cert readable


def test_tries_persist_across_power_cycles_but_verified_state_does_not(card: Card) -> None:
    card.sw(SELECT_JPKI)
    assert card.sw("0020009804 30303030") == "63C2"
    assert card.sw("0020009804 31323334") == OK
    card.card.power_off()
    card.card.power_on()
    card.sw(SELECT_JPKI)
    assert card.sw(sign_apdu(0x97, digest_info(b"x"))) == "6982"
    assert card.sw("0020009804 30303030") == "63C2"
    card.card.power_off()
    card.card.power_on()
    card.sw(SELECT_JPKI)
    assert card.sw("00200098") == "63C2"


# -- COMPUTE SIGNATURE --------------------------------------------------------------------


def test_sign_after_verify_verifies_with_the_certificate_key(jpki: Card) -> None:
    jpki.sw("00A4020C020018")
    assert jpki.sw("002000800431323334") == OK
    assert jpki.sw("00A4020C020017") == OK  # PIN state survives the key EF select
    message = b"challenge"
    signature, sw = jpki.send(sign_apdu(0x80, digest_info(message)))
    assert sw == OK and len(signature) == 256
    cert = x509.load_der_x509_certificate(base_profile().auth_cert)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def test_sign_short_ef_forms(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    data = digest_info(b"m")
    sig_short, sw = jpki.send(sign_apdu(0x97, data))
    assert sw == OK
    jpki.sw("00A4020C020017")
    assert jpki.send(sign_apdu(0x80, data)) == (sig_short, OK)  # deterministic, same key
    assert jpki.sw(sign_apdu(0x9A, data)) == "6982"  # signing key needs 001B
    assert jpki.sw("0020009B06 414243313233") == OK
    sig, sw = jpki.send(sign_apdu(0x9A, data))
    assert sw == OK
    rsa_key("sign").public_key().verify(sig, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_sign_without_verify_is_6982(jpki: Card) -> None:
    jpki.sw("00A4020C020017")
    assert jpki.sw(sign_apdu(0x80, digest_info(b"x"))) == "6982"
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == "6982"


def test_sign_needs_a_key_ef(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    assert jpki.sw(sign_apdu(0x80, digest_info(b"x"))) == "6985"  # no current EF
    jpki.sw("00A4020C020018")
    assert jpki.sw(sign_apdu(0x80, digest_info(b"x"))) == "6985"  # PIN EF is not a key
    assert jpki.sw(sign_apdu(0x98, digest_info(b"x"))) == "6A88"


def test_sign_p1_and_lengths(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    assert jpki.sw("802A019733" + digest_info(b"x").hex() + "00") == "6A86"
    assert jpki.sw(sign_apdu(0x97, bytes(246))) == "6700"
    assert jpki.sw("802A009700") == "6700"  # no data
    data, sw = jpki.send(sign_apdu(0x97, bytes(245)))
    assert sw == OK and len(data) == 256


def recover_block(signature: bytes, public: rsa.RSAPublicKey) -> bytes:
    numbers = public.public_numbers()
    return pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")


def test_raw_input_is_padded_pkcs1_type1(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    raw = bytes(range(20))  # not a DigestInfo: the raw CRT path
    signature, sw = jpki.send(sign_apdu(0x97, raw))
    assert sw == OK
    assert (
        recover_block(signature, auth_public())
        == b"\x00\x01" + b"\xff" * (256 - 3 - 20) + b"\x00" + raw
    )
    with pytest.raises(InvalidSignature):  # and it is not a SHA-256 signature of anything
        auth_public().verify(signature, raw, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    ("algorithm", "prefix"),
    [
        (hashes.SHA1(), "3021300906052B0E03021A05000414"),
        (hashes.SHA256(), "3031300D060960864801650304020105000420"),
        (hashes.SHA384(), "3041300D060960864801650304020205000430"),
        (hashes.SHA512(), "3051300D060960864801650304020305000440"),
    ],
)
def test_digest_info_path_matches_raw_path(algorithm: hashes.HashAlgorithm, prefix: str) -> None:
    h = hashes.Hash(algorithm)
    h.update(b"message")
    data = bytes.fromhex(prefix) + h.finalize()
    key = rsa_key("auth")
    via_cryptography = card_sign(key, data)
    assert via_cryptography == pkcs1_type1_sign(key, data)
    key.public_key().verify(via_cryptography, b"message", padding.PKCS1v15(), algorithm)


# -- power, reset and AP re-select ----------------------------------------------------------


def test_power_off_clears_verified_state(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    jpki.card.power_off()
    jpki.card.power_on()
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == "6A88"  # no AP selected after power-up
    jpki.sw(SELECT_JPKI)
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == "6982"


def test_warm_reset_keeps_verified_state(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    jpki.card.reset()
    # Like the real card (jpki-card.md §2.3): the key is still usable with no VERIFY.
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == OK


def test_reselecting_the_jpki_ap_clears_verified_state(jpki: Card) -> None:
    assert jpki.sw("0020009804 31323334") == OK
    assert jpki.sw(SELECT_JPKI) == OK
    assert jpki.sw(sign_apdu(0x97, digest_info(b"x"))) == "6982"
    assert jpki.sw("00B0000004") == "6986"  # and no EF is current


# -- class, instruction and format errors ---------------------------------------------------


def test_class_and_instruction_errors(jpki: Card) -> None:
    assert jpki.sw("00CADF3005") == "6D00"  # setcos probe
    assert jpki.sw("00CB3FFF035C017E08") == "6D00"  # PIV probe
    assert jpki.sw("00840000 08") == "6D00"  # GET CHALLENGE: not modelled
    assert jpki.sw("0CA4040C0AD392F000260100000001") == "6882"  # secure messaging
    assert jpki.sw("8CB0000004") == "6882"
    assert jpki.sw("A0A4040C0AD392F000260100000001") == "6E00"
    assert jpki.sw("80A4040C0AD392F000260100000001") == "6D00"  # SELECT is CLA 00


def test_malformed_apdus_are_6700(jpki: Card) -> None:
    assert jpki.sw("00A404") == "6700"
    assert jpki.sw("00A4040C0AD392F0") == "6700"  # Lc says 10, 4 follow
    assert jpki.sw("00A4040C00") == "6700"  # case 2 SELECT by AID without an AID


# -- the card-face APs (synthetic data only) ---------------------------------------------------


def test_text_ap_with_synthetic_data(card: Card) -> None:
    assert card.sw(SELECT_TEXT) == OK
    assert card.sw("00B0810000") == "6982"  # My Number needs the PIN
    assert card.sw("00200091") == "63C3"
    assert card.sw("0020009104 31323334") == OK  # the auth PIN, its own EF 0011
    number, sw = card.send("00B0810011")
    assert sw == OK
    assert number[:3] == b"\xff\x10\x0c" and number[15:] == b"\xff\xff"
    assert number[3:15] == b"123456789010"  # check digit wrong on purpose: never real
    basic4, sw = card.send("00B0820000")
    assert sw == OK and basic4 == synthetic_basic4()


def test_basic4_tlv_layout() -> None:
    data = synthetic_basic4()
    assert data[:2] == b"\xff\x20" and data[2] == len(data) - 3
    assert data[3:6] == b"\xdf\x21\x08"
    offsets = [int.from_bytes(data[6 + 2 * i : 8 + 2 * i], "big") for i in range(4)]
    tags = [data[o : o + 2] for o in offsets]
    assert tags == [b"\xdf\x22", b"\xdf\x23", b"\xdf\x24", b"\xdf\x25"]
    name = data[offsets[0] + 3 : offsets[0] + 3 + data[offsets[0] + 2]].decode("utf-8")
    assert "\u3000" in name
    assert data[offsets[2] + 2 :][:9] == b"\x0819900101"
    assert data[offsets[3] :] == b"\xdf\x25\x01\x32"


def test_text_ap_pin_has_its_own_counter(card: Card) -> None:
    card.sw(SELECT_TEXT)
    assert card.sw("0020009104 30303030") == "63C2"
    card.sw(SELECT_JPKI)
    assert card.sw("00200098") == "63C3"


def test_visual_ap_is_selectable(card: Card) -> None:
    assert card.sw(SELECT_VISUAL) == OK
    assert card.sw("00A4020C02000A") == "6A82"  # JPKI files live in the JPKI AP only


def test_jpki_verification_does_not_open_the_text_ap(card: Card) -> None:
    card.sw(SELECT_JPKI)
    assert card.sw("0020009804 31323334") == OK
    assert card.sw(SELECT_TEXT) == OK
    assert card.sw("00B0810000") == "6982"


# -- timing model ----------------------------------------------------------------------------


def test_delay_for_follows_the_timing_model() -> None:
    timing = TimingModel(apdu_ms=10.0, per_byte_us=100.0, sign_ms=300.0)
    card = VirtualJpkiCard(profile(timing=timing))
    read = bytes.fromhex("00B0000004")
    assert card.delay_for(read, bytes(4) + b"\x90\x00") == pytest.approx(0.010 + (5 + 6) * 100e-6)
    sign = bytes.fromhex(sign_apdu(0x97, digest_info(b"x")))
    signed = bytes(256) + b"\x90\x00"
    assert card.delay_for(sign, signed) == pytest.approx(0.010 + (len(sign) + 258) * 100e-6 + 0.300)
    refused = b"\x69\x82"
    assert card.delay_for(sign, refused) == pytest.approx(0.010 + (len(sign) + 2) * 100e-6)
    assert VirtualJpkiCard(base_profile()).delay_for(sign, signed) == 0.0


# -- InProcessConnection ---------------------------------------------------------------------


def test_in_process_connection_powers_on_and_splits_the_sw() -> None:
    card = VirtualJpkiCard(base_profile())
    connection = InProcessConnection(card)
    assert card.powered
    assert connection.transmit(bytes.fromhex(SELECT_JPKI)) == (b"", 0x9000)
    data, sw = connection.transmit(bytes.fromhex("00B08A0004"))
    assert (data, sw) == (base_profile().auth_cert[:4], 0x9000)


def test_removal_raises_and_unpowers() -> None:
    card = VirtualJpkiCard(base_profile())
    connection = InProcessConnection(card)
    connection.transmit(bytes.fromhex(SELECT_JPKI))
    connection.remove()
    assert not card.powered and connection.removed
    with pytest.raises(CardRemovedError):
        connection.transmit(bytes.fromhex(SELECT_JPKI))
    assert card.log[-1].kind == "power_off"


@pytest.mark.parametrize("n", [0, 1, 3])
def test_remove_after_n_answers(n: int) -> None:
    card = VirtualJpkiCard(base_profile())
    connection = InProcessConnection(card)
    connection.remove_after(n)
    for _ in range(n):
        assert connection.transmit(bytes.fromhex(SELECT_JPKI)) == (b"", 0x9000)
    with pytest.raises(CardRemovedError):
        connection.transmit(bytes.fromhex(SELECT_JPKI))
    assert len(card.commands()) == n


def test_unpower_clears_pin_state_and_the_next_use_powers_up() -> None:
    card = VirtualJpkiCard(base_profile())
    connection = InProcessConnection(card)
    connection.transmit(bytes.fromhex(SELECT_JPKI))
    assert connection.transmit(bytes.fromhex("002000980431323334")) == (b"", 0x9000)
    connection.unpower()
    assert not card.powered
    connection.transmit(bytes.fromhex(SELECT_JPKI))
    _, sw = connection.transmit(bytes.fromhex(sign_apdu(0x97, digest_info(b"x"))))
    assert sw == 0x6982
    assert [e.kind for e in card.log].count("power_on") == 2


def test_realtime_sleeps_the_modelled_delay() -> None:
    slept: list[float] = []
    card = VirtualJpkiCard(profile(timing=TimingModel(apdu_ms=5.0)))
    connection = InProcessConnection(card, realtime=True, sleep=slept.append)
    connection.transmit(bytes.fromhex(SELECT_JPKI))
    assert slept == [pytest.approx(0.005)]
    fast = InProcessConnection(VirtualJpkiCard(profile(timing=TimingModel(apdu_ms=5.0))))
    fast.transmit(bytes.fromhex(SELECT_JPKI))  # realtime=False: no sleep hook at all


def test_the_terminal_session_runs_against_the_card() -> None:
    """JpkiSession (the terminal) reads, verifies and signs; never touches other APs."""
    card = VirtualJpkiCard(base_profile())
    session = JpkiSession(InProcessConnection(card))
    head = session.read_certificate_head()
    assert session.read_certificate_rest(head) == base_profile().auth_cert
    assert session.pin_status().tries_left == 3
    session.verify_pin("1234")
    signature = session.sign(digest_info(b"challenge"))
    auth_public().verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())
    assert card.selected_aids() == [bytes.fromhex("D392F000260100000001")]


def test_face_auth_kind_has_no_pin_even_if_the_profile_names_one() -> None:
    face = Card(profile(kind="face_auth"))
    face.sw(SELECT_JPKI)
    assert face.sw("0020009804 31323334") == "6A88"


# -- terminald sim card ------------------------------------------------------------------------


def test_sim_card_command_is_registered() -> None:
    args = build_parser().parse_args(
        ["sim", "card", "p.json", "--vpcd", "127.0.0.1:35964", "--realtime", "--apdu-log", "l"]
    )
    assert args.func is run_card
    assert (args.vpcd, args.realtime, str(args.apdu_log)) == ("127.0.0.1:35964", True, "l")


@pytest.mark.parametrize("text", ["35963", "host:", ":35963", "host:port", "host:70000"])
def test_sim_card_rejects_a_bad_endpoint(text: str) -> None:
    with pytest.raises(CliError):
        parse_endpoint(text)


def test_sim_card_reports_an_unreadable_profile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "kind": "jpki", "atr": "", "bogus": 1}')
    assert main(["sim", "card", str(bad)]) == 2
    assert main(["sim", "card", str(tmp_path / "missing.json")]) == 2


def test_sim_card_names_a_card_of_a_test_pki(
    test_pki: TestPkiManifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from terminald.cli.sim_card_cmd import _profile_of

    assert _profile_of(test_pki.directory, "twin") == test_pki.profile_path("twin")
    assert _profile_of(test_pki.directory, "x/card.json") == Path("x/card.json")
    assert main(["sim", "card", "nobody", "--pki", str(test_pki.directory)]) == 2
    err = capsys.readouterr().err
    assert "no card 'nobody'" in err and "twin" in err
    assert main(["sim", "card", "twin", "--pki", str(tmp_path)]) == 2
    assert "not a test PKI" in capsys.readouterr().err


# -- VpcdCard against a fake vpcd listener (the wire protocol, no pcscd) -----------------------


class FakeVpcd:
    """The pcscd side of the vpcd protocol: a loopback listener on an ephemeral port."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.peer: socket.socket | None = None

    def accept(self) -> None:
        self.peer, _ = self.server.accept()
        self.peer.settimeout(5)

    def send(self, payload: bytes) -> None:
        assert self.peer is not None
        self.peer.sendall(struct.pack(">H", len(payload)) + payload)

    def receive(self) -> bytes:
        assert self.peer is not None
        head = self.peer.recv(2, socket.MSG_WAITALL)
        if not head:
            return b""
        (length,) = struct.unpack(">H", head)
        return self.peer.recv(length, socket.MSG_WAITALL)

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def drop(self) -> None:
        assert self.peer is not None
        self.peer.close()
        self.peer = None

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
        self.server.close()


@pytest.fixture
def fake_vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


def test_vpcd_wire_protocol(fake_vpcd: FakeVpcd) -> None:
    card = VirtualJpkiCard(base_profile())
    with VpcdCard(card, port=fake_vpcd.port) as slot:
        fake_vpcd.accept()
        assert slot.wait_connected(5)
        assert fake_vpcd.exchange(b"\x04") == MYNUMBER_CONTACT_ATR  # ATR request
        fake_vpcd.send(b"\x01")  # power on: no reply, the next frame is the APDU's answer
        assert fake_vpcd.exchange(bytes.fromhex(SELECT_JPKI)) == b"\x90\x00"
        fake_vpcd.send(b"\x02")  # reset: no reply
        cert = base_profile().auth_cert
        assert fake_vpcd.exchange(bytes.fromhex("00B08A00000000")) == cert + b"\x90\x00"
        fake_vpcd.send(b"\x00")  # power off: no reply
        assert fake_vpcd.exchange(b"\x04") == MYNUMBER_CONTACT_ATR
        assert [e.kind for e in card.log] == ["power_on", "apdu", "reset", "apdu", "power_off"]


def test_vpcd_removal_closes_the_link_and_insert_reconnects(fake_vpcd: FakeVpcd) -> None:
    card = VirtualJpkiCard(base_profile())
    with VpcdCard(card, port=fake_vpcd.port) as slot:
        fake_vpcd.accept()
        fake_vpcd.send(b"\x01")
        assert fake_vpcd.exchange(b"\x04") == MYNUMBER_CONTACT_ATR
        slot.remove()
        assert not slot.connected and not card.powered  # out of the field: no power
        assert fake_vpcd.receive() == b""  # vpcd sees the socket close
        fake_vpcd.drop()
        slot.insert()
        fake_vpcd.accept()
        assert slot.wait_connected(5)
        assert fake_vpcd.exchange(b"\x04") == MYNUMBER_CONTACT_ATR


def test_vpcd_card_reconnects_when_vpcd_drops_it(fake_vpcd: FakeVpcd) -> None:
    seen: list[bool] = []
    card = VirtualJpkiCard(base_profile())
    with VpcdCard(card, port=fake_vpcd.port, on_connection=seen.append) as slot:
        fake_vpcd.accept()
        fake_vpcd.drop()  # like pcscd exiting
        # The slot reconnects within ~20 ms (the kernel completes the handshake into the
        # listen backlog), so watch the event history rather than the current state.
        deadline = time.monotonic() + 5
        while False not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert False in seen
        fake_vpcd.accept()  # it came back by itself
        assert slot.wait_connected(5)
        assert fake_vpcd.exchange(b"\x04") == MYNUMBER_CONTACT_ATR
    assert seen[:3] == [True, False, True]


def test_vpcd_realtime_sleeps_before_answering(fake_vpcd: FakeVpcd) -> None:
    card = VirtualJpkiCard(profile(timing=TimingModel(apdu_ms=50.0)))
    with VpcdCard(card, port=fake_vpcd.port, realtime=True):
        fake_vpcd.accept()
        fake_vpcd.send(b"\x01")
        started = time.monotonic()
        assert fake_vpcd.exchange(bytes.fromhex(SELECT_JPKI)) == b"\x90\x00"
        assert time.monotonic() - started >= 0.05
