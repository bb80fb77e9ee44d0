"""``terminald sim crl``: write a test CRL, hand-picked or large and synthetic."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, Groups, Subparsers, read_input

if TYPE_CHECKING:
    from cryptography import x509

    from terminald.sim.crl import CaKey, CrlEntry

# numpy, cryptography and terminald.sim.crl are imported by the functions that use them,
# so that building the parser stays cheap. terminald.sim.crl.DISTRIBUTIONS, spelled out
# for --distribution's choices; a test checks they agree.
DISTRIBUTIONS = ("uniform", "clustered")

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
        metavar="SERIAL[:REASON]",
        help="serials to list (decimal or 0x hex); REASON is an RFC 5280 name such as "
        "superseded, keyCompromise, certificateHold, removeFromCRL (default: no reasonCode)",
    )
    picked.add_argument(
        "--random", type=int, metavar="N", help="synthetic: size of the serial space"
    )
    picked.add_argument("--rate", type=float, metavar="R", help="synthetic: fraction revoked, 0..1")
    picked.add_argument("--distribution", choices=DISTRIBUTIONS, default="uniform")
    picked.add_argument("--first-serial", type=int, default=1, metavar="S")
    picked.add_argument(
        "--hold-fraction", type=float, default=0.0, metavar="F", help="fraction put on hold"
    )
    picked.add_argument("--seed", type=int, default=None, help="random seed (reproducible CRLs)")
    crl.add_argument("--crl-number", type=int, default=1, metavar="N")
    crl.add_argument("--next-update-days", type=float, default=1.0, metavar="D")
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


def _parse_serial(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise CliError(f"--revoke {text!r}: the serial is not a number") from None


def _listed_entries(specs: list[str]) -> list[CrlEntry]:
    from cryptography import x509

    from terminald.sim.crl import CrlEntry

    entries = []
    for spec in specs:
        serial_text, _, reason_text = spec.partition(":")
        reason = None
        if reason_text:
            member = REASONS.get(reason_text.lower())
            if member is None:
                raise CliError(
                    f"--revoke {spec}: unknown reason {reason_text!r}; use one of "
                    "unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, "
                    "cessationOfOperation, certificateHold, removeFromCRL, privilegeWithdrawn, "
                    "aACompromise"
                )
            reason = x509.ReasonFlags[member]
        entries.append(CrlEntry(_parse_serial(serial_text), reason))
    return entries


def _random_entries(args: argparse.Namespace) -> list[CrlEntry]:
    import numpy as np

    from terminald.sim.crl import synthetic_entries, synthetic_serials

    if args.rate is None:
        raise CliError("--random needs --rate (fraction of the serial space revoked)")
    if args.random < 1 or not 0 <= args.rate <= 1 or not 0 <= args.hold_fraction <= 1:
        raise CliError("--random must be >= 1; --rate and --hold-fraction within 0..1")
    rng = np.random.default_rng(args.seed)
    serials = synthetic_serials(args.random, args.rate, args.distribution, rng, args.first_serial)
    return synthetic_entries(serials, args.hold_fraction, rng)


def idp_text(idp: x509.IssuingDistributionPoint) -> str:
    from cryptography import x509

    names = [g.value for g in idp.full_name or () if isinstance(g, x509.DirectoryName)]
    return "; ".join(n.rfc4514_string() for n in names)


def _idp_name(text: str) -> x509.Name:
    """A municipality of the test PKI (by CRLDP city or code), or an RFC 4514 name."""
    from cryptography import x509

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
        name = x509.Name.from_rfc4514_string(text)
    except ValueError as exc:
        raise CliError(f"--idp {text!r}: not an RFC 4514 name ({exc})") from None
    if not name.rdns:
        raise CliError("--idp: the name is empty")
    return name


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
