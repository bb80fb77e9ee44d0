"""The demo behind the README's run command: virtual cards tapped on a real pcscd.

It builds a test PKI, starts pcscd with the vpcd driver (inside scripts/sandbox) and
taps virtual My Number Cards on the virtual reader. Every tap takes the path of
``terminald auth``: pyscard, pcscd, vpcd, the virtual card, with the NFC timing
model so it feels like a real tap. A person sees the tap, the certificate, the PIN
prompt with masked digits, and the verdict. With a terminal on stdin it is
interactive: pick a card, type its PIN (or a wrong one) and watch the tries go down.
"""

from __future__ import annotations

import dataclasses
import getpass
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from terminald.backends.pcsc import PcscReader
from terminald.core.auth import Authenticator, AuthSettings, PinRequest
from terminald.core.reasons import DESCRIPTIONS
from terminald.daemon.transaction import Transaction, run_transaction
from terminald.pki.anchors import TrustStore
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, Pcscd, wait_for_card_state
from terminald.sim.profile import CardProfile, TimingModel
from terminald.sim.testpki import TestPkiManifest, build_test_pki
from terminald.sim.vpcd import VpcdCard

GREEN, RED, AMBER, DIM, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
PinEntry = Callable[[PinRequest], str | None]


@dataclass(frozen=True)
class Step:
    card: str
    story: str
    wrong_pin: bool = False


TOUR = (
    Step("card-001", "an enrolled person, first visit: the full certificate is read"),
    Step("card-001", "the same person again: the certificate is recognised, 5 APDUs"),
    Step("card-002", "a mistyped PIN: the card counts the try", wrong_pin=True),
    Step("card-002", "the right PIN: the counter is back to 3"),
    Step("last-try", "one try left: refused before any PIN, the last try stays the owner's"),
    Step("blocked", "a blocked PIN: only the municipal office can reset it"),
    Step("face-auth", "a face-authentication card: it has no PIN"),
    Step("non-jpki", "some other smart card"),
    Step("expired", "an expired certificate"),
    Step("forged-issuer", "a trusted root's name and key id, signed by another key"),
    Step("unknown-issuer", "a certificate from a root this terminal does not trust"),
)


class Screen:
    def __init__(self, out: TextIO, pace: float) -> None:
        self.out, self.pace, self.colour = out, pace, out.isatty()

    def say(self, text: str, colour: str = "") -> None:
        if self.colour and colour:
            text = f"{colour}{text}{RESET}"
        print(text, file=self.out, flush=True)

    def keypad(self, pin: str, tries_left: int) -> None:
        self.out.write(f"   keypad   PIN ({tries_left} tries left): ")
        for _ in pin:
            time.sleep(self.pace / 5)
            self.out.write("*")  # masked; the real keypad beeps per key
            self.out.flush()
        self.out.write("  [#]\n")
        self.out.flush()

    def card(self, request: PinRequest) -> None:
        ident = request.identity
        cached = "  (known certificate)" if ident.cached else ""
        self.say(
            f"   card     serial {ident.serial}, valid until {ident.not_after:%Y-%m-%d}{cached}"
        )

    def verdict(self, tx: Transaction) -> None:
        result = tx.result
        word, colour = ("OPEN", GREEN) if result.granted else ("REFUSED", RED)
        detail = result.detail or DESCRIPTIONS[result.reason]
        self.say(f"   verdict  {word}: {result.reason.value} ({detail})", colour)
        figures = f"{tx.apdus} APDUs, {tx.elapsed_ms:.0f} ms at the terminal and card"
        if result.pin_tries_left is not None:
            figures += f", PIN tries left {result.pin_tries_left}"
        self.say(f"            {figures}", DIM)


