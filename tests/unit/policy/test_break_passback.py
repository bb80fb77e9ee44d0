"""Attacks on anti-passback: relayed passages and heartbeats dated in the future.

The partner's passages and heartbeats carry the partner's (or the host's) clock. One
dated ahead of ours — a partner whose clock jumped, or a relay that lies — must not
decide anything about now: a future exit otherwise admitted the same card at the entry
again and again (our own entries, older than it, were dropped), and a future entry
locked a person out past every daily reset.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from terminald.core.policy.passback import MAX_CLOCK_AHEAD, Presence
from terminald.core.policy.settings import PassbackSettings
from terminald.core.reasons import Reason

from .support import TOKYO, jst

ENTRY = PassbackSettings("entry", "gate-out", reset=time(3, 0), partner_timeout_s=30)
HERE = ""
NOW = jst(2026, 11, 30, 9)


def heard(presence: Presence, at: datetime) -> None:
    presence.partner_seen("gate-out", at - timedelta(seconds=1))


def test_a_future_relayed_exit_does_not_let_the_card_in_again_and_again() -> None:
    presence = Presence()
    presence.passed("E1", "exit", NOW + timedelta(days=365), "gate-out")  # a lying relay
    heard(presence, NOW)
    assert presence.check("E1", ENTRY, NOW, TOKYO)[0] is Reason.OK  # as if never seen
    presence.passed("E1", "entry", NOW, HERE)  # our grant
    later = NOW + timedelta(minutes=1)
    heard(presence, later)
    reason, detail, _ = presence.check("E1", ENTRY, later, TOKYO)
    assert reason is Reason.ANTI_PASSBACK, detail  # the card passed back is refused


def test_a_future_relayed_entry_does_not_lock_the_person_out_past_the_reset() -> None:
    presence = Presence()
    presence.passed("E1", "entry", NOW + timedelta(days=30), "gate-out")
    tomorrow = NOW + timedelta(days=1)
    heard(presence, tomorrow)
    assert presence.check("E1", ENTRY, tomorrow, TOKYO)[0] is Reason.OK


def test_a_passage_a_little_ahead_still_counts() -> None:
    """Clocks of two terminals differ by seconds: a partner's exit a moment "in the
    future" is still that exit."""
    presence = Presence()
    presence.passed("E1", "entry", NOW - timedelta(hours=1), HERE)
    presence.passed("E1", "exit", NOW + MAX_CLOCK_AHEAD, "gate-out")
    heard(presence, NOW)
    assert presence.check("E1", ENTRY, NOW, TOKYO)[0] is Reason.OK
    presence.passed("E1", "entry", NOW - timedelta(hours=1), HERE)
    assert presence.last("E1") is not None
    assert presence.last("E1").direction == "exit"  # type: ignore[union-attr]


def test_a_heartbeat_from_the_future_does_not_make_the_partner_reachable() -> None:
    """A heartbeat dated ahead kept the partner "reachable" for as long as the skew:
    with ``when_unreachable = "admit"`` a person whose exit we never heard of was then
    refused ``anti_passback`` (a lock-out that says the wrong thing)."""
    presence = Presence()
    presence.partner_seen("gate-out", NOW + timedelta(days=1))
    assert not presence.reachable(ENTRY, NOW + timedelta(hours=1))
    presence.passed("E1", "entry", NOW - timedelta(hours=1), HERE)
    reason, _, attrs = presence.check("E1", ENTRY, NOW, TOKYO)
    assert reason is Reason.OK and attrs == (("passback_check", "unverified"),)


def test_a_fresh_heartbeat_after_a_future_one_counts() -> None:
    presence = Presence()
    presence.partner_seen("gate-out", NOW + timedelta(days=1))
    presence.partner_seen("gate-out", NOW - timedelta(seconds=1))
    assert presence.reachable(ENTRY, NOW)


@given(
    ahead=st.timedeltas(
        min_value=MAX_CLOCK_AHEAD + timedelta(seconds=1), max_value=timedelta(days=3650)
    ),
    direction=st.sampled_from(["entry", "exit"]),
)
def test_whatever_a_future_passage_says_a_second_entry_here_is_refused(
    ahead: timedelta, direction: str
) -> None:
    presence = Presence()
    presence.passed("E1", direction, NOW + ahead, "gate-out")
    heard(presence, NOW)
    if presence.check("E1", ENTRY, NOW, TOKYO)[0] is Reason.OK:
        presence.passed("E1", "entry", NOW, HERE)
    later = NOW + timedelta(seconds=5)
    heard(presence, later)
    assert presence.check("E1", ENTRY, later, TOKYO)[0] is Reason.ANTI_PASSBACK


def test_after_the_clock_is_set_back_passages_count_again() -> None:
    """Found: a check while the clock ran a day ahead swept at tomorrow's reset and then
    dropped every passage dated before it, ours included, once the clock was corrected:
    anti-passback was off (everyone "not seen") until the wrong reset time came round."""
    presence = Presence()
    heard(presence, NOW + timedelta(days=1))
    presence.check("E9", ENTRY, NOW + timedelta(days=1), TOKYO)  # the clock a day ahead
    heard(presence, NOW)
    assert presence.check("E1", ENTRY, NOW, TOKYO)[0] is Reason.OK  # corrected
    presence.passed("E1", "entry", NOW, HERE)
    later = NOW + timedelta(minutes=1)
    heard(presence, later)
    assert presence.check("E1", ENTRY, later, TOKYO)[0] is Reason.ANTI_PASSBACK
