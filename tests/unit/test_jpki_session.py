import pytest

from terminald.card.errors import ApduError, PinStateUnknownError, ReadLimitError
from terminald.card.jpki import (
    CertificateReadError,
    JpkiSession,
    NoPinError,
    NotJpkiCardError,
    PinBlockedError,
    PinState,
    WrongPinError,
)

from .scripted import ScriptedConnection

SELECT_AP = "00a4040c0ad392f000260100000001"
OK = "9000"


def session(*script: tuple[str, str]) -> tuple[JpkiSession, ScriptedConnection]:
    conn = ScriptedConnection([(SELECT_AP, OK), *script])
    return JpkiSession(conn), conn


def test_non_jpki_card_is_recognised_by_select() -> None:
    with pytest.raises(NotJpkiCardError):
        JpkiSession(ScriptedConnection([(SELECT_AP, "6a82")]))


def test_other_select_failures_are_apdu_errors() -> None:
    with pytest.raises(ApduError) as info:
        JpkiSession(ScriptedConnection([(SELECT_AP, "6f00")]))
    assert info.value.sw == 0x6F00


def cert_bytes(total: int) -> bytes:
    body = total - 4
    return bytes.fromhex("3082") + body.to_bytes(2, "big") + bytes(i % 251 for i in range(body))


def test_short_reads_cover_the_certificate_without_reading_past_its_end() -> None:
    cert = cert_bytes(1583)
    reads = [("00b08a0000", cert[:256].hex() + OK)]
    for offset in range(256, 1583, 256):
        want = min(256, 1583 - offset)
        le = "00" if want == 256 else f"{want:02x}"
        reads.append(
            (
                f"00b0{offset >> 8:02x}{offset & 0xFF:02x}{le}",
                cert[offset : offset + want].hex() + OK,
            )
        )
    s, conn = session(*reads)
    head = s.read_certificate_head()
    assert s.read_certificate_rest(head) == cert
    assert conn.done() and len(conn.sent) == 1 + 7  # SELECT + 7 reads for 1583 bytes


def test_extended_read_fetches_the_rest_at_once() -> None:
    cert = cert_bytes(1583)
    s, conn = session(
        ("00b08a0000", cert[:256].hex() + OK),
        ("00b0010000052f", cert[256:].hex() + OK),
    )
    assert s.read_certificate_rest(s.read_certificate_head(), extended=True) == cert
    assert conn.done()


def test_falls_back_to_select_ef_when_short_ef_read_did_not_set_current_ef() -> None:
    cert = cert_bytes(300)
    s, conn = session(
        ("00b08a0000", cert[:256].hex() + OK),
        ("00b001002c", "6986"),
        ("00a4020c02000a", OK),
        ("00b001002c", cert[256:].hex() + OK),
    )
    assert s.read_certificate_rest(s.read_certificate_head()) == cert
    assert conn.done()


def test_absurd_certificate_length_is_refused_before_reading() -> None:
    s, _ = session(("00b08a0000", "3083100000" + "00" * 251 + OK))
    with pytest.raises(CertificateReadError):
        s.read_certificate_rest(s.read_certificate_head())


@pytest.mark.parametrize(
    ("sw", "state", "tries"),
    [
        ("63c3", PinState.TRIES_LEFT, 3),
        ("63c1", PinState.TRIES_LEFT, 1),
        ("63c0", PinState.BLOCKED, 0),
        ("6984", PinState.BLOCKED, 0),
        ("6983", PinState.BLOCKED, 0),
        ("6a88", PinState.NO_PIN, 0),
    ],
)
def test_pin_status_query_sends_no_data(sw: str, state: PinState, tries: int) -> None:
    s, conn = session(("00200098", sw))
    status = s.pin_status()
    assert (status.state, status.tries_left) == (state, tries)
    assert conn.sent[-1] == bytes.fromhex("00200098")


@pytest.mark.parametrize("sw", ["9000", "6300", "6f00"])
def test_unknown_pin_state_is_never_guessed(sw: str) -> None:
    s, _ = session(("00200098", sw))
    with pytest.raises(ApduError):
        s.pin_status()


def test_verify_outcomes() -> None:
    s, _ = session(("002000980431323334", "63c2"))
    with pytest.raises(WrongPinError) as wrong:
        s.verify_pin("1234")
    assert wrong.value.tries_left == 2
    s, _ = session(("002000980431323334", "6984"))
    with pytest.raises(PinBlockedError):
        s.verify_pin("1234")
    s, _ = session(("002000980431323334", "6a88"))
    with pytest.raises(NoPinError):
        s.verify_pin("1234")
    s, conn = session(("002000980431323334", OK))
    s.verify_pin("1234")
    assert conn.done()


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", "", "１２３４"])
def test_malformed_pin_never_reaches_the_card(pin: str) -> None:
    s, conn = session()
    with pytest.raises(ValueError):
        s.verify_pin(pin)
    assert len(conn.sent) == 1  # only the SELECT


def test_sign_uses_short_ef_form_and_checks_length() -> None:
    digest_info = bytes(range(51))
    s, _ = session(("802a009733" + digest_info.hex() + "00", "ab" * 256 + OK))
    assert s.sign(digest_info) == b"\xab" * 256
    s, _ = session(("802a009733" + digest_info.hex() + "00", "6982"))
    with pytest.raises(ApduError):
        s.sign(digest_info)


# -- awkward cards and readers, byte by byte ---------------------------------------------------


@pytest.mark.parametrize("sw", ["6300", "6999", "6a81"])
def test_select_refusals_mean_no_jpki_application(sw: str) -> None:
    with pytest.raises(NotJpkiCardError):
        JpkiSession(ScriptedConnection([(SELECT_AP, sw)]))


def test_no_ef_000a_after_a_good_select_is_not_a_jpki_card() -> None:
    s, _ = session(("00b08a0000", "6a82"))
    with pytest.raises(NotJpkiCardError):
        s.read_certificate_head()


def test_6cxx_sends_the_read_again_with_that_length_and_keeps_it() -> None:
    cert = cert_bytes(300)
    s, conn = session(
        ("00b08a0000", "6c80"),
        ("00b08a0080", cert[:128].hex() + OK),
        ("00b0008080", cert[128:256].hex() + OK),
        ("00b001002c", cert[256:].hex() + OK),
    )
    head = s.read_certificate_head()  # still the first 256 bytes, in two READs of 128
    assert head == cert[:256]
    assert s.read_certificate_rest(head) == cert and conn.done()


def test_a_reader_failure_on_read_is_not_a_certificate_problem() -> None:
    s, _ = session(("00b08a0000", "6700"))
    with pytest.raises(ReadLimitError, match=r"SW=6700.*max_response"):
        s.read_certificate_head()


def test_a_file_shorter_than_its_der_header_is_a_certificate_problem() -> None:
    cert = cert_bytes(300)
    s, _ = session(("00b08a0000", cert[:256].hex() + OK), ("00b001002c", "6b00"))
    with pytest.raises(CertificateReadError, match="ends after 256 bytes"):
        s.read_certificate_rest(s.read_certificate_head())


def test_verify_answering_63c0_is_blocked() -> None:
    s, _ = session(("002000980431323334", "63c0"))
    with pytest.raises(PinBlockedError):
        s.verify_pin("1234")


@pytest.mark.parametrize("sw", ["63c4", "63cf"])
def test_a_counter_above_three_is_unknown_state(sw: str) -> None:
    s, _ = session(("00200098", sw))
    with pytest.raises(PinStateUnknownError):
        s.pin_status()
