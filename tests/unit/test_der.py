import pytest

from terminald.card.der import DerError, certificate_length, certificate_serial

# The start of a production JPKI user-auth certificate: 30 82 06 2B (1583 bytes), tbs,
# version v3, serial 05 4C FC D8 (jpki-card.md §5.1).
HEAD = bytes.fromhex("3082062b30820513a003020102020" + "4054cfcd8300d06092a864886f70d01010b0500")


def test_length_from_head() -> None:
    assert certificate_length(HEAD) == 0x062B + 4 == 1583


def test_serial_from_head() -> None:
    assert certificate_serial(HEAD) == 0x054CFCD8


def test_v1_certificate_without_version_field() -> None:
    assert certificate_serial(bytes.fromhex("3082010030820100020107")) == 7


@pytest.mark.parametrize(
    "head",
    [
        "",  # nothing
        "3182062b",  # SET, not SEQUENCE
        "3082062b3182",  # tbs not a SEQUENCE
        "3082062b30820513a0030201020404054cfcd8",  # serial not an INTEGER
        "3082062b30820513a003020102020405",  # truncated serial
        "3082062b30820513a00302010202048100000000",  # negative
        "30800000",  # indefinite length
        "3081050000",  # non-minimal length
    ],
)
def test_malformed_heads_raise(head: str) -> None:
    with pytest.raises(DerError):
        data = bytes.fromhex(head)
        certificate_length(data)
        certificate_serial(data)
