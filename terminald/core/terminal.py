"""The terminal state machine: a card, a PIN, a verdict, a door.

Pure: ``handle(event, now)`` takes one event and the monotonic time in seconds and
returns commands; ``deadline()`` says when the daemon must next call ``tick``. The
card work itself (``Authenticator.begin``/``finish``) runs in the daemon, which
answers ``RunChecks`` with ``ChecksDone`` and ``RunVerify`` with ``VerifyDone``;
the machine never holds the card session, only what a verdict needs.

Flow: idle → checking → PIN entry (a beep per key, masked, ``*`` clears, ``#``
submits, timeout, card removal aborts) → verifying → verdict → idle. Modes:
normal; lockdown (no card admits anyone; REX still works); emergency open (the
relay held released, no checks).

Keys and time (no try is ever spent because of when a key came):

* Keys typed after the tap, while the card is checked, are taken exactly as in PIN
  entry (same beeps: a fifth digit or a short ``#`` is refused at once, ``*`` clears)
  and kept; they are used when the prompt comes, and a ``#`` typed early then submits.
  A refusal drops them unsent; so does the card leaving. They belong to the card on
  the reader: keys typed with no card, or before a card's tap, are not kept.
* Every key that is not taken gives the error beep, in every state; after a verdict
  with the card still on the reader a key says "remove the card" instead.

Purposes (``TerminalSettings.purpose``): on a ``gate`` a grant pulses the lock relay.
On a ``vend`` or ``attendance`` terminal a key ``A``-``D`` pressed while idle with no
card is a selection (core.selection: the product, or the attendance event), sent with
the next card's checks; ``*`` while idle clears it. A vend grant holds the relay, which
is the machine's vend-enable line, until the vend ends (core.vend); a card tapped
meanwhile waits and is checked when it ends; REX is ignored there (no button may
energise that line). An attendance grant is recorded as
``attendance`` and pulses the relay only when the policy opens the door
(``("door", "open")`` in its attributes).
"""

from __future__ import annotations

from terminald.core.alarms import AlarmSounder
from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    Command,
    EndTransaction,
    HoldRelay,
    PlayBeep,
    Record,
    ReleaseRelay,
    RunChecks,
    RunVerify,
    ShowLight,
)
from terminald.core.door import DoorSupervisor
from terminald.core.feedback import (
    CHECKING_LIGHT,
    EMERGENCY_LIGHT,
    ERROR_BEEP,
    IDLE_LIGHT,
    KEY_BEEP,
    LOCKDOWN_LIGHT,
    PIN_PROMPT_LIGHT,
    PROMPT_BEEP,
    REMOVE_CARD_BEEP,
    REMOVE_CARD_LIGHT,
    REMOVE_CARD_MS,
    SELECTED_BEEP,
    SELECTED_LIGHT,
    VEND_ENABLED_LIGHT,
    feedback_for,
)
from terminald.core.grant import grant_commands, verdict_record
from terminald.core.hardware import DoorInput, InputChanged, LightPattern
from terminald.core.pin_entry import PIN_LENGTH as PIN_LENGTH  # re-exported for the demo screen
from terminald.core.pin_entry import PinEntry
from terminald.core.reasons import Reason
from terminald.core.selection import SELECTING_PURPOSES, SELECTION_KEYS, Selection
from terminald.core.terminal_model import CardArrived as CardArrived
from terminald.core.terminal_model import CardLeft as CardLeft
from terminald.core.terminal_model import ChecksDone as ChecksDone
from terminald.core.terminal_model import Event as Event
from terminald.core.terminal_model import Mode as Mode
from terminald.core.terminal_model import ModeSet as ModeSet
from terminald.core.terminal_model import PinPrompt as PinPrompt
from terminald.core.terminal_model import State as State
from terminald.core.terminal_model import TerminalSettings as TerminalSettings
from terminald.core.terminal_model import VerifyDone as VerifyDone
from terminald.core.vend import VendSupervisor

_MODE_REASONS = {Mode.LOCKDOWN: Reason.LOCKDOWN, Mode.EMERGENCY_OPEN: Reason.EMERGENCY_OPEN}


