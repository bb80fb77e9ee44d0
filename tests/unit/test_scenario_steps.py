"""Scenario features for the policy's uses: ``[files]``, ``clock``, ``vend_complete``,
``expect`` with ``kind``/``attrs`` and ``expect_record`` (docs/scenarios.md).

Pass one names every problem with where it is; the steps are played on a stand-in rig
(the real Observer and SimClock, no pcscd): what a step reports for the records the
daemon would make.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from terminald.core.commands import Record
from terminald.core.hardware import DoorInput
from terminald.core.reasons import Reason
from terminald.sim.rig import Observer, SimRig, is_verdict
from terminald.sim.scenario import write_files
from terminald.sim.scenario_file import ScenarioError, Step, check_names, parse_scenario
from terminald.sim.scenario_places import Places
from terminald.sim.scenario_play import Player
from terminald.sim.scenario_record import record_mismatches, record_summary
from terminald.sim.sim_clock import SimClock
from terminald.sim.testpki import TestPkiManifest


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as error:
        parse_scenario(tomllib.loads(text), Path("s.toml"))
    return error.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[step]]\nclock = "monday 8:30"', "step 1: key `clock`: 'monday 8:30' is not a time"),
        ('[[step]]\nclock = "2026-02-30T09:00"', "step 1: key `clock`: '2026-02-30T09:00' is not"),
        (
            '[[step]]\nclock = "2026-12-24T09:00+09:00"',
            "step 1: key `clock`: '2026-12-24T09:00+09:00' is not a time",
        ),
        ('[[step]]\nclock = "+4000d"', "step 1: key `clock`: '+4000d' is more than"),
        ("[[step]]\nclock = 1", "step 1: key `clock`: must be a non-empty string"),
        ("[[step]]\nvend_complete = false", "step 1: key `vend_complete`: must be true"),
        (
            '[[step]]\nexpect_record = "Vend complete"',
            "step 1: key `expect_record`: must be a record kind",
        ),
        (
            '[[step]]\ntap = "card-001"\nkind = "granted"',
            "step 1: key `kind`: only for a `expect` step, not `tap`",
        ),
        (
            '[[step]]\nexpect_record = "vend_complete"\nkind = "granted"',
            "step 1: key `kind`: only for a `expect` step, not `expect_record`",
        ),
        (
            '[[step]]\nrex = true\nattrs = ["pin=true"]',
            "step 1: key `attrs`: only for a `expect` or `expect_record` step, not `rex`",
        ),
        (
            '[[step]]\nexpect = "ok"\nkind = "vend_complete"',
            "step 1: key `kind`: must be one of granted, refused, attendance",
        ),
        ('[[step]]\nexpect = "ok"\nattrs = "pin=true"', "step 1: key `attrs`: must be an array"),
        ('[[step]]\nexpect = "ok"\nattrs = ["pin"]', "step 1: key `attrs`: 'pin' must be"),
        ('[[step]]\nexpect = "ok"\nattrs = ["Pin=true"]', "step 1: key `attrs`: 'Pin=true' must"),
        ('[[step]]\nexpect = "ok"\nattrs = ["pin=yes"]', "step 1: key `attrs`: 'pin=yes': pin is"),
        (
            '[[step]]\nexpect = "ok"\nattrs = ["subject={nope}"]',
            "step 1: key `attrs`: unknown placeholder {nope}",
        ),
        ('files = "x"\n[[step]]\nrex = true', "top level: key `files`: must be a table"),
        ('[files]\n"a/b" = "x"\n[[step]]\nrex = true', "files.'a/b': must be a plain file name"),
        ('[files]\n"..x" = "x"\n[[step]]\nrex = true', "files.'..x': must be a plain file name"),
        ('[files]\n"" = "x"\n[[step]]\nrex = true', "files.'': must be a plain file name"),
        ('[files]\n"p.toml" = 3\n[[step]]\nrex = true', "files.'p.toml': must be a string"),
        (
            '[files]\n"p.toml" = "a {oops}"\n[[step]]\nrex = true',
            "files.'p.toml': unknown placeholder {oops}",
        ),
        (
            '[files]\n"p.toml" = "{ issuer = 1 }"\n[[step]]\nrex = true',
            "files.'p.toml': unknown placeholder { issuer = 1 }",  # TOML's braces: {{ }}
        ),
        (
            'link = true\n[files]\nhostkeys = "x"\n[[step]]\nrex = true',
            "files.'hostkeys': with `link = true` {work}/hostkeys is the runner's",
        ),
    ],
)
def test_a_bad_step_or_file_names_where(text: str, expected: str) -> None:
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


GOOD = """
[files]
"people.toml" = '''
serial = {serial:card-001}
inline = {{ a = 1 }}
'''
"notes.txt" = "plain"

