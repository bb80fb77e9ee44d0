"""``terminald run``: load, check, open, run, close, in that order.

Start-up refuses (exit 2) on a configuration that does not load or whose relay
assertions disagree with the board's pin map, and (exit 1) when the GPIO backend
cannot start: in both cases before any pin is driven except the relay's claim at
its off level. Signals: SIGTERM/SIGINT stop, SIGHUP reloads (see _relay_signals).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from terminald.backends.gpio import GpioBackendError, open_gpio
from terminald.backends.pcsc import PcscReader
from terminald.backends.pinmap import PinMapError, load_board
from terminald.backends.reader_profiles import (
    ReaderProfileError,
    ReaderProfiles,
    load_reader_profiles,
)
from terminald.config import Config, ConfigError, load_config, relay_wiring_mismatches
from terminald.console.driver import console_for
from terminald.core.policy import AgeAnswer
from terminald.daemon.attendance_seed import seed_attendance
from terminald.daemon.logfmt import configure_daemon_logging, log_event, set_level
from terminald.daemon.reload import Reload
from terminald.daemon.runtime import build_runtime
from terminald.daemon.service import Daemon, Stop, utc_now
from terminald.store.audit import AUDIT_NAME, AuditLog
from terminald.store.trusted_time import TRUSTED_TIME_NAME, TrustedTimeFile

if TYPE_CHECKING:
    from terminald.daemon.link_service import LinkService

logger = logging.getLogger("terminald.daemon")


class StartupError(Exception):
    def __init__(self, messages: list[str], exit_code: int) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages
        self.exit_code = exit_code


def reader_profiles() -> ReaderProfiles | None:
    try:
        return load_reader_profiles()
    except ReaderProfileError as exc:
        logger.warning("event=reader_profiles_unusable problem=%r", str(exc))
        return None


def reader_supports_extended(config: Config, profiles: ReaderProfiles | None = None) -> bool:
    profiles = profiles or reader_profiles()
    return bool(profiles and profiles.extended_apdus(config.card.reader or ""))


def open_daemon(
    config_path: Path,
    log_floor: int | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Daemon:
    """Everything ``terminald run`` builds before the loop; StartupError says why not.

    ``clock`` is the wall clock (UTC) the daemon trusts only as far as the signed
    times it holds allow; tests and scenarios set it to one that runs behind.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise StartupError([f"{config_path}: {m}" for m in exc.messages], 2) from exc
    set_level(config.log.level, log_floor)
    try:
        pinmap = load_board(config.gpio.board, keypad=config.gpio.keypad or None)
    except PinMapError as exc:
        raise StartupError([f"gpio.board: {exc}"], 2) from exc
    mismatches = relay_wiring_mismatches(
        config, active_high=pinmap.relay.active_high, lock=pinmap.relay.lock
    )
    if config.vending.complete_input and pinmap.vend_complete is None:
        mismatches.append(
            f"vending.complete_input: the {pinmap.board} pin map has no [inputs.vend_complete] "
            "(hw/boards): wire the signal and add it, or set complete_input = false"
        )
    if mismatches:
        raise StartupError(mismatches, 2)
    profiles = reader_profiles()
    extended = reader_supports_extended(config, profiles)
    trusted_time = TrustedTimeFile(config.state.dir / TRUSTED_TIME_NAME)
    try:
        runtime = build_runtime(
            config, reader_supports_extended=extended, trusted_time=trusted_time
        )
    except ConfigError as exc:
        raise StartupError(exc.messages, 2) from exc
    if config.terminal.purpose == "attendance":
        # The toggle's memory from the audit log, before the loop runs and before the
        # audit writer opens the file (a reload keeps it in PolicyShared).
        seed_attendance(runtime.policy, config.state.dir / AUDIT_NAME, clock())
    try:
        hardware = open_gpio(pinmap, config.gpio.backend)
    except GpioBackendError as exc:
        raise StartupError([f"gpio: {exc}"], 1) from exc
    presence = PcscReader(config.card.reader, profiles)
    daemon = Daemon(
        config,
        runtime,
        hardware=hardware,
        pinmap=pinmap,
        # Two contexts, one choice of the active reader (every reader when card.reader
        # is unset): the monitor thread waits on one, the card thread connects through
        # the other.
        card_reader=presence.sibling(),
        presence_reader=presence,
        reader_supports_extended=extended,
        audit=open_audit(config),
        trusted_time=trusted_time,
        clock=clock,
    )
    daemon.log_floor = log_floor
    # The technician's console ([console] port); its readers list uses a PC/SC context
    # of its own, like the monitor and the card thread.
    if config.console.port is not None:
        daemon.console = console_for(daemon, presence.sibling().list_readers)
    # The back-office link ([link] port): its own threads; answers through the operator.
    if config.link.port is not None:
        from terminald.daemon.link_service import link_for
        from terminald.daemon.operator import DaemonOperator

        operator = DaemonOperator(daemon, list_readers=presence.sibling().list_readers)
        link = link_for(daemon, operator, daemon.audit)
        daemon.link = link
        if link is not None:
            _connect_policy(daemon, link)
    return daemon


