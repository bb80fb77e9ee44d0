"""The demo configuration: the template in ``systemd/``, the demo's enrolled cards, its state.

Light on purpose (no daemon, no GPIO): ``terminald sim pki`` uses it to leave a test PKI
directory ready for ``systemd/terminald-demo.toml`` copied into it (``write_demo_files``:
``enrolled.toml`` and ``state/``), and ``demo_rig`` to write the demo's own copy
(``write_demo_config``). The scenario runner reuses ``demo_config_text`` and
``enrolled_toml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import terminald
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.twin import TWIN

DEMO_CONFIG = Path(terminald.__file__).resolve().parent.parent / "systemd" / "terminald-demo.toml"
GOOD = "card-001"  # the tour's good card: enrolled, its holder knows the PIN
MISTYPED = "card-002"  # an enrolled card whose holder mistypes the PIN in the tour
NOT_ENROLLED_CARD = "card-003"  # a good card the demo deliberately leaves out of enrolled.toml
ENROLLED_HEADER = (
    "The demo's enrolled cards; card-003 and the twin are left out on purpose "
    "(and unknown-issuer: no trusted root issued it)."
)
# What the demo's own copy says instead of the template's how-to-copy-me comment.
WRITTEN_HEADER = """\
# terminald demo configuration, written by `terminald sim demo` from
# systemd/terminald-demo.toml with the demo's timings and its test PKI's trust directory.
# Beside it: enrolled.toml (who may pass) and state/ (the audit trail, the trusted time).
# It lives in a temporary directory that is deleted when the demo stops.
"""


@dataclass(frozen=True)
class DemoTimings:
    """What the demo changes in the demo configuration (every value within its limits)."""

    pin_timeout_s: float = 30.0
    open_ms: int = 3000
    held_open_s: float = 15.0


DEMO_TIMINGS = DemoTimings()  # a person at the screen
TOUR_TIMINGS = DemoTimings(pin_timeout_s=5.0, open_ms=1000, held_open_s=1.0)


def enrolled_names(manifest: TestPkiManifest) -> list[str]:
    """Every card whose certificate names a trusted root, but one good card and the twin
    (card-001's serial under another root: enrolling card-001 must not let it in).

    A broken card is enrolled too, so that what refuses it is its certificate; a card of
    an untrusted root is not (no root of this terminal could ever let it pass).
    """
    left_out = (NOT_ENROLLED_CARD, TWIN)
    trusted = {root.key_id for root in manifest.roots if root.purpose == "user_auth"}
    return [
        c.name
        for c in manifest.cards
        if c.serial is not None and c.issuer_key_id in trusted and c.name not in left_out
    ]


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


def write_demo_files(directory: Path, manifest: TestPkiManifest) -> None:
    """What the demo configuration names beside it: ``enrolled.toml`` and ``state/``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state").mkdir(mode=0o700, exist_ok=True)
    text = enrolled_toml(manifest, enrolled_names(manifest), ENROLLED_HEADER)
    (directory / "enrolled.toml").write_text(text)


def write_demo_config(
    directory: Path,
    manifest: TestPkiManifest,
    timings: DemoTimings,
    template: Path = DEMO_CONFIG,
) -> Path:
    """The demo configuration, its enrolled.toml and state/ in ``directory``; returns the
    configuration's path."""
    text = demo_config_text(manifest, timings, template)
    body = re.sub(r"\A(#[^\n]*\n)+", "", text)  # the template's own how-to comment
    write_demo_files(directory, manifest)
    path = directory / "terminald.toml"
    path.write_text(WRITTEN_HEADER + body)
    return path
