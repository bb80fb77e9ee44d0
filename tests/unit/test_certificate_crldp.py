"""A verified certificate names its CRL partitions: the DER names coverage is checked with."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from terminald.cli import main
from terminald.pki.anchors import TrustStore
from terminald.pki.certificate import (
    CertificateRejected,
    CertProblem,
    crl_distribution_points,
    indirect_crl_only,
    verify_certificate,
)
from terminald.revocation.coverage import parse_name_text
from terminald.sim.testpki import TestPkiManifest

NOW = datetime.now(UTC)
PART = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Part 7")])
RDN = x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "Part 9")])


def reissue(
    pki: TestPkiManifest, extension: x509.ExtensionType | None, name: str = "card-001"
) -> x509.Certificate:
    """card-001's certificate, its CRLDP replaced by ``extension`` (or dropped), re-signed
    by its real root so the chain still verifies."""
    entry = pki.card(name)
    cert = x509.load_der_x509_certificate(pki.load_profile(name).auth_cert)
    root = pki.ca_dir / f"{entry.root}.key.pem"
    key = serialization.load_pem_private_key(root.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())  # type: ignore[arg-type]
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for ext in cert.extensions:
        if ext.oid != ExtensionOID.CRL_DISTRIBUTION_POINTS:
            builder = builder.add_extension(ext.value, ext.critical)
    if extension is not None:
        builder = builder.add_extension(extension, False)
    return builder.sign(key, hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def points(*dps: x509.DistributionPoint) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(list(dps))


def test_a_test_pki_card_names_its_municipality(test_pki: TestPkiManifest) -> None:
    trust = TrustStore.from_paths([test_pki.trust_dir])
    entry = test_pki.card("card-001")
    verified = verify_certificate(test_pki.load_profile("card-001").auth_cert, trust, NOW)
    assert verified.crl_distribution_points == (parse_name_text(str(entry.crl_distribution_point)),)


def test_relative_names_resolve_and_indirect_points_are_left_out(
    test_pki: TestPkiManifest,
) -> None:
    cert = reissue(
        test_pki,
        points(
            x509.DistributionPoint([x509.DirectoryName(PART)], None, None, None),
            x509.DistributionPoint(None, RDN, None, None),
            x509.DistributionPoint(
                [x509.DirectoryName(PART)], None, None, [x509.DirectoryName(PART)]
            ),
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://x/y")], None, None, None
            ),
        ),
    )
    assert crl_distribution_points(cert) == (
        PART.public_bytes(),
        x509.Name([*cert.issuer.rdns, RDN]).public_bytes(),
    )
    assert crl_distribution_points(reissue(test_pki, None)) == ()


def test_an_undecodable_crldp_is_a_malformed_certificate(test_pki: TestPkiManifest) -> None:
    garbage = x509.UnrecognizedExtension(ExtensionOID.CRL_DISTRIBUTION_POINTS, b"\x30\x03\x02\x01")
    cert = reissue(test_pki, garbage)
    trust = TrustStore.from_paths([test_pki.trust_dir])
    with pytest.raises(CertificateRejected) as caught:
        verify_certificate(der(cert), trust, NOW)
    assert caught.value.problem is CertProblem.MALFORMED
    with pytest.raises(CertificateRejected) as direct:
        crl_distribution_points(cert)
    assert direct.value.problem is CertProblem.MALFORMED


def test_cert_show_names_an_undecodable_extension_without_a_traceback(
    test_pki: TestPkiManifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = x509.UnrecognizedExtension(ExtensionOID.CRL_DISTRIBUTION_POINTS, b"\x30\x03\x02\x01")
    path = tmp_path / "broken.der"
    path.write_bytes(der(reissue(test_pki, garbage)))
    assert main(["cert", "show", str(path), "--trust", str(test_pki.trust_dir)]) == 2
    assert "undecodable certificate extension" in capsys.readouterr().err


def test_a_certificate_with_only_indirect_crl_points_is_never_covered(
    test_pki: TestPkiManifest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Its only point names a separate cRLIssuer: that issuer's CRL lists it, its own
    # issuer's need not. Whole-issuer data must not answer "good" for it.
    indirect = x509.DistributionPoint(
        [x509.DirectoryName(PART)], None, None, [x509.DirectoryName(PART)]
    )
    direct = x509.DistributionPoint([x509.DirectoryName(PART)], None, None, None)
    trust = TrustStore.from_paths([test_pki.trust_dir])
    only = reissue(test_pki, points(indirect))
    verified = verify_certificate(der(only), trust, NOW)
    assert verified.crl_distribution_points == () and verified.indirect_crl_only
    assert indirect_crl_only(only)
    assert not indirect_crl_only(reissue(test_pki, points(indirect, direct)))
    assert not indirect_crl_only(reissue(test_pki, None))  # no CRLDP: the issuer's CRLs

    # revocation check --cert answers "not covered" from a whole-issuer bundle.
    entry = test_pki.card("card-001")
    key = tmp_path / "bo.key"
    crl, bundle, cert = tmp_path / "g.crl", tmp_path / "g.bundle", tmp_path / "card.der"
    cert.write_bytes(der(only))
    pki = str(test_pki.directory)
    assert main(["revocation", "keygen", "--out", str(key)]) == 0
    assert main(["sim", "crl", "--pki", pki, "--root", str(entry.root), "--out", str(crl)]) == 0
    build = ["revocation", "build", "--crl", str(crl), "--key", str(key), "--version", "1"]
    assert main([*build, "--trust", str(test_pki.trust_dir), "--out", str(bundle)]) == 0
    capsys.readouterr()
    check = ["revocation", "check", str(bundle), "--pubkey", f"{key}.pub"]
    assert main([*check, "--cert", str(cert)]) == 1
    assert "not covered: " in capsys.readouterr().out
    cert.write_bytes(der(reissue(test_pki, None)))
    assert main([*check, "--cert", str(cert)]) == 0
    assert capsys.readouterr().out.strip() == "good"
