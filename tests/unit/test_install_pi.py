"""scripts/install-pi, staged into a directory (--root), without apt or a venv.

--root never calls apt, systemctl, udevadm, systemd-sysusers or systemd-tmpfiles, and
--no-venv skips pip (which needs PyPI), so these tests run offline and without root.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install-pi"
BEGIN = "# >>> terminald: relay pin held off from boot (hw/config.txt.snippet) >>>"
END = "# <<< terminald <<<"

# destination (under the root) -> source in the checkout
FILES = {
    "usr/lib/sysusers.d/terminald.conf": "systemd/terminald.sysusers.conf",
    "usr/lib/tmpfiles.d/terminald.conf": "systemd/terminald.tmpfiles.conf",
    "etc/systemd/system/terminald.service": "systemd/terminald.service",
    "etc/udev/rules.d/99-terminald.rules": "hw/udev/99-terminald.rules",
    "usr/share/doc/terminald/operations.md": "docs/operations.md",
    "etc/terminald/terminald.toml": "systemd/terminald.toml.example",
    "etc/terminald/enrolled.toml": "systemd/enrolled.toml.example",
    # Where an installed terminald looks for them (pinmap.default_hw_dir).
    "usr/share/terminald/hw/readers.toml": "hw/readers.toml",
    **{
        f"usr/share/terminald/hw/boards/{board.name}": f"hw/boards/{board.name}"
        for board in (REPO / "hw" / "boards").glob("*.toml")
    },
}


def install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def staged(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = install("--root", str(root), "--no-venv", *extra)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def pi_root(tmp_path: Path, boot: str = "boot/firmware") -> Path:
    root = tmp_path / "root"
    (root / boot).mkdir(parents=True)
    (root / boot / "config.txt").write_text("dtparam=audio=on\n\n[all]\nenable_uart=1")
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes | str, int, int]]:
    """Every path under root: content (or link target), mode and mtime."""
    out: dict[str, tuple[bytes | str, int, int]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            out[str(path.relative_to(root))] = (os.readlink(path), info.st_mode, 0)
        elif path.is_file():
            out[str(path.relative_to(root))] = (
                path.read_bytes(),
                info.st_mode,
                info.st_mtime_ns,
            )
    return out


def test_files_land_with_their_content_and_modes(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    staged(root)
    for dest, src in FILES.items():
        path = root / dest
        assert path.read_bytes() == (REPO / src).read_bytes(), dest
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, dest
    link = root / "usr/bin/terminald"
    assert link.is_symlink()
    assert os.readlink(link) == "/opt/terminald/bin/terminald"  # the target, not the staging path
    assert not (root / "opt").exists()  # --no-venv
    assert any("boards/rpi4.toml" in dest for dest in FILES)


def test_the_installed_hw_dir_is_where_the_package_looks() -> None:
    # An installed package is not in a checkout: pinmap.default_hw_dir falls back to this.
    source = (REPO / "terminald/backends/pinmap.py").read_text()
    assert 'Path("/usr/share/terminald/hw")' in source


def test_the_config_txt_block_is_added_once_across_two_runs(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    first = staged(root)
    assert "next boot" in first.stdout
    assert "Reboot" in first.stdout
    before = snapshot(root)
    second = staged(root)
    assert "nothing to change" in second.stdout
    assert "Reboot" not in second.stdout
    assert snapshot(root) == before  # not a byte, mode or mtime changed

    text = (root / "boot/firmware/config.txt").read_text()
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    # The operator's lines are kept, and the unterminated last one was ended.
    assert text.startswith("dtparam=audio=on\n\n[all]\nenable_uart=1\n" + BEGIN + "\n")
    snippet = (REPO / "hw/config.txt.snippet").read_text()
    assert text.endswith(BEGIN + "\n" + snippet + END + "\n")
    assert "gpio=26=op,dl" in text


def test_a_changed_block_is_replaced_not_duplicated(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    staged(root)
    config_txt = root / "boot/firmware/config.txt"
    config_txt.write_text(
        config_txt.read_text().replace("gpio=26=op,dl", "gpio=26=op,dh") + "dtoverlay=foo\n"
    )
    staged(root)
    text = config_txt.read_text()
    assert text.count(BEGIN) == 1
    assert "gpio=26=op,dh" not in text
    assert "gpio=26=op,dl" in text
    assert "dtoverlay=foo" in text  # lines outside the markers stay


def test_boot_config_txt_is_the_fallback(tmp_path: Path) -> None:
    root = pi_root(tmp_path, boot="boot")
    result = staged(root)
    assert "/boot/config.txt" in result.stdout
    assert (root / "boot/config.txt").read_text().count(BEGIN) == 1
    assert not (root / "boot/firmware").exists()


def test_without_a_config_txt_it_says_so_and_creates_none(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = staged(root)
    assert "hw/config.txt.snippet" in result.stdout
    assert not (root / "boot").exists()


def test_an_existing_configuration_is_never_overwritten(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    config = root / "etc/terminald/terminald.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[terminal]\nid = "door-9"\n')
    config.chmod(0o600)
    staged(root)
    staged(root)
    assert config.read_text() == '[terminal]\nid = "door-9"\n'
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_the_enrolled_list_starts_empty_and_is_never_overwritten(tmp_path: Path) -> None:
    from terminald.store.enrolled import load_enrolled

    root = pi_root(tmp_path)
    staged(root)
    enrolled = root / "etc/terminald/enrolled.toml"
    assert len(load_enrolled(enrolled)) == 0  # a valid file: the daemon starts, no one passes
    enrolled.write_text('[[card]]\nissuer = "aabb"\nserial = 5\n')
    staged(root)
    assert len(load_enrolled(enrolled)) == 1


def test_a_changed_source_file_is_updated(tmp_path: Path) -> None:
    root = pi_root(tmp_path)
    staged(root)
    unit = root / "etc/systemd/system/terminald.service"
    unit.write_text("stale\n")
    unit.chmod(0o600)
    result = staged(root)
    assert "installed /etc/systemd/system/terminald.service" in result.stdout
    assert unit.read_bytes() == (REPO / "systemd/terminald.service").read_bytes()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644


def test_help() -> None:
    result = install("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: scripts/install-pi")
    for option in ("--root DIR", "--no-apt", "--no-venv"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option: --frobnicate"),
        (["--root"], "--root needs a directory"),
        (["--root", "/etc/hostname"], "--root /etc/hostname: not a directory"),
        (["extra"], "unexpected argument: extra"),
    ],
)
def test_bad_usage_exits_2_with_a_message(args: list[str], message: str) -> None:
    result = install(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage:" in result.stderr
    assert result.stdout == ""


def test_a_root_that_does_not_exist_yet_is_created(tmp_path: Path) -> None:
    root = tmp_path / "new" / "image"
    result = staged(root)
    assert "no /boot/firmware/config.txt" in result.stdout  # it ran to the end
    for dest, source in FILES.items():
        assert (root / dest).read_bytes() == (REPO / source).read_bytes(), dest
