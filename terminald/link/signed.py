"""Signed objects: time, configuration and enrolment, signed end to end by the back office.

The link's session authenticates the line; these signatures authenticate the *content*,
whatever carried it (docs/protocol.md §4.3). One msgpack map::

    {"v": 1, "kind": "time" | "config" | "enrolment", "version": u64 >= 1,
     "issued": Unix seconds, "terminal": terminal id or nil (any terminal),
     "nonce": bin 16 or nil, "body": bin, "key": bin 8, "sig": bin 64}

``sig`` is Ed25519 over ``DOMAIN`` followed by the msgpack array ``[v, kind, version,
issued, terminal, nonce, body, key]``: an array in a fixed order, so the signed bytes do
not depend on how a writer orders the map, and the domain string keeps a signature made
for anything else (a revocation bundle signs raw bytes with the same keys) from ever
verifying here. ``key`` is the signer's key id as revocation bundles name it
(:func:`terminald.revocation.keys.key_id_of`: the first 8 bytes of SHA-256 over the raw
public key), checked against the same trusted keys (``[revocation] backoffice_keys``).

Bodies: ``config`` is the TOML of terminald.toml, ``enrolment`` that of the enrolled
cards file, ``time`` 8 bytes, the signed moment in microseconds since the Unix epoch
(big-endian, signed; :func:`time_body`). A time object must carry the nonce the
terminal issued (``time.nonce``), which defeats replay; config and enrolment are
defeated by their ``version``, which must exceed the installed one.

Pure: no clock, no files. ``verify_object`` raises only :class:`SignedError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.config import TERMINAL_ID_PATTERN
from terminald.files import MAX_CONFIG_SIZE, MAX_ENROLLED_SIZE
from terminald.revocation.keys import KEY_ID_SIZE, TrustedKeys, key_id_of

OBJECT_VERSION: Final = 1
KINDS: Final = ("time", "config", "enrolment")
DOMAIN: Final = b"terminald signed object\x00"
NONCE_SIZE: Final = 16
SIGNATURE_SIZE: Final = 64
TIME_BODY = struct.Struct(">q")
# Bodies are bounded like the files they become (terminald.files), the time by its format.
MAX_BODY: Final = {
    "time": TIME_BODY.size,
    "config": MAX_CONFIG_SIZE,
    "enrolment": MAX_ENROLLED_SIZE,
}
_ENVELOPE_ROOM: Final = 1024  # everything but the body: ~200 bytes
MAX_TIME: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the revocation bundle's own limit
_U64_MAX: Final = 2**64 - 1
_FIELDS: Final = ("v", "kind", "version", "issued", "terminal", "nonce", "body", "key", "sig")


class SignedReason(Enum):
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    WRONG_KIND = "wrong_kind"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    OTHER_TERMINAL = "other_terminal"
    ROLLBACK = "rollback"
    NONCE = "nonce"


class SignedError(Exception):
    """A signed object that is refused; ``reason`` for programs, ``detail`` for people."""

    def __init__(self, reason: SignedReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SignedObject:
    kind: str
    version: int
    issued: int  # Unix seconds
    terminal: str | None  # the terminal it is addressed to; None: any
    nonce: bytes | None
    body: bytes = field(repr=False)
    key_id: bytes


def _signed_bytes(obj: SignedObject) -> bytes:
    fields = [OBJECT_VERSION, obj.kind, obj.version, obj.issued, obj.terminal, obj.nonce]
    packed: bytes = msgpack.packb([*fields, obj.body, obj.key_id], use_bin_type=True)
    return DOMAIN + packed


def sign_object(
    kind: str,
    body: bytes,
    *,
    version: int,
    issued: int,
    signing_key: Ed25519PrivateKey,
    terminal: str | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """The back office's side: encode and sign. ValueError names a bad argument."""
    obj = SignedObject(
        kind, version, issued, terminal, nonce, body, key_id_of(signing_key.public_key())
    )
    try:
        _check(obj)
    except SignedError as exc:
        raise ValueError(exc.detail) from None
    record: dict[str, Any] = {
        "v": OBJECT_VERSION,
        "kind": kind,
        "version": version,
        "issued": issued,
        "terminal": terminal,
        "nonce": nonce,
        "body": body,
        "key": obj.key_id,
        "sig": signing_key.sign(_signed_bytes(obj)),
    }
    data: bytes = msgpack.packb(record, use_bin_type=True)
    return data


def time_body(at: float) -> bytes:
    """The body of a time object: ``at`` (Unix seconds) in whole microseconds."""
    return TIME_BODY.pack(round(at * 1_000_000))


def signed_time(obj: SignedObject) -> float:
    """The moment a verified time object carries, Unix seconds."""
    (micros,) = TIME_BODY.unpack(obj.body)
    return float(micros) / 1_000_000


