"""BREAK2: checking a set's calendar country must not import every country of holidays.

Found: the decoder (and the source parser) checked the country with
``holidays.list_supported_countries()``, which imports all ~250 country modules: 110-270
ms on the development machine (more on a Pi) and their memory, paid by the first install
and by the daemon's first tap after a start (the store decodes the calendar on the card
worker). It also broke tests/integration/test_enrolment_kill.py: a forked installer never
finished its first set inside the kill window. The check now reads holidays' registry.
"""

from __future__ import annotations

import subprocess
import sys

import holidays

from terminald.enrolment.countries import known_country


def test_known_country_is_the_holidays_list() -> None:
    supported = set(holidays.list_supported_countries())
    assert all(known_country(code) for code in supported)
    for bad in ("", "XX", "jp", "Japan", "JP ", "HolidaysAX", "japan"):
        assert not known_country(bad), bad


def test_decoding_a_set_imports_only_the_countries_it_uses() -> None:
    code = (
        "import sys\n"
        "from tests.unit.enrolment_support import small_content\n"
        "from terminald.enrolment.codec import encode_content, decode_content\n"
        "decode_content(encode_content(small_content()))\n"
        "from terminald.enrolment.source import parse_source_text\n"
        "parse_source_text('[calendar]\\ncountry = \"JP\"\\n')\n"
        "print(sum(m.startswith('holidays.countries.') for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert int(done.stdout.strip()) <= 2, done.stdout  # not ~250
