"""``[gpio]`` alone, for ``terminald relay-safe``."""

from __future__ import annotations

from pathlib import Path

from terminald.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    GpioSection,
    gpio_section,
    read_toml,
)
from terminald.config_values import Section, describe


def load_gpio_section(path: Path | str = DEFAULT_CONFIG_PATH) -> GpioSection:
    """Only ``[gpio]``, validated; the rest of the file is not looked at.

    For ``terminald relay-safe``: a mistake elsewhere in an edited file (which the
    running daemon refused on SIGHUP) must not stop the relay being made safe.
    """
    data = read_toml(Path(path))
    errors: list[str] = []
    table = data.get("gpio", {})
    if not isinstance(table, dict):
        raise ConfigError([f"gpio: must be a table ([gpio]), got {describe(table)}"])
    s = Section("gpio", table, Path("/"), errors)
    gpio = gpio_section(s)
    s.finish()
    if errors:
        raise ConfigError(errors)
    return gpio
