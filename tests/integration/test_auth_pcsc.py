"""Authentication end to end through pyscard → pcscd → vpcd → the virtual card.

These are the card issue's "must show" behaviours, on the same path a physical reader
takes: the PcscReader adapter, the Authenticator, and one exclusive, always-unpowered
transaction per tap.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from terminald.backends.pcsc import PcscReader
from terminald.card.jpki import JPKI_AID
from terminald.core.auth import Authenticator, AuthSettings, PinRequest
from terminald.core.reasons import Reason
from terminald.daemon.transaction import Transaction, run_transaction
from terminald.pki.anchors import TrustStore
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, Pcscd, wait_for_card_state
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard
from terminald.sim.vpcd import _recv_exact as recv_exact

pytestmark = pytest.mark.pcscd

# The applications that hold the My Number and the card-face data (jpki-card.md §1.1).
KENHOJO_AID = bytes.fromhex("D3921000310001010408")
KENMEN_AID = bytes.fromhex("D3921000310001010402")


@dataclass
class Terminal:
    reader: PcscReader
    authenticator: Authenticator
    pki: TestPkiManifest

    def card(self, name: str) -> VirtualJpkiCard:
        return VirtualJpkiCard(self.pki.load_profile(name))

    def pin(self, name: str) -> str:
        pin = self.pki.card(name).pin
        assert pin is not None
        return pin

    def tap(self, pin: str | None) -> Transaction:
        assert self.reader.wait_for_card(10), "the reader never saw the card"
        asked: list[int] = []

        def pin_source(request: PinRequest) -> str | None:
            asked.append(request.tries_left)
            return pin

        return run_transaction(self.reader, self.authenticator, pin_source)


def verify_commands(card: VirtualJpkiCard) -> list[bytes]:
    """VERIFY commands that carry a PIN (the retry query carries none)."""
    return [c for c in card.commands() if c[1] == 0x20 and len(c) > 4]


def wait_unpowered(card: VirtualJpkiCard) -> bool:
    import time

    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if not card.powered:
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def terminal(test_pki: TestPkiManifest, pcscd: Pcscd) -> Iterator[Terminal]:
    trust = TrustStore.from_paths([test_pki.trust_dir])
    reader = PcscReader(READER_0)
    yield Terminal(reader, Authenticator(trust, AuthSettings(terminal_id="test-gate")), test_pki)
    reader.close()


@pytest.fixture(autouse=True)
def never_selects_other_applications(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every card any test here used must have been asked for the JPKI AP only."""
    cards: list[VirtualJpkiCard] = []
    request.node.used_cards = cards
    yield
    for card in cards:
        assert set(card.selected_aids()) <= {JPKI_AID}, card.selected_aids()


@pytest.fixture
def insert(
    vpcd_card: Callable[..., VpcdCard], request: pytest.FixtureRequest
) -> Callable[[VirtualJpkiCard], VpcdCard]:
    def put(card: VirtualJpkiCard) -> VpcdCard:
        request.node.used_cards.append(card)
        return vpcd_card(card)

    return put


