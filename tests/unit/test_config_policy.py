"""[terminal] location/timezone, [gate], [vending] and [attendance]: values and every
mistake named by its key."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path

import pytest

from terminald.config import Config, ConfigError, config_from_dict
from terminald.config_policy import check_period, clock_time
from terminald.config_show import config_as_dict

BASE = {
    "terminal": {"id": "t1"},
    "revocation": {"backoffice_keys": ["/k.pub"]},
    "gpio": {"board": "rpi4"},
}


def load(**sections: dict[str, object]) -> Config:
    data = {**BASE, **sections}
    data["terminal"] = {**BASE["terminal"], **sections.get("terminal", {})}
    return config_from_dict(data)


def problems(**sections: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(**sections)
    return caught.value.messages


def test_defaults_are_a_gate_in_tokyo_with_nothing_on() -> None:
    config = config_from_dict(BASE)
    assert config.terminal.timezone == "Asia/Tokyo" and config.terminal.location == ""
    assert config.gate.anti_passback == "off" and config.gate.groups == ()
    assert config.gate.passback_reset == time(3, 0)
    assert config.vending.age == 20 and config.vending.products == ()
    assert config.attendance.mode == "auto"
    assert config.access.grace_hours == 0 and config.state.audit_max_age_days == 0


def test_a_vending_machine_with_products_round_trips() -> None:
    vending = {
        "enable_s": 20,
        "complete_input": True,
        "product": [
            {"key": "A", "name": "beer", "age": 20, "hours": ["05:00-23:00"]},
            {"key": "B", "name": "tea", "pin": False},
        ],
    }
    config = config_from_dict({**BASE, "vending": vending})
    beer, tea = config.vending.products
    assert (beer.key, beer.age, beer.pin, beer.hours) == ("A", 20, True, ("05:00-23:00",))
    assert (tea.key, tea.age, tea.pin) == ("B", None, False)
    shown = config_as_dict(config)
    assert config_from_dict({**shown, "vending": shown["vending"]}) == config


def test_product_mistakes_are_each_named() -> None:
    found = problems(
        vending={
            "product": [
                {"key": "A", "name": "beer", "age": -1, "hours": ["5-23"], "colour": "red"},
                {"key": "A", "name": "", "pin": "no"},
                {"key": "E", "name": "x"},
            ]
        }
    )
    assert any(m.startswith("vending.product[0].age: must be an integer 0-150") for m in found)
    assert any(m.startswith('vending.product[0].hours[0]: must be "HH:MM-HH:MM"') for m in found)
    assert any(m.startswith("vending.product[0].colour: unknown key") for m in found)
    assert "vending.product[1].key: A is already another product's key" in found
    assert any(m.startswith("vending.product[1].name:") for m in found)
    assert any(m.startswith("vending.product[1].pin:") for m in found)
    assert any(m.startswith("vending.product[2].key: must be one of A, B, C, D") for m in found)


def test_anti_passback_needs_its_partner_and_a_clock_time() -> None:
    found = problems(gate={"anti_passback": "entry", "passback_reset": "3am"})
    assert any(m.startswith("gate.passback_partner: the partner terminal's id") for m in found)
    assert any(m.startswith('gate.passback_reset: must be "HH:MM"') for m in found)
    config = load(gate={"anti_passback": "exit", "passback_partner": "gate-in", "groups": ["a"]})
    assert config.gate.passback_partner == "gate-in" and config.gate.groups == ("a",)


def test_a_wrong_time_zone_and_bad_group_names_are_refused() -> None:
    found = problems(terminal={"timezone": "Asia/Tokio"}, attendance={"door_groups": ["", 3]})
    assert any(m.startswith('terminal.timezone: unknown time zone "Asia/Tokio"') for m in found)
    assert any(m.startswith("attendance.door_groups[0]:") for m in found)
    assert any(m.startswith("attendance.door_groups[1]:") for m in found)


def test_access_takes_the_signed_enrolment() -> None:
    config = load(access={"policy": "enrolment", "grace_hours": 24})
    assert config.access.policy == "enrolment" and config.access.grace_hours == 24


@pytest.mark.parametrize("text", ["00:00-00:00", "22:00-06:00", "08:30-17:15"])
def test_periods_that_parse(text: str) -> None:
    assert check_period(text) is None


@pytest.mark.parametrize("text", ["25:00-01:00", "8:00-9", "08:00", "08:00-08:60", ""])
def test_periods_that_do_not(text: str) -> None:
    assert check_period(text) is not None


def test_clock_time() -> None:
    assert clock_time("23:59") == time(23, 59) and clock_time("24:00") is None


def test_an_attendance_clock_needs_enrolled_people() -> None:
    found = problems(terminal={"purpose": "attendance"}, access={"policy": "any_card"})
    assert any(m.startswith("access.policy: an attendance clock records people") for m in found)


def test_a_4x4_keypad_adds_the_pin_maps_fourth_column() -> None:
    from terminald.backends.pinmap import PinMapError, load_board, parse_pinmap

    assert load_board("rpi4").keypad.layout == "3x4"
    wide = load_board("rpi4", keypad="4x4")
    assert wide.keypad.layout == "4x4" and wide.keypad.cols[-1] == 21
    assert "A" in wide.keypad.keys
    assert load_config_keypad("4x4") == "4x4"
    with pytest.raises(ConfigError):
        load_config_keypad("5x5")
    bare = {**BASE}
    assert config_from_dict(bare).gpio.keypad == ""
    board = Path(__file__).resolve().parents[2] / "hw" / "boards" / "rpi4.toml"
    data = tomllib.loads(board.read_text())
    del data["keypad"]["col4"]
    with pytest.raises(PinMapError):  # a board file without keypad.col4
        parse_pinmap(data, keypad="4x4")


def load_config_keypad(keypad: str) -> str:
    return config_from_dict({**BASE, "gpio": {"board": "rpi4", "keypad": keypad}}).gpio.keypad


def test_a_product_without_an_age_takes_the_machines() -> None:
    from terminald.daemon.policy_wiring import policy_settings

    vending = {
        "age": 20,
        "product": [
            {"key": "A", "name": "beer"},
            {"key": "B", "name": "tea", "age": 0},
            {"key": "C", "name": "wine", "age": 21},
        ],
    }
    config = load(terminal={"purpose": "vend"}, vending=vending)
    beer, tea, wine = policy_settings(config).vending.products
    assert (beer.age, tea.age, wine.age) == (20, None, 21)


def test_gate_rules_that_any_card_would_ignore_are_refused() -> None:
    found = problems(access={"policy": "any_card"}, gate={"groups": ["hq"]})
    assert any(m.startswith("gate.groups: needs enrolled people") for m in found)
    found = problems(
        access={"policy": "any_card"}, gate={"anti_passback": "entry", "passback_partner": "x"}
    )
    assert any(m.startswith("gate.anti_passback: needs enrolled people") for m in found)
