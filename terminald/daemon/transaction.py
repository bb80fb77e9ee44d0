"""One card transaction on a reader: hold the card, authenticate, let go.

Shared by ``terminald auth``, the demo and the benchmarks so all of them run the
same path. The card is held exclusively for the whole transaction and unpowered
when it ends, whatever happened (the reader's context manager guarantees it).
Elapsed time counts the terminal and the card, not the person typing the PIN.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from terminald.card.connection import CountingConnection
from terminald.card.errors import CardError
from terminald.card.reader import CardReader
from terminald.core.auth import Authenticator, AuthResult, PinRequest, card_failure
from terminald.core.reasons import Reason

# Asked for the PIN once the card is ready; None means the person gave up.
PinSource = Callable[[PinRequest], str | None]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Transaction:
    result: AuthResult
    apdus: int
    bytes_sent: int
    bytes_received: int
    elapsed_ms: float


def run_transaction(
    reader: CardReader,
    authenticator: Authenticator,
    pin_source: PinSource,
    clock: Callable[[], datetime] = utc_now,
) -> Transaction:
    """Authenticate the card present on ``reader`` (the caller waited for it)."""
    counted: CountingConnection | None = None
    elapsed = 0.0
    try:
        with reader.connect() as connection:
            counted = CountingConnection(connection)
            started = time.perf_counter()
            step = authenticator.begin(counted, clock())
            elapsed += time.perf_counter() - started
            if isinstance(step, PinRequest):
                pin = pin_source(step)
                started = time.perf_counter()
                if pin is None:
                    result = step.result(Reason.PIN_CANCELLED)
                else:
                    result = authenticator.finish(step, pin, clock())
                elapsed += time.perf_counter() - started
            else:
                result = step
    except CardError as exc:
        result = card_failure(exc)
    return Transaction(
        result,
        counted.apdus if counted else 0,
        counted.bytes_sent if counted else 0,
        counted.bytes_received if counted else 0,
        elapsed * 1000,
    )
