"""Channel 0 (HELLO): the only plaintext the link carries, and the terminal's session slot.

A HELLO payload is ``kind u8 | body``:

===========  ====  ====================================================  ==============
kind         code  body                                                  sent by
===========  ====  ====================================================  ==============
REQUEST      0x01  empty                                                 host
REPLY        0x02  link version u8, address u8, flags u8 (bit 0: session  terminal
                   required; always set)
HANDSHAKE_1  0x03  Noise KK message 1 (48 + payload bytes)               host
HANDSHAKE_2  0x04  Noise KK message 2 (48 + payload bytes)               terminal
NO_SESSION   0x05  empty: "I hold no session; handshake again" (a hint)   terminal
===========  ====  ====================================================  ==============

Unauthenticated input gets nothing more than REPLY: no terminal id, no versions, no state.
Everything else travels in the session (channel 1), starting with the messages layer's
``hello`` message.

:class:`SessionSlot` is the terminal's side. Its rule: a new handshake never displaces the
established session; it makes a *pending* session, promoted only when the first record
sealed under it opens. KK message 1 can be replayed by anyone who recorded it (it has no
freshness), so a replay yields at most a pending session nobody can use, and the live one
carries on. A handshake costs the terminal four X25519 operations (~0.1 ms each) plus
noiseprotocol's Python: ~0.7 ms for :func:`respond` on a desktop x86 core (measured by
tests/unit/test_link_session.py), a few ms on a Pi. So handshakes are rate-limited by a
token bucket: spam cannot cost more than ``rate`` handshakes a second.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass
from typing import Final

import msgpack

from terminald.link.session import (
    HANDSHAKE_OVERHEAD,
    MAX_HANDSHAKE_PAYLOAD,
    Session,
    SessionError,
    respond,
)

LINK_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = (1,)
FLAG_SESSION_REQUIRED: Final = 0x01
MAX_HANDSHAKE_MESSAGE: Final = HANDSHAKE_OVERHEAD + MAX_HANDSHAKE_PAYLOAD
MAX_HELLO: Final = 1 + MAX_HANDSHAKE_MESSAGE
MAX_TERMINAL_ID: Final = 64  # characters
# Default handshake budget: a burst of 4, then 2 a second. A host needs one per line cut
# or restart. Unlimited, spam at the line's full rate (~200 messages/s at 115200 baud)
# would cost 15-100 % of a core; limited, at most 2 handshakes' worth a second.
HANDSHAKE_RATE: Final = 2.0
HANDSHAKE_BURST: Final = 4
# Ephemeral keys of recent accepted handshakes: an exact replay is refused before any DH.
REPLAY_MEMORY: Final = 64
# Pending sessions kept, newest last. One was not enough: an old message 1 (recorded more
# than REPLAY_MEMORY handshakes ago, or before a restart) replayed between the terminal's
# message 2 and the host's first record displaced the genuine pending session, and the host
# was left sending records nobody could open. More than the burst: a replay after the
# genuine handshake cannot push it out within the second the host takes to send a record.
PENDING_SESSIONS: Final = HANDSHAKE_BURST + 1


class HelloError(ValueError):
    """A HELLO payload that is malformed; the message names what is wrong."""


class NoSessionError(SessionError):
    """A record arrived but the terminal holds no session (answer with NO_SESSION)."""


class HelloKind(enum.IntEnum):
    REQUEST = 0x01
    REPLY = 0x02
    HANDSHAKE_1 = 0x03
    HANDSHAKE_2 = 0x04
    NO_SESSION = 0x05


@dataclass(frozen=True)
class Hello:
    kind: HelloKind
    body: bytes


@dataclass(frozen=True)
class HelloReply:
    version: int
    address: int
    session_required: bool


def encode(kind: HelloKind, body: bytes = b"") -> bytes:
    """A HELLO payload; HelloError if ``body`` does not fit ``kind`` (see :func:`decode`)."""
    hello = Hello(kind, bytes(body))
    _check_body(hello)
    return bytes([kind]) + hello.body


def encode_reply(address: int, version: int = LINK_VERSION) -> bytes:
    """The terminal's unauthenticated REPLY: version, address, "session required"."""
    if not 0 <= address <= 0xFF or not 0 <= version <= 0xFF:
        raise HelloError("version and address are one byte each")
    return encode(HelloKind.REPLY, bytes([version, address, FLAG_SESSION_REQUIRED]))


