"""``terminald doctor``'s link check: the terminal's own key for the back-office link."""

from __future__ import annotations

from terminald.config import Config
from terminald.daemon.doctor_env import Finding


def check_link_key(config: Config) -> Finding:
    """With ``[link] port`` set, ``[link] key_file`` holds a private key the daemon may use
    (a regular file, 0600, readable by this user). Prints the public key, never the private."""
    section = config.link
    if section.port is None or section.key_file is None:
        return Finding("link-key", "ok", "no back-office link configured")
    from terminald.link.keys import encode_public, public_of
    from terminald.store.link_keys import LinkKeyFileError, load_link_key

    path = section.key_file
    if not path.exists():
        return Finding(
            "link-key",
            "fail",
            f"{path} does not exist: the link cannot start",
            "sudo terminald keys init, then give the printed key to the back office "
            "(terminald host keys add --address N KEY)",
        )
    try:
        private = load_link_key(path)
    except LinkKeyFileError as exc:
        return Finding("link-key", "fail", str(exc), "see docs/operations.md, Provisioning keys")
    return Finding(
        "link-key",
        "ok",
        f"{path}: public key {encode_public(public_of(private))} (address {section.address})",
    )
