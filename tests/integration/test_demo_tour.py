"""The demo's scripted tour against the real gate daemon, pcscd and vpcd.

The tour (``terminald sim demo --tour``) runs in-process here on the suite's own pcscd:
the rig sees pcscd already listing the vpcd reader and does not start a second one
(one pcscd per sandbox: its socket path is fixed). Every step must reach the verdict,
alarm or relay pulse it promises a newcomer.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from terminald.core.reasons import Reason
from terminald.sim.checks import wait_pin_prompt, wait_verdict
from terminald.sim.demo_rig import TOUR_TIMINGS, DemoRig, enrolled_names
from terminald.sim.demo_tour import run_tour
from terminald.sim.demo_ui import Watches, build_view, plain, render
from terminald.sim.pcscd import Pcscd
from terminald.sim.testpki import TestPkiManifest

pytestmark = pytest.mark.pcscd

EXPECTED: dict[str, Reason | None] = {
    "A good card and its PIN": Reason.OK,
    "A mistyped PIN": Reason.PIN_WRONG,
    "A good card that is not enrolled here": Reason.NOT_ENROLLED,
    "The same serial from another root": Reason.NOT_ENROLLED,
    "One PIN try left": Reason.PIN_TRIES_LOW,
    "A blocked PIN": Reason.PIN_BLOCKED,
    "A face-authentication card": Reason.FACE_AUTH_CARD,
    "Some other smart card": Reason.NOT_JPKI_CARD,
    "An expired certificate": Reason.CERT_EXPIRED,
    "A certificate not yet valid": Reason.CERT_NOT_YET_VALID,
    "A certificate for another use": Reason.CERT_WRONG_USAGE,
    "A damaged certificate signature": Reason.CERT_SIGNATURE_INVALID,
    "A forged issuer": Reason.CERT_SIGNATURE_INVALID,
    "An unknown issuer": Reason.UNKNOWN_ISSUER,
    "No PIN in time": Reason.PIN_TIMEOUT,
    "The card pulled during PIN entry": Reason.CARD_REMOVED,
    "Request to exit": None,
    "The door forced open": None,
    "The door held open": None,
    "Tamper": None,
    "Lockdown": Reason.LOCKDOWN,
    "Emergency open": Reason.EMERGENCY_OPEN,
}


def test_the_tour_shows_every_outcome(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    out = io.StringIO()
    rig = DemoRig(tmp_path, test_pki, timings=TOUR_TIMINGS, realtime=False)
    with rig:
        assert rig.pcscd is None, "the demo started a second pcscd beside the suite's"
        results = run_tour(rig, out)
        assert not rig.relay_energised(), "the tour left the door released"
        offered = [c.name for c in rig.cards]  # what the screen offers, one letter each
    text = out.getvalue()
    failed = [f"{r.title}: {r.observed}" for r in results if not r.ok]
    assert not failed, text
    assert {r.title: r.reason for r in results} == EXPECTED, text
    # Every card on the desk has its own step, and its verdict is the one the test PKI
    # promises for it (independent of the daemon): nothing the screen offers is skipped.
    assert sorted(r.card for r in results if r.card) == sorted(offered)
    promised = {c.name: c.expected for c in test_pki.cards}
    promised.update({"card-002": Reason.PIN_WRONG, "card-003": Reason.NOT_ENROLLED})
    promised["twin"] = Reason.NOT_ENROLLED
    assert {r.card: r.reason for r in results if r.card} == {n: promised[n] for n in offered}
    assert f"{len(EXPECTED)}/{len(EXPECTED)} steps as expected" in text

    open_s = TOUR_TIMINGS.open_ms / 1000
    by_title = {r.title: r for r in results}
    for title in ("A good card and its PIN", "Request to exit", "Lockdown"):
        pulse = by_title[title].pulse_s
        assert pulse is not None and open_s <= pulse < open_s + 0.25, (title, pulse)
    assert "relay RELEASED" in by_title["A good card and its PIN"].observed
    assert "PIN tries left 2" in by_title["A mistyped PIN"].observed
    assert "relay stayed LOCKED" in by_title["A good card that is not enrolled here"].observed
    # The daemon's own log lines are shown, and no PIN is in them.
    assert "event=granted reason=ok" in text
    pin = test_pki.card("card-001").pin
    assert pin is not None
    assert not [line for line in text.splitlines() if "log " in line and pin in line]


def test_the_demo_enrols_all_but_one_good_card(test_pki: TestPkiManifest) -> None:
    names = enrolled_names(test_pki)
    assert "card-001" in names and "card-002" in names and "card-003" not in names
    assert "non-jpki" not in names  # no certificate, no serial


def test_the_screen_clears_the_verdict_on_a_new_card_and_shows_its_state_dir(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    rig = DemoRig(tmp_path, test_pki, timings=TOUR_TIMINGS, realtime=False)
    with rig:
        watches = Watches.of(rig)
        since = rig.observer.mark()
        rig.tap("card-001")
        wait_pin_prompt(rig, since)
        rig.type(rig.pin("card-001") + "#")
        assert wait_verdict(rig, since).reason is Reason.OK
        assert build_view(rig, watches, "", False).verdict == ("granted ok", True)
        since = rig.observer.mark()
        rig.tap("card-002")  # the holder of another card steps up
        wait_pin_prompt(rig, since)
        view = build_view(rig, watches, "", False)
        assert view.snapshot.state == "pin_entry"
        assert view.verdict is None, "the last person's verdict stayed on the screen"
        screen = "\n".join(plain(render(view, 80, 24)))
        assert "verdict  -" in screen
        # The state directory shown is the daemon's own, where its audit trail lives.
        assert Path(view.state_dir) == tmp_path / "state"
        assert (Path(view.state_dir) / "audit.sqlite").is_file()
        assert f"state dir {tmp_path / 'state'}" in screen
        rig.type("*")
        rig.remove()
        assert wait_verdict(rig, since).reason in (Reason.PIN_CANCELLED, Reason.CARD_REMOVED)
        assert build_view(rig, watches, "", False).verdict is not None
