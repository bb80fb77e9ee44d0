"""A reload keeps the running revocation store when its configuration did not change:
the store follows its file by itself, and loading a large set again on the loop would
only stall it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminald.config import load_config
from terminald.daemon.runtime import build_runtime
from terminald.revocation import TrustedKeys
from terminald.revocation.keys import public_key_pem
from terminald.sim.testpki import TestPkiManifest

from .test_doctor import write_config

KEY = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
OTHER = Ed25519PrivateKey.from_private_bytes(bytes([10]) * 32)


def test_trusted_keys_compare_by_the_keys_they_hold() -> None:
    assert TrustedKeys([KEY.public_key()]) == TrustedKeys([KEY.public_key()])
    assert TrustedKeys([KEY.public_key()]) != TrustedKeys([OTHER.public_key()])
    both = TrustedKeys([KEY.public_key(), OTHER.public_key()])
    assert both == TrustedKeys([OTHER.public_key(), KEY.public_key()])
    assert both != TrustedKeys([KEY.public_key()])


def test_an_unchanged_store_is_kept_and_a_changed_one_rebuilt(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    key_file, other_file = tmp_path / "bo.pub", tmp_path / "other.pub"
    key_file.write_bytes(public_key_pem(KEY.public_key()))
    other_file.write_bytes(public_key_pem(OTHER.public_key()))

    def config_with(**revocation: object):  # type: ignore[no-untyped-def]
        section = {"required": True, "backoffice_keys": [str(key_file)], **revocation}
        return load_config(write_config(tmp_path, test_pki.trust_dir, revocation=section))

    first = build_runtime(config_with(), reader_supports_extended=False)
    again = build_runtime(config_with(), reader_supports_extended=False, previous=first)
    assert again.revocation is first.revocation
    assert again.authenticator is not first.authenticator  # the cache is still emptied
    for change in ({"grace_hours": 2.0}, {"backoffice_keys": [str(other_file)]}):
        changed = build_runtime(
            config_with(**change), reader_supports_extended=False, previous=first
        )
        assert changed.revocation is not None and changed.revocation is not first.revocation
