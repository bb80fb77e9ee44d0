"""The back office's age book (terminald/backoffice/age_book.py): yes/no by Japanese age
counting, the certificate's state, and nothing but that out of it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.backoffice.age_book import AgeBook, AgeBookError, Holder, attained
from terminald.link.messages import AgeAnswer

ISSUER = "1a" * 20
KEY = bytes.fromhex(ISSUER)


def book(text: str, tmp_path: Path) -> AgeBook:
    path = tmp_path / "ages.toml"
    path.write_text(text)
    return AgeBook.load(path)


def test_a_holder_is_twenty_on_the_twentieth_birthday_not_the_day_before(tmp_path: Path) -> None:
    ages = book(
        f'[[holder]]\nissuer = "{ISSUER}"\nserial = 4660\nbirth_date = 2006-12-01\n', tmp_path
    )
    assert ages.answer(KEY, 4660, 20, date(2026, 11, 30)) == AgeAnswer("valid", False)
    assert ages.answer(KEY, 4660, 20, date(2026, 12, 1)) == AgeAnswer("valid", True)
    assert ages.answer(KEY, 4660, 18, date(2026, 11, 30)) == AgeAnswer("valid", True)


def test_born_on_29_february_is_of_age_on_1_march_of_a_common_year() -> None:
    born = date(2008, 2, 29)
    assert attained(born, 20) == date(2028, 2, 29)  # a leap year: the day itself
    assert attained(born, 19) == date(2027, 3, 1)  # 民法 第143条: the month's end, then
    ages = AgeBook({(KEY, 1): Holder("valid", born)})
    assert ages.answer(KEY, 1, 19, date(2027, 2, 28)) == AgeAnswer("valid", False)
    assert ages.answer(KEY, 1, 19, date(2027, 3, 1)) == AgeAnswer("valid", True)


def test_unknown_invalid_and_undated_holders_get_no_yes_or_no(tmp_path: Path) -> None:
    ages = book(
        f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\ncertificate = "invalid"\n'
        "birth_date = 1970-01-01\n"
        f'[[holder]]\nissuer = "{ISSUER}"\nserial = 2\n'
        f'[[holder]]\nissuer = "{ISSUER}"\nserial = 3\ncertificate = "unknown"\n',
        tmp_path,
    )
    today = date(2026, 11, 30)
    assert ages.answer(KEY, 1, 20, today) == AgeAnswer("invalid", None)
    assert ages.answer(KEY, 2, 20, today) == AgeAnswer("valid", None)
    assert ages.answer(KEY, 3, 20, today) == AgeAnswer("unknown", None)
    assert ages.answer(KEY, 4, 20, today) == AgeAnswer("unknown", None)
    assert ages.answer(bytes(20), 1, 20, today) == AgeAnswer("unknown", None)


def test_a_serial_beyond_64_bits_is_a_holder_like_any_other(tmp_path: Path) -> None:
    big = 2**159 + 7
    ages = book(
        f'[[holder]]\nissuer = "{ISSUER}"\nserial = {big}\nbirth_date = 1990-01-01\n', tmp_path
    )
    assert ages.answer(KEY, big, 20, date(2026, 1, 1)) == AgeAnswer("valid", True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[holder]]\nissuer = "zz"\nserial = 1\n', "holder 1: issuer must be the key id in hex"),
        ('[[holder]]\nissuer = ""\nserial = 1\n', "issuer must be the key id in hex"),
        (f'[[holder]]\nissuer = "{ISSUER}"\nserial = -1\n', "serial must be a non-negative"),
        (f'[[holder]]\nissuer = "{ISSUER}"\nserial = "1"\n', "serial must be a non-negative"),
        (
            f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\ncertificate = "ok"\n',
            "certificate must be one of valid, invalid, unknown",
        ),
        (
            f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\nbirth_date = "2000-01-01"\n',
            "birth_date must be a TOML date",
        ),
        (
            f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\nbirth_date = 2000-01-01T00:00:00\n',
            "birth_date must be a TOML date",
        ),
        (f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\nname = "x"\n', "unknown key(s) name"),
        (
            f'[[holder]]\nissuer = "{ISSUER}"\nserial = 1\n' * 2,
            f"holder 2: issuer {ISSUER} serial 1 twice",
        ),
        ("holder = 1\n", "holder must be an array of tables"),
        ("[people]\n", "unknown table(s) people"),
        ("[[holder]\n", "not TOML"),
    ],
)
def test_a_bad_book_is_refused_with_the_holder_and_problem_named(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(AgeBookError) as caught:
        book(text, tmp_path)
    assert expected in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_a_missing_or_special_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AgeBookError, match=r"ages\.toml"):
        AgeBook.load(tmp_path / "ages.toml")
    with pytest.raises(AgeBookError, match="directory"):
        AgeBook.load(tmp_path)


@given(
    born=st.dates(date(1900, 1, 1), date(2020, 12, 31)),
    years=st.integers(1, 80),
    offset=st.integers(-800, 800),
)
def test_over_is_monotone_in_the_day_and_flips_exactly_once(
    born: date, years: int, offset: int
) -> None:
    ages = AgeBook({(KEY, 1): Holder("valid", born)})
    flip = attained(born, years)
    day = flip + timedelta(days=offset)
    assert ages.answer(KEY, 1, years, day).over is (day >= flip)
    assert ages.answer(KEY, 1, years, flip - timedelta(days=1)).over is False
    assert (flip.month, flip.day) == (born.month, born.day) or (born.month, born.day) == (2, 29)
