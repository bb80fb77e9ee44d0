"""The link's keys as text: X25519 private keys (PEM), public keys (base64), terminals.toml.

Pure: no files here (terminald.store.link_keys reads and writes them). A private key is
PEM PKCS#8 as ``cryptography`` writes it, so ``openssl pkey -in link.key -pubout`` can
inspect it; a public key is its 32 raw bytes in base64, one line to paste into
``[link] host_key`` or ``terminald host keys add``.
"""

from __future__ import annotations

import base64
import json
import tomllib
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from terminald.config_link import ADDRESS_MAX, ADDRESS_MIN, parse_public_key

MAX_NAME: Final = 64


class LinkKeyError(ValueError):
    """Key text that is not what it should be; the message names the source and problem."""


@dataclass(frozen=True)
class TerminalKey:
    """A terminal the back office may talk to: its address, X25519 public key, a name."""

    address: int
    public_key: bytes
    name: str = ""


def generate_private() -> bytes:
    """A fresh X25519 private key, 32 raw bytes (from the OS's CSPRNG via cryptography)."""
    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return bytes(raw)


def public_of(private: bytes) -> bytes:
    """The 32-byte X25519 public key of a 32-byte private key."""
    key = X25519PrivateKey.from_private_bytes(private)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return bytes(raw)


def encode_public(public: bytes) -> str:
    """One line of base64 (44 characters), as ``[link] host_key`` takes it."""
    return base64.b64encode(public).decode("ascii")


def decode_public(text: str, source: str = "public key") -> bytes:
    """32 raw bytes from base64 text; LinkKeyError naming ``source`` otherwise."""
    try:
        return parse_public_key(text)
    except ValueError as exc:
        raise LinkKeyError(f"{source}: {exc}") from None


def private_pem(private: bytes) -> bytes:
    """PEM PKCS#8 (unencrypted: the daemon starts unattended; the file is 0600)."""
    key = X25519PrivateKey.from_private_bytes(private)
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def private_from_pem(pem: bytes, source: str) -> bytes:
    """32 raw bytes of an X25519 private key in PEM; LinkKeyError naming ``source``.

    The error never quotes the file's content.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise LinkKeyError(f"{source}: not an unencrypted PEM private key") from None
    if not isinstance(key, X25519PrivateKey):
        raise LinkKeyError(f"{source}: holds a {type(key).__name__}, not an X25519 private key")
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return bytes(raw)


def check_name(name: str) -> str:
    """A terminal's name: at most 64 printable characters (it goes into logs)."""
    if len(name) > MAX_NAME or not name.isprintable():
        raise LinkKeyError(f"a terminal name is at most {MAX_NAME} printable characters")
    return name


def check_address(address: int) -> int:
    if not ADDRESS_MIN <= address <= ADDRESS_MAX:
        raise LinkKeyError(
            f"a terminal address is {ADDRESS_MIN} to {ADDRESS_MAX} (0x7E), got {address}"
        )
    return address


def add_terminal(terminals: dict[int, TerminalKey], new: TerminalKey, *, replace: bool) -> None:
    """Record ``new`` in ``terminals`` (changed in place only on success).

    LinkKeyError when its address is taken (unless ``replace``) or its key is already
    another address's: two terminals with one key are a cloned SD card, and the back office
    could not tell them apart.
    """
    check_address(new.address)
    check_name(new.name)
    for other in terminals.values():
        if other.public_key == new.public_key and other.address != new.address:
            raise LinkKeyError(
                f"this key is already terminal {other.address}'s: each terminal needs its own "
                "key pair (was its state directory copied?)"
            )
    old = terminals.get(new.address)
    if old is not None and old.public_key != new.public_key and not replace:
        raise LinkKeyError(f"address {new.address} already has another key; --force replaces it")
    terminals[new.address] = new


_TERMINALS_HEADER: Final = (
    "# The back office's terminals: address = X25519 public key (base64) and a name.\n"
    "# Written by `terminald host keys add`; read by `terminald host`.\n"
)


def terminals_toml(terminals: dict[int, TerminalKey]) -> str:
    """terminals.toml: one ``[terminals.N]`` table per address, in address order."""
    parts = [_TERMINALS_HEADER]
    for address in sorted(terminals):
        entry = terminals[address]
        # A JSON string with ASCII escapes is a valid TOML basic string.
        parts.append(
            f'\n[terminals.{address}]\nkey = "{encode_public(entry.public_key)}"\n'
            f"name = {json.dumps(entry.name, ensure_ascii=True)}\n"
        )
    return "".join(parts)


def parse_terminals(text: str, source: str) -> dict[int, TerminalKey]:
    """The terminals of a terminals.toml; LinkKeyError naming the entry that is wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LinkKeyError(f"{source}: not TOML ({exc})") from None
    unknown = set(document) - {"terminals"}
    if unknown:
        raise LinkKeyError(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    table = document.get("terminals", {})
    if not isinstance(table, dict):
        raise LinkKeyError(f"{source}: terminals must be a table")
    terminals: dict[int, TerminalKey] = {}
    for key, entry in table.items():
        where = f"{source}: terminals.{key}"
        if not (key.isascii() and key.isdigit() and len(key) <= 3) or not isinstance(entry, dict):
            raise LinkKeyError(f"{where}: expected [terminals.ADDRESS] tables")
        if set(entry) - {"key", "name"} or not isinstance(entry.get("key"), str):
            raise LinkKeyError(f'{where}: needs key = "BASE64" and at most a name')
        name = entry.get("name", "")
        if not isinstance(name, str):
            raise LinkKeyError(f"{where}: name must be a string")
        try:
            add_terminal(
                terminals,
                TerminalKey(int(key), decode_public(entry["key"], "key"), check_name(name)),
                replace=False,
            )
        except LinkKeyError as exc:
            raise LinkKeyError(f"{where}: {exc}") from None
    return terminals
