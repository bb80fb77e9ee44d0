"""Signed objects (time, config, enrolment): only the back office's keys make one the
terminal accepts, for this terminal, newer than what it holds, with its challenge."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from terminald.link.signed import (
    DOMAIN,
    MAX_BODY,
    SignedError,
    SignedReason,
    sign_object,
    signed_time,
    time_body,
    verify_object,
)
from terminald.revocation.keys import TrustedKeys, key_id_of
from tests.fuzzing import FUZZ

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
TRUSTED = TrustedKeys([KEY.public_key()])
NONCE = bytes(range(16))
ISSUED = 1_795_000_000


def config_object(**change: Any) -> bytes:
    args: dict[str, Any] = {
        "version": 3,
        "issued": ISSUED,
        "signing_key": KEY,
        "terminal": "gate-1",
    }
    args.update(change)
    return sign_object("config", args.pop("body", b'[terminal]\nid = "gate-1"\n'), **args)


def time_object(at: float = ISSUED + 0.5, **change: Any) -> bytes:
    args: dict[str, Any] = {"version": 1, "issued": ISSUED, "signing_key": KEY, "nonce": NONCE}
    args.update(change)
    return sign_object("time", time_body(at), **args)


def refusal(data: bytes, kind: str = "config", **kwargs: Any) -> SignedError:
    kwargs.setdefault("terminal_id", "gate-1")
    with pytest.raises(SignedError) as caught:
        verify_object(data, TRUSTED, kind, **kwargs)
    return caught.value


def repack(data: bytes, **change: object) -> bytes:
    record = msgpack.unpackb(data, raw=False)
    record.update(change)
    for name in [k for k, v in change.items() if v is ...]:
        del record[name]
    packed: bytes = msgpack.packb(record, use_bin_type=True)
    return packed


@pytest.mark.parametrize("kind", ["config", "enrolment"])
def test_a_signed_file_object_verifies(kind: str) -> None:
    data = sign_object(kind, b"body", version=7, issued=ISSUED, signing_key=KEY, terminal=None)
    obj = verify_object(data, TRUSTED, kind, terminal_id="gate-1", installed_version=6)
    assert (obj.kind, obj.version, obj.issued, obj.body) == (kind, 7, ISSUED, b"body")
    assert obj.terminal is None and obj.key_id == key_id_of(KEY.public_key())


def test_a_time_object_carries_the_moment_to_the_microsecond_and_its_nonce() -> None:
    obj = verify_object(time_object(), TRUSTED, "time", terminal_id="gate-1", nonce=NONCE)
    assert signed_time(obj) == ISSUED + 0.5 and obj.nonce == NONCE


def test_another_kind_is_refused() -> None:
    assert refusal(config_object(), "enrolment").reason is SignedReason.WRONG_KIND


def test_an_unknown_key_is_refused_by_its_id() -> None:
    error = refusal(config_object(signing_key=OTHER))
    assert error.reason is SignedReason.UNKNOWN_KEY
    assert key_id_of(OTHER.public_key()).hex() in error.detail


@pytest.mark.parametrize(
    "change",
    [
        {"version": 4},
        {"issued": ISSUED + 1},
        {"terminal": None},
        {"body": b"[terminal]\nid = 'gate-2'\n"},
        {"key": key_id_of(KEY.public_key())[:7] + b"\0"},  # unknown then; below: same id
    ],
)
def test_any_altered_field_breaks_the_signature(change: dict[str, object]) -> None:
    error = refusal(repack(config_object(), **change))
    assert error.reason in (SignedReason.BAD_SIGNATURE, SignedReason.UNKNOWN_KEY)
    if "key" not in change:
        assert error.reason is SignedReason.BAD_SIGNATURE


def test_a_flipped_signature_bit_is_refused() -> None:
    record = msgpack.unpackb(config_object(), raw=False)
    sig = bytearray(record["sig"])
    sig[10] ^= 1
    assert refusal(repack(config_object(), sig=bytes(sig))).reason is SignedReason.BAD_SIGNATURE


def test_a_signature_without_the_domain_string_does_not_verify() -> None:
    good = msgpack.unpackb(config_object(), raw=False)
    signed = msgpack.packb(
        [1, "config", 3, ISSUED, "gate-1", None, good["body"], good["key"]], use_bin_type=True
    )
    assert KEY.sign(DOMAIN + signed) == good["sig"]  # what is signed, exactly
    forged = repack(config_object(), sig=KEY.sign(signed))
    assert refusal(forged).reason is SignedReason.BAD_SIGNATURE


def test_an_object_for_another_terminal_is_refused() -> None:
    error = refusal(config_object(terminal="gate-2"))
    assert error.reason is SignedReason.OTHER_TERMINAL
    assert error.detail == "addressed to terminal gate-2, and this is gate-1"


@pytest.mark.parametrize("installed", [3, 4, 2**64 - 1])
def test_a_version_not_above_the_installed_one_is_a_rollback(installed: int) -> None:
    error = refusal(config_object(), installed_version=installed)
    assert error.reason is SignedReason.ROLLBACK
    assert f"version 3 is not newer than version {installed}" in error.detail


def test_a_time_object_is_checked_by_its_nonce_not_its_version() -> None:
    data = time_object()
    assert verify_object(data, TRUSTED, "time", terminal_id="x", installed_version=99)
    error = refusal(data, "time", nonce=bytes(16))
    assert error.reason is SignedReason.NONCE


def test_a_time_object_without_a_nonce_cannot_be_made_or_accepted() -> None:
    with pytest.raises(ValueError, match="must carry the terminal's challenge"):
        time_object(nonce=None)
    error = refusal(repack(time_object(), nonce=None), "time")
    assert error.reason is SignedReason.MALFORMED and "challenge" in error.detail


def test_sign_object_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="version"):
        config_object(version=0)
    with pytest.raises(ValueError, match="terminal"):
        config_object(terminal="not an id")
    with pytest.raises(ValueError, match="kind"):
        sign_object("firmware", b"", version=1, issued=ISSUED, signing_key=KEY)
    with pytest.raises(ValueError, match="nonce"):
        config_object(nonce=b"short")


@pytest.mark.parametrize(
    ("data", "reason", "detail"),
    [
        (b"", SignedReason.MALFORMED, "not one msgpack value"),
        (b"\x93\x01\x02\x03", SignedReason.MALFORMED, "not one msgpack value"),  # an array
        (msgpack.packb("x"), SignedReason.MALFORMED, "a signed object is a msgpack map"),
        (repack(config_object(), sig=...), SignedReason.MALFORMED, "fields: missing sig"),
        (repack(config_object(), extra=1), SignedReason.MALFORMED, "fields: unknown 'extra'"),
        (repack(config_object(), v=2), SignedReason.UNSUPPORTED_VERSION, "object format 2"),
        (repack(config_object(), v=True), SignedReason.UNSUPPORTED_VERSION, "object format"),
        (repack(config_object(), sig=b"x" * 63), SignedReason.MALFORMED, "sig: must be 64"),
        (repack(config_object(), version=0), SignedReason.MALFORMED, "version: must be"),
        (repack(config_object(), version="3"), SignedReason.MALFORMED, "version: must be"),
        (repack(config_object(), issued=-1), SignedReason.MALFORMED, "issued: must be"),
        (repack(config_object(), issued=1.5), SignedReason.MALFORMED, "issued: must be"),
        (repack(config_object(), terminal=5), SignedReason.MALFORMED, "terminal: must be"),
        (repack(config_object(), nonce=b"x"), SignedReason.MALFORMED, "nonce: must be 16"),
        (repack(config_object(), body="text"), SignedReason.MALFORMED, "body: must be binary"),
        (repack(config_object(), key=b"x"), SignedReason.MALFORMED, "key: must be a 8-byte"),
        (repack(config_object(), kind="firmware"), SignedReason.MALFORMED, "kind: must be"),
        (config_object() + b"\0", SignedReason.MALFORMED, "not one msgpack value"),
    ],
)
def test_malformed_objects_are_refused_saying_why(
    data: bytes, reason: SignedReason, detail: str
) -> None:
    error = refusal(data)
    assert error.reason is reason and detail in error.detail, error


def test_a_time_body_of_the_wrong_size_is_malformed() -> None:
    error = refusal(repack(time_object(), body=bytes(9)), "time")
    assert error.reason is SignedReason.MALFORMED and "a time is 8 bytes" in error.detail


def test_oversized_objects_are_refused_before_they_are_read() -> None:
    error = refusal(b"\0" * (MAX_BODY["time"] + 1025), "time")
    assert error.reason is SignedReason.TOO_LARGE
    big = repack(config_object(), body=bytes(MAX_BODY["config"] + 1))
    assert refusal(big).reason is SignedReason.TOO_LARGE
    with pytest.raises(ValueError, match="body: 1048577 bytes, at most 1048576"):
        config_object(body=bytes(MAX_BODY["config"] + 1))


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=512), st.sampled_from(["time", "config", "enrolment"]))
def test_verify_of_arbitrary_bytes_raises_only_signed_error(data: bytes, kind: str) -> None:
    with pytest.raises(SignedError):
        verify_object(data, TRUSTED, kind, terminal_id="gate-1")


@pytest.mark.fuzz
@FUZZ
@given(st.data())
def test_verify_of_a_mutated_object_refuses_or_gives_the_signed_content(
    data: st.DataObject,
) -> None:
    good = config_object()
    position = data.draw(st.integers(0, len(good) - 1))
    mutated = bytearray(good)
    mutated[position] = data.draw(st.integers(0, 255))
    try:
        obj = verify_object(bytes(mutated), TRUSTED, "config", terminal_id="gate-1")
    except SignedError:
        return
    original = verify_object(good, TRUSTED, "config", terminal_id="gate-1")
    assert obj == original  # only a change that alters no signed value can pass
