"""The virtual card through the real pcscd, with raw pyscard (pcsc-in-ci.md §4)."""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException
from smartcard.scard import SCARD_RESET_CARD, SCARD_UNPOWER_CARD
from smartcard.System import readers

from terminald.sim import opensc
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, READER_1, Pcscd, wait_for_card_state
from terminald.sim.profile import CardProfile, TimingModel
from tests.integration.conftest import VpcdCardFactory

pytestmark = pytest.mark.pcscd

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SHA256_PREFIX = bytes.fromhex("3031300D060960864801650304020105000420")


def connect(reader_name: str = READER_0, disposition: int | None = None) -> CardConnection:
    reader = next(r for r in readers() if str(r) == reader_name)
    connection = reader.createConnection()
    connection.connect(disposition=disposition)
    return connection


def send(connection: CardConnection, apdu: bytes | str) -> tuple[bytes, int]:
    raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
    data, sw1, sw2 = connection.transmit(list(raw))
    return bytes(data), sw1 << 8 | sw2


def sign_apdu(data: bytes, p2: int = 0x97) -> bytes:
    return bytes((0x80, 0x2A, 0x00, p2, len(data))) + data + b"\x00"


def test_pcscd_lists_both_vpcd_readers(pcscd: Pcscd) -> None:
    names = [str(r) for r in readers()]
    assert READER_0 in names and READER_1 in names


def test_select_and_atr(vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile) -> None:
    slot = vpcd_card(throwaway_profile)
    connection = connect()
    assert bytes(connection.getATR()) == throwaway_profile.atr
    assert send(connection, SELECT_JPKI) == (b"", 0x9000)
    assert send(connection, "00A4040C0AF00102030405060708F9") == (b"", 0x6A82)
    connection.disconnect()
    assert slot.card.commands()[:2] == [
        SELECT_JPKI,
        bytes.fromhex("00A4040C0AF00102030405060708F9"),
    ]


