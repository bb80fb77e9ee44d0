"""SIGHUP: the configuration is read and built off the event loop, then swapped in on it.

Reading the configuration means reading every file it names: trust anchors, back-office
keys, the enrolled cards, the revocation store. Any of them can be slow (a large set, a
stalled SD card) or never answer (a FIFO where a file should be). The loop must keep
serving REX, the keypad, the door timers, signals and the watchdog meanwhile, so:

* ``Reloader.request`` (on the loop) starts one builder thread, which loads the file and
  builds a whole new :class:`Runtime` and posts :class:`ReloadBuilt` back;
* the loop then swaps it in, or keeps the running configuration and logs every problem;
* a build that takes longer than :data:`RELOAD_TIMEOUT_S` is given up: the running
  configuration stays, the reason is logged, and a late result is thrown away. (Its
  thread may stay blocked on whatever it was reading; it is a daemon thread, and each
  further SIGHUP starts a new one.)
* a SIGHUP during a build is not lost: one more build follows, reading the file as it
  is then.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from terminald.config import Config, ConfigError, load_config, relay_wiring_mismatches
from terminald.daemon.logfmt import log_event
from terminald.daemon.runtime import Runtime, build_runtime
from terminald.store.trusted_time import TrustedTimeFile

logger = logging.getLogger("terminald.daemon")

RELOAD_TIMEOUT_S = 20.0

Reply = Callable[[bool], None]


@dataclass(frozen=True, slots=True)
class Reload:
    """Loop event: re-read the configuration. ``reply`` hears whether it took effect."""

    reply: Reply | None = None


@dataclass(frozen=True, slots=True)
class ReloadBuilt:
    """Loop event: a builder thread's result (a new config and runtime, or problems)."""

    generation: int
    config: Config | None
    runtime: Runtime | None
    problems: tuple[str, ...] = ()


@dataclass
class _Build:
    generation: int
    path: Path
    started: float
    replies: list[Reply] = field(default_factory=list)


@dataclass(frozen=True)
class BuildInputs:
    """What a build needs from the running daemon (read on the loop, used on the thread)."""

    relay_active_high: bool
    relay_lock: str
    reader_supports_extended: bool
    trusted_time: TrustedTimeFile | None
    running: Runtime


def build(path: Path, inputs: BuildInputs) -> tuple[Config, Runtime]:
    """Load and build; ConfigError with one message per problem. Any thread."""
    config = load_config(path)
    problems = relay_wiring_mismatches(
        config, active_high=inputs.relay_active_high, lock=inputs.relay_lock
    )
    if problems:
        raise ConfigError(problems)
    runtime = build_runtime(
        config,
        reader_supports_extended=inputs.reader_supports_extended,
        trusted_time=inputs.trusted_time,
        previous=inputs.running,
    )
    return config, runtime


@dataclass(frozen=True)
class ReloadHooks:
    """What the reloader needs of the daemon (all called on the loop)."""

    source: Callable[[], Path | None]  # the running configuration's file
    inputs: Callable[[], BuildInputs]
    apply: Callable[[Config, Runtime], None]  # swap a built configuration in
    reloading: Callable[[], None]  # sd_notify RELOADING=1
    ready: Callable[[], None]  # sd_notify READY=1 with the status


class Reloader:
    """The loop's side of a reload; every method but the builder thread runs on the loop."""

    def __init__(self, post: Callable[[object], None], hooks: ReloadHooks) -> None:
        self._post = post
        self._hooks = hooks
        self._generation = 0
        self._building: _Build | None = None
        self._again: list[Reply] | None = None  # requests that came during a build

    @property
    def busy(self) -> bool:
        return self._building is not None

    def deadline(self) -> float | None:
        """Monotonic time at which the build in progress is given up."""
        building = self._building
        return None if building is None else building.started + RELOAD_TIMEOUT_S

    def requested(self, event: Reload) -> None:
        """A Reload event: start a build, or queue one after the build in progress."""
        replies = [event.reply] if event.reply is not None else []
        if self._building is not None:
            self._again = (self._again or []) + replies
            log_event(logger, logging.INFO, "reload_queued", why="a reload is in progress")
            return
        if self._start(replies):
            self._hooks.reloading()

    def built(self, event: ReloadBuilt) -> None:
        """A builder's result: swap it in, or keep the running configuration."""
        building = self._building
        if building is None or building.generation != event.generation:
            log_event(
                logger, logging.WARNING, "reload_discarded", why="it finished after it was given up"
            )
            return
        self._building = None
        if event.config is not None and event.runtime is not None:
            self._hooks.apply(event.config, event.runtime)
            self._ended(building.replies, True)
            return
        for message in event.problems:
            log_event(
                logger, logging.ERROR, "reload_refused", file=str(building.path), problem=message
            )
        log_event(logger, logging.ERROR, "reload_refused", why="kept the running configuration")
        self._ended(building.replies, False)

    def check_time(self, now: float) -> None:
        """Give up a build that has run past :data:`RELOAD_TIMEOUT_S` (monotonic ``now``)."""
        building = self._building
        if building is None or now < building.started + RELOAD_TIMEOUT_S:
            return
        self._building = None
        log_event(
            logger,
            logging.ERROR,
            "reload_refused",
            file=str(building.path),
            why=f"reading the configuration took more than {RELOAD_TIMEOUT_S:g} s "
            "(a FIFO or a stalled disk where a file should be?); kept the running configuration",
        )
        self._ended(building.replies, False)

    def _ended(self, replies: list[Reply], ok: bool) -> None:
        for reply in replies:
            reply(ok)
        again, self._again = self._again, None
        if again is not None and self._start(again):
            return
        self._hooks.ready()

    def _start(self, replies: list[Reply]) -> bool:
        path = self._hooks.source()
        if path is None:
            log_event(logger, logging.WARNING, "reload_refused", why="started without a file")
            for reply in replies:
                reply(False)
            return False
        self._generation += 1
        self._building = _Build(self._generation, path, time.monotonic(), replies)
        threading.Thread(
            target=self._build_thread,
            args=(self._generation, path, self._hooks.inputs()),
            name="reload",
            daemon=True,
        ).start()
        return True

    def _build_thread(self, generation: int, path: Path, inputs: BuildInputs) -> None:
        try:
            config, runtime = build(path, inputs)
        except ConfigError as exc:
            self._post(ReloadBuilt(generation, None, None, tuple(exc.messages)))
        except Exception as exc:  # a bug in reading: the running configuration stands
            logger.exception('event=reload_failed why="unexpected error"')
            self._post(ReloadBuilt(generation, None, None, (f"unexpected error: {exc!r}",)))
        else:
            self._post(ReloadBuilt(generation, config, runtime))


# Read once at start: a reload that changes them is logged and applied at the next restart.
RESTART_ONLY: Final = (
    ("gpio", "board"),
    ("gpio", "backend"),
    ("card", "reader"),
    ("card", "backend"),
)


def keep_restart_only(running: Config, new: Config) -> Config:
    """``new`` with the keys only a restart changes kept as they run (each difference
    logged as ``event=reload_partial``), so the daemon's config says what runs."""
    for section, key in RESTART_ONLY:
        old = getattr(getattr(running, section), key)
        configured = getattr(getattr(new, section), key)
        if old != configured:
            log_event(
                logger,
                logging.WARNING,
                "reload_partial",
                key=f"{section}.{key}",
                running=old,
                configured=configured,
                why="takes effect after a restart",
            )
    return dataclasses.replace(
        new,
        gpio=running.gpio,
        card=dataclasses.replace(
            new.card, reader=running.card.reader, backend=running.card.backend
        ),
    )
