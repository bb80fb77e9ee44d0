"""The console's command table: prefixes, ambiguity, arguments and ``?`` help."""

from __future__ import annotations

import pytest

from terminald.console.commands import (
    EVENTS_MAX,
    Kind,
    ParseError,
    help_lines,
    parse,
    what_next,
)


@pytest.mark.parametrize(
    ("line", "name", "argument"),
    [
        ("status", "status", None),
        ("st", "status", None),
        ("STATUS", "status", None),
        ("  ev  ", "events", None),
        ("ev 5", "events", 5),
        ("rea", "readers", None),
        ("rev", "revocation", None),
        ("en", "enrolment", None),
        ("mo", "mode", None),
        ("mo lock", "mode", "lockdown"),
        ("mode emergency-open", "mode", "emergency_open"),
        ("mode em", "mode", "emergency_open"),
        ("tes r", "test", "relay"),
        ("te le", "test", "leds"),
        ("test b", "test", "buzzer"),
        ("ex", "exit", None),
        ("lo", "logout", None),
        ("he", "help", None),
        ("rest", "restart", None),
    ],
)
def test_unique_prefixes_abbreviate(line: str, name: str, argument: object) -> None:
    parsed = parse(line)
    assert parsed is not None
    assert (parsed.spec.name, parsed.argument) == (name, argument)


def test_an_empty_line_is_no_command() -> None:
    assert parse("   ") is None


@pytest.mark.parametrize(
    ("line", "names"),
    [("e", "events, enrolment, exit"), ("re", "readers, revocation, restart"), ("t", None)],
)
def test_an_ambiguous_prefix_names_the_words_it_could_be(line: str, names: str | None) -> None:
    if names is None:  # "t" is test and time
        names = "time, test"
    with pytest.raises(ParseError, match="ambiguous") as info:
        parse(line)
    for name in names.split(", "):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("frobnicate", "unknown command 'frobnicate'"),
        ("test", "test what? (relay|leds|buzzer)"),
        ("test door", "unknown test argument 'door'"),
        ("mode open", "unknown mode argument 'open'"),
        ("events 0", f"a number from 1 to {EVENTS_MAX}"),
        ("events x", f"a number from 1 to {EVENTS_MAX}"),
        ("events 99999999999", f"a number from 1 to {EVENTS_MAX}"),
        ("status now", "status: unexpected 'now'"),
        ("mode normal now", "mode: unexpected 'now'"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(line)
    assert message in str(info.value)


def test_help_keeps_show_and_change_commands_apart() -> None:
    lines = help_lines()
    show, change, session = (lines.index(h) for h in ("Show:", "Change:", "Session:"))
    assert show < change < session
    assert any("status" in line for line in lines[show:change])
    assert any("mode" in line for line in lines[change:session])
    assert not any(line.strip().startswith("mode") for line in lines[show:change])
    assert all(len(line) <= 79 for line in lines)


def test_question_mark_alone_lists_every_command() -> None:
    listed = [line.split()[0] for line in what_next("")]
    assert {"status", "events", "test", "mode", "restart", "logout"} <= set(listed)


def test_question_mark_after_a_prefix_lists_the_words_it_could_complete() -> None:
    assert [line.split()[0] for line in what_next("re")] == ["readers", "revocation", "restart"]


def test_question_mark_after_a_command_lists_its_arguments() -> None:
    lines = what_next("test ")
    assert [line.split()[0] for line in lines] == ["relay", "leds", "buzzer"]  # no <cr>
    assert what_next("mode ")[-1].strip() == "<cr>"  # mode alone shows the mode
    assert what_next("ev ")[0].split()[0] == f"<1-{EVENTS_MAX}>"
    assert what_next("status ") == ["  <cr>"]


def test_question_mark_after_a_partial_argument_filters_it() -> None:
    assert [line.split()[0] for line in what_next("mode l")] == ["lockdown"]


def test_question_mark_after_an_unknown_word_says_so() -> None:
    assert "unknown command" in what_next("zz ")[0]


def test_every_command_has_a_kind_and_help() -> None:
    from terminald.console.commands import TABLE

    assert {s.kind for s in TABLE} == set(Kind)
    assert all(s.help and len(s.name) < 12 for s in TABLE)
