"""argparse ``type=`` functions for numeric options: a bad value is a one-line usage error
("argument --version: ..."), never a traceback from deeper down (struct, datetime, numpy).

Each factory names the accepted range in its message; floats must be finite (``inf`` and
``nan`` parse as floats but are no number of days).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
# RFC 5280 §4.1.2.2 / §5.2.3: serials and CRL numbers are at most 20 octets, positive.
X509_INTEGER_MAX = 2**159 - 1


def _bound(value: int) -> str:
    """A bound as people read it: 2**64-1 rather than twenty digits."""
    for bits in range(33, 200):
        if value == 2**bits - 1:
            return f"2**{bits}-1"
        if value == 2**bits:
            return f"2**{bits}"
    return str(value)


def integer(
    low: int, high: int, *, what: str = "an integer", base: int = 10
) -> Callable[[str], int]:
    """An int in ``low..high``; ``base=0`` also takes 0x hex."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip(), base)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low}..{_bound(high)}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its fallback message
    return parse


def number(
    low: float, high: float, *, low_open: bool = False, unit: str = ""
) -> Callable[[str], float]:
    """A finite float in ``low..high`` (``low`` excluded when ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(
                f"{text} is not a finite number {bound} and at most {high:g}{unit}"
            )
        return value

    parse.__name__ = "number"
    return parse
