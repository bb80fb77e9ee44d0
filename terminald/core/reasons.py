"""Verdict reason codes: stable names that logs, JSON output and scripts rely on."""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    OK = "ok"
    # the card and the reader
    NOT_JPKI_CARD = "not_jpki_card"
    CARD_REMOVED = "card_removed"
    CARD_ERROR = "card_error"
    READER_UNAVAILABLE = "reader_unavailable"
    # the certificate
    CERT_MALFORMED = "cert_malformed"
    UNKNOWN_ISSUER = "unknown_issuer"
    CERT_SIGNATURE_INVALID = "cert_signature_invalid"
    CERT_EXPIRED = "cert_expired"
    CERT_NOT_YET_VALID = "cert_not_yet_valid"
    CERT_WRONG_USAGE = "cert_wrong_usage"
    CERT_REVOKED = "cert_revoked"
    CERT_ON_HOLD = "cert_on_hold"
    REVOCATION_STALE = "revocation_stale"
    REVOCATION_UNAVAILABLE = "revocation_unavailable"
    CLOCK_UNTRUSTED = "clock_untrusted"
    # the PIN
    FACE_AUTH_CARD = "face_auth_card"
    PIN_BLOCKED = "pin_blocked"
    PIN_TRIES_LOW = "pin_tries_low"
    PIN_WRONG = "pin_wrong"
    PIN_MALFORMED = "pin_malformed"
    PIN_STATE_UNKNOWN = "pin_state_unknown"
    PIN_CANCELLED = "pin_cancelled"
    PIN_TIMEOUT = "pin_timeout"
    # the terminal's mode
    LOCKDOWN = "lockdown"
    EMERGENCY_OPEN = "emergency_open"
    # the challenge
    SIGNATURE_INVALID = "signature_invalid"
    # the terminal's policy (appended: feedback codes follow declaration order)
    NOT_ENROLLED = "not_enrolled"
    # the terminal's enclosure is open ([door] tamper_blocks_grants)
    TAMPER = "tamper"
    # the policies (core/policy; appended, as above)
    UNKNOWN_CERTIFICATE = "unknown_certificate"
    NO_ACCESS = "no_access"
    OUTSIDE_SCHEDULE = "outside_schedule"
    PERSON_NOT_YET_VALID = "person_not_yet_valid"
    PERSON_EXPIRED = "person_expired"
    ANTI_PASSBACK = "anti_passback"
    PASSBACK_PARTNER_UNREACHABLE = "passback_partner_unreachable"
    ENROLMENT_STALE = "enrolment_stale"
    ENROLMENT_UNAVAILABLE = "enrolment_unavailable"
    NO_SELECTION = "no_selection"
    AGE_UNDER = "age_under"
    AGE_CERT_INVALID = "age_cert_invalid"
    AGE_UNKNOWN = "age_unknown"
    AGE_SERVICE_OFFLINE = "age_service_offline"

    @property
    def granted(self) -> bool:
        return self is Reason.OK


# One line a person at the terminal (or a technician reading the log) understands.
DESCRIPTIONS: dict[Reason, str] = {
    Reason.OK: "authenticated",
    Reason.NOT_JPKI_CARD: "not a My Number Card (no JPKI application)",
    Reason.CARD_REMOVED: "card removed before the end",
    Reason.CARD_ERROR: "the card gave an unexpected answer",
    Reason.READER_UNAVAILABLE: "card reader or PC/SC service unavailable",
    Reason.CERT_MALFORMED: "the card's certificate cannot be parsed",
    Reason.UNKNOWN_ISSUER: "certificate not issued by a trusted root",
    Reason.CERT_SIGNATURE_INVALID: "certificate signature does not verify with its claimed root",
    Reason.CERT_EXPIRED: "certificate expired",
    Reason.CERT_NOT_YET_VALID: "certificate not yet valid",
    Reason.CERT_WRONG_USAGE: "certificate is not a JPKI user-authentication certificate",
    Reason.CERT_REVOKED: "certificate revoked",
    Reason.CERT_ON_HOLD: "certificate on hold (suspended)",
    Reason.REVOCATION_STALE: "revocation data out of date",
    Reason.REVOCATION_UNAVAILABLE: "no usable revocation data",
    Reason.CLOCK_UNTRUSTED: "terminal clock not trusted",
    Reason.FACE_AUTH_CARD: "face-authentication card: it has no PIN and cannot be used here",
    Reason.PIN_BLOCKED: "PIN blocked: reset it at the municipal office",
    Reason.PIN_TRIES_LOW: "too few PIN tries left to risk one here",
    Reason.PIN_WRONG: "wrong PIN",
    Reason.PIN_MALFORMED: "the PIN must be 4 digits",
    Reason.PIN_STATE_UNKNOWN: "the card did not report its PIN tries",
    Reason.PIN_CANCELLED: "PIN entry cancelled",
    Reason.PIN_TIMEOUT: "no PIN entered in time",
    Reason.LOCKDOWN: "the terminal is in lockdown: no one is admitted",
    Reason.EMERGENCY_OPEN: "emergency open: the door is held open",
    Reason.SIGNATURE_INVALID: "the card's signature does not verify",
    Reason.NOT_ENROLLED: "this card is not enrolled at this terminal",
    Reason.TAMPER: "the terminal's enclosure is open: no one is admitted until it is closed",
    Reason.UNKNOWN_CERTIFICATE: "a valid certificate not (yet) linked to an enrolled person",
    Reason.NO_ACCESS: "the person has no access through this door or terminal",
    Reason.OUTSIDE_SCHEDULE: "not allowed at this time (schedule, holiday or product hours)",
    Reason.PERSON_NOT_YET_VALID: "the person's enrolment is not valid yet",
    Reason.PERSON_EXPIRED: "the person's enrolment has ended",
    Reason.ANTI_PASSBACK: "anti-passback: already inside (or outside) by the last passage",
    Reason.PASSBACK_PARTNER_UNREACHABLE: "anti-passback partner unreachable, and set to refuse",
    Reason.ENROLMENT_STALE: "the enrolment set is past its validity: no one is admitted",
    Reason.ENROLMENT_UNAVAILABLE: "no usable enrolment set is installed",
    Reason.NO_SELECTION: "choose a product or an attendance key before tapping",
    Reason.AGE_UNDER: "the holder is below the age threshold",
    Reason.AGE_CERT_INVALID: "the age service says the certificate is not valid",
    Reason.AGE_UNKNOWN: "the age could not be determined",
    Reason.AGE_SERVICE_OFFLINE: "the age service (back office) did not answer in time",
}
