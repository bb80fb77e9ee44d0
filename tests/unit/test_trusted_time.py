"""Trusted time: a clock behind the newest signed time held is refused (issue 8 §4)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from terminald.core.reasons import Reason
from terminald.core.trusted_time import (
    BUILD_EPOCH,
    EPOCH,
    SIGNED_TIME_TOLERANCE,
    SignedTime,
    clock_problem,
    newest,
)
from terminald.sim.testpki import TestPkiManifest
from terminald.store.trusted_time import TrustedTimeFile

from .test_authenticator import authenticator, card, pin_of, run

SIGNED = SignedTime(datetime(2026, 11, 1, 12, 0, tzinfo=UTC), "revocation data version 7")


def test_the_build_epoch_is_a_hard_floor() -> None:
    assert clock_problem(BUILD_EPOCH, EPOCH) is None
    problem = clock_problem(BUILD_EPOCH - timedelta(seconds=1), EPOCH)
    assert problem is not None and "earliest trusted time" in problem


def test_a_signed_time_allows_the_tolerance_and_no_more() -> None:
    assert clock_problem(SIGNED.at, SIGNED) is None
    assert clock_problem(SIGNED.at - SIGNED_TIME_TOLERANCE, SIGNED) is None
    problem = clock_problem(SIGNED.at - SIGNED_TIME_TOLERANCE - timedelta(seconds=1), SIGNED)
    assert problem is not None
    assert "revocation data version 7" in problem and "2026-11-01T12:00:00Z" in problem
    assert clock_problem(SIGNED.at - timedelta(days=30), SIGNED) is not None


def test_newest_ignores_none_and_never_goes_below_the_epoch() -> None:
    old = SignedTime(datetime(2020, 1, 1, tzinfo=UTC), "old")
    assert newest() is EPOCH
    assert newest(None, old) is EPOCH
    assert newest(old, SIGNED, None) is SIGNED
    with pytest.raises(ValueError):
        SignedTime(datetime(2026, 1, 2), "naive")


def test_the_file_only_moves_forward_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "trusted-time"
    kept = TrustedTimeFile(path)
    assert kept.floor is EPOCH and kept.problem == ""
    assert kept.advance(SIGNED)
    assert not kept.advance(SignedTime(SIGNED.at - timedelta(days=1), "older"))
    assert not kept.advance(SIGNED)
    assert TrustedTimeFile(path).floor == SIGNED
    assert json.loads(path.read_text())["source"] == "revocation data version 7"


@pytest.mark.parametrize(
    "content", [b"", b"{", b'{"at": "yesterday", "source": "x"}', b'{"at": "2026-01-01"}', b"[1]"]
)
def test_an_unreadable_file_falls_back_to_the_epoch_and_says_why(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "trusted-time"
    path.write_bytes(content)
    kept = TrustedTimeFile(path)
    assert kept.floor is EPOCH and "not a trusted-time file" in kept.problem
    assert kept.advance(SIGNED) and kept.problem == ""  # the next signed time repairs it


def test_a_fifo_or_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert "not a regular file" in TrustedTimeFile(fifo).problem
    huge = tmp_path / "huge"
    with huge.open("wb") as handle:
        handle.truncate(10 * 1024 * 1024)
    assert "not a time" in TrustedTimeFile(huge).problem


def test_a_clock_behind_the_signed_time_refuses_before_any_apdu(
    test_pki: TestPkiManifest,
) -> None:
    now = datetime.now(UTC)
    signed = SignedTime(now + timedelta(days=30), "revocation data version 3's issue time")
    auth = authenticator(test_pki, trusted_time=lambda: signed)
    result, apdus = run(auth, card(test_pki, "card-001"), None, now=now)
    assert result.reason is Reason.CLOCK_UNTRUSTED and apdus == 0
    assert "version 3" in result.detail
    ahead = authenticator(test_pki, trusted_time=lambda: SignedTime(now, "just now"))
    result, _ = run(ahead, card(test_pki, "card-001"), pin_of(test_pki, "card-001"), now=now)
    assert result.reason is Reason.OK
