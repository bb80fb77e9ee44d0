"""terminald doctor: each check against a tmp-dir terminal, with the machine injected."""

from __future__ import annotations

import json
import os
import termios
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.cli import main
from terminald.config import Config, load_config
from terminald.core.auth import DEFAULT_EARLIEST_TRUSTED_TIME
from terminald.core.trusted_time import SignedTime
from terminald.daemon.doctor import (
    Environment,
    Finding,
    PcscUnreachable,
    Report,
    check_clock,
    check_config,
    check_gpio,
    check_pcsc,
    check_revocation,
    check_serial,
    check_state_dir,
    check_trust,
    format_report,
    run_checks,
)
from terminald.revocation.keys import public_key_pem
from terminald.sim.testpki import TestPkiManifest
from terminald.store.revocation_store import RevocationStore, RevocationStoreConfig
from terminald.store.revocation_store import load_trusted_keys as load_keys
from terminald.store.trusted_time import TRUSTED_TIME_NAME, TrustedTimeFile

from .revocation_support import DAY, ISSUER_A, T0, revocations, snapshot

KEY = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _no_pcscd() -> list[str]:
    raise PcscUnreachable("Service not available (0x8010001D)")


def env(tmp_path: Path, **overrides: Any) -> Environment:
    """A machine where nothing real is asked: no pcscd, no GPIO, a synchronised clock."""
    flag = tmp_path / "timesync-synchronized"
    flag.touch()
    base = Environment(
        now=lambda: NOW,
        list_readers=lambda: ["Virtual PCD 00 00", "Virtual PCD 00 01"],
        pcscd_socket=tmp_path / "no-pcscd.comm",
        gpiochips=lambda: [],
        import_module=lambda name: object(),
        timesync_flag=flag,
        ntp_synchronized=lambda: None,
        disk_free=lambda path: 1 << 30,
        access=lambda path, mode: True,
        user=lambda: "tester",
    )
    return replace(base, **overrides)


