"""Certificates already verified, so a known card skips the full EF 000A read.

A cached entry is found by the head of EF 000A (the first 256 bytes hold the
serial, issuer, validity and subject). Matching a prefix alone proves nothing:
the card must still sign the challenge with the key of the cached certificate,
and time and revocation are checked on every use.
"""

from __future__ import annotations

from collections import OrderedDict

from terminald.pki.certificate import VerifiedCertificate


class CertificateCache:
    """A bounded LRU of verified certificates, keyed by serial."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._by_serial: OrderedDict[int, list[VerifiedCertificate]] = OrderedDict()

    def lookup(self, serial: int, head: bytes) -> VerifiedCertificate | None:
        for entry in self._by_serial.get(serial, ()):
            if entry.der.startswith(head[: len(entry.der)]):
                self._by_serial.move_to_end(serial)
                return entry
        return None

    def add(self, cert: VerifiedCertificate) -> None:
        if self._capacity == 0:
            return
        entries = self._by_serial.setdefault(cert.serial, [])
        if all(e.der != cert.der for e in entries):
            entries.append(cert)
        self._by_serial.move_to_end(cert.serial)
        while len(self._by_serial) > self._capacity:
            self._by_serial.popitem(last=False)

    def __len__(self) -> int:
        return len(self._by_serial)
