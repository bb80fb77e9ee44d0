"""``verify``: check an audit log's hash chain and every grant's evidence, read-only.

What it checks (docs/audit.md): the records from the anchor on, their seqs one after the
other; each record's ``prev`` is the hash before it (the anchor's for the first) and its
``hash`` is SHA-256(prev || its canonical encoding) recomputed from the stored fields; each
``gap`` record's evicted range lies at or below the anchor; each record with evidence: the
certificate still hashes to the SHA-256 the record committed to, its public key verifies
the signature over the challenge message, and (with ``trust``) it chains to a trusted
root whose key id is the record's issuer.

What it cannot detect: records cut from the tail (the chain before them is intact), or
the whole file replaced by another self-consistent one; the back office keeps the last
hash it pulled and compares (``head``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminald.store.audit_chain import GENESIS, HASHED, record_hash
from terminald.store.audit_reader import AuditReader
from terminald.store.audit_rows import SCHEMA_VERSION, AuditError, attrs_of

if TYPE_CHECKING:
    from terminald.pki.anchors import TrustStore

MAX_PROBLEMS = 1000  # named one by one; beyond, only counted (a bounded report)
_CERT_CACHE = 4096  # certificate verdicts remembered (a card taps many times)
_SELECT = (  # our own column names; nothing from outside is put in the text
    f"SELECT {', '.join(HASHED)}, prev, hash, der FROM events "  # noqa: S608
    "LEFT JOIN certificates ON sha256 = cert_sha256 WHERE seq > ? ORDER BY seq LIMIT 512"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong; ``seq`` None when it is about the file, not a record."""

    seq: int | None
    what: str

    def __str__(self) -> str:
        return self.what if self.seq is None else f"seq {self.seq}: {self.what}"


@dataclass
class VerifyReport:
    """The outcome. ``anchor``: (seq, hash) verification started from; ``head``: the last
    record's seq and hash (what a back office compares with the last it pulled);
    ``records``: how many were checked; ``evidence_checked``: records whose evidence was
    checked; ``chains_checked``: whether certificates were checked against trusted roots."""

    path: Path
    anchor: tuple[int, bytes] = (0, GENESIS)
    head: tuple[int, bytes] = (0, GENESIS)
    records: int = 0
    evidence_checked: int = 0
    chains_checked: bool = False
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0  # beyond MAX_PROBLEMS

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, seq: int | None, what: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(seq, what))
        else:
            self.more_problems += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "ok": self.ok,
            "anchor": {"seq": self.anchor[0], "hash": self.anchor[1].hex()},
            "head": {"seq": self.head[0], "hash": self.head[1].hex()},
            "records": self.records,
            "evidence_checked": self.evidence_checked,
            "chains_checked": self.chains_checked,
            "problems": [{"seq": p.seq, "problem": p.what} for p in self.problems],
            "more_problems": self.more_problems,
        }


def verify(path: Path, trust: TrustStore | None = None) -> VerifyReport:
    """Check the log at ``path``. Raises AuditError when it cannot be read at all (no
    file, not a database, a newer schema); every problem in a readable file is in the
    report, named with its seq."""
    reader = AuditReader(path)
    try:
        report = VerifyReport(path, chains_checked=trust is not None)
        if reader.version < SCHEMA_VERSION:
            report.add(
                None,
                f"schema version {reader.version}: not chained yet (the daemon chains it "
                "when it next opens the log)",
            )
            return report
        db = reader.connection
        try:
            # One snapshot: the daemon may append and evict while this reads page by page.
            db.execute("BEGIN")
            try:
                _walk(db, report, trust)
            finally:
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(f"audit log {path}: {exc}") from exc
        return report
    finally:
        reader.close()


