"""Test CRLs: hand-picked entries, or large synthetic ones with a chosen distribution.

Synthetic distributions:

* ``uniform``: every serial of the space is revoked with the same probability. This is
  the worst case for roaring and an average case for gap codes (reference
  revocation-and-serial.md §0).
* ``clustered``: the space is cut into 100 equal slices whose revocation rates rise
  geometrically by a factor of 97 from first to last, the skewed case measured in the
  reference (0.2 % → 19.4 % at a mean of 4.25 %); old serials are revoked more often
  (renewals, deaths), so density varies along the counter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

DISTRIBUTIONS = ("uniform", "clustered")
CLUSTER_SLICES = 100
CLUSTER_GROWTH = 97.0

# The mix of revoking reasons given to synthetic entries (not on hold): renewal dominates.
_REASON_MIX: tuple[tuple[x509.ReasonFlags | None, float], ...] = (
    (x509.ReasonFlags.superseded, 0.70),
    (x509.ReasonFlags.cessation_of_operation, 0.15),
    (x509.ReasonFlags.key_compromise, 0.05),
    (x509.ReasonFlags.affiliation_changed, 0.05),
    (None, 0.05),  # no reasonCode: unspecified
)

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class CrlEntry:
    serial: int
    reason: x509.ReasonFlags | None  # None: no reasonCode extension


def synthetic_serials(
    space: int,
    rate: float,
    distribution: str,
    rng: np.random.Generator,
    first_serial: int = 1,
) -> npt.NDArray[np.int64]:
    """Sorted distinct serials in ``first_serial .. first_serial + space - 1``."""
    if space < 1 or not 0.0 <= rate <= 1.0:
        raise ValueError("need a serial space of at least 1 and a rate in 0..1")
    if distribution == "uniform":
        picked = rng.choice(space, round(space * rate), replace=False)
    elif distribution == "clustered":
        weights = CLUSTER_GROWTH ** (np.arange(CLUSTER_SLICES) / (CLUSTER_SLICES - 1))
        rates = np.minimum(1.0, rate * weights / weights.mean())
        edges = np.linspace(0, space, CLUSTER_SLICES + 1).astype(np.int64)
        parts = []
        for start, end, slice_rate in zip(edges[:-1], edges[1:], rates, strict=True):
            size = int(end - start)
            parts.append(start + rng.choice(size, round(size * slice_rate), replace=False))
        picked = np.concatenate(parts)
    else:
        raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
    out: npt.NDArray[np.int64] = np.sort(picked.astype(np.int64)) + first_serial
    return out


def synthetic_entries(
    serials: npt.NDArray[np.int64], hold_fraction: float, rng: np.random.Generator
) -> list[CrlEntry]:
    """Give each serial a reason: ``hold_fraction`` of them on hold, the rest a revoking mix."""
    if not 0.0 <= hold_fraction <= 1.0:
        raise ValueError("hold fraction must be in 0..1")
    reasons = [r for r, _ in _REASON_MIX]
    picks = rng.choice(len(reasons), serials.size, p=[w for _, w in _REASON_MIX])
    on_hold = rng.random(serials.size) < hold_fraction
    return [
        CrlEntry(int(s), x509.ReasonFlags.certificate_hold if h else reasons[int(p)])
        for s, p, h in zip(serials, picks, on_hold, strict=True)
    ]


def _authority_key_identifier(ca: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def partition_idp(name: x509.Name) -> x509.IssuingDistributionPoint:
    """The IDP of a CRL partition: the distribution point's directoryName, all reasons."""
    return x509.IssuingDistributionPoint(
        full_name=[x509.DirectoryName(name)],
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


def make_crl(
    ca: x509.Certificate,
    ca_key: CaKey,
    entries: Sequence[CrlEntry],
    this_update: datetime,
    next_update: datetime,
    crl_number: int = 1,
    with_authority_key_id: bool = True,
    issuing_distribution_point: x509.IssuingDistributionPoint | None = None,
) -> bytes:
    """A DER CRL signed by ``ca_key`` (SHA-256) with AKI and CRL number, like J-LIS's;
    with ``issuing_distribution_point``, a partitioned CRL (the IDP is critical)."""
    revocation_date = this_update - timedelta(hours=1)
    number = x509.CRLNumber(crl_number)
    extensions: list[x509.Extension[x509.ExtensionType]] = [
        x509.Extension(number.oid, False, number)
    ]
    if with_authority_key_id:
        aki = _authority_key_identifier(ca)
        extensions.append(x509.Extension(aki.oid, False, aki))
    if issuing_distribution_point is not None:
        idp = issuing_distribution_point
        extensions.append(x509.Extension(idp.oid, True, idp))
    revoked = []
    for entry in entries:
        one = x509.RevokedCertificateBuilder().serial_number(entry.serial)
        one = one.revocation_date(revocation_date)
        if entry.reason is not None:
            one = one.add_extension(x509.CRLReason(entry.reason), critical=False)
        revoked.append(one.build())
    # One builder with the whole list: add_revoked_certificate copies it each call (O(n²)).
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca.subject,
        last_update=this_update,
        next_update=next_update,
        extensions=extensions,
        revoked_certificates=revoked,
    )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.DER)
