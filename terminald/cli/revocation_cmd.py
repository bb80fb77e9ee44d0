"""``terminald revocation``: back-office keys, building bundles from CRLs, inspecting them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json, read_input
from terminald.cli.numeric_args import U32_MAX, integer
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
        description="Verify the bundle's signature with --pubkey (or answer from unverified "
        "data with --no-verify, said in the answer), then print revoked, hold or good (exit 0) "
        "for a certificate, given as --cert or as --issuer and --serial (with --crldp for its "
        "CRL partition). Print 'not covered' (exit 1) when the bundle has no data for its "
        "issuer or partition, and 'stale' (exit 1) when the bundle has expired, as the "
        "terminal would answer revocation_unavailable.",
    )
    check.add_argument("bundle", type=Path, metavar="BUNDLE")
    check.add_argument(
        "--pubkey",
        type=Path,
        action="extend",
        nargs="+",
        metavar="PUB",
        help="back-office public key(s), one of which must have signed the bundle (PEM)",
    )
    check.add_argument(
        "--no-verify",
        action="store_true",
        help="answer without checking the signature (the answer says it is unverified)",
    )
    check.add_argument(
        "--cert",
        type=Path,
        metavar="FILE",
        help="the certificate (PEM or DER), or a test-PKI card profile (DIR/cards/NAME.json: "
        "its user-authentication certificate)",
    )
    check.add_argument("--issuer", metavar="KEYID_HEX", help="issuer key id (the cert's AKI)")
    check.add_argument(
        "--serial",
        type=integer(0, U32_MAX, what="a serial (decimal or 0x hex)", base=0),
        metavar="N",
        help="decimal or 0x hex, 0..2**32-1 (JPKI serials are 4 bytes)",
    )
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
        "base_digest": header.base_digest.hex() if header.kind is BundleKind.DELTA else None,
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
        print(f"base digest:   {info['base_digest']}")
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


class _NotCovered(Exception):
    """An answer of "not covered" known before the bundle is read."""


def _certificate_der(path: Path, raw: bytes) -> bytes:
    """DER of --cert: a PEM or DER certificate, or a test-PKI card profile's auth cert."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if raw.lstrip().startswith(b"{"):
        from terminald.sim.profile import CardProfile

        try:
            der = CardProfile.from_json(raw.decode("utf-8")).auth_cert
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(
                f"--cert {path}: JSON, but not a test-PKI card profile ({exc.__class__.__name__})"
            ) from None
        if not der:
            raise CliError(f"--cert {path}: the card profile holds no authentication certificate")
        return der
    if raw.lstrip().startswith(b"-----"):
        try:
            return x509.load_pem_x509_certificate(raw).public_bytes(Encoding.DER)
        except ValueError:
            raise CliError(f"--cert {path}: PEM, but not an X.509 certificate") from None
    return raw


def _certificate_query(path: Path) -> tuple[bytes, int, tuple[bytes, ...]]:
    """(issuer key id, serial, CRLDP names) of a certificate file; a certificate only an
    indirect CRL covers is answered here ("not covered"), as the terminal does."""
    from cryptography import x509

    from terminald.pki.anchors import DECODE_ERRORS
    from terminald.pki.certificate import (
        INDIRECT_CRL_DETAIL,
        CertificateRejected,
        authority_key_id,
        crl_distribution_points,
        indirect_crl_only,
        parse_certificate,
    )

    der = _certificate_der(path, _read(path, "certificate"))
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        # cryptography's parser error is an internal structure dump: say it in one line.
        raise CliError(
            f"--cert {path}: not an X.509 certificate (PEM or DER) nor a test-PKI card "
            "profile (JSON)"
        ) from None
    try:
        # Every field decoded up front: a repeated or broken extension is one line.
        parse_certificate(der)
        issuer = authority_key_id(cert)
        points = crl_distribution_points(cert)
        indirect = indirect_crl_only(cert)
    except CertificateRejected as exc:
        raise CliError(f"--cert {path}: not a usable certificate ({exc})") from exc
    except DECODE_ERRORS as exc:
        raise CliError(f"--cert {path}: not a usable certificate ({exc})") from exc
    if issuer is None:
        raise CliError(f"--cert {path}: has no Authority Key Identifier key id")
    if indirect:
        raise _NotCovered(INDIRECT_CRL_DETAIL)
    return issuer, cert.serial_number, points


