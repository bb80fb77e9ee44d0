"""The demo's rig: the shared ``SimRig`` with the demo's configuration and desk of cards.

``DemoRig`` writes, in a temporary directory, the demo configuration (``demo_config``:
``systemd/terminald-demo.toml`` with the test PKI's trust directory and the demo's
timings, an ``enrolled.toml`` that enrols every test card with a serial except one good
card and the twin, and ``state/``). It then runs the gate daemon on the shared rig
(``rig.SimRig``: pcscd, the vpcd slot, the daemon on mock GPIO) and names its cards by
test-PKI name and by a letter for the curses UI.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from terminald.core.reasons import Reason
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.demo_config import (
    DEMO_CONFIG,
    DEMO_TIMINGS,
    GOOD,
    MISTYPED,
    NOT_ENROLLED_CARD,
    TOUR_TIMINGS,
    DemoTimings,
    demo_config_text,
    enrolled_names,
    enrolled_toml,
    write_demo_config,
)
from terminald.sim.profile import TimingModel
from terminald.sim.rig import SimRig
from terminald.sim.testpki import CardEntry, TestPkiManifest
from terminald.sim.twin import TWIN

__all__ = [
    "DEMO_CONFIG",
    "GOOD",
    "LETTERS",
    "MISTYPED",
    "NOT_ENROLLED_CARD",
    "TOUR_TIMINGS",
    "DemoCard",
    "DemoRig",
    "DemoTimings",
    "demo_config_text",
    "desk_cards",
    "enrolled_names",
    "enrolled_toml",
    "write_demo_config",
]

LETTERS = "abcefghijklnopsuvwyz"  # card keys in the UI: no d, m, q, r, t, x (commands)


# -- the cards on the desk --------------------------------------------------------------------


_SUMMARIES = {
    "last-try": "1 PIN try left",
    "blocked": "PIN blocked",
    "face-auth": "face-auth card, no PIN",
    "non-jpki": "not a My Number Card",
    "expired": "certificate expired",
    "not-yet-valid": "cert not yet valid",
    "wrong-usage": "cert wrong key usage",
    "bad-signature": "cert signature broken",
    "forged-issuer": "forged issuer",
    "unknown-issuer": "untrusted root",
}


@dataclass(frozen=True)
class DemoCard:
    letter: str
    entry: CardEntry
    card: VirtualJpkiCard
    enrolled: bool

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def good(self) -> bool:
        return self.entry.expected is Reason.OK

    @property
    def expected(self) -> Reason:
        """The verdict this card gets at the demo terminal (its holder typing the right PIN)."""
        if self.good and not self.enrolled:
            return Reason.NOT_ENROLLED
        return self.entry.expected

    @property
    def summary(self) -> str:
        if self.name == TWIN:
            return "card-001's serial, other root"
        if self.good:
            return "good card" if self.enrolled else "good, NOT enrolled"
        return _SUMMARIES.get(self.name, self.entry.expected.value)

    def tries_left(self) -> int | None:
        if self.entry.kind != "jpki":
            return None
        try:
            return self.card.tries_left()
        except KeyError:
            return None


def desk_cards(manifest: TestPkiManifest, enrolled: set[str], realtime: bool) -> list[DemoCard]:
    timing = TimingModel.nfc() if realtime else TimingModel()
    cards = []
    for letter, entry in zip(LETTERS, manifest.cards, strict=False):
        profile = dataclasses.replace(manifest.load_profile(entry.name), timing=timing)
        cards.append(DemoCard(letter, entry, VirtualJpkiCard(profile), entry.name in enrolled))
    return cards


# -- the rig ---------------------------------------------------------------------------------------


class DemoRig(SimRig):
    """The shared rig with the demo's configuration and cards; see the module doc."""

    def __init__(
        self,
        workdir: Path,
        manifest: TestPkiManifest,
        *,
        timings: DemoTimings = DEMO_TIMINGS,
        realtime: bool = True,
    ) -> None:
        self.workdir = workdir
        self.manifest = manifest
        self.timings = timings
        self.cards = desk_cards(manifest, set(enrolled_names(manifest)), realtime)
        self.by_name = {c.name: c for c in self.cards}
        self.by_letter = {c.letter: c for c in self.cards}
        config = write_demo_config(workdir, manifest, timings)
        super().__init__(config, self.cards[0].card, realtime=realtime)

    @property
    def on_reader(self) -> DemoCard | None:
        on = self.card_on_reader
        return next((c for c in self.cards if c.card is on), None) if on is not None else None

    def tap(self, name: str) -> None:
        """Put card ``name`` on the reader (taking off the one there) until pcscd sees it."""
        self.tap_card(self.by_name[name].card)

    def pin(self, name: str) -> str:
        pin = self.manifest.card(name).pin
        if pin is None:
            raise ValueError(f"{name} has no PIN")
        return pin
