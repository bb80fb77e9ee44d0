"""``terminald revocation build``: CRLs → a signed snapshot or delta, checked first.

Each CRL must be authentic (issuer and signature, against --issuer-cert or the trust
anchors), current (before its nextUpdate) and of a scope the bundle can state (its
IssuingDistributionPoint); the bundle never outlives the CRLs it was built from. Each of
these checks has an explicit, warned-about way out for tests and emergencies.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from terminald.cli.common import CliError, read_input
from terminald.cli.numeric_args import U64_MAX, integer, number
from terminald.cli.trust import add_trust_argument

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminald.backoffice.revocation_builder import CrlContents
    from terminald.revocation.serials import RevocationDelta, RevocationSet

DEFAULT_VALID_DAYS = 7.0
MAX_VALID_DAYS = 3660.0


def add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = sub.add_parser(
        "build",
        help="CRLs → a signed snapshot, or a delta against --base",
        description="Read DER CRLs, check each one's issuer, signature, nextUpdate and "
        "IssuingDistributionPoint, build the revocation set with its coverage per issuer "
        "(whole issuer, or CRL partitions), and sign it as a snapshot; with --base (a "
        "snapshot bundle), write a delta from that version instead. Options that take "
        "several values accept them after one flag or with the flag repeated.",
    )
    build.add_argument(
        "--crl",
        type=Path,
        action="extend",
        nargs="+",
        required=True,
        metavar="FILE",
        help="DER CRLs, all kept (full CRLs; partitioned ones by their IDP)",
    )
    build.add_argument("--key", type=Path, required=True, help="back-office private key (PEM)")
    build.add_argument(
        "--version",
        type=integer(1, U64_MAX),
        required=True,
        metavar="N",
        help="bundle version (1..2**64-1)",
    )
    build.add_argument(
        "--base",
        type=Path,
        metavar="OLD_BUNDLE",
        help="snapshot to diff against; its signature must verify (with --key's public key, "
        "or --base-pubkey)",
    )
    build.add_argument(
        "--base-pubkey",
        type=Path,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="back-office public key(s) that may have signed --base (default: --key's own)",
    )
    build.add_argument(
        "--valid-days",
        type=number(0, MAX_VALID_DAYS, low_open=True),
        metavar="D",
        help=f"bundle valid for D days (default {DEFAULT_VALID_DAYS:g}, cut to the earliest "
        "nextUpdate of the CRLs); more than the earliest nextUpdate is refused unless "
        "--allow-beyond-next-update",
    )
    build.add_argument(
        "--issuer-cert",
        type=Path,
        action="extend",
        nargs="+",
        metavar="CERT",
        help="CA certificates that may have signed the CRLs (PEM or DER), each a trust anchor "
        "(same public key) or issued by one (--trust, default the packaged J-LIS roots); "
        "without it the trust anchors are used, with --trust both",
    )
    add_trust_argument(build)
    build.add_argument(
        "--no-verify-crl",
        action="store_true",
        help="do not check the CRLs' issuer and signature (prints a warning; tests only)",
    )
    build.add_argument(
        "--allow-expired-crl",
        action="store_true",
        help="use CRLs at or past their nextUpdate, or without one (prints a warning)",
    )
    build.add_argument(
        "--allow-beyond-next-update",
        action="store_true",
        help="let --valid-days reach past the CRLs' earliest nextUpdate (prints a warning)",
    )
    build.add_argument("--out", type=Path, required=True, metavar="BUNDLE")
    build.set_defaults(func=run_build)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read(path: Path, what: str) -> bytes:
    from terminald.files import MAX_CERT_FILE_SIZE, MAX_CRL_SIZE, MAX_KEY_FILE_SIZE

    limits = {"CRL": MAX_CRL_SIZE, "issuer certificate": MAX_CERT_FILE_SIZE}
    return read_input(path, what, limits.get(what, MAX_KEY_FILE_SIZE))


def _certificate(path: Path) -> x509.Certificate:
    from cryptography import x509

    from terminald.pki.anchors import DECODE_ERRORS

    raw = _read(path, "issuer certificate")
    try:
        if raw.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except DECODE_ERRORS as exc:
        raise CliError(f"{path}: not a PEM or DER certificate ({exc})") from exc


def crl_issuers(args: argparse.Namespace, now: datetime) -> list[x509.Certificate] | None:
    """Certificates a CRL may be signed by; None when the check is switched off.

    --issuer-cert certificates count only when trusted: a trust anchor (--trust, default
    the packaged J-LIS roots), compared by public key, or issued by one.
    """
    from terminald.backoffice.revocation_builder import CrlRefused, trusted_crl_signers
    from terminald.cli.trust import load_trust

    if args.no_verify_crl:
        if args.issuer_cert or args.trust:
            raise CliError("--no-verify-crl contradicts --issuer-cert / --trust")
        _warn("--no-verify-crl: the CRLs' issuer and signature are NOT checked")
        return None
    anchors = [anchor.certificate for anchor in load_trust(args.trust).anchors()]
    given = [(str(path), _certificate(path)) for path in args.issuer_cert or []]
    try:
        certs = trusted_crl_signers(given, anchors, now)
    except CrlRefused as exc:
        raise CliError(str(exc)) from exc
    if args.trust or not certs:
        certs += anchors
    return certs


def _valid_until(args: argparse.Namespace, crls: list[CrlContents], now: datetime) -> datetime:
    """--valid-days from now, never past the earliest nextUpdate of a current CRL."""
    days = DEFAULT_VALID_DAYS if args.valid_days is None else args.valid_days
    wanted = now + timedelta(days=days)
    bounds = [(c.next_update, c.source) for c in crls if c.next_update and c.next_update > now]
    for crl in crls:
        if crl.next_update is None or crl.next_update <= now:
            _warn(f"{crl.source}: expired or without nextUpdate, used anyway (--allow-expired-crl)")
    if not bounds:
        return wanted
    earliest, source = min(bounds)
    if wanted <= earliest:
        return wanted
    if args.valid_days is None:
        return earliest
    if not args.allow_beyond_next_update:
        raise CliError(
            f"--valid-days {days:g} reaches past {source}'s nextUpdate {earliest.isoformat()}: "
            "the bundle would vouch for data its CRL no longer does (drop --valid-days, or "
            "--allow-beyond-next-update)"
        )
    _warn(f"the bundle stays valid after {source}'s nextUpdate {earliest.isoformat()}")
    return wanted


def _base_set(
    path: Path, version: int, key: Ed25519PrivateKey, pubkeys: list[Path] | None
) -> tuple[int, RevocationSet]:
    """The snapshot to diff against, its signature verified: a delta says "apply me to
    exactly this content", so the content must be what the back office signed."""
    from terminald.revocation.bundle import BundleKind, open_bundle
    from terminald.revocation.errors import RevocationError
    from terminald.revocation.keys import KeyFileError, TrustedKeys, load_public_keys

    data = _read(path, "--base bundle")
    if pubkeys:
        try:
            keys = [k for p in pubkeys for k in load_public_keys(_read(p, "public key"), str(p))]
        except KeyFileError as exc:
            raise CliError(str(exc)) from exc
        whose = "--base-pubkey"
    else:
        keys, whose = [key.public_key()], "--key's public key (else give --base-pubkey)"
    try:
        base = open_bundle(data, TrustedKeys(keys))
    except RevocationError as exc:
        raise CliError(f"--base {path}: refused, verified with {whose}: {exc}") from exc
    if base.header.kind is not BundleKind.SNAPSHOT:
        raise CliError(
            f"--base {path} is a delta (version {base.header.version}); a delta is built "
            "against a snapshot, so build a snapshot of that version too and pass it"
        )
    if version <= base.header.version:
        raise CliError(f"--version {version} must be greater than the base's {base.header.version}")
    return base.header.version, base.snapshot