def verify_object(
    data: bytes,
    trusted: TrustedKeys,
    kind: str,
    *,
    terminal_id: str,
    installed_version: int = 0,
    nonce: bytes | None = None,
) -> SignedObject:
    """The terminal's side: parse, check the signature, then the policy.

    Refused (:class:`SignedError`) when malformed or too large for ``kind``, of another
    kind, signed by a key not in ``trusted``, with a bad signature, addressed to a
    terminal other than ``terminal_id``, of a version not above ``installed_version``
    (a rollback or a replay; not checked for ``time``, whose nonce does that), or, when
    ``nonce`` is given, not carrying it.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind}")
    limit = MAX_BODY[kind] + _ENVELOPE_ROOM
    if len(data) > limit:
        raise SignedError(
            SignedReason.TOO_LARGE, f"{len(data)} bytes; a {kind} object has at most {limit}"
        )
    obj, signature = _parse(data)
    if obj.kind != kind:
        raise SignedError(
            SignedReason.WRONG_KIND, f"a {obj.kind} object where a {kind} object belongs"
        )
    key = trusted.get(obj.key_id)
    if key is None:
        raise SignedError(
            SignedReason.UNKNOWN_KEY,
            f"signed by key {obj.key_id.hex()}, which is not a trusted back-office key",
        )
    try:
        key.verify(signature, _signed_bytes(obj))
    except InvalidSignature:
        raise SignedError(
            SignedReason.BAD_SIGNATURE, f"the {kind} object's signature does not verify"
        ) from None
    if obj.terminal is not None and obj.terminal != terminal_id:
        raise SignedError(
            SignedReason.OTHER_TERMINAL,
            f"addressed to terminal {obj.terminal}, and this is {terminal_id}",
        )
    if kind != "time" and obj.version <= installed_version:
        raise SignedError(
            SignedReason.ROLLBACK,
            f"{kind} version {obj.version} is not newer than version {installed_version} "
            "installed before",
        )
    if nonce is not None and obj.nonce != nonce:
        raise SignedError(
            SignedReason.NONCE, f"the {kind} object does not carry this terminal's challenge"
        )
    return obj


def _parse(data: bytes) -> tuple[SignedObject, bytes]:
    try:
        raw = msgpack.unpackb(
            data,
            max_bin_len=len(data),
            max_str_len=256,
            max_array_len=0,
            max_map_len=16,  # a few more than the fields, so an extra one is named
            max_ext_len=0,
            strict_map_key=True,
            raw=False,
        )
    except (ValueError, msgpack.UnpackException, RecursionError):
        raise SignedError(SignedReason.MALFORMED, "not one msgpack value") from None
    if type(raw) is not dict:
        raise SignedError(SignedReason.MALFORMED, "a signed object is a msgpack map")
    if set(raw) != set(_FIELDS):
        missing = [f for f in _FIELDS if f not in raw]
        extra = [repr(k)[:30] for k in raw if k not in _FIELDS]
        problem = f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"
        raise SignedError(SignedReason.MALFORMED, f"fields: {problem}")
    if raw["v"] != OBJECT_VERSION or type(raw["v"]) is not int:
        raise SignedError(
            SignedReason.UNSUPPORTED_VERSION,
            f"object format {raw['v']!r:.20} (want {OBJECT_VERSION})",
        )
    signature = raw["sig"]
    if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
        raise SignedError(SignedReason.MALFORMED, f"sig: must be {SIGNATURE_SIZE} bytes")
    obj = SignedObject(
        raw["kind"],
        raw["version"],
        raw["issued"],
        raw["terminal"],
        raw["nonce"],
        raw["body"],
        raw["key"],
    )
    _check(obj)
    return obj, signature


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _check(obj: SignedObject) -> None:
    """Types and bounds of every field; MALFORMED (TOO_LARGE for a body) naming the first."""

    def bad(problem: str) -> SignedError:
        return SignedError(SignedReason.MALFORMED, problem)

    if type(obj.kind) is not str or obj.kind not in KINDS:
        raise bad(f"kind: must be one of {', '.join(KINDS)}")
    if not _is_int(obj.version, 1, _U64_MAX):
        raise bad("version: must be an integer 1..2**64-1")
    if not _is_int(obj.issued, 0, MAX_TIME):
        raise bad(f"issued: must be Unix seconds 0..{MAX_TIME}")
    if obj.terminal is not None and (
        type(obj.terminal) is not str or not TERMINAL_ID_PATTERN.fullmatch(obj.terminal)
    ):
        raise bad("terminal: must be a terminal id or nil")
    if obj.nonce is not None and (type(obj.nonce) is not bytes or len(obj.nonce) != NONCE_SIZE):
        raise bad(f"nonce: must be {NONCE_SIZE} bytes or nil")
    if obj.kind == "time" and obj.nonce is None:
        raise bad("nonce: a time object must carry the terminal's challenge")
    if type(obj.body) is not bytes:
        raise bad("body: must be binary")
    if obj.kind == "time" and len(obj.body) != TIME_BODY.size:
        raise bad(f"body: a time is {TIME_BODY.size} bytes")
    if len(obj.body) > MAX_BODY[obj.kind]:
        raise SignedError(
            SignedReason.TOO_LARGE, f"body: {len(obj.body)} bytes, at most {MAX_BODY[obj.kind]}"
        )
    if type(obj.key_id) is not bytes or len(obj.key_id) != KEY_ID_SIZE:
        raise bad(f"key: must be a {KEY_ID_SIZE}-byte key id")
