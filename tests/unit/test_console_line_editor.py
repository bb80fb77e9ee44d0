"""The console's line editor, fed bytes as a dumb terminal sends them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.console.line_editor import (
    MAX_PENDING,
    Cancelled,
    EditorEvent,
    EndOfInput,
    HelpAsked,
    Line,
    LineEditor,
)
from tests.fuzzing import FUZZ


def run(data: bytes, editor: LineEditor | None = None) -> tuple[bytes, list[EditorEvent]]:
    editor = editor or LineEditor()
    editor.feed(data)
    echo, events = b"", []
    while True:
        step = editor.step()
        echo += step.echo
        if step.event is None:
            return echo, events
        events.append(step.event)


def test_printable_characters_echo_and_cr_ends_the_line() -> None:
    assert run(b"status\r") == (b"status\r\n", [Line("status")])


@pytest.mark.parametrize("end", [b"\r", b"\n", b"\r\n"])
def test_cr_lf_and_crlf_each_end_one_line(end: bytes) -> None:
    _, events = run(b"a" + end + b"b" + end)
    assert events == [Line("a"), Line("b")]


def test_crlf_split_across_reads_is_still_one_line_end() -> None:
    editor = LineEditor()
    assert run(b"a\r", editor)[1] == [Line("a")]
    assert run(b"\nb\r", editor)[1] == [Line("b")]


def test_an_empty_line_after_crlf_is_a_line_of_its_own() -> None:
    assert run(b"\r\n\r\n")[1] == [Line(""), Line("")]


@pytest.mark.parametrize("backspace", [b"\x08", b"\x7f"])
def test_backspace_as_bs_or_del_erases_one_character(backspace: bytes) -> None:
    echo, events = run(b"stx" + backspace + b"\r")
    assert events == [Line("st")]
    assert echo == b"stx\b \b\r\n"


def test_backspace_on_an_empty_line_does_nothing() -> None:
    assert run(b"\x7f\x7fa\r") == (b"a\r\n", [Line("a")])


def test_ctrl_u_kills_the_line() -> None:
    echo, events = run(b"abc\x15d\r")
    assert events == [Line("d")]
    assert echo == b"abc" + b"\b \b" * 3 + b"d\r\n"


def test_ctrl_w_kills_the_last_word_and_the_spaces_after_it() -> None:
    echo, events = run(b"test relay  \x17leds\r")
    assert events == [Line("test leds")]
    assert echo.count(b"\b \b") == len("relay  ")


def test_ctrl_c_cancels_the_line() -> None:
    echo, events = run(b"mode em\x03status\r")
    assert events == [Cancelled(), Line("status")]
    assert b"^C\r\n" in echo


def test_ctrl_d_ends_input_only_on_an_empty_line() -> None:
    assert run(b"\x04")[1] == [EndOfInput()]
    echo, events = run(b"ab\x04\r")
    assert events == [Line("ab")]
    assert b"\x07" in echo  # the bell: ^D on a non-empty line does nothing else


@pytest.mark.parametrize(
    "escape",
    [b"\x1b[A", b"\x1b[B", b"\x1b[C", b"\x1b[D", b"\x1bOA", b"\x1b[3~", b"\x1b[1;5C", b"\x1bx"],
)
def test_escape_sequences_are_skipped_whole(escape: bytes) -> None:
    echo, events = run(b"st" + escape + b"atus\r")
    assert events == [Line("status")]
    assert echo == b"status\r\n"


def test_an_unterminated_escape_gives_up_after_a_bound() -> None:
    _, events = run(b"\x1b[" + b"1" * 40 + b"ok\r")
    assert events == [Line("1" * 24 + "ok")]  # 16 bytes swallowed, then plain input again


def test_question_mark_asks_for_help_and_keeps_the_line() -> None:
    editor = LineEditor()
    echo, events = run(b"te?", editor)
    assert events == [HelpAsked("te")]
    assert echo.endswith(b"?\r\n")
    assert run(b"st relay\r", editor)[1] == [Line("test relay")]


def test_masked_input_echoes_nothing_but_the_line_end() -> None:
    editor = LineEditor()
    editor.masked = True
    echo, events = run(b"se?cret\x7fT\r", editor)
    assert events == [Line("se?creT")]
    assert echo == b"\r\n"


def test_the_line_is_bounded_and_rings_the_bell() -> None:
    editor = LineEditor(max_line=5)
    echo, events = run(b"abcdefgh\r", editor)
    assert events == [Line("abcde")]
    assert echo.count(b"\x07") == 3


def test_control_and_8_bit_bytes_are_ignored() -> None:
    assert run(b"a\x00\t\x11\x13\xc3\xa9b\r")[1] == [Line("ab")]


def test_pending_input_is_bounded_and_can_be_discarded() -> None:
    editor = LineEditor()
    editor.feed(b"x" * (MAX_PENDING + 100))
    editor.discard_pending()
    assert run(b"ok\r", editor)[1] == [Line("ok")]


@pytest.mark.fuzz
@given(st.binary(max_size=600))
@FUZZ
def test_any_bytes_never_crash_and_lines_stay_printable_and_bounded(data: bytes) -> None:
    editor = LineEditor(max_line=64)
    _, events = run(data, editor)
    for event in events:
        if isinstance(event, Line | HelpAsked):
            assert len(event.text) <= 64
            assert all(" " <= c <= "~" for c in event.text)
    assert len(editor.text) <= 64