def _connect_policy(daemon: Daemon, link: LinkService) -> None:
    """The policy's ways to the back office: the age service, and the anti-passback
    partner's passages and heartbeats relayed by it (``terminald host serve``)."""
    shared = daemon.runtime.shared
    if shared is None:
        return

    def ask(issuer_key_id: bytes, serial: int, age: int, today: date) -> AgeAnswer | None:
        timeout = daemon.config.vending.age_query_timeout_s  # as reloaded
        return link.ask_age(issuer_key_id, serial, age, today, timeout)

    shared.ask = ask
    link.on_presence = shared.presence.passed
    link.on_partner_seen = shared.presence.partner_seen


def open_audit(config: Config) -> AuditLog:
    """The audit trail in the state directory. Opening never fails and never blocks: its
    writer thread opens the file, and while the file cannot be written (locked, read-only,
    full, directory missing) it keeps the rows queued in memory and logs
    ``event=audit_waiting``; the terminal works on either way (store/audit.py).

    With a back-office link, rows beyond ``audit_keep`` stay until the back office has
    acknowledged them, up to ``AUDIT_HOLD_FACTOR`` times as many (store/audit_evict.py)."""
    keep = config.state.audit_keep
    hold = keep * AUDIT_HOLD_FACTOR if config.link.port is not None else None
    return AuditLog(
        config.state.dir / AUDIT_NAME,
        keep=keep,
        hold=hold,
        terminal=config.terminal.id,
        max_age_days=config.state.audit_max_age_days,
        location=config.terminal.location,
    )


# Unacknowledged rows kept beyond audit_keep while the back office is away: 4 × 100,000
# rows of ~200 bytes is ~80 MB, which a 16 GB SD card can spare.
AUDIT_HOLD_FACTOR: Final = 4


SIGNALS: Final = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def _relay_signals(daemon: Daemon) -> None:
    """The one thread that receives SIGTERM/SIGINT/SIGHUP, as loop events.

    A Python signal handler runs only when the main thread next wakes, and the kernel
    may deliver the signal to any thread, so a handler could wait for the loop's next
    timeout. Blocked in every thread and taken here with sigwait, a signal wakes the
    loop at once, like any other event.
    """
    while True:
        signum = signal.sigwait(SIGNALS)
        if signum == signal.SIGHUP:
            daemon.post(Reload())
        else:
            daemon.post(Stop(signal.Signals(signum).name))


def run(config_path: Path, log_floor: int | None = None) -> int:
    """``log_floor``: a level from ``-v`` that overrides a less verbose ``[log] level``."""
    # Before any thread exists, so every thread (ours, gpiozero's, pyscard's) inherits it.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    configure_daemon_logging("info")  # the configured level once the file is read
    daemon = open_daemon(config_path, log_floor)
    threading.Thread(target=_relay_signals, args=(daemon,), name="signals", daemon=True).start()
    try:
        return daemon.run()
    finally:
        log_event(logger, logging.INFO, "exit", code=daemon.exit_code)
