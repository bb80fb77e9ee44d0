"""The console on its serial port: one thread that reads, runs the session, writes.

The port may vanish (a USB adapter pulled out) or never appear: the thread logs it once
per outage (``event=console_port_lost`` / ``console_port_open``), retries with a pause
doubling from 1 s to 30 s, and never stops the daemon. A session is logged out when its
port goes away. Nothing typed is ever logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from terminald.console import render
from terminald.console.session import Lockouts, Session, SessionClock, SessionSettings
from terminald.daemon.operator import Operator

if TYPE_CHECKING:
    from terminald.daemon.service import Daemon

logger = logging.getLogger("terminald.console")

RETRY_FIRST_S: Final = 1.0
RETRY_MAX_S: Final = 30.0
READ_CHUNK: Final = 256


class Port(Protocol):
    def read(self, size: int) -> bytes: ...
    def write(self, data: bytes) -> Any: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


class ConsoleDriver:
    """``open_port(path, baud)`` opens the port (raises OSError); ``size(port)`` gives the
    (columns, rows) it reports, 0 for unknown."""

    def __init__(
        self,
        settings: SessionSettings,
        baud: int,
        operator: Operator,
        lockouts: Lockouts,
        open_port: Callable[[str, int], Port],
        size: Callable[[Port], tuple[int, int]] = lambda _: (0, 0),
    ) -> None:
        self.settings = settings
        self.baud = baud
        self._operator = operator
        self._lockouts = lockouts
        self._open_port = open_port
        self._size = size
        self._stopping = threading.Event()
        self.connected = threading.Event()  # set while the port is open (tests, status)
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        pause = RETRY_FIRST_S
        reported = False
        path = self.settings.port
        while not self._stopping.is_set():
            try:
                port = self._open_port(path, self.baud)
            except OSError as exc:
                if not reported:
                    logger.warning("event=console_port_lost port=%s problem=%r", path, _why(exc))
                    reported = True
                self._stopping.wait(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                continue
            logger.info("event=console_port_open port=%s baud=%d", path, self.baud)
            reported, pause = False, RETRY_FIRST_S
            try:
                self._serve(port)
            except Exception as exc:  # the port went away, or a bug: never the daemon's end
                if not isinstance(exc, OSError):
                    logger.exception("event=console_failed port=%s", path)
                logger.warning("event=console_port_lost port=%s problem=%r", path, _why(exc))
                reported = True
                self._stopping.wait(pause)
            finally:
                self.connected.clear()
                try:
                    port.close()
                except Exception:  # closing a vanished device may fail too; nothing to do
                    logger.debug("event=console_close_failed")

    def _pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _serve(self, port: Port) -> None:
        columns, rows = self._size(port)
        settings = SessionSettings(
            self.settings.port,
            self.settings.passwd,
            self.settings.idle_logout_s,
            self.settings.policy,
            columns or render.WIDTH,  # a serial line reports 0x0: assume 80x24
            rows or render.ROWS,
        )
        session = Session(
            settings,
            self._operator,
            self._lockouts,
            port.write,
            # A login delay ends early when the daemon stops, so the stop never waits on it.
            clock=SessionClock(sleep=self._pause),
            drop_input=port.reset_input_buffer,
        )
        self.connected.set()
        try:
            while not self._stopping.is_set():
                data = port.read(READ_CHUNK)
                if data:
                    session.receive(data)
                session.tick()
        finally:
            if session.logged_in:
                self._operator.record("console_logout", f"port {settings.port}: port closed")


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)[:120]


def console_for(
    daemon: Daemon, list_readers: Callable[[], list[str]] | None
) -> ConsoleDriver | None:
    """The console configured in ``[console]`` for ``daemon``, not started; None without a
    port. A change of ``[console]`` takes effect at the next restart."""
    section = daemon.config.console
    if section.port is None:
        return None
    from terminald.backends.console_port import open_console_port, window_size
    from terminald.daemon.operator import DaemonOperator
    from terminald.store.console_lockout import LOCKOUT_NAME, LockoutFile

    settings = SessionSettings(str(section.port), section.passwd, section.idle_logout_s)
    return ConsoleDriver(
        settings,
        section.baud,
        DaemonOperator(daemon, list_readers=list_readers),
        LockoutFile(daemon.config.state.dir / LOCKOUT_NAME),
        open_console_port,
        window_size,
    )
