"""systemd notification (sd_notify) through sdnotify, and the watchdog's pace.

``WATCHDOG_USEC`` (set by systemd when the unit has ``WatchdogSec=``) fixes how often
the daemon must say ``WATCHDOG=1``; it pings at half that, as sd_watchdog_enabled(3)
recommends. Without ``NOTIFY_SOCKET`` every call is a no-op, so the daemon runs the
same outside systemd.
"""

from __future__ import annotations

import os

import sdnotify


class Notifier:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._notifier = sdnotify.SystemdNotifier() if self.enabled else None
        sock = getattr(self._notifier, "socket", None)
        if sock is not None:
            # A receiver that stops reading (its queue holds ~10 datagrams) must never
            # block the loop: a message that does not fit is dropped, not waited on.
            sock.setblocking(False)
        self.watchdog_interval_s = _watchdog_interval()
        self._last_status = ""

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)

    def ready(self, status: str) -> None:
        self._last_status = status
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self._send(f"STATUS={status}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def stopping(self, status: str) -> None:
        self._send(f"STOPPING=1\nSTATUS={status}")


def _watchdog_interval() -> float | None:
    """Seconds between pings, or None when no watchdog is asked for (or not for us)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
