"""``terminald sim pki``: build the test PKI and the virtual card profiles it issues."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers

if TYPE_CHECKING:
    from terminald.sim.testpki import TestPkiManifest

# terminald.sim.testpki.MAX_CARDS, spelled out so that building the parser does not import
# the test PKI (and cryptography with it); a test checks they agree.
MAX_CARDS = 999


def register(commands: Subparsers, groups: Groups) -> None:
    del commands  # lives under "sim"
    pki = groups["sim"].add_parser(
        "pki",
        help="generate a test PKI shaped like J-LIS's, and card profiles for virtual cards",
        description="Generate three same-DN test root generations, good and deliberately "
        "broken user-authentication certificates, and one card profile per card, plus "
        "what systemd/terminald-demo.toml copied into DIR names beside it (enrolled.toml, "
        "state/). Regenerating into the same directory replaces it whole.",
    )
    pki.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    pki.add_argument(
        "--cards",
        type=int,
        default=3,
        metavar="N",
        help=f"number of good cards card-001… (1..{MAX_CARDS}, default 3)",
    )
    pki.set_defaults(func=run_pki)


def run_pki(args: argparse.Namespace) -> int:
    from terminald.sim.demo_config import write_demo_files
    from terminald.sim.testpki import TestPkiError, build_test_pki

    if not 1 <= args.cards <= MAX_CARDS:
        raise CliError(f"--cards must be between 1 and {MAX_CARDS}")
    started = time.monotonic()
    try:
        manifest = build_test_pki(args.out, cards=args.cards)
        write_demo_files(args.out, manifest)
    except TestPkiError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    _print_summary(manifest, time.monotonic() - started)
    return 0


def _print_summary(manifest: TestPkiManifest, seconds: float) -> None:
    directory = manifest.directory
    print(f"test PKI written to {directory} in {seconds:.1f} s")
    print(f"  trust anchors (--trust): {manifest.trust_dir}")
    print(f"  CA certificates and keys: {manifest.ca_dir}  (index.json)")
    print(f"  manifest:                 {directory / 'manifest.json'}")
    print()
    print("roots:")
    for root in manifest.roots:
        expired = (
            "  (expired, like J-LIS authca01)" if root.not_after < manifest.generated_at else ""
        )
        print(
            f"  {root.name:<11} {root.purpose:<17} serial {root.serial:#010x}  "
            f"key id {root.key_id}  {root.not_before:%Y-%m-%d} → {root.not_after:%Y-%m-%d}"
            f"{expired}"
        )
    print()
    header = f"  {'CARD':<15} {'PIN':<5} {'TRIES':>5}  {'SERIAL':>10}  {'ROOT':<10} "
    # ISSUER with SERIAL: a certificate is the pair (the twin shares card-001's serial).
    print(header + f"{'NOT AFTER':<10}  {'EXPECTED':<22} ISSUER")
    for card in manifest.cards:
        serial = "-" if card.serial is None else str(card.serial)
        not_after = "-" if card.not_after is None else f"{card.not_after:%Y-%m-%d}"
        print(
            f"  {card.name:<15} {card.pin or '-':<5} {card.auth_tries:>5}  {serial:>10}  "
            f"{card.root or '-':<10} {not_after:<10}  {card.expected.value:<22} "
            f"{card.issuer_key_id or '-'}"
        )
    print()
    print(f"card profiles: {directory / 'cards'}/<CARD>.json")
    print(
        f"for the demo configuration: {directory / 'enrolled.toml'} (all cards but card-003 "
        f"and twin) and {directory / 'state'}/; "
        f"cp systemd/terminald-demo.toml {directory / 'terminald.toml'}"
    )
