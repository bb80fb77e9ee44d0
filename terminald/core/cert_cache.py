"""Certificates already verified, so a known card skips the full EF 000A read.

Identity is (issuer key id, serial), and that is the key here. But a card's first
bytes cannot name the issuer: the head of EF 000A (256 bytes) holds the serial, the
issuer DN, the validity and the subject, and every J-LIS root generation has the same
DN. Two certificates with the same serial under two roots (the test PKI's ``twin``)
can share that head byte for byte; the Authority Key Identifier is ~1.3 KB further on.

The rule, so that one certificate is never served for another:

1. Candidates are the cached certificates with the serial of the head whose first
   bytes equal the *whole* head the card returned (not a prefix of it).
2. If there are any, the terminal reads the last :data:`TAIL_LENGTH` bytes of EF 000A:
   the end of the issuer's RSA signature over the certificate. A candidate is served
   only if its DER ends with exactly those bytes, and only if one candidate does.

Two different certificates carry different issuer signatures (a different issuing key,
or a different to-be-signed part under the same key), so head and tail together pick
out one certificate among genuine cards; anything else (no candidate, a mismatch,
ambiguity) means a full read and a full verification. The cost is one short READ
BINARY on a cached tap. Matching bytes proves nothing about the card itself: it must
still sign the challenge with the cached certificate's key, and time and revocation
are checked on every use.
"""

from __future__ import annotations

from collections import OrderedDict

from terminald.pki.certificate import VerifiedCertificate

# Bytes read from the end of EF 000A: the last bytes of the issuer's signature value.
# 32 random-looking bytes tell two genuine certificates apart (a 2**-256 chance not to).
TAIL_LENGTH = 32

CacheKey = tuple[bytes, int]  # (issuer key id, serial)


class CertificateCache:
    """A bounded LRU of verified certificates, keyed by (issuer key id, serial)."""

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self._capacity = capacity
        self._entries: OrderedDict[CacheKey, list[VerifiedCertificate]] = OrderedDict()
        self._by_serial: dict[int, set[bytes]] = {}  # serial -> issuer key ids cached

    def candidates(self, serial: int, head: bytes) -> list[VerifiedCertificate]:
        """Cached certificates with this serial whose first bytes are the whole ``head``."""
        found: list[VerifiedCertificate] = []
        for issuer in self._by_serial.get(serial, ()):
            for entry in self._entries[(issuer, serial)]:
                if len(entry.der) >= len(head) and entry.der[: len(head)] == head:
                    found.append(entry)
        return found

    def lookup(self, serial: int, head: bytes, tail: bytes) -> VerifiedCertificate | None:
        """The one cached certificate that starts with ``head`` and ends with ``tail``."""
        if len(tail) < TAIL_LENGTH:
            return None  # too little of the signature to tell certificates apart
        found = [e for e in self.candidates(serial, head) if e.der.endswith(tail)]
        if len(found) != 1:
            return None
        self._entries.move_to_end((found[0].issuer_key_id, serial))
        return found[0]

    def add(self, cert: VerifiedCertificate) -> None:
        if self._capacity == 0:
            return
        key = (cert.issuer_key_id, cert.serial)
        entries = self._entries.setdefault(key, [])
        if all(e.der != cert.der for e in entries):
            entries.append(cert)
        self._by_serial.setdefault(cert.serial, set()).add(cert.issuer_key_id)
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            (issuer, serial), _ = self._entries.popitem(last=False)
            issuers = self._by_serial[serial]
            issuers.discard(issuer)
            if not issuers:
                del self._by_serial[serial]

    def __len__(self) -> int:
        return len(self._entries)