def _walk(db: sqlite3.Connection, report: VerifyReport, trust: TrustStore | None) -> None:
    row = db.execute("SELECT seq, hash FROM anchor WHERE one = 1").fetchone()
    anchor = (0, GENESIS) if row is None else (int(row[0]), bytes(row[1]))
    report.anchor = report.head = anchor
    expected, prev = anchor[0] + 1, anchor[1]
    certificates: dict[bytes, str | None] = {}
    after = -1
    while True:
        rows = db.execute(_SELECT, (after,)).fetchall()
        if not rows:
            break
        for r in rows:
            values, stored_prev, stored_hash, der = r[: len(HASHED)], r[-3], r[-2], r[-1]
            seq = int(values[0])
            if seq <= anchor[0]:
                report.add(seq, f"present although at or below the anchor (seq {anchor[0]})")
            elif seq != expected:
                missing = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}-{seq - 1}"
                report.add(seq, f"{missing} missing before it (deleted)")
            if stored_prev is None or bytes(stored_prev) != prev:
                report.add(seq, "does not chain to the record before it (prev differs)")
            if stored_hash is None or record_hash(bytes(stored_prev or b""), values) != bytes(
                stored_hash
            ):
                report.add(seq, "hash does not match its contents (altered)")
            _check_record(seq, values, der, report, trust, certificates)
            report.records += 1
            prev = bytes(stored_hash or b"")
            report.head = (seq, prev)
            expected = seq + 1
        after = int(rows[-1][0])


def _check_record(
    seq: int,
    values: tuple[Any, ...],
    der: bytes | None,
    report: VerifyReport,
    trust: TrustStore | None,
    certificates: dict[bytes, str | None],
) -> None:
    named = dict(zip(HASHED, values, strict=True))
    if named["kind"] == "gap":
        _check_gap(seq, named, report)
    challenge, signature, digest = named["challenge"], named["signature"], named["cert_sha256"]
    if challenge is None and signature is None and digest is None:
        return
    report.evidence_checked += 1
    if challenge is None or signature is None or digest is None:
        report.add(seq, "evidence incomplete")
        return
    if der is None:
        report.add(seq, "evidence: its certificate is missing from the file")
        return
    if hashlib.sha256(der).digest() != bytes(digest):
        report.add(seq, "evidence: the stored certificate is not the one the record names")
        return
    from terminald.pki.challenge import evidence_valid  # cryptography: only when needed

    if not evidence_valid(bytes(der), bytes(challenge), bytes(signature)):
        report.add(seq, "evidence: the signature does not verify with the certificate's key")
    if trust is not None:
        if bytes(digest) not in certificates:
            if len(certificates) >= _CERT_CACHE:
                certificates.clear()
            certificates[bytes(digest)] = _issuer_of(bytes(der), trust)
        issuer = certificates[bytes(digest)]
        if issuer is None:
            report.add(seq, "evidence: the certificate does not chain to a trusted root")
        elif named["issuer"] is not None and named["issuer"] != issuer:
            report.add(seq, f"evidence: issued by {issuer}, the record says {named['issuer']}")


def _issuer_of(der: bytes, trust: TrustStore) -> str | None:
    """The key id (hex) of the trusted root whose key signed this certificate, or None.
    Validity dates are not checked: the grant was decided at its own time."""
    from terminald.pki.anchors import DECODE_ERRORS
    from terminald.pki.certificate import CertificateRejected, find_issuer, parse_certificate

    refusals: tuple[type[Exception], ...] = (CertificateRejected, *DECODE_ERRORS)
    try:
        return find_issuer(parse_certificate(der), trust).key_id.hex()
    except refusals:
        return None


def _check_gap(seq: int, named: dict[str, Any], report: VerifyReport) -> None:
    """A gap that names evicted seqs must name seqs before its own."""
    attrs = dict(attrs_of(named["attrs"]))
    if "first" not in attrs:
        return  # a gap of the memory queue: records lost before they had a seq
    try:
        first, last = int(attrs["first"]), int(attrs["last"])
    except (KeyError, ValueError):
        report.add(seq, "gap record with an unreadable range")
        return
    if not first <= last < seq:
        report.add(seq, f"gap record names seqs {first}-{last}, not before itself")
