"""The certificate cache: keyed by (issuer key id, serial), served only on head AND tail."""

from __future__ import annotations

from datetime import UTC, datetime

from terminald.core.cert_cache import TAIL_LENGTH, CertificateCache
from terminald.pki.anchors import TrustStore
from terminald.pki.certificate import VerifiedCertificate, verify_certificate
from terminald.sim.testpki import TestPkiManifest

NOW = datetime.now(UTC)


def verified(pki: TestPkiManifest, name: str) -> VerifiedCertificate:
    trust = TrustStore.from_paths([pki.trust_dir])
    return verify_certificate(pki.load_profile(name).auth_cert, trust, NOW)


def test_twins_share_a_head_and_only_the_tail_tells_them_apart(test_pki: TestPkiManifest) -> None:
    one, twin = verified(test_pki, "card-001"), verified(test_pki, "twin")
    assert one.serial == twin.serial and one.der[:256] == twin.der[:256]
    cache = CertificateCache()
    cache.add(one)
    head = twin.der[:256]
    assert cache.candidates(twin.serial, head) == [one]  # the head alone would confuse them
    assert cache.lookup(twin.serial, head, twin.der[-TAIL_LENGTH:]) is None
    assert cache.lookup(one.serial, head, one.der[-TAIL_LENGTH:]) is one
    cache.add(twin)
    assert len(cache) == 2  # two keys: (issuer, serial) each
    assert cache.lookup(twin.serial, head, twin.der[-TAIL_LENGTH:]) is twin
    assert cache.lookup(one.serial, head, one.der[-TAIL_LENGTH:]) is one


def test_a_short_tail_or_a_head_that_differs_anywhere_is_a_miss(test_pki: TestPkiManifest) -> None:
    one = verified(test_pki, "card-001")
    cache = CertificateCache()
    cache.add(one)
    head, tail = one.der[:256], one.der[-TAIL_LENGTH:]
    assert cache.lookup(one.serial, head, tail[1:]) is None
    changed = head[:200] + bytes([head[200] ^ 1]) + head[201:]
    assert cache.lookup(one.serial, changed, tail) is None
    assert cache.lookup(one.serial + 1, head, tail) is None
    # A head longer than the cached certificate cannot be "the whole head" of it.
    assert cache.candidates(one.serial, one.der + b"\x00") == []


def test_eviction_forgets_the_pair_and_its_serial_index(test_pki: TestPkiManifest) -> None:
    one, twin, two = (verified(test_pki, n) for n in ("card-001", "twin", "card-002"))
    cache = CertificateCache(capacity=2)
    cache.add(one)
    cache.add(twin)
    cache.add(two)  # evicts card-001, the least recently used
    assert len(cache) == 2
    assert cache.lookup(one.serial, one.der[:256], one.der[-TAIL_LENGTH:]) is None
    assert cache.lookup(twin.serial, twin.der[:256], twin.der[-TAIL_LENGTH:]) is twin
    assert cache.lookup(two.serial, two.der[:256], two.der[-TAIL_LENGTH:]) is two
    assert len(CertificateCache(capacity=0)) == 0
