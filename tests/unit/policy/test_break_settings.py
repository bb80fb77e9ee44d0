"""A technician's bad values: each settings class refuses them at construction with a
ValueError naming the field, never a policy that raises or misbehaves at the door."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from terminald.core.policy import (
    AttendanceSettings,
    GateSettings,
    PolicySettings,
    Product,
    VendingSettings,
)

BAD: dict[str, tuple[Callable[[], Any], str]] = {
    # ``age = true`` read as 1: every buyer "at least 1", the age check gone.
    "product age true": (lambda: Product("A", "beer", age=True), "age"),
    "product age 20.5": (lambda: Product("A", "beer", age=20.5), "age"),  # type: ignore[arg-type]
    "product pin 'no'": (lambda: Product("A", "tea", pin="no"), "pin"),  # type: ignore[arg-type]
    "machine age true": (lambda: VendingSettings(machine_age=True), "machine_age"),
    "a product not a Product": (
        lambda: VendingSettings(products=("A",)),  # type: ignore[arg-type]
        "products",
    ),
    # A string is a set of letters: ``person.groups & "office"`` raised TypeError per tap.
    "gate groups a string": (lambda: GateSettings("office"), "groups"),  # type: ignore[arg-type]
    "door groups a string": (
        lambda: AttendanceSettings("keys", "staff"),  # type: ignore[arg-type]
        "door_groups",
    ),
    "door groups an empty name": (
        lambda: AttendanceSettings("keys", frozenset({""})),
        "door_groups",
    ),
    # valid_until + a huge grace overflowed (OverflowError) at every tap.
    "grace beyond reason": (
        lambda: PolicySettings("gate", enrolment_grace=timedelta.max),
        "enrolment_grace",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_refused_naming_the_field(case: str) -> None:
    build, field = BAD[case]
    with pytest.raises(ValueError, match=field):
        build()


def test_good_values_still_pass() -> None:
    Product("A", "beer", age=20, pin=False)
    VendingSettings((Product("A", "beer", age=20),), machine_age=18)
    GateSettings(frozenset({"office"}))
    AttendanceSettings("toggle", frozenset({"staff"}))
    PolicySettings("gate", enrolment_grace=timedelta(days=7))
