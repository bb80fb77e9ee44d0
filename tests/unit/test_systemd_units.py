"""systemd/: the unit verifies cleanly, its exposure stays at or under 2.0, and the
ExecStopPost command that makes the relay safe does its job.

``systemd-analyze`` works without systemd as PID 1 (shared/reference/pcsc-in-ci.md §6).
It is part of Debian's ``systemd`` package, which scripts/bootstrap installs when the
command is missing, so these tests fail rather than skip without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.config import DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR

REPO = Path(__file__).resolve().parents[2]
SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "terminald.service"
INSTALLED_BINARY = "/usr/bin/terminald"
MAX_EXPOSURE = 2.0


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is missing: install Debian's systemd package (scripts/bootstrap)"
    return path


def unit_settings(path: Path = UNIT) -> dict[str, list[str]]:
    """``Section.Key`` → values in order (keys such as DeviceAllow= repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def one(settings: dict[str, list[str]], key: str) -> str:
    values = settings.get(key, [])
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def test_verify_is_clean(tmp_path: Path) -> None:
    # verify fails when ExecStart's binary does not exist, and /usr/bin/terminald exists
    # only on an installed terminal. The copy points the commands at this venv's
    # terminald, which takes the same arguments; nothing else changes.
    venv_binary = Path(sys.executable).parent / "terminald"
    assert venv_binary.is_file(), venv_binary
    text = UNIT.read_text()
    assert INSTALLED_BINARY in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_BINARY, str(venv_binary)))
    result = subprocess.run(
        [systemd_analyze(), "verify", str(copy)], capture_output=True, text=True, check=False
    )
    # Unknown keys and missing dependencies only warn (rc 0): any stderr is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_exposure_is_at_most_two() -> None:
    result = subprocess.run(
        [
            systemd_analyze(),
            "security",
            "--offline=yes",
            f"--threshold={round(MAX_EXPOSURE * 10)}",  # compared with exposure x 10
            str(UNIT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for terminald\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_the_unit_is_a_watched_notify_service() -> None:
    s = unit_settings()
    assert one(s, "Service.Type") == "notify"
    assert one(s, "Service.NotifyAccess") == "main"
    assert one(s, "Service.WatchdogSec")
    assert one(s, "Service.Restart") == "on-failure"
    config = f"--config {DEFAULT_CONFIG_PATH}"
    assert one(s, "Service.ExecStart") == f"{INSTALLED_BINARY} run {config}"
    assert one(s, "Service.ExecStopPost") == f"{INSTALLED_BINARY} relay-safe {config}"
    assert "pcscd.socket" in one(s, "Unit.After").split()
    assert "pcscd.socket" in one(s, "Unit.Wants").split()


def test_the_unit_runs_unprivileged_with_only_its_devices() -> None:
    s = unit_settings()
    assert one(s, "Service.User") == "terminald"
    assert set(one(s, "Service.SupplementaryGroups").split()) == {"gpio", "dialout"}
    assert Path("/var/lib") / one(s, "Service.StateDirectory") == DEFAULT_STATE_DIR
    assert one(s, "Service.ConfigurationDirectory") == DEFAULT_CONFIG_PATH.parent.name
    assert one(s, "Service.CapabilityBoundingSet") == ""
    assert one(s, "Service.RestrictAddressFamilies") == "AF_UNIX"
    assert one(s, "Service.DevicePolicy") == "closed"
    devices = {v.split()[0] for v in s["Service.DeviceAllow"]}
    # GPIO and serial lines only: the card reader belongs to pcscd (its socket is enough).
    assert devices == {"char-gpiochip", "char-ttyAMA", "char-ttyS", "char-ttyUSB", "char-ttyACM"}


def test_sysusers_creates_the_units_user_and_groups(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers, "systemd-sysusers is missing (Debian's systemd package)"
    conf = SYSTEMD / "terminald.sysusers.conf"
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", "--dry-run", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Creating user 'terminald'" in output
    members = {
        tuple(line.split()[1:3]) for line in conf.read_text().splitlines() if line.startswith("m ")
    }
    groups = set(one(unit_settings(), "Service.SupplementaryGroups").split())
    assert members == {("terminald", g) for g in groups}


# --- terminald relay-safe (ExecStopPost) --------------------------------------------------

DEMO = SYSTEMD / "terminald-demo.toml"


def test_relay_safe_on_the_mock_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["relay-safe", "--config", str(DEMO)]) == 0
    assert capsys.readouterr().out == "relay de-energised (mock on rpi4)\n"


def test_relay_safe_calls_the_backend_with_the_configured_board(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, str]] = []

    class FakeBackend:
        @staticmethod
        def drive_relay_safe(**kwargs: str) -> None:
            calls.append(kwargs)

    monkeypatch.setitem(sys.modules, "terminald.backends.gpio", FakeBackend)
    # A mistake outside [gpio] (an edit the daemon refused) does not stop relay-safe.
    config = tmp_path / "terminald.toml"
    config.write_text('[gpio]\nboard = "rpi5"\nbackend = "lgpio"\n[relay]\nopen_ms = 0\n')
    assert main(["relay-safe", "--config", str(config)]) == 0
    assert calls == [{"backend": "lgpio", "board": "rpi5"}]


def test_relay_safe_without_a_gpio_backend_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "terminald.backends.gpio", None)  # import fails
    assert main(["relay-safe", "--config", str(DEMO)]) == 1
    err = capsys.readouterr().err
    assert "no GPIO backend in this build" in err and "relay state NOT changed" in err


def test_relay_safe_reports_a_failing_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenBackend:
        @staticmethod
        def drive_relay_safe(**kwargs: str) -> None:
            raise OSError("/dev/gpiochip0: Permission denied")

    monkeypatch.setitem(sys.modules, "terminald.backends.gpio", BrokenBackend)
    assert main(["relay-safe", "--config", str(DEMO)]) == 1
    assert "could not drive the relay (mock on rpi4): /dev/gpiochip0" in capsys.readouterr().err


def test_relay_safe_needs_a_usable_gpio_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "terminald.toml"
    config.write_text('[gpio]\nboard = "rpi3"\n')
    assert main(["relay-safe", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "gpio.board: must be one of" in err and "relay state NOT changed" in err
