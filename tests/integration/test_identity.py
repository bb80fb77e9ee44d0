"""A certificate is (issuer key id, serial): the twin of card-001 through the whole stack.

The test PKI's ``twin`` has card-001's serial, subject and validity under another root
generation (its EF 000A head is card-001's byte for byte), its own key and its own PIN.
Every test here runs the real daemon (``open_daemon``, MockFactory GPIO) or the CLI on
the real pcscd + vpcd, and asserts both the verdict and that no PIN was sent where the
refusal comes before the PIN.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from terminald.core.reasons import Reason
from terminald.daemon.main import StartupError, open_daemon
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.pcscd import READER_0, Pcscd, wait_for_card_state
from terminald.sim.testpki import TestPkiManifest
from terminald.sim.vpcd import VpcdCard
from tests.integration.daemon_rig import GateRig, gate_config, open_rig

pytestmark = pytest.mark.pcscd

VERIFY = b"\x00\x20\x00"
READ_BINARY = b"\x00\xb0"


def verifies(card: VirtualJpkiCard) -> int:
    """VERIFY commands that carry a PIN (the retry query carries none)."""
    return sum(1 for c in card.commands() if c[:3] == VERIFY and len(c) > 5)


def touched_pin(card: VirtualJpkiCard) -> bool:
    """Any VERIFY at all, the retry query included."""
    return any(c[:3] == VERIFY for c in card.commands())


def reads(card: VirtualJpkiCard) -> int:
    return sum(1 for c in card.commands() if c[:2] == READ_BINARY)


def issuer(pki: TestPkiManifest, name: str) -> bytes:
    return bytes.fromhex(pki.card(name).issuer_key_id or "")


@pytest.fixture
def gate_factory(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> Iterator[Callable[[list[str]], GateRig]]:
    rigs: list[GateRig] = []

    def make(enrolled: list[str]) -> GateRig:
        rig = open_rig(gate_config(tmp_path, test_pki, enrolled=enrolled), test_pki)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.stop()
        assert not rig.mock.relay_energised(), "the relay was left energised"


def test_the_test_pki_twin_really_shares_card_001s_serial(test_pki: TestPkiManifest) -> None:
    one, twin = test_pki.card("card-001"), test_pki.card("twin")
    assert one.serial == twin.serial and one.issuer_key_id != twin.issuer_key_id


def test_card_001_enrolled_the_twin_is_not_enrolled_before_any_pin(
    gate_factory: Callable[[list[str]], GateRig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gate = gate_factory(["card-001"])
    twin = gate.tap("twin")
    assert gate.verdict() is Reason.NOT_ENROLLED
    gate.wait_until(lambda: not twin.powered)
    assert not touched_pin(twin), "a refusal by policy must come before any VERIFY"
    assert gate.relay_energised_levels() == [False]
    # The log and the audit trail name the twin's own issuer, and no enrolled label.
    refused = [r.getMessage() for r in caplog.records if "event=refused" in r.getMessage()]
    (line,) = refused
    assert f"issuer={issuer(gate.pki, 'twin').hex()}" in line
    assert f"serial={gate.pki.card('twin').serial}" in line
    assert "label=" not in line
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="refused")
    assert (row.reason, row.issuer_key_id, row.serial, row.label) == (
        "not_enrolled",
        issuer(gate.pki, "twin"),
        gate.pki.card("twin").serial,
        None,
    )


def test_twin_enrolled_card_001_is_not_enrolled_before_any_pin(
    gate_factory: Callable[[list[str]], GateRig],
) -> None:
    gate = gate_factory(["twin"])
    card = gate.tap("card-001")
    assert gate.verdict() is Reason.NOT_ENROLLED
    gate.wait_until(lambda: not card.powered)
    assert not touched_pin(card)
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="refused")
    assert row.issuer_key_id == issuer(gate.pki, "card-001")


@pytest.mark.parametrize(("first", "then"), [("card-001", "twin"), ("twin", "card-001")])
def test_a_cached_card_never_stands_in_for_its_twin(
    gate_factory: Callable[[list[str]], GateRig], first: str, then: str
) -> None:
    """``first`` is enrolled and granted (so its certificate is cached); ``then`` has the
    same serial and the same EF 000A head, and is read in full and judged as itself."""
    gate = gate_factory([first])
    card = gate.tap(first)
    gate.wait_state("pin_entry")
    gate.type(gate.pin(first) + "#")
    assert gate.verdict() is Reason.OK
    gate.wait_until(lambda: not card.powered)
    other = gate.tap(then)
    assert gate.verdict() is Reason.NOT_ENROLLED
    gate.wait_until(lambda: not other.powered)
    assert not touched_pin(other)
    # Head, 32-byte tail (it differs), then the rest of the certificate in one extended
    # read (the rig allows them): the card was read, not recognised.
    assert reads(other) == 3
    assert gate.daemon.audit is not None
    rows = gate.daemon.audit.recent()
    granted = [r for r in rows if r.kind == "granted"]
    refused = [r for r in rows if r.kind == "refused"]
    assert [(r.issuer_key_id, r.label) for r in granted] == [(issuer(gate.pki, first), first)]
    assert [(r.issuer_key_id, r.label) for r in refused] == [(issuer(gate.pki, then), None)]
    assert gate.relay_pulses() and len(gate.relay_pulses()) == 1


def test_the_refused_twin_in_the_cache_does_not_stand_in_for_the_enrolled_card(
    gate_factory: Callable[[list[str]], GateRig],
) -> None:
    """The twin is refused (its verified certificate is cached all the same); card-001
    after it is read, passes with its own PIN and is logged under its own label."""
    gate = gate_factory(["card-001"])
    twin = gate.tap("twin")
    assert gate.verdict() is Reason.NOT_ENROLLED
    gate.wait_until(lambda: not twin.powered)
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK
    gate.wait_until(lambda: not card.powered)
    assert reads(card) == 3  # head, tail (the twin's differs), the rest: not the twin's
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="granted")
    assert (row.issuer_key_id, row.label) == (issuer(gate.pki, "card-001"), "card-001")
    assert row.evidence is not None
    assert row.evidence[2] == gate.pki.load_profile("card-001").auth_cert


def test_both_enrolled_each_twin_gets_its_own_label_cached_or_not(
    gate_factory: Callable[[list[str]], GateRig], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    gate = gate_factory(["card-001", "twin"])
    order = ["card-001", "twin", "card-001", "twin"]  # the last two are served from cache
    for name in order:
        card = gate.tap(name)
        gate.wait_state("pin_entry")
        gate.type(gate.pin(name) + "#")
        assert gate.verdict() is Reason.OK, name
        gate.wait_until(lambda card=card: not card.powered)  # type: ignore[misc]
        assert verifies(card) == 1
    granted = [r.getMessage() for r in caplog.records if "event=granted" in r.getMessage()]
    assert len(granted) == 4
    for name, line in zip(order, granted, strict=True):
        assert f"issuer={issuer(gate.pki, name).hex()}" in line
        assert f"label={name} " in line + " "
    assert gate.daemon.audit is not None
    rows = gate.daemon.audit.recent(kind="granted")
    assert [(r.issuer_key_id, r.serial, r.label) for r in rows] == [
        (issuer(gate.pki, n), gate.pki.card(n).serial, n) for n in order
    ]
    # Each grant's evidence is the card's own certificate.
    for name, row in zip(order, rows, strict=True):
        assert row.evidence is not None
        assert row.evidence[2] == gate.pki.load_profile(name).auth_cert


def test_the_twin_with_a_wrong_pin_is_its_own_wrong_pin(
    gate_factory: Callable[[list[str]], GateRig],
) -> None:
    """Both enrolled: card-001's PIN typed on the twin is a wrong PIN for the twin only."""
    gate = gate_factory(["card-001", "twin"])
    card = gate.tap("card-001")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")
    assert gate.verdict() is Reason.OK
    gate.wait_until(lambda: not card.powered)
    twin = gate.tap("twin")
    gate.wait_state("pin_entry")
    gate.type(gate.pin("card-001") + "#")  # test_testpki holds that the PINs differ
    assert gate.verdict() is Reason.PIN_WRONG
    gate.wait_until(lambda: not twin.powered)
    assert twin.tries_left() == 2
    assert gate.daemon.audit is not None
    (row,) = gate.daemon.audit.recent(kind="refused")
    assert (row.issuer_key_id, row.label) == (issuer(gate.pki, "twin"), "twin")


