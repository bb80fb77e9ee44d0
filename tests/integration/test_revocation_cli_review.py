"""The builder-side review of issue 8, replayed through the CLI on the test PKI.

Each test is one finding as its kind: a delta bound to the content of its base, issuer
certificates that must be trusted, a `check` that verifies, numeric options refused in one
line, and the messages.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from terminald.cli import build_parser, main
from terminald.revocation import encode_bundle, read_unverified
from terminald.revocation.chain import decode_chain
from terminald.revocation.keys import load_private_key
from terminald.sim.crl import make_crl
from terminald.sim.testpki import TestPkiManifest

from .test_revocation_cli_coverage import Rig, card_root, run


@pytest.fixture
def rig(test_pki: TestPkiManifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Rig:
    return Rig(test_pki, tmp_path, capsys)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """argparse's refusal: exit 2, a message on stderr, no traceback."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: argument" in err
    return err


# -- 1. a delta binds to its base's content ----------------------------------------------


def test_a_delta_built_against_another_base_of_the_same_version_is_not_installed(
    rig: Rig,
) -> None:
    root = card_root(rig.pki)
    trust = ("--trust", str(rig.pki.trust_dir))
    state = rig.work / "rev.state"
    apply = ("--revocation-state", str(state), "--backoffice-key", f"{rig.key}.pub")
    real = rig.crl("real.crl", root)  # nobody revoked
    other = rig.crl("other.crl", root, "--revoke", "16777225")
    v2 = rig.crl("v2.crl", root, "--revoke", "16777225", "16777220", "--crl-number", "2")
    assert rig.build("v1-real", "--crl", str(real), "--version", "1", *trust)[0] == 0
    assert rig.build("v1-other", "--crl", str(other), "--version", "1", *trust)[0] == 0
    code, out, _ = rig.build(
        "v2", "--crl", str(v2), "--version", "2", "--base", str(rig.work / "v1-other"), *trust
    )
    # The summary says what the delta does, not the size of the result.
    assert code == 0 and "adds 1 revoked and 0 on hold, removes 0 revoked" in out
    assert "the result: 1 issuer(s) (0 by partition), 2 revoked" in out

    assert run(rig.capsys, "revocation", "apply", str(rig.work / "v1-real"), *apply)[0] == 0
    code, _, err = run(rig.capsys, "revocation", "apply", str(rig.work / "v2"), *apply)
    assert code == 2 and "not installed" in err and "built from other data" in err
    # The store still holds v1-real alone: the refusal left the installed data as it was.
    assert decode_chain(state.read_bytes()) == [(rig.work / "v1-real").read_bytes()]
    # Against the base it was built for, the same delta applies.
    other_state = ("--revocation-state", str(rig.work / "other.state"))
    key = ("--backoffice-key", f"{rig.key}.pub")
    for name in ("v1-other", "v2"):
        code, _, err = run(
            rig.capsys, "revocation", "apply", str(rig.work / name), *other_state, *key
        )
        assert code == 0, err


def test_build_verifies_the_base_signature(rig: Rig, tmp_path: Path) -> None:
    root = card_root(rig.pki)
    trust = ("--trust", str(rig.pki.trust_dir))
    crl = rig.crl("a.crl", root, "--revoke", "5")
    assert rig.build("v1", "--crl", str(crl), "--version", "1", *trust)[0] == 0
    base = rig.work / "v1"

    flipped = tmp_path / "flipped.bundle"
    data = bytearray(base.read_bytes())
    data[-1] ^= 0x01
    flipped.write_bytes(bytes(data))
    code, _, err = rig.build(
        "d", "--crl", str(crl), "--version", "2", "--base", str(flipped), *trust
    )
    assert code == 2 and "--base" in err and "signature does not verify" in err

    foreign_key = tmp_path / "foreign.key"
    assert run(rig.capsys, "revocation", "keygen", "--out", str(foreign_key))[0] == 0
    foreign = run(
        rig.capsys, "revocation", "build", "--crl", str(crl), "--key", str(foreign_key),
        "--version", "1", "--out", str(tmp_path / "foreign.bundle"), *trust,
    )  # fmt: skip
    assert foreign[0] == 0
    code, _, err = rig.build(
        "d", "--crl", str(crl), "--version", "2", "--base", str(tmp_path / "foreign.bundle"),
        *trust,
    )  # fmt: skip
    assert code == 2 and "not a trusted back-office key" in err
    code, _, err = rig.build(
        "d", "--crl", str(crl), "--version", "2", "--base", str(tmp_path / "foreign.bundle"),
        "--base-pubkey", f"{foreign_key}.pub", *trust,
    )  # fmt: skip
    assert code == 0, err


# -- 2. --issuer-cert must be trusted --------------------------------------------------------


