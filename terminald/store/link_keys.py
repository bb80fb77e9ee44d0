"""The link's key files: the terminal's ``link.key`` and the back office's key directory.

Private keys are written atomically (terminald.store.atomic_file: the temporary file is
created 0600 by ``mkstemp``, so the key is never readable by others, not even briefly) and
are refused on reading when their mode lets the group or others read or write them, as
ssh refuses a private key: a key others could read is a key to replace, not to use.

The back office's directory (``terminald host --keys DIR``)::

    DIR/host.key        X25519 private key (PEM, 0600): the link's host identity
    DIR/signing.key     Ed25519 private key (PEM, 0600): signs time, config, enrolment
    DIR/signing.pub     its public key (PEM): the terminals' [revocation] backoffice_keys
    DIR/terminals.toml  address → terminal public key and name (terminald host keys add)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.files import MAX_KEY_FILE_SIZE, describe_error, identity, read_with_identity
from terminald.link.keys import (
    LinkKeyError,
    TerminalKey,
    add_terminal,
    generate_private,
    parse_terminals,
    private_from_pem,
    private_pem,
    public_of,
    terminals_toml,
)
from terminald.revocation.errors import RevocationError
from terminald.revocation.keys import load_private_key, private_key_pem, public_key_pem
from terminald.store.atomic_file import atomic_write

HOST_KEY: Final = "host.key"
SIGNING_KEY: Final = "signing.key"
SIGNING_PUB: Final = "signing.pub"
TERMINALS: Final = "terminals.toml"
MAX_PRIVATE_KEY_SIZE: Final = 4096  # a PEM X25519/Ed25519 key is ~120 bytes


class LinkKeyFileError(Exception):
    """A key file that cannot be read, written or trusted; one line naming the file."""


def read_private(path: Path) -> bytes:
    """The bytes of a private key file, refused unless only its owner may read it."""
    try:
        before = os.stat(path)
        if stat.S_ISREG(before.st_mode) and before.st_mode & 0o077:
            raise LinkKeyFileError(
                f"{path}: mode {stat.S_IMODE(before.st_mode):04o} lets others at this private "
                f"key; run `chmod 600 {path}` if nobody else could have read it, else make a "
                "new key"
            )
        seen, data = read_with_identity(path, MAX_PRIVATE_KEY_SIZE)
    except FileNotFoundError:
        raise LinkKeyFileError(f"{path}: no such key file") from None
    except OSError as exc:
        raise LinkKeyFileError(f"{path}: {describe_error(exc)}") from None
    if seen != identity(before):  # replaced between the mode check and the read
        raise LinkKeyFileError(f"{path}: changed while being read; try again")
    return data


def write_private(
    path: Path, data: bytes, *, force: bool, owner: tuple[int, int] | None = None
) -> None:
    """Write a private key file (0600, atomic, given to ``owner`` (uid, gid) before it
    appears); refuse an existing file unless ``force``."""
    if not force and (path.exists() or path.is_symlink()):
        raise LinkKeyFileError(f"{path} exists; refusing to overwrite a key without --force")
    if not path.parent.is_dir():
        raise LinkKeyFileError(f"{path.parent}: no such directory")
    try:
        atomic_write(path, data, owner)  # mkstemp makes it 0600
    except OSError as exc:
        raise LinkKeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write_public(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
        os.chmod(path, 0o644)
    except OSError as exc:
        raise LinkKeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def load_link_key(path: Path) -> bytes:
    """The terminal's X25519 private key (32 raw bytes) from ``[link] key_file``."""
    try:
        return private_from_pem(read_private(path), str(path))
    except LinkKeyError as exc:
        raise LinkKeyFileError(str(exc)) from None


def state_owner(directory: Path) -> tuple[int, int] | None:
    """Who should own a key made in ``directory``: its owner when we run as root and it
    belongs to someone else (``sudo terminald keys init`` makes a key the daemon's user,
    who owns the state directory, can read); None (ourselves) otherwise."""
    try:
        info = directory.stat()
    except OSError:
        return None
    if os.geteuid() != 0 or info.st_uid == 0:
        return None
    return info.st_uid, info.st_gid


