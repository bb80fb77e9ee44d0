"""``terminald cert show``: what a certificate file says, and whether it chains to the anchors."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.cli.common import CliError, Groups, Subparsers, print_json, read_input
from terminald.cli.trust import add_trust_argument, load_trust

if TYPE_CHECKING:
    from cryptography import x509

    from terminald.pki.anchors import TrustStore


def register(commands: Subparsers, groups: Groups) -> None:
    cert = commands.add_parser("cert", help="inspect certificates")
    sub = cert.add_subparsers(dest="cert_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser(
        "show",
        help="print a certificate's serial, issuer, key ids, validity and chain status, "
        "and the (issuer, serial) pair to enrol it with",
        description="Parse a DER or PEM certificate and check it as the terminal would: "
        "chain to the trust anchors, usage (a JPKI user-authentication certificate) and "
        "validity now. Exit status: 0 the terminal would accept it (or it is itself a trust "
        "anchor valid now); 1 it is a certificate the terminal refuses (untrusted, bad "
        "signature, wrong usage, expired or not yet valid: the verdict line says which); "
        "2 the file cannot be read or is not a decodable certificate (cert_malformed), or "
        "a usage error.",
    )
    show.add_argument("file", type=Path, help="certificate file (DER or PEM)")
    add_trust_argument(show)
    show.add_argument("--json", action="store_true", help="one JSON object on stdout")
    show.set_defaults(func=run_show)


EXIT_ACCEPTED = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2


def _chain_status(cert: x509.Certificate, trust: TrustStore) -> tuple[str, str]:
    from terminald.pki.anchors import key_identifier
    from terminald.pki.certificate import CertificateRejected, find_issuer

    own_id = key_identifier(cert)
    for anchor in trust.find(own_id):
        if anchor.certificate == cert:
            return "anchor", f"is the trust anchor {anchor.source}"
    try:
        anchor = find_issuer(cert, trust)
    except CertificateRejected as exc:
        return exc.problem.value, exc.detail
    return "chains", f"issued by trust anchor {anchor.source}"


def _verdict(der: bytes, status: str, valid_now: bool, trust: TrustStore) -> tuple[str, str]:
    """What the terminal would say of this certificate now: "ok" or a reason code."""
    from terminald.pki.certificate import CertificateRejected, verify_certificate

    if status == "anchor":
        return ("ok", "a trust anchor") if valid_now else ("cert_expired", "not valid now")
    try:
        verify_certificate(der, trust, datetime.now(UTC))
    except CertificateRejected as exc:
        return exc.problem.value, exc.detail
    return "ok", "the terminal accepts this certificate (before revocation and enrolment)"


def describe(cert: x509.Certificate, trust: TrustStore) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from terminald.pki.anchors import key_identifier
    from terminald.pki.certificate import authority_key_id

    aki = authority_key_id(cert)
    status, detail = _chain_status(cert, trust)
    now = datetime.now(UTC)
    valid_now = cert.not_valid_before_utc <= now <= cert.not_valid_after_utc
    verdict, verdict_detail = _verdict(cert.public_bytes(Encoding.DER), status, valid_now, trust)
    return {
        "serial": cert.serial_number,
        "serial_hex": f"{cert.serial_number:X}",
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "subject_key_id": key_identifier(cert).hex(),
        "authority_key_id": aki.hex() if aki is not None else None,
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "valid_now": valid_now,
        "chain": status,
        "chain_detail": detail,
        "verdict": verdict,
        "verdict_detail": verdict_detail,
        # What names this certificate everywhere (enrolment, logs, audit): the pair.
        "identity": (
            {"issuer_key_id": aki.hex(), "serial": cert.serial_number}
            if aki is not None and status != "anchor"
            else None
        ),
    }


def run_show(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding

    from terminald.files import MAX_CERT_FILE_SIZE
    from terminald.pki.anchors import (  # cryptography
        DECODE_ERRORS,
        TrustAnchorError,
        load_certificates,
    )
    from terminald.pki.certificate import CertificateRejected, parse_certificate

    data = read_input(args.file, "certificate", MAX_CERT_FILE_SIZE)
    try:
        certs = load_certificates(data, str(args.file))
    except TrustAnchorError as exc:
        raise CliError(f"cert_malformed: {exc}") from exc
    if len(certs) != 1:
        raise CliError(f"{args.file}: holds {len(certs)} certificates; give one")
    trust = load_trust(args.trust)
    try:
        # Every field decoded up front (parse_certificate): one line, never a traceback.
        cert = parse_certificate(certs[0].public_bytes(Encoding.DER))
        info = describe(cert, trust)
    except CertificateRejected as exc:
        raise CliError(f"{args.file}: {exc.problem.value}: {exc.detail}") from exc
    except DECODE_ERRORS as exc:
        raise CliError(f"{args.file}: cert_malformed: {exc}") from exc
    code = EXIT_ACCEPTED if info["verdict"] == "ok" else EXIT_REFUSED
    if args.json:
        print_json(info)
        return code
    print(f"serial:          {info['serial']} (0x{info['serial_hex']})")
    print(f"subject:         {info['subject']}")
    print(f"issuer:          {info['issuer']}")
    print(f"subject key id:  {info['subject_key_id']}")
    print(f"authority key id: {info['authority_key_id'] or '(none)'}")
    print(
        f"valid:           {info['not_before']} .. {info['not_after']}"
        f"{'' if info['valid_now'] else '  (NOT valid now)'}"
    )
    print(f"chain:           {info['chain']}: {info['chain_detail']}")
    print(f"verdict:         {info['verdict']}: {info['verdict_detail']}")
    identity = info["identity"]
    if identity is not None:
        # The lines an enrolled-cards entry needs, ready to paste.
        print(
            f'enrol as:        issuer = "{identity["issuer_key_id"]}"  '
            f"serial = {identity['serial']}"
        )
    return code
