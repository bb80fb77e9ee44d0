"""The link's session: a Noise KK handshake, then AEAD records with explicit counters.

Handshake: ``Noise_KK_25519_ChaChaPoly_SHA256`` through the ``noiseprotocol`` package (a
reviewed implementation of the Noise state machine beats our own). Both static keys are
known in advance (provisioned at install), so KK authenticates both sides in one round
trip: two 48-byte messages plus their payloads. The back office (host) is the initiator,
the terminal the responder.

Records: Noise's own transport messages use an implicit nonce (a counter each side keeps),
so one lost frame desynchronises the two sides for good. A serial line loses frames, so
after the handshake we take the two split keys and send each record with its counter in
clear (Noise spec rev. 34, §11.4 "Out-of-order transport messages" allows exactly this):

    record = counter u64 big-endian | ChaCha20-Poly1305(k, nonce, plaintext, aad)
    nonce  = 4 zero bytes | counter u64 little-endian    (Noise's ChaChaPoly nonce, §12.3)
    aad    = frame header (3 bytes: version, address, channel) | counter (8 bytes)

The AEAD is ``cryptography``'s ChaCha20Poly1305 (the same primitive Noise uses). A record is
accepted only when its counter is strictly greater than the last one accepted in that
direction: a serial line loses frames but never reorders them, so anything else is a
replay or a stale re-send. Counter 2**64-1 is never used (Noise reserves it, §5.1);
sealing past 2**64-2 raises :class:`SessionError` and the host must handshake again. At
11,520 B/s that is ~10**12 years away.

Key material never appears in an exception, a ``repr`` or a log line.
"""

from __future__ import annotations

import struct
import warnings
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from noise.connection import Keypair, NoiseConnection
from noise.exceptions import (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValidationError,
    NoiseValueError,
)

PROTOCOL_NAME: Final = b"Noise_KK_25519_ChaChaPoly_SHA256"
# Domain separation: a handshake made for another protocol (or another version of this
# one) with the same keys fails instead of yielding keys (Noise spec §6, prologue).
PROLOGUE: Final = b"terminald link session 1"
KEY_SIZE: Final = 32
HEADER_SIZE: Final = 3
COUNTER_SIZE: Final = 8
TAG_SIZE: Final = 16
RECORD_OVERHEAD: Final = COUNTER_SIZE + TAG_SIZE  # 24 bytes on top of the plaintext
# Noise: e (32) + encrypted payload (payload + 16-byte tag).
HANDSHAKE_OVERHEAD: Final = 48
MAX_HANDSHAKE_PAYLOAD: Final = 256
MAX_COUNTER: Final = 2**64 - 2  # 2**64-1 is reserved by Noise (§5.1)
# noiseprotocol's exceptions share no base class; ValueError is cryptography's refusal of a
# low-order X25519 point (an all-zero shared secret).
_NOISE_ERRORS: Final = (
    NoiseHandshakeError,
    NoiseInvalidMessage,
    NoiseMaxNonceError,
    NoiseValidationError,
    NoiseValueError,
    ValueError,
)
_COUNTER = struct.Struct(">Q")
_NONCE_PREFIX: Final = bytes(4)


class SessionError(Exception):
    """A handshake or a record refused; the message says why, never with key material."""


def _nonce(counter: int) -> bytes:
    return _NONCE_PREFIX + counter.to_bytes(8, "little")


def _check_header(header: bytes) -> None:
    if len(header) != HEADER_SIZE:
        raise SessionError(f"a frame header is {HEADER_SIZE} bytes, got {len(header)}")


