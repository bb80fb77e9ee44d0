"""How many examples each property test runs: modest in CI, many under scripts/fuzz.

``scripts/fuzz`` sets TERMINALD_FUZZ_EXAMPLES (default there 10,000) and runs the tests
marked ``fuzz``; the default run keeps them quick. Either way hypothesis keeps no
database (the fuzz run must not replay CI's examples instead of finding new ones).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("TERMINALD_FUZZ_EXAMPLES", "150"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a worst case may take a while on 2 shared cores; no timed assertions
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