class Desk:
    """The virtual reader slot and the cards lying beside it."""

    def __init__(self, manifest: TestPkiManifest, realtime: bool) -> None:
        timing = TimingModel.nfc() if realtime else TimingModel()
        self.manifest = manifest
        self.cards: dict[str, VirtualJpkiCard] = {}
        for entry in manifest.cards:
            profile: CardProfile = dataclasses.replace(
                manifest.load_profile(entry.name), timing=timing
            )
            self.cards[entry.name] = VirtualJpkiCard(profile)
        first = next(iter(self.cards.values()))
        self.slot = VpcdCard(first, realtime=realtime, inserted=False)
        self.reader = PcscReader(READER_0)

    def tap(self, name: str, authenticator: Authenticator, pin_entry: PinEntry) -> Transaction:
        self.slot.swap(self.cards[name])
        self.slot.insert()
        if not self.reader.wait_for_card(10):
            raise RuntimeError("pcscd did not report the virtual card; see its log")
        tx = run_transaction(self.reader, authenticator, pin_entry)
        self.slot.remove()
        wait_for_card_state(READER_0, False, 5)
        return tx


def run_demo(
    *,
    pki_dir: Path | None,
    interactive: bool,
    pace: float,
    realtime: bool,
    out: TextIO = sys.stdout,
) -> int:
    screen = Screen(out, pace)
    with tempfile.TemporaryDirectory(prefix="terminald-demo-") as tmp:
        if pki_dir is None:
            screen.say("Building a test PKI: three root generations with one DN, virtual cards ...")
            manifest = build_test_pki(Path(tmp) / "pki", cards=3)
        else:
            manifest = TestPkiManifest.load(pki_dir)
        trust = TrustStore.from_paths([manifest.trust_dir])
        authenticator = Authenticator(
            trust, AuthSettings(terminal_id="demo-gate-1", purpose="gate")
        )
        pcscd = Pcscd(log_path=Path(tmp) / "pcscd.log")
        screen.say("Starting pcscd with the vpcd virtual reader ...")
        pcscd.start()
        desk = Desk(manifest, realtime)
        desk.slot.start()
        try:
            screen.say(
                f"Reader: {READER_0}  (pyscard -> pcscd -> vpcd -> virtual My Number Card)\n"
            )
            if interactive:
                _interactive(screen, desk, authenticator)
            else:
                _tour(screen, desk, authenticator)
        finally:
            desk.slot.stop()
            desk.reader.close()
            pcscd.stop()
    return 0


def _tour(screen: Screen, desk: Desk, authenticator: Authenticator) -> None:
    for step in TOUR:
        pin = desk.manifest.card(step.card).pin
        if step.wrong_pin and pin is not None:
            pin = "0000" if pin != "0000" else "9999"
        screen.say(f"-- tap: {step.card}: {step.story}", AMBER)

        def typed(request: PinRequest, pin: str | None = pin) -> str | None:
            screen.card(request)
            if pin is not None:
                screen.keypad(pin, request.tries_left)
            return pin

        screen.verdict(desk.tap(step.card, authenticator, typed))
        time.sleep(screen.pace)
    screen.say("\nEvery refusal above happened before the card was asked to check a PIN,")
    screen.say("except the mistyped one. Run with a terminal on stdin to tap cards yourself.")


def _interactive(screen: Screen, desk: Desk, authenticator: Authenticator) -> None:
    names = [entry.name for entry in desk.manifest.cards]
    while True:
        screen.say("Cards on the desk:")
        for number, name in enumerate(names, 1):
            entry = desk.manifest.card(name)
            pin = f"PIN {entry.pin}" if entry.pin else "no PIN"
            screen.say(f"  {number:2d}  {name:15s} {pin:9s} {DESCRIPTIONS[entry.expected]}", DIM)
        try:
            choice = input("Tap which card? (number; q quits) ").strip().lower()
        except EOFError:
            return
        if choice in ("q", "quit", "exit"):
            return
        if not choice.isdigit() or not 1 <= int(choice) <= len(names):
            screen.say("  no such card")
            continue
        name = names[int(choice) - 1]
        screen.say(f"-- tap: {name}", AMBER)

        def asked(request: PinRequest) -> str | None:
            screen.card(request)
            try:
                return getpass.getpass(f"   keypad   PIN ({request.tries_left} tries left): ")
            except EOFError:
                return None

        screen.verdict(desk.tap(name, authenticator, asked))
        screen.say("")
