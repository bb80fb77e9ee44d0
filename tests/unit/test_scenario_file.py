"""Scenario files: every bad one is refused (exit 2) naming step and key, before anything runs.

No pcscd here: a file is checked whole (structure, then names against the test PKI,
then the merged configuration) before the runner asks for the sandbox.
"""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.config import ConfigError, config_from_dict
from terminald.sim.scenario import ScenarioSandboxError, run_scenario, toml_text
from terminald.sim.scenario_file import (
    ScenarioError,
    Step,
    check_names,
    load_scenario,
    parse_scenario,
)
from terminald.sim.scenario_places import Places
from terminald.sim.testpki import TestPkiManifest

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(tomllib.loads(text), Path("s.toml"))
    return error.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[step]]\ntapp = "card-001"', "step 1: key `tapp`: unknown"),
        (
            '[[step]]\ntap = "card-001"\nremove = true',
            "step 1: needs exactly one action, found `tap`, `remove`",
        ),
        ("[[step]]\nwithin_s = 3", "step 1: needs exactly one action, found none"),
        (
            '[[step]]\ntap = "x"\n[[step]]\nexpect = "granted"',
            "step 2: key `expect`: must be one of ok,",
        ),
        ("[[step]]\nexpect = 1", "step 1: key `expect`: must be a non-empty string"),
        ("[[step]]\nremove = false", "step 1: key `remove`: must be true"),
        ('[[step]]\ntamper = "yes"', "step 1: key `tamper`: must be true or false"),
        ('[[step]]\ndoor = "ajar"', "step 1: key `door`: must be one of open, closed"),
        ('[[step]]\nmode = "panic"', "step 1: key `mode`: must be one of normal,"),
        ('[[step]]\nkeys = "12x"', "step 1: key `keys`: must be keypad keys"),
        (
            '[[step]]\nkeys = "12"\ninterval_ms = 20',
            "step 1: key `interval_ms`: must be an integer of at least",
        ),
        (
            '[[step]]\ntap = "card-001"\nwithin_s = 3',
            "step 1: key `within_s`: only for a `expect` or `expect_record` step, not `tap`",
        ),
        ('[[step]]\ncli = "audit"', "step 1: key `cli`: must be an array of strings"),
        ("[[step]]\ncli = []", "step 1: key `cli`: must name a command"),
        (
            '[[step]]\ncli = ["audit"]\nexit = 300',
            "step 1: key `exit`: must be an exit status 0-255",
        ),
        ("[[step]]\nwait_s = -1", "step 1: key `wait_s`: must be a number from 0"),
        ('[[step]]\ncli = ["x", "{nope}"]', "step 1: key `cli`: unknown placeholder {nope}"),
        ('[[step]]\ncli = ["{serial}"]', "step 1: key `cli`: unknown placeholder {serial}"),
        ('[[step]]\ncli = ["a}b"]', "step 1: key `cli`: a lone '}'"),
        (
            '[[setup]]\ncli = ["{oops}"]\n[[step]]\nrex = true',
            "setup 1: key `cli`: unknown placeholder",
        ),
        ("[[setup]]\nexit = 1\n[[step]]\nrex = true", "setup 1: key `cli`: missing"),
        ('[[setup]]\ncli = ["a"]\nwhy = 1\n[[step]]\nrex = true', "setup 1: key `why`: unknown"),
        (
            'enrol = "card-001"\n[[step]]\nrex = true',
            "top level: key `enrol`: must be an array of strings",
        ),
        ("steps = 1\n[[step]]\nrex = true", "top level: key `steps`: unknown"),
        ("enrol = []", "top level: key `step`: a scenario needs at least one [[step]]"),
        ("[config.doors]\nx = 1\n[[step]]\nrex = true", "config.doors: unknown section"),
        (
            '[config.card]\nreader = "{x}"\n[[step]]\nrex = true',
            "config.card.reader: unknown placeholder {x}",
        ),
        (
            '[config.state]\ndir = "/tmp"\n[[step]]\nrex = true',
            "config.state.dir: set by the runner",
        ),
        (
            "[config.card.sub]\nx = 1\n[[step]]\nrex = true",
            "config.card.sub: must be a value, not a table",
        ),
    ],
)
def test_a_bad_file_names_the_step_and_key(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems('[[step]]\ntapp = 1\n[[step]]\nexpect = "nope"\n[[step]]\nrex = 2')
    assert [p.split(":")[0] for p in problems] == ["step 1", "step 1", "step 2", "step 3"]


def test_a_good_file_parses_with_defaults_and_literal_braces() -> None:
    scenario = parse_scenario(
        tomllib.loads(
            'enrol = ["card-001"]\n'
            "[config.card]\npin_floor = 2\n"
            '[[setup]]\ncli = ["check-config", "{config}"]\n'
            '[[step]]\ntap = "card-001"\n[[step]]\nkeys = "12*"\n[[step]]\npin = true\n'
            '[[step]]\nexpect = "ok"\n[[step]]\ncli = ["x", "{{literal}}"]\nexit = 1\n'
            "[[step]]\nwait_s = 1\n[[step]]\ntamper = false\n"
        ),
        Path("s.toml"),
    )
    assert scenario.enrol == ("card-001",)
    assert scenario.config == {"card": {"pin_floor": 2}}
    assert scenario.setup[0].args == ("check-config", "{config}")
    steps = scenario.steps
    assert [s.index for s in steps] == [1, 2, 3, 4, 5, 6, 7]
    assert steps[1].interval_ms == 150 and steps[3].within_s == 15.0
    assert steps[4].exit == 1 and steps[4].value == ("x", "{{literal}}")
    assert steps[5].value == 1.0 and steps[6].value is False
    assert [s.describe() for s in steps[:3]] == ["tap card-001", "keys 12*", "pin"]


def test_card_names_are_checked_against_the_test_pki(test_pki: TestPkiManifest) -> None:
    scenario = parse_scenario(
        tomllib.loads(
            'enrol = ["card-001", "nobody", "non-jpki"]\n'
            '[[step]]\ntap = "ghost"\n[[step]]\ntap = "{work}/own.json"\n'
            '[[step]]\ncli = ["{serial:ghost}", "{pin:face-auth}", "{issuer:card-002}"]\n'
        ),
        Path("s.toml"),
    )
    with pytest.raises(ScenarioError) as error:
        check_names(scenario, test_pki)
    problems = error.value.problems
    assert any("key `enrol`: no card 'nobody'" in p for p in problems)
    assert any("key `enrol`: non-jpki has no certificate" in p for p in problems)
    assert any(p.startswith("step 1: key `tap`: no card 'ghost'") for p in problems)
    assert not any(p.startswith("step 2") for p in problems), (
        "a profile path is checked when tapped"
    )
    assert any(p.startswith("step 3: key `cli`: {serial:ghost}") for p in problems)
    assert any(
        p.startswith("step 3: key `cli`: {pin:face-auth}: face-auth has no pin") for p in problems
    )
    assert len(problems) == 5


def test_placeholders_expand(tmp_path: Path, test_pki: TestPkiManifest) -> None:
    places = Places(
        pki=test_pki.directory,
        work=tmp_path / "w",
        state=tmp_path / "s",
        config=tmp_path / "c.toml",
        manifest=test_pki,
    )
    card = test_pki.card("card-001")
    text = "{pki}|{work}|{state}|{config}|{serial:card-001}|{issuer:card-001}|{pin:card-001}|{{x}}"
    assert places.expand(text) == (
        f"{test_pki.directory}|{tmp_path}/w|{tmp_path}/s|{tmp_path}/c.toml|"
        f"{card.serial}|{card.issuer_key_id}|{card.pin}|{{x}}"
    )
    assert places.expand_value(["{work}", 3, True]) == [f"{tmp_path}/w", 3, True]


def test_the_merged_configuration_is_written_as_toml_the_daemon_reads() -> None:
    config = {
        "terminal": {"id": "gate-1", "mode": "normal"},
        "card": {"pin_timeout_s": 5.0, "reader": 'odd "name" \\ \x01'},
        "trust": {"anchors": ["/a", "/b"], "include_builtin": False},
        "revocation": {"required": False},
        "gpio": {"board": "rpi4", "backend": "mock"},
    }
    text = toml_text(config)
    assert tomllib.loads(text) == config
    # A control character names no PC/SC reader: the daemon says so, naming the key.
    with pytest.raises(ConfigError, match=r"card\.reader: must be printable"):
        config_from_dict(tomllib.loads(text))
    config["card"]["reader"] = 'odd "name" \\'
    config_from_dict(tomllib.loads(toml_text(config)))


def test_every_scenario_in_the_tree_is_a_good_file(test_pki: TestPkiManifest) -> None:
    paths = sorted(SCENARIOS.glob("*.toml"))
    assert len(paths) >= 6
    for path in paths:
        check_names(load_scenario(path), test_pki)


# -- through the command line: exit 2 and the names, before anything runs ----------------------


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["sim", "scenario", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_refuses_a_bad_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[step]]\ntap = "card-001"\n[[step]]\nexpect = "okay"\nwithin = 3\n')
    code, out, err = _cli([str(path), "--json", "--pki", str(test_pki.directory)], capsys)
    assert code == 2 and out == ""
    assert "step 2: key `expect`: must be one of" in err
    assert "step 2: key `within`: unknown" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[step]]\nrex = [", "not valid TOML"),
        ('[[step]]\ntap = "ghost"', "step 1: key `tap`: no card 'ghost'"),
        ("[config.card]\npin_floor = 7\n[[step]]\nrex = true", "config: card.pin_floor"),
    ],
)
def test_bad_toml_names_and_configuration_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    test_pki: TestPkiManifest,
    text: str,
    expected: str,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, out, err = _cli([str(path), "--pki", str(test_pki.directory)], capsys)
    assert code == 2 and out == "", err
    assert expected in err and "Traceback" not in err


