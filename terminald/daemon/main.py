"""``terminald run``: load, check, open, run, close, in that order.

Start-up refuses (exit 2) on a configuration that does not load or whose relay
assertions disagree with the board's pin map, and (exit 1) when the GPIO backend
cannot start: in both cases before any pin is driven except the relay's claim at
its off level. Signals: SIGTERM/SIGINT stop, SIGHUP reloads.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from terminald.backends.gpio import GpioBackendError, open_gpio
from terminald.backends.pcsc import PcscReader
from terminald.backends.pinmap import PinMapError, load_board
from terminald.backends.reader_profiles import ReaderProfileError, load_reader_profiles
from terminald.config import Config, ConfigError, load_config, relay_wiring_mismatches
from terminald.daemon.logfmt import configure_daemon_logging, log_event
from terminald.daemon.runtime import build_runtime
from terminald.daemon.service import Daemon, Reload, Stop

logger = logging.getLogger("terminald.daemon")


class StartupError(Exception):
    def __init__(self, messages: list[str], exit_code: int) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages
        self.exit_code = exit_code


def reader_supports_extended(config: Config) -> bool:
    try:
        return load_reader_profiles().extended_apdus(config.card.reader or "")
    except ReaderProfileError as exc:
        logger.warning("event=reader_profiles_unusable problem=%r", str(exc))
        return False


def open_daemon(config_path: Path) -> Daemon:
    """Everything ``terminald run`` builds before the loop; StartupError says why not."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise StartupError([f"{config_path}: {m}" for m in exc.messages], 2) from exc
    logging.getLogger().setLevel(config.log.level.upper())
    try:
        pinmap = load_board(config.gpio.board)
    except PinMapError as exc:
        raise StartupError([f"gpio.board: {exc}"], 2) from exc
    mismatches = relay_wiring_mismatches(
        config, active_high=pinmap.relay.active_high, lock=pinmap.relay.lock
    )
    if mismatches:
        raise StartupError(mismatches, 2)
    extended = reader_supports_extended(config)
    try:
        runtime = build_runtime(config, reader_supports_extended=extended)
    except ConfigError as exc:
        raise StartupError(exc.messages, 2) from exc
    try:
        hardware = open_gpio(pinmap, config.gpio.backend)
    except GpioBackendError as exc:
        raise StartupError([f"gpio: {exc}"], 1) from exc
    return Daemon(
        config,
        runtime,
        hardware=hardware,
        pinmap=pinmap,
        card_reader=PcscReader(config.card.reader),
        presence_reader=PcscReader(config.card.reader),
        reader_supports_extended=extended,
    )


def install_signal_handlers(daemon: Daemon) -> Callable[[], None]:
    """SIGTERM/SIGINT → Stop, SIGHUP → Reload; returns a function restoring the old ones."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        daemon.post(Stop(signal.Signals(signum).name))

    def reload(_signum: int, _frame: FrameType | None) -> None:
        daemon.post(Reload())

    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
        signal.SIGINT: signal.signal(signal.SIGINT, stop),
        signal.SIGHUP: signal.signal(signal.SIGHUP, reload),
    }

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def run(config_path: Path) -> int:
    configure_daemon_logging("info")  # the configured level once the file is read
    daemon = open_daemon(config_path)
    restore = install_signal_handlers(daemon)
    try:
        return daemon.run()
    finally:
        restore()
        log_event(logger, logging.INFO, "exit", code=daemon.exit_code)
