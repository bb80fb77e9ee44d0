"""``terminald revocation``: back-office keys, building bundles from CRLs, inspecting them."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json

# cryptography, numpy and pyroaring come with terminald.revocation and the back-office
# builder: each command imports what it uses when it runs, so building the parser is cheap.
if TYPE_CHECKING:
    from cryptography import x509

    from terminald.revocation.bundle import Bundle
    from terminald.revocation.serials import RevocationSet


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

    build = sub.add_parser(
        "build",
        help="CRLs → a signed snapshot, or a delta against --base",
        description="Read DER CRLs, build the revocation set, and sign it as a snapshot; "
        "with --base (a snapshot bundle), write a delta from that version instead.",
    )
    build.add_argument("--crl", type=Path, nargs="+", required=True, metavar="FILE")
    build.add_argument("--key", type=Path, required=True, help="back-office private key (PEM)")
    build.add_argument("--version", type=int, required=True, metavar="N", help="bundle version")
    build.add_argument("--base", type=Path, metavar="OLD_BUNDLE", help="snapshot to diff against")
    build.add_argument("--valid-days", type=float, default=7.0, metavar="D", help="default 7")
    build.add_argument(
        "--issuer-cert",
        type=Path,
        nargs="+",
        metavar="CERT",
        help="CA certificates: each CRL's signature must verify against the one with its key id",
    )
    build.add_argument("--out", type=Path, required=True, metavar="BUNDLE")
    build.set_defaults(func=run_build)

    inspect = sub.add_parser(
        "inspect",
        help="kind, versions, counts, size, times and signature status of a bundle",
        description="Describe a bundle. With --pubkey, check its signature.",
    )
    inspect.add_argument("bundle", type=Path, metavar="BUNDLE")
    inspect.add_argument("--pubkey", type=Path, metavar="PUB", help="back-office public key(s)")
    inspect.add_argument("--json", action="store_true", help="one JSON object on stdout")
    inspect.set_defaults(func=run_inspect)

    check = sub.add_parser(
        "check",
        help="look up one certificate in a snapshot bundle: revoked, hold or good",
        description="Print revoked, hold or good for (issuer key id, serial); exit 0.",
    )
    check.add_argument("bundle", type=Path, metavar="BUNDLE")
    check.add_argument("--issuer", required=True, metavar="KEYID_HEX")
    check.add_argument("--serial", required=True, metavar="N", help="decimal or 0x hex")
    check.set_defaults(func=run_check)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def _bundle(path: Path) -> tuple[bytes, Bundle]:
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
    _write(args.out, private_key_pem(key), 0o600)
    _write(public_path, public_key_pem(key.public_key()))
    print(f"wrote {args.out} (private) and {public_path} (public)")
    print(f"key id {key_id_of(key.public_key()).hex()}")
    return 0


def _issuer_certs(paths: list[Path] | None) -> list[x509.Certificate]:
    from cryptography import x509

    certs = []
    for path in paths or []:
        raw = _read(path, "issuer certificate")
        try:
            certs.append(
                x509.load_pem_x509_certificate(raw)
                if raw.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(raw)
            )
        except ValueError as exc:
            raise CliError(f"{path}: not a PEM or DER certificate ({exc})") from exc
    return certs


def _base_set(path: Path, version: int) -> tuple[int, RevocationSet]:
    from terminald.revocation.bundle import BundleKind

    _, base = _bundle(path)
    if base.header.kind is not BundleKind.SNAPSHOT:
        raise CliError(
            f"--base {path} is a delta (version {base.header.version}); a delta is built "
            "against a snapshot, so build a snapshot of that version too and pass it"
        )
    if version <= base.header.version:
        raise CliError(f"--version {version} must be greater than the base's {base.header.version}")
    return base.header.version, base.snapshot


def run_build(args: argparse.Namespace) -> int:
    from terminald.backoffice.revocation_builder import (
        CrlRefused,
        build_revocation_set,
        read_crl,
    )
    from terminald.revocation.bundle import encode_bundle
    from terminald.revocation.keys import KeyFileError, load_private_key
    from terminald.revocation.serials import diff

    if args.version < 1:
        raise CliError("--version must be >= 1")
    if not args.valid_days > 0:
        raise CliError("--valid-days must be more than 0")
    try:
        key = load_private_key(_read(args.key, "key"), str(args.key))
    except KeyFileError as exc:
        raise CliError(str(exc)) from exc
    issuers = _issuer_certs(args.issuer_cert)
    try:
        crls = [read_crl(_read(p, "CRL"), str(p), issuers) for p in args.crl]
    except CrlRefused as exc:
        raise CliError(str(exc)) from exc
    revocations = build_revocation_set(crls)
    now = datetime.now(UTC).replace(microsecond=0)
    valid_until = now + timedelta(days=args.valid_days)
    if args.base is None:
        data = encode_bundle(
            revocations,
            version=args.version,
            issued_at=now,
            valid_until=valid_until,
            signing_key=key,
        )
    else:
        base_version, base = _base_set(args.base, args.version)
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
    _write(args.out, data)
    revoked, hold = revocations.counts()
    kind = "snapshot" if args.base is None else f"delta from version {base_version}"
    print(
        f"wrote {args.out}: {kind}, version {args.version}, {len(data)} bytes; "
        f"{len(revocations.issuers)} issuer(s), {revoked} revoked, {hold} on hold; "
        f"valid until {valid_until.isoformat()}"
    )
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
    else:
        info["revoked"], info["hold"] = bundle.delta.counts()
        info["revoked_removed"], info["hold_removed"] = bundle.delta.removed_counts()
    return info


def run_inspect(args: argparse.Namespace) -> int:
    from terminald.revocation.bundle import BundleKind

    data, bundle = _bundle(args.bundle)
    info = describe(data, bundle, args.pubkey)
    if args.json:
        print_json(info)
        return 0
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
    return 0


def run_check(args: argparse.Namespace) -> int:
    from terminald.revocation.bundle import BundleKind
    from terminald.revocation.serials import MAX_SERIAL

    try:
        issuer = bytes.fromhex(args.issuer.removeprefix("0x").replace(":", ""))
    except ValueError:
        raise CliError(f"--issuer {args.issuer!r} is not hex") from None
    try:
        serial = int(args.serial, 0)
    except ValueError:
        raise CliError(f"--serial {args.serial!r} is not a number") from None
    if not 0 <= serial <= MAX_SERIAL:
        raise CliError(f"--serial {serial} is outside 0..2**32-1 (JPKI serials are 4 bytes)")
    _, bundle = _bundle(args.bundle)
    if bundle.header.kind is not BundleKind.SNAPSHOT:
        raise CliError(f"{args.bundle} is a delta; check needs a snapshot bundle")
    answer = bundle.snapshot.status(issuer, serial)
    if answer is None:
        covered = ", ".join(k.hex() for k in sorted(bundle.snapshot.issuers)) or "none"
        raise CliError(
            f"{args.bundle} has no data for issuer {issuer.hex()} (it covers: {covered})"
        )
    print(answer)
    return 0
