"""The files and applications inside the virtual My Number Card, built from a profile.

Pure data: which APs exist, which EFs each holds, what the PIN and key EFs hold, the
synthetic card-face data, and what the key EFs compute. ``sim/card.py`` answers APDUs
over what this module builds. Sections (§n) are shared/reference/jpki-card.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from terminald.sim.profile import CardProfile

# AIDs (§1.1). The card-face AIDs may appear only under terminald/sim/: the terminal must
# never select them (DESIGN.md §2), and a hook greps the rest of the package for them.
JPKI_AID = bytes.fromhex("D392F000260100000001")
TEXT_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
VISUAL_AID = bytes.fromhex("D3921000310001010402")  # 券面AP

# JPKI AP files (§1.2).
EF_SIGN_CERT = 0x0001
EF_SIGN_CA_CERT = 0x0002
EF_TOKEN_INFO = 0x0006
EF_AUTH_CERT = 0x000A
EF_AUTH_CA_CERT = 0x000B
EF_AUTH_KEY = 0x0017
EF_AUTH_PIN = 0x0018
EF_SIGN_KEY = 0x001A
EF_SIGN_PIN = 0x001B
# 券面事項入力補助AP files (§4.1).
EF_TEXT_NUMBER = 0x0001
EF_TEXT_BASIC4 = 0x0002
EF_TEXT_PIN = 0x0011

AUTH_PIN_MAX_TRIES = 3  # §3
SIGN_PIN_MAX_TRIES = 5  # §3
TEXT_PIN_MAX_TRIES = 3  # §3: UNCONFIRMED, 3 assumed

# EF 0006: a PKCS#11 CK_TOKEN_INFO, label space-padded to 32 bytes; 160 bytes in all (§1.2).
TOKEN_INFO = b"JPKIAPICCTOKEN2".ljust(32, b" ") + bytes(128)

# Synthetic card-face data. 123456789010 fails the My Number check digit (the valid one
# would end in 8), so it can never be a real person's number.
SYNTHETIC_MY_NUMBER = b"123456789010"
SYNTHETIC_NAME = "試験\u3000花子"
SYNTHETIC_ADDRESS = "東京都千代田区霞が関９丁目９番９号"
SYNTHETIC_BIRTH = b"19900101"
SYNTHETIC_SEX = b"2"


@dataclass
class DataEf:
    content: bytes
    read_pin: int | None = None  # PIN EF that must be verified before reading


@dataclass
class KeyEf:
    key: rsa.RSAPrivateKey | None
    pin: int  # PIN EF that unlocks the key


@dataclass
class PinEf:
    secret: bytes | None  # None: no reference data (face-authentication card)
    max_tries: int
    tries: int  # persists across power cycles for the life of the card object


Ef = DataEf | KeyEf | PinEf


@dataclass
class Application:
    name: str
    aid: bytes
    files: dict[int, Ef] = field(default_factory=dict)


@functools.lru_cache(maxsize=64)
def load_key(pem: bytes) -> rsa.RSAPrivateKey | None:
    # Cached: loading checks the key, which costs tens of ms, and tests build many cards.
    if not pem:
        return None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("a JPKI card key must be RSA")
    return key


def _ber_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: bytes, value: bytes) -> bytes:
    return tag + _ber_length(len(value)) + value


def synthetic_basic4() -> bytes:
    """EF 0002 of the 券面事項入力補助AP: ``FF 20`` { DF21 offsets, DF22–DF25 } (§4.2)."""
    items = [
        _tlv(b"\xdf\x22", SYNTHETIC_NAME.encode("utf-8")),
        _tlv(b"\xdf\x23", SYNTHETIC_ADDRESS.encode("utf-8")),
        _tlv(b"\xdf\x24", SYNTHETIC_BIRTH),
        _tlv(b"\xdf\x25", SYNTHETIC_SEX),
    ]
    inner_length = 3 + 8 + sum(len(item) for item in items)  # DF21 08 + four offsets
    header_length = 2 + len(_ber_length(inner_length))
    # The DF21 offsets count from the start of the file (§4.2).
    offsets = b""
    position = header_length + 3 + 8
    for item in items:
        offsets += position.to_bytes(2, "big")
        position += len(item)
    return _tlv(b"\xff\x20", _tlv(b"\xdf\x21", offsets) + b"".join(items))


def pin_ef(secret: str | None, max_tries: int, tries: int) -> PinEf:
    encoded = secret.encode("ascii") if secret is not None else None
    return PinEf(encoded, max_tries, max(0, min(tries, max_tries)))


def build_applications(profile: CardProfile) -> list[Application]:
    if profile.kind == "non_jpki":
        return []  # answers 6A82 to every AID, the JPKI one included
    jpki = Application("jpki", JPKI_AID)
    files = jpki.files
    files[EF_TOKEN_INFO] = DataEf(TOKEN_INFO)
    # An empty certificate in the profile means the EF does not exist (a face-auth card has
    # no signing certificate, §3); answering 6A82 for it is our model.
    for fid, content, read_pin in (
        (EF_AUTH_CERT, profile.auth_cert, None),
        (EF_AUTH_CA_CERT, profile.auth_ca_cert, None),
        (EF_SIGN_CERT, profile.sign_cert, EF_SIGN_PIN),  # needs the signing password (§1.2)
        (EF_SIGN_CA_CERT, profile.sign_ca_cert, None),
    ):
        if content:
            files[fid] = DataEf(content, read_pin)
    files[EF_AUTH_KEY] = KeyEf(load_key(profile.auth_key_pem), EF_AUTH_PIN)
    files[EF_SIGN_KEY] = KeyEf(load_key(profile.sign_key_pem), EF_SIGN_PIN)
    # Both PIN EFs always exist: OpenSC queries both at every bind and needs SW1=63.
    # A face-authentication card has no PIN set (§3), whatever the profile's auth_pin says.
    auth_pin = None if profile.kind == "face_auth" else profile.auth_pin
    files[EF_AUTH_PIN] = pin_ef(auth_pin, AUTH_PIN_MAX_TRIES, profile.auth_tries)
    files[EF_SIGN_PIN] = pin_ef(profile.sign_password, SIGN_PIN_MAX_TRIES, profile.sign_tries)

    text = Application("text", TEXT_AID)
    text.files[EF_TEXT_NUMBER] = DataEf(
        b"\xff\x10\x0c" + SYNTHETIC_MY_NUMBER + b"\xff\xff", EF_TEXT_PIN
    )
    text.files[EF_TEXT_BASIC4] = DataEf(synthetic_basic4(), EF_TEXT_PIN)
    # The text AP's PIN is set to the auth PIN at issuance; its own counter (§3, §4.1).
    text.files[EF_TEXT_PIN] = pin_ef(auth_pin, TEXT_PIN_MAX_TRIES, TEXT_PIN_MAX_TRIES)

    visual = Application("visual", VISUAL_AID)  # selectable only; no files modelled
    return [jpki, text, visual]


# DigestInfo prefixes (RFC 8017 §9.2 note 1; §2.4) → the hash they announce.
_DIGEST_INFO_PREFIXES: tuple[tuple[bytes, hashes.HashAlgorithm], ...] = (
    (bytes.fromhex("3021300906052B0E03021A05000414"), hashes.SHA1()),  # noqa: S303
    (bytes.fromhex("3031300D060960864801650304020105000420"), hashes.SHA256()),
    (bytes.fromhex("3041300D060960864801650304020205000430"), hashes.SHA384()),
    (bytes.fromhex("3051300D060960864801650304020305000440"), hashes.SHA512()),
)


def _split_digest_info(data: bytes) -> tuple[hashes.HashAlgorithm, bytes] | None:
    for prefix, algorithm in _DIGEST_INFO_PREFIXES:
        if data.startswith(prefix) and len(data) == len(prefix) + algorithm.digest_size:
            return algorithm, data[len(prefix) :]
    return None


def pkcs1_type1_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """``00 01 FF..FF 00 || data`` then the raw RSA private operation, with CRT (§2.4)."""
    size = (key.key_size + 7) // 8
    if len(data) > size - 11:
        raise ValueError("input longer than k-11 bytes")
    block = b"\x00\x01" + b"\xff" * (size - 3 - len(data)) + b"\x00" + data
    numbers = key.private_numbers()
    m = int.from_bytes(block, "big")
    m1 = pow(m, numbers.dmp1, numbers.p)
    m2 = pow(m, numbers.dmq1, numbers.q)
    h = numbers.iqmp * (m1 - m2) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def card_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """What the card returns for ``data``: a DigestInfo through ``cryptography``, else raw."""
    split = _split_digest_info(data)
    if split is None:
        return pkcs1_type1_sign(key, data)
    algorithm, digest = split
    return key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))