def decode(payload: bytes) -> Hello:
    """The kind and body of a HELLO payload; HelloError naming the problem otherwise.

    Bounds: at most ``MAX_HELLO`` (305) bytes; REQUEST and NO_SESSION empty, REPLY 3
    bytes, HANDSHAKE_1/2 48 to 304 bytes.
    """
    if not payload:
        raise HelloError("empty HELLO payload")
    if len(payload) > MAX_HELLO:
        raise HelloError(f"HELLO payload of {len(payload)} bytes, more than {MAX_HELLO}")
    try:
        kind = HelloKind(payload[0])
    except ValueError:
        raise HelloError(f"unknown HELLO kind 0x{payload[0]:02x}") from None
    hello = Hello(kind, bytes(payload[1:]))
    _check_body(hello)
    return hello


def decode_reply(body: bytes) -> HelloReply:
    """A REPLY's body (as :func:`decode` returned it) as its three fields."""
    if len(body) != 3:
        raise HelloError(f"a REPLY body is 3 bytes, got {len(body)}")
    version, address, flags = body
    if flags & ~FLAG_SESSION_REQUIRED:
        raise HelloError(f"REPLY flags 0x{flags:02x} has unknown bits")
    return HelloReply(version, address, bool(flags & FLAG_SESSION_REQUIRED))


def _check_body(hello: Hello) -> None:
    size, name = len(hello.body), hello.kind.name
    if hello.kind in (HelloKind.REQUEST, HelloKind.NO_SESSION):
        if size:
            raise HelloError(f"{name} carries no body, got {size} bytes")
    elif hello.kind is HelloKind.REPLY:
        if size != 3:
            raise HelloError(f"a REPLY body is 3 bytes, got {size}")
    elif not HANDSHAKE_OVERHEAD <= size <= MAX_HANDSHAKE_MESSAGE:
        raise HelloError(
            f"{name} of {size} bytes; expected {HANDSHAKE_OVERHEAD} to {MAX_HANDSHAKE_MESSAGE}"
        )


# Handshake payloads (msgpack maps, inside the Noise messages):
#   message 1 (host → terminal): {"link": [versions the host speaks]}
#   message 2 (terminal → host): {"link": the version chosen, "id": terminal id}
# Message 1's payload is authenticated but replayable; message 2's is forward secret.


@dataclass(frozen=True)
class TerminalInfo:
    link_version: int
    terminal_id: str


def initiator_payload(versions: tuple[int, ...] = SUPPORTED_VERSIONS) -> bytes:
    return bytes(msgpack.packb({"link": list(versions)}))


def responder_payload(terminal_id: str, version: int = LINK_VERSION) -> bytes:
    if not terminal_id or len(terminal_id) > MAX_TERMINAL_ID:
        raise HelloError(f"a terminal id is 1 to {MAX_TERMINAL_ID} characters")
    return bytes(msgpack.packb({"link": version, "id": terminal_id}))


def _unpack_map(data: bytes, which: str) -> dict[object, object]:
    try:
        value = msgpack.unpackb(
            data, raw=False, strict_map_key=True, max_str_len=256, max_bin_len=0,
            max_array_len=16, max_map_len=8, max_ext_len=0,
        )  # fmt: skip
    except (ValueError, msgpack.UnpackException) as exc:
        raise HelloError(
            f"handshake {which} payload is not msgpack ({type(exc).__name__})"
        ) from None
    if not isinstance(value, dict):
        raise HelloError(f"handshake {which} payload is not a map")
    return value


def parse_initiator_payload(data: bytes) -> tuple[int, ...]:
    """The link versions the host speaks; HelloError when malformed."""
    versions = _unpack_map(data, "1").get("link")
    if not isinstance(versions, list) or not versions:
        raise HelloError('handshake 1 payload: "link" must be a non-empty list of versions')
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 256 for v in versions):
        raise HelloError('handshake 1 payload: "link" versions are integers 1-255')
    return tuple(versions)


def parse_responder_payload(data: bytes) -> TerminalInfo:
    """The version chosen and the terminal's id; HelloError when malformed."""
    fields = _unpack_map(data, "2")
    version, terminal_id = fields.get("link"), fields.get("id")
    if (
        not isinstance(version, int)
        or isinstance(version, bool)
        or version not in SUPPORTED_VERSIONS
    ):
        raise HelloError(f'handshake 2 payload: "link" version {version!r} not supported')
    if not isinstance(terminal_id, str) or not 0 < len(terminal_id) <= MAX_TERMINAL_ID:
        raise HelloError('handshake 2 payload: "id" must be a terminal id string')
    return TerminalInfo(version, terminal_id)