def _summary(
    revocations: RevocationSet, change: RevocationDelta | None, base_version: int | None
) -> str:
    revoked, hold = revocations.counts()
    partitioned = sum(not e.coverage.whole for e in revocations.issuers.values())
    issuers = f"{len(revocations.issuers)} issuer(s) ({partitioned} by partition)"
    if change is None:
        return f"{issuers}, {revoked} revoked, {hold} on hold"
    added, held = change.counts()
    removed, released = change.removed_counts()
    widened = sum(c.coverage_added is not None for c in change.issuers.values())
    return (
        f"adds {added} revoked and {held} on hold, removes {removed} revoked and {released} "
        f"on hold, widens coverage of {widened} issuer(s) (on top of version {base_version}; "
        f"the result: {issuers}, {revoked} revoked, {hold} on hold)"
    )


def run_build(args: argparse.Namespace) -> int:
    from terminald.backoffice.revocation_builder import (
        CrlRefused,
        build_revocation_set,
        read_crl,
    )
    from terminald.cli.revocation_cmd import write_file
    from terminald.revocation.bundle import encode_bundle
    from terminald.revocation.keys import KeyFileError, load_private_key
    from terminald.revocation.serials import diff

    try:
        key = load_private_key(_read(args.key, "key"), str(args.key))
    except KeyFileError as exc:
        raise CliError(str(exc)) from exc
    now = datetime.now(UTC).replace(microsecond=0)
    issuers = crl_issuers(args, now)
    try:
        crls = [
            read_crl(
                _read(p, "CRL"), str(p), issuers, now=now, allow_expired=args.allow_expired_crl
            )
            for p in args.crl
        ]
    except CrlRefused as exc:
        raise CliError(str(exc)) from exc
    revocations = build_revocation_set(crls)
    # The bundle stores whole seconds: say what it stores.
    valid_until = _valid_until(args, crls, now).replace(microsecond=0)
    if valid_until <= now:
        raise CliError(f"--valid-days {args.valid_days:g} is less than a second")
    change = None
    base_version = None
    if args.base_pubkey and args.base is None:
        raise CliError("--base-pubkey verifies --base; give --base too")
    if args.base is None:
        data = encode_bundle(
            revocations,
            version=args.version,
            issued_at=now,
            valid_until=valid_until,
            signing_key=key,
        )
        kind = "snapshot"
    else:
        base_version, base = _base_set(args.base, args.version, key, args.base_pubkey)
        try:
            change = diff(base, revocations)
        except ValueError as exc:
            raise CliError(f"cannot express this as a delta: {exc}; build a snapshot") from exc
        data = encode_bundle(
            change,
            version=args.version,
            base_version=base_version,
            issued_at=now,
            valid_until=valid_until,
            signing_key=key,
        )
        kind = f"delta from version {base_version}"
    write_file(args.out, data)
    print(
        f"wrote {args.out}: {kind}, version {args.version}, {len(data)} bytes; "
        f"{_summary(revocations, change, base_version)}; valid until {valid_until.isoformat()}"
    )
    return 0
