"""What the authentication flow asks of revocation data, as a Protocol.

The revocation package implements it; the flow only needs a verdict for one
certificate identity at one instant. Keeping the Protocol here lets the core
depend on the question, not on how bitmaps or bundles answer it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol


class RevocationState(Enum):
    GOOD = "good"
    REVOKED = "revoked"
    ON_HOLD = "hold"
    # The data is past valid-until and no grace applies: fail closed.
    STALE = "stale"
    # There is no usable data at all (never loaded, corrupt on disk): fail closed.
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class RevocationVerdict:
    state: RevocationState
    # True when the data is stale but a configured grace admitted the lookup; the
    # caller logs every such admission.
    in_grace: bool = False
    detail: str = ""


class RevocationCheck(Protocol):
    def check(
        self,
        issuer_key_id: bytes,
        serial: int,
        now: datetime,
        distribution_points: Sequence[bytes] = (),
    ) -> RevocationVerdict:
        """Answer for the certificate identified by (issuer key id, serial) at ``now``.

        ``distribution_points``: the DER names of the certificate's CRL distribution
        points. Data built from partitioned CRLs answers only for a certificate naming a
        covered partition (UNAVAILABLE otherwise); a certificate naming none is covered
        only by data for its whole issuer.
        """
        ...
