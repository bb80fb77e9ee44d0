"""The console's relay test on a vending machine: the relay is the vend-enable line, so a
test would be a free vend (issue 11; found by the policy breaker)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from terminald.core.terminal import Mode, State
from terminald.daemon.operator import OperatorError, _test


class Relay:
    def __init__(self) -> None:
        self.energised = False
        self.pulses: list[int] = []

    def pulse(self, ms: int) -> None:
        self.pulses.append(ms)


def daemon(purpose: str) -> SimpleNamespace:
    terminal = SimpleNamespace(
        state=State.IDLE, mode=Mode.NORMAL, door=SimpleNamespace(released=lambda now: None)
    )
    config = SimpleNamespace(
        terminal=SimpleNamespace(purpose=purpose), relay=SimpleNamespace(open_ms=1500)
    )
    return SimpleNamespace(
        terminal=terminal, config=config, hardware=SimpleNamespace(relay=Relay())
    )


def test_a_vending_machines_relay_is_not_pulsed_by_a_test() -> None:
    d = daemon("vend")
    with pytest.raises(OperatorError, match="free vend"):
        _test(d, "relay")  # type: ignore[arg-type]
    assert d.hardware.relay.pulses == []


def test_a_gates_relay_is() -> None:
    d = daemon("gate")
    assert _test(d, "relay") == "relay pulsed for 1500 ms"  # type: ignore[arg-type]
    assert d.hardware.relay.pulses == [1500]