def test_good_pin_is_ok_then_the_card_is_recognised_and_unpowered(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    card = terminal.card("card-001")
    slot = insert(card)
    first = terminal.tap(terminal.pin("card-001"))
    assert first.result.reason is Reason.OK
    assert first.result.identity is not None and not first.result.identity.cached
    assert first.apdus == 11
    assert wait_unpowered(card), "the card must be unpowered after the transaction"

    slot.remove()
    assert wait_for_card_state(READER_0, False, 5)
    slot.insert()
    second = terminal.tap(terminal.pin("card-001"))
    assert second.result.reason is Reason.OK
    assert second.result.identity is not None and second.result.identity.cached
    assert second.apdus == 6
    # The whole exchange of a cached tap: select, head, the last 32 bytes (the issuer's
    # signature, which tells same-serial certificates apart), retry query, VERIFY, sign.
    length = len(terminal.pki.load_profile("card-001").auth_cert)
    assert [c[:4].hex() for c in card.commands()[-6:]] == [
        "00a4040c",
        "00b08a00",
        f"00b0{length - 32:04x}",
        "00200098",
        "00200098",
        "802a0097",
    ]


def test_wrong_pin_costs_one_try_and_is_reported(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    card = terminal.card("card-002")
    insert(card)
    wrong = "0000" if terminal.pin("card-002") != "0000" else "1111"
    tx = terminal.tap(wrong)
    assert tx.result.reason is Reason.PIN_WRONG
    assert tx.result.pin_tries_left == 2
    assert card.tries_left() == 2


def test_one_try_left_is_refused_before_any_verify(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    card = terminal.card("last-try")
    insert(card)
    tx = terminal.tap(terminal.pin("last-try"))
    assert tx.result.reason is Reason.PIN_TRIES_LOW
    assert tx.result.pin_tries_left == 1
    assert verify_commands(card) == []
    assert card.tries_left() == 1


REFUSALS = {
    "blocked": Reason.PIN_BLOCKED,
    "face-auth": Reason.FACE_AUTH_CARD,
    "non-jpki": Reason.NOT_JPKI_CARD,
    "expired": Reason.CERT_EXPIRED,
    "not-yet-valid": Reason.CERT_NOT_YET_VALID,
    "unknown-issuer": Reason.UNKNOWN_ISSUER,
    "forged-issuer": Reason.CERT_SIGNATURE_INVALID,
    "wrong-usage": Reason.CERT_WRONG_USAGE,
    "bad-signature": Reason.CERT_SIGNATURE_INVALID,
}


@pytest.mark.parametrize(("name", "reason"), REFUSALS.items())
def test_each_bad_card_has_its_own_reason_and_no_pin_is_tried(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard], name: str, reason: Reason
) -> None:
    assert terminal.pki.card(name).expected is reason  # the test PKI agrees
    card = terminal.card(name)
    insert(card)
    tx = terminal.tap("1234")
    assert tx.result.reason is reason, tx.result.detail
    assert verify_commands(card) == []
    assert wait_unpowered(card)


@pytest.mark.parametrize("step", range(11))
def test_card_pulled_at_each_apdu_step_fails_cleanly_and_the_next_tap_works(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard], step: int
) -> None:
    card = terminal.card("card-003")
    slot = insert(card)
    seen = 0

    def pull_at_step(event: object) -> None:
        nonlocal seen
        if getattr(event, "kind", None) != "apdu":
            return
        if seen == step:
            slot.remove(timeout=0)  # out of the field before the answer goes back
        seen += 1

    card.add_listener(pull_at_step)
    tx = terminal.tap(terminal.pin("card-003"))
    assert tx.result.reason is Reason.CARD_REMOVED, (tx.result.reason, tx.result.detail)
    assert not tx.result.granted

    card.add_listener(lambda event: None)
    seen = -1_000_000  # no more pulls
    assert wait_for_card_state(READER_0, False, 5)
    slot.insert()
    again = terminal.tap(terminal.pin("card-003"))
    assert again.result.reason is Reason.OK, again.result.detail


def test_pcscd_killed_and_restarted_the_next_tap_works_in_the_same_process(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard], pcscd: Pcscd
) -> None:
    card = terminal.card("card-001")
    slot = insert(card)
    assert terminal.tap(terminal.pin("card-001")).result.reason is Reason.OK
    pcscd.kill()
    pcscd.start()
    assert slot.wait_connected(10)
    tx = terminal.tap(terminal.pin("card-001"))
    assert tx.result.reason is Reason.OK, tx.result.detail


def test_the_virtual_card_does_hold_the_other_applications(
    insert: Callable[[VirtualJpkiCard], VpcdCard],
    terminal: Terminal,
    request: pytest.FixtureRequest,
) -> None:
    """Proves the privacy check above could fail: the AIDs are there to be selected."""
    from smartcard.System import readers

    card = terminal.card("card-001")
    vpcd = VpcdCard(card)
    vpcd.start()
    try:
        assert wait_for_card_state(READER_0, True, 10)
        reader = next(r for r in readers() if str(r) == READER_0)
        connection = reader.createConnection()
        connection.connect()
        for aid in (KENHOJO_AID, KENMEN_AID):
            _, sw1, sw2 = connection.transmit([0x00, 0xA4, 0x04, 0x0C, len(aid), *aid])
            assert (sw1, sw2) == (0x90, 0x00)
        connection.disconnect()
        assert {KENHOJO_AID, KENMEN_AID} <= set(card.selected_aids())
    finally:
        vpcd.stop()
        wait_for_card_state(READER_0, False, 5)


