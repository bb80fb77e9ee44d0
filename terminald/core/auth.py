"""One authentication of a My Number Card, as two steps around the PIN.

``begin`` runs everything that needs no PIN: select, read (or recognise) the
certificate, verify it, check time and revocation, and query the PIN tries
left. It ends either in a refusal or in a :class:`PinRequest`. ``finish`` takes
the PIN, VERIFYs it, has the card sign a fresh challenge and checks the
signature. The caller holds the card exclusively across both and unpowers it
afterwards; the daemon collects the PIN on the keypad in between, the CLI on
stdin. No clock, thread or hardware import here: ``now`` and randomness come in.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from terminald.card.connection import CardConnection
from terminald.card.der import DerError, certificate_serial
from terminald.card.errors import (
    ApduError,
    CardError,
    CardRemovedError,
    ReaderUnavailableError,
)
from terminald.card.jpki import (
    AUTH_PIN_LENGTH,
    AUTH_PIN_MAX_TRIES,
    CertificateReadError,
    JpkiSession,
    NoPinError,
    NotJpkiCardError,
    PinBlockedError,
    PinState,
    WrongPinError,
)
from terminald.core.cert_cache import TAIL_LENGTH, CertificateCache
from terminald.core.reasons import Reason
from terminald.core.revocation_check import RevocationCheck, RevocationState, RevocationVerdict
from terminald.core.trusted_time import BUILD_EPOCH, EPOCH, SignedTime, clock_problem
from terminald.pki.anchors import TrustStore
from terminald.pki.certificate import (
    INDIRECT_CRL_DETAIL,
    CertificateRejected,
    VerifiedCertificate,
    verify_certificate,
)
from terminald.pki.challenge import NONCE_LENGTH, Challenge, signature_valid

logger = logging.getLogger(__name__)

# A Pi has no RTC: before time sync its clock reads 1970 or the last fake-hwclock
# save. Anything earlier than this build's epoch cannot be the real time.
DEFAULT_EARLIEST_TRUSTED_TIME = BUILD_EPOCH


@dataclass(frozen=True)
class AuthSettings:
    terminal_id: str
    purpose: str = "gate"
    # Refuse before any VERIFY when the tries left are at or below this floor.
    # 1 (the default) never spends a person's last try; 0 allows it.
    pin_floor: int = 1
    # One extended READ BINARY for the certificate, where the reader passes them.
    extended_reads: bool = False
    earliest_trusted_time: datetime = DEFAULT_EARLIEST_TRUSTED_TIME

    def __post_init__(self) -> None:
        if not 0 <= self.pin_floor <= 2:
            raise ValueError("pin_floor must be 0, 1 or 2")
        if not self.terminal_id:
            raise ValueError("terminal_id must not be empty")


@dataclass(frozen=True)
class CardIdentity:
    """Who the certificate says the card is, as far as a verdict needs to say.

    A certificate is (issuer key id, serial): serials are unique per issuer only.
    ``issuer_key_id`` is None only when no trusted root vouched for the certificate.
    """

    serial: int
    issuer_key_id: bytes | None = None
    not_after: datetime | None = None
    cached: bool = False

    @classmethod
    def of(cls, cert: VerifiedCertificate, cached: bool) -> CardIdentity:
        return cls(cert.serial, cert.issuer_key_id, cert.not_after, cached)

    @property
    def issuer_hex(self) -> str:
        return self.issuer_key_id.hex() if self.issuer_key_id is not None else "unknown"

    def describe(self) -> str:
        """``issuer 1ac1… serial 16777217``: how people and logs are shown a certificate."""
        return f"issuer {self.issuer_hex} serial {self.serial}"


class PolicyVerdict(Protocol):
    """What the terminal's policy (core/policy ``PolicyDecision``) says of a person before
    the PIN: ``reason`` OK or a refusal, and with OK whether the PIN is asked for."""

    @property
    def reason(self) -> Reason: ...
    @property
    def detail(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def pin_required(self) -> bool: ...
    @property
    def attrs(self) -> tuple[tuple[str, str], ...]: ...


# The terminal's policy (core/policy ``Policy.decide``): the certificate's identity, the
# time, and the key chosen before the tap (a product, an attendance type) or None.
AccessCheck = Callable[[CardIdentity, datetime, "str | None"], PolicyVerdict]


@dataclass(frozen=True)
class AuthResult:
    reason: Reason
    detail: str = ""
    identity: CardIdentity | None = None
    pin_tries_left: int | None = None
    revocation: str = "not_checked"
    challenge: Challenge | None = None
    signature: bytes | None = None
    # The verified certificate (DER) whose key made ``signature``: with the challenge,
    # evidence anyone can check later that this card was presented here.
    certificate: bytes | None = field(default=None, repr=False)
    # The policy's verdict about the person (core/policy): the enrolled subject id, the
    # decision's attributes (product, age, attendance type, passback; str -> str, sorted
    # by key when recorded), and whether the holder proved the PIN (False: a PIN-less
    # product, which proves neither that the card is present nor that it is the holder's).
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()
    pin_verified: bool = False

    @property
    def granted(self) -> bool:
        return self.reason.granted


@dataclass
class PinRequest:
    """The card is ready for a PIN; ``tries_left`` is above the floor."""

    session: JpkiSession
    certificate: VerifiedCertificate
    identity: CardIdentity
    tries_left: int
    revocation: str
    consumed: bool = field(default=False, repr=False)
    subject: str | None = None
    attrs: tuple[tuple[str, str], ...] = ()

    def result(
        self,
        reason: Reason,
        detail: str = "",
        *,
        tries_left: int | None = None,
        challenge: Challenge | None = None,
        signature: bytes | None = None,
    ) -> AuthResult:
        return AuthResult(
            reason,
            detail,
            self.identity,
            self.tries_left if tries_left is None else tries_left,
            self.revocation,
            challenge,
            signature,
            self.certificate.der if signature is not None else None,
            self.subject,
            self.attrs,
            pin_verified=reason is Reason.OK,
        )


_CERT_REASONS = {
    "cert_malformed": Reason.CERT_MALFORMED,
    "unknown_issuer": Reason.UNKNOWN_ISSUER,
    "cert_signature_invalid": Reason.CERT_SIGNATURE_INVALID,
    "cert_expired": Reason.CERT_EXPIRED,
    "cert_not_yet_valid": Reason.CERT_NOT_YET_VALID,
    "cert_wrong_usage": Reason.CERT_WRONG_USAGE,
}

_REVOCATION_REASONS = {
    RevocationState.REVOKED: Reason.CERT_REVOKED,
    RevocationState.ON_HOLD: Reason.CERT_ON_HOLD,
    RevocationState.STALE: Reason.REVOCATION_STALE,
    RevocationState.UNAVAILABLE: Reason.REVOCATION_UNAVAILABLE,
}


def card_failure(exc: CardError) -> AuthResult:
    """The reason code for a card-layer exception."""
    if isinstance(exc, CardRemovedError):
        return AuthResult(Reason.CARD_REMOVED, str(exc))
    if isinstance(exc, ReaderUnavailableError):
        return AuthResult(Reason.READER_UNAVAILABLE, str(exc))
    if isinstance(exc, NotJpkiCardError):
        return AuthResult(Reason.NOT_JPKI_CARD, str(exc))
    if isinstance(exc, CertificateReadError):
        return AuthResult(Reason.CERT_MALFORMED, str(exc))
    return AuthResult(Reason.CARD_ERROR, str(exc))  # ApduError, CardCommunicationError, ...


class Authenticator:
    """Runs authentications with one trust store, cache, revocation source and policy."""

    def __init__(
        self,
        trust: TrustStore,
        settings: AuthSettings,
        *,
        cache: CertificateCache | None = None,
        revocation: RevocationCheck | None = None,
        access: AccessCheck | None = None,
        trusted_time: Callable[[], SignedTime] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``trusted_time``: the newest signed time held (read from memory, per card);
        a clock earlier than it refuses with ``clock_untrusted`` before any APDU."""
        self._trust = trust
        self.settings = settings
        self._cache = cache if cache is not None else CertificateCache()
        self._revocation = revocation
        self._access = access
        self._trusted_time = trusted_time
        self._random_bytes = random_bytes

    def begin(
        self, connection: CardConnection, now: datetime, selection: str | None = None
    ) -> AuthResult | PinRequest:
        """Everything before the PIN. Card errors become refusals, never exceptions.
        ``selection``: the key chosen before the tap (A-D), for the policy."""
        floor = self._trusted_time() if self._trusted_time is not None else EPOCH
        problem = clock_problem(now, floor, self.settings.earliest_trusted_time)
        if problem is not None:
            return AuthResult(Reason.CLOCK_UNTRUSTED, problem)
        try:
            return self._begin(connection, now, selection)
        except CardError as exc:
            return card_failure(exc)

    def _begin(
        self, connection: CardConnection, now: datetime, selection: str | None
    ) -> AuthResult | PinRequest:
        session = JpkiSession(connection)
        head = session.read_certificate_head()
        try:
            serial = certificate_serial(head)
        except DerError as exc:
            return AuthResult(Reason.CERT_MALFORMED, f"EF 000A head: {exc}")
        cert = None
        if self._cache.candidates(serial, head):
            # The head cannot tell same-serial certificates of two roots apart; the
            # issuer's signature at the end can (core.cert_cache).
            tail = session.read_certificate_tail(head, TAIL_LENGTH)
            cert = self._cache.lookup(serial, head, tail)
        cached = cert is not None
        try:
            if cert is None:
                der = session.read_certificate_rest(head, extended=self.settings.extended_reads)
                cert = verify_certificate(der, self._trust, now)
                self._cache.add(cert)
            else:
                cert.check_time(now)
        except CertificateRejected as exc:
            identity = CardIdentity(serial, exc.issuer_key_id, cached=cached)
            return AuthResult(_CERT_REASONS[exc.problem.value], exc.detail, identity)
        identity = CardIdentity.of(cert, cached)

        revocation = "not_checked"
        if self._revocation is not None:
            verdict = (
                RevocationVerdict(RevocationState.UNAVAILABLE, False, INDIRECT_CRL_DETAIL)
                if cert.indirect_crl_only  # no data covers it (pki/certificate.py)
                else self._revocation.check(
                    cert.issuer_key_id, cert.serial, now, cert.crl_distribution_points
                )
            )
            if verdict.state is not RevocationState.GOOD:
                reason = _REVOCATION_REASONS[verdict.state]
                return AuthResult(reason, verdict.detail, identity, revocation=verdict.state.value)
            revocation = "good_in_grace" if verdict.in_grace else "good"
            if verdict.in_grace:
                logger.warning(
                    "revocation data stale; %s admitted within grace: %s",
                    identity.describe(),
                    verdict.detail,
                )

        subject: str | None = None
        attrs: tuple[tuple[str, str], ...] = ()
        if self._access is not None:
            decision = self._access(identity, now, selection)
            subject, attrs = decision.subject, decision.attrs
            if decision.reason is not Reason.OK:
                return AuthResult(
                    decision.reason,
                    decision.detail,
                    identity,
                    revocation=revocation,
                    subject=subject,
                    attrs=attrs,
                )
            if not decision.pin_required:
                # A PIN-less product (docs/policy.md): the certificate is genuine and not
                # revoked, but nothing proves the card is present or its holder's.
                detail = decision.detail or "without PIN, as the product allows"
                return AuthResult(
                    Reason.OK, detail, identity, revocation=revocation, subject=subject, attrs=attrs
                )

        try:
            status = session.pin_status()
        except ApduError as exc:
            return AuthResult(Reason.PIN_STATE_UNKNOWN, str(exc), identity, revocation=revocation)
        if status.state is PinState.NO_PIN:
            return AuthResult(Reason.FACE_AUTH_CARD, "", identity, 0, revocation)
        if status.state is PinState.BLOCKED:
            return AuthResult(Reason.PIN_BLOCKED, "", identity, 0, revocation)
        if status.tries_left <= self.settings.pin_floor:
            left = status.tries_left
            detail = (
                f"{left} {'try' if left == 1 else 'tries'} left; this terminal refuses at "
                f"{self.settings.pin_floor} or fewer, so the holder keeps them"
            )
            return AuthResult(Reason.PIN_TRIES_LOW, detail, identity, status.tries_left, revocation)
        return PinRequest(
            session, cert, identity, status.tries_left, revocation, subject=subject, attrs=attrs
        )

    def finish(self, request: PinRequest, pin: str, now: datetime) -> AuthResult:
        """VERIFY, challenge, signature check. A PinRequest can be finished once."""
        if request.consumed:
            raise RuntimeError("this PIN request was already used")
        request.consumed = True
        if len(pin) != AUTH_PIN_LENGTH or not pin.isascii() or not pin.isdigit():
            return request.result(Reason.PIN_MALFORMED)
        try:
            try:
                request.session.verify_pin(pin)
            except WrongPinError as exc:
                return request.result(Reason.PIN_WRONG, tries_left=exc.tries_left)
            except PinBlockedError:
                return request.result(Reason.PIN_BLOCKED, tries_left=0)
            except NoPinError:
                return request.result(Reason.FACE_AUTH_CARD, tries_left=0)
            challenge = Challenge(
                self.settings.terminal_id,
                self.settings.purpose,
                now,
                self._random_bytes(NONCE_LENGTH),
            )
            signature = request.session.sign(challenge.digest_info)
        except CardError as exc:
            failure = card_failure(exc)
            return request.result(failure.reason, failure.detail, tries_left=AUTH_PIN_MAX_TRIES)
        if not signature_valid(request.certificate.public_key, challenge, signature):
            return request.result(Reason.SIGNATURE_INVALID, tries_left=AUTH_PIN_MAX_TRIES)
        return request.result(
            Reason.OK, tries_left=AUTH_PIN_MAX_TRIES, challenge=challenge, signature=signature
        )