def init_link_key(path: Path, *, force: bool = False) -> bytes:
    """Make the terminal's key pair at ``path``; returns the public key (32 raw bytes).

    Run as root, the file goes to the owner of its directory (see :func:`state_owner`).
    """
    private = generate_private()
    write_private(path, private_pem(private), force=force, owner=state_owner(path.parent))
    return public_of(private)


@dataclass(frozen=True)
class HostKeys:
    """The back office's keys, as :meth:`load` reads them from its directory."""

    host_private: bytes = field(repr=False)
    signing_private: Ed25519PrivateKey = field(repr=False)
    terminals: dict[int, TerminalKey]

    @property
    def host_public(self) -> bytes:
        return public_of(self.host_private)

    @staticmethod
    def load(directory: Path) -> HostKeys:
        """Read DIR/host.key, DIR/signing.key and DIR/terminals.toml (missing: none yet).

        Raises LinkKeyFileError naming the file and what is wrong with it.
        """
        host_path, signing_path = directory / HOST_KEY, directory / SIGNING_KEY
        if not directory.is_dir():
            raise LinkKeyFileError(
                f"{directory}: no such key directory (make it with `terminald host keys init`)"
            )
        try:
            signing = load_private_key(read_private(signing_path), str(signing_path))
        except RevocationError as exc:
            raise LinkKeyFileError(str(exc)) from None
        return HostKeys(load_link_key(host_path), signing, load_terminals(directory))


def load_terminals(directory: Path) -> dict[int, TerminalKey]:
    """DIR/terminals.toml's terminals; empty when the file does not exist yet."""
    path = directory / TERMINALS
    try:
        _, data = read_with_identity(path, MAX_KEY_FILE_SIZE)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LinkKeyFileError(f"{path}: {describe_error(exc)}") from None
    try:
        return parse_terminals(data.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise LinkKeyFileError(f"{path}: not UTF-8 text") from None
    except LinkKeyError as exc:
        raise LinkKeyFileError(str(exc)) from None


def init_host_keys(directory: Path, *, force: bool = False) -> bytes:
    """Make DIR (0700 if new), host.key, signing.key and signing.pub.

    Returns the host's X25519 public key (32 raw bytes). Refuses to overwrite either
    private key unless ``force`` (checked for both before anything is written).
    """
    host_path, signing_path = directory / HOST_KEY, directory / SIGNING_KEY
    if not force:
        for path in (host_path, signing_path):
            if path.exists() or path.is_symlink():
                raise LinkKeyFileError(
                    f"{path} exists; refusing to overwrite a key without --force"
                )
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise LinkKeyFileError(f"cannot make {directory}: {exc.strerror or exc}") from None
    signing = Ed25519PrivateKey.generate()
    write_private(signing_path, private_key_pem(signing), force=True)
    _write_public(directory / SIGNING_PUB, public_key_pem(signing.public_key()))
    host = generate_private()
    write_private(host_path, private_pem(host), force=True)
    return public_of(host)


def add_terminal_key(directory: Path, terminal: TerminalKey, *, replace: bool = False) -> None:
    """Record ``terminal`` in DIR/terminals.toml (atomic); LinkKeyFileError when refused."""
    path = directory / TERMINALS
    if not directory.is_dir():
        raise LinkKeyFileError(f"{directory}: no such key directory")
    terminals = load_terminals(directory)
    try:
        add_terminal(terminals, terminal, replace=replace)
    except LinkKeyError as exc:
        raise LinkKeyFileError(f"{path}: {exc}") from None
    try:
        atomic_write(path, terminals_toml(terminals).encode("utf-8"))
    except OSError as exc:
        raise LinkKeyFileError(f"cannot write {path}: {exc.strerror or exc}") from None
