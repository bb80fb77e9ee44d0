"""The vend-enable line of a vending terminal: held from a grant until the vend ends.

On a vending terminal the relay output is the machine's vend-enable line
(hw/wiring-*.md). A grant energises it (``HoldRelay``); it is de-energised
(``ReleaseRelay``) when the machine reports the vend done on its vend-complete input
(``DoorInput.VEND_COMPLETE``, only where that input is wired), when ``enable_s`` seconds
have passed, or at once when the terminal may no longer admit anyone (lockdown,
emergency open, an open enclosure, an internal error). Each end is one record,
``vend_complete`` or ``vend_timeout``, naming the product and the card's identity and
subject; a cancellation is a ``vend_timeout`` whose detail says why.

Pure: inputs and ``now`` (monotonic seconds) in, commands out.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminald.core.commands import Command, HoldRelay, Record, ReleaseRelay
from terminald.core.hardware import DoorInput, InputChanged


@dataclass(frozen=True, slots=True)
class VendGrant:
    """What the end-of-vend record says about the grant that enabled it."""

    product: str | None  # the product key ("A".."D"); None: the machine as a whole
    serial: int | None = None
    issuer_key_id: bytes | None = None
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()

    @property
    def what(self) -> str:
        return f"product {self.product}" if self.product else "the machine"


class VendSupervisor:
    def __init__(self) -> None:
        self._grant: VendGrant | None = None
        self._until: float | None = None
        self._enable_s = 0.0
        self._complete_wired = False

    @property
    def active(self) -> bool:
        """The vend-enable line is held."""
        return self._grant is not None

    def start(
        self, grant: VendGrant, now: float, enable_s: float, complete_wired: bool
    ) -> list[Command]:
        """Enable a vend for ``enable_s`` seconds; ``complete_wired``: the machine's
        vend-complete input may end it earlier. ValueError while a vend is enabled."""
        if self._grant is not None:
            raise ValueError("a vend is already enabled")
        self._grant = grant
        self._until = now + enable_s
        self._enable_s = enable_s
        self._complete_wired = complete_wired
        return [HoldRelay()]

    def deadline(self) -> float | None:
        return self._until

    def tick(self, now: float) -> list[Command]:
        if self._grant is None or self._until is None or now < self._until:
            return []
        if self._complete_wired:
            why = f"no vend-complete signal within {self._enable_s:g} s"
        else:
            why = f"vend window of {self._enable_s:g} s ended"
        return self._end(self._grant, "vend_timeout", why)

    def on_input(self, event: InputChanged) -> list[Command]:
        """The machine's vend-complete line became active: the vend is done. Ignored
        when no vend is enabled (a signal before the grant enables nothing) or when
        the input is not wired (start's ``complete_wired``)."""
        if (
            event.input is not DoorInput.VEND_COMPLETE
            or not event.active
            or self._grant is None
            or not self._complete_wired
        ):
            return []
        return self._end(self._grant, "vend_complete", "vend complete")

    def cancel(self, why: str, *, release: bool = True) -> list[Command]:
        """End an enabled vend now (nothing when none is); ``release`` False when the
        caller holds the relay itself next (emergency open)."""
        if self._grant is None:
            return []
        commands = self._end(self._grant, "vend_timeout", f"cancelled: {why}")
        return commands if release else [c for c in commands if not isinstance(c, ReleaseRelay)]

    def _end(self, grant: VendGrant, kind: str, why: str) -> list[Command]:
        self._grant = self._until = None
        return [
            ReleaseRelay(),
            Record(
                kind,
                f"{grant.what}: {why}",
                None,
                grant.serial,
                grant.issuer_key_id,
                subject=grant.subject,
                attrs=grant.attrs,
            ),
        ]