def test_a_self_signed_lookalike_of_a_root_does_not_vouch_for_a_crl(rig: Rig) -> None:
    root = card_root(rig.pki)
    real = x509.load_pem_x509_certificate((rig.pki.ca_dir / f"{root}.pem").read_bytes())
    real_ski = real.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    fake = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(real.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(real_ski, False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    fake_pem = rig.work / "fake-gen3.pem"
    fake_pem.write_bytes(fake.public_bytes(serialization.Encoding.PEM))
    fake_crl = rig.work / "fake-g3.crl"
    fake_crl.write_bytes(make_crl(fake, key, [], now, now + timedelta(days=1)))
    for trust in ((), ("--trust", str(rig.pki.trust_dir))):
        code, _, err = rig.build(
            "x", "--crl", str(fake_crl), "--version", "1", "--issuer-cert", str(fake_pem), *trust
        )
        assert code == 2 and "not a trust anchor" in err, err
    # The real root given as --issuer-cert is the anchor itself: accepted.
    good = rig.crl("good.crl", root)
    code, _, err = rig.build(
        "y", "--crl", str(good), "--version", "1",
        "--issuer-cert", str(rig.pki.ca_dir / f"{root}.pem"), "--trust", str(rig.pki.trust_dir),
    )  # fmt: skip
    assert code == 0, err


# -- 3. check verifies and says when the data has expired ----------------------------------


def test_check_verifies_the_signature_and_says_when_expired(rig: Rig, tmp_path: Path) -> None:
    root = card_root(rig.pki)
    crl = rig.crl("a.crl", root, "--revoke", "5")
    assert rig.build("v1", "--crl", str(crl), "--version", "1", "--trust",
                     str(rig.pki.trust_dir))[0] == 0  # fmt: skip
    bundle = rig.work / "v1"
    (issuer,) = read_unverified(bundle.read_bytes()).snapshot.issuers
    query = ("--issuer", issuer.hex(), "--serial", "6")

    code, _, err = run(rig.capsys, "revocation", "check", str(bundle), *query)
    assert code == 2 and "--pubkey" in err and "--no-verify" in err
    code, out, _ = run(rig.capsys, "revocation", "check", str(bundle), *query, *rig.verify)
    assert (code, out.strip()) == (0, "good")
    code, out, _ = run(rig.capsys, "revocation", "check", str(bundle), *query, "--no-verify")
    assert code == 0 and out.startswith("good (UNVERIFIED")

    flipped = tmp_path / "flipped.bundle"
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 0x01
    flipped.write_bytes(bytes(data))
    code, out, err = run(rig.capsys, "revocation", "check", str(flipped), *query, *rig.verify)
    assert code == 2 and out == "" and "signature does not verify" in err

    stranger = tmp_path / "stranger.key"
    run(rig.capsys, "revocation", "keygen", "--out", str(stranger))
    code, out, err = run(
        rig.capsys, "revocation", "check", str(bundle), *query, "--pubkey", f"{stranger}.pub"
    )
    assert code == 2 and out == "" and "not a trusted back-office key" in err

    key = load_private_key(rig.key.read_bytes(), "bo.key")
    content = read_unverified(bundle.read_bytes()).snapshot
    old = tmp_path / "old.bundle"
    long_ago = datetime(2026, 1, 2, tzinfo=UTC)
    old.write_bytes(
        encode_bundle(
            content,
            version=1,
            issued_at=long_ago,
            valid_until=long_ago + timedelta(days=1),
            signing_key=key,
        )
    )
    code, out, _ = run(rig.capsys, "revocation", "check", str(old), *query, *rig.verify)
    assert code == 1 and out.startswith("stale: the bundle expired at 2026-01-03")


# -- 4. every numeric option refuses a bad value in one line --------------------------------

BUILD = ("revocation", "build", "--crl", "c", "--key", "k", "--out", "o")
SIM = ("sim", "crl", "--pki", "p", "--root", "r", "--out", "o")
BAD_NUMBERS = [
    (BUILD, ("--version", "1"), "--valid-days", ["inf", "nan", "0", "-1", "1e9", "x"]),
    (BUILD, (), "--version", ["18446744073709551616", "0", "-1", "1.5"]),
    (("revocation", "check", "B"), ("--issuer", "aa"), "--serial", ["-1", "4294967296", "z"]),
    (("auth",), (), "--revocation-grace", ["inf", "-1", "169", "nan"]),
    (SIM, (), "--revoke", ["-5", "0", str(2**159), "x", "5:bogus"]),
    (SIM, ("--rate", "0.1"), "--random", ["0", "-3", str(2**32 + 1), "1e3"]),
    (SIM, ("--random", "10"), "--rate", ["inf", "nan", "-0.1", "1.5"]),
    (SIM, ("--random", "10", "--rate", "0.1"), "--first-serial", ["0", "-1", str(2**63)]),
    (SIM, ("--random", "10", "--rate", "0.1"), "--hold-fraction", ["nan", "-1", "2"]),
    (SIM, ("--random", "10", "--rate", "0.1"), "--seed", ["-1", "x", str(2**64)]),
    (SIM, (), "--crl-number", ["-1", str(2**159), "x"]),
    (SIM, (), "--next-update-days", ["inf", "nan", "0", "-1", "1e9"]),
]


@pytest.mark.parametrize(
    ("words", "rest", "option", "values"),
    BAD_NUMBERS,
    ids=[f"{' '.join(w[:2])} {o}" for w, _, o, _ in BAD_NUMBERS],
)
def test_a_bad_number_is_a_one_line_usage_error(
    capsys: pytest.CaptureFixture[str],
    words: tuple[str, ...],
    rest: tuple[str, ...],
    option: str,
    values: list[str],
) -> None:
    for value in values:
        err = usage_error(capsys, *words, *rest, f"{option}={value}")
        assert f"argument {option}" in err and value in err, err


def _numeric_options(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= _numeric_options(sub, (*words, name))
        elif action.option_strings and action.type is not None:
            name = getattr(action.type, "__name__", "")
            if words[:1] == ("revocation",) or words[:2] == ("sim", "crl"):
                # A bare int or float takes "inf", "-5" or 2**64 and fails deep down.
                assert action.type not in (int, float), (words, action.option_strings)
            if name in ("integer", "number", "revoke_spec"):
                found.add(" ".join((*words[:2], action.option_strings[-1])))
    return found


def test_every_numeric_option_of_the_revocation_and_sim_commands_is_walked_above() -> None:
    walked = {f"{' '.join(w[:2])} {o}" for w, _, o, _ in BAD_NUMBERS}
    found = {o for o in _numeric_options(build_parser()) if o.startswith(("revocation", "sim crl"))}
    assert found <= walked | {"auth --revocation-grace"}, found - walked
    assert {o for o in walked if o.startswith(("revocation", "sim"))} <= found


# -- 6. messages ------------------------------------------------------------------------------


def test_messages(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    entry = rig.pki.card("card-001")
    root = card_root(rig.pki)
    own = str(entry.crl_distribution_point)
    crl = rig.crl("own.crl", root, "--idp", own, "--revoke", f"{entry.serial}:keyCompromise")
    trust = ("--trust", str(rig.pki.trust_dir))
    code, out, _ = rig.build(
        "b", "--crl", str(crl), "--version", "1", "--valid-days", "0.5", *trust
    )
    # valid-until as the bundle stores it: whole seconds.
    stamp = r"valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$"
    assert code == 0 and re.search(stamp, out)
    bundle = str(rig.work / "b")
    check = ("revocation", "check", bundle, *rig.verify)

    # --cert takes the test PKI's card profile JSON.
    profile = str(rig.pki.profile_path("card-001"))
    code, out, _ = run(capsys, *check, "--cert", profile)
    assert (code, out.strip()) == (0, "revoked")
    # Anything else: one line, not cryptography's parser dump.
    junk = rig.work / "junk.der"
    junk.write_bytes(b"\x30\x03\x02\x01\x00")
    code, _, err = run(capsys, *check, "--cert", str(junk))
    assert code == 2 and "ParseError" not in err and len(err.strip().splitlines()) == 1
    assert "not an X.509 certificate" in err
    code, _, err = run(capsys, *check, "--cert", str(rig.pki.directory / "manifest.json"))
    assert code == 2 and "not a test-PKI card profile" in err
    # --serial 0 is a value, not an absence.
    code, _, err = run(capsys, *check, "--cert", profile, "--serial", "0")
    assert code == 2 and "leave out the others" in err

    issuer = entry.issuer_key_id or ""
    by_name = ("--issuer", issuer, "--serial", str(entry.serial))
    code, out, _ = run(capsys, *check, *by_name)
    assert code == 1 and out.startswith("not covered: the certificate names no CRL distribution")
    lower = re.sub(r"(^|,)([A-Z]+)=", lambda m: m.group(1) + m.group(2).lower() + "=", own)
    assert lower != own
    code, out, _ = run(capsys, *check, *by_name, "--crldp", lower)
    assert (code, out.strip()) == (0, "revoked")
    code, _, err = run(capsys, *check, *by_name, "--crldp", "nonsense")
    assert code == 2 and "()" not in err and "TYPE=value" in err

    # apply offers no --revocation-grace: grace decides answers, not installs.
    with pytest.raises(SystemExit):
        main(["revocation", "apply", "--help"])
    assert "--revocation-grace" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["auth", "--help"])
    assert "--revocation-grace" in capsys.readouterr().out
