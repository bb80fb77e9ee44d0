"""Run the real pcscd (with the vpcd driver) as a child process, for tests, demo and benchmarks.

Only inside ``scripts/sandbox``: pcscd's socket path is fixed (/run/pcscd/pcscd.comm, one
daemon per mount namespace) and bookworm's vpcd listens on 0.0.0.0 with no way to bind
loopback (pcsc-in-ci.md §2, pitfalls 2-3). The sandbox gives a private /run/pcscd and a
network namespace holding only loopback. Always ``--foreground``, never ``--auto-exit``
(which quits 60 s after the last client even with a card in; pitfall 4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from smartcard import scard

PCSCD = "/usr/sbin/pcscd"
READER_0 = "Virtual PCD 00 00"  # vpcd slot on TCP 35963
READER_1 = "Virtual PCD 00 01"  # vpcd slot on TCP 35964
READER_PORTS = {READER_0: 35963, READER_1: 35964}
_POLL = 0.02


class SandboxRequiredError(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "refusing to start pcscd outside the test sandbox (TERMINALD_SANDBOX=1 is not "
            "set): run under scripts/sandbox, e.g. "
            "`scripts/sandbox .venv/bin/python -m pytest tests/integration`"
        )


class PcscdError(RuntimeError):
    """pcscd did not start, or did not become ready in time."""


def list_readers() -> list[str] | None:
    """Reader names, or None when the PC/SC service is not reachable."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        return list(readers)
    finally:
        scard.SCardReleaseContext(context)


def card_present(reader: str) -> bool | None:
    """Whether pcscd reports a card in ``reader``; None when the service or reader is gone."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if hresult != scard.SCARD_S_SUCCESS:
            return None
        state = int(states[0][1])
        return bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE
    finally:
        scard.SCardReleaseContext(context)


def wait_for_card_state(reader: str, present: bool, timeout: float) -> bool:
    """Poll until pcscd reports the card in ``reader`` present (or absent); False on timeout.

    pcscd checks presence every 400 ms, so insertion takes about 0.5 s (pcsc-in-ci.md §4).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if card_present(reader) is present:
            return True
        time.sleep(_POLL)
    return False


class Pcscd:
    """One pcscd child process. ``log_path`` receives its output (appended across restarts)."""

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        binary: str = PCSCD,
        debug: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.binary = binary
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"pcscd-{os.getpid()}.log"
        self._args = [binary, "--foreground", *(["--debug"] if debug else []), *extra_args]
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start pcscd and wait until both vpcd readers are listed (their ports then listen)."""
        if os.environ.get("TERMINALD_SANDBOX") != "1":
            raise SandboxRequiredError()
        if self.running:
            return
        if "--auto-exit" in self._args or "-x" in self._args:
            raise ValueError("pcscd must not run with --auto-exit here")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- terminald: starting {' '.join(self._args)}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            self._args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise PcscdError(f"pcscd exited with {code}; see {self.log_path}:\n{self._tail()}")
            readers = list_readers()
            if readers is not None and READER_0 in readers:
                return
            time.sleep(_POLL)
        raise PcscdError(f"pcscd did not list {READER_0!r} in {timeout} s; see {self.log_path}")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM and wait (pcscd exits in a few ms and removes its socket); SIGKILL if stuck."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._finish()

    def kill(self) -> None:
        """SIGKILL, for crash tests. Leaves a stale pcscd.comm, which a new pcscd tolerates."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()  # reap: kill -0 succeeds on a zombie (pitfall 9)
        self._finish()

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def _finish(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Pcscd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
