"""A card's certificate is untrusted input: any mutation of a valid JPKI certificate's
DER yields a defined verdict, in the Authenticator (the daemon's path), in
``verify_certificate`` and in ``terminald cert show``: never an exception.

The mutations (tests/der_mutations.py): byte flips, length bytes, truncation, duplicated,
dropped, truncated, mangled and re-tagged extensions, odd algorithm identifiers, re-tagged
TBS fields; half of them re-signed by the real root so they reach the checks behind the
signature. ``scripts/fuzz`` runs these with 10,000 examples each (docs/testing.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from terminald.cli import main
from terminald.core.auth import Authenticator, AuthResult, AuthSettings, PinRequest
from terminald.core.reasons import Reason
from terminald.pki.anchors import TrustStore
from terminald.pki.certificate import CertificateRejected, CertProblem, verify_certificate
from terminald.sim.card import VirtualJpkiCard
from terminald.sim.inprocess import InProcessConnection
from terminald.sim.testpki import TestPkiManifest
from tests.der_mutations import Certificate, Tlv, encode, mutated, parse
from tests.fuzzing import FUZZ

NOW = datetime.now(UTC)

# What a card's certificate may end in before the PIN: a refusal about the certificate
# (or, for a good one, the PIN request). card_error / internal errors are not on the list.
BEGIN_VERDICTS = {
    Reason.CERT_MALFORMED,
    Reason.UNKNOWN_ISSUER,
    Reason.CERT_SIGNATURE_INVALID,
    Reason.CERT_EXPIRED,
    Reason.CERT_NOT_YET_VALID,
    Reason.CERT_WRONG_USAGE,
    # A mutation down to no bytes at all: the virtual card then has no EF 000A and
    # answers 6A82, which is a card without the JPKI application (terminald.card.jpki).
    Reason.NOT_JPKI_CARD,
}


@dataclasses.dataclass(frozen=True)
class Subject:
    pki: TestPkiManifest
    der: bytes
    key: rsa.RSAPrivateKey
    trust: TrustStore


@pytest.fixture(scope="module")
def subject(test_pki: TestPkiManifest) -> Subject:
    entry = test_pki.card("card-001")
    key = serialization.load_pem_private_key(
        (test_pki.ca_dir / f"{entry.root}.key.pem").read_bytes(), None
    )
    assert isinstance(key, rsa.RSAPrivateKey)
    der = test_pki.load_profile("card-001").auth_cert
    return Subject(test_pki, der, key, TrustStore.from_paths([test_pki.trust_dir]))


def begin(subject: Subject, der: bytes) -> AuthResult | PinRequest:
    profile = dataclasses.replace(subject.pki.load_profile("card-001"), auth_cert=der)
    auth = Authenticator(subject.trust, AuthSettings(terminal_id="fuzz"))
    return auth.begin(InProcessConnection(VirtualJpkiCard(profile)), NOW)


def cert_show(der: bytes) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "card.der"
        path.write_bytes(der)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["cert", "show", str(path)])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_a_mutated_certificate_gets_a_defined_verdict_everywhere(
    subject: Subject, data: st.DataObject
) -> None:
    der = data.draw(mutated(subject.der, subject.key), label="der")
    try:
        verify_certificate(der, subject.trust, NOW)
    except CertificateRejected as exc:
        assert isinstance(exc.problem, CertProblem)
        assert "\n" not in exc.detail
    step = begin(subject, der)
    if isinstance(step, AuthResult):
        # The head's serial may be unreadable (cert_malformed) or the read of the rest
        # fail on a length the card cannot serve (cert_malformed): both are defined.
        assert step.reason in BEGIN_VERDICTS, step
        assert step.reason is not Reason.NOT_JPKI_CARD or not der, step
    code, out, err = cert_show(der)
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in out + err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err  # one clear line


# -- the issue's examples, each on its own ----------------------------------------------


def _aki(extensions: list[Tlv]) -> Tlv:
    aki_oid = bytes([0x55, 0x1D, 0x23])
    for ext in extensions:
        assert ext.children is not None
        if ext.children[0].value == aki_oid:
            return ext
    raise AssertionError("no AKI")


def _crldp(extensions: list[Tlv]) -> Tlv:
    for ext in extensions:
        assert ext.children is not None
        if ext.children[0].value == bytes([0x55, 0x1D, 0x1F]):
            return ext
    raise AssertionError("no CRLDP")


def _repeat_aki(extensions: list[Tlv]) -> None:
    extensions.append(_aki(extensions).copy())


def _break_aki(extensions: list[Tlv]) -> None:
    ext = _aki(extensions)
    assert ext.children is not None
    ext.children[-1].value = b"\x30\x05\x80\x10\x01"  # keyid claims 16 bytes, has 1


def _break_crldp(extensions: list[Tlv]) -> None:
    ext = _crldp(extensions)
    assert ext.children is not None
    ext.children[-1].value = b"\x30\x03\xa0\x01"  # a distribution point cut short


CHANGES = {"repeated": _repeat_aki, "aki": _break_aki, "crldp": _break_crldp}


def broken_certificate(der: bytes, change: str) -> bytes:
    """``der`` with the issue's fault ``change`` (repeated AKI, broken AKI or CRLDP)."""
    cert = Certificate(parse(der)[0])
    CHANGES[change](cert.extensions)
    return encode(cert.root)


