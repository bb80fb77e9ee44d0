"""The maintenance console end to end: the daemon (real pcscd, vpcd, MockFactory GPIO)
with ``[console] port`` on a pty, driven through the pty's master with pexpect as a
technician's picocom would be. Checks what the door sees (relay pulses, the mode) and
what the audit trail holds, and that the password never comes back on the line."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from pexpect import fdpexpect

from terminald.console.lockout import LockoutPolicy
from terminald.console.session import PASSWORD_PROMPT, PROMPT
from terminald.daemon.main import open_daemon
from terminald.sim.pcscd import READER_0, Pcscd
from terminald.sim.testpki import TestPkiManifest
from terminald.store.console_lockout import LOCKOUT_NAME, LockoutFile
from tests.integration.daemon_rig import OPEN_MS, GateRig, gate_config

pytestmark = pytest.mark.pcscd

PASSWORD = "cabinet-key-0042"
POLICY = LockoutPolicy(max_failures=3, window_s=900, lockout_s=2.0, first_delay_s=0.2)


@dataclasses.dataclass
class Console:
    rig: GateRig
    child: fdpexpect.fdspawn
    port: str
    state: Path
    closed: bool = False

    def send(self, text: str | bytes) -> None:
        self.child.send(text)

    def expect(self, pattern: str) -> str:
        self.child.expect_exact(pattern)
        return str(self.child.before)

    def command(self, line: str) -> str:
        """The output of one command, up to the next prompt."""
        self.send(line + "\r")
        return self.expect(PROMPT)

    def login(self) -> str:
        self.send(PASSWORD + "\r")
        shown = self.expect("Logged in.")
        self.expect(PROMPT)
        return shown


@pytest.fixture
def console(tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[Console]:
    master, slave = os.openpty()
    port = os.ttyname(slave)
    passwd = tmp_path / "console.passwd"
    # Cheap argon2 parameters: verifying reads them from the hash, so the test stays fast.
    passwd.write_text(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD))
    passwd.chmod(0o600)
    extra = f'[console]\nport = "{port}"\npasswd = "{passwd}"\nidle_logout_s = 60\n'
    config = gate_config(tmp_path, test_pki, enrolled=["card-001"], extra=extra)
    daemon = open_daemon(config)
    assert daemon.console is not None
    daemon.console.settings = dataclasses.replace(daemon.console.settings, policy=POLICY)
    rig = GateRig(daemon, test_pki)
    rig.start()
    assert daemon.console.connected.wait(10), "the console never opened its pty"
    child = fdpexpect.fdspawn(master, timeout=10, encoding="ascii", codec_errors="replace")
    box = [Console(rig, child, port, tmp_path / "state")]
    try:
        yield box[0]
    finally:
        rig.stop()
        assert not daemon.console.alive, "the console thread outlived the daemon"
        os.close(slave)
        if not box[0].closed:
            os.close(master)


def test_wrong_passwords_are_delayed_then_lock_the_port(console: Console) -> None:
    console.send("\r")
    console.expect(PASSWORD_PROMPT)
    for attempt in range(3):
        console.send(f"guess-{attempt}\r")
        shown = console.expect("Login incorrect.")
        assert "guess" not in shown
        if attempt < 2:
            # Typed during the delay it would be thrown away: wait for the prompt.
            console.expect(PASSWORD_PROMPT)
    console.expect("locked for")
    console.expect(PASSWORD_PROMPT)
    # Locked: even the right password is refused, and the lock is on disk (it survives
    # a restart of the daemon).
    console.send(PASSWORD + "\r")
    console.expect("This port is locked")
    saved = LockoutFile(console.state / LOCKOUT_NAME).load(console.port)
    assert saved.locked_until > time.time()
    audit = console.rig.daemon.audit
    assert audit is not None and audit.flush(5)
    kinds = [row.kind for row in audit.recent(20)]
    assert kinds.count("console_login_failed") == 3
    assert kinds.count("console_lockout") == 1
    # Once the lock ends the right password logs in.
    time.sleep(POLICY.lockout_s)
    console.expect(PASSWORD_PROMPT)
    assert PASSWORD not in console.login()
    assert LockoutFile(console.state / LOCKOUT_NAME).load(console.port).locked_until == 0


def test_a_session_status_events_readers_and_logout(console: Console) -> None:
    shown = console.login()
    assert PASSWORD not in shown, "the password was echoed"
    status = console.command("st")
    assert "test-gate" in status and "idle" in status and "normal" in status
    assert READER_0 in console.command("readers")
    audit = console.rig.daemon.audit
    assert audit is not None and audit.flush(5)
    assert "console_login" in console.command("events 5")
    help_text = console.command("?")
    assert "status" in help_text and "restart" in help_text
    for line in (status + help_text).split("\r\n"):
        assert len(line) <= 80
    console.send("exit\r")
    console.expect("Logged out.")
    console.expect(PASSWORD_PROMPT)
    assert audit.flush(5)
    assert audit.recent(1)[0].kind == "console_logout"


def test_test_relay_pulses_the_relay_once(console: Console) -> None:
    console.login()
    assert console.rig.relay_pulses() == []
    assert f"relay pulsed for {OPEN_MS} ms" in console.command("test rel")
    console.rig.wait_until(lambda: len(console.rig.relay_pulses()) == 1, 5)
    (pulse,) = console.rig.relay_pulses()
    assert OPEN_MS / 1000 <= pulse < OPEN_MS / 1000 + 0.25


def test_mode_change_reaches_the_terminal(console: Console) -> None:
    console.login()
    assert "normal -> lockdown" in console.command("mode lock")
    assert console.rig.daemon.snapshot().mode == "lockdown"
    assert console.rig.next_record("mode").detail == "normal -> lockdown"
    assert "lockdown -> normal" in console.command("mo n")
    assert console.rig.daemon.snapshot().mode == "normal"


def test_line_editing_on_the_wire(console: Console) -> None:
    console.login()
    # ^C throws the line away: no mode change happens.
    console.send("mode emergency\x03")
    console.expect("^C")
    console.expect(PROMPT)
    # ^U kills the line; backspace (DEL and BS) erases with "\b \b".
    console.send("mode lockdown\x15stax\x7f\x08atus\r")
    shown = console.expect(PROMPT)
    assert "\b \b" in shown and "state" in shown
    # An arrow key's escape sequence is skipped, not taken as text.
    console.send("ti\x1b[Ame\r")
    assert "trusted" in console.expect(PROMPT)
    assert console.rig.daemon.snapshot().mode == "normal"


def test_the_console_survives_its_port_going_away(
    console: Console, caplog: pytest.LogCaptureFixture
) -> None:
    """Like a USB adapter pulled out: the line hangs up under a logged-in session."""
    console.login()
    os.close(console.child.child_fd)  # the far end is gone: reads on the port fail (EIO)
    console.closed = True
    daemon = console.rig.daemon
    driver = daemon.console
    assert driver is not None
    console.rig.wait_until(lambda: not driver.connected.is_set(), 5)
    console.rig.wait_until(lambda: "event=console_port_lost" in caplog.text, 5)
    assert driver.alive, "the console thread ended with its port"
    assert daemon.audit is not None and daemon.audit.flush(5)
    assert daemon.audit.recent(1)[0].kind == "console_logout"
    # The daemon goes on: a card is still decided.
    console.rig.tap("card-001")
    console.rig.wait_state("pin_entry")
