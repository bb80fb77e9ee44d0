"""Revocation data: the set keyed by (issuer key id, serial), its wire codec, signed
bundles, deltas, and the freshness and acceptance rules. Pure: bytes in, objects out.
"""

from __future__ import annotations

from terminald.revocation.acceptance import Installed, check_acceptable
from terminald.revocation.bundle import (
    Bundle,
    BundleHeader,
    BundleKind,
    encode_bundle,
    open_bundle,
    read_unverified,
)
from terminald.revocation.errors import (
    BundleRejected,
    RejectReason,
    RevocationError,
    RevocationFormatError,
)
from terminald.revocation.freshness import Freshness, FreshnessPolicy
from terminald.revocation.keys import TrustedKeys, key_id_of
from terminald.revocation.serials import (
    IssuerChanges,
    IssuerEntries,
    RevocationDelta,
    RevocationSet,
    apply_delta,
    diff,
    serial_array,
)

__all__ = [
    "Bundle",
    "BundleHeader",
    "BundleKind",
    "BundleRejected",
    "Freshness",
    "FreshnessPolicy",
    "Installed",
    "IssuerChanges",
    "IssuerEntries",
    "RejectReason",
    "RevocationDelta",
    "RevocationError",
    "RevocationFormatError",
    "RevocationSet",
    "TrustedKeys",
    "apply_delta",
    "check_acceptable",
    "diff",
    "encode_bundle",
    "key_id_of",
    "open_bundle",
    "read_unverified",
    "serial_array",
]
