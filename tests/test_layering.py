"""The pure core never imports a hardware library, and imports go one way (DESIGN.md §3)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "terminald"
CORE = ("card", "pki", "revocation", "link", "core", "enrolment")
HARDWARE = ("smartcard", "gpiozero", "serial", "sdnotify", "lgpio", "RPi")
# Tiers the core must not reach into.
OUTER = (
    "terminald.backends",
    "terminald.daemon",
    "terminald.cli",
    "terminald.sim",
    "terminald.backoffice",
    "terminald.store",
)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


CORE_FILES = sorted(p for tier in CORE for p in (PACKAGE / tier).rglob("*.py"))


def test_there_is_core_code_to_check() -> None:
    assert len(CORE_FILES) >= 10


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_imports_no_hardware_and_no_outer_tier(path: Path) -> None:
    for name in imports_of(path):
        root = name.split(".")[0]
        assert root not in HARDWARE, f"{path} imports {name}"
        assert not name.startswith(OUTER), f"{path} imports outer tier {name}"


def test_the_check_would_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import smartcard.scard\nfrom gpiozero import LED\n")
    assert {"smartcard.scard", "gpiozero"} <= imports_of(bad)


def test_only_backends_import_hardware_libraries() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("backends", "sim"):  # sim drives the real pcscd to test it
            continue
        for name in imports_of(path):
            if name.split(".")[0] in HARDWARE:
                offenders.append(f"{rel}: {name}")
    assert offenders == []
