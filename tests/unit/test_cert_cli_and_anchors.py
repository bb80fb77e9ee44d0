"""`terminald cert show` and trust-anchor loading."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from terminald.cli import main
from terminald.pki.anchors import TrustAnchorError, TrustStore
from terminald.sim.testpki import TestPkiManifest

ROOTS = resources.files("terminald.pki").joinpath("roots")
# What jpki-card.md §5.2 records for the published J-LIS user-auth roots.
JLIS = {
    "jpki-auth-ca-2015.pem": (1, "9567951b5ca70d84a0fff1d85a87f1aab1340385"),
    "jpki-auth-ca-2023.pem": (0x06D18006, "1ac100f596a3bc8c4b3df195e32699249e9e308a"),
}
SHARED_ROOTS = Path(__file__).resolve().parents[3] / "shared" / "jpki-roots"


def show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["cert", "show", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("name", "expected"), JLIS.items())
def test_jlis_root_serial_and_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, expected: tuple[int, str]
) -> None:
    source = (
        SHARED_ROOTS / name if (SHARED_ROOTS / name).exists() else Path(str(ROOTS.joinpath(name)))
    )
    code, out, _ = show(capsys, str(source))
    serial, key_id = expected
    # An anchor valid now exits 0; the 2015 root (expired 2025) exits 1 and says so.
    valid_now = "(NOT valid now)" not in out
    assert code == (0 if valid_now else 1)
    assert ("verdict:         ok" in out) == valid_now
    assert f"serial:          {serial} " in out
    assert key_id in out
    assert "anchor" in out
    code, out, _ = show(capsys, str(source), "--json")
    info = json.loads(out)
    assert (info["serial"], info["subject_key_id"], info["chain"]) == (serial, key_id, "anchor")


def test_user_certificate_chain_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    trust = str(test_pki.trust_dir)
    for card, chain, verdict, exit_code in (
        ("card-001", "chains", "ok", 0),
        ("forged-issuer", "cert_signature_invalid", "cert_signature_invalid", 1),
        ("unknown-issuer", "unknown_issuer", "unknown_issuer", 1),
        ("expired", "chains", "cert_expired", 1),
        ("not-yet-valid", "chains", "cert_not_yet_valid", 1),
        ("wrong-usage", "chains", "cert_wrong_usage", 1),
    ):
        der = tmp_path / f"{card}.der"
        der.write_bytes(test_pki.load_profile(card).auth_cert)
        code, out, _ = show(capsys, str(der), "--trust", trust, "--json")
        info = json.loads(out)
        assert (code, info["chain"], info["verdict"]) == (exit_code, chain, verdict), info
        assert info["serial"] == test_pki.card(card).serial
        code, out, _ = show(capsys, str(der), "--trust", trust)
        assert code == exit_code and f"verdict:         {verdict}" in out
    # Against the production roots, a test card chains to nothing: untrusted, exit 1.
    code, out, _ = show(capsys, str(tmp_path / "card-001.der"), "--json")
    assert code == 1 and json.loads(out)["chain"] == "unknown_issuer"


@pytest.mark.parametrize(
    "content",
    [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    bad = tmp_path / "bad.crt"
    bad.write_bytes(content)
    code, _, err = show(capsys, str(bad))
    assert code == 2 and str(bad) in err
    code, _, err = show(capsys, str(tmp_path / "missing.pem"))
    assert code == 2 and "cannot read" in err


def test_trust_directory_must_hold_self_signed_ca_certificates(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    store = TrustStore.from_paths([test_pki.trust_dir])
    assert len(store) == 3
    assert len({a.key_id for a in store.anchors()}) == 3  # one DN, three keys
    assert len({a.certificate.subject for a in store.anchors()}) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrustAnchorError, match="no certificate files"):
        TrustStore.from_paths([empty])
    user = tmp_path / "user.pem"
    from cryptography import x509

    user.write_bytes(
        x509.load_der_x509_certificate(test_pki.load_profile("card-001").auth_cert).public_bytes(
            Encoding.PEM
        )
    )
    with pytest.raises(TrustAnchorError, match=r"not a CA|BasicConstraints"):
        TrustStore.from_paths([user])


def test_production_store_holds_the_shipped_roots() -> None:
    store = TrustStore.production()
    assert {a.key_id.hex() for a in store.anchors()} == {k for _, k in JLIS.values()}


def test_cert_show_prints_the_pair_to_enrol_for_twins_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    """Human output too: the issuer an enrolled-cards entry needs, beside the serial."""
    pairs = set()
    for name in ("card-001", "twin"):
        entry = test_pki.card(name)
        der = tmp_path / f"{name}.der"
        der.write_bytes(test_pki.load_profile(name).auth_cert)
        code, out, _ = show(capsys, str(der), "--trust", str(test_pki.trust_dir))
        assert code == 0
        assert f'enrol as:        issuer = "{entry.issuer_key_id}"  serial = {entry.serial}' in out
        code, out, _ = show(capsys, str(der), "--trust", str(test_pki.trust_dir), "--json")
        identity = json.loads(out)["identity"]
        assert identity == {"issuer_key_id": entry.issuer_key_id, "serial": entry.serial}
        pairs.add((identity["issuer_key_id"], identity["serial"]))
    assert len(pairs) == 2  # one serial, two certificates
    # A root is an anchor, not something to enrol.
    root = test_pki.directory / test_pki.root("test-gen3").cert
    code, out, _ = show(capsys, str(root), "--trust", str(test_pki.trust_dir))
    assert code == 0 and "enrol as" not in out


def test_cert_show_with_a_fifo_or_a_fifo_anchor_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], test_pki: TestPkiManifest
) -> None:
    import os

    fifo = tmp_path / "card.der"
    os.mkfifo(fifo)  # nobody writes: reading it would block for ever
    code, out, err = show(capsys, str(fifo))
    assert (code, out) == (2, "") and "FIFO" in err and err.count("\n") == 1
    der = tmp_path / "good.der"
    der.write_bytes(test_pki.load_profile("card-001").auth_cert)
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    os.mkfifo(anchors / "root.pem")
    code, out, err = show(capsys, str(der), "--trust", str(anchors))
    assert (code, out) == (2, "") and "FIFO" in err and err.count("\n") == 1, err