def test_short_and_extended_read_of_the_certificate(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    vpcd_card(throwaway_profile)
    cert = throwaway_profile.auth_cert
    connection = connect()
    assert send(connection, SELECT_JPKI)[1] == 0x9000
    head, sw = send(connection, "00B08A0004")
    assert (head, sw) == (cert[:4], 0x9000) and head[:2] == b"\x30\x82"
    total = int.from_bytes(head[2:4], "big") + 4
    got = b""
    while len(got) < total:
        want = min(256, total - len(got))
        data, sw = send(connection, f"00B0{len(got):04X}{want % 256:02X}")
        assert sw == 0x9000 and len(data) == want
        got += data
    assert got == cert and total > 1024
    # One extended READ BINARY (Le = 0000): vpcd and pcscd pass it through unchanged.
    assert send(connection, "00B00000000000") == (cert, 0x9000)
    connection.disconnect()


def test_verify_query_sign_and_check_the_signature(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    slot = vpcd_card(throwaway_profile)
    connection = connect()
    send(connection, SELECT_JPKI)
    assert send(connection, "00200098") == (b"", 0x63C3)
    digest_info = SHA256_PREFIX + hashlib.sha256(b"challenge").digest()
    assert send(connection, sign_apdu(digest_info)) == (b"", 0x6982)
    assert send(connection, "002000980431323334") == (b"", 0x9000)
    signature, sw = send(connection, sign_apdu(digest_info))
    assert sw == 0x9000 and len(signature) == 256
    connection.disconnect()
    public = x509.load_der_x509_certificate(throwaway_profile.auth_cert).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())
    sent = slot.card.commands()
    assert bytes.fromhex("002000980431323334") in sent
    assert slot.card.selected_aids() == [bytes.fromhex("D392F000260100000001")]


def test_unpower_on_disconnect_clears_the_pin_but_a_reset_does_not(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    vpcd_card(throwaway_profile)
    digest_info = SHA256_PREFIX + hashlib.sha256(b"x").digest()
    first = connect(disposition=SCARD_RESET_CARD)
    send(first, SELECT_JPKI)
    assert send(first, "002000980431323334")[1] == 0x9000
    first.disconnect()  # warm reset: the card keeps VERIFY (jpki-card.md §2.3)
    second = connect(disposition=SCARD_UNPOWER_CARD)
    assert send(second, sign_apdu(digest_info))[1] == 0x9000  # no VERIFY sent: the hazard
    second.disconnect()  # unpowered
    third = connect()
    send(third, SELECT_JPKI)
    assert send(third, sign_apdu(digest_info))[1] == 0x6982
    third.disconnect()


def test_removal_raises_and_reinsertion_works(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    slot = vpcd_card(throwaway_profile)
    connection = connect()
    assert send(connection, SELECT_JPKI)[1] == 0x9000
    slot.remove()
    assert not slot.card.powered
    with pytest.raises(CardConnectionException):
        send(connection, SELECT_JPKI)
    assert wait_for_card_state(READER_0, False, 5)
    slot.insert()
    assert wait_for_card_state(READER_0, True, 10)
    again = connect()
    assert send(again, SELECT_JPKI) == (b"", 0x9000)
    again.disconnect()


def test_swap_puts_another_card_in_the_slot(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    slot = vpcd_card(throwaway_profile)
    other = VirtualJpkiCard(dataclasses.replace(throwaway_profile, kind="non_jpki"))
    slot.swap(other)
    assert wait_for_card_state(READER_0, True, 10)
    connection = connect()
    assert send(connection, SELECT_JPKI)[1] == 0x6A82
    connection.disconnect()
    assert other.commands() == [SELECT_JPKI]


# The dead connection's __del__ cannot disconnect from the old pcscd; pyscard reports that as
# an unraisable exception (pcsc-in-ci.md §4: "Stale connection objects print ...").
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("how", ["kill", "stop"])
def test_card_reconnects_after_pcscd_restart(
    how: str, pcscd: Pcscd, vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    slot = vpcd_card(throwaway_profile)
    connection = connect()
    assert send(connection, SELECT_JPKI)[1] == 0x9000
    if how == "kill":
        pcscd.kill()  # SIGKILL: leaves a stale socket file, which the next pcscd tolerates
    else:
        pcscd.stop()
    assert slot.wait_disconnected(5)
    with pytest.raises(CardConnectionException):
        send(connection, SELECT_JPKI)  # the old connection is dead for good
    pcscd.start()
    assert slot.wait_connected(5)
    assert wait_for_card_state(READER_0, True, 10)
    fresh = connect()
    assert send(fresh, SELECT_JPKI) == (b"", 0x9000)
    fresh.disconnect()


def test_an_apdu_round_trip_does_not_wait_for_delayed_ack(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    """Without TCP_QUICKACK every APDU costs ~44 ms (pcsc-in-ci.md pitfall 1)."""
    vpcd_card(throwaway_profile)
    connection = connect()
    send(connection, SELECT_JPKI)
    started = time.perf_counter()
    for _ in range(50):
        assert send(connection, SELECT_JPKI)[1] == 0x9000
    elapsed = time.perf_counter() - started
    connection.disconnect()
    assert elapsed < 50 * 0.044 / 4, f"50 SELECTs took {elapsed * 1000:.0f} ms"


def test_realtime_card_takes_its_modelled_time(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    slow = dataclasses.replace(throwaway_profile, timing=TimingModel(apdu_ms=30.0))
    vpcd_card(slow, realtime=True)
    connection = connect()
    started = time.perf_counter()
    for _ in range(3):
        send(connection, SELECT_JPKI)
    assert time.perf_counter() - started >= 3 * 0.030
    connection.disconnect()


def test_two_slots_hold_two_cards(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    first = vpcd_card(throwaway_profile)
    second = vpcd_card(dataclasses.replace(throwaway_profile, kind="non_jpki"), port=35964)
    a, b = connect(READER_0), connect(READER_1)
    assert send(a, SELECT_JPKI)[1] == 0x9000
    assert send(b, SELECT_JPKI)[1] == 0x6A82
    a.disconnect()
    b.disconnect()
    assert first.card.commands() == [SELECT_JPKI]
    assert second.card.commands() == [SELECT_JPKI]


def test_sim_card_command_serves_a_profile_and_logs_apdus(
    pcscd: Pcscd, throwaway_profile: CardProfile, tmp_path: Path
) -> None:
    profile_path = tmp_path / "card.json"
    throwaway_profile.save(profile_path)
    apdu_log = tmp_path / "apdu.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "terminald",
            "sim",
            "card",
            str(profile_path),
            "--vpcd",
            "127.0.0.1:35963",
            "--apdu-log",
            str(apdu_log),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_card_state(READER_0, True, 10)
        connection = connect()
        send(connection, SELECT_JPKI)
        assert send(connection, "002000980431323334")[1] == 0x9000
        connection.disconnect()
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "card throwaway: connected to vpcd 127.0.0.1:35963" in out
    assert "disconnected" in out
    lines = apdu_log.read_text().splitlines()
    assert "apdu 00A4040C0AD392F000260100000001 9000 0" in lines
    assert "apdu 0020009804******** 9000 0" in lines  # the PIN never reaches the file
    assert "31323334" not in apdu_log.read_text()
    assert lines[0] == "power_on"
    assert wait_for_card_state(READER_0, False, 5)


# -- OpenSC's own JPKI driver accepts the card (opensc-interop.md) ------------------------------


def pkcs11_tool(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return opensc.pkcs11_tool(*args)
    except opensc.OpenscMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


def test_opensc_binds_lists_and_signs(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile, tmp_path: Path
) -> None:
    slot = vpcd_card(throwaway_profile)
    listing = pkcs11_tool("-L")
    assert listing.returncode == 0, listing.stderr
    assert opensc.AUTH_LABEL in listing.stdout and opensc.SIGN_LABEL in listing.stdout
    data, signature = tmp_path / "data", tmp_path / "sig"
    data.write_bytes(b"opensc")
    try:
        signed = opensc.login_and_sign("1234", data, signature)
    except opensc.OpenscMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    assert signed.returncode == 0, signed.stderr
    public = x509.load_der_x509_certificate(throwaway_profile.auth_cert).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature.read_bytes(), b"opensc", padding.PKCS1v15(), hashes.SHA256())
    assert bytes.fromhex("002000800431323334") in slot.card.commands()


def test_opensc_still_binds_a_card_with_a_blocked_pin(
    vpcd_card: VpcdCardFactory, throwaway_profile: CardProfile
) -> None:
    # The blocked PIN answers the retry query 63C0, not 6984: OpenSC's bind needs SW1=63.
    vpcd_card(dataclasses.replace(throwaway_profile, auth_tries=0))
    listing = pkcs11_tool("-L")
    assert listing.returncode == 0, listing.stderr
    auth_slot = listing.stdout.split(opensc.AUTH_LABEL)[1].split("Slot ")[0]
    assert "user PIN locked" in auth_slot
