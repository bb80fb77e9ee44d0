"""Attacks on the terminal state machine of issue 11 (selection, vend line, modes).

Each test is a finding a review tried to break: what must never happen at a vending or
attendance terminal, checked with literal events, and a hypothesis state machine that
drives the terminal with any order of events and asserts the invariants after each.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import (
    Command,
    EndTransaction,
    HoldRelay,
    PlayBeep,
    PulseRelay,
    Record,
    ReleaseRelay,
    RunChecks,
    RunVerify,
)
from terminald.core.door import DoorSettings
from terminald.core.feedback import SELECTED_BEEP
from terminald.core.hardware import DoorInput, InputChanged, KeyPressed
from terminald.core.reasons import Reason
from terminald.core.terminal import (
    CardArrived,
    CardLeft,
    ChecksDone,
    Mode,
    ModeSet,
    PinPrompt,
    State,
    Terminal,
    TerminalSettings,
    VerifyDone,
)

IDENT = CardIdentity(16777224, b"\x01" * 20, datetime(2030, 1, 1, tzinfo=UTC), False)
DONE = InputChanged(DoorInput.VEND_COMPLETE, True)


def terminal(purpose: str = "vend", mode: Mode = Mode.NORMAL) -> Terminal:
    return Terminal(
        TerminalSettings(
            pin_timeout_s=20,
            verdict_hold_s=3,
            door=DoorSettings(open_ms=5000),
            purpose=purpose,
            selection_timeout_s=10,
            vend_enable_s=30,
            vend_complete_wired=True,
        ),
        mode,
    )


def of(commands: list[Command], kind: type) -> list[Command]:
    return [c for c in commands if isinstance(c, kind)]


# --- the selection --------------------------------------------------------------------


def test_a_selection_past_its_timeout_is_not_sent_with_a_tap_before_the_tick() -> None:
    """Found: ``Selection.take`` ignored the deadline; only ``tick`` expired it. A
    daemon that handles a card arrival before the due tick (both ready in one loop
    turn, or a busy loop) sent the previous person's product with the next card."""
    t = terminal()
    t.handle(KeyPressed("B"), 0.0)
    out = t.handle(CardArrived(), 10.0)  # the deadline passed, no tick in between
    assert of(out, RunChecks) == [RunChecks(None)]


def test_a_selection_inside_its_timeout_still_goes_with_the_tap() -> None:
    t = terminal()
    t.handle(KeyPressed("B"), 0.0)
    assert of(t.handle(CardArrived(), 9.999), RunChecks) == [RunChecks("B")]


# --- emergency open on a vending machine ----------------------------------------------


def test_emergency_open_never_energises_a_vend_enable_line() -> None:
    """Found: emergency open held the relay on every terminal. On a vending machine the
    relay is the vend-enable ("free vend") line, so a site-wide emergency open (the back
    office sets it on every terminal) sold alcohol and tobacco to anyone, without any
    age check, for as long as it lasted. A vending machine is no escape route: it only
    stops selling, as in lockdown."""
    t = terminal()
    t.start(0.0)
    out = t.handle(ModeSet(Mode.EMERGENCY_OPEN), 1.0)
    assert not of(out, HoldRelay)
    out = t.handle(ModeSet(Mode.NORMAL), 2.0)
    assert not of(out, HoldRelay)


def test_a_vending_machine_started_in_emergency_open_does_not_enable_a_vend() -> None:
    t = terminal(mode=Mode.EMERGENCY_OPEN)
    assert not of(t.start(0.0), HoldRelay)


def test_emergency_open_during_a_vend_drops_the_line_on_a_vending_machine() -> None:
    t = terminal()
    t.handle(CardArrived(), 0.0)
    t.handle(ChecksDone(AuthResult(Reason.OK, identity=IDENT)), 0.0)
    assert t.vend.active
    out = t.handle(ModeSet(Mode.EMERGENCY_OPEN), 1.0)
    assert ReleaseRelay() in out and not of(out, HoldRelay)
    assert not t.vend.active


def test_emergency_open_still_holds_a_gate_and_an_attendance_door() -> None:
    for purpose in ("gate", "attendance"):
        t = terminal(purpose)
        t.start(0.0)
        assert HoldRelay() in t.handle(ModeSet(Mode.EMERGENCY_OPEN), 1.0)
        assert ReleaseRelay() in t.handle(ModeSet(Mode.NORMAL), 2.0)


# --- a state machine over every event -------------------------------------------------

GRANT = AuthResult(Reason.OK, identity=IDENT, attrs=(("door", "open"), ("product", "A")))
REFUSAL = AuthResult(Reason.AGE_UNDER, identity=IDENT)


