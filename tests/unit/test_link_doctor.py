"""``terminald doctor`` and the link's key: a technician who forgot ``keys init`` is told,
not left with a daemon that runs without its link and says so only in the journal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from terminald.config import load_config
from terminald.daemon.doctor import check_link_key
from terminald.link.keys import encode_public
from terminald.store.link_keys import init_link_key
from tests.unit.test_doctor import HOST_KEY, config_file

__all__ = ["config_file"]  # the fixture


def test_a_missing_link_key_fails_with_the_command_that_makes_it(
    config_file: Callable[..., Path], tmp_path: Path
) -> None:
    key = tmp_path / "link.key"
    config = load_config(
        config_file(link={"port": "/dev/ttyUSB0", "host_key": HOST_KEY, "key_file": str(key)})
    )
    finding = check_link_key(config)
    assert finding.status == "fail" and "no such key file" in finding.message
    assert "terminald keys init" in finding.fix
    public = init_link_key(key)
    finding = check_link_key(config)
    assert finding.status == "ok" and encode_public(public) in finding.message
    key.chmod(0o644)
    assert check_link_key(config).status == "fail"
