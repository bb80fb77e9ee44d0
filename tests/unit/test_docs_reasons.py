"""docs/architecture.md lists every reason code of core/reasons.py, and nothing else.

Reason codes are stable names that logs, JSON output and scripts rely on; a code added
to the enum and not to the docs (or left in the docs after it went) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from terminald.core.reasons import Reason

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented_codes(text: str) -> list[str]:
    """The first-column codes of the table under "## Reason codes"."""
    section = text.split("\n## Reason codes\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def test_the_docs_list_every_reason_code_and_no_other() -> None:
    codes = documented_codes(DOC.read_text(encoding="utf-8"))
    assert codes, "no reason-code table found under '## Reason codes'"
    assert len(codes) == len(set(codes)), "a code is listed twice"
    enum = {reason.value for reason in Reason}
    assert sorted(enum - set(codes)) == [], "in terminald/core/reasons.py, missing from the docs"
    assert sorted(set(codes) - enum) == [], "in the docs, not in terminald/core/reasons.py"


def test_the_check_reads_the_table_it_claims_to() -> None:
    text = "## Reason codes\n\n| code | meaning |\n|---|---|\n| `ok` | yes |\n| `x_y` | no |\n"
    assert documented_codes("intro\n" + text + "\n## Next\n| `zz` | not here |\n") == [
        "ok",
        "x_y",
    ]
