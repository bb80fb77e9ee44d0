"""Building the CLI's parser imports no heavy library.

`terminald relay-safe` runs as the unit's ExecStopPost, while the relay may still be
energised: it must not spend its first half second importing numpy, cryptography or
pyscard for commands it is not running. Every command module therefore imports only
argparse-level things at the top and the rest inside its run function(s). Each check runs
in a fresh interpreter, because this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from terminald.cli import _COMMAND_MODULES

REPO = Path(__file__).resolve().parents[2]

# Libraries that a command may use when it runs, never when the parser is built.
HEAVY = ("numpy", "pyroaring", "cryptography", "smartcard", "gpiozero", "msgpack", "serial")


def _loaded_after(code: str) -> list[str]:
    """The HEAVY modules present in a fresh interpreter after running ``code``."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def test_building_the_parser_and_parsing_relay_safe_imports_no_heavy_library() -> None:
    code = (
        "from terminald.cli import build_parser\n"
        "parser = build_parser()\n"
        "args = parser.parse_args(['relay-safe', '--config', '/nonexistent.toml'])\n"
        "assert args.func.__module__ == 'terminald.cli.relay_safe_cmd'\n"
        "try:\n"
        "    parser.parse_args(['relay-safe', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert _loaded_after(code) == []


@pytest.mark.parametrize("module", _COMMAND_MODULES)
def test_each_command_module_imports_no_heavy_library(module: str) -> None:
    assert _loaded_after(f"import {module}") == []


def test_relay_safe_help_runs_without_heavy_libraries() -> None:
    # The console script's path through main(): --help exits 0 before any command runs.
    code = (
        "from terminald.cli import main\n"
        "try:\n"
        "    main(['relay-safe', '--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    assert _loaded_after(code) == []


def test_constants_spelled_out_for_the_parser_match_their_sources() -> None:
    from cryptography import x509

    from terminald.cli import sim_card_cmd, sim_crl_cmd, sim_pki_cmd
    from terminald.sim import crl, testpki, vpcd

    assert sim_card_cmd.DEFAULT_PORT == vpcd.DEFAULT_PORT
    assert sim_pki_cmd.MAX_CARDS == testpki.MAX_CARDS
    assert sim_crl_cmd.DISTRIBUTIONS == crl.DISTRIBUTIONS
    for member in sim_crl_cmd.REASONS.values():
        assert isinstance(x509.ReasonFlags[member], x509.ReasonFlags)
    assert set(sim_crl_cmd.REASONS.values()) == {flag.name for flag in x509.ReasonFlags}
