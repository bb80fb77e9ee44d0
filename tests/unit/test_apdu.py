import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.card.apdu import CommandApdu, parse_command, redact


@pytest.mark.parametrize(
    ("command", "encoded"),
    [
        (
            CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes.fromhex("D392F000260100000001")),
            "00a4040c0ad392f000260100000001",
        ),
        (CommandApdu(0x00, 0xB0, 0x8A, 0x00, le=256), "00b08a0000"),
        (CommandApdu(0x00, 0xB0, 0x8A, 0x00, le=4), "00b08a0004"),
        (CommandApdu(0x00, 0x20, 0x00, 0x98), "00200098"),
        (CommandApdu(0x00, 0x20, 0x00, 0x98, b"1234"), "002000980431323334"),
        (CommandApdu(0x00, 0xB0, 0x01, 0x00, le=1327), "00b0010000052f"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536), "00b00000000000"),
    ],
)
def test_encoding_matches_the_reference_bytes(command: CommandApdu, encoded: str) -> None:
    assert command.encode().hex() == encoded


def test_sign_command_is_case_4_short_with_le_00() -> None:
    digest_info = bytes(51)
    raw = CommandApdu(0x80, 0x2A, 0x00, 0x97, digest_info, le=256).encode()
    assert raw[:5] == bytes.fromhex("802a009733") and raw[-1] == 0 and len(raw) == 57


def test_out_of_range_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        CommandApdu(0x100, 0, 0, 0)
    with pytest.raises(ValueError):
        CommandApdu(0, 0, 0, 0, le=0)


@given(
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=400),
    le=st.none() | st.integers(1, 65536),
)
def test_parse_inverts_encode(
    cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None
) -> None:
    command = CommandApdu(cla, ins, p1, p2, data, le)
    parsed = parse_command(command.encode())
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data) == (cla, ins, p1, p2, data)
    assert parsed.le == le
    assert parsed.extended == command.extended


@pytest.mark.parametrize("raw", ["", "00a4", "00a4040c0a01", "00b000000000", "00b00000000003aabb"])
def test_malformed_commands_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_command(bytes.fromhex(raw))


def test_redact_hides_pin_digits() -> None:
    shown = redact(bytes.fromhex("002000980431323334"))
    assert "31" not in shown.replace("00 20 00 98 04", "")
    assert shown.startswith("00 20 00 98 04")
    assert redact(bytes.fromhex("00200098")) == "00 20 00 98"