class Session:
    """One direction-pair of keys with its counters; seal outgoing, open incoming records.

    ``id`` is the first 8 bytes of the handshake hash in hex: the same on both sides, for
    logs. Not thread-safe: one owner (the link thread) seals and opens.
    """

    RECORD_OVERHEAD: Final = RECORD_OVERHEAD
    __slots__ = ("_open", "_received", "_seal", "_sent", "id")

    def __init__(self, send_key: bytes, receive_key: bytes, handshake_hash: bytes) -> None:
        if len(send_key) != KEY_SIZE or len(receive_key) != KEY_SIZE:
            raise SessionError("session keys are 32 bytes")
        self._seal = ChaCha20Poly1305(send_key)
        self._open = ChaCha20Poly1305(receive_key)
        self._sent = -1  # counter of the last record sealed
        self._received = -1  # counter of the last record accepted
        self.id = handshake_hash[:8].hex()

    def __repr__(self) -> str:
        return f"Session(id={self.id}, sent={self._sent}, received={self._received})"

    @property
    def last_sent(self) -> int:
        """Counter of the last record sealed; -1 before the first."""
        return self._sent

    @property
    def last_received(self) -> int:
        """Counter of the last record accepted; -1 before the first."""
        return self._received

    def seal(self, header: bytes, plaintext: bytes) -> bytes:
        """The channel-1 payload carrying ``plaintext``: ``len(plaintext) + 24`` bytes.

        Raises SessionError for a header that is not 3 bytes or when the counter is spent.
        """
        _check_header(header)
        counter = self._sent + 1
        if counter > MAX_COUNTER:
            raise SessionError("record counter exhausted: a new handshake is needed")
        prefix = _COUNTER.pack(counter)
        sealed = self._seal.encrypt(_nonce(counter), plaintext, header + prefix)
        self._sent = counter
        return prefix + sealed

    def open(self, header: bytes, record: bytes) -> bytes:
        """The plaintext of a channel-1 payload sealed by the peer under this session.

        Raises SessionError (nothing changed) when the record is short, replayed or older
        than the last accepted one, or fails authentication (wrong key, tampered, header
        differs).
        """
        _check_header(header)
        if len(record) < RECORD_OVERHEAD:
            raise SessionError(f"record of {len(record)} bytes, shorter than {RECORD_OVERHEAD}")
        prefix = record[:COUNTER_SIZE]
        (counter,) = _COUNTER.unpack(prefix)
        if counter <= self._received:
            raise SessionError(
                f"record counter {counter} not after the last accepted ({self._received}): "
                "replayed or stale"
            )
        if counter > MAX_COUNTER:
            raise SessionError("record counter out of range")
        try:
            plaintext = self._open.decrypt(_nonce(counter), record[COUNTER_SIZE:], header + prefix)
        except InvalidTag:
            raise SessionError(
                "record failed authentication (tampered or not this session)"
            ) from None
        self._received = counter
        return plaintext


# noiseprotocol warns whenever an ephemeral key is set from outside, meaning fixed test
# vectors. Ours is fresh from the OS for each Initiator (kept only to retry message 2).
warnings.filterwarnings("ignore", message="One of ephemeral keypairs is already set")


def _connection(
    initiator: bool, static_private: bytes, remote_public: bytes, ephemeral: bytes | None = None
) -> NoiseConnection:
    if len(static_private) != KEY_SIZE:
        raise SessionError(f"a static private key is {KEY_SIZE} bytes, got {len(static_private)}")
    if len(remote_public) != KEY_SIZE:
        raise SessionError(f"a peer's public key is {KEY_SIZE} bytes, got {len(remote_public)}")
    conn = NoiseConnection.from_name(PROTOCOL_NAME)
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_prologue(PROLOGUE)
    conn.set_keypair_from_private_bytes(Keypair.STATIC, static_private)
    conn.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, remote_public)
    if ephemeral is not None:
        conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    conn.start_handshake()
    return conn


def _check_payload(payload: bytes) -> None:
    if len(payload) > MAX_HANDSHAKE_PAYLOAD:
        raise SessionError(
            f"handshake payload of {len(payload)} bytes, more than {MAX_HANDSHAKE_PAYLOAD}"
        )


def _check_message(message: bytes, which: str) -> None:
    size = len(message)
    if not HANDSHAKE_OVERHEAD <= size <= HANDSHAKE_OVERHEAD + MAX_HANDSHAKE_PAYLOAD:
        raise SessionError(
            f"handshake message {which} of {size} bytes; expected {HANDSHAKE_OVERHEAD} to "
            f"{HANDSHAKE_OVERHEAD + MAX_HANDSHAKE_PAYLOAD}"
        )


def _session_of(conn: NoiseConnection) -> Session:
    state = conn.noise_protocol
    # noiseprotocol keeps the split keys here; we take them over (and never use its
    # implicit-nonce transport, see the module docstring).
    return Session(
        bytes(state.cipher_state_encrypt.k),
        bytes(state.cipher_state_decrypt.k),
        bytes(conn.get_handshake_hash()),
    )


