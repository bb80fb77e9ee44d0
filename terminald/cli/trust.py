"""The ``--trust`` option shared by commands that check certificates."""

from __future__ import annotations

import argparse
from pathlib import Path

from terminald.cli.common import CliError
from terminald.pki.anchors import TrustAnchorError, TrustStore


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        metavar="DIR",
        help="trust anchors: a directory of PEM/DER root certificates, or one file "
        "(repeatable; default: the J-LIS user-authentication roots shipped with terminald)",
    )


def load_trust(paths: list[Path] | None) -> TrustStore:
    try:
        if not paths:
            return TrustStore.production()
        for path in paths:
            if not path.exists():
                raise CliError(f"--trust {path}: no such file or directory")
        return TrustStore.from_paths(paths)
    except TrustAnchorError as exc:
        raise CliError(f"trust anchors: {exc}") from exc
