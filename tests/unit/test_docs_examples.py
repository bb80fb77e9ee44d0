"""The worked examples in docs/examples/ stay true to the scenarios CI plays.

Each page names its scenario file (which must exist), and its configuration block — the
```toml fence that starts with ``[terminal]`` — holds every ``[config.*]`` key of that
scenario, so a key added to the scenario and not to the page (or renamed) fails here.
The block must also be a configuration terminald accepts, with the scenario's purpose.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from terminald.config import config_from_dict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PAGES = {
    "office-gate.md": "tests/scenarios/example-office-gate.toml",
    "vending-machine.md": "tests/scenarios/example-vending.toml",
    "attendance-clock.md": "tests/scenarios/example-attendance.toml",
}
_FENCE = re.compile(r"^```toml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def config_block(page: str) -> dict[str, Any]:
    """The page's configuration: its first ```toml block whose first table is [terminal]."""
    for body in _FENCE.findall(page):
        tables = re.findall(r"^\[([a-z_.]+)\]", body, flags=re.MULTILINE)
        if tables[:1] == ["terminal"]:
            return tomllib.loads(body)
    raise AssertionError("no ```toml block starting with [terminal]")


def missing_keys(scenario: dict[str, Any], block: dict[str, Any]) -> list[str]:
    """``section.key`` of the scenario's [config.*] not in ``block``; for an array of
    tables (``[[vending.product]]``), each table's keys too."""
    missing: list[str] = []
    for section, keys in scenario.get("config", {}).items():
        table = block.get(section, {})
        for key, value in keys.items():
            if key not in table:
                missing.append(f"{section}.{key}")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                mine = table[key]
                if not isinstance(mine, list) or len(mine) != len(value):
                    missing.append(f"{section}.{key}: {len(value)} tables")
                    continue
                for index, (theirs, ours) in enumerate(zip(value, mine, strict=True)):
                    missing += [f"{section}.{key}[{index}].{k}" for k in theirs if k not in ours]
    return missing


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_page_names_its_scenario_and_it_exists(name: str) -> None:
    page = (EXAMPLES / name).read_text(encoding="utf-8")
    scenario = PAGES[name]
    assert scenario in page, f"{name} does not name {scenario}"
    assert (ROOT / scenario).is_file()
    assert f"terminald sim scenario {scenario}" in page, "the command that plays it"
    assert "tests/integration/test_scenarios.py" in page


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_config_block_has_every_key_of_the_scenario(name: str) -> None:
    block = config_block((EXAMPLES / name).read_text(encoding="utf-8"))
    scenario = tomllib.loads((ROOT / PAGES[name]).read_text(encoding="utf-8"))
    assert scenario.get("config"), "the scenario has [config.*] sections"
    assert missing_keys(scenario, block) == []


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_config_block_is_a_configuration_terminald_accepts(name: str) -> None:
    block = config_block((EXAMPLES / name).read_text(encoding="utf-8"))
    scenario = tomllib.loads((ROOT / PAGES[name]).read_text(encoding="utf-8"))
    config = config_from_dict(block)  # raises ConfigError naming every problem
    assert config.terminal.purpose == scenario["config"]["terminal"]["purpose"]
    assert config.access.policy == scenario["config"]["access"]["policy"]


def test_the_checks_catch_a_missing_key_and_a_missing_product_key() -> None:
    scenario = {
        "config": {
            "gate": {"groups": ["hq"], "anti_passback": "entry"},
            "vending": {"product": [{"key": "A", "pin": False}]},
        }
    }
    block = {"gate": {"groups": ["x"]}, "vending": {"product": [{"key": "A"}]}}
    assert missing_keys(scenario, block) == ["gate.anti_passback", "vending.product[0].pin"]
    page = "text\n```toml\n[gate]\nx = 1\n```\n```toml\n[terminal]\nid = 'a'\n```\n"
    assert config_block(page) == {"terminal": {"id": "a"}}
    with pytest.raises(AssertionError):
        config_block("```toml\n[gate]\n```\n")