class TerminalAttack(RuleBasedStateMachine):
    """Any order of taps, keys, results, modes, inputs and ticks. A model of the relay
    (energised or not, and until when a pulse lasts) follows the commands; invariants:

    * the relay is energised only during a grant's pulse, an enabled vend, or (not on a
      vending machine) emergency open;
    * every card result ends with the card released (EndTransaction) and one verdict;
    * a selection goes with at most one tap, and never once it has run out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.purpose = "vend"
        self.t = terminal(self.purpose)
        self.now = 0.0
        self.held = False  # HoldRelay without a release since
        self.pulse_until = -1.0
        self.selected: tuple[str, float] | None = None  # key, deadline (our model)
        self.sent: list[str | None] = []
        self.open_jobs = 0  # RunChecks / RunVerify not yet answered
        self.apply(self.t.start(0.0))

    def apply(self, commands: list[Command]) -> None:
        for c in commands:
            if isinstance(c, HoldRelay):
                self.held = True
            elif isinstance(c, ReleaseRelay):
                self.held = False
                self.pulse_until = -1.0
            elif isinstance(c, PulseRelay):
                self.pulse_until = self.now + c.ms / 1000
            elif isinstance(c, RunChecks):
                self.sent.append(c.selection)
                if c.selection is not None:
                    assert self.selected is not None and self.selected[0] == c.selection
                    assert self.now < self.selected[1], "an expired selection was sent"
                self.selected = None  # taken: at most one tap
            elif isinstance(c, Record) and c.kind in ("granted", "attendance"):
                assert self.t.mode is Mode.NORMAL

    @rule(
        purpose=st.sampled_from(["vend", "attendance", "gate"]),
    )
    @precondition(lambda self: self.now == 0.0)
    def choose_purpose(self, purpose: str) -> None:
        self.purpose = purpose
        self.t = terminal(purpose)
        self.held, self.pulse_until, self.selected = False, -1.0, None
        self.apply(self.t.start(0.0))

    @rule(dt=st.sampled_from([0.0, 0.5, 3.0, 9.9, 10.0, 20.0, 31.0]))
    def wait(self, dt: float) -> None:
        self.now += dt
        due = self.t.deadline()
        if due is not None and due <= self.now:
            self.apply(self.t.tick(self.now))
        if self.selected is not None and self.now >= self.selected[1]:
            self.selected = None

    @rule(dt=st.sampled_from([5.0, 10.0, 12.0]))
    def late(self, dt: float) -> None:
        """Time passes and the daemon has not run the due tick yet (a busy loop)."""
        self.now += dt

    @rule(key=st.sampled_from(["A", "B", "C", "D", "*", "1", "#"]))
    def key(self, key: str) -> None:
        out = self.t.handle(KeyPressed(key), self.now)
        self.apply(out)
        if PlayBeep(SELECTED_BEEP) in out:  # chosen: kept for selection_timeout_s (10 s)
            self.selected = (key, self.now + 10)
        elif key == "*" and self.t.selection.key is None:
            self.selected = None

    @rule()
    def card_on(self) -> None:
        self.apply(self.t.handle(CardArrived(), self.now))

    @rule()
    def card_off(self) -> None:
        self.apply(self.t.handle(CardLeft(), self.now))

    @rule(result=st.sampled_from([GRANT, REFUSAL, PinPrompt(IDENT, 3)]))
    def checks_done(self, result: AuthResult | PinPrompt) -> None:
        state = self.t.state
        out = self.t.handle(ChecksDone(result), self.now)
        self.apply(out)
        if state is State.CHECKING and isinstance(result, AuthResult):
            assert EndTransaction() in out  # the card is released with its verdict
            assert len([c for c in out if isinstance(c, Record) and c.kind != "mode"]) >= 1

    @rule(result=st.sampled_from([GRANT, REFUSAL]))
    def verify_done(self, result: AuthResult) -> None:
        out = self.t.handle(VerifyDone(result), self.now)
        self.apply(out)
        assert EndTransaction() in out

    @rule()
    def submit_pin(self) -> None:
        for k in "1234#":
            out = self.t.handle(KeyPressed(k), self.now)
            self.apply(out)
            if of(out, RunVerify):
                break

    @rule(mode=st.sampled_from(list(Mode)))
    def mode(self, mode: Mode) -> None:
        self.apply(self.t.handle(ModeSet(mode), self.now))

    @rule(which=st.sampled_from([DoorInput.REX, DoorInput.VEND_COMPLETE, DoorInput.TAMPER]))
    def input_(self, which: DoorInput) -> None:
        self.apply(self.t.handle(InputChanged(which, True), self.now))
        self.apply(self.t.handle(InputChanged(which, False), self.now))

    @rule(purpose=st.sampled_from(["vend", "attendance", "gate"]))
    def reload(self, purpose: str) -> None:
        """A reload that may change the purpose (service.py: ``reconfigure``)."""
        self.purpose = purpose
        out = self.t.reconfigure(terminal(purpose).settings)
        self.apply(out)
        if self.t.selection.key is None:
            self.selected = None

    @rule()
    def abort(self) -> None:
        self.apply(self.t.abort("daemon failed", self.now))

    @invariant()
    def relay_only_for_a_grant_a_vend_or_an_escape(self) -> None:
        if self.held:
            assert self.t.vend.active or (
                self.t.mode is Mode.EMERGENCY_OPEN and self.purpose != "vend"
            ), "relay held without a vend or an emergency open"
        if self.purpose == "vend":
            assert self.pulse_until < 0, "a vending machine's line is never pulsed"
        if self.t.vend.active:
            assert self.held and self.t.mode is Mode.NORMAL

    @invariant()
    def nothing_waits_forever(self) -> None:
        if self.t.vend.active or self.t.selection.key is not None:
            assert self.t.deadline() is not None


TestTerminalAttack = TerminalAttack.TestCase
TestTerminalAttack.settings = settings(
    max_examples=300,  # raised to 3000 once in review: no failure
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- a reload that changes the purpose ------------------------------------------------


def settings_for(purpose: str) -> TerminalSettings:
    return terminal(purpose).settings


def test_a_reload_from_gate_to_vend_in_emergency_open_drops_the_held_relay() -> None:
    """Found: the emergency hold of a gate stayed on when a reload made the terminal a
    vending machine: its vend-enable line then stayed energised until the mode changed."""
    t = terminal("gate", Mode.EMERGENCY_OPEN)
    assert HoldRelay() in t.start(0.0)
    out = t.reconfigure(settings_for("vend"))
    assert ReleaseRelay() in out
    assert not of(t.handle(ModeSet(Mode.NORMAL), 1.0), ReleaseRelay)  # nothing held now


def test_a_reload_from_vend_to_gate_in_emergency_open_holds_the_door() -> None:
    t = terminal("vend", Mode.EMERGENCY_OPEN)
    assert not of(t.start(0.0), HoldRelay)
    assert HoldRelay() in t.reconfigure(settings_for("gate"))
    assert ReleaseRelay() in t.handle(ModeSet(Mode.NORMAL), 1.0)


def test_a_reload_from_vend_to_gate_ends_the_vend_rather_than_hold_a_door_open() -> None:
    """Found: a vend enabled before a reload that made the terminal a gate kept the
    relay, now a door lock, energised for the rest of the vend window (up to 600 s)."""
    t = terminal("vend")
    t.handle(CardArrived(), 0.0)
    t.handle(ChecksDone(AuthResult(Reason.OK, identity=IDENT)), 0.0)
    assert t.vend.active
    out = t.reconfigure(settings_for("gate"))
    assert ReleaseRelay() in out and not t.vend.active
    assert any(isinstance(c, Record) and c.kind == "vend_timeout" for c in out)


def test_a_reload_to_a_gate_forgets_a_selection() -> None:
    t = terminal("vend")
    t.handle(KeyPressed("A"), 0.0)
    t.reconfigure(settings_for("gate"))
    assert of(t.handle(CardArrived(), 1.0), RunChecks) == [RunChecks(None)]


def test_a_grant_decided_under_the_old_purpose_enables_nothing_after_a_reload() -> None:
    """Found: a gate's card in PIN entry when a reload made the terminal a vending
    machine was granted by the gate's policy (no age check) and then enabled a vend."""
    t = terminal("gate")
    t.handle(CardArrived(), 0.0)
    t.handle(ChecksDone(PinPrompt(IDENT, 3)), 0.0)
    t.reconfigure(settings_for("vend"))
    for k in "1234":
        t.handle(KeyPressed(k), 1.0)
    assert of(t.handle(KeyPressed("#"), 1.0), RunVerify)
    out = t.handle(VerifyDone(AuthResult(Reason.OK, identity=IDENT)), 2.0)
    assert not of(out, HoldRelay) and not of(out, PulseRelay) and not t.vend.active
    (record,) = [c for c in out if isinstance(c, Record)]
    assert record.reason is Reason.CARD_ERROR and "tap again" in record.detail
    assert EndTransaction() in out
    # The next card is decided under the new purpose.
    t.handle(CardLeft(), 3.0)
    t.handle(CardArrived(), 6.0)
    out = t.handle(ChecksDone(AuthResult(Reason.OK, identity=IDENT)), 6.0)
    assert HoldRelay() in out and t.vend.active
