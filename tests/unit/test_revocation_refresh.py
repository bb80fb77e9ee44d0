"""Live pickup: a store notices a state file another process installed, and loads it
without ever losing the data in force (issue 8 §1)."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from terminald.store.atomic_file import atomic_write

from .revocation_support import T0, snapshot
from .test_revocation_store import KEY, OTHER, V1, V2, make_store


def test_a_file_installed_by_another_store_is_picked_up(tmp_path: Path) -> None:
    running = make_store(tmp_path)
    assert running.refresh() is None  # nothing on disk, nothing seen: no change
    writer = make_store(tmp_path)  # what `terminald revocation apply` does
    writer.apply(snapshot(V1, KEY, 1), T0)
    assert running.changed_on_disk()
    outcome = running.refresh()
    assert outcome is not None and outcome.installed is not None
    assert outcome.installed.version == 1 and outcome.problem == ""
    assert running.status(T0).version == 1
    assert not running.changed_on_disk() and running.refresh() is None
    writer.apply(snapshot(V2, KEY, 2), T0)
    outcome = running.refresh()
    assert outcome is not None and outcome.installed is not None
    assert running.status(T0).version == 2


def test_its_own_apply_is_not_picked_up_again(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    assert not store.changed_on_disk()
    assert store.refresh() is None


def test_a_file_that_fails_keeps_the_data_in_force_and_is_tried_once(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    state = tmp_path / "revocation.state"
    atomic_write(state, b"TDRS garbage")
    outcome = store.refresh()
    assert outcome is not None and outcome.installed is None
    assert "version 1 stays installed" in outcome.problem
    assert store.status(T0).version == 1 and store.problem == ""
    assert store.refresh() is None  # not retried until the file changes again
    # A file signed by a key this terminal does not trust is refused the same way.
    (tmp_path / "other").mkdir()
    elsewhere = make_store(tmp_path / "other", timedelta(0), OTHER)
    elsewhere.apply(snapshot(V2, OTHER, 2), T0)
    os.replace(tmp_path / "other" / "revocation.state", state)
    outcome = store.refresh()
    assert outcome is not None and outcome.installed is None
    assert store.status(T0).version == 1


def test_a_removed_file_keeps_the_data_in_force(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    (tmp_path / "revocation.state").unlink()
    outcome = store.refresh()
    assert outcome is not None and outcome.installed is None and "removed" in outcome.problem
    assert store.status(T0).version == 1
    assert store.refresh() is None


def test_rewriting_the_same_bytes_installs_nothing_new(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    state = tmp_path / "revocation.state"
    atomic_write(state, state.read_bytes())
    assert store.changed_on_disk()
    assert store.refresh() is None
    assert not store.changed_on_disk()


def test_a_fifo_in_place_of_the_state_file_never_blocks(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    state = tmp_path / "revocation.state"
    state.unlink()
    os.mkfifo(state)
    outcome = store.refresh()  # would hang for ever if it opened the FIFO for a read
    assert outcome is not None and outcome.installed is None
    assert "not a regular file" in outcome.problem
    assert store.status(T0).version == 1


def test_the_installed_data_carries_a_signed_time(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    assert store.signed_time is None
    store.apply(snapshot(V1, KEY, 1), T0)
    signed = store.signed_time
    assert signed is not None and signed.at <= T0 and "version 1" in signed.source


def test_a_refresh_during_another_ones_load_waits_for_the_new_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card worker's refresh while the watcher loads: it must not decide on the old view."""
    store = make_store(tmp_path)
    store.apply(snapshot(V1, KEY, 1), T0)
    make_store(tmp_path).apply(snapshot(V2, KEY, 2), T0)
    loading, original = threading.Event(), store._load

    def slow_load(data: bytes) -> Any:
        loading.set()
        time.sleep(0.3)
        return original(data)

    monkeypatch.setattr(store, "_load", slow_load)
    watcher = threading.Thread(target=store.refresh)
    watcher.start()
    assert loading.wait(5)
    store.refresh()  # the worker's question, asked mid-load
    assert store.status(T0).version == 2
    watcher.join(5)
