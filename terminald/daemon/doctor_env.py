"""``terminald doctor``'s vocabulary: a finding, the machine it looks at, the report."""

from __future__ import annotations

import importlib
import os
import pwd
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

if TYPE_CHECKING:
    pass

Status: TypeAlias = Literal["ok", "warn", "fail"]

PCSCD_SOCKET: Final = Path("/run/pcscd/pcscd.comm")
TIMESYNC_FLAG: Final = Path("/run/systemd/timesync/synchronized")
ANCHOR_WARN: Final = timedelta(days=365)
REVOCATION_WARN: Final = timedelta(hours=24)
MIN_FREE_BYTES: Final = 10 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    """One check's verdict; ``fix`` says what to do when the status is not ok."""

    check: str
    status: Status
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()


class PcscUnreachable(Exception):
    """pcscd could not be asked for its readers; the message says why."""


def pcsc_list_readers() -> list[str]:
    """The readers pcscd lists. Establishes a context and lists: never connects to a card."""
    from terminald.backends.pcsc import PcscReader
    from terminald.card.errors import CardError

    reader = PcscReader()
    try:
        return [str(r) for r in reader.list_readers()]
    except CardError as exc:  # ReaderUnavailableError and the rest, with pcscd's own words
        raise PcscUnreachable(str(exc)) from exc
    finally:
        reader.close()


def timedatectl_ntp_synchronized() -> str | None:
    """``timedatectl show -p NTPSynchronized --value`` ("yes"/"no"), or None if unknown."""
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value else None


def _gpiochips() -> list[Path]:
    return sorted(Path("/dev").glob("gpiochip*"))


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _now() -> datetime:
    return datetime.now(UTC)


def _user() -> str:
    """The effective user's name: the one the access checks are made for."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


@dataclass(frozen=True)
class Environment:
    """What the checks learn from the machine; tests replace any part."""

    now: Callable[[], datetime] = _now
    list_readers: Callable[[], list[str]] = pcsc_list_readers
    pcscd_socket: Path = PCSCD_SOCKET
    gpiochips: Callable[[], list[Path]] = _gpiochips
    import_module: Callable[[str], object] = importlib.import_module
    timesync_flag: Path = TIMESYNC_FLAG
    ntp_synchronized: Callable[[], str | None] = timedatectl_ntp_synchronized
    disk_free: Callable[[Path], int] = _disk_free
    access: Callable[[Path, int], bool] = os.access
    hw_dir: Path | None = None
    user: Callable[[], str] = _user


@dataclass(frozen=True)
class Report:
    config_path: Path
    findings: tuple[Finding, ...]
    # The file could not be read or parsed at all (exit 2).
    config_unreadable: bool = False

    @property
    def exit_code(self) -> int:
        if self.config_unreadable:
            return 2
        return 1 if any(f.status == "fail" for f in self.findings) else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "config": str(self.config_path),
            "exit_code": self.exit_code,
            "ok": self.exit_code == 0,
            "findings": [
                {
                    "check": f.check,
                    "status": f.status,
                    "message": f.message,
                    "fix": f.fix,
                    "details": list(f.details),
                }
                for f in self.findings
            ],
        }


def iso(moment: datetime) -> str:
    """UTC, whole seconds, with a Z: how the doctor shows a moment."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
