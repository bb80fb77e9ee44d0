"""One console port's session: the password prompt, then commands, then logout.

Runs in the console's own thread (``driver``) and may block there: checking the argon2
hash (~0.1-0.3 s) and the growing delay after a wrong password both happen here, never on
the daemon's loop. Everything the session asks of the daemon goes through
:class:`terminald.daemon.operator.Operator`. Each login, failure, lockout, logout and
change command is an audit event (kinds ``console_login``, ``console_login_failed``,
``console_lockout``, ``console_logout``, ``console_command``). The password is never
echoed, kept or logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol, cast

from terminald.console import commands, render
from terminald.console.commands import Kind, Parsed, ParseError
from terminald.console.line_editor import (
    Cancelled,
    EditorEvent,
    EndOfInput,
    HelpAsked,
    Line,
    LineEditor,
)
from terminald.console.lockout import LockoutPolicy, PortRecord, failed, locked_for, succeeded
from terminald.console.passwd import PasswdError, read_hash, verify
from terminald.core.terminal import Mode
from terminald.daemon.operator import Operator, OperatorError, Output

logger = logging.getLogger("terminald.console")

PROMPT = "terminald> "
PASSWORD_PROMPT = "Password: "  # noqa: S105 (a prompt, not a password)
CONFIRM_PROMPT = "Restart the daemon now? [y/N] "
BANNER = "terminald maintenance console"


class Lockouts(Protocol):
    def load(self, port: str) -> PortRecord: ...
    def save(self, port: str, record: PortRecord) -> None: ...


class _State(Enum):
    LOGIN = "login"
    SHELL = "shell"
    CONFIRM = "confirm"


@dataclass
class SessionSettings:
    port: str
    passwd: Path
    idle_logout_s: float = 600.0
    policy: LockoutPolicy = field(default_factory=LockoutPolicy)
    width: int = render.WIDTH
    rows: int = render.ROWS


@dataclass
class SessionClock:
    """Injected for tests: wall clock (lockout), monotonic (idle), and sleep (delays)."""

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class Session:
    """``write`` sends bytes to the port; ``drop_input`` throws away what the port has
    buffered (typed during a login delay)."""

    def __init__(
        self,
        settings: SessionSettings,
        operator: Operator,
        lockouts: Lockouts,
        write: Callable[[bytes], None],
        *,
        clock: SessionClock | None = None,
        drop_input: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self._operator = operator
        self._lockouts = lockouts
        self._write = write
        self._clock = clock or SessionClock()
        self._drop_input = drop_input
        self.editor = LineEditor()
        self._state = _State.LOGIN
        self._last_input = self._clock.monotonic()
        self._login()

    @property
    def logged_in(self) -> bool:
        return self._state is not _State.LOGIN

    # -- input --------------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        self._last_input = self._clock.monotonic()
        self.editor.feed(data)
        while True:
            edited = self.editor.step()
            if edited.echo:
                self._write(edited.echo)
            if edited.event is None:
                return
            self._event(edited.event)

    def tick(self) -> None:
        """Called now and then by the driver: logs an idle session out."""
        idle = self._clock.monotonic() - self._last_input
        if idle < self.settings.idle_logout_s:
            return
        if self.logged_in:
            self._lines(["", f"No input for {self.settings.idle_logout_s:g} s: logged out."])
            self._logout("idle")
        elif self.editor.text:  # half a password left at the prompt is not kept for the next
            self.editor.discard_pending()
            self._lines([""])
            self._prompt()

    def _event(self, event: EditorEvent) -> None:
        if self._state is _State.LOGIN:
            if isinstance(event, Line) and event.text:
                self._password(event.text)
            else:  # Enter on its own (waking a terminal up), ^C, ^D: a new prompt
                self._prompt()
        elif self._state is _State.CONFIRM:
            if isinstance(event, Line) and event.text.strip().lower() in ("y", "yes"):
                self._restart()
            else:
                self._lines(["Not restarted."])
                self._state = _State.SHELL
                self._prompt()
        elif isinstance(event, EndOfInput):
            self._logout("end of input")
        elif isinstance(event, HelpAsked):
            self._lines(commands.what_next(event.text))
            self._prompt(event.text)  # the line typed so far, as it was
        elif isinstance(event, Cancelled):
            self._prompt()
        else:
            self._command(event.text)
            if self._state is _State.SHELL:
                self._prompt()

    # -- login --------------------------------------------------------------------------------

    def _login(self) -> None:
        self._state = _State.LOGIN
        self.editor.masked = True
        self._lines(["", BANNER])
        self._prompt()

    def _password(self, password: str) -> None:
        port, policy = self.settings.port, self.settings.policy
        record = self._lockouts.load(port)
        remaining = locked_for(policy, record, self._clock.wall())
        if remaining > 0:
            self._lines([f"This port is locked: try again in {_minutes(remaining)}."])
            self._wait(policy.first_delay_s)
            return
        try:
            good = verify(read_hash(self.settings.passwd), password)
        except PasswdError as exc:
            logger.error("event=console_passwd_unusable port=%s problem=%r", port, str(exc))
            self._operator.record("console_login_failed", f"port {port}: no usable password file")
            self._lines(["Console login is not set up (see the daemon's log)."])
            self._wait(policy.first_delay_s)
            return
        del password
        if good:
            self._save(succeeded())
            self._operator.record("console_login", f"port {port}")
            self._state = _State.SHELL
            self.editor.masked = False
            self._lines(["Logged in. Type help, or ? for what may come next."])
            self._prompt()
            return
        outcome = failed(policy, record, self._clock.wall())
        self._save(outcome.record)
        count = len(outcome.record.failures) or policy.max_failures
        self._operator.record("console_login_failed", f"port {port}: failure {count}")
        self._lines(["Login incorrect."])
        if outcome.locked:
            self._operator.record(
                "console_lockout",
                f"port {port}: {policy.max_failures} failures, locked {policy.lockout_s:g} s",
            )
            self._lines(
                [f"Too many failures: this port is locked for {_minutes(policy.lockout_s)}."]
            )
        self._wait(outcome.delay_s)

    def _wait(self, delay_s: float) -> None:
        """The delay after a refusal: what was typed meanwhile is thrown away."""
        self._clock.sleep(delay_s)
        self._drop_input()
        self.editor.discard_pending()
        self._prompt()

    def _save(self, record: PortRecord) -> None:
        try:
            self._lockouts.save(self.settings.port, record)
        except OSError as exc:
            logger.error("event=console_lockout_unsaved problem=%r", exc.strerror or str(exc))

    def _logout(self, why: str) -> None:
        self._operator.record("console_logout", f"port {self.settings.port}: {why}")
        self._lines(["Logged out."])
        self.editor.discard_pending()
        self._login()

    # -- commands -----------------------------------------------------------------------------

    def _command(self, line: str) -> None:
        try:
            parsed = commands.parse(line)
        except ParseError as exc:
            self._lines([f"% {exc}"])
            return
        if parsed is None:
            return
        try:
            self._run(parsed)
        except OperatorError as exc:
            self._lines([f"% {exc}"])
        except Exception:  # a console bug must not end the console, nor the daemon
            logger.exception("event=console_command_failed command=%s", parsed.spec.name)
            self._lines(["% internal error (see the daemon's log)"])

    def _run(self, parsed: Parsed) -> None:
        op, name, arg = self._operator, parsed.spec.name, parsed.argument
        if parsed.spec.kind is Kind.CHANGE and (arg is not None or name == "restart"):
            if name == "restart":
                self._state = _State.CONFIRM
                self._write(CONFIRM_PROMPT.encode())
                return
            op.record("console_command", f"port {self.settings.port}: {name} {arg}")
        lines: list[str]
        if name == "help":
            lines = commands.help_lines()
        elif name in ("logout", "exit"):
            self._logout(name)
            return
        elif name == "status":
            lines = render.status_lines(op.status())
        elif name == "events":
            limit = min(arg if isinstance(arg, int) else 10, self.settings.rows - 4)
            lines = render.event_lines(op.events(max(limit, 1)))
        elif name == "readers":
            lines = render.readers_lines(op.readers())
        elif name == "revocation":
            lines = render.revocation_lines(op.revocation())
        elif name == "enrolment":
            lines = render.enrolment_lines(op.enrolment())
        elif name == "config":
            lines = render.config_lines(op.config())
        elif name == "time":
            lines = render.time_lines(op.time())
        elif name == "mode" and arg is None:
            choices = "|".join(c.name for c in commands.MODES)
            lines = [f"mode       {op.status().mode}", f"set with   mode {choices}"]
        elif name == "mode":
            lines = [op.set_mode(Mode(str(arg)))]
        else:
            lines = [op.test_output(cast(Output, arg))]
        self._lines(lines)

    def _restart(self) -> None:
        self._operator.record("console_command", f"port {self.settings.port}: restart")
        self._lines(["Restarting: the console comes back with the daemon."])
        self._state = _State.SHELL
        try:
            self._operator.restart("console")
        except OperatorError as exc:
            self._lines([f"% {exc}"])
        self._prompt()

    # -- output -------------------------------------------------------------------------------

    def _prompt(self, typed: str = "") -> None:
        prompt = PASSWORD_PROMPT if self._state is _State.LOGIN else PROMPT
        self._write((prompt + typed).encode("ascii", "replace"))

    def _lines(self, lines: list[str]) -> None:
        width = self.settings.width
        self._write(b"".join(render.fit(line, width).encode("ascii") + b"\r\n" for line in lines))


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} min" if seconds >= 60 else f"{seconds:.0f} s"
