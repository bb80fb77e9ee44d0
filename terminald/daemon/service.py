"""The gate daemon: one event loop between the card, the GPIO header and systemd.

Threads only produce events: the reader monitor (card arrived / left), the card
worker (checks / verify results), the keypad scanner and the door inputs (gpiozero
callbacks), and the signal handlers (stop, reload). They all put on one
``SimpleQueue``; the loop takes one event at a time, hands it to the pure
``core.terminal.Terminal`` and carries out the commands it returns. The loop alone
drives the relay, the LEDs and the buzzer, so their order is the machine's order.

The watchdog is fed from the loop, and only while the reader monitor beats, the
card worker is not stuck in a card call, and the GPIO layer is healthy: a wedge in
any of them stops the pings, and systemd restarts the daemon (the relay is made safe
by ``ExecStopPost``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from terminald.backends.gpio import GpioHardware
from terminald.backends.pinmap import BoardPinMap
from terminald.backends.systemd_notify import Notifier
from terminald.card.reader import CardReader
from terminald.config import Config
from terminald.core.commands import (
    AlarmChanged,
    Command,
    EndTransaction,
    HoldRelay,
    PlayBeep,
    PulseRelay,
    ReleaseRelay,
    RunChecks,
    RunVerify,
    ShowLight,
)
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.policy import PolicyDecision
from terminald.core.reasons import Reason
from terminald.core.terminal import (
    CardArrived,
    CardLeft,
    ChecksDone,
    Mode,
    ModeSet,
    PinPrompt,
    Terminal,
    VerifyDone,
)
from terminald.core.trusted_time import clock_problem
from terminald.daemon.card_worker import CardTiming, CardWorker
from terminald.daemon.health import health_problem, status_text
from terminald.daemon.live_revocation import (
    LiveRevocation,
    RevocationPicked,
    TrustedTimeProblem,
    signed_floor,
)
from terminald.daemon.logfmt import log_event, set_level
from terminald.daemon.operator import OperatorCall
from terminald.daemon.reader_monitor import PresenceReader, ReaderMonitor
from terminald.daemon.recorder import Listener, Recorder
from terminald.daemon.reload import (
    RELOAD_TIMEOUT_S,
    BuildInputs,
    Reload,
    ReloadBuilt,
    Reloader,
    ReloadHooks,
    keep_restart_only,
)
from terminald.daemon.runtime import Runtime
from terminald.store.audit import AuditLog
from terminald.store.trusted_time import TrustedTimeFile

if TYPE_CHECKING:
    from terminald.console.driver import ConsoleDriver
    from terminald.daemon.link_service import LinkService

logger = logging.getLogger("terminald.daemon")

IDLE_WAKE_S = 5.0  # the loop's longest sleep with no deadline and no watchdog
# The records of a final grant: a passage (anti-passback) or a clock event happened.
GRANT_KINDS = frozenset({"granted", "attendance"})


@dataclass(frozen=True, slots=True)
class Stop:
    why: str


@dataclass(frozen=True)
class Snapshot:
    """What a UI shows of the daemon (read from any thread; a consistent-enough copy)."""

    state: str
    mode: str
    pin_digits: int
    card_present: bool
    alarms: frozenset[str]
    relay_energised: bool
    health: str | None
    reader_problem: str | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


class Daemon:
    def __init__(
        self,
        config: Config,
        runtime: Runtime,
        *,
        hardware: GpioHardware,
        pinmap: BoardPinMap,
        card_reader: CardReader,
        presence_reader: PresenceReader,
        reader_supports_extended: bool = False,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] = utc_now,
        audit: AuditLog | None = None,
        trusted_time: TrustedTimeFile | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.hardware = hardware
        self.pinmap = pinmap
        self._extended = reader_supports_extended
        self.notifier = notifier or Notifier()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.terminal = Terminal(runtime.terminal, runtime.mode)
        self.worker = CardWorker(card_reader, self.post, clock)
        self.monitor = ReaderMonitor(presence_reader, self.post)
        self.trusted_time = trusted_time
        self.live = LiveRevocation(lambda: self.runtime.revocation, trusted_time, self.post)
        self.reloader = Reloader(
            self.post,
            ReloadHooks(
                source=lambda: self.config.source,
                inputs=lambda: BuildInputs(
                    pinmap.relay.active_high,
                    pinmap.relay.lock,
                    reader_supports_extended,
                    trusted_time,
                    self.runtime,
                ),
                apply=self._apply_reload,
                reloading=self.notifier.reloading,
                ready=lambda: self.notifier.ready(self._status()),
            ),
        )
        self.worker.before_checks = self.live.poll
        self._card_reader = card_reader
        self._clock = clock
        self.audit = audit
        self.recorder = Recorder(
            terminal_id=lambda: self.config.terminal.id,
            location=lambda: self.config.terminal.location,
            clock_trusted=lambda: self.untrusted_clock() is None,
            timing=lambda: self.worker.timing,
            clock=clock,
            audit=audit,
        )
        self._running = False
        self._last_ping = float("-inf")
        self._withheld: str | None = None
        self.exit_code = 0
        self.log_floor: int | None = None  # -v on the command line beats [log] level
        self.ready = threading.Event()  # set once started (READY=1 sent)
        # The maintenance console (terminald.console), when [console] port is set; its own
        # thread, started and stopped with the loop.
        self.console: ConsoleDriver | None = None
        # The back-office link (daemon/link_service.py), when [link] port is set.
        self.link: LinkService | None = None

    # -- outside world -> loop ------------------------------------------------------------

    def post(self, event: object) -> None:
        """Thread-safe, and safe from a signal handler (SimpleQueue.put is reentrant)."""
        self._queue.put(event)

    def add_listener(self, listener: Listener) -> None:
        """Called on the loop thread with every Record and AlarmChanged (UI, tests)."""
        self.recorder.listeners.append(listener)

    def snapshot(self) -> Snapshot:
        t = self.terminal
        return Snapshot(
            t.state.value,
            t.mode.value,
            t.pin_digits_entered,
            self.monitor.present,
            frozenset(a.value for a in t.door.alarms),
            self.hardware.relay.energised,
            self._withheld,
            self.monitor.problem,
        )

    def wall_now(self) -> datetime:
        """The wall clock (UTC) the daemon records with."""
        return self._clock()

    def handle(self, event: object) -> None:
        """On the loop thread only (an OperatorCall): one event at once, as if taken
        from the queue."""
        self._dispatch(event)

    def status_line(self) -> str:
        """On the loop thread only: the STATUS= line systemd shows."""
        return self._status()

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        """Until a Stop event. Returns the process exit code."""
        try:
            self._start()
            while self._running:
                event = self._next_event()
                if event is not None:
                    self._guarded(self._dispatch, event)
                now = time.monotonic()
                deadline = self.terminal.deadline()
                if deadline is not None and now >= deadline:
                    self._guarded(self._tick, now)
                if self.reloader.busy:
                    self._guarded(self.reloader.check_time, now)
                self._feed_watchdog(now)
        finally:
            self._shutdown()
        return self.exit_code

    def _next_event(self) -> object | None:
        now = time.monotonic()
        wait = IDLE_WAKE_S
        interval = self.notifier.watchdog_interval_s
        if interval is not None and self._withheld is None:  # no ping is due while unhealthy
            wait = min(wait, max(0.0, self._last_ping + interval - now), interval)
        for deadline in (self.terminal.deadline(), self.reloader.deadline()):
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - now))
        try:
            return self._queue.get(timeout=wait)
        except queue.Empty:
            return None

    def _tick(self, now: float) -> None:
        self._execute(self.terminal.tick(now))
        self.notifier.status(self._status())

    def _guarded(self, step: Callable[[Any], None], arg: object) -> None:
        """One event's failure must not stop the terminal; it must not leave the door
        released, a card powered, or the state machine waiting for a result either."""
        try:
            step(arg)
        except Exception as exc:
            logger.exception("event=internal_error")
            self._recover(f"internal error: {type(exc).__name__}")

    def _recover(self, detail: str) -> None:
        """Each step on its own: a failing one must not stop the others."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("terminal", lambda: self._execute_each(self.terminal.abort(detail, time.monotonic()))),
            ("card", self.worker.end),
        ]
        if self.terminal.mode is not Mode.EMERGENCY_OPEN:
            steps.insert(0, ("relay", self.hardware.relay.de_energise))
        for name, step in steps:
            try:
                step()
            except Exception:
                log_event(logger, logging.ERROR, "recovery_failed", part=name)

    def _execute_each(self, commands: list[Command]) -> None:
        for command in commands:
            try:
                self._execute([command])
            except Exception:
                logger.exception("event=command_failed command=%s", type(command).__name__)

    def _start(self) -> None:
        hw = self.hardware
        hw.keypad.set_handler(self.post)
        hw.inputs.set_handler(self.post)
        self.worker.start()
        self.monitor.start()
        self.live.start()
        for companion in (self.console, self.link):
            if companion is not None:
                companion.start()
        now = time.monotonic()
        self._running = True
        self._execute(self.terminal.start(now))
        # Inputs already active at start (a door left open) are reported like changes.
        state = hw.inputs.state()
        for which in DoorInput:
            if state.active(which):
                self._dispatch(InputChanged(which, True))
        log_event(
            logger,
            logging.INFO,
            "started",
            terminal=self.config.terminal.id,
            purpose=self.config.terminal.purpose,
            mode=self.terminal.mode.value,
            reader=self.config.card.reader or "(every reader)",
            board=self.pinmap.board,
            gpio=self.config.gpio.backend,
            access=self.config.access.policy,
        )
        self.notifier.ready(self._status())
        self.ready.set()

    def _stop_companions(self) -> None:
        """The console and the link: their own threads, stopped before the card and GPIO."""
        for companion in (self.console, self.link):
            if companion is not None:
                companion.stop()

    def _shutdown(self) -> None:
        self._running = False
        self.notifier.stopping("stopping")
        hw = self.hardware
        hw.keypad.set_handler(None)
        hw.inputs.set_handler(None)
        for name, part in (
            ("console and link", self._stop_companions),
            ("card", self.worker.stop),  # releases and unpowers a held card
            ("revocation", self.live.stop),
            ("reader", self.monitor.stop),
            ("gpio", hw.close),  # the relay first, de-energised
            ("audit", self.audit.close if self.audit else lambda: None),
        ):
            try:
                part()
            except Exception:
                logger.exception("event=shutdown_failed part=%s", name)
        close = getattr(self._card_reader, "close", None)
        # A card call still stuck inside pcscd holds the context's lock: closing it
        # from here would hang the stop until systemd's TimeoutStopSec.
        if callable(close) and not self.worker.alive:
            close()
        log_event(logger, logging.INFO, "stopped")

    # -- events -------------------------------------------------------------------------------

    def _dispatch(self, event: object) -> None:
        now = time.monotonic()
        if isinstance(event, Stop):
            log_event(logger, logging.INFO, "stopping", why=event.why)
            self._running = False
            return
        if isinstance(event, Reload):
            self.reloader.requested(event)
            return
        if isinstance(event, OperatorCall):  # the console's (or link's) request: run here
            event.run(self)
            return
        if isinstance(event, ReloadBuilt):
            self.reloader.built(event)
            return
        if isinstance(event, RevocationPicked):
            self._revocation_picked(event)
            return
        if isinstance(event, TrustedTimeProblem):
            log_event(logger, logging.ERROR, "trusted_time_unsaved", problem=event.problem)
            return
        if isinstance(event, CardArrived):
            self.worker.timing = CardTiming()  # per card: nothing of the previous one
            log_event(logger, logging.INFO, "card_present")
        elif isinstance(event, CardLeft):
            log_event(logger, logging.INFO, "card_removed")
        elif isinstance(event, ChecksDone) and isinstance(event.outcome, PinPrompt):
            log_event(
                logger,
                logging.INFO,
                "pin_prompt",
                issuer=event.outcome.identity.issuer_hex,
                serial=event.outcome.identity.serial,
                tries_left=event.outcome.tries_left,
            )
        elif isinstance(event, KeyPressed):
            logger.debug("event=key")  # never which key: it may be a PIN digit
        elif isinstance(event, InputChanged):
            log_event(logger, logging.INFO, "input", input=event.input.value, active=event.active)
        elif not isinstance(event, ChecksDone | VerifyDone | ModeSet):
            logger.warning("event=unknown_event type=%s", type(event).__name__)
            return
        self._execute(self.terminal.handle(event, now))
        self.notifier.status(self._status())

    def _execute(self, commands: list[Command]) -> None:
        hw = self.hardware
        for command in commands:
            if isinstance(command, RunChecks):
                self.worker.checks(self.runtime.authenticator, command.selection)
            elif isinstance(command, RunVerify):
                self.worker.verify(command.pin)
            elif isinstance(command, EndTransaction):
                self.worker.end()
            elif isinstance(command, ShowLight):
                hw.indicator.show(command.pattern)
            elif isinstance(command, PlayBeep):
                hw.buzzer.play(command.pattern)
            elif isinstance(command, PulseRelay):
                hw.relay.pulse(command.ms)
            elif isinstance(command, HoldRelay):
                hw.relay.energise()
            elif isinstance(command, ReleaseRelay):
                hw.relay.de_energise()
            elif isinstance(command, AlarmChanged):
                self.recorder.alarm(command)
            else:
                if command.kind in GRANT_KINDS:  # anti-passback and the toggle learn of it
                    decision = PolicyDecision(Reason.OK, "", command.subject, True, command.attrs)
                    self.runtime.policy.granted(decision, self._clock())
                self.recorder.record(command)

    def _revocation_picked(self, event: RevocationPicked) -> None:
        self.recorder.revocation_picked(event)
        self.notifier.status(self._status())

    # -- SIGHUP --------------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Ask for a reload and return at once (any thread; as SIGHUP does)."""
        self.post(Reload())

    def reload(self, timeout: float = RELOAD_TIMEOUT_S + 5) -> bool:
        """Ask the loop to reload and wait for the outcome: whether the new configuration
        took effect. For tools and tests; SIGHUP posts :class:`Reload` without waiting."""
        done = threading.Event()
        outcome: list[bool] = []

        def reply(ok: bool) -> None:
            outcome.append(ok)
            done.set()

        self.post(Reload(reply))
        return done.wait(timeout) and outcome[0]

    def _apply_reload(self, config: Config, runtime: Runtime) -> None:
        """On the loop: swap in a configuration built and checked off it."""
        # What only a restart changes stays as it runs, so self.config says what runs.
        config = keep_restart_only(self.config, config)
        previous = self.config
        self.config, self.runtime = config, runtime
        self._execute_each(self.terminal.reconfigure(runtime.terminal))
        set_level(config.log.level, self.log_floor)
        if config.terminal.mode != previous.terminal.mode:
            self._dispatch(ModeSet(runtime.mode))
        log_event(logger, logging.INFO, "reloaded", file=str(config.source))

    def untrusted_clock(self) -> str | None:
        """Why the clock is not trusted now (memory only: safe on the loop)."""
        floor = signed_floor(self.trusted_time, self.runtime.revocation)
        return clock_problem(self._clock(), floor)

    # -- health ---------------------------------------------------------------------------------

    def health_problem(self, now: float) -> str | None:
        return health_problem(self.monitor, self.worker, self.hardware.healthy, now)

    def _feed_watchdog(self, now: float) -> None:
        problem = self.health_problem(now)
        if problem != self._withheld:
            if problem is not None:
                log_event(logger, logging.ERROR, "watchdog_withheld", why=problem)
            else:
                log_event(logger, logging.INFO, "healthy")
            self._withheld = problem
        self.notifier.status(self._status())  # sent only when it changed
        interval = self.notifier.watchdog_interval_s
        if problem is None and interval is not None and now - self._last_ping >= interval:
            self.notifier.watchdog()
            self._last_ping = now

    def _status(self) -> str:
        store = self.runtime.enrolment_store  # its problem is memory: no I/O on the loop
        return status_text(
            self.terminal,
            self.monitor.problem,
            self.untrusted_clock(),
            self._withheld,
            store.problem() if store is not None else None,
        )
