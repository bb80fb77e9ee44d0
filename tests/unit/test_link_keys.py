"""Link keys: encodings (terminald.link.keys), key files (store.link_keys) and the CLI."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from terminald.cli import main
from terminald.link.keys import (
    LinkKeyError,
    TerminalKey,
    add_terminal,
    decode_public,
    encode_public,
    generate_private,
    parse_terminals,
    private_from_pem,
    private_pem,
    public_of,
    terminals_toml,
)
from terminald.link.session import Initiator, respond
from terminald.revocation.keys import load_public_keys
from terminald.store.link_keys import (
    HostKeys,
    LinkKeyFileError,
    add_terminal_key,
    init_host_keys,
    init_link_key,
    load_link_key,
    load_terminals,
)

from .test_doctor import write_config


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def secrets_of(private: bytes) -> list[str]:
    """Every spelling of a private key that must never reach stdout or stderr."""
    pem = private_pem(private).decode()
    body = "".join(pem.splitlines()[1:-1])
    return [private.hex(), base64.b64encode(private).decode(), body]


# ---- encodings -----------------------------------------------------------------------


def test_private_keys_round_trip_through_pem() -> None:
    private = generate_private()
    assert len(private) == 32 and len(public_of(private)) == 32
    pem = private_pem(private)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert private_from_pem(pem, "k") == private


def test_pem_that_is_not_an_x25519_private_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminald.revocation.keys import private_key_pem

    with pytest.raises(LinkKeyError, match=r"k: holds a .*Ed25519.*not an X25519"):
        private_from_pem(private_key_pem(Ed25519PrivateKey.generate()), "k")
    with pytest.raises(LinkKeyError, match=r"^k: not an unencrypted PEM private key$"):
        private_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "k")


def test_public_keys_are_one_line_of_base64() -> None:
    public = public_of(generate_private())
    text = encode_public(public)
    assert len(text) == 44 and decode_public(text) == public
    with pytest.raises(LinkKeyError, match=r"PUBKEY: not base64"):
        decode_public("not base64!", "PUBKEY")
    with pytest.raises(LinkKeyError, match=r"32 bytes, this is 3"):
        decode_public("AAAA")


def test_terminals_round_trip_with_awkward_names() -> None:
    terminals: dict[int, TerminalKey] = {}
    for address, name in ((7, 'gate "east" \\ 東'), (1, ""), (0x7E, "last")):
        add_terminal(
            terminals, TerminalKey(address, public_of(generate_private()), name), replace=False
        )
    text = terminals_toml(terminals)
    assert text.index("[terminals.1]") < text.index("[terminals.7]")
    assert parse_terminals(text, "t") == terminals


def test_adding_terminals_refuses_clones_and_silent_replacement() -> None:
    key, other = public_of(generate_private()), public_of(generate_private())
    terminals = {5: TerminalKey(5, key, "a")}
    with pytest.raises(LinkKeyError, match=r"already terminal 5's.*copied"):
        add_terminal(terminals, TerminalKey(6, key), replace=True)
    with pytest.raises(LinkKeyError, match=r"address 5 already has another key; --force"):
        add_terminal(terminals, TerminalKey(5, other), replace=False)
    for address in (0, 0x7F, 0x85):
        with pytest.raises(LinkKeyError, match=r"address is 1 to 126"):
            add_terminal(terminals, TerminalKey(address, other), replace=False)
    with pytest.raises(LinkKeyError, match=r"printable"):
        add_terminal(terminals, TerminalKey(6, other, "a\nb"), replace=False)
    assert terminals == {5: TerminalKey(5, key, "a")}
    add_terminal(terminals, TerminalKey(5, other, "b"), replace=True)
    assert terminals == {5: TerminalKey(5, other, "b")}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[terminals", "not TOML"),
        ("other = 1", "unknown key"),
        ("terminals = 3", "must be a table"),
        ('[terminals.x]\nkey = "AAAA"', "terminals.x: expected"),
        ("[terminals.5]\nname = 'n'", 'needs key = "BASE64"'),
        ('[terminals.5]\nkey = "AAAA"', "terminals.5: key: an X25519 public key is 32 bytes"),
        ("[terminals.200]\nkey = '" + "A" * 43 + "='", "address is 1 to 126"),
        ("[terminals.5]\nkey = '" + "A" * 43 + "='\nname = 3", "name must be a string"),
    ],
)
def test_a_bad_terminals_file_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(LinkKeyError, match=problem):
        parse_terminals(text, "terminals.toml")


# ---- key files -----------------------------------------------------------------------


def test_link_key_file_is_0600_and_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "link.key"
    public = init_link_key(path)
    assert mode_of(path) == 0o600
    assert public_of(load_link_key(path)) == public
    before = path.read_bytes()
    with pytest.raises(
        LinkKeyFileError, match=r"exists; refusing to overwrite a key without --force"
    ):
        init_link_key(path)
    assert path.read_bytes() == before
    assert init_link_key(path, force=True) != public
    assert mode_of(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["link.key"]  # no temporary left


def test_a_key_made_by_root_goes_to_the_state_directory_owner(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    root = os.geteuid() == 0
    if root:  # as `sudo terminald keys init` in the daemon user's state directory
        os.chown(state, 4321, 4322)
    init_link_key(state / "link.key")
    info = (state / "link.key").stat()
    expected = (4321, 4322) if root else (os.geteuid(), os.getegid())
    assert (info.st_uid, info.st_gid) == expected
    assert stat.S_IMODE(info.st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_private_key_others_can_reach_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "link.key"
    init_link_key(path)
    path.chmod(mode)
    with pytest.raises(LinkKeyFileError, match=f"mode {mode:04o} lets others.*chmod 600"):
        load_link_key(path)


def test_unreadable_key_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(LinkKeyFileError, match=r"link.key: no such key file"):
        load_link_key(tmp_path / "link.key")
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(LinkKeyFileError, match=r"FIFO"):
        load_link_key(fifo)
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"secret-looking garbage")
    garbage.chmod(0o600)
    with pytest.raises(LinkKeyFileError, match=r"not an unencrypted PEM") as caught:
        load_link_key(garbage)
    assert "garbage" not in str(caught.value).replace(str(garbage), "")
    with pytest.raises(LinkKeyFileError, match=r"no such directory"):
        init_link_key(tmp_path / "missing" / "link.key")


def test_host_key_directory_loads_and_makes_sessions(tmp_path: Path) -> None:
    keys_dir = tmp_path / "hostkeys"
    host_public = init_host_keys(keys_dir)
    assert mode_of(keys_dir) == 0o700
    assert mode_of(keys_dir / "host.key") == mode_of(keys_dir / "signing.key") == 0o600
    assert mode_of(keys_dir / "signing.pub") == 0o644
    terminal = generate_private()
    add_terminal_key(keys_dir, TerminalKey(5, public_of(terminal), "gate"))
    loaded = HostKeys.load(keys_dir)
    assert loaded.host_public == host_public
    assert loaded.terminals == {5: TerminalKey(5, public_of(terminal), "gate")}
    [signing_public] = load_public_keys((keys_dir / "signing.pub").read_bytes(), "pub")
    assert signing_public == loaded.signing_private.public_key()
    assert "host_private" not in repr(loaded) and "signing_private" not in repr(loaded)
    # The loaded keys work together for a session.
    initiator = Initiator(loaded.host_private, loaded.terminals[5].public_key)
    _, message_2, _ = respond(terminal, host_public, initiator.first_message())
    initiator.finish(message_2)


def test_host_keys_init_refuses_to_overwrite_either_key(tmp_path: Path) -> None:
    init_host_keys(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "host.key").unlink()
    with pytest.raises(LinkKeyFileError, match=r"signing.key exists"):
        init_host_keys(tmp_path)
    assert not (tmp_path / "host.key").exists()
    init_host_keys(tmp_path, force=True)
    assert (tmp_path / "signing.key").read_bytes() != before["signing.key"]


def test_host_keys_load_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(LinkKeyFileError, match=r"no such key directory.*host keys init"):
        HostKeys.load(tmp_path / "none")
    init_host_keys(tmp_path)
    (tmp_path / "signing.key").chmod(0o644)
    with pytest.raises(LinkKeyFileError, match=r"signing.key: mode 0644"):
        HostKeys.load(tmp_path)
    (tmp_path / "signing.key").chmod(0o600)
    (tmp_path / "terminals.toml").write_text("[terminals.9]\nkey = 'AAAA'\n")
    with pytest.raises(LinkKeyFileError, match=r"terminals.toml: terminals.9: key"):
        HostKeys.load(tmp_path)
    (tmp_path / "terminals.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(LinkKeyFileError, match=r"not UTF-8"):
        load_terminals(tmp_path)
    (tmp_path / "host.key").write_bytes((tmp_path / "signing.key").read_bytes())
    (tmp_path / "terminals.toml").unlink()
    with pytest.raises(LinkKeyFileError, match=r"host.key: holds a .*not an X25519"):
        HostKeys.load(tmp_path)


# ---- the CLI -------------------------------------------------------------------------


def test_cli_keys_init_prints_only_the_public_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tmp_path / "anchors")
    assert main(["keys", "init", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    path = tmp_path / "state" / "link.key"
    assert mode_of(path) == 0o600
    private = load_link_key(path)
    assert out == encode_public(public_of(private)) + "\n"
    assert str(path) in err
    for secret in secrets_of(private):
        assert secret not in out + err
    assert main(["keys", "show", "--config", str(config)]) == 0
    assert capsys.readouterr().out == out

    assert main(["keys", "init", "--config", str(config)]) == 2
    assert f"{path} exists; refusing" in capsys.readouterr().err
    assert load_link_key(path) == private
    assert main(["keys", "init", "--config", str(config), "--force"]) == 0
    assert load_link_key(path) != private


def test_cli_keys_with_a_key_file_and_with_a_broken_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    assert main(["keys", "init", "--key-file", str(key)]) == 0
    out = capsys.readouterr().out
    key.chmod(0o644)
    assert main(["keys", "show", "--key-file", str(key)]) == 2
    assert "mode 0644" in capsys.readouterr().err
    key.chmod(0o600)
    assert main(["keys", "show", "--key-file", str(key)]) == 0
    assert capsys.readouterr().out == out
    bad = tmp_path / "bad.toml"
    bad.write_text("[terminal]\n")
    assert main(["keys", "show", "--config", str(bad)]) == 2
    assert "--key-file" in capsys.readouterr().err


def test_cli_host_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_dir = tmp_path / "hk"
    assert main(["host", "keys", "init", "--keys", str(keys_dir)]) == 0
    out, err = capsys.readouterr()
    loaded = HostKeys.load(keys_dir)
    assert out == encode_public(loaded.host_public) + "\n"
    assert "signing.pub" in err
    for secret in secrets_of(loaded.host_private):
        assert secret not in out + err
    assert main(["host", "keys", "show", "--keys", str(keys_dir)]) == 0
    assert capsys.readouterr().out == out
    assert main(["host", "keys", "init", "--keys", str(keys_dir)]) == 2
    assert "exists; refusing" in capsys.readouterr().err

    terminal = encode_public(public_of(generate_private()))
    args = ["host", "keys", "add", "--keys", str(keys_dir), "--address", "5"]
    assert main([*args, terminal, "--name", "gate east"]) == 0
    capsys.readouterr()
    assert main([*args, encode_public(public_of(generate_private()))]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["host", "keys", "add", "--keys", str(keys_dir), "--address", "9", "xx"]) == 2
    assert "PUBKEY: not base64" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # argparse: a one-line usage error
        main(["host", "keys", "add", "--keys", str(keys_dir), "--address", "0x85", terminal])
    assert usage.value.code == 2
    assert "0x85 is outside 1..126" in capsys.readouterr().err
    assert main(["host", "keys", "list", "--keys", str(keys_dir)]) == 0
    assert capsys.readouterr().out == f"  5  {terminal}  gate east\n"
    assert main(["host", "keys", "list", "--keys", str(keys_dir), "--json"]) == 0
    assert capsys.readouterr().out == (
        f'{{"terminals": [{{"address": 5, "key": "{terminal}", "name": "gate east"}}]}}\n'
    )
