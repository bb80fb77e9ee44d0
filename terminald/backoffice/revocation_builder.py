"""Back office: J-LIS-style DER CRLs → the revocation set keyed by (issuer key id, serial).

Several CRLs may be given at once: one per root generation, or one per distribution point
of the same issuer (their entries are merged). The issuer key id is the CRL's Authority
Key Identifier, the same value the terminal takes from a card certificate's AKI, because
the three J-LIS root generations share one DN and only the key tells them apart
(DESIGN.md §2).

Coverage: a CRL without an IssuingDistributionPoint covers its whole issuer; one with an
IDP naming a distribution point covers that partition only (revocation/coverage.py). An IDP
whose scope cannot be stated soundly as "these user certificates of this issuer" is refused,
never guessed: onlySomeReasons (other reasons would be missing), indirectCRL (entries of
other issuers), onlyContainsCACerts / onlyContainsAttributeCerts (not user certificates),
or a point named only by something other than a directoryName.

Authenticity: with issuer certificates given, the CRL's issuer is the certificate whose
key id is its AKI, whose subject is its issuer name, and whose key verifies its signature.
Those certificates must themselves be trusted (:func:`trusted_crl_signers`): a trust
anchor (the same public key) or a CA certificate an anchor's signature verifies. A
certificate anyone can make (a self-signed one with a J-LIS name and key id) vouches for
nothing.

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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from terminald.pki.anchors import DECODE_ERRORS, key_identifier
from terminald.revocation.coverage import WHOLE, Coverage, name_text
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
    coverage: Coverage = WHOLE


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _issued_by(cert: x509.Certificate, anchor: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_chained_signer(cert: x509.Certificate, source: str, now: datetime) -> None:
    """A CA certificate issued by an anchor: a CA, for CRL signing, in date, and with the key
    id of its own key (RFC 5280 §4.2.1.2 method 1, as J-LIS uses): its SKI is what CRLs'
    AKIs name, and one that is not its key's would let it answer for another key's CRLs."""
    try:
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        ca = False
    if not ca:
        raise CrlRefused(f"--issuer-cert {source}: not a CA certificate (BasicConstraints)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        raise CrlRefused(f"--issuer-cert {source}: its keyUsage does not allow cRLSign")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CrlRefused(f"--issuer-cert {source}: not valid now")
    computed = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
    if key_identifier(cert) != computed:
        raise CrlRefused(
            f"--issuer-cert {source}: its SubjectKeyIdentifier {key_identifier(cert).hex()} is "
            f"not its key's ({computed.hex()}, RFC 5280 §4.2.1.2 method 1)"
        )


def trusted_crl_signers(
    given: Sequence[tuple[str, x509.Certificate]],
    anchors: Sequence[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """The ``--issuer-cert`` certificates that may vouch for a CRL, or CrlRefused.

    Each must be a trust anchor, compared by public key (names and key ids prove nothing:
    anyone can write them), and then the anchor itself is used, with the key id the
    terminal matches card AKIs against; or a CA certificate whose signature an anchor's key
    verifies, with the key id of its own key (:func:`_check_chained_signer`).
    """
    by_key = {_spki(anchor): anchor for anchor in anchors}
    out: list[x509.Certificate] = []
    for source, cert in given:
        anchor = by_key.get(_spki(cert))
        if anchor is not None:
            out.append(anchor)
            continue
        if not any(_issued_by(cert, a) for a in anchors):
            raise CrlRefused(
                f"--issuer-cert {source}: not a trust anchor (no anchor has its public key) "
                "nor issued by one (no anchor's signature verifies), so it vouches for no CRL; "
                "give the anchors with --trust DIR"
            )
        _check_chained_signer(cert, source, now)
        out.append(cert)
    return out


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
            "certificates or trust anchors has (unknown issuer)"
        )
    # By key id first, then the name: the J-LIS generations share one DN, so the name
    # alone proves nothing, but a CRL must also name the issuer whose key signed it.
    named = [cert for cert in matching if cert.subject == crl.issuer]
    if not named:
        raise CrlRefused(
            f"{source}: names issuer {crl.issuer.rfc4514_string()}, but the certificate "
            f"with key {key_id.hex()} is {matching[0].subject.rfc4514_string()}"
        )
    for cert in named:
        public_key: CertificateIssuerPublicKeyTypes = cert.public_key()  # type: ignore[assignment]
        if crl.is_signature_valid(public_key):
            return
    raise CrlRefused(f"{source}: signature does not verify with the issuer's key {key_id.hex()}")


def _coverage(crl: x509.CertificateRevocationList, source: str) -> Coverage:
    """WHOLE for a CRL without IDP, the partition its IDP names, or CrlRefused."""
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return WHOLE
    unsound = [
        flag
        for flag, present in (
            ("onlySomeReasons", idp.only_some_reasons is not None),
            ("indirectCRL", idp.indirect_crl),
            ("onlyContainsCACerts", idp.only_contains_ca_certs),
            ("onlyContainsAttributeCerts", idp.only_contains_attribute_certs),
        )
        if present
    ]
    if unsound:
        raise CrlRefused(
            f"{source}: its IssuingDistributionPoint has {', '.join(unsound)}, so it does not "
            "list every revoked user certificate of its scope; give complete CRLs"
        )
    names: list[bytes] = []
    if idp.relative_name is not None:
        # RFC 5280 §5.2.5: a relative name is appended to the CRL issuer's name.
        names.append(x509.Name([*crl.issuer.rdns, idp.relative_name]).public_bytes())
    others = []
    for general in idp.full_name or ():
        if isinstance(general, x509.DirectoryName):
            names.append(general.value.public_bytes())
        else:
            others.append(str(general.value))
    if others and not names:
        raise CrlRefused(
            f"{source}: its IssuingDistributionPoint names the partition only as "
            f"{', '.join(others)}; terminald matches partitions by directoryName, as J-LIS "
            "certificates name them"
        )
    if not names:
        # No distributionPoint (only onlyContainsUserCerts at most): all user certificates
        # of the issuer, which is all a terminal checks.
        return WHOLE
    try:
        return Coverage.of(names)
    except ValueError as exc:
        raise CrlRefused(f"{source}: unusable partition name: {exc}") from None


def _check_extensions(crl: x509.CertificateRevocationList, source: str) -> None:
    try:
        extensions = list(crl.extensions)
    except DECODE_ERRORS as exc:  # a repeated extension too (x509.DuplicateExtension)
        raise CrlRefused(f"{source}: undecodable CRL extension ({exc})") from exc
    for extension in extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            raise CrlRefused(f"{source}: is a delta CRL; give the full CRLs")
        if extension.critical and isinstance(extension.value, x509.UnrecognizedExtension):
            raise CrlRefused(
                f"{source}: has an unknown critical extension {extension.oid.dotted_string} "
                "(RFC 5280: such a CRL must not be used)"
            )


def _check_fresh(
    crl: x509.CertificateRevocationList, source: str, now: datetime | None, allow_expired: bool
) -> None:
    if now is None or allow_expired:
        return
    next_update = crl.next_update_utc
    if next_update is None:
        raise CrlRefused(
            f"{source}: has no nextUpdate, so nobody says until when it holds "
            "(--allow-expired-crl to use it anyway)"
        )
    if now >= next_update:
        raise CrlRefused(
            f"{source}: expired at its nextUpdate {next_update.isoformat()}; fetch the current "
            "CRL (or --allow-expired-crl to use it anyway)"
        )


def _entry_kind(entry: x509.RevokedCertificate, source: str) -> RevokeKind:
    kind = "revoked"  # no reasonCode means unspecified (RFC 5280 §5.3.1)
    try:
        extensions = list(entry.extensions)
    except DECODE_ERRORS as exc:
        raise CrlRefused(f"{source}: entry {entry.serial_number}: undecodable ({exc})") from exc
    for extension in extensions:
        if isinstance(extension.value, x509.CRLReason):
            kind = REASON_KIND[extension.value.reason]
        elif isinstance(extension.value, x509.CertificateIssuer) or extension.critical:
            # certificateIssuer: an entry of another issuer (an indirect CRL).
            raise CrlRefused(
                f"{source}: entry {entry.serial_number} has a {extension.oid.dotted_string} "
                "extension terminald cannot honour (indirect or unknown critical)"
            )
    return kind


def read_crl(
    der: bytes,
    source: str,
    issuer_certs: Sequence[x509.Certificate] | None = None,
    *,
    now: datetime | None = None,
    allow_expired: bool = False,
) -> CrlContents:
    """Parse one DER CRL and read its coverage; refuse what cannot be used soundly.

    ``issuer_certs``: None skips the authenticity check (the caller warns); otherwise the
    CRL's issuer must be one of them and its signature verify. ``now``: a CRL at or past
    its nextUpdate is refused unless ``allow_expired``.
    """
    try:
        crl = x509.load_der_x509_crl(der)
    except DECODE_ERRORS as exc:
        raise CrlRefused(f"{source}: not a DER X.509 CRL ({exc})") from exc
    _check_extensions(crl, source)
    key_id = _issuer_key_id(crl, source)
    if issuer_certs is not None:
        _check_signature(crl, key_id, issuer_certs, source)
    _check_fresh(crl, source, now, allow_expired)
    coverage = _coverage(crl, source)
    serials: dict[RevokeKind, list[int]] = {"revoked": [], "hold": [], "release": []}
    for entry in crl:
        serial = entry.serial_number
        if not 0 <= serial <= MAX_SERIAL:
            raise CrlRefused(
                f"{source}: serial {serial} does not fit in 32 bits; the revocation set "
                "covers 4-byte JPKI serials"
            )
        serials[_entry_kind(entry, source)].append(serial)
    return CrlContents(
        source=source,
        issuer_key_id=key_id,
        revoked=serial_array(serials["revoked"]),
        hold=serial_array(serials["hold"]),
        released=serial_array(serials["release"]),
        this_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        coverage=coverage,
    )


def describe_coverage(coverage: Coverage) -> str:
    if coverage.whole:
        return "whole issuer"
    return "partition(s) " + "; ".join(name_text(n) for n in coverage.names())


def build_revocation_set(crls: Iterable[CrlContents]) -> RevocationSet:
    """Merge CRLs per issuer key. Revoked wins over hold; a release takes a serial off hold.

    Coverage is the union: partitions add up, and one CRL without IDP makes it the whole
    issuer (that CRL lists every revoked certificate of the issuer, whatever its partition).
    """
    grouped: dict[bytes, list[CrlContents]] = {}
    for crl in crls:
        grouped.setdefault(crl.issuer_key_id, []).append(crl)
    issuers = {}
    for key_id, parts in grouped.items():
        revoked = serial_array(np.concatenate([p.revoked for p in parts]))
        hold = serial_array(np.concatenate([p.hold for p in parts]))
        released = serial_array(np.concatenate([p.released for p in parts]))
        hold = serial_array(np.setdiff1d(np.setdiff1d(hold, revoked), released))
        coverage = parts[0].coverage
        for part in parts[1:]:
            coverage = coverage.union(part.coverage)
        issuers[key_id] = IssuerEntries(revoked, hold, coverage)
    return RevocationSet(issuers)
