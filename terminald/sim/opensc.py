"""OpenSC's ``pkcs11-tool`` against a virtual card: the interop check and the APDU comparison.

The integration tests use it to prove OpenSC's own JPKI driver accepts the virtual card
(shared/reference/opensc-interop.md); ``scripts/bench-auth`` uses it to count the APDUs
OpenSC needs for the same login + sign. Both need a card visible through pcscd.
"""

from __future__ import annotations

import os
import subprocess
import sysconfig
from collections.abc import Sequence
from pathlib import Path

# Token labels OpenSC gives the two PIN slots of a JPKI card.
AUTH_LABEL = "JPKI (User Authentication PIN)"
SIGN_LABEL = "JPKI (Digital Signature PIN)"
PKCS11_TOOL = "pkcs11-tool"
_MODULE_NAME = "opensc-pkcs11.so"


class OpenscMissingError(RuntimeError):
    """OpenSC's PKCS#11 module is not installed."""


def _module_candidates() -> list[Path]:
    # Debian installs the module under the multiarch directory; other layouts for safety.
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [Path("/usr/lib") / multiarch, Path("/usr/lib") / multiarch / "pkcs11"]
    dirs += [Path("/usr/lib64"), Path("/usr/lib"), Path("/usr/lib/pkcs11")]
    return [d / _MODULE_NAME for d in dirs]


def find_pkcs11_module() -> Path:
    """The path of ``opensc-pkcs11.so``; raises :class:`OpenscMissingError` if absent."""
    for candidate in _module_candidates():
        if candidate.is_file():
            return candidate
    raise OpenscMissingError(f"{_MODULE_NAME} not found: apt-get install opensc")


def write_opensc_conf(path: Path, card_drivers: Sequence[str] | None = None) -> Path:
    """An ``opensc.conf`` for ``OPENSC_CONF``: file caching off, optionally a driver list.

    Caching off so every run talks to the card: a cached run would read nothing and
    undercount. ``card_drivers=None`` keeps OpenSC's built-in default list.
    """
    lines = ["app default {", "    framework pkcs15 {", "        use_file_caching = no;", "    }"]
    if card_drivers is not None:
        lines.append(f"    card_drivers = {', '.join(card_drivers)};")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pkcs11_tool(
    *args: str, opensc_conf: Path | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run ``pkcs11-tool --module <opensc-pkcs11.so> ARGS`` and capture its output.

    ``opensc_conf`` is passed as ``OPENSC_CONF``; without it the system configuration applies.
    """
    env = dict(os.environ)
    if opensc_conf is not None:
        env["OPENSC_CONF"] = str(opensc_conf)
    return subprocess.run(
        [PKCS11_TOOL, "--module", str(find_pkcs11_module()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def login_and_sign(
    pin: str,
    data: Path,
    signature: Path,
    *,
    label: str = AUTH_LABEL,
    opensc_conf: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Log in to the user-authentication token and sign ``data`` with key 01 (SHA256-RSA-PKCS).

    The same operation a terminal does: PIN, then a PKCS#1 v1.5 signature by the card.
    """
    return pkcs11_tool(
        "--token-label", label, "--login", "--pin", pin, "--sign",
        "-m", "SHA256-RSA-PKCS", "--id", "01", "-i", str(data), "-o", str(signature),
        opensc_conf=opensc_conf,
    )  # fmt: skip
