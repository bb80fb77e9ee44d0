"""A policy's verdict about one card, before the PIN."""

from __future__ import annotations

from dataclasses import dataclass

from terminald.core.reasons import Reason

Attrs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PolicyDecision:
    """OK or a refusal, with what to record about it.

    ``subject``: the enrolled person's id (None when none is known, e.g. any card).
    ``pin_required``: False only for a product configured ``pin = false``.
    ``attrs``: (name, value) pairs, sorted by name on construction: ("product", "A"),
    ("age", "20"), ("age_source", "attestation" | "kept" | "online"), ("attendance",
    "clock_in"), ("door", "open" | "closed"), ("passback", "entry" | "exit"),
    ("passback_check", "unverified")."""

    reason: Reason
    detail: str = ""
    subject: str | None = None
    pin_required: bool = True
    attrs: Attrs = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "attrs", tuple(sorted(self.attrs)))

    @property
    def granted(self) -> bool:
        return self.reason.granted

    def attr(self, name: str) -> str | None:
        return next((v for k, v in self.attrs if k == name), None)


def refuse(reason: Reason, detail: str, subject: str | None = None) -> PolicyDecision:
    return PolicyDecision(reason, detail, subject)
