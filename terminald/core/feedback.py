"""Lights and beeps for each verdict: every reason code its own, stable pattern.

A person needs to tell "come in" from "no" at a glance, and a technician needs to
tell the reasons apart without a screen. So: green and one long beep for ok; for a
refusal, the light says which family (amber blink = something the holder can act on:
the PIN, or a product / attendance key not chosen; red steady = the certificate, its
status, or the site's policy about this person; red blink = the card or the terminal,
including a back office or enrolment set it cannot use), and the beeps are a code:
one long beep, then the reason's number N (fixed per reason) in tens and units: a
medium beep per ten, a short beep per unit (31: three medium, one short). Tens keep the
longest code to a dozen beeps; N short beeps in a row cannot be counted past ten or so.
The reason code itself always goes to the log.

Outside a verdict: a key that is ignored gives the error beep; a product or attendance
key (A-D) chosen before the tap gives the "selected" beep and light; a key pressed after a
verdict while the card still lies on the reader gives the "remove the card" pattern;
and a door alarm (forced open, held open, tamper) shows its own light while the
terminal rests and repeats its beeps until it clears.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminald.core.door import Alarm
from terminald.core.hardware import BeepPattern, Color, LightPattern, LightStep
from terminald.core.reasons import Reason

GRANTED_MS = 3000
LONG_BEEP, TENS_BEEP, SHORT_BEEP, GAP = 400, 250, 90, 110

_PIN_FAMILY = {
    Reason.PIN_WRONG,
    Reason.PIN_TRIES_LOW,
    Reason.PIN_BLOCKED,
    Reason.PIN_MALFORMED,
    Reason.PIN_TIMEOUT,
    Reason.PIN_CANCELLED,
    Reason.PIN_STATE_UNKNOWN,
    Reason.FACE_AUTH_CARD,
    Reason.NO_SELECTION,  # choose a key A-D, then tap again
}
_CERT_FAMILY = {
    Reason.CERT_MALFORMED,
    Reason.UNKNOWN_ISSUER,
    Reason.CERT_SIGNATURE_INVALID,
    Reason.CERT_EXPIRED,
    Reason.CERT_NOT_YET_VALID,
    Reason.CERT_WRONG_USAGE,
    Reason.CERT_REVOKED,
    Reason.CERT_ON_HOLD,
    Reason.SIGNATURE_INVALID,
    Reason.NOT_ENROLLED,
    # The site's policy says no to this person (core/policy): as definite as not_enrolled.
    Reason.UNKNOWN_CERTIFICATE,
    Reason.NO_ACCESS,
    Reason.OUTSIDE_SCHEDULE,
    Reason.PERSON_NOT_YET_VALID,
    Reason.PERSON_EXPIRED,
    Reason.ANTI_PASSBACK,
    Reason.AGE_UNDER,
    Reason.AGE_CERT_INVALID,
}
# Every other refusal is the card's or the terminal's (red blink), among them what the
# terminal cannot decide today: age_service_offline, age_unknown, enrolment_stale,
# enrolment_unavailable, passback_partner_unreachable.


@dataclass(frozen=True, slots=True)
class Feedback:
    light: LightPattern
    beeps: BeepPattern


def _code(reason: Reason) -> int:
    """1.. for refusals, in declaration order: stable as long as reasons are only appended."""
    refusals: list[Reason] = [r for r in Reason if r is not Reason.OK]
    return refusals.index(reason) + 1


def feedback_for(reason: Reason) -> Feedback:
    if reason is Reason.OK:
        return Feedback(
            LightPattern((LightStep(Color.GREEN, GRANTED_MS), LightStep(Color.OFF, 0))),
            BeepPattern.of((LONG_BEEP, 0)),
        )
    if reason in _PIN_FAMILY:
        light = LightPattern.blink(Color.AMBER, 250, 250)
    elif reason in _CERT_FAMILY:
        light = LightPattern.steady(Color.RED)
    else:
        light = LightPattern.blink(Color.RED, 150, 150)
    tens, units = divmod(_code(reason), 10)
    code = [(TENS_BEEP, GAP)] * tens + [(SHORT_BEEP, GAP)] * units
    if tens and units:  # a wider pause between the tens and the units
        code[tens - 1] = (TENS_BEEP, 2 * GAP)
    return Feedback(light, BeepPattern.of((LONG_BEEP, 2 * GAP), *code))


IDLE_LIGHT = LightPattern((LightStep(Color.GREEN, 60), LightStep(Color.OFF, 2940)), repeat=True)
CHECKING_LIGHT = LightPattern.blink(Color.AMBER, 100, 100)
PIN_PROMPT_LIGHT = LightPattern.steady(Color.AMBER)
LOCKDOWN_LIGHT = LightPattern.steady(Color.RED)
EMERGENCY_LIGHT = LightPattern.blink(Color.GREEN, 500, 500)
KEY_BEEP = BeepPattern.of((40, 0))
ERROR_BEEP = BeepPattern.of((120, 60), (120, 0))
PROMPT_BEEP = BeepPattern.of((60, 60), (60, 0))

# A product or attendance key (A-D) chosen before the tap: a short-long "ta-taa" (no
# other sound starts short then long) and a slow amber pulse, unlike the PIN prompt's
# steady amber and the checking light's fast blink; shown while the choice is kept.
SELECTED_BEEP = BeepPattern.of((50, 50), (150, 0))
# While a vend grant holds the vend-enable line: steady green, "choose on the machine".
VEND_ENABLED_LIGHT = LightPattern.steady(Color.GREEN)
SELECTED_LIGHT = LightPattern((LightStep(Color.AMBER, 900), LightStep(Color.OFF, 300)), repeat=True)

# A key after the verdict with the card still on: amber double blink, three even beeps
# (no verdict or prompt sounds like it), shown for REMOVE_CARD_MS, then the resting light.
REMOVE_CARD_LIGHT = LightPattern(
    (
        LightStep(Color.AMBER, 100),
        LightStep(Color.OFF, 100),
        LightStep(Color.AMBER, 100),
        LightStep(Color.OFF, 500),
    ),
    repeat=True,
)
REMOVE_CARD_BEEP = BeepPattern.of((200, 100), (200, 100), (200, 0))
REMOVE_CARD_MS = 1600


@dataclass(frozen=True, slots=True)
class AlarmFeedback:
    """While an alarm is up: its light (when no card transaction needs the light) and
    its beeps, played again every ``every_ms`` until it clears."""

    light: LightPattern
    beeps: BeepPattern
    every_ms: int


ALARM_FEEDBACK: dict[Alarm, AlarmFeedback] = {
    # Someone is in who should not be: the loudest and most urgent.
    Alarm.FORCED_OPEN: AlarmFeedback(
        LightPattern((LightStep(Color.RED, 100), LightStep(Color.AMBER, 100)), repeat=True),
        BeepPattern.of((250, 100), (250, 100), (250, 100), (250, 0)),
        2000,
    ),
    Alarm.TAMPER: AlarmFeedback(
        LightPattern(
            (
                LightStep(Color.RED, 100),
                LightStep(Color.OFF, 100),
                LightStep(Color.RED, 100),
                LightStep(Color.OFF, 700),
            ),
            repeat=True,
        ),
        BeepPattern.of((150, 150), (150, 150), (150, 0)),
        2000,
    ),
    # A door propped open: a reminder, not a siren.
    Alarm.HELD_OPEN: AlarmFeedback(
        LightPattern((LightStep(Color.AMBER, 500), LightStep(Color.RED, 500)), repeat=True),
        BeepPattern.of((600, 0)),
        4000,
    ),
}
# When several are up, the first of these is shown and heard.
ALARM_PRIORITY = (Alarm.FORCED_OPEN, Alarm.TAMPER, Alarm.HELD_OPEN)
