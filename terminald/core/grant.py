"""A verdict's record, and what a grant drives, for each purpose of a terminal.

* gate: the lock relay is pulsed for ``door.open_ms``;
* attendance: the grant is the attendance event (recorded as ``attendance``); the
  relay is pulsed only when the policy opens the door (``("door", "open")`` in the
  decision's attributes: the person shares one of the door groups);
* vend: the relay is the machine's vend-enable line, held until the vend ends
  (core.vend).

Pure: the terminal state machine calls these with ``now`` (monotonic seconds).
"""

from __future__ import annotations

from terminald.core.auth import AuthResult, CardIdentity
from terminald.core.commands import Command, Evidence, PulseRelay, Record
from terminald.core.door import DoorSupervisor
from terminald.core.reasons import Reason
from terminald.core.terminal_model import TerminalSettings
from terminald.core.vend import VendGrant, VendSupervisor


def verdict_record(
    result: AuthResult, reason: Reason, identity: CardIdentity | None, purpose: str
) -> Record:
    """The log line of a verdict: ``granted`` (``attendance`` on an attendance
    terminal) or ``refused``, with the policy's subject, attributes and whether the PIN
    was verified, and the evidence of a grant."""
    kind = "refused"
    if reason is Reason.OK:
        kind = "attendance" if purpose == "attendance" else "granted"
    return Record(
        kind,
        result.detail,
        reason,
        identity.serial if identity else None,
        identity.issuer_key_id if identity else None,
        _evidence(result) if reason is Reason.OK else None,
        subject=result.subject,
        attrs=result.attrs,
        pin_verified=result.pin_verified,
    )


def grant_commands(
    settings: TerminalSettings,
    record: Record,
    chosen: str | None,
    door: DoorSupervisor,
    vend: VendSupervisor,
    now: float,
) -> list[Command]:
    """What the grant of ``record`` drives. ``chosen``: the key selected before the tap,
    the product when the policy's attributes name none."""
    if settings.purpose == "vend":
        product = dict(record.attrs).get("product", chosen)
        grant = VendGrant(
            product, record.serial, record.issuer_key_id, record.subject, record.attrs
        )
        return vend.start(grant, now, settings.vend_enable_s, settings.vend_complete_wired)
    if settings.purpose == "attendance" and ("door", "open") not in record.attrs:
        return []  # recorded, and this door stays shut
    door.released(now)
    return [PulseRelay(settings.door.open_ms)]


def _evidence(result: AuthResult) -> Evidence | None:
    if result.challenge is None or result.signature is None or result.certificate is None:
        return None
    return Evidence(result.challenge.message, result.signature, result.certificate)
