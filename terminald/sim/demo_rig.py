"""The demo's rig: the shared ``SimRig`` with the demo's configuration and desk of cards.

``DemoRig`` writes, in a temporary directory, the demo configuration
(``systemd/terminald-demo.toml``, copied with the test PKI's trust directory and the
demo's timings) and an ``enrolled.toml`` that enrols every test card with a serial
except one good card (so a refusal for "not enrolled" can be shown). It then runs the
gate daemon on the shared rig (``rig.SimRig``: pcscd, the vpcd slot, the daemon on mock
GPIO) and names its cards by test-PKI name and by a letter for the curses UI. The
scenario runner reuses the configuration pieces (``demo_config_text``, ``enrolled_toml``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import terminald
from terminald.core.reasons import Reason
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.profile import TimingModel
from terminald.sim.rig import SimRig
from terminald.sim.testpki import CardEntry, TestPkiManifest
from terminald.sim.twin import TWIN

DEMO_CONFIG = Path(terminald.__file__).resolve().parent.parent / "systemd" / "terminald-demo.toml"
GOOD = "card-001"  # the tour's good card: enrolled, its holder knows the PIN
MISTYPED = "card-002"  # an enrolled card whose holder mistypes the PIN in the tour
NOT_ENROLLED_CARD = "card-003"  # a good card the demo deliberately leaves out of enrolled.toml
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


# -- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoTimings:
    """What the demo changes in the demo configuration (every value within its limits)."""

    pin_timeout_s: float = 30.0
    open_ms: int = 3000
    held_open_s: float = 15.0


TOUR_TIMINGS = DemoTimings(pin_timeout_s=5.0, open_ms=1000, held_open_s=1.0)


def enrolled_names(manifest: TestPkiManifest) -> list[str]:
    """Every card whose certificate has a serial, but one good card and the twin (card-001's
    serial under another root: enrolling card-001 must not let it in)."""
    left_out = (NOT_ENROLLED_CARD, TWIN)
    return [c.name for c in manifest.cards if c.serial is not None and c.name not in left_out]


def enrolled_toml(manifest: TestPkiManifest, names: list[str], header: str) -> str:
    """An enrolled-cards file for the test-PKI cards ``names``: serial AND issuer key id.

    Serials are unique only per issuer, so every entry names both (KeyError for a name
    the manifest lacks, ValueError for a card without a certificate).
    """
    lines = [f"# {header}"]
    for name in names:
        card = manifest.card(name)
        if card.serial is None or card.issuer_key_id is None:
            raise ValueError(f"{name} has no user-authentication certificate to enrol")
        lines += [
            "",
            "[[card]]",
            f"serial = {card.serial}",
            f'issuer = "{card.issuer_key_id}"',
            f'label = "{name}"',
        ]
    return "\n".join(lines) + "\n"


def _set_key(text: str, key: str, value: str) -> str:
    pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"{DEMO_CONFIG}: expected one `{key} = ...` line")
    return pattern.sub(lambda _m: f"{key} = {value}", text)


def demo_config_text(
    manifest: TestPkiManifest, timings: DemoTimings, template: Path = DEMO_CONFIG
) -> str:
    """The demo configuration trusting ``manifest``'s roots, with ``timings``."""
    try:
        text = template.read_text()
    except OSError as exc:
        raise FileNotFoundError(
            f"the demo configuration {template} is missing: run the demo from the source tree"
        ) from exc
    trust = str(manifest.trust_dir.absolute()).replace("\\", "\\\\").replace('"', '\\"')
    text = _set_key(text, "anchors", f'["{trust}"]')
    text = _set_key(text, "pin_timeout_s", repr(float(timings.pin_timeout_s)))
    text = _set_key(text, "open_ms", str(int(timings.open_ms)))
    return _set_key(text, "held_open_s", repr(float(timings.held_open_s)))


def write_demo_config(
    directory: Path,
    manifest: TestPkiManifest,
    timings: DemoTimings,
    template: Path = DEMO_CONFIG,
) -> Path:
    """The demo configuration and its enrolled.toml in ``directory``; returns the config."""
    text = demo_config_text(manifest, timings, template)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state").mkdir(exist_ok=True)
    header = "The demo's enrolled cards; one good card is left out on purpose."
    (directory / "enrolled.toml").write_text(
        enrolled_toml(manifest, enrolled_names(manifest), header)
    )
    path = directory / "terminald.toml"
    path.write_text(text)
    return path


# -- the rig ---------------------------------------------------------------------------------------


class DemoRig(SimRig):
    """The shared rig with the demo's configuration and cards; see the module doc."""

    def __init__(
        self,
        workdir: Path,
        manifest: TestPkiManifest,
        *,
        timings: DemoTimings = DemoTimings(),
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
