"""The enrolment source TOML: what it means, every problem with its path, the converter."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminald.core.access import EnrolledCard
from terminald.enrolment.errors import EnrolmentFormatError
from terminald.enrolment.model import AgeAttestation, EnrolmentContent, Period
from terminald.enrolment.source import parse_period, parse_source, parse_source_text
from terminald.enrolment.source_render import content_from_enrolled, render_source

from .enrolment_support import contents

EXAMPLE = """
[[person]]
subject = "E1001"
label = "Sato Hanako"
groups = ["office", "lab"]
schedule = "office-hours"
valid_from = 2026-04-01
valid_until = 2027-04-01
cards = [{ issuer = "1a:c1", serial = 4660 }, { issuer = "2bd2", serial = "18446744073709551617" }]
ages = [{ over = 20, from = 2026-05-01 }]

[[person]]
subject = "E1002"
valid_from = 2026-04-01T08:30:00
cards = [{ issuer = "1ac1", serial = 4661 }]

[schedule.office-hours]
mon = ["08:00-19:00"]
fri = ["22:00-06:00"]
sat = ["13:00-15:00", "09:00-12:00"]
holiday = []

[calendar]
dates = [2026-12-29, 2026-12-30]

[set]
timezone = "Asia/Tokyo"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(EnrolmentFormatError) as caught:
        parse_source_text(text)
    return caught.value.problems


def test_the_example_means_what_the_docs_say() -> None:
    content = parse_source_text(EXAMPLE)
    sato = content.people["E1001"]
    assert sato.groups == {"office", "lab"} and sato.schedule == "office-hours"
    assert sato.valid_from == datetime(2026, 3, 31, 15, 0, tzinfo=UTC)  # local midnight
    assert sato.valid_until == datetime(2027, 3, 31, 15, 0, tzinfo=UTC)
    assert sato.ages == (AgeAttestation(20, date(2026, 5, 1)),)
    assert content.people["E1002"].valid_from == datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    issuer = bytes.fromhex("1ac1")
    assert content.credentials[issuer, 4660].subject == "E1001"
    assert content.credentials[bytes.fromhex("2bd2"), 2**64 + 1].subject == "E1001"
    week = content.schedules["office-hours"]
    assert week.days[0] == (Period(480, 1140),) and week.days[1] == ()
    assert week.days[4] == (Period(1320, 1800),)  # past midnight: Friday's
    assert week.days[5] == (Period(540, 720), Period(780, 900))  # sorted
    assert content.calendar.dates == {date(2026, 12, 29), date(2026, 12, 30)}


def test_the_timezone_decides_the_dates() -> None:
    content = parse_source_text(EXAMPLE.replace("Asia/Tokyo", "UTC"))
    assert content.people["E1001"].valid_from == datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("08:00-19:00", Period(480, 1140)),
        ("22:00-06:00", Period(1320, 1800)),
        ("00:00-24:00", Period(0, 1440)),
        ("08:00-08:00", Period(480, 1920)),  # a whole day round
    ],
)
def test_periods(text: str, period: Period) -> None:
    assert parse_period(text) == period


def test_every_problem_is_named_with_its_path_and_nothing_is_returned() -> None:
    text = """
    colour = "red"
    [[person]]
    subject = ""
    cards = [{ issuer = "zz", serial = -1 }]
    ages = [{ born = 1990-01-01 }]
    [[person]]
    subject = "x"
    schedule = "nope"
    cards = [{ issuer = "aa", serial = 1 }, { issuer = "aa", serial = 1 }]
    valid_from = 2026-05-01
    valid_until = 2026-04-01
    [[person]]
    subject = "x"
    [schedule.a]
    mon = ["25:00-26:00"]
    tue = "08:00-09:00"
    [calendar]
    country = "JP"
    dates = [2026-01-01]
    [set]
    timezone = "Mars/Olympus"
    """
    problems = problems_of(text)
    expected = [
        "(top level): unknown key(s) colour",
        "set.timezone: not an IANA time zone",
        "schedule.a.mon[0]: '25:00' is not a time of day",
        "schedule.a.tue: must be a list",
        "calendar: give country (public holidays) or dates (your own), not both",
        "person[0].subject: is empty",
        "person[0].ages[0]: must be { over = N, from = DATE } (an attestation, never a birth",
        "person[0].cards[0].issuer: must be a key id in hex",
        "person[1].schedule: 'nope' is not a [schedule.X] here",
        "person[1].valid_until: must be after valid_from",
        "person[1].cards[1]: the same certificate (aa/1) as person[1].cards[0]",
        "person[2].subject: 'x' is enrolled twice",
        "person[2].cards: missing",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), problems