class Terminal:
    def __init__(self, settings: TerminalSettings, mode: Mode = Mode.NORMAL) -> None:
        self.settings = settings
        self.door = DoorSupervisor(settings.door)
        self.state = State.IDLE
        self.mode = Mode.NORMAL
        self._entry = PinEntry()  # typed in PIN entry, or early while the card is checked
        self._pin_deadline: float | None = None
        self._verdict_until: float | None = None
        self._card_present = False
        # The card left while its checks or verify ran (a result then is not about the
        # card now present), and another was put down since (it must be checked next).
        # While a vend is enabled, a card put down waits here too (core.vend).
        self._left_during_job = False
        self._arrival_pending = False
        self._identity: CardIdentity | None = None
        self._pending_mode = mode
        self.sounder = AlarmSounder()
        self.selection = Selection()
        self._chosen: str | None = None  # the selection sent with the current card's checks
        self.vend = VendSupervisor()
        self._escape_held = False  # emergency open holds the relay (never a vend line)
        # The card being decided was checked under another purpose (a reload changed it):
        # its grant was the old policy's (a gate's has no age check) and drives nothing.
        self._purpose_changed = False

    def start(self, now: float) -> list[Command]:
        """Commands that put the hardware in the state of the initial mode."""
        commands: list[Command] = [ReleaseRelay()]
        commands += self._set_mode(self._pending_mode, now)
        if self.mode is Mode.NORMAL:
            commands.append(ShowLight(IDLE_LIGHT))
        return commands

    def reconfigure(self, settings: TerminalSettings) -> list[Command]:
        """New timings and door wiring (a reloaded configuration); a PIN entry, a
        release, a selection or a vend in progress keeps the deadline it already has.
        Alarms of inputs that are no longer wired are cleared. A new purpose gives the
        relay and the keys another meaning: a vend ends (the relay must not stay held as
        a door lock) or a door's pulse is cut (it must not run on as a vend), a selection
        is forgotten, and an emergency hold moves on or off the relay. (A card waiting
        for that vend is checked once it is tapped again.)"""
        changed = settings.purpose != self.settings.purpose
        self.settings = settings
        self.door.settings = settings.door
        commands: list[Command] = []
        if changed:
            self.selection.clear()
            self._purpose_changed = self.state in (
                State.CHECKING,
                State.PIN_ENTRY,
                State.VERIFYING,
            )
            commands += self.vend.cancel("the terminal's purpose changed")
            commands += self._hold_for_escape()
            if settings.purpose == "vend" and ReleaseRelay() not in commands:
                self.door.relocked()  # a door's pulse must not run on as a free vend
                commands.append(ReleaseRelay())
        return commands + self._door_did(self.door.unwire(), None)

    def abort(self, detail: str, now: float) -> list[Command]:
        """The daemon failed to carry out a command: end any transaction with a card
        error (releasing the card) rather than wait forever for a result. An enabled
        vend ends (the daemon de-energises the relay when it recovers)."""
        self.door.relocked()
        if self.state in (State.CHECKING, State.PIN_ENTRY, State.VERIFYING):
            return self._verdict(AuthResult(Reason.CARD_ERROR, detail), now)
        return self._vend_ended(self.vend.cancel(detail), now)

    @property
    def pin_digits_entered(self) -> int:
        return len(self._entry)

    # -- the one entry point --------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Command]:
        if isinstance(event, InputChanged):
            if event.input is DoorInput.VEND_COMPLETE:
                return self._vend_ended(self.vend.on_input(event), now)
            if event.input is DoorInput.REX and self.settings.purpose == "vend":
                return []  # the relay enables a vend here: no button may energise it
            return self._door_did(self.door.on_input(event, now), now)
        if isinstance(event, ModeSet):
            return self._set_mode(event.mode, now)
        if isinstance(event, CardArrived):
            self._entry.clear()  # keys typed before this tap are not its PIN
            return self._card_arrived(now)
        if isinstance(event, CardLeft):
            self._entry.clear()
            return self._card_left(now)
        if isinstance(event, ChecksDone):
            return self._checks_done(event.outcome, now)
        if isinstance(event, VerifyDone):
            if self.state is not State.VERIFYING:
                return [EndTransaction()]  # never leave a verified card powered
            return self._verdict(event.result, now)
        return self._key(event.key, now)

    def deadline(self) -> float | None:
        times = [
            t
            for t in (
                self._pin_deadline,
                self._verdict_until,
                self.door.deadline(),
                self.sounder.deadline(),
                self.selection.deadline(),
                self.vend.deadline(),
            )
            if t is not None
        ]
        return min(times) if times else None

    def tick(self, now: float) -> list[Command]:
        commands = self._door_did(self.door.tick(now), now) + self.sounder.tick(now)
        if (
            self.state is State.PIN_ENTRY
            and self._pin_deadline is not None
            and now >= self._pin_deadline
        ):
            commands += self._verdict(AuthResult(Reason.PIN_TIMEOUT, identity=self._identity), now)
        if (
            self.state is State.VERDICT
            and self._verdict_until is not None
            and now >= self._verdict_until
        ):
            self._verdict_until = None
            self.state = State.IDLE
            commands.append(ShowLight(self.resting_light()))
        if self.selection.expired(now) and self.state is State.IDLE:
            commands.append(ShowLight(self.resting_light()))
        return commands + self._vend_ended(self.vend.tick(now), now)

    # -- modes --------------------------------------------------------------------------------

    def resting_light(self) -> LightPattern:
        alarm = self.sounder.feedback
        if alarm is not None:  # an alarm outranks the mode's light until it clears
            return alarm.light
        if self.mode is Mode.NORMAL and self.vend.active:
            return VEND_ENABLED_LIGHT
        if self.mode is Mode.NORMAL and self.selection.key is not None:
            return SELECTED_LIGHT
        return {
            Mode.NORMAL: IDLE_LIGHT,
            Mode.LOCKDOWN: LOCKDOWN_LIGHT,
            Mode.EMERGENCY_OPEN: EMERGENCY_LIGHT,
        }[self.mode]

    def _set_mode(self, mode: Mode, now: float) -> list[Command]:
        if mode is self.mode:
            return []
        previous, self.mode = self.mode, mode
        commands: list[Command] = [Record("mode", f"{previous.value} -> {mode.value}")]
        vend_cancelled: list[Command] = []
        if mode is not Mode.NORMAL:  # nothing is sold or chosen once no one is admitted
            self.selection.clear()
            vend_cancelled = self.vend.cancel(mode.value)  # never an escape: see below
            commands += vend_cancelled
        commands += self._hold_for_escape()
        if mode is Mode.LOCKDOWN and self.door.cancel_grant(now):
            commands.append(ReleaseRelay())  # a card grant ends now; an exit runs on
        if self.state is State.PIN_ENTRY and mode is not Mode.NORMAL:
            # No PIN is asked for, or sent, once no one can be admitted.
            commands += self._verdict(AuthResult(_MODE_REASONS[mode], identity=self._identity), now)
        elif self.state in (State.IDLE, State.VERDICT):
            commands.append(ShowLight(self.resting_light()))
        if vend_cancelled:
            commands += self._take_waiting_card(now)
        return commands

    def _hold_for_escape(self) -> list[Command]:
        """Emergency open holds a door's relay released. On a vending machine the relay is
        the vend-enable ("free vend") line, not an escape route: holding it sold
        age-restricted goods to anyone for as long as the emergency lasted, so there
        emergency open only stops sales, like lockdown."""
        escape = self.mode is Mode.EMERGENCY_OPEN and self.settings.purpose != "vend"
        if escape is self._escape_held:
            return []
        self._escape_held = escape
        self.door.hold(escape)
        return [HoldRelay() if escape else ReleaseRelay()]

    # -- door alarms --------------------------------------------------------------------------

    def _door_did(self, commands: list[Command], now: float | None) -> list[Command]:
        """After the door supervisor acted: its alarms seen (when the light is free) and
        heard, and a PIN entry ended when an open enclosure now refuses every grant."""
        before = self.sounder.leading
        # A reconfiguration (no ``now``) only clears alarms: nothing to schedule.
        commands += self.sounder.update(self.door.alarms, 0.0 if now is None else now)
        if self.sounder.leading is not before and self.state is State.IDLE:
            commands.append(ShowLight(self.resting_light()))
        if now is not None and self.state is State.PIN_ENTRY and self.door.grants_blocked:
            # No PIN is sent when the answer can only be no.
            commands += self._verdict(AuthResult(Reason.TAMPER, identity=self._identity), now)
        if now is not None and self.door.grants_blocked:
            commands += self._vend_ended(self.vend.cancel(Reason.TAMPER.value), now)
        return commands

    # -- the vend ---------------------------------------------------------------------------

    def _vend_ended(self, commands: list[Command], now: float) -> list[Command]:
        """After the vend supervisor acted: when the vend ended, the resting light, and a
        card that waited for it is checked now."""
        if not commands:
            return []
        if self.state is State.IDLE:
            commands.append(ShowLight(self.resting_light()))
        return commands + self._take_waiting_card(now)

    def _take_waiting_card(self, now: float) -> list[Command]:
        if self._arrival_pending and self._card_present and not self.vend.active:
            return self._card_arrived(now)
        return []

    # -- the card -----------------------------------------------------------------------------

    def _card_arrived(self, now: float) -> list[Command]:
        self._card_present = True
        if self.state not in (State.IDLE, State.VERDICT):
            if self._left_during_job:
                self._arrival_pending = True
            return []
        if self.vend.active:  # checked when the vend ends; its keys are kept meanwhile
            self._arrival_pending = True
            return []
        self._left_during_job = self._arrival_pending = False
        self._verdict_until = None
        self._identity = None  # a verdict about this card must never name the previous one
        # A choice past its timeout is dropped here too, not only by ``tick``: the daemon
        # may handle this tap before the due tick, and the last person's product or
        # attendance event must not go with the next card.
        self.selection.expired(now)
        self._chosen = self.selection.take()  # this card's, whatever its verdict
        if self.mode is not Mode.NORMAL:
            return self._verdict(AuthResult(_MODE_REASONS[self.mode]), now, card_held=False)
        if self.door.grants_blocked:
            return self._verdict(AuthResult(Reason.TAMPER), now, card_held=False)
        self.state = State.CHECKING
        return [ShowLight(CHECKING_LIGHT), RunChecks(self._chosen)]

    def _card_left(self, now: float) -> list[Command]:
        self._card_present = False
        if self.state is State.PIN_ENTRY:
            return self._verdict(AuthResult(Reason.CARD_REMOVED, identity=self._identity), now)
        if self.state in (State.CHECKING, State.VERIFYING):
            # The card call fails and reports removal, or its result is for a card that
            # has gone: either way the verdict is card_removed.
            self._left_during_job = True
        self._arrival_pending = False  # a card waiting for a vend to end has gone too
        return []

    def _checks_done(self, outcome: AuthResult | PinPrompt, now: float) -> list[Command]:
        if self.state is not State.CHECKING:
            return [EndTransaction()]
        if self._left_during_job:
            identity = outcome.identity
            return self._verdict(AuthResult(Reason.CARD_REMOVED, identity=identity), now)
        if isinstance(outcome, AuthResult):
            return self._verdict(outcome, now)
        if self.mode is not Mode.NORMAL:  # the mode changed while the card was checked
            return self._verdict(
                AuthResult(_MODE_REASONS[self.mode], identity=outcome.identity), now
            )
        if self.door.grants_blocked:  # the enclosure was opened while the card was checked
            return self._verdict(AuthResult(Reason.TAMPER, identity=outcome.identity), now)
        self.state = State.PIN_ENTRY
        self._identity = outcome.identity
        if self._entry.submitted:  # the whole PIN and its ``#`` came while the card was checked
            return self._submit()
        self._pin_deadline = now + self.settings.pin_timeout_s
        return [ShowLight(PIN_PROMPT_LIGHT), PlayBeep(PROMPT_BEEP)]

    # -- keys -----------------------------------------------------------------------------------

    def _keeps_early_keys(self) -> bool:
        """A card lies on the reader and its PIN prompt has not come yet: its checks run,
        or it was put down while the previous card's call was finishing."""
        if not self._card_present or self.mode is not Mode.NORMAL or self.door.grants_blocked:
            return False  # no PIN will be asked for: say so now
        return self._arrival_pending or (self.state is State.CHECKING and not self._left_during_job)

    def _key(self, key: str, now: float) -> list[Command]:
        if self.state is State.PIN_ENTRY:
            self._pin_deadline = now + self.settings.pin_timeout_s
            feedback, send = self._entry.press(key, early=False)
            return self._submit() if send else feedback
        if self._keeps_early_keys():
            return self._entry.press(key, early=True)[0]
        if self._card_present and self.state in (State.VERDICT, State.IDLE):
            return self._remind_remove(now)
        if self._may_select() and key in SELECTION_KEYS:
            self.selection.choose(key, now, self.settings.selection_timeout_s)
            self.state, self._verdict_until = State.IDLE, None  # the next person's turn
            return [ShowLight(SELECTED_LIGHT), PlayBeep(SELECTED_BEEP)]
        if key == "*" and self.state is State.IDLE and self.selection.clear():
            return [ShowLight(self.resting_light()), PlayBeep(KEY_BEEP)]
        return [PlayBeep(ERROR_BEEP)]  # no card, or a PIN already being verified

    def _may_select(self) -> bool:
        """A key A-D chooses a product or an attendance event: idle (or a verdict shown
        with its card gone), no card, a vend or attendance terminal that can admit."""
        return (
            self.settings.purpose in SELECTING_PURPOSES
            and self.state in (State.IDLE, State.VERDICT)
            and not self._card_present
            and self.mode is Mode.NORMAL
            and not self.door.grants_blocked
            and not self.vend.active
        )

    def _submit(self) -> list[Command]:
        self.state = State.VERIFYING
        self._pin_deadline = None
        return [ShowLight(CHECKING_LIGHT), RunVerify(self._entry.take())]

    def _remind_remove(self, now: float) -> list[Command]:
        """A key after the verdict, the card still on the reader: say "remove the card",
        then the resting light (the verdict's hold is extended to that end)."""
        self.state = State.VERDICT
        until = now + REMOVE_CARD_MS / 1000
        self._verdict_until = max(self._verdict_until or until, until)
        return [ShowLight(REMOVE_CARD_LIGHT), PlayBeep(REMOVE_CARD_BEEP)]

    # -- the verdict ----------------------------------------------------------------------------

    def _verdict(self, result: AuthResult, now: float, *, card_held: bool = True) -> list[Command]:
        if result.reason is Reason.OK and self._purpose_changed:
            result = AuthResult(
                Reason.CARD_ERROR,
                "the terminal was reconfigured during this card: tap again",
                identity=result.identity,
            )
        self._purpose_changed = False
        reason = result.reason
        if reason is Reason.OK and self.mode is not Mode.NORMAL:
            reason = _MODE_REASONS[self.mode]
        elif reason is Reason.OK and self.door.grants_blocked:
            reason = Reason.TAMPER
        self.state = State.VERDICT
        if not self._arrival_pending:  # keys typed since the next card's tap are its own
            self._entry.clear()
        self._pin_deadline = None
        self._verdict_until = now + self.settings.verdict_hold_s
        identity = result.identity or self._identity
        chosen, self._chosen = self._chosen, None  # a verdict consumes the selection
        feedback = feedback_for(reason)
        commands: list[Command] = [EndTransaction()] if card_held else []
        record = verdict_record(result, reason, identity, self.settings.purpose)
        if reason is Reason.OK:
            s = self.settings
            commands += grant_commands(s, record, chosen, self.door, self.vend, now)
        commands += [ShowLight(feedback.light), PlayBeep(feedback.beeps), record]
        self._left_during_job = False
        if self._arrival_pending:  # a card put down while the previous one was finishing
            commands += self._card_arrived(now)
        return commands
