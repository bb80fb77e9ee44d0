"""The console's command table: words, ``?`` help, and unique-prefix abbreviations.

Pure. Conventions technicians expect from Cisco/Junos consoles (serial-link.md §5):
``?`` anywhere lists what may come next, a unique prefix stands for the word (``st`` is
``status``), an ambiguous one names the words it could be, and commands that only show
are listed apart from those that change something.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Kind(Enum):
    SHOW = "show"
    CHANGE = "change"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Choice:
    name: str
    help: str


@dataclass(frozen=True, slots=True)
class Number:
    """An optional integer argument in [low, high]."""

    name: str
    low: int
    high: int
    help: str


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    kind: Kind
    help: str
    choices: tuple[Choice, ...] = ()
    choice_required: bool = False
    number: Number | None = None


MODES: Final = (
    Choice("normal", "admit cards as configured"),
    Choice("lockdown", "admit no card (exit button still works)"),
    Choice("emergency_open", "hold the door released, no checks"),
)
OUTPUTS: Final = (
    Choice("relay", "pulse the door relay for the configured open time"),
    Choice("leds", "show red, amber, green in turn"),
    Choice("buzzer", "sound the error beep"),
)
EVENTS_MAX: Final = 20  # rows of the audit trail on one 24-line screen

TABLE: Final = (
    Spec("status", Kind.SHOW, "state, mode, door, alarms, health"),
    Spec("events", Kind.SHOW, "newest audit events", number=Number("N", 1, EVENTS_MAX, "rows")),
    Spec("readers", Kind.SHOW, "card readers, taps and APDU counters"),
    Spec("revocation", Kind.SHOW, "revocation data: version, issued, freshness"),
    Spec("enrolment", Kind.SHOW, "access policy and enrolled cards"),
    Spec("config", Kind.SHOW, "configuration file, digest, loaded when"),
    Spec("time", Kind.SHOW, "system time, trusted time, clock problem"),
    Spec("mode", Kind.CHANGE, "show or set the mode", choices=MODES),
    Spec("test", Kind.CHANGE, "test an output", choices=OUTPUTS, choice_required=True),
    Spec("restart", Kind.CHANGE, "restart the daemon (asks to confirm)"),
    Spec("help", Kind.SESSION, "list the commands"),
    Spec("logout", Kind.SESSION, "end the session"),
    Spec("exit", Kind.SESSION, "end the session"),
)
_HEADINGS: Final = {Kind.SHOW: "Show:", Kind.CHANGE: "Change:", Kind.SESSION: "Session:"}


@dataclass(frozen=True, slots=True)
class Parsed:
    """A whole command: its spec and the argument (a choice's name, a number, or None)."""

    spec: Spec
    argument: str | int | None = None


class ParseError(ValueError):
    """A line that is not a command; the message says what was wrong, in one line."""


def _match(word: str, names: list[str], what: str) -> str:
    word = word.lower().replace("-", "_")
    if word in names:
        return word
    hits = [n for n in names if n.startswith(word)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ParseError(f"ambiguous {what} '{word}': {', '.join(hits)}")
    raise ParseError(f"unknown {what} '{word}' (type ? for the list)")


def parse(line: str, table: tuple[Spec, ...] = TABLE) -> Parsed | None:
    """The command on ``line``, or None for an empty line; ParseError says what is wrong."""
    words = line.split()
    if not words:
        return None
    name = _match(words[0], [s.name for s in table], "command")
    spec = next(s for s in table if s.name == name)
    rest = words[1:]
    if spec.choices:
        if not rest:
            if spec.choice_required:
                raise ParseError(f"{name} what? ({'|'.join(c.name for c in spec.choices)})")
            return Parsed(spec)
        choice = _match(rest[0], [c.name for c in spec.choices], f"{name} argument")
        _no_more(name, rest[1:])
        return Parsed(spec, choice)
    if spec.number is not None and rest:
        number = spec.number
        if not rest[0].isdigit() or not number.low <= int(rest[0][:6]) <= number.high:
            raise ParseError(f"{name} {number.name}: a number from {number.low} to {number.high}")
        _no_more(name, rest[1:])
        return Parsed(spec, int(rest[0]))
    _no_more(name, rest)
    return Parsed(spec)


def _no_more(name: str, extra: list[str]) -> None:
    if extra:
        raise ParseError(f"{name}: unexpected '{extra[0][:20]}'")


def help_lines(table: tuple[Spec, ...] = TABLE) -> list[str]:
    """Every command, the show ones apart from the change ones."""
    lines: list[str] = []
    for kind in Kind:
        lines.append(_HEADINGS[kind])
        lines += [f"  {s.name:<12}{s.help}" for s in table if s.kind is kind]
    lines.append("Abbreviate any word to a unique prefix; ? lists what may come next.")
    return lines


def what_next(line: str, table: tuple[Spec, ...] = TABLE) -> list[str]:
    """``?`` after ``line``: the words that may come next (or that complete the word being
    typed), one per line with their help, ``<cr>`` when the line is complete as it is."""
    words = line.split()
    partial = "" if not line or line[-1] == " " else (words.pop() if words else "")
    options: list[tuple[str, str]]
    complete = False
    if not words:
        options = [(s.name, s.help) for s in table]
    else:
        try:
            name = _match(words[0], [s.name for s in table], "command")
        except ParseError as exc:
            return [f"  {exc}"]
        spec = next(s for s in table if s.name == name)
        if len(words) > 1:
            options, complete = [], True
        elif spec.choices:
            options = [(c.name, c.help) for c in spec.choices]
            complete = not spec.choice_required
        elif spec.number is not None:
            n = spec.number
            options = [(f"<{n.low}-{n.high}>", n.help)]
            complete = True
        else:
            options, complete = [], True
    key = partial.lower().replace("-", "_")
    if partial:
        options = [o for o in options if o[0].startswith(key) or o[0].startswith("<")]
        complete = False
    lines = [f"  {name:<16}{text}" for name, text in options]
    if complete:
        lines.append("  <cr>")
    return lines or ["  (nothing matches)"]
