"""``terminald revocation``: back-office keys, building bundles from CRLs, inspecting them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json, read_input
from terminald.cli.revocation_build_cmd import add_build

# cryptography, numpy and pyroaring come with terminald.revocation and the back-office
# builder: each command imports what it uses when it runs, so building the parser is cheap.
if TYPE_CHECKING:
    from terminald.revocation.bundle import Bundle
    from terminald.revocation.coverage import Coverage


def register(commands: Subparsers, groups: Groups) -> None:
    sub = groups["revocation"]

    keygen = sub.add_parser(
        "keygen",
        help="make a back-office Ed25519 signing key (KEY and KEY.pub)",
        description="Write an Ed25519 private key to KEY (PEM, mode 0600) and its public "
        "key to KEY.pub; the public key goes into the terminals' configuration.",
    )
    keygen.add_argument("--out", type=Path, required=True, metavar="KEY")
    keygen.set_defaults(func=run_keygen)

    add_build(sub)

    inspect = sub.add_parser(
        "inspect",
        help="kind, versions, counts, coverage, size, times and signature status of a bundle",
        description="Describe a bundle, with what it covers per issuer (the whole issuer or "
        "named CRL partitions). With --pubkey, check its signature: exit 1 when it is "
        "invalid or by a key not in PUB.",
    )
    inspect.add_argument("bundle", type=Path, metavar="BUNDLE")
    inspect.add_argument("--pubkey", type=Path, metavar="PUB", help="back-office public key(s)")
    inspect.add_argument("--json", action="store_true", help="one JSON object on stdout")
    inspect.set_defaults(func=run_inspect)

    check = sub.add_parser(
        "check",
        help="look up one certificate in a snapshot bundle: revoked, hold, good or not covered",
        description="Print revoked, hold or good (exit 0) for a certificate, given as --cert "
        "or as --issuer and --serial (with --crldp for its CRL partition); print 'not "
        "covered' (exit 1) when the bundle has no data for its issuer or partition, as the "
        "terminal would answer revocation_unavailable.",
    )
    check.add_argument("bundle", type=Path, metavar="BUNDLE")
    check.add_argument("--cert", type=Path, metavar="FILE", help="the certificate (PEM or DER)")
    check.add_argument("--issuer", metavar="KEYID_HEX", help="issuer key id (the cert's AKI)")
    check.add_argument("--serial", metavar="N", help="decimal or 0x hex")
    check.add_argument(
        "--crldp",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="the certificate's CRL distribution point(s), RFC 4514 "
        "(without it, only whole-issuer data covers the certificate)",
    )
    check.set_defaults(func=run_check)


def _read(path: Path, what: str) -> bytes:
    from terminald.files import MAX_CERT_FILE_SIZE, MAX_KEY_FILE_SIZE
    from terminald.revocation.bundle import DEFAULT_MAX_SIZE

    limits = {"public key": MAX_KEY_FILE_SIZE, "certificate": MAX_CERT_FILE_SIZE}
    return read_input(path, what, limits.get(what, DEFAULT_MAX_SIZE))


def write_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def load_bundle(path: Path) -> tuple[bytes, Bundle]:
    from terminald.revocation.bundle import read_unverified
    from terminald.revocation.errors import RevocationError

    data = _read(path, "bundle")
    try:
        return data, read_unverified(data)
    except RevocationError as exc:
        raise CliError(f"{path}: not a valid revocation bundle: {exc}") from exc


def run_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminald.revocation.keys import key_id_of, private_key_pem, public_key_pem

    public_path = Path(f"{args.out}.pub")
    for path in (args.out, public_path):
        if path.exists():
            raise CliError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    write_file(args.out, private_key_pem(key), 0o600)
    write_file(public_path, public_key_pem(key.public_key()))
    print(f"wrote {args.out} (private) and {public_path} (public)")
    print(f"key id {key_id_of(key.public_key()).hex()}")
    return 0


def _signature_status(data: bytes, bundle: Bundle, pubkey: Path | None) -> str:
    from terminald.revocation.bundle import signature_valid
    from terminald.revocation.keys import KeyFileError, key_id_of, load_public_keys

    if pubkey is None:
        return "not checked (no --pubkey)"
    try:
        keys = load_public_keys(_read(pubkey, "public key"), str(pubkey))
    except KeyFileError as exc:
        raise CliError(str(exc)) from exc
    for key in keys:
        if key_id_of(key) == bundle.header.signer_key_id:
            return "valid" if signature_valid(data, bundle.header, key) else "INVALID"
    return "unknown key (signed by a key not in --pubkey)"


def describe(data: bytes, bundle: Bundle, pubkey: Path | None) -> dict[str, Any]:
    from terminald.revocation.bundle import BundleKind

    header = bundle.header
    info: dict[str, Any] = {
        "kind": header.kind.label,
        "version": header.version,
        "base_version": header.base_version if header.kind is BundleKind.DELTA else None,
        "issuers": len(bundle.content.issuers),
        "size_bytes": len(data),
        "issued_at": header.issued_at.isoformat(),
        "valid_until": header.valid_until.isoformat(),
        "signer_key_id": header.signer_key_id.hex(),
        "signature": _signature_status(data, bundle, pubkey),
    }
    if header.kind is BundleKind.SNAPSHOT:
        info["revoked"], info["hold"] = bundle.snapshot.counts()
        info["coverage"] = {
            k.hex(): _coverage_json(e.coverage) for k, e in sorted(bundle.snapshot.issuers.items())
        }
    else:
        info["revoked"], info["hold"] = bundle.delta.counts()
        info["revoked_removed"], info["hold_removed"] = bundle.delta.removed_counts()
        info["coverage_added"] = {
            k.hex(): _coverage_json(c.coverage_added)
            for k, c in sorted(bundle.delta.issuers.items())
            if c.coverage_added is not None
        }
    return info


def _coverage_json(coverage: Coverage) -> str | list[str]:
    """ "whole" for the whole issuer, else the partition names as RFC 4514."""
    return "whole" if coverage.whole else coverage.describe()


def _print_coverage(title: str, coverage: dict[str, str | list[str]]) -> None:
    print(f"{title}:{'' if coverage else ' none'}")
    for key_id, scope in coverage.items():
        if isinstance(scope, str):
            print(f"  issuer {key_id}: whole issuer")
            continue
        print(f"  issuer {key_id}: {len(scope)} partition(s)")
        for name in scope:
            print(f"    {name}")


def run_inspect(args: argparse.Namespace) -> int:
    from terminald.revocation.bundle import BundleKind

    data, bundle = load_bundle(args.bundle)
    info = describe(data, bundle, args.pubkey)
    # A bundle the given key does not vouch for must not pass a script's `&&`.
    status = 1 if info["signature"].startswith(("INVALID", "unknown key")) else 0
    if args.json:
        print_json(info)
        return status
    base = f" (delta from version {info['base_version']})" if info["base_version"] else ""
    added = " added" if bundle.header.kind is BundleKind.DELTA else ""
    print(f"kind:          {info['kind']}{base}")
    print(f"version:       {info['version']}")
    print(f"issuers:       {info['issuers']}")
    print(f"revoked{added}: {info['revoked']}")
    print(f"on hold{added}: {info['hold']}")
    if bundle.header.kind is BundleKind.DELTA:
        print(f"revoked removed: {info['revoked_removed']}")
        print(f"on hold removed: {info['hold_removed']}")
    print(f"size:          {info['size_bytes']} bytes")
    print(f"issued at:     {info['issued_at']}")
    print(f"valid until:   {info['valid_until']}")
    print(f"signer key id: {info['signer_key_id']}")
    print(f"signature:     {info['signature']}")
    if "coverage" in info:
        _print_coverage("coverage", info["coverage"])
    else:
        _print_coverage("coverage added", info["coverage_added"])
    return status


def _certificate_query(path: Path) -> tuple[bytes, int, tuple[bytes, ...]]:
    """(issuer key id, serial, CRLDP names) of a certificate file."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from terminald.pki.anchors import DECODE_ERRORS
    from terminald.pki.certificate import (
        CertificateRejected,
        authority_key_id,
        crl_distribution_points,
        parse_certificate,
    )

    raw = _read(path, "certificate")
    try:
        if raw.lstrip().startswith(b"-----"):
            raw = x509.load_pem_x509_certificate(raw).public_bytes(Encoding.DER)
        # Every field decoded up front: a repeated or broken extension is one line.
        cert = parse_certificate(raw)
        issuer = authority_key_id(cert)
        points = crl_distribution_points(cert)
    except CertificateRejected as exc:
        raise CliError(f"--cert {path}: not a usable certificate ({exc})") from exc
    except DECODE_ERRORS as exc:
        raise CliError(f"--cert {path}: not a usable certificate ({exc})") from exc
    if issuer is None:
        raise CliError(f"--cert {path}: has no Authority Key Identifier key id")
    return issuer, cert.serial_number, points