def test_the_daemon_refuses_to_start_on_an_entry_without_its_issuer(
    tmp_path: Path, test_pki: TestPkiManifest, pcscd: Pcscd
) -> None:
    config = gate_config(tmp_path, test_pki, enrolled=[])
    serial = test_pki.card("card-001").serial
    (tmp_path / "enrolled.toml").write_text(f'[[card]]\nserial = {serial}\nlabel = "alice"\n')
    with pytest.raises(StartupError) as info:
        open_daemon(config)
    text = " ".join(info.value.messages)
    assert f"card[0].issuer (serial {serial}, label 'alice'): missing" in text
    assert "`terminald auth`" in text
    done = subprocess.run(
        [sys.executable, "-m", "terminald", "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"card[0].issuer (serial {serial}, label 'alice'): missing" in done.stderr
    assert "`terminald cert show FILE`" in done.stderr
    assert "Traceback" not in done.stderr


def _cli_auth(pki: TestPkiManifest, pin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "terminald",
            "auth",
            "--trust",
            str(pki.trust_dir),
            "--pin-stdin",
            "--wait",
            "10",
        ],
        input=pin + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", ["card-001", "twin"])
def test_cli_auth_prints_the_pair_in_its_human_output(
    test_pki: TestPkiManifest, vpcd_card: Callable[..., VpcdCard], name: str
) -> None:
    slot = vpcd_card(VirtualJpkiCard(test_pki.load_profile(name)))
    entry = test_pki.card(name)
    done = _cli_auth(test_pki, entry.pin or "")
    assert done.returncode == 0, done.stderr
    assert f"Card: issuer {entry.issuer_key_id} serial {entry.serial}, valid until" in done.stdout
    assert "Verdict: ok" in done.stdout
    slot.stop()
    assert wait_for_card_state(READER_0, False, 5)


def test_cli_auth_prints_the_pair_when_refused_before_the_pin(
    test_pki: TestPkiManifest, vpcd_card: Callable[..., VpcdCard]
) -> None:
    card = VirtualJpkiCard(test_pki.load_profile("expired"))
    slot = vpcd_card(card)
    entry = test_pki.card("expired")
    done = _cli_auth(test_pki, "")
    assert done.returncode == 1, done.stderr
    assert f"Card: issuer {entry.issuer_key_id} serial {entry.serial}" in done.stdout
    assert "Verdict: cert_expired" in done.stdout
    assert not touched_pin(card)
    slot.stop()
    assert wait_for_card_state(READER_0, False, 5)


def test_sim_pki_generates_the_twin_and_sim_card_serves_it(pcscd: Pcscd, tmp_path: Path) -> None:
    """`terminald sim pki --out DIR` then `terminald sim card twin --pki DIR`."""
    import json
    import signal

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "terminald", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    built = cli("sim", "pki", "--out", str(tmp_path / "pki"), "--cards", "1")
    assert built.returncode == 0, built.stderr
    assert any(line.split()[:1] == ["twin"] for line in built.stdout.splitlines())
    pki = TestPkiManifest.load(tmp_path / "pki")
    twin, one = pki.card("twin"), pki.card("card-001")
    assert twin.serial == one.serial and twin.issuer_key_id != one.issuer_key_id
    card = subprocess.Popen(
        [sys.executable, "-m", "terminald", "sim", "card", "twin", "--pki", str(pki.directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_card_state(READER_0, True, 10)
        done = cli(
            "auth", "--trust", str(pki.trust_dir), "--pin-stdin", "--json", "--wait", "10",
            stdin=(twin.pin or "") + "\n",
        )  # fmt: skip
    finally:
        card.send_signal(signal.SIGTERM)
        card.communicate(timeout=10)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert (verdict["verdict"], verdict["issuer_key_id"], verdict["serial"]) == (
        "ok",
        twin.issuer_key_id,
        twin.serial,
    )
    assert wait_for_card_state(READER_0, False, 5)
