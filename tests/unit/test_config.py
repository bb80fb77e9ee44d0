"""The configuration file: typed, validated, every problem named by its key path."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.cli import main
from terminald.config import (
    DEFAULT_STATE_DIR,
    MAX_GRACE_HOURS,
    Config,
    ConfigError,
    config_from_dict,
    load_config,
    relay_wiring_mismatches,
)
from terminald.config_files import check_files, revocation_store_config, trust_store
from terminald.config_gpio import load_gpio_section
from terminald.config_show import config_as_dict
from terminald.revocation.freshness import MAX_GRACE
from terminald.revocation.keys import public_key_pem

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "systemd" / "terminald.toml.example"
DEMO = REPO / "systemd" / "terminald-demo.toml"

GOOD = """\
[terminal]
id = "gate-07"
purpose = "vend"
mode = "lockdown"

[card]
reader = "ACS ACR1252"
pin_floor = 2
pin_timeout_s = 15
extended_reads = false

[trust]
anchors = ["anchors"]

[revocation]
backoffice_keys = ["keys/bo.pub"]
grace_hours = 12

[gpio]
board = "rpi5"
backend = "mock"

[relay]
open_ms = 5000
active_high = false
fail_mode = "fail_safe"

[door]
held_open_s = 45
contact = true

[log]
level = "debug"