def _named_query(args: argparse.Namespace) -> tuple[bytes, int, tuple[bytes, ...]]:
    from terminald.revocation.coverage import parse_name_text

    if args.issuer is None or args.serial is None:
        raise CliError("give --cert FILE, or --issuer KEYID_HEX and --serial N")
    try:
        issuer = bytes.fromhex(args.issuer.removeprefix("0x").replace(":", ""))
    except ValueError:
        raise CliError(f"--issuer {args.issuer!r} is not hex") from None
    try:
        serial = int(args.serial, 0)
    except ValueError:
        raise CliError(f"--serial {args.serial!r} is not a number") from None
    try:
        points = tuple(parse_name_text(text) for text in args.crldp or [])
    except ValueError as exc:
        raise CliError(f"--crldp: {exc}") from None
    return issuer, serial, points


def run_check(args: argparse.Namespace) -> int:
    from terminald.revocation.bundle import BundleKind
    from terminald.revocation.coverage import name_text
    from terminald.revocation.serials import MAX_SERIAL

    if args.cert is not None:
        if args.issuer or args.serial or args.crldp:
            raise CliError("--cert gives issuer, serial and CRLDP; leave out the others")
        issuer, serial, points = _certificate_query(args.cert)
    else:
        issuer, serial, points = _named_query(args)
    if not 0 <= serial <= MAX_SERIAL:
        raise CliError(f"serial {serial} is outside 0..2**32-1 (JPKI serials are 4 bytes)")
    _, bundle = load_bundle(args.bundle)
    if bundle.header.kind is not BundleKind.SNAPSHOT:
        raise CliError(f"{args.bundle} is a delta; check needs a snapshot bundle")
    snapshot = bundle.snapshot
    entries = snapshot.issuers.get(issuer)
    if entries is None:
        covered = ", ".join(k.hex() for k in sorted(snapshot.issuers)) or "none"
        print(f"not covered: no data for issuer {issuer.hex()} (the bundle has: {covered})")
        return 1
    answer = snapshot.status(issuer, serial, points)
    if answer is None:
        wanted = " / ".join(name_text(p) for p in points) or "no CRL distribution point"
        have = "; ".join(entries.coverage.describe())
        print(f"not covered: partition {wanted} (issuer {issuer.hex()} covers: {have})")
        return 1
    print(answer)
    return 0