def write_config(directory: Path, anchors: Path, **sections: dict[str, Any]) -> Path:
    """A loadable configuration: mock GPIO, no revocation, any card; ``sections`` override."""
    state = directory / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    data: dict[str, dict[str, Any]] = {
        "terminal": {"id": "t1"},
        "card": {"reader": "Virtual PCD"},
        "trust": {"anchors": [str(anchors)], "include_builtin": False},
        "revocation": {"required": False},
        "gpio": {"board": "rpi4", "backend": "mock"},
        "state": {"dir": str(state)},
        "access": {"policy": "any_card"},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    lines = []
    for name, table in data.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    path = directory / "terminald.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config_file(tmp_path: Path, test_pki: TestPkiManifest) -> Callable[..., Path]:
    def make(**sections: dict[str, Any]) -> Path:
        return write_config(tmp_path, test_pki.trust_dir, **sections)

    return make


@pytest.fixture
def config(config_file: Callable[..., Path]) -> Config:
    return load_config(config_file())


def only(findings: list[Finding], check: str) -> Finding:
    matching = [f for f in findings if f.check == check]
    assert len(matching) == 1, findings
    return matching[0]


# --------------------------------------------------------------------------- config


def test_a_good_configuration_is_ok(config_file: Callable[..., Path]) -> None:
    result = check_config(config_file())
    assert result.config is not None and not result.unreadable
    assert [f.status for f in result.findings] == ["ok"]


def test_every_configuration_problem_is_listed_and_the_other_checks_still_run(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = config_file(relay={"open_ms": 0}, card={"pin_flor": 1})
    report = run_checks(path, env(tmp_path))
    finding = report.findings[0]
    assert (finding.check, finding.status) == ("config", "fail")
    assert any(d.startswith("relay.open_ms: must be between") for d in finding.details)
    assert any("did you mean pin_floor?" in d for d in finding.details)
    assert report.exit_code == 1
    checks = {f.check for f in report.findings}
    assert {"pcscd", "reader", "clock", "time-sync"} <= checks
    assert "state" not in checks  # needs a configuration


def test_files_the_configuration_names_are_opened(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    path = config_file(trust={"anchors": [str(tmp_path / "missing.pem")]})
    finding = check_config(path).findings[0]
    assert finding.status == "fail"
    assert any(d.startswith("trust.anchors[0]:") for d in finding.details)
    assert "terminald check-config" in finding.fix


def test_an_unreadable_configuration_exits_2_after_the_other_checks(tmp_path: Path) -> None:
    report = run_checks(tmp_path / "absent.toml", env(tmp_path))
    assert report.config_unreadable and report.exit_code == 2
    assert report.findings[0].status == "fail"
    assert "cannot read" in report.findings[0].message
    assert {f.check for f in report.findings} >= {"pcscd", "clock"}


def test_invalid_toml_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[terminal\nid = 1\n")
    report = run_checks(path, env(tmp_path))
    assert report.exit_code == 2
    assert "not valid TOML" in report.findings[0].message


def test_the_cli_prints_json_and_exits_2_for_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--config", str(tmp_path / "absent.toml"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["exit_code"] == 2 and out["ok"] is False
    first = out["findings"][0]
    assert first["check"] == "config" and first["status"] == "fail" and first["fix"]


# --------------------------------------------------------------------------- pcscd, reader


def test_pcscd_not_running_fails_with_the_socket_unit_fix(config: Config, tmp_path: Path) -> None:
    findings = check_pcsc(config, env(tmp_path, list_readers=_no_pcscd))
    assert [f.status for f in findings] == ["fail"]
    assert "systemctl enable --now pcscd.socket" in findings[0].fix


def test_pcscd_running_but_refusing_the_user_points_at_polkit(
    config: Config, tmp_path: Path
) -> None:
    socket = tmp_path / "pcscd.comm"
    socket.touch()
    finding = check_pcsc(config, env(tmp_path, list_readers=_no_pcscd, pcscd_socket=socket))[0]
    assert finding.status == "fail" and "polkit" in finding.fix and "tester" in finding.fix


def test_the_configured_reader_is_found_by_prefix_with_its_profile(
    config: Config, tmp_path: Path
) -> None:
    findings = check_pcsc(config, env(tmp_path))
    assert [f.status for f in findings] == ["ok", "ok", "ok"]
    assert "'Virtual PCD 00 00'" in only(findings, "reader").message
    profile = only(findings, "reader-profile")
    assert "'vpcd'" in profile.message and "extended APDUs yes" in profile.message


def test_a_missing_reader_fails_and_lists_what_pcscd_has(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    config = load_config(config_file(card={"reader": "ACS ACR1252"}))
    findings = check_pcsc(config, env(tmp_path))
    reader = only(findings, "reader")
    assert reader.status == "fail"
    assert "'Virtual PCD 00 00'" in reader.message and "card.reader" in reader.fix


def test_no_reader_at_all_fails(config: Config, tmp_path: Path) -> None:
    reader = only(check_pcsc(config, env(tmp_path, list_readers=lambda: [])), "reader")
    assert reader.status == "fail" and "plug in the reader" in reader.fix


def test_a_reader_without_a_profile_warns(config_file: Callable[..., Path], tmp_path: Path) -> None:
    config = load_config(config_file(card={"reader": "Acme NFC"}))
    findings = check_pcsc(config, env(tmp_path, list_readers=lambda: ["Acme NFC 00 00"]))
    assert only(findings, "reader").status == "ok"
    profile = only(findings, "reader-profile")
    assert profile.status == "warn" and "hw/readers.toml" in profile.fix


def test_forcing_extended_reads_on_a_reader_that_lacks_them_warns(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    config = load_config(
        config_file(card={"reader": "OMNIKEY CardMan 3121", "extended_reads": True})
    )
    readers = lambda: ["OMNIKEY CardMan 3121 00 00"]  # noqa: E731
    profile = only(check_pcsc(config, env(tmp_path, list_readers=readers)), "reader-profile")
    assert profile.status == "warn" and "extended APDUs no" in profile.message


# --------------------------------------------------------------------------- GPIO


def test_the_mock_backend_warns(config: Config, tmp_path: Path) -> None:
    findings = check_gpio(config, env(tmp_path))
    gpio = only(findings, "gpio")
    assert gpio.status == "warn"
    assert gpio.message == "mock backend: no real hardware is driven"
    assert only(findings, "pinmap").status == "ok"


def test_a_relay_assertion_the_pin_map_contradicts_fails(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    config = load_config(config_file(relay={"active_high": False}))  # rpi4: active-high
    pinmap = only(check_gpio(config, env(tmp_path)), "pinmap")
    assert pinmap.status == "fail"
    assert any(d.startswith("relay.active_high:") for d in pinmap.details)


@pytest.fixture
def lgpio_config(config_file: Callable[..., Path]) -> Config:
    return load_config(config_file(gpio={"backend": "lgpio"}))


@pytest.fixture
def chip(tmp_path: Path) -> Path:
    path = tmp_path / "dev" / "gpiochip0"  # the rpi4 pin map names chip 0
    path.parent.mkdir()
    path.touch()
    return path


def test_lgpio_with_its_chip_accessible_and_the_module_present_is_ok(
    lgpio_config: Config, tmp_path: Path, chip: Path
) -> None:
    asked: list[tuple[Path, int]] = []

    def access(path: Path, mode: int) -> bool:
        asked.append((path, mode))
        return True

    findings = check_gpio(lgpio_config, env(tmp_path, gpiochips=lambda: [chip], access=access))
    assert only(findings, "gpio").status == "ok"
    assert asked == [(chip, os.R_OK | os.W_OK)]


def test_lgpio_without_gpiochips_fails(lgpio_config: Config, tmp_path: Path) -> None:
    gpio = [f for f in check_gpio(lgpio_config, env(tmp_path)) if f.check == "gpio"]
    assert [f.status for f in gpio] == ["fail"]
    assert "/dev/gpiochip0" in gpio[0].message


def test_lgpio_with_a_chip_the_user_cannot_open_fails_with_the_group_fix(
    lgpio_config: Config, tmp_path: Path, chip: Path
) -> None:
    findings = check_gpio(
        lgpio_config, env(tmp_path, gpiochips=lambda: [chip], access=lambda p, m: False)
    )
    gpio = only(findings, "gpio")
    assert gpio.status == "fail" and "usermod -aG gpio tester" in gpio.fix


def test_lgpio_missing_module_fails(lgpio_config: Config, tmp_path: Path, chip: Path) -> None:
    def no_lgpio(name: str) -> object:
        raise ModuleNotFoundError(f"No module named {name!r}")

    findings = check_gpio(
        lgpio_config, env(tmp_path, gpiochips=lambda: [chip], import_module=no_lgpio)
    )
    gpio = only(findings, "gpio")
    assert gpio.status == "fail" and "lgpio" in gpio.message and "pip install lgpio" in gpio.fix


# --------------------------------------------------------------------------- serial


@pytest.fixture
def pty() -> Iterator[str]:
    controller, device = os.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(controller)
        os.close(device)


HOST_KEY = "A" * 43 + "="  # any 32 bytes: the link needs the back office's key


def test_no_link_is_ok(config: Config, tmp_path: Path) -> None:
    assert check_serial(config, env(tmp_path)).status == "ok"


def test_a_pty_opens_and_its_settings_are_left_alone(
    config_file: Callable[..., Path], tmp_path: Path, pty: str
) -> None:
    config = load_config(config_file(link={"port": pty, "baud": 9600, "host_key": HOST_KEY}))
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    try:
        before = termios.tcgetattr(fd)
        finding = check_serial(config, env(tmp_path))
        after = termios.tcgetattr(fd)
    finally:
        os.close(fd)
    assert finding.status == "ok" and pty in finding.message
    assert after == before


def test_a_regular_file_is_not_a_serial_port(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    fake = tmp_path / "ttyUSB0"
    fake.write_bytes(b"")
    finding = check_serial(
        load_config(config_file(link={"port": str(fake), "host_key": HOST_KEY})), env(tmp_path)
    )
    assert finding.status == "fail" and "not a character device" in finding.message


def test_a_missing_port_fails(config_file: Callable[..., Path], tmp_path: Path) -> None:
    port = tmp_path / "ttyAMA9"
    finding = check_serial(
        load_config(config_file(link={"port": str(port), "host_key": HOST_KEY})), env(tmp_path)
    )
    assert finding.status == "fail" and "does not exist" in finding.message


def test_a_port_the_user_may_not_open_fails_with_the_dialout_fix(
    config_file: Callable[..., Path], tmp_path: Path, pty: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: Any, flags: int, mode: int = 0o777) -> int:
        assert flags & os.O_NOCTTY and flags & os.O_NONBLOCK and flags & os.O_RDWR
        raise PermissionError(13, "Permission denied")

    config, machine = (
        load_config(config_file(link={"port": pty, "host_key": HOST_KEY})),
        env(tmp_path),
    )
    monkeypatch.setattr(os, "open", denied)  # as root, every open succeeds
    finding = check_serial(config, machine)
    assert finding.status == "fail" and "usermod -aG dialout tester" in finding.fix


# --------------------------------------------------------------------------- clock


def test_a_clock_before_the_earliest_trusted_time_fails(tmp_path: Path) -> None:
    early = DEFAULT_EARLIEST_TRUSTED_TIME - timedelta(seconds=1)
    clock, _ = check_clock(env(tmp_path, now=lambda: early))
    assert clock.status == "fail" and "timedatectl set-ntp true" in clock.fix
    clock, _ = check_clock(env(tmp_path, now=lambda: DEFAULT_EARLIEST_TRUSTED_TIME))
    assert clock.status == "ok"


@pytest.mark.parametrize(
    ("flag", "timedatectl", "status"),
    [(True, None, "ok"), (False, "yes", "ok"), (False, "no", "warn"), (False, None, "warn")],
)
def test_time_synchronisation(
    tmp_path: Path, flag: bool, timedatectl: str | None, status: str
) -> None:
    flag_path = tmp_path / "synchronized"
    if flag:
        flag_path.touch()
    _, sync = check_clock(
        env(tmp_path, timesync_flag=flag_path, ntp_synchronized=lambda: timedatectl)
    )
    assert sync.status == status
    if timedatectl == "no":
        assert "NTPSynchronized=no" in sync.message


# --------------------------------------------------------------------------- trust


def _gen(test_pki: TestPkiManifest, name: str) -> datetime:
    return test_pki.root(name).not_after


def test_anchors_are_listed_with_subject_and_not_after(
    config: Config, tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    now = test_pki.generated_at
    finding = check_trust(config, env(tmp_path, now=lambda: now))
    assert finding.status == "ok"
    assert len(finding.details) == 3
    assert all("O=JPKI-TEST" in d and "not after" in d for d in finding.details)


def test_an_anchor_expiring_within_a_year_warns(
    config: Config, tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    now = _gen(test_pki, "test-gen3") - timedelta(days=100)
    finding = check_trust(config, env(tmp_path, now=lambda: now))
    assert finding.status == "warn" and "expire" in finding.message
    assert any("expires in 99 days" in d or "expires in 100 days" in d for d in finding.details)


def test_no_anchor_valid_now_fails(
    config: Config, tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    now = _gen(test_pki, "test-gen3") + timedelta(days=1)
    finding = check_trust(config, env(tmp_path, now=lambda: now))
    assert finding.status == "fail" and "0 valid now" in finding.message
    assert all(d.endswith("expired") for d in finding.details)


# --------------------------------------------------------------------------- revocation


@pytest.fixture
def revocation_config(config_file: Callable[..., Path], tmp_path: Path) -> Callable[..., Config]:
    key_file = tmp_path / "backoffice.pub"
    key_file.write_bytes(public_key_pem(KEY.public_key()))

    def make(**values: Any) -> Config:
        section = {"required": True, "backoffice_keys": [str(key_file)], **values}
        return load_config(config_file(revocation=section))

    return make


def install(config: Config, valid: timedelta = 7 * DAY) -> None:
    store_config = RevocationStoreConfig(
        config.revocation.state_path, load_keys(config.revocation.backoffice_keys)
    )
    bundle = snapshot(revocations({ISSUER_A: ({10, 20}, {30})}), KEY, 5, valid=valid)
    RevocationStore(store_config).apply(bundle, T0)


def test_fresh_revocation_data_is_ok(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config()
    install(config)
    finding = check_revocation(config, env(tmp_path, now=lambda: T0 + DAY))
    assert finding.status == "ok"
    assert "version 5" in finding.message and "2 revoked, 1 on hold" in finding.message


def test_revocation_data_expiring_within_a_day_warns(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config()
    install(config)
    finding = check_revocation(config, env(tmp_path, now=lambda: T0 + 7 * DAY - timedelta(hours=2)))
    assert finding.status == "warn" and "24 h" in finding.message


def test_stale_revocation_data_fails(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config()
    install(config)
    finding = check_revocation(config, env(tmp_path, now=lambda: T0 + 8 * DAY))
    assert finding.status == "fail" and "stale" in finding.message
    assert "terminald revocation apply" in finding.fix


def test_revocation_data_in_its_grace_warns(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config(grace_hours=48)
    install(config)
    finding = check_revocation(config, env(tmp_path, now=lambda: T0 + 8 * DAY))
    assert finding.status == "warn" and "grace" in finding.message


def test_missing_revocation_data_fails_when_required_and_warns_when_not(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    finding = check_revocation(revocation_config(), env(tmp_path, now=lambda: T0))
    assert finding.status == "fail" and "every card is refused" in finding.message
    finding = check_revocation(revocation_config(required=False), env(tmp_path, now=lambda: T0))
    assert finding.status == "warn"


def test_corrupt_revocation_data_fails_naming_the_real_path(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config()
    config.revocation.state_path.write_bytes(b"\x00garbage")
    finding = check_revocation(config, env(tmp_path, now=lambda: T0))
    assert finding.status == "fail"
    assert str(config.revocation.state_path) in finding.message
    assert "terminald-doctor-" not in finding.message


def test_checking_revocation_leaves_a_writer_temporary_alone(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    """The store's loader deletes stray temporaries; one may be the daemon's write."""
    config = revocation_config()
    install(config)
    state = config.revocation.state_path
    in_flight = state.parent / f".{state.name}.abc123.tmp"
    in_flight.write_bytes(b"being written")
    before = state.read_bytes()
    check_revocation(config, env(tmp_path, now=lambda: T0 + DAY))
    assert in_flight.read_bytes() == b"being written"
    assert state.read_bytes() == before


def test_no_revocation_store_warns(config: Config, tmp_path: Path) -> None:
    finding = check_revocation(config, env(tmp_path))
    assert finding.status == "warn" and "NOT checked" in finding.message


# --------------------------------------------------------------------------- state dir


def test_a_private_state_directory_is_ok(config: Config, tmp_path: Path) -> None:
    assert check_state_dir(config, env(tmp_path)).status == "ok"


def test_a_world_writable_state_directory_warns(config: Config, tmp_path: Path) -> None:
    config.state.dir.chmod(0o777)
    finding = check_state_dir(config, env(tmp_path))
    assert finding.status == "warn" and "0777" in finding.message
    assert f"chmod go-w {config.state.dir}" in finding.fix


def test_low_free_space_warns(config: Config, tmp_path: Path) -> None:
    finding = check_state_dir(config, env(tmp_path, disk_free=lambda p: 5 * 1024 * 1024))
    assert finding.status == "warn" and "5.0 MiB free" in finding.message


def test_an_unwritable_state_directory_fails(config: Config, tmp_path: Path) -> None:
    asked: list[Path] = []

    def access(path: Path, mode: int) -> bool:
        asked.append(path)
        return not mode & os.W_OK

    finding = check_state_dir(config, env(tmp_path, access=access))
    assert finding.status == "fail" and "cannot write" in finding.message
    assert asked == [config.state.dir]


def test_a_missing_or_non_directory_state_dir_fails(config: Config, tmp_path: Path) -> None:
    config.state.dir.rmdir()
    assert check_state_dir(config, env(tmp_path)).status == "fail"
    config.state.dir.write_text("")
    finding = check_state_dir(config, env(tmp_path))
    assert finding.status == "fail" and "not a directory" in finding.message


# --------------------------------------------------------------------------- report


def test_a_healthy_mock_terminal_has_warnings_but_no_failure(
    config_file: Callable[..., Path], tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    now = test_pki.generated_at
    report = run_checks(config_file(), env(tmp_path, now=lambda: now))
    statuses = {f.check: f.status for f in report.findings}
    assert statuses["gpio"] == "warn" and statuses["revocation"] == "warn"
    assert "fail" not in statuses.values()
    assert report.exit_code == 0


def test_the_report_prints_status_check_message_and_fix() -> None:
    report = Report(
        Path("x.toml"),
        (
            Finding("pcscd", "ok", "reachable"),
            Finding("serial", "fail", "gone", "plug it in", ("detail one",)),
        ),
    )
    lines = format_report(report)
    assert lines[0].startswith("OK   pcscd ") and lines[0].endswith("reachable")
    assert lines[1].startswith("FAIL serial ") and lines[1].endswith("gone")
    assert lines[2].strip() == "- detail one"
    assert lines[3].strip() == "→ fix: plug it in"
    assert lines[-1] == "1 ok, 0 warning(s), 1 failure(s)"
    assert report.exit_code == 1


# --------------------------------------------------------------------------- trusted time


def test_a_clock_behind_the_installed_data_fails_trusted_time(
    revocation_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = revocation_config()
    install(config)  # issued at T0
    path = config.source
    assert path is not None
    behind = run_checks(path, env(tmp_path, now=lambda: T0 - 3 * DAY))
    finding = only(list(behind.findings), "trusted-time")
    assert finding.status == "fail" and "revocation data version 5" in finding.message
    assert behind.exit_code == 1
    right = run_checks(path, env(tmp_path, now=lambda: T0 + DAY))
    finding = only(list(right.findings), "trusted-time")
    assert finding.status == "ok" and "version 5" in finding.message


def test_the_kept_trusted_time_counts_without_revocation_data(
    config: Config, tmp_path: Path
) -> None:
    kept = TrustedTimeFile(config.state.dir / TRUSTED_TIME_NAME)
    kept.advance(SignedTime(NOW, "the back office's signed time"))
    assert config.source is not None
    report = run_checks(config.source, env(tmp_path, now=lambda: NOW - DAY))
    finding = only(list(report.findings), "trusted-time")
    assert finding.status == "fail" and "back office's signed time" in finding.message
    (config.state.dir / TRUSTED_TIME_NAME).write_text("garbage")
    report = run_checks(config.source, env(tmp_path, now=lambda: NOW))
    finding = only(list(report.findings), "trusted-time")
    assert finding.status == "warn" and "remove" in finding.fix


def test_the_link_key_is_checked_and_only_its_public_half_shown(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    from terminald.daemon.doctor_link import check_link_key
    from terminald.link.keys import encode_public
    from terminald.store.link_keys import init_link_key

    key = tmp_path / "link.key"
    config = load_config(
        config_file(link={"port": "/dev/ttyAMA0", "host_key": HOST_KEY, "key_file": str(key)})
    )
    missing = check_link_key(config)
    assert missing.status == "fail" and "does not exist" in missing.message
    assert "terminald keys init" in missing.fix
    public = init_link_key(key)
    good = check_link_key(config)
    assert good.status == "ok" and encode_public(public) in good.message
    assert "PRIVATE" not in good.message
    key.chmod(0o644)
    loose = check_link_key(config)
    assert loose.status == "fail" and "chmod 600" in loose.message + loose.fix
    assert check_link_key(load_config(config_file())).status == "ok"  # no link: nothing to check
