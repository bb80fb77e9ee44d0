"""The configuration as plain TOML-shaped data, for ``terminald check-config --json``."""

from __future__ import annotations

import base64
from dataclasses import fields, is_dataclass
from datetime import time
from pathlib import Path
from typing import Any

from terminald.config import SECTIONS, Config

# Fields whose TOML key differs from the dataclass's name ([[vending.product]]).
_TOML_NAMES = {("vending", "products"): "product"}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, bytes):  # link.host_key, as configured
        return base64.b64encode(value).decode()
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not None
        }
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def config_as_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The configuration as plain TOML-shaped data (paths as strings), for display.

    ``config_from_dict(config_as_dict(c))`` gives back ``c`` (bar ``source``).
    """
    result: dict[str, dict[str, Any]] = {}
    for name in SECTIONS:
        table: dict[str, Any] = {}
        for f in fields(getattr(config, name)):
            value = getattr(getattr(config, name), f.name)
            if value is None:
                continue
            table[_TOML_NAMES.get((name, f.name), f.name)] = _plain(value)
        result[name] = table
    return result