[[step]]
clock = "mon 08:30"
[[step]]
vend_complete = true
[[step]]
expect = "ok"
kind = "attendance"
attrs = ["attendance=clock_in", "pin=false", "subject=E1001"]
[[step]]
expect_record = "vend_complete"
within_s = 12
attrs = ["product=A"]
"""


def test_a_good_file_parses() -> None:
    scenario = parse_scenario(tomllib.loads(GOOD), Path("s.toml"))
    assert [name for name, _ in scenario.files] == ["people.toml", "notes.txt"]
    clock, vend, expect, record = scenario.steps
    assert (clock.action, clock.value) == ("clock", "mon 08:30")
    assert (vend.action, vend.value) == ("vend_complete", True)
    assert expect.kind == "attendance" and expect.attrs[0] == "attendance=clock_in"
    assert record.within_s == 12 and record.kind is None and record.attrs == ("product=A",)
    assert [s.describe() for s in scenario.steps] == [
        "clock mon 08:30",
        "vend_complete",
        "expect ok (kind=attendance, attendance=clock_in, pin=false, subject=E1001)",
        "expect_record vend_complete (product=A)",
    ]


def test_card_names_in_files_and_attrs_are_checked(test_pki: TestPkiManifest) -> None:
    scenario = parse_scenario(
        tomllib.loads(
            '[files]\n"p.toml" = "{serial:ghost}"\n'
            '[[step]]\nexpect = "ok"\nattrs = ["subject={issuer:nobody}"]\n'
        ),
        Path("s.toml"),
    )
    with pytest.raises(ScenarioError) as error:
        check_names(scenario, test_pki)
    problems = error.value.problems
    assert any(p.startswith("files.'p.toml': {serial:ghost}: no card 'ghost'") for p in problems)
    assert any(p.startswith("step 1: key `attrs`: {issuer:nobody}") for p in problems)


def test_files_are_written_into_work_expanded(tmp_path: Path, test_pki: TestPkiManifest) -> None:
    scenario = parse_scenario(tomllib.loads(GOOD), Path("s.toml"))
    work = tmp_path / "work"
    work.mkdir()
    places = Places(test_pki.directory, work, tmp_path / "s", tmp_path / "c.toml", test_pki)
    write_files(scenario, places)
    serial = test_pki.card("card-001").serial
    assert (work / "people.toml").read_text() == f"serial = {serial}\ninline = {{ a = 1 }}\n"
    assert (work / "notes.txt").read_text() == "plain"
    (work / "notes.txt").unlink()
    (work / "notes.txt").mkdir()  # cannot be written: said, naming the file
    with pytest.raises(ScenarioError, match=r"files.'notes.txt': cannot write"):
        write_files(scenario, places)


# -- the record checks -------------------------------------------------------------------------

ATTENDANCE = Record(
    "attendance",
    "clock in",
    Reason.OK,
    subject="E1001",
    attrs=(("attendance", "clock_in"), ("door", "closed")),
    pin_verified=True,
)


def test_a_record_is_checked_by_kind_and_attrs() -> None:
    assert record_mismatches(ATTENDANCE, "attendance", ("attendance=clock_in",)) == []
    assert record_mismatches(ATTENDANCE, None, ("pin=true", "subject=E1001")) == []
    assert record_mismatches(ATTENDANCE, "granted", ("pin=false", "subject=E1002")) == [
        "kind attendance, expected granted",
        "pin=true, expected pin=false",
        "subject=E1001, expected subject=E1002",
    ]
    assert record_mismatches(ATTENDANCE, None, ("product=A", "door=open")) == [
        "no product, expected product=A",
        "door=closed, expected door=open",
    ]
    refused = Record("refused", "", Reason.NOT_ENROLLED)
    assert record_mismatches(refused, "refused", ("pin=false",)) == []
    assert record_mismatches(refused, None, ("subject=E1001",)) == [
        "no subject, expected subject=E1001"
    ]
    assert record_summary(ATTENDANCE) == "subject E1001; pin=true attendance=clock_in door=closed"
    assert record_summary(refused) == "subject none; pin=false"


def test_an_attendance_record_is_a_verdict() -> None:
    assert is_verdict(ATTENDANCE)
    assert is_verdict(Record("granted", "")) and is_verdict(Record("refused", ""))
    assert not is_verdict(Record("vend_complete", "")) and not is_verdict(Record("rex", ""))


# -- the steps on a stand-in rig -----------------------------------------------------------------


class StandInRig:
    """What the player reads of a rig for these steps: records, the clock, the zone."""

    def __init__(self, now: datetime, zone: str = "Asia/Tokyo") -> None:
        self.observer = Observer()
        self.clock = SimClock(lambda: now)
        self.config = SimpleNamespace(terminal=SimpleNamespace(timezone=zone))
        self.pulses: list[DoorInput] = []
        self.card_on_reader = None

    def relay_mark(self) -> int:
        return 0

    def pulse_input(self, which: DoorInput) -> None:
        self.pulses.append(which)


def _player(rig: StandInRig, tmp_path: Path, test_pki: TestPkiManifest) -> Player:
    places = Places(test_pki.directory, tmp_path, tmp_path / "s", tmp_path / "c.toml", test_pki)
    return Player(cast(SimRig, rig), places)


def _steps(text: str) -> list[Step]:
    return list(parse_scenario(tomllib.loads(text), Path("s.toml")).steps)


def test_clock_steps_move_the_daemons_clock_forward_only(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    rig = StandInRig(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))  # Sunday 10:00 in Tokyo
    player = _player(rig, tmp_path, test_pki)
    steps = _steps(
        '[[step]]\nclock = "mon 08:30"\n[[step]]\nclock = "+1d"\n'
        '[[step]]\nclock = "2026-11-30T09:00"\n'
    )
    reports = [player.play(step) for step in steps]
    assert reports[0].ok and "Mon 2026-11-30 08:30" in reports[0].saw
    assert "22 h 30 min ahead of the real time" in reports[0].saw
    assert reports[1].ok and "Tue 2026-12-01 08:30" in reports[1].saw
    assert not reports[2].ok and "a clock never goes back" in reports[2].saw
    assert rig.clock() == datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # unchanged by the refusal


def test_expect_checks_kind_and_attrs(tmp_path: Path, test_pki: TestPkiManifest) -> None:
    rig = StandInRig(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    player = _player(rig, tmp_path, test_pki)
    rig.observer(Record("rex", "request to exit"))
    rig.observer(ATTENDANCE)
    rig.observer(Record("refused", "", Reason.NOT_ENROLLED))
    rig.observer(Record("refused", "", Reason.NOT_ENROLLED))
    step1, step2, step3 = _steps(
        '[[step]]\nexpect = "ok"\nkind = "attendance"\n'
        'attrs = ["attendance=clock_in", "pin=true", "subject=E1001"]\nwithin_s = 1\n'
        '[[step]]\nexpect = "not_enrolled"\nkind = "refused"\nattrs = ["pin=false"]\n'
        '[[step]]\nexpect = "not_enrolled"\nkind = "attendance"\nwithin_s = 1\n'
    )
    first = player.play(step1)
    # An attendance record without door=open: no relay to wait for.
    assert first.ok, first.saw
    assert first.saw == (
        "attendance ok (clock in); subject E1001; pin=true attendance=clock_in door=closed"
    )
    assert player.play(step2).ok
    third = player.play(step3)
    assert not third.ok and third.saw.endswith("kind refused, expected attendance")


def test_expect_record_reads_on_from_the_last_decision(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    rig = StandInRig(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    player = _player(rig, tmp_path, test_pki)
    rig.observer(Record("vend_complete", "product A", attrs=(("product", "B"),)))  # before
    rig.observer(Record("refused", "", Reason.NOT_ENROLLED))
    rig.observer(Record("vend_complete", "product A", attrs=(("product", "A"),)))
    expect, record, wrong, none = _steps(
        '[[step]]\nexpect = "not_enrolled"\n'
        '[[step]]\nexpect_record = "vend_complete"\nattrs = ["product=A"]\nwithin_s = 1\n'
        '[[step]]\nexpect_record = "vend_complete"\nwithin_s = 0.1\n'
        '[[step]]\nexpect_record = "vend_timeout"\nwithin_s = 0.1\n'
    )
    assert player.play(expect).ok
    report = player.play(record)
    assert report.ok
    assert report.saw == "vend_complete (product A); subject none; pin=false product=A"
    again = player.play(wrong)
    assert not again.ok and again.saw == "no vend_complete record within 0.1 s"  # read already
    assert player.play(none).saw == "no vend_timeout record within 0.1 s"
    rig.observer(Record("vend_complete", "product A", attrs=(("product", "B"),)))
    late = player.play(record)
    assert not late.ok and late.saw.endswith("product=B, expected product=A")


def test_vend_complete_pulses_the_input(tmp_path: Path, test_pki: TestPkiManifest) -> None:
    rig = StandInRig(datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    (step,) = _steps("[[step]]\nvend_complete = true\n")
    report = _player(rig, tmp_path, test_pki).play(step)
    if "vend_complete" in {member.value for member in DoorInput}:
        assert report.ok and report.saw == "vend-complete input pulsed (100 ms)"
        assert rig.pulses == [DoorInput("vend_complete")]
    else:  # before the vending pieces are in: said, not a traceback
        assert not report.ok and report.saw == "this terminald has no vend-complete input"
        assert rig.pulses == []
