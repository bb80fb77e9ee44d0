"""The demo: its screen's rendering (a pure function of a View), keys, config and tour."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from terminald.cli import build_parser
from terminald.config import load_config
from terminald.core.auth import CardIdentity
from terminald.core.reasons import Reason
from terminald.daemon.service import Snapshot
from terminald.sim.checks import StepFailed
from terminald.sim.demo_rig import NOT_ENROLLED_CARD, TOUR_TIMINGS, write_demo_config
from terminald.sim.demo_screen import LogScroll, fits, needed, shown_verdict
from terminald.sim.demo_tour import Seen, Step, Tour
from terminald.sim.demo_ui import CardRow, Hands, PinWatch, View, plain, render
from terminald.sim.rig import LogTail
from terminald.sim.testpki import TestPkiManifest
from terminald.store.enrolled import load_enrolled

CARDS = (
    CardRow("a", "card-001", "good card", "1234", 3, on_reader=True),
    CardRow("b", "card-002", "good card", "5678", 2),
    CardRow("c", "card-003", "good, NOT enrolled", "4321", 3, enrolled=False),
    *(
        CardRow(letter, name, "something wrong")
        for letter, name in zip(
            "efghijklno",
            [f"bad-{i}" for i in range(10)],
            strict=True,
        )
    ),
)


def view(**changes: Any) -> View:
    fields: dict[str, Any] = {
        "snapshot": Snapshot(
            state="pin_entry",
            mode="normal",
            pin_digits=2,
            card_present=True,
            alarms=frozenset({"forced_open"}),
            relay_energised=True,
            health=None,
        ),
        "leds": {"green": False, "red": False, "amber": True},
        "buzzer": True,
        "door_open": True,
        "rex_pressed": False,
        "tamper": False,
        "cards": CARDS,
        "log": tuple(f"12:00:{i:02d} event=line{i}" for i in range(30)),
        "verdict": ("refused pin_wrong", False),
        "note": "card-001 on the reader",
        "terminal_id": "demo-gate",
        "state_dir": "/tmp/terminald-demo-x1y2z3/terminal/state",
    }
    fields.update(changes)
    return View(**fields)


def text(v: View, width: int = 80, height: int = 24) -> str:
    return "\n".join(plain(render(v, width, height)))


def test_an_80x24_screen_shows_the_whole_terminal() -> None:
    rows = render(view(), 80, 24)
    lines = plain(rows)
    assert len(lines) == 24
    assert all(len(line) <= 80 for line in lines)
    screen = "\n".join(lines)
    for shown in (
        "TERMINAL demo-gate",
        "pin_entry",
        "••__  2 of 4",
        "RELEASED",
        "BEEP",
        "door     OPEN",
        "forced_open",
        "refused pin_wrong",
        "reader   card-001",
        "PIN 1234 (3 left)",
        "PIN 4321, NOT enrolled",
        "card-001 on the reader",
        "q: quit",
        "state dir /tmp/terminald-demo-x1y2z3/terminal/state",
    ):
        assert shown in screen, shown
    # Every card is listed with its letter; the one on the reader is marked.
    assert ">a card-001" in screen
    assert all(f"{c.letter} {c.name}" in screen for c in CARDS)
    # The log panel shows the newest lines that fit, oldest first.
    log = [line for line in lines if "event=line" in line]
    assert log and log[-1].endswith("event=line29")
    assert "event=line0 " not in screen


def test_leds_are_coloured_blocks_and_styles_say_state() -> None:
    rows = render(view(), 80, 24)
    segments = [seg for row in rows for seg in row]
    assert ("██", "amber") in segments
    assert ("░░", "dim") in segments  # green and red are off
    assert ("RELEASED", "green") in segments
    assert ("refused pin_wrong", "red") in segments
    idle = view(
        snapshot=Snapshot("idle", "lockdown", 0, False, frozenset(), False, "keypad stopped"),
        buzzer=False,
        door_open=False,
        verdict=("granted ok", True),
    )
    screen = text(idle)
    assert "LOCKED" in screen and "silent" in screen and "CLOSED" in screen
    assert "alarms   none" in screen and "keypad stopped" in screen
    segments = [seg for row in render(idle) for seg in row]
    assert ("lockdown", "alert") in segments and ("granted ok", "green") in segments


def test_ascii_and_narrow_terminals() -> None:
    screen = text(view(ascii=True))
    assert "**__" in screen and "##" in screen and "•" not in screen and "█" not in screen
    narrow = plain(render(view(), 50, 40))
    assert all(len(line) <= 50 for line in narrow)
    assert any("pin_entry" in line for line in narrow)
    assert any("card-002" in line for line in narrow)
    assert "too small" not in "\n".join(narrow)
    # The help and the state directory wrap rather than lose their ends.
    assert any("q: quit" in line for line in narrow)
    assert "".join(line.strip() for line in narrow).count("terminald-demo-x1y2z3/terminal/state")


@pytest.mark.parametrize("size", [(80, 10), (79, 24), (30, 60), (10, 5), (80, 2)])
def test_a_window_too_small_says_so_and_how_large_it_must_be(size: tuple[int, int]) -> None:
    width, height = size
    lines = plain(render(view(), width, height))
    assert 0 < len(lines) <= height and all(len(line) <= width for line in lines)
    said = " ".join(line.strip() for line in lines)
    assert said.startswith("The terminal is"), said
    if height >= 5 and width >= 30:
        assert f"{width}x{height}: too small" in said
        (w2, h2), (w1, h1) = needed(view())
        assert f"It needs {w2}x{h2}, or {w1}x{h1} in one column" in said
        assert "q quits" in said


def test_the_smallest_sizes_it_asks_for_do_show_everything() -> None:
    (w2, h2), (w1, h1) = needed(view())
    assert w2 <= 80 and h2 <= 24, "the demo promises to fit 80x24"
    assert fits(view(), 80, 24) and not fits(view(), 79, 24) and not fits(view(), 80, h2 - 1)
    for width, height in ((w2, h2), (w1, h1)):
        lines = plain(render(view(), width, height))
        screen = "\n".join(lines)
        assert "too small" not in screen
        assert "TERMINAL demo-gate" in screen and "q: quit" in screen and "state dir" in screen
        assert sum("event=line" in line for line in lines) >= 3


LONG = (
    "12:00:30 event=granted reason=ok issuer=908f71ab.. serial=16777221 label=card-001 "
    "detail=authenticated card_ms=5.0 apdus=6 tail=THE-END"
)


def test_log_lines_wrap_rather_than_being_cut() -> None:
    lines = plain(render(view(log=(*view().log, LONG)), 80, 24))
    assert all(len(line) <= 80 for line in lines)
    start = next(i for i, line in enumerate(lines) if "event=granted" in line)
    assert lines[-1].rstrip().endswith("tail=THE-END"), lines[start:]
    assert lines[start + 1].startswith(" " * 10), "a continuation sits under the text"
    joined = " ".join(line.strip() for line in lines[start:])
    assert joined == LONG
    # The top of the log panel starts with a whole line, never a lone continuation.
    lines = plain(render(view(log=(LONG,) * 6), 80, 24))
    top = next(i for i, line in enumerate(lines) if line.startswith("── log")) + 1
    assert lines[top].startswith(" 12:00:30 event=granted")
    assert lines[-1].rstrip().endswith("tail=THE-END")


def test_the_log_scrolls_back_and_follows_again() -> None:
    lines = plain(render(view(log_back=10), 80, 24))
    screen = "\n".join(lines)
    assert "event=line19" in screen and "event=line20" not in screen
    assert "10 line(s) back, End follows" in screen
    scroll = LogScroll()
    assert scroll.update(logged=30, kept=30) == 0  # following
    scroll.scroll(5)
    assert scroll.update(logged=30, kept=30) == 5
    # New lines while scrolled back: what is shown stays put.
    assert scroll.update(logged=33, kept=33) == 8
    scroll.scroll(-100)
    assert scroll.update(logged=33, kept=33) == 0
    scroll.scroll(1000)
    assert scroll.update(logged=33, kept=33) == 32  # never past the oldest line kept
    scroll.follow()
    assert scroll.update(logged=40, kept=40) == 0


def test_a_new_card_clears_the_last_verdict() -> None:
    assert shown_verdict("verdict", "granted", "ok") == ("granted ok", True)
    assert shown_verdict("idle", "refused", "pin_wrong") == ("refused pin_wrong", False)
    for deciding in ("checking", "pin_entry", "verifying"):
        assert shown_verdict(deciding, "granted", "ok") is None
    assert shown_verdict("idle", None, None) is None
    screen = text(view(verdict=None))
    assert "verdict  -" in screen


@dataclass
class FakePin:
    state: bool = False
    states: list[Any] = field(default_factory=list)


@dataclass
class PinState:
    timestamp: float
    state: bool


def test_a_pin_watch_catches_a_blip_between_frames() -> None:
    pin = FakePin()
    watch = PinWatch(pin, active_high=True)
    assert not watch.active()
    pin.states += [PinState(0.0, True), PinState(0.04, False)]  # a 40 ms beep
    assert watch.active()
    assert not watch.active()
    pin.state = True
    assert watch.active()


@dataclass
class FakeRig:
    typed: list[str] = field(default_factory=list)
    by_letter: dict[str, Any] = field(default_factory=dict)

    def type(self, keys: str) -> None:
        self.typed.append(keys)


def test_keys_go_to_the_keypad_and_q_quits() -> None:
    rig: Any = FakeRig()
    hands = Hands(rig)
    hands.start()
    try:
        for key in "12*#":
            assert hands.handle(key)
        assert not hands.handle("q")
        assert hands.handle("?")  # unknown keys are ignored
    finally:
        hands.stop()
    assert rig.typed == ["1", "2", "*", "#"]


def test_the_demo_config_loads_and_leaves_one_good_card_out(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    path = write_demo_config(tmp_path, test_pki, TOUR_TIMINGS)
    config = load_config(path)
    assert config.gpio.backend == "mock" and config.access.policy == "enrolled"
    assert config.card.pin_timeout_s == TOUR_TIMINGS.pin_timeout_s
    assert config.relay.open_ms == TOUR_TIMINGS.open_ms
    assert config.door.held_open_s == TOUR_TIMINGS.held_open_s
    enrolled = load_enrolled(config.access.enrolled)
    left_out, good = test_pki.card(NOT_ENROLLED_CARD), test_pki.card("card-001")
    assert left_out.serial is not None and left_out.issuer_key_id is not None
    assert good.serial is not None and good.issuer_key_id is not None
    # Entries name the issuer too: serials are unique only per issuer.
    assert enrolled.refusal(CardIdentity(good.serial, bytes.fromhex(good.issuer_key_id))) is None
    assert (
        enrolled.refusal(CardIdentity(left_out.serial, bytes.fromhex(left_out.issuer_key_id)))
        is not None
    )
    # card-001's serial under another root is another person, not enrolled in the demo.
    twin = test_pki.card("twin")
    assert twin.serial is not None and twin.issuer_key_id is not None
    assert (
        enrolled.refusal(CardIdentity(twin.serial, bytes.fromhex(twin.issuer_key_id))) is not None
    )


def test_the_demo_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["sim", "demo", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--tour" in out and "--pace" in out and "--fast" in out


@dataclass
class FakeDaemon:
    def snapshot(self) -> Snapshot:
        return Snapshot("idle", "normal", 0, False, frozenset(), False, None)


@dataclass
class TourRig:
    timings: Any = TOUR_TIMINGS
    log: LogTail = field(default_factory=LogTail)
    the_daemon: FakeDaemon = field(default_factory=FakeDaemon)
    removed: int = 0

    def remove(self) -> None:
        self.removed += 1

    def relay_energised(self) -> bool:
        return False


def test_a_step_that_sees_something_else_fails_the_tour(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Seen:
        raise StepFailed("no verdict within 15 s")

    steps = [
        Step("fine", "story", "granted ok", lambda: Seen("granted ok", True, Reason.OK)),
        Step("broken", "story", "refused pin_wrong", broken),
        Step("wrong", "story", "refused pin_wrong", lambda: Seen("refused ok", False)),
    ]
    monkeypatch.setattr(Tour, "steps", lambda self: steps)
    rig: Any = TourRig()
    out = io.StringIO()
    results = Tour(rig, out).run()
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].observed == "FAILED: no verdict within 15 s"
    assert rig.removed == 3, "every step is tidied up, a failed one too"
    assert "1/3 steps as expected" in out.getvalue()