class Initiator:
    """The host's side of one handshake: :meth:`first_message`, then :meth:`finish`.

    ``static_private`` is the host's X25519 private key, ``responder_public`` the
    terminal's public key (32 raw bytes each). ``payload`` (≤ 256 bytes) travels in
    message 1, encrypted and authenticated to the terminal but replayable (KK message 1
    has no forward secrecy or freshness): never a secret, never a command.
    """

    def __init__(
        self, static_private: bytes, responder_public: bytes, payload: bytes = b""
    ) -> None:
        _check_payload(payload)
        # Our own ephemeral key, kept so that a message 2 that fails (forged by anyone on
        # the wire, or the late answer to an earlier attempt) does not spend the handshake:
        # the state is rebuilt from the same keys and the next message 2 is tried on it.
        self._keys = (
            static_private,
            responder_public,
            X25519PrivateKey.generate().private_bytes_raw(),
        )
        self._conn = _connection(True, *self._keys)
        self._payload = payload
        self._sent = False
        self._done = False

    def first_message(self) -> bytes:
        """Handshake message 1 (48 bytes + payload). Once only; SessionError after."""
        if self._sent:
            raise SessionError("handshake message 1 already written; start a new Initiator")
        self._sent = True
        try:
            return bytes(self._conn.write_message(self._payload))
        except _NOISE_ERRORS as exc:  # not expected with valid keys; say so plainly
            raise SessionError(
                f"handshake message 1 could not be written ({type(exc).__name__})"
            ) from None

    def finish(self, second_message: bytes) -> tuple[Session, bytes]:
        """(session, the terminal's payload) from handshake message 2.

        Raises SessionError when the message is malformed or was not made by the terminal
        whose key we hold for this session (wrong terminal key, a terminal that does not
        know our host key, or a reply to another handshake). A refused message 2 leaves the
        Initiator waiting for another (anyone on the wire can send one); it is spent only
        by the one that finishes the handshake.
        """
        if not self._sent or self._done:
            raise SessionError("no handshake in progress (write message 1 first, once)")
        _check_message(second_message, "2")
        try:
            payload = self._conn.read_message(second_message)
        except InvalidTag:
            self._rewind()
            raise SessionError(
                "handshake message 2 failed authentication: the terminal's key is not the "
                "one configured for it, or it does not know this host's key"
            ) from None
        except _NOISE_ERRORS as exc:
            self._rewind()
            raise SessionError(f"handshake message 2 malformed ({type(exc).__name__})") from None
        self._done = True
        if not self._conn.handshake_finished:
            raise SessionError("handshake did not finish after message 2")
        return _session_of(self._conn), bytes(payload)

    def _rewind(self) -> None:
        """Back to "message 1 written" (the same message 1: same keys, same payload)."""
        self._conn = _connection(True, *self._keys)
        self._conn.write_message(self._payload)


def respond(
    static_private: bytes, initiator_public: bytes, first_message: bytes, payload: bytes = b""
) -> tuple[Session, bytes, bytes]:
    """The terminal's side: (session, handshake message 2, the host's payload).

    ``static_private`` is the terminal's X25519 private key and ``initiator_public`` the
    configured back-office key. ``payload`` (≤ 256 bytes) travels in message 2, encrypted
    with forward secrecy. Raises SessionError when message 1 is malformed or was not made
    with the configured host key for this terminal's key. Costs four X25519 operations.
    """
    _check_payload(payload)
    _check_message(first_message, "1")
    conn = _connection(False, static_private, initiator_public)
    try:
        host_payload = conn.read_message(first_message)
    except InvalidTag:
        raise SessionError(
            "handshake message 1 failed authentication: not from the configured back-office "
            "key, or made for another terminal's key"
        ) from None
    except _NOISE_ERRORS as exc:
        raise SessionError(f"handshake message 1 malformed ({type(exc).__name__})") from None
    try:
        second = conn.write_message(payload)
    except _NOISE_ERRORS as exc:
        raise SessionError(
            f"handshake message 2 could not be written ({type(exc).__name__})"
        ) from None
    if not conn.handshake_finished:
        raise SessionError("handshake did not finish after message 2")
    return _session_of(conn), bytes(second), bytes(host_payload)