def test_cli_auth_json(terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]) -> None:
    insert(terminal.card("card-002"))
    terminal.reader.close()  # the CLI is its own PC/SC client
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "terminald",
            "-vvv",
            "auth",
            "--trust",
            str(terminal.pki.trust_dir),
            "--pin-stdin",
            "--json",
            "--wait",
            "10",
        ],
        input=terminal.pin("card-002") + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    entry = terminal.pki.card("card-002")
    assert verdict["verdict"] == "ok"
    assert verdict["serial"] == entry.serial
    assert verdict["issuer_key_id"] == entry.issuer_key_id
    assert verdict["apdus"] == 11
    assert verdict["pin_tries_left"] == 3
    assert verdict["not_after"].startswith(entry.not_after.isoformat()[:10])
    assert verdict["elapsed_ms"] > 0
    # -vvv logs every APDU, the VERIFY masked: the PIN's ASCII hex never appears.
    assert "TRAFFIC" in out.stderr and "00 20 00 98 04 ********" in out.stderr
    pin = terminal.pin("card-002")
    assert pin not in out.stdout + out.stderr
    assert pin.encode().hex(" ") not in out.stderr


def test_the_card_is_held_exclusively_during_the_transaction(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    from terminald.card.errors import CardCommunicationError

    insert(terminal.card("card-003"))
    intruder = PcscReader(READER_0)
    refused: list[str] = []

    def pin_source(request: PinRequest) -> str | None:
        try:
            with intruder.connect():
                refused.append("connected")
        except CardCommunicationError as exc:
            refused.append(str(exc))
        return terminal.pin("card-003")

    assert terminal.reader.wait_for_card(10)
    tx = run_transaction(terminal.reader, terminal.authenticator, pin_source)
    intruder.close()
    assert tx.result.reason is Reason.OK
    assert refused and "held by another program" in refused[0]


def test_revoked_and_held_cards_are_refused_before_the_pin_by_the_cli(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard], tmp_path: Path
) -> None:
    """The back office's CRL → signed bundle → terminal store → `terminald auth`."""
    pki = terminal.pki
    revoked, held, good = pki.card("card-001"), pki.card("card-002"), pki.card("card-003")

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "terminald", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    key, bundle, state = tmp_path / "bo.key", tmp_path / "b1", tmp_path / "rev.state"
    # One CRL per root, as J-LIS publishes per generation.
    # Every trusted root needs a CRL, empty or not: for an issuer the data does not
    # cover, the store fails closed (revocation_unavailable).
    entries: dict[str, list[str]] = {str(entry.root): [] for entry in (revoked, held, good)}
    for entry, reason in ((revoked, "keyCompromise"), (held, "certificateHold")):
        entries.setdefault(str(entry.root), []).append(f"{entry.serial}:{reason}")
    crls = [str(tmp_path / f"{root}.crl") for root in entries]
    steps = [
        (
            "sim",
            "crl",
            "--pki",
            str(pki.directory),
            "--root",
            root,
            "--out",
            out,
            *(("--revoke", *serials) if serials else ()),
        )
        for (root, serials), out in zip(entries.items(), crls, strict=True)
    ]
    steps += [
        ("revocation", "keygen", "--out", str(key)),
        (
            "revocation",
            "build",
            "--crl",
            *crls,
            "--key",
            str(key),
            "--version",
            "1",
            "--trust",
            str(pki.trust_dir),
            "--out",
            str(bundle),
        ),
        (
            "revocation",
            "apply",
            str(bundle),
            "--revocation-state",
            str(state),
            "--backoffice-key",
            f"{key}.pub",
        ),
    ]
    for step in steps:
        done = cli(*step)
        assert done.returncode == 0, (step, done.stderr)
    terminal.reader.close()
    auth = (
        "auth",
        "--trust",
        str(pki.trust_dir),
        "--pin-stdin",
        "--json",
        "--wait",
        "10",
        "--revocation-state",
        str(state),
        "--backoffice-key",
        f"{key}.pub",
    )
    for entry, verdict in ((revoked, "cert_revoked"), (held, "cert_on_hold"), (good, "ok")):
        card = terminal.card(entry.name)
        slot = insert(card)
        done = cli(*auth, stdin=(entry.pin or "") + "\n")
        result = json.loads(done.stdout)
        assert result["verdict"] == verdict, done.stderr
        if verdict != "ok":
            assert done.returncode == 1
            assert verify_commands(card) == []
        else:
            assert result["revocation"] == "good"
        slot.remove()
        assert wait_for_card_state(READER_0, False, 5)