@pytest.mark.parametrize("change", CHANGES)
def test_the_issues_certificates_are_malformed_in_begin_and_cert_show(
    subject: Subject, change: str
) -> None:
    der = broken_certificate(subject.der, change)
    step = begin(subject, der)
    assert isinstance(step, AuthResult)
    assert step.reason is Reason.CERT_MALFORMED, step
    assert step.identity is not None and step.identity.serial > 0  # the head still named it
    code, out, err = cert_show(der)
    assert (code, out) == (2, "")
    assert err.startswith("terminald: ") and "cert_malformed" in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_name_attribute_retagged_as_a_bit_string_is_malformed(subject: Subject) -> None:
    """Found by scripts/fuzz (10,000 examples): an OU in the issuerAltName's directoryName
    re-tagged as BIT STRING made cryptography raise TypeError out of the extension decode."""
    ian_oid = bytes([0x55, 0x1D, 0x12])
    cert = Certificate(parse(subject.der)[0])
    (ian,) = [e for e in cert.extensions if e.children and e.children[0].value == ian_oid]
    assert ian.children is not None
    octets = ian.children[-1]
    value = parse(octets.value)[0]  # GeneralNames SEQUENCE
    directory = value.children[0].children[0]  # [4] directoryName → Name SEQUENCE
    attribute = directory.children[-1].children[0]  # last RDN's AttributeTypeAndValue
    attribute.children[1].tag = 0x03  # its UTF8String value, now a BIT STRING
    octets.value = encode(value)
    der = encode(cert.root)
    step = begin(subject, der)
    assert isinstance(step, AuthResult) and step.reason is Reason.CERT_MALFORMED, step
    code, _, err = cert_show(der)
    assert code == 2 and "cert_malformed" in err and err.count("\n") == 1, err


def test_revocation_check_with_a_broken_certificate_says_so_in_one_line(
    subject: Subject, tmp_path: Path
) -> None:
    """The same kind of fault on another path: `revocation check --cert` decodes the
    certificate's AKI and CRLDP too."""
    path = tmp_path / "card.der"
    path.write_bytes(broken_certificate(subject.der, "repeated"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        # The certificate is read before the bundle: any path serves as the bundle here.
        code = main(["revocation", "check", str(path), "--cert", str(path)])
    assert code == 2 and "not a usable certificate" in err.getvalue(), err.getvalue()
    assert "repeated certificate extension" in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_a_crl_with_a_repeated_extension_is_refused_not_raised() -> None:
    """The same kind of fault in `revocation build`'s CRLs: a repeated CRL extension was
    cryptography's DuplicateExtension, which escaped the builder's `except ValueError`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from terminald.backoffice.revocation_builder import CrlRefused, read_crl

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")])
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(NOW)
        .next_update(NOW)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(key, hashes.SHA256())
    )
    root = parse(crl.public_bytes(serialization.Encoding.DER))[0]
    assert root.children is not None and root.children[0].children is not None
    wrapper = next(c for c in root.children[0].children if c.tag == 0xA0)
    assert wrapper.children is not None and wrapper.children[0].children is not None
    extensions = wrapper.children[0].children
    extensions.append(extensions[0].copy())
    with pytest.raises(CrlRefused, match="undecodable CRL extension"):
        read_crl(encode(root), "repeated.crl")
