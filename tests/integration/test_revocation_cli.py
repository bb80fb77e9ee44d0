"""The revocation and sim-crl commands, end to end through terminald.cli.main."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from terminald.cli import main
from terminald.pki.anchors import key_identifier
from terminald.revocation import TrustedKeys, open_bundle
from terminald.revocation.keys import load_public_keys
from tests.unit.test_revocation_builder import CA, CA_KEY, OTHER_CA


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A directory shaped like the test PKI's: DIR/ca/<name>.pem and <name>.key.pem, and
    DIR/trust with the root as a trust anchor (what --issuer-cert is checked against)."""
    (tmp_path / "ca").mkdir()
    (tmp_path / "trust").mkdir()
    (tmp_path / "ca" / "root-2023.pem").write_bytes(CA.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "trust" / "root-2023.pem").write_bytes(CA.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca" / "root-2023.key.pem").write_bytes(
        CA_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """argparse's refusal (exit 2, one line on stderr, no traceback): its message."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_keygen_crl_build_inspect_check(
    pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "bo.key"
    code, out, _ = run(capsys, "revocation", "keygen", "--out", str(key))
    assert code == 0 and "key id" in out
    assert (key.stat().st_mode & 0o777) == 0o600
    code, _, err = run(capsys, "revocation", "keygen", "--out", str(key))
    assert code == 2 and "refusing to overwrite" in err

    crl1 = tmp_path / "day1.crl"
    code, out, _ = run(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023",
        "--revoke", "100:superseded", "200:certificateHold", "0x12c", "--out", str(crl1),
    )  # fmt: skip
    assert code == 0 and "3 entries (1 on hold)" in out
    v1 = tmp_path / "v1.bundle"
    code, out, _ = run(
        capsys, "revocation", "build", "--crl", str(crl1), "--key", str(key),
        "--version", "1", "--issuer-cert", str(pki / "ca" / "root-2023.pem"),
        "--trust", str(pki / "trust"), "--out", str(v1),
    )  # fmt: skip
    assert code == 0 and "snapshot, version 1" in out

    issuer = key_identifier(CA).hex()
    for serial, answer in (("100", "revoked"), ("200", "hold"), ("300", "revoked"), ("5", "good")):
        code, out, _ = run(
            capsys,
            "revocation",
            "check",
            str(v1),
            "--pubkey",
            f"{key}.pub",
            "--issuer",
            issuer,
            "--serial",
            serial,
        )
        assert (code, out.strip()) == (0, answer)

    code, out, _ = run(capsys, "revocation", "inspect", str(v1), "--pubkey", f"{key}.pub", "--json")
    info = json.loads(out)
    assert info["kind"] == "snapshot" and info["version"] == 1
    assert (info["revoked"], info["hold"], info["signature"]) == (2, 1, "valid")
    assert info["size_bytes"] == v1.stat().st_size
    code, out, _ = run(capsys, "revocation", "inspect", str(v1))
    assert "not checked" in out and "valid until" in out

    crl2 = tmp_path / "day2.crl"
    run(
        capsys, "sim", "crl", "--ca", str(pki / "ca" / "root-2023.pem"),
        "--ca-key", str(pki / "ca" / "root-2023.key.pem"), "--crl-number", "2",
        "--revoke", "100:superseded", "200:keyCompromise", "300", "400:cessationOfOperation",
        "--out", str(crl2),
    )  # fmt: skip
    v2 = tmp_path / "v2.bundle"
    code, out, _ = run(
        capsys, "revocation", "build", "--crl", str(crl2), "--key", str(key),
        "--version", "2", "--base", str(v1), "--out", str(v2),
        "--issuer-cert", str(pki / "ca" / "root-2023.pem"), "--trust", str(pki / "trust"),
    )  # fmt: skip
    assert code == 0 and "delta from version 1" in out
    trusted = TrustedKeys(load_public_keys(Path(f"{key}.pub").read_bytes(), "pub"))
    opened = open_bundle(v2.read_bytes(), trusted)
    assert opened.header.base_version == 1
    assert opened.delta.counts() == (2, 0) and opened.delta.removed_counts() == (0, 1)
    code, out, _ = run(capsys, "revocation", "inspect", str(v2), "--json")
    assert json.loads(out)["base_version"] == 1

    code, _, err = run(
        capsys,
        "revocation",
        "check",
        str(v2),
        "--pubkey",
        f"{key}.pub",
        "--issuer",
        issuer,
        "--serial",
        "1",
    )
    assert code == 2 and "is a delta" in err
    code, _, err = run(
        capsys, "revocation", "build", "--crl", str(crl2), "--key", str(key),
        "--version", "3", "--base", str(v2), "--out", str(tmp_path / "x"),
        "--issuer-cert", str(pki / "ca" / "root-2023.pem"), "--trust", str(pki / "trust"),
    )  # fmt: skip
    assert code == 2 and "is a delta" in err


def test_user_errors_say_what_is_wrong(
    pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "bo.key"
    run(capsys, "revocation", "keygen", "--out", str(key))
    noaki = tmp_path / "noaki.crl"
    run(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023", "--no-aki",
        "--revoke", "1", "--out", str(noaki),
    )  # fmt: skip
    code, _, err = run(
        capsys, "revocation", "build", "--crl", str(noaki), "--key", str(key),
        "--version", "1", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2 and "no Authority Key Identifier" in err

    good_crl = tmp_path / "good.crl"
    run(
        capsys,
        "sim",
        "crl",
        "--pki",
        str(pki),
        "--root",
        "root-2023",
        "--revoke",
        "1",
        "--out",
        str(good_crl),
    )
    other = tmp_path / "other.pem"
    other.write_bytes(OTHER_CA.public_bytes(serialization.Encoding.PEM))
    code, _, err = run(
        capsys, "revocation", "build", "--crl", str(good_crl), "--key", str(key),
        "--version", "1", "--issuer-cert", str(other), "--trust", str(other),
        "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2 and "none of the given issuer certificates" in err

    code, _, err = run(
        capsys, "revocation", "build", "--crl", str(tmp_path / "missing.crl"), "--key", str(key),
        "--version", "1", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2 and "cannot read CRL" in err
    code, _, err = run(
        capsys, "revocation", "build", "--crl", str(good_crl), "--key", str(good_crl),
        "--version", "1", "--out", str(tmp_path / "b"),
    )  # fmt: skip
    assert code == 2 and "not an unencrypted PEM private key" in err

    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(b"TDRV" + bytes(200))
    code, _, err = run(capsys, "revocation", "inspect", str(garbage))
    assert code == 2 and "not a valid revocation bundle" in err

    code, _, err = run(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023",
        "--out", str(tmp_path / "x"),
        "--revoke", "1", "--random", "10", "--rate", "0.1",
    )  # fmt: skip
    assert code == 2 and "--revoke" in err and not (tmp_path / "x").exists()
    empty = tmp_path / "empty.crl"
    code, _, _ = run(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023", "--out", str(empty)
    )
    assert (
        code == 0
        and x509.load_der_x509_crl(empty.read_bytes()).get_revoked_certificate_by_serial_number(1)
        is None
    )
    err = usage_error(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023",
        "--revoke", "5:bogus", "--out", "x",
    )  # fmt: skip
    assert "unknown reason 'bogus'" in err


def test_synthetic_crl_builds_a_snapshot(
    pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "bo.key"
    run(capsys, "revocation", "keygen", "--out", str(key))
    big = tmp_path / "big.crl"
    code, out, _ = run(
        capsys, "sim", "crl", "--pki", str(pki), "--root", "root-2023", "--random", "20000",
        "--rate", "0.05", "--distribution", "clustered", "--hold-fraction", "0.1",
        "--seed", "1", "--out", str(big),
    )  # fmt: skip
    assert code == 0
    entries = int(re.search(r"(\d+) entries", out).group(1))  # type: ignore[union-attr]
    assert 950 <= entries <= 1050  # 5 % of 20,000, rounded per slice
    bundle = tmp_path / "big.bundle"
    code, out, _ = run(
        capsys, "revocation", "build", "--crl", str(big), "--key", str(key),
        "--version", "7", "--out", str(bundle), "--issuer-cert", str(pki / "ca" / "root-2023.pem"),
        "--trust", str(pki / "trust"),
    )  # fmt: skip
    assert code == 0
    code, out, _ = run(capsys, "revocation", "inspect", str(bundle), "--json")
    info = json.loads(out)
    assert info["revoked"] + info["hold"] == entries and 50 < info["hold"] < 150
