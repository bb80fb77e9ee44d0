"""hw/ data: board pin maps, the config.txt lines, reader profiles; and the pure debouncer."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from terminald.backends.gpio_keypad import MatrixDebouncer
from terminald.backends.pinmap import (
    PinMapError,
    available_boards,
    config_txt_lines,
    default_hw_dir,
    load_board,
    parse_pinmap,
)
from terminald.backends.reader_profiles import (
    ReaderProfileError,
    load_reader_profiles,
    parse_reader_profiles,
)

HW = default_hw_dir()
BOARDS = ("rpi4", "rpi5", "rpizero2w")


def raw_board(name: str = "rpi4") -> dict[str, Any]:
    return tomllib.loads((HW / "boards" / f"{name}.toml").read_text())


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(PinMapError) as e:
        parse_pinmap(data, source="test.toml")
    return str(e.value)


# --- pin maps ------------------------------------------------------------------------------


def test_the_three_boards_are_there() -> None:
    assert set(BOARDS) <= set(available_boards())


@pytest.mark.parametrize("name", BOARDS)
def test_every_board_loads_and_keeps_the_relay_off_at_boot(name: str) -> None:
    pinmap = load_board(name)
    assert pinmap.board == name
    used = pinmap.used_pins()
    assert len(set(used.values())) == len(used) == 4 + 3 + 3 + 1 + 1 + 3 + 1  # + vend_complete
    assert pinmap.vend_complete is not None and pinmap.vend_complete.active_low
    relay = pinmap.relay
    held_low = relay.pin in pinmap.boot_pull_down or relay.external_pull == "down"
    assert relay.active_high and held_low
    assert relay.pin not in range(0, 9), "GPIO 0-8 are pulled up at power-on"
    assert config_txt_lines(pinmap) == [f"gpio={relay.pin}=op,dl"]


def test_the_config_txt_snippet_matches_the_pin_maps() -> None:
    snippet = (HW / "config.txt.snippet").read_text()
    for name in BOARDS:
        for line in config_txt_lines(load_board(name)):
            assert line in snippet


def test_an_active_low_relay_is_driven_high_at_boot() -> None:
    data = raw_board()
    data["relay"].update(active_high=False, external_pull="up")
    assert config_txt_lines(parse_pinmap(data)) == ["gpio=26=op,dh"]


def test_a_pin_used_twice_names_both_keys() -> None:
    data = raw_board()
    data["inputs"]["rex"]["pin"] = 22  # the green LED
    message = error_of(data)
    assert "inputs.rex.pin" in message and "leds.green" in message and "GPIO 22" in message


def test_a_pin_off_the_header_is_refused() -> None:
    data = raw_board()
    data["keypad"]["rows"][2] = 40
    assert "keypad.rows[2]: GPIO 40 is not on this board's header" in error_of(data)


def test_a_reserved_pin_is_refused_with_the_reason() -> None:
    data = raw_board()
    data["buzzer"]["pin"] = 14
    assert "buzzer.pin: GPIO 14 is reserved" in error_of(data)
    assert "back-office serial link" in error_of(data)


def test_an_active_high_relay_on_a_boot_pull_up_pin_is_refused() -> None:
    data = raw_board()
    data["relay"]["pin"] = 7  # pulled up at power-on: the relay would click on at boot
    message = error_of(data)
    assert "relay.pin: GPIO 7 is not known to be pulled down at power-on" in message
    assert "external_pull" in message


def test_an_active_low_relay_needs_a_pin_held_high() -> None:
    data = raw_board()
    data["relay"]["active_high"] = False  # GPIO 26 is pulled down: relay on during boot
    assert "relay.pin: GPIO 26 is not known to be pulled up" in error_of(data)


def test_external_pull_must_match_the_relay_off_level() -> None:
    data = raw_board("rpi5")
    data["relay"]["external_pull"] = "up"
    assert "relay.external_pull" in error_of(data)
    data["relay"]["external_pull"] = "none"  # Pi 5: no published power-on pulls
    assert "relay.pin: GPIO 26 is not known to be pulled down" in error_of(data)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("relay", "lock"), "sometimes", "relay.lock: must be one of fail-secure, fail-safe"),
        (("relay", "active_high"), "yes", "relay.active_high: must be true or false"),
        (("keypad", "layout"), "5x5", "keypad.layout: must be one of 3x4, 4x4"),
        (("keypad", "debounce_ms"), 0, "keypad.debounce_ms: must be an integer from 1 to 500"),
        (("leds", "green"), "22", "leds.green: must be a BCM GPIO number"),
        (("keypad", "cols"), [12, 16], "keypad: a 3x4 keypad needs 4 rows and 3 cols"),
    ],
)
def test_bad_values_name_the_key(path: tuple[str, str], value: Any, expected: str) -> None:
    data = raw_board()
    data[path[0]][path[1]] = value
    assert expected in error_of(data)


def test_missing_parts_name_the_key() -> None:
    data = raw_board()
    del data["inputs"]["tamper"]
    assert "test.toml: inputs.tamper: missing table" in error_of(data)
    data = raw_board()
    del data["relay"]["lock"]
    assert "relay.lock: missing" in error_of(data)


def test_unknown_and_malformed_board_names(tmp_path: Path) -> None:
    with pytest.raises(PinMapError, match="known boards: rpi4, rpi5, rpizero2w"):
        load_board("rpi3")
    with pytest.raises(PinMapError, match="lower-case"):
        load_board("../etc/passwd")
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "broken.toml").write_text("[board\n")
    with pytest.raises(PinMapError, match=r"broken\.toml: not valid TOML"):
        load_board("broken", hw_dir=tmp_path)


def test_parse_does_not_mutate_its_input() -> None:
    data = raw_board()
    before = copy.deepcopy(data)
    parse_pinmap(data)
    assert data == before


# --- reader profiles --------------------------------------------------------------------------


def test_vpcd_passes_extended_apdus_and_unknown_readers_do_not() -> None:
    profiles = load_reader_profiles()
    assert profiles.extended_apdus("Virtual PCD 00 00") is True
    assert profiles.extended_apdus("Virtual PCD 00 01") is True
    assert profiles.extended_apdus("Some Unknown Reader 00 00") is False
    assert profiles.lookup("Some Unknown Reader 00 00") is None


def test_unknown_support_means_short_apdus() -> None:
    profiles = load_reader_profiles()
    acr = profiles.lookup("ACS ACR122U PICC Interface 00 00")
    assert acr is not None and acr.extended_apdus is None
    assert profiles.extended_apdus("ACS ACR122U PICC Interface 00 00") is False


def test_every_claimed_capability_has_a_source() -> None:
    for p in load_reader_profiles().profiles:
        if p.extended_apdus is not None:
            assert p.sources, f"{p.name}: a yes/no claim needs a source"


def test_the_longest_prefix_wins() -> None:
    profiles = parse_reader_profiles(
        {
            "reader": [
                {"name": "family", "match": ["ACME"], "extended_apdus": False},
                {"name": "model", "match": ["ACME Pro"], "extended_apdus": True},
            ]
        }
    )
    assert profiles.lookup("ACME Pro 00 00").name == "model"  # type: ignore[union-attr]
    assert profiles.extended_apdus("ACME Basic 00 00") is False


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"match": ["X"], "extended_apdus": True}, r"reader\[0\]\.name"),
        ({"name": "x", "match": [], "extended_apdus": True}, r"reader\[0\]\.match: needs"),
        ({"name": "x", "match": ["X"], "extended_apdus": "yes"}, r"extended_apdus: must be"),
        ({"name": "x", "match": ["X"], "extended_apdus": True, "speed": 1}, r"unknown key"),
        (
            {"name": "x", "match": ["X"], "extended_apdus": False, "max_response": 16},
            r"max_response: must be 32\.\.65536",
        ),
        (
            {"name": "x", "match": ["X"], "extended_apdus": False, "max_response": "256"},
            r"max_response: must be a whole",
        ),
        (
            {"name": "x", "match": ["X"], "extended_apdus": False, "max_response": True},
            r"max_response: must be a whole",
        ),
    ],
)
def test_bad_reader_entries_name_the_key(entry: dict[str, Any], expected: str) -> None:
    with pytest.raises(ReaderProfileError, match=expected):
        parse_reader_profiles({"reader": [entry]})


def test_max_response_becomes_the_connection_limits() -> None:
    profiles = parse_reader_profiles(
        {
            "reader": [
                {"name": "small", "match": ["ACME"], "extended_apdus": False, "max_response": 64}
            ]
        }
    )
    limits = profiles.limits("ACME 00 00")
    assert limits.reader == "ACME 00 00" and limits.max_response == 64
    assert "small" in limits.source
    unknown = profiles.limits("Other 00 00")
    assert unknown.max_response is None and "no profile" in unknown.source
    # The shipped file only states limits it has a source for: none today.
    assert all(p.max_response is None or p.sources for p in load_reader_profiles().profiles)


def test_duplicate_reader_names_are_refused() -> None:
    entry = {"name": "x", "match": ["X"], "extended_apdus": False}
    with pytest.raises(ReaderProfileError, match="appears twice"):
        parse_reader_profiles({"reader": [entry, entry]})


# --- the keypad debouncer, deterministic ----------------------------------------------------------


def test_debouncer_needs_n_stable_scans() -> None:
    d = MatrixDebouncer("12", stable_scans=3)
    assert d.feed({"1"}) == [] and d.feed({"1"}) == []
    assert d.feed({"1"}) == ["1"]
    assert d.feed({"1"}) == []  # held: no repeat
    assert not d.idle
    for _ in range(2):
        assert d.feed(set()) == []
    assert d.feed(set()) == [] and d.idle


def test_debouncer_chatter_restarts_the_count() -> None:
    d = MatrixDebouncer("5", stable_scans=3)
    presses = [k for raw in ({"5"}, set(), {"5"}, {"5"}, set(), {"5"}) for k in d.feed(raw)]
    assert presses == []
    presses = [k for _ in range(3) for k in d.feed({"5"})]
    assert presses == ["5"]
    # release chatter never produces a second press
    presses = [k for raw in (set(), {"5"}, set(), {"5"}, set(), set(), set()) for k in d.feed(raw)]
    assert presses == [] and d.idle
