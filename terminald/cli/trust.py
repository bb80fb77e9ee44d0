"""The ``--trust`` option shared by commands that check certificates."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError

if TYPE_CHECKING:
    from terminald.pki.anchors import TrustStore


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        type=Path,
        action="extend",
        nargs="+",
        metavar="DIR",
        help="trust anchors: directories of PEM/DER root certificates, or files "
        "(several after one --trust or repeated; default: the J-LIS user-authentication "
        "roots shipped with terminald)",
    )


def load_trust(paths: list[Path] | None) -> TrustStore:
    from terminald.pki.anchors import TrustAnchorError, TrustStore  # cryptography: only when run

    try:
        if not paths:
            return TrustStore.production()
        for path in paths:
            if not path.exists():
                raise CliError(f"--trust {path}: no such file or directory")
        return TrustStore.from_paths(paths)
    except TrustAnchorError as exc:
        raise CliError(f"trust anchors: {exc}") from exc
    except OSError as exc:  # unreadable, a FIFO, too large (terminald.files)
        raise CliError(f"trust anchors: {exc.filename}: {exc.strerror or exc}") from exc
