"""Settings validate themselves: a bad value is a ValueError naming it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, time, timedelta
from typing import Any

import pytest

from terminald.core.policy import (
    AttendanceSettings,
    GateSettings,
    PassbackSettings,
    PolicySettings,
    Product,
    VendingSettings,
)


def test_defaults_are_safe() -> None:
    settings = PolicySettings("gate")
    assert settings.enrolment_required and settings.timezone.key == "Asia/Tokyo"
    assert Product("A", "beer", 20).pin  # PIN-less only when the operator says so
    assert AttendanceSettings().door_groups == frozenset()


BAD: list[tuple[Callable[[], Any], str]] = [
    (lambda: PolicySettings("door"), "purpose"),
    (lambda: PolicySettings("gate", timezone=UTC), "timezone"),  # type: ignore[arg-type]
    (lambda: PolicySettings("gate", enrolment_grace=timedelta(-1)), "enrolment_grace"),
    (lambda: PassbackSettings("inside", "gate-out"), "role"),
    (lambda: PassbackSettings("entry", ""), "partner"),
    (lambda: PassbackSettings("entry", "b", when_unreachable="maybe"), "when_unreachable"),
    (lambda: PassbackSettings("entry", "b", partner_timeout_s=0), "partner_timeout_s"),
    (lambda: PassbackSettings("entry", "b", reset=time(3, tzinfo=UTC)), "reset"),
    (lambda: GateSettings(frozenset({""})), "groups"),
    (lambda: Product("E", "beer"), "key"),
    (lambda: Product("A", ""), "name"),
    (lambda: Product("A", "beer", age=0), "age"),
    (lambda: Product("A", "beer", age=200), "age"),
    (lambda: VendingSettings((Product("A", "x"), Product("A", "y"))), "twice"),
    (lambda: VendingSettings(machine_age=-1), "machine_age"),
    (lambda: AttendanceSettings("punch"), "mode"),
]


@pytest.mark.parametrize(("build", "names"), BAD)
def test_a_bad_setting_names_itself(build: Callable[[], Any], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        build()
