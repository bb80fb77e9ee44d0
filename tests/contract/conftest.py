"""Contract-suite fixtures: every test runs on each backend (DESIGN.md §7).

``make_rig(pinmap)`` opens the hardware of a pin map on the backend under test and
returns its Rig. The mock backend always runs. The real backend runs only with ``--hil``
or ``TERMINALD_HIL=1`` on a Raspberry Pi wired to the rig of hw/hil.md, and is skipped
with the reason otherwise. On the real rig the board's wiring is fixed, so a test that
asks for a pin map other than the rig's is skipped there (``needs_variant``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from terminald.backends.pinmap import BoardPinMap, load_board
from tests.contract.rigs import (
    HilRig,
    MockRig,
    Rig,
    hil_board_and_backend,
    hil_rig_file,
    hil_skip_reason,
)

MakeRig = Callable[..., Rig]


@pytest.fixture(params=["mock", "hil"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "hil":
        reason = hil_skip_reason(request.config)
        if reason:
            pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def board(backend: str) -> BoardPinMap:
    """The board under test: rpi4 on mock, the rig's board on real hardware."""
    return load_board(hil_board_and_backend()[0] if backend == "hil" else "rpi4")


@pytest.fixture
def make_rig(backend: str, board: BoardPinMap) -> Iterator[MakeRig]:
    rigs: list[Rig] = []

    def make(pinmap: BoardPinMap | None = None) -> Rig:
        pinmap = pinmap or board
        if backend == "hil":
            if pinmap != board:
                pytest.skip("real GPIO backend: this variant is not what the rig is wired as")
            rig: Rig = HilRig(pinmap, hil_board_and_backend()[1], hil_rig_file())
        else:
            rig = MockRig(pinmap)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
