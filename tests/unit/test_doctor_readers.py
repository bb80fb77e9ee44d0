"""``terminald doctor``'s reader section: which readers are watched, and their profiles."""

from __future__ import annotations

from pathlib import Path

from terminald.config import load_config
from terminald.daemon.doctor import check_pcsc
from terminald.sim.testpki import TestPkiManifest
from tests.unit.test_doctor import env, only, write_config

DUAL = ["Acme Dual Contact 00 00", "Acme Dual Contactless 00 01"]


def unset_reader(tmp_path: Path, pki: TestPkiManifest) -> Path:
    path = write_config(tmp_path, pki.trust_dir)
    text = path.read_text()
    assert 'reader = "Virtual PCD"\n' in text
    path.write_text(text.replace('reader = "Virtual PCD"\n', ""))
    return path


def test_unset_reader_lists_every_reader_as_watched(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    config = load_config(unset_reader(tmp_path, test_pki))
    assert config.card.reader is None
    findings = check_pcsc(config, env(tmp_path, list_readers=lambda: list(DUAL)))
    reader = only(findings, "reader")
    assert reader.status == "ok" and "watching every reader (2)" in reader.message
    assert reader.details == tuple(f"watched: {r!r}" for r in DUAL)
    profiles = [f for f in findings if f.check == "reader-profile"]
    assert [DUAL[0] in profiles[0].message, DUAL[1] in profiles[1].message] == [True, True]


def test_a_named_reader_says_which_others_are_not_watched(
    tmp_path: Path, test_pki: TestPkiManifest
) -> None:
    config = load_config(write_config(tmp_path, test_pki.trust_dir, card={"reader": DUAL[1]}))
    findings = check_pcsc(config, env(tmp_path, list_readers=lambda: list(DUAL)))
    reader = only(findings, "reader")
    assert reader.status == "ok" and "the only one watched" in reader.message
    assert reader.details == (f"not watched: {DUAL[0]!r}",)


def test_unset_reader_with_no_reader_fails(tmp_path: Path, test_pki: TestPkiManifest) -> None:
    config = load_config(unset_reader(tmp_path, test_pki))
    reader = only(check_pcsc(config, env(tmp_path, list_readers=lambda: [])), "reader")
    assert reader.status == "fail" and "plug in the reader" in reader.fix
