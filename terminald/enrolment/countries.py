"""Whether a calendar's country is one the ``holidays`` library knows.

``holidays.list_supported_countries()`` answers this by importing every country module
(~250: 110-270 ms and their memory on the development machine, more on a Pi), which the
decoder would pay at the first install and the daemon at its first tap. The library's
registry (``holidays.registry.COUNTRIES``: module → class name, ISO 3166 codes and
aliases) holds the same codes without importing anything; tests check the two agree.
"""

from __future__ import annotations

import re
from functools import cache

import holidays

_CODE = re.compile(r"[A-Z]{2,3}")  # the registry also lists class aliases (HolidaysAX)


@cache
def _codes() -> frozenset[str]:
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # a holidays without the registry: the slow, sure way
        return frozenset(holidays.list_supported_countries())
    return frozenset(
        code for names in COUNTRIES.values() for code in names[1:] if _CODE.fullmatch(code)
    )


def known_country(code: str) -> bool:
    """``code`` is a country code (alpha-2, alpha-3 or alias such as UK) that
    ``holidays.country_holidays`` accepts."""
    return code in _codes()
