"""What a configuration's policy is made of (daemon/policy_wiring.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from terminald.config import config_from_dict
from terminald.core.policy import AgeAnswer
from terminald.daemon.policy_wiring import PolicyShared, build_policy
from terminald.enrolment.model import AgeAttestation
from terminald.store.enrolment_db import EnrolmentStore


def config(tmp_path: Path, purpose: str, policy: str) -> object:
    return config_from_dict(
        {
            "terminal": {"id": "t1", "purpose": purpose},
            "revocation": {"required": False},
            "gpio": {"board": "rpi4"},
            "state": {"dir": str(tmp_path)},
            "access": {"policy": policy},
        }
    )


def test_a_public_vending_machine_keeps_the_back_offices_yeses(tmp_path: Path) -> None:
    parts, problems = build_policy(
        config(tmp_path, "vend", "any_card"),
        PolicyShared(),
        None,
        check_only=False,  # type: ignore[arg-type]
    )
    assert problems == [] and parts is not None and parts.store is not None
    parts.store.remember_age_yes(b"\x01" * 20, 7, AgeAttestation(20, date(2026, 11, 30)))
    again = EnrolmentStore(tmp_path / "enrolment.sqlite")  # after a restart
    assert again.age_yes(b"\x01" * 20, 7) == (AgeAttestation(20, date(2026, 11, 30)),)


def test_a_gate_open_to_any_card_opens_no_store(tmp_path: Path) -> None:
    parts, _ = build_policy(
        config(tmp_path, "gate", "any_card"),
        PolicyShared(),
        None,
        check_only=False,  # type: ignore[arg-type]
    )
    assert parts is not None and parts.store is None and parts.enrolment is None
    assert not (tmp_path / "enrolment.sqlite").exists()


def test_the_age_service_is_asked_through_the_shared_slot(tmp_path: Path) -> None:
    shared = PolicyShared()
    assert shared.age_oracle(b"\x01", 1, 20, date(2026, 11, 30)) is None  # no link yet
    shared.ask = lambda issuer, serial, age, today: AgeAnswer("valid", True)
    assert shared.age_oracle(b"\x01", 1, 20, date(2026, 11, 30)) == AgeAnswer("valid", True)
