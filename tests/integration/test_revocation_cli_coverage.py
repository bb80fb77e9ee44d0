"""The revocation CLI on the test PKI: coverage, CRL checks, several values, apply rules.

Everything goes through terminald.cli.main (or ``python -m terminald`` where the log
output itself is the subject), with CRLs made by ``terminald sim crl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from terminald.cli import build_parser, main
from terminald.revocation import TrustedKeys, open_bundle
from terminald.revocation.coverage import parse_name_text
from terminald.revocation.keys import load_public_keys
from terminald.sim.crl import CrlEntry, make_crl
from terminald.sim.testpki import MUNICIPALITIES, TestPkiManifest, crl_distribution_point_name


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def other_town(pki: TestPkiManifest, card: str) -> str:
    """The RFC 4514 CRLDP of a test-PKI municipality that is not ``card``'s."""
    own = pki.card(card).crl_distribution_point
    for town in MUNICIPALITIES:
        name = crl_distribution_point_name(town).rfc4514_string()
        if name != own:
            return name
    raise AssertionError("the test PKI has one municipality")


class Rig:
    """A back office on the test PKI: keys, CRLs per root and bundles, through the CLI."""

    def __init__(self, pki: TestPkiManifest, work: Path, capsys: pytest.CaptureFixture[str]):
        self.pki, self.work, self.capsys = pki, work, capsys
        self.key = work / "bo.key"
        assert run(capsys, "revocation", "keygen", "--out", str(self.key))[0] == 0

    def crl(self, name: str, root: str, *extra: str) -> Path:
        out = self.work / name
        code, _, err = run(
            self.capsys, "sim", "crl", "--pki", str(self.pki.directory), "--root", root,
            "--out", str(out), *extra,
        )  # fmt: skip
        assert code == 0, err
        return out

    def build(self, out: str, *args: str) -> tuple[int, str, str]:
        return run(
            self.capsys, "revocation", "build", "--key", str(self.key), "--out",
            str(self.work / out), *args,
        )  # fmt: skip

    @property
    def verify(self) -> tuple[str, str]:
        """``revocation check``'s --pubkey for this back office's key."""
        return ("--pubkey", f"{self.key}.pub")

    def trusted(self) -> TrustedKeys:
        return TrustedKeys(load_public_keys(Path(f"{self.key}.pub").read_bytes(), "pub"))


