"""Shared helpers for CLI command modules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TypeAlias

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Groups: TypeAlias = "dict[str, Subparsers]"


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def read_input(path: Path, what: str, max_size: int) -> bytes:
    """A file named on the command line, type and size checked first (terminald.files);
    a problem is a one-line CliError naming the file."""
    from terminald.files import read_limited

    try:
        return read_limited(path, max_size)
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
