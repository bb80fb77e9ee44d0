"""Writing a test PKI to disk: staged in a temporary directory, then swapped in whole.

Private keys are written 0600; a directory that is not empty and holds no manifest is
never replaced (it may be someone's data).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from terminald.sim.profile import CardProfile
from terminald.sim.testpki_manifest import CardEntry, TestPkiManifest
from terminald.sim.testpki_x509 import MANIFEST_NAME, Authority


class TestPkiError(Exception):
    """The output directory cannot be used."""

    __test__ = False


@dataclass
class PkiAuthorities:
    """Every CA of one test PKI and the keys still to hand out to cards."""

    auth_roots: dict[str, Authority]
    sign_root: Authority
    rogue: Authority
    sign_key: rsa.RSAPrivateKey  # shared by every card's signing cert, to save key generation
    card_keys: list[rsa.RSAPrivateKey] = field(default_factory=list)


@dataclass(frozen=True)
class IssuedCard:
    profile: CardProfile
    entry: CardEntry


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # a test PKI: other tools sign CRLs with these keys
    )


# --------------------------------------------------------------------------- files


def check_replaceable(out_dir: Path) -> None:
    """Only ever replace an empty directory or an earlier test PKI: never a user's files."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise TestPkiError(f"{out_dir} exists and is not a directory")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise TestPkiError(
            f"{out_dir} is not empty and holds no {MANIFEST_NAME}: refusing to replace it"
        )


def _write_file(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write temp, fsync, rename: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_authority(folder: Path, authority: Authority) -> None:
    _write_file(folder / f"{authority.name}.pem", pem(authority.certificate))
    _write_file(folder / f"{authority.name}.key.pem", key_pem(authority.key), private=True)


def _write_tree(
    root: Path,
    authorities: PkiAuthorities,
    issued: Sequence[IssuedCard],
    manifest: TestPkiManifest,
) -> None:
    for authority in authorities.auth_roots.values():
        _write_file(root / "trust" / f"{authority.name}.pem", pem(authority.certificate))
        _write_authority(root / "ca", authority)
    _write_authority(root / "ca", authorities.sign_root)
    ca_index = [entry.to_dict() for entry in manifest.roots if entry.purpose != "untrusted"]
    _write_file(root / "ca" / "index.json", (json.dumps(ca_index, indent=2) + "\n").encode())
    _write_authority(root / "untrusted", authorities.rogue)
    for card in issued:
        card.profile.save(root / card.entry.profile)  # atomic, mode 0600 (keys and PINs)
    _write_file(root / MANIFEST_NAME, manifest.to_json().encode(), private=True)
    for folder in ("trust", "ca", "untrusted", "cards", "."):
        _fsync_dir(root / folder)


def write_pki(
    out_dir: Path,
    authorities: PkiAuthorities,
    issued: Sequence[IssuedCard],
    manifest: TestPkiManifest,
) -> None:
    """Build the whole tree beside ``out_dir``, then swap it in."""
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.new-"))
    try:
        os.chmod(staging, 0o755)  # noqa: S103 -- like any mkdir; secrets inside are 0600
        _write_tree(staging, authorities, issued, manifest)
        _swap_in(staging, out_dir.absolute())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging``. A crash between the two renames leaves the old
    tree complete under ``.NAME.old-*`` beside it; never a mix of old and new files."""
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
        os.rename(target, old)
    os.rename(staging, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old)
