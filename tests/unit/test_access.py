"""The access policy and the enrolled-cards file: a card is (issuer key id, serial)."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminald.core.access import AnyCard, EnrolledCard, EnrolledCards
from terminald.core.auth import CardIdentity
from terminald.store.enrolled import EnrolledFileError, load_enrolled

ROOT_A, ROOT_B = bytes.fromhex("aa" * 20), bytes.fromhex("bb" * 20)
A, B = "aa" * 20, "bb" * 20


def test_any_card_admits_everyone() -> None:
    assert AnyCard().refusal(CardIdentity(1, ROOT_A)) is None


def test_enrolled_cards_match_the_pair_and_nothing_less() -> None:
    cards = EnrolledCards.of([EnrolledCard(10, ROOT_A, "alice"), EnrolledCard(20, ROOT_B, "bob")])
    assert len(cards) == 2
    assert cards.refusal(CardIdentity(10, ROOT_A)) is None
    # The same serial from another root is another person.
    assert cards.refusal(CardIdentity(10, ROOT_B)) == (
        f"serial 10 of issuer {B} is not enrolled at this terminal"
    )
    assert cards.refusal(CardIdentity(11, ROOT_A)) is not None
    # An identity whose issuer was never proven (a rejected certificate) matches no one.
    assert cards.match(CardIdentity(10)) is None
    assert "of issuer unknown" in str(cards.refusal(CardIdentity(10)))
    bob = cards.match(CardIdentity(20, ROOT_B))
    assert bob is not None and bob.label == "bob"


def test_the_same_serial_under_two_issuers_is_two_people() -> None:
    cards = EnrolledCards.of([EnrolledCard(10, ROOT_A, "alice"), EnrolledCard(10, ROOT_B, "bob")])
    assert len(cards) == 2
    alice, bob = cards.match(CardIdentity(10, ROOT_A)), cards.match(CardIdentity(10, ROOT_B))
    assert alice is not None and alice.label == "alice"
    assert bob is not None and bob.label == "bob"


def test_the_same_pair_twice_is_refused_in_code_too() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        EnrolledCards.of([EnrolledCard(10, ROOT_A, "alice"), EnrolledCard(10, ROOT_A, "eve")])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enrolled.toml"
    path.write_text(text)
    return path


def test_the_enrolled_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[[card]]\nserial = 10\nissuer = "{"aa:" * 19}aa"\nlabel = "alice"\n'
        f'[[card]]\nserial = "123456789012345678901234567890"\nissuer = "{B.upper()}"\n'
        f'[[card]]\nserial = 10\nissuer = " {B} "\nlabel = "bob"\n',
    )
    cards = load_enrolled(path)
    assert len(cards) == 3
    assert cards.refusal(CardIdentity(10, ROOT_A)) is None
    assert cards.refusal(CardIdentity(123456789012345678901234567890, ROOT_B)) is None
    assert cards.refusal(CardIdentity(123456789012345678901234567890, ROOT_A)) is not None
    bob = cards.match(CardIdentity(10, ROOT_B))
    assert bob is not None and bob.label == "bob"


def test_an_empty_file_enrols_no_one(tmp_path: Path) -> None:
    cards = load_enrolled(write(tmp_path, "# nobody yet\n"))
    assert len(cards) == 0
    assert cards.refusal(CardIdentity(1, ROOT_A)) is not None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f'[[card]]\nserial = -1\nissuer = "{A}"\n', "card[0].serial (serial -1): must be a non"),
        (f'[[card]]\nissuer = "{A}"\n', "card[0].serial: must be a non-negative integer, got None"),
        ("[[card]]\nserial = 1\n", "card[0].issuer (serial 1): missing; every entry needs it"),
        (
            '[[card]]\nserial = 1\nlabel = "desk"\n',
            "card[0].issuer (serial 1, label 'desk'): missing",
        ),
        ('[[card]]\nserial = 1\nissuer = ""\n', "card[0].issuer (serial 1): is empty"),
        ('[[card]]\nserial = 1\nissuer = " : "\n', "card[0].issuer (serial 1): is empty"),
        ('[[card]]\nserial = 1\nissuer = "xyz"\n', "card[0].issuer (serial 1): must be a key id"),
        ('[[card]]\nserial = 1\nissuer = "abc"\n', "must be a key id in hex, got 'abc'"),
        ("[[card]]\nserial = 1\nissuer = 12\n", "must be a key id in hex, got 12"),
        (f'[[card]]\nserial = 1\nissuer = "{"ab" * 65}"\n', "is 65 bytes; a key id has at most"),
        (f'[[card]]\nserial = 1\nissuer = "{A}"\nlabel = 5\n', "card[0].label (serial 1): must"),
        (f"[[card]]\nserial = 1\nissuer = '{A}'\nname = 'x'\n", "card[0] (serial 1): unknown"),
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


def test_a_missing_issuer_says_how_to_find_it(tmp_path: Path) -> None:
    with pytest.raises(EnrolledFileError) as info:
        load_enrolled(write(tmp_path, '[[card]]\nserial = 4660\nlabel = "front desk"\n'))
    text = str(info.value)
    assert "card[0].issuer (serial 4660, label 'front desk'): missing" in text
    assert "`terminald auth`" in text and "`terminald cert show FILE`" in text


def test_the_same_pair_twice_names_both_entries(tmp_path: Path) -> None:
    text = (
        f'[[card]]\nserial = 7\nissuer = "{A}"\nlabel = "alice"\n'
        f'[[card]]\nserial = 7\nissuer = "{B}"\nlabel = "bob"\n'
        f'[[card]]\nserial = 7\nissuer = "{A.upper()}"\nlabel = "eve"\n'
    )
    with pytest.raises(EnrolledFileError) as info:
        load_enrolled(write(tmp_path, text))
    assert info.value.problems == [
        f"card[2] (serial 7, label 'eve'): the same certificate (issuer {A}, serial 7) "
        "as card[0] (serial 7, label 'alice')"
    ]


def test_one_bad_entry_rejects_the_good_ones_too(tmp_path: Path) -> None:
    text = f'[[card]]\nserial = 7\nissuer = "{A}"\n[[card]]\nserial = \'x\'\nissuer = "{A}"\n'
    with pytest.raises(EnrolledFileError) as info:
        load_enrolled(write(tmp_path, text))
    assert info.value.problems == [
        "card[1].serial (serial x): must be a non-negative integer, got 'x'"
    ]


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnrolledFileError, match="cannot read: No such file"):
        load_enrolled(tmp_path / "nope.toml")
