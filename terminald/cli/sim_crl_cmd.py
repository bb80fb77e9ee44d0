"""``terminald sim crl``: write a test CRL, hand-picked or large and synthetic."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers, read_input
from terminald.cli.numeric_args import U64_MAX, X509_INTEGER_MAX, integer, number

if TYPE_CHECKING:
    from cryptography import x509

    from terminald.sim.crl import CaKey, CrlEntry

# numpy, cryptography and terminald.sim.crl are imported by the functions that use them,
# so that building the parser stays cheap. terminald.sim.crl.DISTRIBUTIONS, spelled out
# for --distribution's choices; a test checks they agree.
DISTRIBUTIONS = ("uniform", "clustered")

MAX_RANDOM_SPACE = 2**32
# Synthetic serials are drawn as int64: the top of the space must fit.
MAX_FIRST_SERIAL = 2**62
MAX_NEXT_UPDATE_DAYS = 3660.0

# RFC 5280 names, matched case-insensitively, to cryptography's x509.ReasonFlags members.
REASONS = {
    "unspecified": "unspecified",
    "keycompromise": "key_compromise",
    "cacompromise": "ca_compromise",
    "affiliationchanged": "affiliation_changed",
    "superseded": "superseded",
    "cessationofoperation": "cessation_of_operation",
    "certificatehold": "certificate_hold",
    "hold": "certificate_hold",
    "removefromcrl": "remove_from_crl",
    "privilegewithdrawn": "privilege_withdrawn",
    "aacompromise": "aa_compromise",
}


def register(commands: Subparsers, groups: Groups) -> None:
    crl = groups["sim"].add_parser(
        "crl",
        help="write a signed test CRL (chosen entries or a large synthetic one)",
        description="Write a DER CRL signed by a test CA. Entries are either listed with "
        "--revoke or drawn at random with --random/--rate; with neither the CRL is empty.",
    )
    ca = crl.add_argument_group("issuing CA (either --ca and --ca-key, or --pki and --root)")
    ca.add_argument("--ca", type=Path, metavar="CERT", help="CA certificate (PEM or DER)")
    ca.add_argument("--ca-key", type=Path, metavar="KEY", help="CA private key (unencrypted PEM)")
    ca.add_argument("--pki", type=Path, metavar="DIR", help="test PKI directory (sim pki --out)")
    ca.add_argument("--root", metavar="NAME", help="root in the test PKI: DIR/ca/NAME.pem")
    picked = crl.add_argument_group("entries")
    picked.add_argument(
        "--revoke",
        action="extend",
        nargs="+",
        type=revoke_spec,
        metavar="SERIAL[:REASON]",
        help="serials to list (decimal or 0x hex, 1..2**159-1); REASON is an RFC 5280 name such as "
        "superseded, keyCompromise, certificateHold, removeFromCRL (default: no reasonCode)",
    )
    picked.add_argument(
        "--random",
        type=integer(1, MAX_RANDOM_SPACE),
        metavar="N",
        help=f"synthetic: size of the serial space (1..{MAX_RANDOM_SPACE})",
    )
    picked.add_argument(
        "--rate", type=number(0, 1), metavar="R", help="synthetic: fraction revoked, 0..1"
    )
    picked.add_argument("--distribution", choices=DISTRIBUTIONS, default="uniform")
    picked.add_argument(
        "--first-serial",
        type=integer(1, MAX_FIRST_SERIAL, base=0),
        default=1,
        metavar="S",
        help=f"synthetic: the lowest serial (1..{MAX_FIRST_SERIAL})",
    )
    picked.add_argument(
        "--hold-fraction",
        type=number(0, 1),
        default=0.0,
        metavar="F",
        help="fraction put on hold, 0..1",
    )
    picked.add_argument(
        "--seed",
        type=integer(0, U64_MAX),
        default=None,
        help="random seed, 0..2**64-1 (reproducible CRLs)",
    )
    crl.add_argument(
        "--crl-number",
        type=integer(0, X509_INTEGER_MAX, base=0),
        default=1,
        metavar="N",
        help="CRL number, 0..2**159-1 (RFC 5280: at most 20 octets)",
    )
    crl.add_argument(
        "--next-update-days",
        type=number(0, MAX_NEXT_UPDATE_DAYS, low_open=True),
        default=1.0,
        metavar="D",
        help=f"nextUpdate D days after thisUpdate (more than 0, at most {MAX_NEXT_UPDATE_DAYS:g})",
    )
    crl.add_argument(
        "--idp",
        metavar="NAME",
        help="make a partitioned CRL: a critical IssuingDistributionPoint naming a test-PKI "
        "municipality (city as in the CRLDP, e.g. Kiyose-shi, or its 5-digit code) or an "
        "RFC 4514 directory name (e.g. 'CN=Kiyose-shi CRLDP,OU=Tokyo,...')",
    )
    crl.add_argument(
        "--no-aki",
        action="store_true",
        help="omit the Authority Key Identifier (a CRL the builder must refuse)",
    )
    crl.add_argument("--out", type=Path, required=True, metavar="FILE")
    crl.set_defaults(func=run)


def _read(path: Path, what: str) -> bytes:
    from terminald.files import MAX_KEY_FILE_SIZE

    return read_input(path, what, MAX_KEY_FILE_SIZE)  # certificates and keys: small


def _load_ca(args: argparse.Namespace) -> tuple[x509.Certificate, CaKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from terminald.sim.crl import CaKey

    if args.pki is not None or args.root is not None:
        if args.pki is None or args.root is None or args.ca or args.ca_key:
            raise CliError("give --pki DIR and --root NAME together, without --ca/--ca-key")
        cert_path = args.pki / "ca" / f"{args.root}.pem"
        key_path = args.pki / "ca" / f"{args.root}.key.pem"
    elif args.ca is not None and args.ca_key is not None:
        cert_path, key_path = args.ca, args.ca_key
    else:
        raise CliError("say which CA signs: --ca CERT --ca-key KEY, or --pki DIR --root NAME")
    raw = _read(cert_path, "CA certificate")
    try:
        cert = (
            x509.load_pem_x509_certificate(raw)
            if raw.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(raw)
        )
    except ValueError as exc:
        raise CliError(f"{cert_path}: not a PEM or DER certificate ({exc})") from exc
    try:
        key = serialization.load_pem_private_key(_read(key_path, "CA key"), password=None)
    except (ValueError, TypeError) as exc:
        raise CliError(f"{key_path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, CaKey):
        raise CliError(f"{key_path}: a {type(key).__name__}; an RSA or EC CA key is needed")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise CliError(f"{key_path} is not the private key of {cert_path}")
    return cert, key


def revoke_spec(spec: str) -> tuple[int, str | None]:
    """argparse type of --revoke: (serial, RFC 5280 reason name or None), checked."""
    serial_text, _, reason_text = spec.partition(":")
    serial = integer(1, X509_INTEGER_MAX, what="a serial (decimal or 0x hex)", base=0)(serial_text)
    if reason_text and reason_text.lower() not in REASONS:
        raise argparse.ArgumentTypeError(
            f"{spec}: unknown reason {reason_text!r}; use one of unspecified, keyCompromise, "
            "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
            "certificateHold, removeFromCRL, privilegeWithdrawn, aACompromise"
        )
    return serial, REASONS[reason_text.lower()] if reason_text else None


def _listed_entries(specs: list[tuple[int, str | None]]) -> list[CrlEntry]:
    from cryptography import x509

    from terminald.sim.crl import CrlEntry

    return [
        CrlEntry(serial, x509.ReasonFlags[member] if member else None) for serial, member in specs
    ]


def _random_entries(args: argparse.Namespace) -> list[CrlEntry]:
    import numpy as np

    from terminald.sim.crl import synthetic_entries, synthetic_serials

    if args.rate is None:
        raise CliError("--random needs --rate (fraction of the serial space revoked)")
    rng = np.random.default_rng(args.seed)
    serials = synthetic_serials(args.random, args.rate, args.distribution, rng, args.first_serial)
    return synthetic_entries(serials, args.hold_fraction, rng)


def idp_text(idp: x509.IssuingDistributionPoint) -> str:
    from cryptography import x509

    names = [g.value for g in idp.full_name or () if isinstance(g, x509.DirectoryName)]
    return "; ".join(n.rfc4514_string() for n in names)


def _idp_name(text: str) -> x509.Name:
    """A municipality of the test PKI (by CRLDP city or code), or an RFC 4514 name."""
    from terminald.revocation.coverage import rfc4514_name
    from terminald.sim.testpki import MUNICIPALITIES, crl_distribution_point_name

    for town in MUNICIPALITIES:
        if text.lower() in (town.city.lower(), town.code):
            return crl_distribution_point_name(town)
    if "=" not in text:
        towns = ", ".join(t.city for t in MUNICIPALITIES)
        raise CliError(
            f"--idp {text!r}: not a test-PKI municipality ({towns}) nor an RFC 4514 name"
        )
    try:
        return rfc4514_name(text)
    except ValueError as exc:
        raise CliError(f"--idp: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from cryptography import x509

    from terminald.pki.anchors import key_identifier
    from terminald.sim.crl import make_crl, partition_idp

    if args.revoke is not None and args.random is not None:
        raise CliError("give either --revoke SERIAL... or --random N --rate R, not both")
    if not args.next_update_days > 0:
        raise CliError("--next-update-days must be more than 0 (nextUpdate follows thisUpdate)")
    cert, key = _load_ca(args)
    idp = partition_idp(_idp_name(args.idp)) if args.idp is not None else None
    # Neither: an empty CRL, which a CA with nothing revoked still publishes.
    entries = (
        _random_entries(args) if args.random is not None else _listed_entries(args.revoke or [])
    )
    if len({e.serial for e in entries}) != len(entries):
        raise CliError("a serial is listed twice")
    now = datetime.now(UTC).replace(microsecond=0)
    der = make_crl(
        cert,
        key,
        entries,
        now,
        now + timedelta(days=args.next_update_days),
        args.crl_number,
        with_authority_key_id=not args.no_aki,
        issuing_distribution_point=idp,
    )
    try:
        args.out.write_bytes(der)
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    hold = sum(e.reason is x509.ReasonFlags.certificate_hold for e in entries)
    scope = f"partition {idp_text(idp)}" if idp is not None else "whole issuer"
    print(
        f"wrote {args.out}: {len(entries)} entries ({hold} on hold), {len(der)} bytes, "
        f"issuer key id {key_identifier(cert).hex()}, {scope}"
    )
    return 0