[state]
dir = "state"
"""

MINIMAL = """\
[terminal]
id = "t1"
[revocation]
backoffice_keys = ["/etc/terminald/backoffice/bo.pub"]
[gpio]
board = "rpi4"
"""


def write(tmp_path: Path, text: str, name: str = "terminald.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return info.value.messages


def test_a_full_config_loads_typed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.terminal.id == "gate-07"
    assert config.terminal.purpose == "vend"
    assert config.terminal.mode == "lockdown"
    assert config.card.reader == "ACS ACR1252"
    assert config.card.pin_floor == 2
    assert config.card.pin_timeout_s == 15.0
    assert config.card.extended_reads is False
    # Relative paths are taken from the configuration file's directory.
    assert config.trust.anchors == (tmp_path / "anchors",)
    assert config.revocation.backoffice_keys == (tmp_path / "keys" / "bo.pub",)
    assert config.revocation.grace_hours == 12.0
    assert config.revocation.state_path == tmp_path / "state" / "revocation.state"
    assert config.gpio.board == "rpi5"
    assert config.gpio.backend == "mock"
    assert config.relay.open_ms == 5000
    assert config.relay.active_high is False
    assert config.relay.fail_mode == "fail_safe"
    assert config.door.held_open_s == 45.0
    assert (config.door.contact, config.door.rex, config.door.tamper) == (True, False, False)
    assert config.door.tamper_blocks_grants  # the default: an open enclosure admits no one
    assert config.log.level == "debug"
    assert config.state.dir == tmp_path / "state"


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert (config.terminal.purpose, config.terminal.mode) == ("gate", "normal")
    assert config.card.reader is None
    assert config.card.pin_floor == 1  # never spend a person's last try
    assert config.card.extended_reads == "auto"
    assert config.trust.anchors == () and config.trust.include_builtin
    assert config.revocation.required and config.revocation.grace_hours == 0
    assert config.revocation.state_path == DEFAULT_STATE_DIR / "revocation.state"
    assert config.gpio.backend == "lgpio"
    assert config.relay.active_high is None and config.relay.fail_mode is None
    assert config.state.dir == DEFAULT_STATE_DIR


def test_auth_settings_follow_the_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    settings = config.auth_settings(reader_supports_extended=True)
    assert settings.terminal_id == "gate-07"
    assert settings.purpose == "vend"
    assert settings.pin_floor == 2
    assert settings.extended_reads is False  # forced off beats the reader profile
    auto = load_config(write(tmp_path, MINIMAL))
    assert auto.auth_settings(reader_supports_extended=True).extended_reads is True
    assert auto.auth_settings().extended_reads is False


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("[relay]\nopen_ms = 0", "relay.open_ms: must be between 100 and 60000, got 0"),
        ("[relay]\nopen_ms = 1.5", "relay.open_ms: must be an integer, got 1.5 (a number)"),
        ("[relay]\nopen_ms = true", "relay.open_ms: must be an integer, got true (a boolean)"),
        ('[relay]\nactive_high = "yes"', 'relay.active_high: must be true or false, got "yes"'),
        ('[relay]\nfail_mode = "fail-open"', "relay.fail_mode: must be one of fail_secure, "),
        ("[card]\npin_floor = 3", "card.pin_floor: must be between 0 and 2, got 3"),
        ("[card]\npin_timeout_s = 1", "card.pin_timeout_s: must be between 5 and 120, got 1"),
        ('[card]\nextended_reads = "yes"', 'card.extended_reads: must be "auto", true or false'),
        ('[card]\nbackend = "nfcpy"', "card.backend: must be one of pcsc, got"),
        ('[terminal]\npurpose = "door"', "terminal.purpose: must be one of gate, vend, attendance"),
        ('[terminal]\nmode = "open"', "terminal.mode: must be one of normal, lockdown, emergency"),
        ('[gpio]\nboard = "rpi3"', "gpio.board: must be one of rpi4, rpi5, rpizero2w"),
        ('[gpio]\nbackend = "pigpio"', "gpio.backend: must be one of mock, lgpio"),
        ("[trust]\nanchors = [1]", "trust.anchors[0]: must be a path (a string), got 1"),
        ('[trust]\nanchors = "x"', "trust.anchors: must be an array of paths"),
        ("[revocation]\ngrace_hours = 200", "revocation.grace_hours: must be between 0 and 168"),
        ('[revocation]\nstate_path = ""', "revocation.state_path: must not be empty"),
        ("[door]\nheld_open_s = 0", "door.held_open_s: must be between 1 and 3600, got 0"),
        ("[door]\nrex = 1", "door.rex: must be true or false, got 1 (an integer)"),
        (
            '[door]\ntamper_blocks_grants = "no"',
            'door.tamper_blocks_grants: must be true or false, got "no" (a string)',
        ),
        ('[log]\nlevel = "trace"', "log.level: must be one of debug, info, warning, error"),
        ("[state]\ndir = 7", "state.dir: must be a path (a string), got 7"),
        ("log = 3", "log: must be a table ([log]), got 3"),
    ],
)
def test_each_kind_of_error_names_its_key(fragment: str, expected: str) -> None:
    # The fragment is merged over MINIMAL, so its mistake is the only problem.
    data = tomllib.loads(MINIMAL)
    for name, value in tomllib.loads(fragment).items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name].update(value)
        else:
            data[name] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    messages = info.value.messages
    assert len(messages) == 1, messages
    assert messages[0].startswith(expected), messages


def test_unknown_keys_and_sections_are_refused(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, MINIMAL + "[relay]\nopen_msec = 3000\n[doors]\nrex = true\n")
    assert messages == [
        "doors: unknown section (did you mean door? known: terminal, card, trust, "
        "revocation, gpio, relay, door, log, state, access, link, console, gate, vending, "
        "attendance)",
        "relay.open_msec: unknown key (did you mean open_ms? known: open_ms, active_high, "
        "fail_mode)",
    ]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, '[terminal]\nid = "bad id"\n[relay]\nopen_ms = 0\ntypo = 1\n')
    keys = [m.split(":", 1)[0] for m in messages]
    assert keys == [
        "terminal.id",
        "revocation.backoffice_keys",
        "gpio.board",
        "relay.open_ms",
        "relay.typo",
    ]


def test_required_keys(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, "")
    assert "terminal.id: missing (required)" in messages
    assert "gpio.board: missing (required)" in messages
    assert any(m.startswith("revocation.backoffice_keys: at least one") for m in messages)


def test_revocation_can_be_switched_off_only_explicitly(tmp_path: Path) -> None:
    text = '[terminal]\nid = "lab"\n[revocation]\nrequired = false\n[gpio]\nboard = "rpi4"\n'
    config = load_config(write(tmp_path, text))
    assert not config.revocation.required and config.revocation.backoffice_keys == ()


def test_trust_needs_some_anchor(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, MINIMAL + "[trust]\ninclude_builtin = false\n")
    assert messages == ["trust.anchors: must not be empty when trust.include_builtin is false"]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.toml")
    assert info.value.messages == ["cannot read: No such file or directory"]
    messages = errors_of(tmp_path, "[terminal\nid = 1\n")
    assert len(messages) == 1 and messages[0].startswith("not valid TOML: ")


def test_the_shipped_example_and_demo_load() -> None:
    example = load_config(EXAMPLE)
    assert example.terminal.id == "gate-01"
    assert example.revocation.required and example.gpio.backend == "lgpio"
    demo = load_config(DEMO)
    assert demo.gpio.backend == "mock" and demo.card.reader == "Virtual PCD"
    assert demo.trust.anchors == (DEMO.parent / "trust",) and not demo.trust.include_builtin


def test_the_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    for section, table in config_as_dict(load_config(EXAMPLE)).items():
        assert f"[{section}]" in text
        for key in [*table, "reader", "active_high", "fail_mode", "state_path"]:
            if key in {"reader", "state_path"} and section not in {"card", "revocation"}:
                continue
            if key in {"active_high", "fail_mode"} and section != "relay":
                continue
            documented = f"{key} =" in text or f"[[{section}.{key}]]" in text
            assert documented, f"{section}.{key} is not in the example"


@pytest.mark.parametrize("text", [GOOD, MINIMAL])
def test_the_display_form_round_trips(tmp_path: Path, text: str) -> None:
    config = load_config(write(tmp_path, text))
    shown = config_as_dict(config)
    json.dumps(shown)  # plain data only
    assert config_from_dict(shown, source=config.source) == config


def test_relay_assertions_against_the_pin_map(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))  # asserts active-low, fail_safe
    assert relay_wiring_mismatches(config, active_high=False, lock="fail-safe") == []
    problems = relay_wiring_mismatches(config, active_high=True, lock="fail-secure")
    assert [p.split(":", 1)[0] for p in problems] == ["relay.active_high", "relay.fail_mode"]
    silent = load_config(write(tmp_path, MINIMAL))
    assert relay_wiring_mismatches(silent, active_high=True, lock="fail-safe") == []


def test_gpio_section_alone_survives_mistakes_elsewhere(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "[relay]\nopen_ms = 0\n[nonsense]\n")
    assert load_gpio_section(path).board == "rpi4"
    with pytest.raises(ConfigError) as info:
        load_gpio_section(write(tmp_path, '[gpio]\nboard = "pi"\n'))
    assert info.value.messages[0].startswith("gpio.board: must be one of")


# --- the files a configuration names ----------------------------------------------------


def terminal_dir(tmp_path: Path) -> Path:
    """A configuration whose anchors, key and state directory all exist."""
    (tmp_path / "anchors").mkdir()
    root = REPO / "terminald" / "pki" / "roots" / "jpki-auth-ca-2023.pem"
    (tmp_path / "anchors" / "root.pem").write_bytes(root.read_bytes())
    (tmp_path / "keys").mkdir()
    public_pem = public_key_pem(Ed25519PrivateKey.generate().public_key())
    (tmp_path / "keys" / "bo.pub").write_bytes(public_pem)
    (tmp_path / "state").mkdir()
    (tmp_path / "enrolled.toml").write_text(
        '[[card]]\nissuer = "1ac100f596a3bc8c4b3df195e32699249e9e308a"\nserial = 4660\n'
        'label = "front desk"\n'
    )
    return write(
        tmp_path,
        GOOD.replace('board = "rpi5"', 'board = "rpi4"').replace(
            'active_high = false\nfail_mode = "fail_safe"\n', ""
        ),
    )


def test_check_files_opens_what_the_config_names(tmp_path: Path) -> None:
    config = load_config(terminal_dir(tmp_path))
    assert check_files(config) == []
    (tmp_path / "keys" / "bo.pub").write_text("not a key")
    (tmp_path / "anchors" / "root.pem").unlink()
    (tmp_path / "state").rmdir()
    (tmp_path / "enrolled.toml").write_text("[[card]]\nserial = -1\n")
    problems = check_files(config)
    assert [p.split(":", 1)[0] for p in problems] == [
        "trust.anchors[0]",
        "revocation.backoffice_keys[0]",
        "access.enrolled",
        "state.dir",
    ]


def test_the_daemons_trust_and_revocation_come_from_the_config(tmp_path: Path) -> None:
    config = load_config(terminal_dir(tmp_path))
    assert len(trust_store(config)) == 3  # two built-in roots and the anchor directory's one
    store = revocation_store_config(config)
    assert store is not None
    assert store.state_path == tmp_path / "state" / "revocation.state"
    assert len(store.trusted_keys) == 1
    assert store.freshness.grace.total_seconds() == 12 * 3600
    lab = '[terminal]\nid = "lab"\n[revocation]\nrequired = false\n[gpio]\nboard = "rpi4"\n'
    assert revocation_store_config(load_config(write(tmp_path, lab, "lab.toml"))) is None
    (tmp_path / "keys" / "bo.pub").unlink()
    with pytest.raises(ConfigError) as info:
        revocation_store_config(config)
    assert info.value.messages == [
        f"revocation.backoffice_keys[0]: {tmp_path / 'keys' / 'bo.pub'}: No such file or directory"
    ]


def test_grace_bound_is_the_stores() -> None:
    assert MAX_GRACE.total_seconds() == MAX_GRACE_HOURS * 3600


# --- terminald check-config -------------------------------------------------------------


def test_check_config_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = terminal_dir(tmp_path)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{path}: ok"
    assert "gate-07, vend, mode lockdown" in out
    assert "reader 'ACS ACR1252', pin floor 2" in out


def test_check_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MINIMAL + "[relay]\nopen_ms = 0\nopen_sec = 3\n")
    assert main(["check-config", "--no-files", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{path}: relay.open_ms: must be between 100 and 60000, got 0",
        f"{path}: relay.open_sec: unknown key (did you mean open_ms? known: open_ms, "
        "active_high, fail_mode)",
    ]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ('serial = 4660\nlabel = "front desk"\n', "card[0].issuer (serial 4660, label "),
        ('serial = 4660\nissuer = ""\n', "card[0].issuer (serial 4660): is empty"),
        ('serial = 4660\nissuer = "1ac1zz"\n', "card[0].issuer (serial 4660): must be a key id"),
    ],
)
def test_check_config_refuses_an_enrolled_entry_without_a_usable_issuer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entries: str, problem: str
) -> None:
    path = terminal_dir(tmp_path)
    (tmp_path / "enrolled.toml").write_text("[[card]]\n" + entries)
    assert main(["check-config", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: access.enrolled: {tmp_path / 'enrolled.toml'}: ")
    assert problem in line
    # It says where the issuer comes from.
    assert "`terminald auth`" in line and "`terminald cert show FILE`" in line


def test_check_config_warns_of_an_issuer_no_anchor_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = terminal_dir(tmp_path)  # trusts the 2023 J-LIS root; enrols one card under it
    assert main(["check-config", str(path)]) == 0
    assert "warning" not in capsys.readouterr().err
    with (tmp_path / "enrolled.toml").open("a") as file:
        file.write('[[card]]\nissuer = "aa:bb"\nserial = 7\nlabel = "typo"\n')
    assert main(["check-config", str(path)]) == 0  # usable: the others still pass
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: warning: access.enrolled: serial 7 (label 'typo'): ")
    assert "issuer aabb is no trust anchor's key id" in line
    assert "1ac100f596a3bc8c4b3df195e32699249e9e308a" in line


def test_check_config_checks_named_files_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, MINIMAL)  # its back-office key and state dir do not exist here
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: revocation.backoffice_keys[0]: /etc/terminald/backoffice/bo.pub" in err
    assert main(["check-config", "--no-files", str(path)]) == 0


def test_check_config_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--no-files", "--json", str(EXAMPLE)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["terminal"]["id"] == "gate-01"
    assert shown["card"]["pin_floor"] == 1


def test_check_config_holds_relay_assertions_against_the_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinmap = pytest.importorskip(
        "terminald.backends.pinmap", reason="the board pin maps (GPIO layer) are not in this build"
    )
    wired = pinmap.load_board("rpi4").relay
    path = terminal_dir(tmp_path)
    wrong = "false" if wired.active_high else "true"
    text = path.read_text().replace("open_ms = 5000\n", f"open_ms = 5000\nactive_high = {wrong}\n")
    path.write_text(text)
    assert main(["check-config", str(path)]) == 2
    assert f"{path}: relay.active_high: {wrong} here" in capsys.readouterr().err


def test_config_is_frozen(tmp_path: Path) -> None:
    config: Config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(AttributeError):
        config.terminal.id = "other"  # type: ignore[misc]


HOST_KEY = "A" * 43 + "="  # 32 zero bytes, base64


def test_link_needs_the_back_office_key_when_a_port_is_set(tmp_path: Path) -> None:
    messages = errors_of(tmp_path, MINIMAL + '[link]\nport = "/dev/ttyAMA0"\n')
    assert messages == [
        "link.host_key: the back office's public key is needed when link.port is set "
        "(there is no default key)"
    ]


def test_link_and_console_sections(tmp_path: Path) -> None:
    path = tmp_path / "terminald.toml"
    path.write_text(
        MINIMAL
        + f'[link]\nport = "/dev/ttyAMA0"\naddress = 7\nhost_key = "{HOST_KEY}"\nrs485 = true\n'
        + '[console]\nport = "/dev/serial0"\nbaud = 9600\n'
    )
    config = load_config(path)
    assert config.link.address == 7
    assert config.link.host_key == bytes(32)
    assert config.link.rs485 is True
    assert config.link.key_file == config.state.dir / "link.key"
    assert config.console.port == Path("/dev/serial0")
    assert config.console.baud == 9600


def test_a_malformed_host_key_is_named(tmp_path: Path) -> None:
    assert errors_of(tmp_path, MINIMAL + '[link]\nhost_key = "AAAA"\n') == [
        "link.host_key: an X25519 public key is 32 bytes, this is 3"
    ]
    assert errors_of(tmp_path, MINIMAL + '[link]\nhost_key = "not base64!"\n') == [
        "link.host_key: not base64"
    ]
    assert errors_of(tmp_path, MINIMAL + "[link]\naddress = 127\n")[0].startswith("link.address")
