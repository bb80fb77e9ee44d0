"""``terminald console passwd`` and the password file the daemon reads."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from terminald.cli import main
from terminald.console.passwd import PasswdError, check_new, read_hash, verify

GOOD = "correct horse battery"


class Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def set_password(monkeypatch: pytest.MonkeyPatch, path: Path, text: str, tty: bool = False) -> int:
    monkeypatch.setattr("sys.stdin", Stdin(text, tty))
    return main(["console", "passwd", "--file", str(path)])


def test_a_password_on_stdin_is_hashed_with_argon2id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "console.passwd"
    assert set_password(monkeypatch, path, GOOD + "\n") == 0
    hashed = read_hash(path)
    assert hashed.startswith("$argon2id$")
    assert verify(hashed, GOOD) and not verify(hashed, GOOD + "x")
    assert path.stat().st_mode & 0o077 in (0, 0o040)  # 0600, or 0640 root:terminald
    out, err = capsys.readouterr()
    assert GOOD not in out + err and hashed not in out + err
    assert "console password set" in out


def test_a_terminal_is_asked_twice_without_echo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([GOOD, GOOD + "!"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    path = tmp_path / "pw"
    assert set_password(monkeypatch, path, "", tty=True) == 2
    assert "differ" in capsys.readouterr().err and not path.exists()
    answers = iter([GOOD, GOOD])
    assert set_password(monkeypatch, path, "", tty=True) == 0
    assert verify(read_hash(path), GOOD)


@pytest.mark.parametrize("text", ["short\n", "\n", "é" * 12 + "\n"])
def test_bad_passwords_write_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pw"
    assert set_password(monkeypatch, path, text) == 2
    assert not path.exists()
    assert "nothing written" in capsys.readouterr().err


def test_a_replaced_password_file_keeps_no_old_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "pw"
    set_password(monkeypatch, path, GOOD + "\n")
    set_password(monkeypatch, path, "another good one\n")
    assert verify(read_hash(path), "another good one") and not verify(read_hash(path), GOOD)
    assert [p.name for p in tmp_path.iterdir()] == ["pw"]  # no temporary left


def test_a_missing_directory_is_said_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set_password(monkeypatch, tmp_path / "no" / "pw", GOOD + "\n") == 2
    assert "no such directory" in capsys.readouterr().err


def test_check_new_says_why() -> None:
    assert check_new(GOOD) is None
    assert "at least 10" in str(check_new("x" * 9))
    assert "at most" in str(check_new("x" * 300))


@pytest.mark.parametrize(
    ("content", "mode", "problem"),
    [
        ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", 0o644, "open to others"),
        ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", 0o660, "writable"),
        ("plain text password", 0o600, "not an argon2 hash"),
        ("$argon2" + "x" * 2000, 0o600, "larger than"),
    ],
)
def test_the_daemon_refuses_an_unsafe_or_wrong_file(
    tmp_path: Path, content: str, mode: int, problem: str
) -> None:
    path = tmp_path / "pw"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(PasswdError, match=problem):
        read_hash(path)


def test_a_symlink_or_a_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_text(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(GOOD))
    real.chmod(0o600)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PasswdError):
        read_hash(tmp_path / "link")
    with pytest.raises(PasswdError, match="not a regular file"):
        read_hash(tmp_path)


def test_a_malformed_hash_is_an_error_not_a_mismatch() -> None:
    with pytest.raises(PasswdError):
        verify("$argon2id$v=19$m=64,t=1,p=1$!!!", GOOD)


def test_the_file_is_group_readable_only_for_the_daemon_group() -> None:
    from terminald.cli.console_cmd import _owner

    owner, mode, said = _owner()
    if os.geteuid() != 0:
        assert (owner, mode) == (None, 0o600) and "not root" in said
    elif mode == 0o640:
        assert owner is not None and owner[0] == 0 and "group terminald" in said
    else:
        assert (owner, mode) == ((0, 0), 0o600)