def test_a_missing_or_binary_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _cli([str(tmp_path / "none.toml")], capsys)
    assert code == 2 and "cannot read" in err
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe")
    code, _out, err = _cli([str(tmp_path / "binary.toml")], capsys)
    assert code == 2 and "not valid TOML" in err and "Traceback" not in err
    code, _out, err = _cli([str(SCENARIOS / "rex-opens.toml"), "--pki", str(tmp_path)], capsys)
    assert code == 2 and "not a test PKI" in err


def test_outside_the_sandbox_it_says_how_to_run_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    monkeypatch.delenv("TERMINALD_SANDBOX", raising=False)
    path = SCENARIOS / "grant-with-pin.toml"
    with pytest.raises(ScenarioSandboxError):
        run_scenario(path, pki_dir=test_pki.directory, out=io.StringIO())
    code, out, err = _cli([str(path), "--pki", str(test_pki.directory)], capsys)
    assert code == 2 and out == ""
    assert f"scripts/sandbox .venv/bin/terminald sim scenario {path}" in err


def test_the_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["sim", "scenario", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--json" in out and "--pki" in out and "docs/scenarios.md" in out


def test_a_step_describes_itself() -> None:
    assert Step(1, "tamper", True).describe() == "tamper true"
    assert Step(1, "cli", ("audit", "--json")).describe() == "cli audit --json"
    assert Step(1, "wait_s", 1.5).describe() == "wait_s 1.5"


def test_the_documented_example_is_the_scenario_the_suite_runs() -> None:
    docs = (SCENARIOS.parents[1] / "docs" / "scenarios.md").read_text()
    example = (SCENARIOS / "audit-cli.toml").read_text()
    assert f"```toml\n{example}```" in docs