class SessionSlot:
    """The terminal's current and pending sessions (pure; time passed in as ``now``).

    ``static_private`` is the terminal's X25519 private key, ``host_public`` the configured
    back-office key (32 raw bytes each), ``terminal_id`` goes in handshake message 2.
    Not thread-safe: the link thread owns it.
    """

    def __init__(
        self,
        static_private: bytes,
        host_public: bytes,
        terminal_id: str,
        *,
        address: int,
        rate: float = HANDSHAKE_RATE,
        burst: int = HANDSHAKE_BURST,
    ) -> None:
        self._private = static_private
        self._host = host_public
        self._payload = responder_payload(terminal_id)
        self._address = address
        self._rate, self._burst = rate, float(burst)
        self._tokens = float(burst)
        self._refilled: float | None = None
        self._seen: collections.deque[bytes] = collections.deque(maxlen=REPLAY_MEMORY)
        self.current: Session | None = None
        self._pending: collections.deque[Session] = collections.deque(maxlen=PENDING_SESSIONS)
        self.refused_handshakes = 0

    @property
    def pending(self) -> Session | None:
        """The newest pending session (of up to PENDING_SESSIONS), or None."""
        return self._pending[-1] if self._pending else None

    def __repr__(self) -> str:
        return f"SessionSlot(current={self.current!r}, pending={self.pending!r})"

    def handle(self, payload: bytes, now: float) -> bytes | None:
        """The HELLO payload to send back for a HELLO payload from the host, or None.

        REQUEST → REPLY; HANDSHAKE_1 → HANDSHAKE_2; other kinds (a terminal's) → None.
        Raises HelloError (malformed) or SessionError (handshake refused); the established
        session is never changed by either.
        """
        hello = decode(payload)
        if hello.kind is HelloKind.REQUEST:
            return encode_reply(self._address)
        if hello.kind is HelloKind.HANDSHAKE_1:
            return encode(HelloKind.HANDSHAKE_2, self.on_handshake(hello.body, now))
        return None

    def on_handshake(self, message_1: bytes, now: float) -> bytes:
        """Handshake message 2 for message 1; the new session becomes *pending*.

        Raises SessionError when the handshake is refused: rate limit exceeded, an exact
        replay of a recent message 1, failed authentication, or no common link version.
        A refused handshake changes neither the current nor the pending session.
        """
        ephemeral = bytes(message_1[:32])
        if ephemeral in self._seen:
            self.refused_handshakes += 1
            raise SessionError("handshake message 1 is a replay of a recent one")
        if not self._take_token(now):
            self.refused_handshakes += 1
            raise SessionError("handshake refused: more than the allowed rate (try again later)")
        try:
            session, message_2, host_payload = respond(
                self._private, self._host, message_1, self._payload
            )
            versions = parse_initiator_payload(host_payload)
        except (SessionError, HelloError) as exc:
            self.refused_handshakes += 1
            raise SessionError(str(exc)) from None
        if LINK_VERSION not in versions:
            self.refused_handshakes += 1
            raise SessionError(f"no common link version (host speaks {list(versions)})")
        self._seen.append(ephemeral)
        self._pending.append(session)
        return message_2

    def open(self, header: bytes, record: bytes) -> bytes:
        """The plaintext of a channel-1 record, from the current or the pending session.

        The first record that opens under a pending session promotes it to current (the
        old one and the other pending ones are dropped). Raises NoSessionError when there
        is no established session and no pending one opens it (pending sessions may be
        replays: the host must still hear that it should handshake), and SessionError when
        no session accepts the record (nothing changes).
        """
        if self.current is None and self.pending is None:
            raise NoSessionError("no session: the host must handshake first")
        problem = ""
        if self.current is not None:
            try:
                return self.current.open(header, record)
            except SessionError as exc:
                problem = str(exc)
        for pending in reversed(self._pending):
            try:
                plaintext = pending.open(header, record)
            except SessionError:
                continue
            self.current = pending
            self._pending.clear()
            return plaintext
        if self.current is None:
            raise NoSessionError("no established session: the host must handshake again")
        raise SessionError(problem)

    def seal(self, header: bytes, plaintext: bytes) -> bytes:
        """A record under the current session; NoSessionError when there is none yet."""
        if self.current is None:
            raise NoSessionError("no established session to send in")
        return self.current.seal(header, plaintext)

    def drop(self) -> None:
        """Forget both sessions (e.g. the host key was reconfigured)."""
        self.current = None
        self._pending.clear()

    def _take_token(self, now: float) -> bool:
        if self._refilled is not None and now > self._refilled:
            elapsed = now - self._refilled
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._refilled is None or now > self._refilled:
            self._refilled = now  # a clock that steps back refills nothing
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
