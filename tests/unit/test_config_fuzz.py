"""Configuration and enrolment are untrusted input too: every bad value gets an error
naming its key, never a traceback, and check-config, start-up and SIGHUP agree (they
run one validation: ``build_runtime``).

The issue's examples are tests here; the property tests (hypothesis) mutate a valid
configuration and enrolled-cards file, as parsed data and as raw bytes. Files named by
the configuration are checked for type and size before they are read: a FIFO never
blocks, and a 3 GiB file is refused without reading it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tomllib
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminald.cli import main
from terminald.config import SECTIONS, Config, ConfigError, config_from_dict
from terminald.config_show import config_as_dict
from terminald.daemon.runtime import build_runtime
from terminald.files import read_limited
from terminald.pki.anchors import TrustStore
from terminald.sim.testpki import TestPkiManifest
from terminald.store.enrolled import EnrolledFileError, load_enrolled, parse_enrolled
from tests.fuzzing import FUZZ

from .test_doctor import write_config

THREE_GIB = 3 * 1024**3
ISSUER = "aa" * 20


def check_config(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check-config", str(path)])
    return code, out.getvalue(), err.getvalue()


def start_up(path: Path) -> list[str]:
    """What ``terminald run`` refuses to start with, before any hardware is opened."""
    from terminald.daemon.main import StartupError, open_daemon

    try:
        daemon = open_daemon(path)
    except StartupError as exc:
        # Problems in the file itself come prefixed with its path; those in the files
        # it names, keyed alone. Either way, the key is named.
        return [m.removeprefix(f"{path}: ") for m in exc.messages]
    daemon.hardware.close()  # nothing else was started: no threads, no card
    if daemon.audit is not None:
        daemon.audit.close()
    return []


@pytest.fixture
def make(tmp_path: Path, test_pki: TestPkiManifest) -> Callable[..., Path]:
    def config(**sections: dict[str, Any]) -> Path:
        return write_config(tmp_path, test_pki.trust_dir, **sections)

    return config


# -- the issue's examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sections", "key"),
    [
        ({"access": {"policy": "enrolled", "enrolled": "enrolled\0.toml"}}, "access.enrolled"),
        ({"revocation": {"state_path": "state/rev\0ocation.state"}}, "revocation.state_path"),
        ({"trust": {"anchors": ["anchors\0"]}}, "trust.anchors[0]"),
        ({"state": {"dir": "st\0ate"}}, "state.dir"),
        ({"terminal": {"id": ""}}, "terminal.id"),
        ({"card": {"reader": "Virtual\0PCD"}}, "card.reader"),
    ],
    ids=["nul-enrolled", "nul-state-path", "nul-anchor", "nul-state-dir", "empty-id", "nul-reader"],
)
def test_check_config_and_start_up_refuse_alike_naming_the_key(
    make: Callable[..., Path], sections: dict[str, Any], key: str
) -> None:
    path = make(**sections)
    code, out, err = check_config(path)
    assert (code, out) == (2, ""), err
    assert f"{path}: {key}: " in err and "Traceback" not in err
    assert any(m.startswith(f"{key}: ") for m in start_up(path))


def test_what_check_config_passes_the_daemon_starts_with(make: Callable[..., Path]) -> None:
    path = make()
    assert check_config(path)[0] == 0
    assert start_up(path) == []


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ('serial = 1\nissuer = ""\n', "card[0].issuer (serial 1): is empty"),
        (
            f'serial = 1\nissuer = "{ISSUER}"\n[[card]]\nserial = 1\nissuer = "{ISSUER.upper()}"\n',
            "card[1] (serial 1): the same certificate",
        ),
        (f'serial = "١٢"\nissuer = "{ISSUER}"\n', "must be a non-negative integer, got '١٢'"),
        (f'serial = "{"9" * 5000}"\nissuer = "{ISSUER}"\n', "below 2**160"),
    ],
    ids=["empty-issuer", "duplicate-pair", "arabic-digits", "5000-digits"],
)
def test_bad_enrolled_entries_are_refused_by_check_config_and_start_up(
    make: Callable[..., Path], tmp_path: Path, entries: str, problem: str
) -> None:
    (tmp_path / "enrolled.toml").write_text("[[card]]\n" + entries)
    path = make(access={"policy": "enrolled", "enrolled": "enrolled.toml"})
    code, _, err = check_config(path)
    assert code == 2 and f"{path}: access.enrolled: " in err and problem in err, err
    assert any(problem in m for m in start_up(path))


@pytest.mark.parametrize("kind", ["fifo", "device", "3gib", "directory"])
@pytest.mark.parametrize(
    "key", ["trust.anchors[0]", "revocation.backoffice_keys[0]", "access.enrolled"]
)
def test_a_named_file_that_is_no_regular_file_or_too_large_is_refused_unread(
    make: Callable[..., Path], tmp_path: Path, kind: str, key: str
) -> None:
    target = tmp_path / f"odd-{kind}"
    expected = {
        "fifo": "a FIFO (named pipe), not a regular file",
        "device": "a character device, not a regular file",
        "3gib": f"{THREE_GIB} bytes, more than the",
        "directory": "",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)  # nobody writes: a blocking open would wait for ever
    elif kind == "device":
        target = Path("/dev/zero")  # endless: a plain read would fill memory
    elif kind == "3gib":
        with target.open("wb") as sparse:
            sparse.truncate(THREE_GIB)  # sparse: no disk used, and it must never be read
    else:
        target.mkdir()
    section, name = key.split(".")
    name = name.removesuffix("[0]")
    values: dict[str, Any] = {name: [str(target)] if key.endswith("]") else str(target)}
    if section == "access":
        values["policy"] = "enrolled"
    if section == "revocation":
        values["required"] = True
    path = make(**{section: values})
    code, _, err = check_config(path)
    assert code == 2 and f"{path}: {key}: " in err, err
    assert expected in err
    assert any(m.startswith(f"{key}: ") for m in start_up(path))


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_revocation_state_path_that_is_no_file_is_refused_at_check_and_start(
    make: Callable[..., Path], tmp_path: Path, kind: str
) -> None:
    path = make(revocation={"state_path": "state/revocation.state"})
    target = tmp_path / "state" / "revocation.state"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    code, _, err = check_config(path)
    assert code == 2 and f"{path}: revocation.state_path: " in err, err
    assert any(m.startswith("revocation.state_path: ") for m in start_up(path))


def test_read_limited_refuses_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        read_limited(fifo, 10)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(OSError, match="11 bytes, more than the 10 allowed"):
        read_limited(big, 10)
    with pytest.raises(OSError, match="NUL byte"):
        read_limited(Path("a\0b"), 10)
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "missing", 10)
    assert read_limited(big, 11) == b"x" * 11


def test_the_revocation_commands_refuse_a_fifo_or_a_3gib_bundle(tmp_path: Path) -> None:
    fifo, big = tmp_path / "bundle.fifo", tmp_path / "bundle.big"
    os.mkfifo(fifo)
    with big.open("wb") as sparse:
        sparse.truncate(THREE_GIB)
    key = tmp_path / "bo.pub"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from terminald.revocation.keys import public_key_pem

    key.write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    (tmp_path / "state").mkdir()
    for bundle, problem in ((fifo, "FIFO"), (big, f"{THREE_GIB} bytes")):
        for argv in (
            ["revocation", "inspect", str(bundle)],
            [
                "revocation",
                "check",
                str(bundle),
                "--serial",
                "1",
                "--issuer",
                ISSUER,
                "--no-verify",
            ],
            [
                "revocation",
                "apply",
                str(bundle),
                "--revocation-state",
                str(tmp_path / "state" / "revocation.state"),
                "--backoffice-key",
                str(key),
            ],
        ):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
            assert code == 2 and problem in err.getvalue(), (argv, err.getvalue())
            assert len(err.getvalue().strip().splitlines()) == 1


# -- property tests -------------------------------------------------------------------------

SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["", "\0", "a\0b", "../x", "/dev/zero", "auto", "mock", "rpi4", " "])
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _base(tmp_path: Path, pki: TestPkiManifest) -> dict[str, Any]:
    data = config_as_dict(
        config_from_dict(tomllib.loads(write_config(tmp_path, pki.trust_dir).read_text()))
    )
    return data


def _check_messages(messages: list[str], sections: set[str]) -> None:
    for message in messages:
        assert "\n" not in message and "Traceback" not in message
        head = message.split(":", 1)[0].split(".", 1)[0]
        assert head in sections, message


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_a_mutated_configuration_loads_or_names_its_keys(
    tmp_path: Path, test_pki: TestPkiManifest, data: st.DataObject
) -> None:
    config = _base(tmp_path, test_pki)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        section = data.draw(st.sampled_from([*SECTIONS, "extra"]), label="section")
        table = config.setdefault(section, {})
        if not isinstance(table, dict) or data.draw(st.integers(0, 9)) == 0:
            config[section] = data.draw(VALUES, label="table")
            continue
        known = sorted(table) or ["x"]
        key = data.draw(st.sampled_from(known) | st.text(max_size=10), label="key")
        if data.draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = data.draw(VALUES, label="value")
    try:
        loaded = config_from_dict(config, tmp_path)
    except ConfigError as exc:
        _check_messages(exc.messages, set(config))
        return
    assert isinstance(loaded, Config)
    try:
        build_runtime(loaded, reader_supports_extended=False)
    except ConfigError as exc:
        _check_messages(exc.messages, set(config))


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_a_mutated_configuration_file_loads_or_names_what_is_wrong(
    tmp_path: Path, test_pki: TestPkiManifest, data: st.DataObject
) -> None:
    text = bytearray(write_config(tmp_path, test_pki.trust_dir).read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()) and at < len(text):
            text[at] = data.draw(st.integers(0, 255))
        else:
            text[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(bytes(text))
    code, _, err = check_config(path)
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert all(line.startswith(f"{path}: ") for line in err.splitlines()), err


ENTRY_KEYS = st.sampled_from(["serial", "issuer", "label"]) | st.text(max_size=6)


@pytest.mark.fuzz
@FUZZ
@given(
    entries=st.lists(
        st.dictionaries(
            ENTRY_KEYS,
            VALUES | st.just(ISSUER) | st.integers(0, 2**40) | st.from_regex(r"[0-9]{1,60}"),
        )
        | VALUES,
        max_size=4,
    ),
    top=st.dictionaries(st.text(max_size=6), VALUES, max_size=2),
)
def test_enrolled_entries_load_or_are_refused_naming_the_entry(
    entries: list[Any], top: dict[str, Any]
) -> None:
    data = {**top, "card": entries}
    try:
        cards = parse_enrolled(data, Path("enrolled.toml"))
    except EnrolledFileError as exc:
        assert exc.problems and all("\n" not in p for p in exc.problems)
        return
    assert len({c.key for c in cards}) == len(entries)


@pytest.mark.fuzz
@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_an_enrolled_file_of_any_bytes_loads_or_says_why(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "enrolled.toml"
    path.write_bytes(b'[[card]]\nissuer = "' + ISSUER.encode() + b'"\nserial = 1\n' + raw)
    try:
        load_enrolled(path)
    except EnrolledFileError as exc:
        assert exc.problems


def test_trust_directory_with_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "root.pem")
    with pytest.raises(OSError, match="FIFO"):
        TrustStore.from_paths([tmp_path])


def test_json_check(make: Callable[..., Path]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["check-config", "--json", str(make())]) == 0
    assert json.loads(out.getvalue())["terminal"]["id"] == "t1"