def test_cli_refuses_a_revocation_store_without_a_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "terminald", "auth", "--revocation-state", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--backoffice-key" in done.stderr


# -- the tool behaves as a user expects (issue 9 §6) ------------------------------------


def run_auth(terminal: Terminal, *args: str, pin: str = "") -> subprocess.CompletedProcess[str]:
    terminal.reader.close()  # the CLI is its own PC/SC client
    return subprocess.run(
        [sys.executable, "-m", "terminald", "auth", "--trust", str(terminal.pki.trust_dir), *args],
        input=pin + "\n",
        capture_output=True,
        text=True,
        timeout=120,  # a guard against a hang, not a timing assertion
    )


def test_auth_json_names_the_reader_it_used(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    insert(terminal.card("expired"))
    out = run_auth(terminal, "--json", "--pin-stdin", "--wait", "10", "--reader", "Virtual")
    assert out.returncode == 1, out.stderr
    verdict = json.loads(out.stdout)
    assert (verdict["verdict"], verdict["reader"]) == ("cert_expired", READER_0)


def test_auth_with_a_missing_reader_lists_the_readers_present(
    terminal: Terminal, insert: Callable[[VirtualJpkiCard], VpcdCard]
) -> None:
    out = run_auth(terminal, "--json", "--reader", "ACS ACR1252", "--wait", "10")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1, out.stderr
    assert "--reader 'ACS ACR1252': no such reader; readers present: " in out.stderr
    assert repr(READER_0) in out.stderr and "Traceback" not in out.stderr


class MuteCard(VpcdCard):
    """In the field and powered, answers its ATR, and never answers an APDU: a card that
    stops talking mid-transaction (a flaky contactless link, a broken chip)."""

    def _serve(self, sock: socket.socket) -> None:
        while True:
            (length,) = struct.unpack(">H", recv_exact(sock, 2))
            message = recv_exact(sock, length)
            if len(message) == 1:
                self._control(sock, self.card, message[0])
            # an APDU: no answer, ever


def test_auth_gives_up_on_a_card_that_never_answers_and_lets_it_go(
    terminal: Terminal, pcscd: Pcscd
) -> None:
    mute = MuteCard(terminal.card("card-001"), port=35963)
    mute.start()
    try:
        assert wait_for_card_state(READER_0, True, 10)
        out = run_auth(terminal, "--json", "--pin-stdin", "--wait", "10", "--timeout", "2")
        assert out.returncode == 1, out.stderr
        verdict = json.loads(out.stdout)  # still exactly one JSON object
        assert verdict["verdict"] == "card_error"
        assert "did not answer within 2 s" in verdict["detail"]
        assert verdict["reader"] == READER_0
        assert "Traceback" not in out.stderr
    finally:
        mute.stop()
    # The CLI's hold ended with it: the next card on the same reader is served. pcscd
    # first fails the APDU it was still waiting on and cleans up the exited client,
    # which takes a while on a loaded machine: a generous guard, not a timing claim.
    assert wait_for_card_state(READER_0, False, 30)
    card = terminal.card("card-002")
    with VpcdCard(card, port=35963):
        assert wait_for_card_state(READER_0, True, 60), "pcscd never saw the next card"
        tx = terminal.tap(terminal.pin("card-002"))
        assert tx.result.reason is Reason.OK, tx.result
        assert wait_unpowered(card)
