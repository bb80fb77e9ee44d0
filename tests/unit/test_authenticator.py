"""The authentication flow on the in-process virtual card: every branch, no pcscd."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from terminald.card.connection import CountingConnection
from terminald.core.auth import Authenticator, AuthResult, AuthSettings, PinRequest
from terminald.core.policy import Policy, PolicySettings, Presence, Product, VendingSettings
from terminald.core.reasons import Reason
from terminald.core.revocation_check import RevocationState, RevocationVerdict
from terminald.enrolment.memory import MemoryEnrolment
from terminald.enrolment.model import AgeAttestation, Credential, EnrolmentContent, Person
from terminald.pki.anchors import TrustStore
from terminald.revocation.coverage import parse_name_text
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.inprocess import InProcessConnection
from terminald.sim.testpki import TestPkiManifest

NOW = datetime.now(UTC)


class FixedRevocation:
    def __init__(self, verdict: RevocationVerdict) -> None:
        self.verdict = verdict
        self.asked: list[tuple[bytes, int]] = []
        self.points: list[Sequence[bytes]] = []

    def check(
        self,
        issuer_key_id: bytes,
        serial: int,
        now: datetime,
        distribution_points: Sequence[bytes] = (),
    ) -> RevocationVerdict:
        self.asked.append((issuer_key_id, serial))
        self.points.append(distribution_points)
        return self.verdict


def authenticator(pki: TestPkiManifest, **kwargs: object) -> Authenticator:
    settings = kwargs.pop("settings", AuthSettings(terminal_id="unit"))
    trust = TrustStore.from_paths([pki.trust_dir])
    return Authenticator(trust, settings, **kwargs)  # type: ignore[arg-type]


def run(
    auth: Authenticator, card: VirtualJpkiCard, pin: str | None, now: datetime = NOW
) -> tuple[AuthResult, int]:
    conn = CountingConnection(InProcessConnection(card))
    step = auth.begin(conn, now)
    if isinstance(step, PinRequest):
        assert pin is not None
        step = auth.finish(step, pin, now)
    return step, conn.apdus


def card(pki: TestPkiManifest, name: str) -> VirtualJpkiCard:
    return VirtualJpkiCard(pki.load_profile(name))


def pin_of(pki: TestPkiManifest, name: str) -> str:
    pin = pki.card(name).pin
    assert pin is not None
    return pin


def test_ok_then_cached_with_the_fewest_apdus(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki)
    first, apdus_first = run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))
    second, apdus_second = run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))
    assert first.reason is Reason.OK and second.reason is Reason.OK
    # A cached card: select, head, 32-byte tail (core.cert_cache), retry query, VERIFY, sign.
    assert (apdus_first, apdus_second) == (11, 6)
    assert second.identity is not None and second.identity.cached
    assert first.signature is not None and first.challenge is not None


def test_extended_reads_take_six_apdus(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki, settings=AuthSettings(terminal_id="unit", extended_reads=True))
    result, apdus = run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))
    assert result.reason is Reason.OK and apdus == 6


def test_a_key_that_does_not_match_the_certificate_fails_the_challenge(
    test_pki: TestPkiManifest,
) -> None:
    profile = test_pki.load_profile("card-001")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    impostor = VirtualJpkiCard(dataclasses.replace(profile, auth_key_pem=pem))
    result, _ = run(authenticator(test_pki), impostor, pin_of(test_pki, "card-001"))
    assert result.reason is Reason.SIGNATURE_INVALID


def test_a_cached_certificate_does_not_vouch_for_a_card_with_another_key(
    test_pki: TestPkiManifest,
) -> None:
    auth = authenticator(test_pki)
    assert (
        run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))[0].reason is Reason.OK
    )
    profile = test_pki.load_profile("card-001")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    clone = VirtualJpkiCard(dataclasses.replace(profile, auth_key_pem=pem))  # copied certificate
    result, _ = run(auth, clone, pin_of(test_pki, "card-001"))
    assert result.identity is not None and result.identity.cached
    assert result.reason is Reason.SIGNATURE_INVALID


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (RevocationState.REVOKED, Reason.CERT_REVOKED),
        (RevocationState.ON_HOLD, Reason.CERT_ON_HOLD),
        (RevocationState.STALE, Reason.REVOCATION_STALE),
        (RevocationState.UNAVAILABLE, Reason.REVOCATION_UNAVAILABLE),
    ],
)
def test_revocation_refuses_before_the_pin(
    test_pki: TestPkiManifest, state: RevocationState, reason: Reason
) -> None:
    revocation = FixedRevocation(RevocationVerdict(state))
    c = card(test_pki, "card-001")
    result, _ = run(authenticator(test_pki, revocation=revocation), c, None)
    assert result.reason is reason
    entry = test_pki.card("card-001")
    assert revocation.asked == [(bytes.fromhex(entry.issuer_key_id or ""), entry.serial)]
    # The card's CRLDP dirName goes with it, as DER, so coverage can be checked.
    assert entry.crl_distribution_point is not None
    assert revocation.points == [(parse_name_text(entry.crl_distribution_point),)]
    assert not any(cmd[1] == 0x20 for cmd in c.commands())  # not even the retry query


def test_grace_admission_is_marked(test_pki: TestPkiManifest) -> None:
    revocation = FixedRevocation(
        RevocationVerdict(RevocationState.GOOD, in_grace=True, detail="2 h late")
    )
    result, _ = run(
        authenticator(test_pki, revocation=revocation),
        card(test_pki, "card-001"),
        pin_of(test_pki, "card-001"),
    )
    assert result.reason is Reason.OK and result.revocation == "good_in_grace"


def test_untrusted_clock_refuses_without_touching_the_card(test_pki: TestPkiManifest) -> None:
    c = card(test_pki, "card-001")
    result, apdus = run(authenticator(test_pki), c, None, now=datetime(1970, 1, 1, tzinfo=UTC))
    assert result.reason is Reason.CLOCK_UNTRUSTED and apdus == 0


def test_time_is_checked_on_every_use_of_a_cached_certificate(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki)
    run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))
    not_after = test_pki.card("card-001").not_after
    assert not_after is not None
    result, _ = run(auth, card(test_pki, "card-001"), None, now=not_after + timedelta(seconds=1))
    assert result.reason is Reason.CERT_EXPIRED


def test_floor_zero_allows_the_last_try_when_configured(test_pki: TestPkiManifest) -> None:
    settings = AuthSettings(terminal_id="unit", pin_floor=0)
    result, _ = run(
        authenticator(test_pki, settings=settings),
        card(test_pki, "last-try"),
        pin_of(test_pki, "last-try"),
    )
    assert result.reason is Reason.OK


def test_default_floor_keeps_the_last_try(test_pki: TestPkiManifest) -> None:
    c = card(test_pki, "last-try")
    result, _ = run(authenticator(test_pki), c, None)
    assert result.reason is Reason.PIN_TRIES_LOW and c.tries_left() == 1


@pytest.mark.parametrize("pin", ["123", "12345", "abcd", ""])
def test_malformed_pin_is_refused_without_a_verify(test_pki: TestPkiManifest, pin: str) -> None:
    c = card(test_pki, "card-001")
    result, _ = run(authenticator(test_pki), c, pin)
    assert result.reason is Reason.PIN_MALFORMED
    assert c.tries_left() == 3
    assert not any(cmd[1] == 0x20 and len(cmd) > 4 for cmd in c.commands())


def test_wrong_pins_count_down_and_the_floor_stops_the_third(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki)
    c = card(test_pki, "card-002")
    wrong = "0000" if pin_of(test_pki, "card-002") != "0000" else "1111"
    assert run(auth, c, wrong)[0].pin_tries_left == 2
    assert run(auth, c, wrong)[0].pin_tries_left == 1
    third, _ = run(auth, c, wrong)
    assert third.reason is Reason.PIN_TRIES_LOW and c.tries_left() == 1


def test_a_pin_request_is_used_once(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki)
    step = auth.begin(InProcessConnection(card(test_pki, "card-001")), NOW)
    assert isinstance(step, PinRequest)
    auth.finish(step, pin_of(test_pki, "card-001"), NOW)
    with pytest.raises(RuntimeError):
        auth.finish(step, pin_of(test_pki, "card-001"), NOW)


@pytest.mark.parametrize("step", range(11))
def test_removal_at_each_step_is_a_clean_refusal(test_pki: TestPkiManifest, step: int) -> None:
    auth = authenticator(test_pki)
    conn = InProcessConnection(card(test_pki, "card-003"))
    conn.remove_after(step)
    result = auth.begin(conn, NOW)
    if isinstance(result, PinRequest):
        result = auth.finish(result, pin_of(test_pki, "card-003"), NOW)
    assert result.reason is Reason.CARD_REMOVED


# -- same serial, another root: the test PKI's twin of card-001 -------------------------------


def _issuer(pki: TestPkiManifest, name: str) -> bytes:
    return bytes.fromhex(pki.card(name).issuer_key_id or "")


@pytest.mark.parametrize(("first", "then"), [("card-001", "twin"), ("twin", "card-001")])
def test_a_cached_certificate_is_never_served_to_its_same_serial_twin(
    test_pki: TestPkiManifest, first: str, then: str
) -> None:
    auth = authenticator(test_pki)
    assert run(auth, card(test_pki, first), pin_of(test_pki, first))[0].reason is Reason.OK
    result, apdus = run(auth, card(test_pki, then), pin_of(test_pki, then))
    # Head matched the cached twin, the tail did not: read in full and judged as itself.
    assert result.reason is Reason.OK, result
    assert result.identity is not None and not result.identity.cached
    assert result.identity.issuer_key_id == _issuer(test_pki, then)
    assert apdus == 12  # the 11 of a first-seen card and the one tail read


def test_twins_both_cached_are_each_served_their_own_certificate(
    test_pki: TestPkiManifest,
) -> None:
    auth = authenticator(test_pki)
    for name in ("card-001", "twin", "card-001", "twin"):
        run(auth, card(test_pki, name), pin_of(test_pki, name))
    for name in ("twin", "card-001"):
        result, apdus = run(auth, card(test_pki, name), pin_of(test_pki, name))
        assert result.reason is Reason.OK and apdus == 6
        assert result.identity is not None and result.identity.cached
        assert result.identity.issuer_key_id == _issuer(test_pki, name)
        assert result.certificate == test_pki.load_profile(name).auth_cert


def _policy(pki: TestPkiManifest, purpose: str = "gate", **vending: object) -> Policy:
    """card-001 enrolled as E1 (at least 20 from 2000-01-01), nobody else."""
    one = pki.card("card-001")
    assert one.serial is not None
    issuer = _issuer(pki, "card-001")
    person = Person("E1", ages=(AgeAttestation(20, date(2000, 1, 1)),))
    content = EnrolmentContent(
        people={"E1": person},
        credentials={(issuer, one.serial): Credential(issuer, one.serial, "E1")},
    )
    enrolment = MemoryEnrolment.installed(
        content, NOW - timedelta(days=1), NOW + timedelta(days=30)
    )
    settings = PolicySettings(purpose, vending=VendingSettings(**vending))  # type: ignore[arg-type]
    return Policy(settings, enrolment, Presence(), None)


def test_access_is_decided_on_the_pair_before_the_pin(test_pki: TestPkiManifest) -> None:
    auth = authenticator(test_pki, access=_policy(test_pki).decide)
    result, _ = run(auth, card(test_pki, "card-001"), pin_of(test_pki, "card-001"))
    assert result.granted and result.subject == "E1" and result.pin_verified
    twin = card(test_pki, "twin")
    result, _ = run(auth, twin, pin_of(test_pki, "twin"))
    assert result.reason is Reason.UNKNOWN_CERTIFICATE
    assert result.identity is not None and not result.identity.cached
    assert not any(cmd[1] == 0x20 for cmd in twin.commands())  # no VERIFY, not even a query


def test_a_pin_less_product_grants_without_verify_and_says_so(test_pki: TestPkiManifest) -> None:
    products = (Product("A", "beer", 20), Product("B", "cigarettes", 20, pin=False))
    auth = authenticator(test_pki, access=_policy(test_pki, "vend", products=products).decide)
    one = card(test_pki, "card-001")
    step = auth.begin(InProcessConnection(one), NOW, "B")
    assert isinstance(step, AuthResult) and step.granted and not step.pin_verified
    assert ("product", "B") in step.attrs and step.signature is None
    assert not any(cmd[1] == 0x20 for cmd in one.commands())  # the PIN never asked for
    asked = auth.begin(InProcessConnection(card(test_pki, "card-001")), NOW, "A")
    assert isinstance(asked, PinRequest)  # the beer needs the PIN


def test_revocation_is_asked_for_the_twins_own_pair(test_pki: TestPkiManifest) -> None:
    """card-001 revoked under its root: its twin (same serial, other root) is not."""
    one = test_pki.card("card-001")
    assert one.serial is not None
    revoked = (_issuer(test_pki, "card-001"), one.serial)

    class PairRevocation:
        def check(
            self, issuer_key_id: bytes, serial: int, now: datetime, points: Sequence[bytes] = ()
        ) -> RevocationVerdict:
            state = RevocationState.REVOKED if (issuer_key_id, serial) == revoked else None
            return RevocationVerdict(state or RevocationState.GOOD)

    auth = authenticator(test_pki, revocation=PairRevocation())
    for name, reason in (("card-001", Reason.CERT_REVOKED), ("twin", Reason.OK)) * 2:
        result, _ = run(auth, card(test_pki, name), pin_of(test_pki, name))
        assert result.reason is reason, name


def test_a_card_only_an_indirect_crl_covers_is_refused_as_unavailable(
    test_pki: TestPkiManifest,
) -> None:
    # Its only CRL distribution point names a separate cRLIssuer: whole-issuer data (here a
    # store that would answer GOOD for anything) must not speak for it.
    from cryptography import x509

    from tests.unit.test_certificate_crldp import PART, der, points, reissue

    indirect = x509.DistributionPoint(
        [x509.DirectoryName(PART)], None, None, [x509.DirectoryName(PART)]
    )
    cert = reissue(test_pki, points(indirect))
    profile = dataclasses.replace(test_pki.load_profile("card-001"), auth_cert=der(cert))
    revocation = FixedRevocation(RevocationVerdict(RevocationState.GOOD))
    result, _ = run(authenticator(test_pki, revocation=revocation), VirtualJpkiCard(profile), None)
    assert result.reason is Reason.REVOCATION_UNAVAILABLE
    assert "cRLIssuer" in result.detail and revocation.asked == []