def test_a_serial_beyond_twenty_bytes_and_a_bad_serial_are_named() -> None:
    problems = problems_of(
        '[[person]]\nsubject = "a"\n'
        f'cards = [{{ issuer = "aa", serial = "{2**160}" }}, {{ issuer = "aa", serial = true }}]\n'
    )
    assert problems[0].startswith("person[0].cards[0].serial: must be below 2**160")
    assert problems[1].startswith("person[0].cards[1].serial: must be a non-negative integer")


def test_bad_toml_is_a_format_error() -> None:
    assert problems_of("[[person]\n")[0].startswith("not valid TOML")
    assert problems_of("a = " + "[" * 5000 + "]" * 5000)[0].startswith("not valid TOML")


@settings(max_examples=60, deadline=None)
@given(contents())
def test_a_rendered_source_parses_back_to_the_same_content(content: EnrolmentContent) -> None:
    assert parse_source_text(render_source(content)) == content


def test_the_old_enrolled_list_becomes_one_person_a_card() -> None:
    issuer = bytes.fromhex("aa" * 20)
    cards = [
        EnrolledCard(4660, issuer, "desk"),
        EnrolledCard(4661, issuer, ""),
        EnrolledCard(1, issuer, "twin"),
        EnrolledCard(2, issuer, "twin"),
    ]
    content = content_from_enrolled(cards, ["office"])
    assert set(content.people) == {
        "desk",
        "aaaaaaaaaaaaaaaa:4661",
        "aaaaaaaaaaaaaaaa:1",
        "aaaaaaaaaaaaaaaa:2",
    }
    assert content.people["aaaaaaaaaaaaaaaa:1"].label == "twin"
    assert all(p.groups == {"office"} for p in content.people.values())
    assert content.credentials[issuer, 4660].subject == "desk"
    assert parse_source_text(render_source(content)) == content


def test_what_the_signed_form_cannot_carry_is_named_at_parse_time() -> None:
    problems = problems_of(
        '[[person]]\nsubject = "a"\ncards = []\nvalid_from = 1960-01-01\n'
        "ages = [{ over = 20, from = 1800-01-01 }]\n"
    )
    assert any("valid_from: must be whole seconds between 1970 and 9999" in p for p in problems)
    assert any("ages: 1800-01-01 is not in 1900..9999" in p for p in problems)


TOML_VALUES = st.recursive(
    st.none().map(lambda _: "")
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(max_size=12)
    | st.dates()
    | st.datetimes()
    | st.times(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["subject", "cards", "issuer", "serial", "ages", "over", "from", "groups",
             "schedule", "valid_from", "valid_until", "mon", "holiday", "dates", "country",
             "timezone", "label", "x"]
        ),
        inner,
        max_size=5,
    ),
    max_leaves=20,
)  # fmt: skip
DOCUMENTS = st.dictionaries(
    st.sampled_from(["person", "schedule", "calendar", "set", "other"]), TOML_VALUES, max_size=4
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_any_document_parses_or_names_its_problems(data: dict) -> None:  # type: ignore[type-arg]
    try:
        content = parse_source(data)
    except EnrolmentFormatError as exc:
        assert exc.problems and all(": " in p for p in exc.problems)
    else:
        assert parse_source_text(render_source(content)) == content


@pytest.mark.parametrize("zone", ["Asia", "Asia/", "/etc/passwd", "..", "tzdata.zi", "UTC "])
def test_a_timezone_that_is_not_one_is_named(zone: str) -> None:
    (problem,) = problems_of(f"[set]\ntimezone = {json.dumps(zone)}\n")
    assert problem.startswith("set.timezone: not an IANA time zone")


def test_a_country_the_holidays_library_does_not_know_is_named() -> None:
    (problem,) = problems_of('[calendar]\ncountry = "XX"\n')
    assert problem.startswith("calendar.country: must be a country code the holidays library")
    assert parse_source_text('[calendar]\ncountry = "DE"\n').calendar.country == "DE"
