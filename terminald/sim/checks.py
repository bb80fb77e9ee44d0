"""Reading what the daemon did, for the demo's tour and the scenario runner alike.

Each helper waits on the rig's eyes (the daemon's records, its snapshot, the mock pins)
for a bounded time and raises ``StepFailed`` with what it saw instead, so a step can
report it in words rather than a traceback.
"""

from __future__ import annotations

from collections.abc import Callable

from terminald.core.commands import AlarmChanged, Record
from terminald.sim.rig import Item, SimRig, wait_until

CARD_WAIT_S = 15.0  # a tap to its verdict, with the NFC timing model and a full read


class StepFailed(Exception):
    """What a step saw instead of what it expected."""


def record_kind(kind: str, detail: str | None = None) -> Callable[[Item], bool]:
    def match(item: Item) -> bool:
        return (
            isinstance(item, Record)
            and item.kind == kind
            and (detail is None or detail in item.detail)
        )

    return match


def alarm_change(alarm: str, active: bool) -> Callable[[Item], bool]:
    def match(item: Item) -> bool:
        return isinstance(item, AlarmChanged) and item.alarm == alarm and item.active == active

    return match


def wait_item(
    rig: SimRig, match: Callable[[Item], bool], since: int, timeout: float, what: str
) -> Item:
    item = rig.observer.wait_for(match, since, timeout)
    if item is None:
        raise StepFailed(f"no {what} within {timeout:g} s")
    return item


def wait_record(
    rig: SimRig, kind: str, since: int, timeout: float, detail: str | None = None
) -> Record:
    item = wait_item(rig, record_kind(kind, detail), since, timeout, f"{kind} record")
    assert isinstance(item, Record)
    return item


def wait_alarm(rig: SimRig, alarm: str, active: bool, since: int, timeout: float) -> None:
    what = f"{alarm} alarm" + ("" if active else " cleared")
    wait_item(rig, alarm_change(alarm, active), since, timeout, what)


def wait_verdict(rig: SimRig, since: int, timeout: float = CARD_WAIT_S) -> Record:
    record = rig.observer.verdict(since, timeout)
    if record is None or record.reason is None:
        raise StepFailed(f"no verdict within {timeout:g} s")
    return record


def wait_pin_prompt(rig: SimRig, since: int, timeout: float = CARD_WAIT_S) -> None:
    """Until the daemon asks for the PIN; a verdict first (a refusal) fails the step."""

    def prompted() -> bool:
        return (
            rig.the_daemon.snapshot().state == "pin_entry"
            or rig.observer.verdict(since, 0) is not None
        )

    if not wait_until(prompted, timeout):
        raise StepFailed("no PIN prompt")
    early = rig.observer.verdict(since, 0)
    if early is not None and early.reason is not None:
        raise StepFailed(f"{early.kind} {early.reason.value} before the PIN prompt")


def wait_pulse(rig: SimRig, relay_mark: int, open_s: float) -> float:
    """The relay pulse that began after ``relay_mark``: wait for it to end."""
    if not wait_until(lambda: bool(rig.relay_pulses(relay_mark)), open_s + 3):
        state = "released" if rig.relay_energised() else "locked"
        raise StepFailed(f"no complete relay pulse (relay {state})")
    return rig.relay_pulses(relay_mark)[0]


def led_text(rig: SimRig) -> str:
    """The lit LEDs, e.g. ``LED green``, waiting briefly for feedback to light one."""
    mock = rig.mock
    lit: list[str] = []

    def any_lit() -> bool:
        lit[:] = [c for c in ("green", "red", "amber") if mock.led_lit(c)]
        return bool(lit)

    wait_until(any_lit, 0.7)
    return "LED " + ("+".join(lit) if lit else "off")


def still_locked(rig: SimRig, relay_mark: int) -> str:
    if rig.relay_energised() or rig.relay_pulses(relay_mark):
        raise StepFailed("the relay moved")
    return "relay stayed LOCKED"