@pytest.fixture
def rig(test_pki: TestPkiManifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Rig:
    return Rig(test_pki, tmp_path, capsys)


def card_root(pki: TestPkiManifest, name: str = "card-001") -> str:
    return str(pki.card(name).root)


# -- every option that takes several values: both spellings ------------------------------

# (command words, option, two values, positional/required arguments to complete the line)
BUILD = ("--key", "k", "--version", "1", "--out", "o")
MULTI_VALUE = [
    (("revocation", "build"), "--crl", BUILD),
    (("revocation", "build"), "--issuer-cert", ("--crl", "c", *BUILD)),
    (("revocation", "build"), "--trust", ("--crl", "c", *BUILD)),
    (("revocation", "check"), "--crldp", ("B", "--issuer", "aa", "--serial", "1")),
    (("revocation", "check"), "--pubkey", ("B", "--issuer", "aa", "--serial", "1")),
    (("revocation", "build"), "--base-pubkey", ("--crl", "c", *BUILD)),
    (("revocation", "apply"), "--backoffice-key", ("B", "--revocation-state", "s")),
    (("sim", "crl"), "--revoke", ("--out", "o")),
    (("auth",), "--trust", ()),
    (("auth",), "--backoffice-key", ()),
    (("cert", "show"), "--trust", ("F",)),
    (("host", "serve"), "--address", ()),
    (("host", "serve"), "--partner", ()),
    (("enrolment", "build"), "--base-pubkey", ("S", "--key", "k", "--version", "1", "-o", "o")),
    (("enrolment", "apply"), "--backoffice-key", ("F",)),
    (("enrolment", "import"), "--group", ("E", "-o", "o")),
]  # fmt: skip
# Where an option's values are not numbers, or its destination is not its name.
VALUES = {"--partner": ("a=b", "c=d", "e=f")}
DEST = {("host", "serve", "--address"): "serve_addresses"}


@pytest.mark.parametrize(
    ("words", "option", "rest"), MULTI_VALUE, ids=[f"{' '.join(w)} {o}" for w, o, _ in MULTI_VALUE]
)
def test_a_multi_value_option_takes_values_after_one_flag_or_repeated(
    words: tuple[str, ...], option: str, rest: tuple[str, ...]
) -> None:
    parser = build_parser()
    dest = DEST.get((*words, option), option.removeprefix("--").replace("-", "_"))
    one, two, three = VALUES.get(option, ("1", "2", "3"))
    # Positionals first: a list option swallows what follows it, as argparse does.
    positional = [a for a in rest[:1] if not a.startswith("-")]
    tail = list(rest[len(positional) :])
    # Numbers: valid for every option (--revoke's serials are checked as they are parsed).
    together = parser.parse_args([*words, *positional, *tail, option, one, two])
    repeated = parser.parse_args([*words, *positional, *tail, option, one, option, two])
    mixed = parser.parse_args([*words, *positional, *tail, option, one, two, option, three])

    def text(values: list[object]) -> list[str]:
        if option == "--partner":  # (entry, exit) pairs
            return ["=".join(v) for v in values]  # type: ignore[arg-type]
        return [str(v[0] if isinstance(v, tuple) else v) for v in values]

    as_text = text(getattr(together, dest))
    assert as_text == text(getattr(repeated, dest)) == [one, two]
    assert text(getattr(mixed, dest)) == [one, two, three]


def _walk(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _walk(sub, (*words, name))
        elif action.option_strings and (
            action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
        ):
            assert isinstance(action, argparse._ExtendAction), (words, action.option_strings)
            found.append((*words, action.option_strings[-1]))
    return found


def test_every_multi_value_option_in_the_cli_extends_and_is_tested_above() -> None:
    options = set(_walk(build_parser()))
    assert options == {(*w, o) for w, o, _ in MULTI_VALUE}


def test_build_keeps_every_crl_of_repeated_flags(rig: Rig) -> None:
    pki = rig.pki
    a, b = pki.card("card-001"), pki.card("card-002")
    crl_a = rig.crl("a.crl", str(a.root), "--revoke", f"{a.serial}:keyCompromise")
    crl_b = rig.crl("b.crl", str(b.root), "--revoke", f"{b.serial}:superseded")
    trust = str(pki.trust_dir)
    for spelling in (["--crl", str(crl_a), "--crl", str(crl_b)], ["--crl", str(crl_a), str(crl_b)]):
        code, _, err = rig.build("v.bundle", *spelling, "--version", "1", "--trust", trust)
        assert code == 0, err
        content = open_bundle((rig.work / "v.bundle").read_bytes(), rig.trusted()).snapshot
        for entry in (a, b):
            issuer = bytes.fromhex(entry.issuer_key_id or "")
            assert content.status(issuer, entry.serial or 0) == "revoked"


# -- CRL authenticity and freshness -------------------------------------------------------


def test_build_verifies_each_crl_against_the_trust_anchors_by_default(rig: Rig) -> None:
    root = card_root(rig.pki)
    crl = rig.crl("a.crl", root, "--revoke", "5")
    # No --issuer-cert or --trust: the packaged J-LIS roots, which did not sign a test CRL.
    code, _, err = rig.build("x", "--crl", str(crl), "--version", "1")
    assert code == 2 and "unknown issuer" in err and not (rig.work / "x").exists()
    code, _, err = rig.build(
        "x", "--crl", str(crl), "--version", "1", "--trust", str(rig.pki.trust_dir)
    )
    assert code == 0 and "warning" not in err
    forged = rig.work / "forged.crl"
    data = bytearray(crl.read_bytes())
    data[-1] ^= 0x01  # the last byte of the signature
    forged.write_bytes(bytes(data))
    code, _, err = rig.build(
        "y",
        "--crl",
        str(forged),
        "--version",
        "1",
        "--issuer-cert",
        str(rig.pki.ca_dir / f"{root}.pem"),
        "--trust",
        str(rig.pki.trust_dir),
    )
    assert code == 2 and "signature does not verify" in err
    code, _, err = rig.build("y", "--crl", str(forged), "--version", "1", "--no-verify-crl")
    assert code == 0 and "warning: --no-verify-crl" in err and "NOT checked" in err


def test_an_expired_crl_is_refused_unless_forced_and_bounds_validity(rig: Rig) -> None:
    root = card_root(rig.pki)
    ca_cert = x509.load_pem_x509_certificate((rig.pki.ca_dir / f"{root}.pem").read_bytes())
    ca_key = serialization.load_pem_private_key(
        (rig.pki.ca_dir / f"{root}.key.pem").read_bytes(), None
    )
    now = datetime.now(UTC)
    old = rig.work / "old.crl"
    old.write_bytes(
        make_crl(
            ca_cert, ca_key, [CrlEntry(9, None)], now - timedelta(days=2), now - timedelta(days=1)
        )  # type: ignore[arg-type]
    )
    trust = ("--trust", str(rig.pki.trust_dir))
    code, _, err = rig.build("x", "--crl", str(old), "--version", "1", *trust)
    assert code == 2 and "expired at its nextUpdate" in err
    code, _, err = rig.build(
        "x", "--crl", str(old), "--version", "1", "--allow-expired-crl", *trust
    )
    assert code == 0 and "warning" in err and "used anyway" in err

    fresh = rig.crl("fresh.crl", root, "--next-update-days", "2")
    assert rig.build("b", "--crl", str(fresh), "--version", "1", *trust)[0] == 0
    header = open_bundle((rig.work / "b").read_bytes(), rig.trusted()).header
    next_update = x509.load_der_x509_crl(fresh.read_bytes()).next_update_utc
    assert header.valid_until == next_update  # the default 7 days, cut to nextUpdate
    code, _, err = rig.build(
        "c", "--crl", str(fresh), "--version", "1", "--valid-days", "5", *trust
    )
    assert code == 2 and "reaches past" in err and "nextUpdate" in err
    code, _, err = rig.build(
        "c", "--crl", str(fresh), "--version", "1", "--valid-days", "5",
        "--allow-beyond-next-update", *trust,
    )  # fmt: skip
    assert code == 0 and "warning" in err
    code, _, err = rig.build(
        "d", "--crl", str(fresh), "--version", "1", "--valid-days", "1", *trust
    )
    assert code == 0 and err == ""


# -- coverage in build, inspect and check ---------------------------------------------------


def test_partition_coverage_through_build_inspect_and_check(rig: Rig) -> None:
    pki, work = rig.pki, rig.work
    entry = pki.card("card-001")
    own, other = str(entry.crl_distribution_point), other_town(pki, "card-001")
    root = str(entry.root)
    mine = rig.crl("own.crl", root, "--idp", own, "--revoke", f"{entry.serial}:keyCompromise")
    theirs = rig.crl("other.crl", root, "--idp", other)
    trust = ("--trust", str(pki.trust_dir))
    cert = work / "card-001.der"
    cert.write_bytes(pki.load_profile("card-001").auth_cert)
    issuer = entry.issuer_key_id or ""

    code, out, _ = rig.build("other.bundle", "--crl", str(theirs), "--version", "1", *trust)
    assert code == 0 and "1 by partition" in out
    code, out, _ = run(
        rig.capsys,
        "revocation",
        "check",
        str(work / "other.bundle"),
        *rig.verify,
        "--cert",
        str(cert),
    )
    assert code == 1 and out.startswith("not covered: partition " + own)
    code, out, _ = run(rig.capsys, "revocation", "inspect", str(work / "other.bundle"), "--json")
    assert json.loads(out)["coverage"] == {issuer: [other]}
    code, out, _ = run(rig.capsys, "revocation", "inspect", str(work / "other.bundle"))
    assert f"issuer {issuer}: 1 partition(s)" in out and f"    {other}" in out

    code, _, _ = rig.build("own.bundle", "--crl", str(mine), str(theirs), "--version", "1", *trust)
    assert code == 0
    own_bundle = str(work / "own.bundle")
    code, out, _ = run(
        rig.capsys, "revocation", "check", own_bundle, *rig.verify, "--cert", str(cert)
    )
    assert (code, out.strip()) == (0, "revoked")
    by_name = ("--issuer", issuer, "--serial", str(entry.serial))
    code, out, _ = run(
        rig.capsys, "revocation", "check", own_bundle, *rig.verify, *by_name, "--crldp", own
    )
    assert (code, out.strip()) == (0, "revoked")
    code, out, _ = run(rig.capsys, "revocation", "check", own_bundle, *rig.verify, *by_name)
    assert code == 1 and "not covered: the certificate names no CRL distribution point" in out
    code, out, _ = run(
        rig.capsys, "revocation", "check", own_bundle, *rig.verify, *by_name, "--crldp", "C=XX"
    )
    assert code == 1 and "not covered" in out
    code, _, err = run(
        rig.capsys, "revocation", "check", own_bundle, *rig.verify, *by_name, "--crldp", "junk"
    )
    assert code == 2 and "RFC 4514" in err
    code, out, _ = run(
        rig.capsys,
        "revocation",
        "check",
        own_bundle,
        *rig.verify,
        "--issuer",
        "abcd",
        "--serial",
        "1",
    )
    assert code == 1 and "no data for issuer abcd" in out

    # A whole-issuer CRL in a later delta widens the coverage; inspect shows what it adds.
    whole = rig.crl("whole.crl", root, "--crl-number", "2")
    code, out, err = rig.build(
        "v2.bundle",
        "--crl",
        str(whole),
        "--version",
        "2",
        "--base",
        str(work / "other.bundle"),
        *trust,
    )
    assert code == 0, err
    code, out, _ = run(rig.capsys, "revocation", "inspect", str(work / "v2.bundle"), "--json")
    assert json.loads(out)["coverage_added"] == {issuer: "whole"}
    # ... but a delta cannot take a partition away: that needs a snapshot.
    code, _, err = rig.build(
        "v3.bundle",
        "--crl",
        str(mine),
        "--version",
        "3",
        "--base",
        str(work / "own.bundle"),
        *trust,
    )
    assert code == 2 and "covers less than in the base" in err and "build a snapshot" in err
    assert parse_name_text(own) in pki_points(cert)


def pki_points(cert: Path) -> tuple[bytes, ...]:
    from terminald.pki.certificate import crl_distribution_points

    return crl_distribution_points(x509.load_der_x509_certificate(cert.read_bytes()))


def test_sim_crl_idp_accepts_a_municipality_and_refuses_nonsense(rig: Rig) -> None:
    root = card_root(rig.pki)
    crl = rig.crl("k.crl", root, "--idp", MUNICIPALITIES[1].city)
    idp = x509.load_der_x509_crl(crl.read_bytes()).extensions.get_extension_for_class(
        x509.IssuingDistributionPoint
    )
    assert idp.critical
    assert idp.value.full_name == [
        x509.DirectoryName(crl_distribution_point_name(MUNICIPALITIES[1]))
    ]
    code, _, err = run(
        rig.capsys, "sim", "crl", "--pki", str(rig.pki.directory), "--root", root,
        "--idp", "Atlantis", "--out", str(rig.work / "x.crl"),
    )  # fmt: skip
    assert code == 2 and "not a test-PKI municipality" in err


def test_inspect_fails_when_the_signature_is_invalid_or_by_an_unknown_key(rig: Rig) -> None:
    crl = rig.crl("a.crl", card_root(rig.pki))
    assert (
        rig.build("v1", "--crl", str(crl), "--version", "1", "--trust", str(rig.pki.trust_dir))[0]
        == 0
    )
    bundle = rig.work / "v1"
    code, out, _ = run(
        rig.capsys, "revocation", "inspect", str(bundle), "--pubkey", f"{rig.key}.pub"
    )
    assert code == 0 and "signature:     valid" in out
    other = rig.work / "other.key"
    run(rig.capsys, "revocation", "keygen", "--out", str(other))
    code, out, _ = run(rig.capsys, "revocation", "inspect", str(bundle), "--pubkey", f"{other}.pub")
    assert code == 1 and "unknown key" in out
    damaged = bytearray(bundle.read_bytes())
    damaged[-1] ^= 1
    bad = rig.work / "bad"
    bad.write_bytes(bytes(damaged))
    code, out, _ = run(
        rig.capsys, "revocation", "inspect", str(bad), "--pubkey", f"{rig.key}.pub", "--json"
    )
    assert code == 1 and json.loads(out)["signature"] == "INVALID"
    code, out, _ = run(rig.capsys, "revocation", "inspect", str(bad))
    assert code == 0 and "not checked" in out  # no key asked for: nothing to fail


# -- apply -------------------------------------------------------------------------------


def test_apply_first_quietly_then_idempotently(rig: Rig) -> None:
    crl = rig.crl("a.crl", card_root(rig.pki))
    assert (
        rig.build("v1", "--crl", str(crl), "--version", "1", "--trust", str(rig.pki.trust_dir))[0]
        == 0
    )
    state = rig.work / "store" / "revocation.state"
    state.parent.mkdir()
    apply = [
        sys.executable, "-m", "terminald", "revocation", "apply", str(rig.work / "v1"),
        "--revocation-state", str(state), "--backoffice-key", f"{rig.key}.pub",
    ]  # fmt: skip
    first = subprocess.run(apply, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "installed snapshot version 1" in first.stdout
    assert first.stderr == ""  # no ERROR for a store that does not exist yet
    again = subprocess.run(apply, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "version 1 is already installed" in again.stdout
    # Same version, other content (so other bytes even within the same second): a rollback.
    other_crl = rig.crl("b.crl", card_root(rig.pki), "--revoke", "77")
    trust = str(rig.pki.trust_dir)
    assert rig.build("v0", "--crl", str(other_crl), "--version", "1", "--trust", trust)[0] == 0
    other = [*apply[:5], str(rig.work / "v0"), *apply[6:]]
    refused = subprocess.run(other, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "rollback" in refused.stderr


def test_apply_hands_the_store_to_the_owner_of_its_directory(rig: Rig) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to own a directory by another user")
    crl = rig.crl("a.crl", card_root(rig.pki))
    assert (
        rig.build("v1", "--crl", str(crl), "--version", "1", "--trust", str(rig.pki.trust_dir))[0]
        == 0
    )
    directory = rig.work / "daemon-home"
    directory.mkdir()
    os.chown(directory, 4242, 4343)
    state = directory / "revocation.state"
    code, _, err = run(
        rig.capsys, "revocation", "apply", str(rig.work / "v1"), "--revocation-state", str(state),
        "--backoffice-key", f"{rig.key}.pub",
    )  # fmt: skip
    assert code == 0, err
    assert (state.stat().st_uid, state.stat().st_gid) == (4242, 4343)


def test_apply_as_another_user_is_refused_naming_the_owner(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = rig.work.stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 4242)
    code, _, err = run(
        rig.capsys, "revocation", "apply", str(rig.work / "none"), "--revocation-state",
        str(rig.work / "revocation.state"), "--backoffice-key", f"{rig.key}.pub",
    )  # fmt: skip
    assert code == 2 and "run apply as" in err and "belongs to" in err
    assert not (rig.work / "revocation.state").exists()
