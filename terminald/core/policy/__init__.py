"""The terminal's policies (gate, vending, attendance), decided before the PIN.

Pure: no I/O, no clock reads (``now`` comes in), no threads; shared state is locked.
"""

from terminald.core.policy.calendar import HolidayCalendar
from terminald.core.policy.decision import PolicyDecision
from terminald.core.policy.engine import Policy
from terminald.core.policy.passback import Presence
from terminald.core.policy.schedule import allowed, format_period, parse_period
from terminald.core.policy.settings import (
    AttendanceSettings,
    GateSettings,
    PassbackSettings,
    PolicySettings,
    Product,
    VendingSettings,
)
from terminald.core.policy.vending import AgeAnswer, AgeOracle

__all__ = [
    "AgeAnswer",
    "AgeOracle",
    "AttendanceSettings",
    "GateSettings",
    "HolidayCalendar",
    "PassbackSettings",
    "Policy",
    "PolicyDecision",
    "PolicySettings",
    "Presence",
    "Product",
    "VendingSettings",
    "allowed",
    "format_period",
    "parse_period",
]