def _named_query(args: argparse.Namespace) -> tuple[bytes, int, tuple[bytes, ...]]:
    from terminald.revocation.coverage import parse_name_text

    if args.issuer is None or args.serial is None:
        raise CliError("give --cert FILE, or --issuer KEYID_HEX and --serial N")
    try:
        issuer = bytes.fromhex(args.issuer.removeprefix("0x").replace(":", ""))
    except ValueError:
        raise CliError(f"--issuer {args.issuer!r} is not hex") from None
    if not issuer:
        raise CliError("--issuer: the key id is empty")
    try:
        points = tuple(parse_name_text(text) for text in args.crldp or [])
    except ValueError as exc:
        raise CliError(f"--crldp: {exc}") from None
    return issuer, int(args.serial), points


def _open_checked(args: argparse.Namespace) -> Bundle:
    """The bundle, its signature verified with --pubkey (or not, with --no-verify)."""
    from terminald.revocation.bundle import open_bundle
    from terminald.revocation.errors import RevocationError
    from terminald.revocation.keys import KeyFileError, TrustedKeys, load_public_keys

    if args.no_verify:
        if args.pubkey:
            raise CliError("--no-verify contradicts --pubkey")
        return load_bundle(args.bundle)[1]
    if not args.pubkey:
        raise CliError(
            "check needs --pubkey PUB (a back-office key that must have signed the bundle), "
            "or --no-verify to answer from unverified data"
        )
    try:
        keys = [k for p in args.pubkey for k in load_public_keys(_read(p, "public key"), str(p))]
    except KeyFileError as exc:
        raise CliError(str(exc)) from exc
    data = _read(args.bundle, "bundle")
    try:
        return open_bundle(data, TrustedKeys(keys))
    except RevocationError as exc:
        raise CliError(f"{args.bundle}: refused: {exc}") from exc


def run_check(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from terminald.revocation.bundle import BundleKind
    from terminald.revocation.coverage import name_text

    if args.cert is not None:
        if args.issuer is not None or args.serial is not None or args.crldp is not None:
            raise CliError("--cert gives issuer, serial and CRLDP; leave out the others")
        try:
            issuer, serial, points = _certificate_query(args.cert)
        except _NotCovered as exc:
            _open_checked(args)  # the bundle is still checked: a bad one is an error
            print(f"not covered: {exc}")
            return 1
    else:
        issuer, serial, points = _named_query(args)
    bundle = _open_checked(args)
    if bundle.header.kind is not BundleKind.SNAPSHOT:
        raise CliError(f"{args.bundle} is a delta; check needs a snapshot bundle")
    unverified = (
        " (UNVERIFIED: --no-verify, the signature was not checked)" if args.no_verify else ""
    )
    snapshot = bundle.snapshot
    entries = snapshot.issuers.get(issuer)
    if entries is None:
        covered = ", ".join(k.hex() for k in sorted(snapshot.issuers)) or "none"
        print(f"not covered: no data for issuer {issuer.hex()} (the bundle has: {covered})")
        return 1
    answer = snapshot.status(issuer, serial, points)
    if answer is None:
        have = "; ".join(entries.coverage.describe())
        if points:
            wanted = " / ".join(name_text(p) for p in points)
            print(f"not covered: partition {wanted} (issuer {issuer.hex()} covers: {have})")
        else:
            print(
                "not covered: the certificate names no CRL distribution point (give --crldp), "
                f"and issuer {issuer.hex()} is covered only for: {have}"
            )
        return 1
    now = datetime.now(UTC)
    if now >= bundle.header.valid_until:
        print(
            f"stale: the bundle expired at {bundle.header.valid_until.isoformat()} (it said "
            f"{answer}); a terminal fails closed past its grace{unverified}"
        )
        return 1
    print(f"{answer}{unverified}")
    return 0
