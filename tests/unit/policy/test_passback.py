"""Anti-passback: entry twice, the partner's relayed exit, the daily reset, an unreachable
partner, bounded memory."""

from __future__ import annotations

import random
import threading
from datetime import datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.core.policy.passback import Presence, last_reset
from terminald.core.policy.settings import PassbackSettings
from terminald.core.reasons import Reason

from .support import TOKYO, jst

ENTRY = PassbackSettings("entry", "gate-out", reset=time(3, 0), partner_timeout_s=30)
EXIT = PassbackSettings("exit", "gate-in", reset=time(3, 0), partner_timeout_s=30)
HERE = ""  # our own passages' source (anything but the partner's id)


def reachable(presence: Presence, partner: str, now: datetime) -> None:
    presence.partner_seen(partner, now - timedelta(seconds=1))


def test_a_subject_never_seen_passes() -> None:
    presence = Presence()
    assert presence.check("E1", ENTRY, jst(2026, 11, 30, 9), TOKYO) == (Reason.OK, "", ())


def test_entry_twice_is_refused() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 9)
    reachable(presence, "gate-out", now)
    presence.passed("E1", "entry", now, HERE)
    reachable(presence, "gate-out", now + timedelta(minutes=1))
    reason, detail, attrs = presence.check("E1", ENTRY, now + timedelta(minutes=1), TOKYO)
    assert reason is Reason.ANTI_PASSBACK and "entry" in detail and attrs == ()
    # Another subject is not affected.
    assert presence.check("E2", ENTRY, now, TOKYO)[0] is Reason.OK


def test_entry_then_the_partners_relayed_exit_then_entry_is_admitted() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 9)
    reachable(presence, "gate-out", now)
    presence.passed("E1", "entry", now, HERE)
    presence.passed("E1", "exit", now + timedelta(hours=8), "gate-out")
    later = now + timedelta(hours=9)
    reachable(presence, "gate-out", later)
    assert presence.check("E1", ENTRY, later, TOKYO)[0] is Reason.OK


def test_the_exit_terminal_refuses_an_exit_relayed_from_itself_only() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 18)
    reachable(presence, "gate-in", now)
    presence.passed("E1", "entry", now - timedelta(hours=9), "gate-in")  # relayed
    assert presence.check("E1", EXIT, now, TOKYO)[0] is Reason.OK
    presence.passed("E1", "exit", now, HERE)
    assert presence.check("E1", EXIT, now + timedelta(seconds=5), TOKYO)[0] is Reason.ANTI_PASSBACK


def test_a_late_relay_older_than_what_we_know_changes_nothing() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 9)
    reachable(presence, "gate-out", now)
    presence.passed("E1", "entry", now, HERE)
    presence.passed("E1", "exit", now - timedelta(hours=1), "gate-out")  # before our entry
    reachable(presence, "gate-out", now + timedelta(minutes=1))
    assert presence.check("E1", ENTRY, now + timedelta(minutes=1), TOKYO)[0] is Reason.ANTI_PASSBACK


def test_the_daily_reset_forgets_passages_before_it() -> None:
    presence = Presence()
    evening = jst(2026, 11, 30, 22)
    presence.passed("E1", "entry", evening, HERE)
    presence.passed("E2", "entry", jst(2026, 12, 1, 3, 0), HERE)  # exactly at the reset
    just_before = jst(2026, 12, 1, 2, 59, 59)
    reachable(presence, "gate-out", just_before)
    assert presence.check("E1", ENTRY, just_before, TOKYO)[0] is Reason.ANTI_PASSBACK
    after = jst(2026, 12, 1, 3, 0, 1)
    reachable(presence, "gate-out", after)
    assert presence.check("E1", ENTRY, after, TOKYO)[0] is Reason.OK
    assert presence.check("E2", ENTRY, after, TOKYO)[0] is Reason.ANTI_PASSBACK  # at it: kept
    # The sweep evicted E1's stale passage from memory; a relay older than the reset is dropped.
    assert presence.last("E1") is None and len(presence) == 1
    presence.passed("E3", "entry", evening, "gate-out")
    assert presence.last("E3") is None


def test_last_reset_is_the_local_reset_time_not_utc() -> None:
    # 03:00 JST is 18:00 UTC the day before.
    assert last_reset(jst(2026, 12, 1, 3, 0), time(3, 0), TOKYO) == jst(2026, 12, 1, 3, 0)
    assert last_reset(jst(2026, 12, 1, 2, 59), time(3, 0), TOKYO) == jst(2026, 11, 30, 3, 0)
    assert last_reset(jst(2026, 12, 1, 23, 0), time(0, 0), TOKYO) == jst(2026, 12, 1, 0, 0)


def test_unreachable_partner_admit_marks_the_decision_unverified() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 9)
    presence.partner_seen("gate-out", now - timedelta(seconds=31))  # past the 30 s timeout
    presence.passed("E1", "entry", now - timedelta(hours=1), HERE)
    reason, _, attrs = presence.check("E1", ENTRY, now, TOKYO)
    assert reason is Reason.OK and attrs == (("passback_check", "unverified"),)
    # A subject whose answer does not depend on the partner is not marked.
    assert presence.check("E2", ENTRY, now, TOKYO) == (Reason.OK, "", ())


