"""Back office: J-LIS-style DER CRLs → the revocation set keyed by (issuer key id, serial).

Several CRLs may be given at once: one per root generation, or one per distribution point
of the same issuer (their entries are merged). The issuer key id is the CRL's Authority
Key Identifier, the same value the terminal takes from a card certificate's AKI, because
the three J-LIS root generations share one DN and only the key tells them apart
(DESIGN.md §2).

Reasons (RFC 5280 §5.3.1; J-LIS usage in reference revocation-and-serial.md): every reason
but two means "revoked"; certificateHold means "on hold" (J-LIS never releases a hold, but
the format can); removeFromCRL takes a serial off hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

from terminald.pki.anchors import key_identifier
from terminald.revocation.serials import (
    MAX_SERIAL,
    IssuerEntries,
    RevocationSet,
    SerialArray,
    serial_array,
)

RevokeKind = str  # "revoked" | "hold" | "release"

REASON_KIND: dict[x509.ReasonFlags, RevokeKind] = {
    x509.ReasonFlags.unspecified: "revoked",
    x509.ReasonFlags.key_compromise: "revoked",
    x509.ReasonFlags.ca_compromise: "revoked",
    x509.ReasonFlags.affiliation_changed: "revoked",
    x509.ReasonFlags.superseded: "revoked",
    x509.ReasonFlags.cessation_of_operation: "revoked",
    x509.ReasonFlags.privilege_withdrawn: "revoked",
    x509.ReasonFlags.aa_compromise: "revoked",
    x509.ReasonFlags.certificate_hold: "hold",
    x509.ReasonFlags.remove_from_crl: "release",
}


class CrlRefused(ValueError):
    """A CRL that cannot be turned into revocation data; the message says why."""


@dataclass(frozen=True)
class CrlContents:
    source: str
    issuer_key_id: bytes
    revoked: SerialArray
    hold: SerialArray
    released: SerialArray
    this_update: datetime
    next_update: datetime | None


def _issuer_key_id(crl: x509.CertificateRevocationList, source: str) -> bytes:
    try:
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise CrlRefused(
            f"{source}: has no Authority Key Identifier, so its issuer key is unknown "
            "(J-LIS roots share one name; the key id is what identifies them)"
        ) from None
    if not aki.key_identifier:
        raise CrlRefused(f"{source}: its Authority Key Identifier carries no key identifier")
    return aki.key_identifier


def _check_signature(
    crl: x509.CertificateRevocationList,
    key_id: bytes,
    issuers: Sequence[x509.Certificate],
    source: str,
) -> None:
    matching = [cert for cert in issuers if key_identifier(cert) == key_id]
    if not matching:
        raise CrlRefused(
            f"{source}: issued by key {key_id.hex()}, which none of the given issuer "
            "certificates has"
        )
    public_key: CertificateIssuerPublicKeyTypes = matching[0].public_key()  # type: ignore[assignment]
    if not crl.is_signature_valid(public_key):
        raise CrlRefused(
            f"{source}: signature does not verify with the issuer's key {key_id.hex()}"
        )


def _entry_kind(entry: x509.RevokedCertificate) -> RevokeKind:
    for extension in entry.extensions:
        if isinstance(extension.value, x509.CRLReason):
            return REASON_KIND[extension.value.reason]
    return "revoked"  # no reasonCode means unspecified (RFC 5280 §5.3.1)


def read_crl(der: bytes, source: str, issuer_certs: Sequence[x509.Certificate] = ()) -> CrlContents:
    """Parse one DER CRL. With ``issuer_certs``, its signature must verify against one."""
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise CrlRefused(f"{source}: not a DER X.509 CRL ({exc})") from exc
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        raise CrlRefused(f"{source}: is a delta CRL; give the full CRLs")
    key_id = _issuer_key_id(crl, source)
    if issuer_certs:
        _check_signature(crl, key_id, issuer_certs, source)
    serials: dict[RevokeKind, list[int]] = {"revoked": [], "hold": [], "release": []}
    for entry in crl:
        serial = entry.serial_number
        if not 0 <= serial <= MAX_SERIAL:
            raise CrlRefused(
                f"{source}: serial {serial} does not fit in 32 bits; the revocation set "
                "covers 4-byte JPKI serials"
            )
        serials[_entry_kind(entry)].append(serial)
    return CrlContents(
        source=source,
        issuer_key_id=key_id,
        revoked=serial_array(serials["revoked"]),
        hold=serial_array(serials["hold"]),
        released=serial_array(serials["release"]),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
    )


def build_revocation_set(crls: Iterable[CrlContents]) -> RevocationSet:
    """Merge CRLs per issuer key. Revoked wins over hold; a release takes a serial off hold."""
    grouped: dict[bytes, list[CrlContents]] = {}
    for crl in crls:
        grouped.setdefault(crl.issuer_key_id, []).append(crl)
    issuers = {}
    for key_id, parts in grouped.items():
        revoked = serial_array(np.concatenate([p.revoked for p in parts]))
        hold = serial_array(np.concatenate([p.hold for p in parts]))
        released = serial_array(np.concatenate([p.released for p in parts]))
        hold = serial_array(np.setdiff1d(np.setdiff1d(hold, revoked), released))
        issuers[key_id] = IssuerEntries(revoked, hold)
    return RevocationSet(issuers)
