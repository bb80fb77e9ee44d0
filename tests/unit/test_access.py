"""The access policy and the enrolled-cards file."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminald.core.access import AnyCard, EnrolledCard, EnrolledCards
from terminald.core.auth import CardIdentity
from terminald.store.enrolled import EnrolledFileError, load_enrolled

ROOT_A, ROOT_B = bytes.fromhex("aa" * 20), bytes.fromhex("bb" * 20)


def test_any_card_admits_everyone() -> None:
    assert AnyCard().refusal(CardIdentity(1, ROOT_A)) is None


def test_enrolled_cards_match_serial_and_issuer() -> None:
    cards = EnrolledCards.of([EnrolledCard(10, ROOT_A, "alice"), EnrolledCard(20, None, "bob")])
    assert len(cards) == 2
    assert cards.refusal(CardIdentity(10, ROOT_A)) is None
    assert cards.refusal(CardIdentity(10, ROOT_B)) == "serial 10 is not enrolled at this terminal"
    assert cards.refusal(CardIdentity(11, ROOT_A)) is not None
    bob = cards.match(CardIdentity(20, ROOT_B))  # no issuer given: any trusted root
    assert bob is not None and bob.label == "bob"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enrolled.toml"
    path.write_text(text)
    return path


def test_the_enrolled_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[[card]]\nserial = 10\nissuer = "{"aa:" * 19}aa"\nlabel = "alice"\n'
        '[[card]]\nserial = "123456789012345678901234567890"\n',
    )
    cards = load_enrolled(path)
    assert len(cards) == 2
    assert cards.refusal(CardIdentity(10, ROOT_A)) is None
    assert cards.refusal(CardIdentity(123456789012345678901234567890, ROOT_B)) is None


def test_an_empty_file_enrols_no_one(tmp_path: Path) -> None:
    cards = load_enrolled(write(tmp_path, "# nobody yet\n"))
    assert len(cards) == 0
    assert cards.refusal(CardIdentity(1)) is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[card]]\nserial = -1\n", "card[0].serial: must be a non-negative integer"),
        ("[[card]]\n", "card[0].serial: must be a non-negative integer, got None"),
        ('[[card]]\nserial = 1\nissuer = "xyz"\n', "card[0].issuer: must be a key id in hex"),
        ("[[card]]\nserial = 1\nlabel = 5\n", "card[0].label: must be printable text"),
        ("[[card]]\nserial = 1\nname = 'x'\n", "card[0]: unknown key(s) name"),
        ("[[cards]]\nserial = 1\n", "unknown key(s) cards"),
        ("card = 1\n", "card: must be an array of tables"),
        ("[[card]\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_whole_with_the_problem_named(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(EnrolledFileError) as info:
        load_enrolled(write(tmp_path, text))
    assert problem in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_one_bad_entry_rejects_the_good_ones_too(tmp_path: Path) -> None:
    with pytest.raises(EnrolledFileError) as info:
        load_enrolled(write(tmp_path, "[[card]]\nserial = 7\n[[card]]\nserial = 'x'\n"))
    assert info.value.problems == ["card[1].serial: must be a non-negative integer, got 'x'"]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnrolledFileError, match="cannot read: No such file"):
        load_enrolled(tmp_path / "nope.toml")
