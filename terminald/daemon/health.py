"""What the daemon tells systemd of its health: the watchdog's condition and STATUS=.

The watchdog is fed only while every part that could wedge is alive and moving: a
silent reader monitor, a stopped or stuck card worker, or a stopped keypad scanner
withholds it, and systemd restarts the daemon (the relay made safe by ExecStopPost).
"""

from __future__ import annotations

from typing import Protocol

from terminald.core.terminal import Terminal

# How long a part may be silent before the watchdog is withheld. The monitor beats at
# least once per wait slice (1 s); a card job takes well under a second with a real card.
MONITOR_STALL_S = 5.0
CARD_STALL_S = 15.0


class _Monitor(Protocol):
    @property
    def problem(self) -> str | None: ...

    def silent_for(self, now: float) -> float: ...


class _Worker(Protocol):
    @property
    def alive(self) -> bool: ...

    def busy_for(self, now: float) -> float: ...


def health_problem(
    monitor: _Monitor, worker: _Worker, gpio_healthy: bool, now: float
) -> str | None:
    """Why the watchdog is withheld now (monotonic ``now``), or None. The texts are stable:
    a change of text is what gets logged and sent as STATUS."""
    if monitor.silent_for(now) > MONITOR_STALL_S:
        return f"reader monitor silent for more than {MONITOR_STALL_S:g} s"
    if not worker.alive:
        return "card worker stopped"
    if worker.busy_for(now) > CARD_STALL_S:
        return f"a card call has run for more than {CARD_STALL_S:g} s"
    if not gpio_healthy:
        return "GPIO layer unhealthy (keypad scanner stopped)"
    return None


def status_text(
    terminal: Terminal,
    reader_problem: str | None,
    clock: str | None,
    withheld: str | None,
    enrolment: str | None = None,
) -> str:
    """The one line systemd shows (`systemctl status terminald`): state, mode, what is wrong.
    ``enrolment``: why the signed set cannot be read (every card is refused)."""
    text = f"{terminal.state.value}; mode {terminal.mode.value}"
    if terminal.door.alarms:
        text += "; alarms " + ",".join(sorted(a.value for a in terminal.door.alarms))
    if reader_problem:
        text += f"; reader: {reader_problem}"
    if clock:
        text += f"; CLOCK UNTRUSTED: {clock}"
    if withheld:
        text += f"; UNHEALTHY: {withheld}"
    if enrolment:
        text += f"; ENROLMENT UNAVAILABLE: {enrolment}"
    return text