def test_unreachable_partner_refuse_refuses_only_when_the_answer_depends_on_it() -> None:
    refuse = PassbackSettings("entry", "gate-out", reset=time(3, 0), when_unreachable="refuse")
    presence, now = Presence(), jst(2026, 11, 30, 18)  # partner never heard of: unreachable
    presence.passed("E1", "entry", now - timedelta(hours=9), HERE)  # ours: an exit may follow
    reason, detail, _ = presence.check("E1", refuse, now, TOKYO)
    assert reason is Reason.PASSBACK_PARTNER_UNREACHABLE and "gate-out" in detail
    # Never seen: admitted (an unheard passage could only be an exit).
    assert presence.check("E2", refuse, now, TOKYO)[0] is Reason.OK
    # The partner's own (relayed) exit is certain: admitted.
    presence.passed("E3", "entry", now - timedelta(hours=9), HERE)
    presence.passed("E3", "exit", now - timedelta(hours=1), "gate-out")
    assert presence.check("E3", refuse, now, TOKYO)[0] is Reason.OK
    # Back in reach: the ordinary refusal again.
    presence.partner_seen("gate-out", now)
    assert presence.check("E1", refuse, now, TOKYO)[0] is Reason.ANTI_PASSBACK


def test_the_partner_timeout_edge() -> None:
    presence, now = Presence(), jst(2026, 11, 30, 9)
    presence.partner_seen("gate-out", now - timedelta(seconds=30))
    assert presence.reachable(ENTRY, now)
    assert not presence.reachable(ENTRY, now + timedelta(microseconds=1))
    presence.partner_seen("someone-else", now)
    assert not presence.reachable(ENTRY, now + timedelta(seconds=31))


def test_memory_is_bounded_and_drops_the_stalest() -> None:
    presence, now = Presence(max_subjects=3), jst(2026, 11, 30, 9)
    for i in range(5):
        presence.passed(f"E{i}", "entry", now + timedelta(seconds=i), "gate-out")
    assert len(presence) == 3
    assert presence.last("E0") is None and presence.last("E1") is None
    assert presence.last("E4") is not None


@pytest.mark.parametrize(
    ("direction", "at"), [("sideways", jst(2026, 1, 1)), ("entry", datetime(2026, 1, 1))]
)
def test_a_bad_passage_is_refused_with_a_clear_error(direction: str, at: datetime) -> None:
    with pytest.raises(ValueError, match="passage"):
        Presence().passed("E1", direction, at, HERE)


def test_concurrent_passages_keep_the_latest_per_subject() -> None:
    """Eight threads (our grants, the link's relays) write passages in shuffled order:
    each subject ends with its latest passage, never an older one written last."""
    presence, base = Presence(), jst(2026, 11, 30, 9)
    work = [(f"E{i % 50}", i) for i in range(4000)]
    random.Random(11).shuffle(work)

    def writer(part: list[tuple[str, int]]) -> None:
        for subject, i in part:
            direction = "entry" if i % 2 else "exit"
            presence.passed(subject, direction, base + timedelta(seconds=i), str(i % 3))

    threads = [threading.Thread(target=writer, args=(work[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in range(50):
        latest = max(i for subject, i in work if subject == f"E{s}")
        last = presence.last(f"E{s}")
        assert last is not None and last.at == base + timedelta(seconds=latest)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["E1", "E2", "E3"]),
            st.sampled_from(["entry", "exit"]),
            st.sampled_from([HERE, "gate-out"]),
        ),
        max_size=30,
    ),
    st.randoms(use_true_random=False),
)
def test_the_answer_is_the_direction_of_the_latest_passage_since_the_reset(
    events: list[tuple[str, str, str]], shuffle: random.Random
) -> None:
    """Passages at distinct times (some before the 03:00 reset) arrive in any order; with
    the partner in reach, an entry terminal refuses exactly the subjects whose latest
    passage since the reset was an entry."""
    base = jst(2026, 11, 30, 2, 50)  # ten minutes before the reset
    timed = [(s, d, src, base + timedelta(minutes=i)) for i, (s, d, src) in enumerate(events)]
    arrival = list(timed)
    shuffle.shuffle(arrival)
    presence = Presence()
    for subject, direction, source, at in arrival:
        presence.passed(subject, direction, at, source)
    now = base + timedelta(minutes=len(events) + 1)
    presence.partner_seen("gate-out", now)
    today_reset = jst(2026, 11, 30, 3, 0)
    reset = today_reset if now >= today_reset else today_reset - timedelta(days=1)
    for subject in ("E1", "E2", "E3"):
        since = [d for s, d, _, at in timed if s == subject and at >= reset]
        expected = Reason.ANTI_PASSBACK if since and since[-1] == "entry" else Reason.OK
        assert presence.check(subject, ENTRY, now, TOKYO)[0] is expected
