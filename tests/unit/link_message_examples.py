"""One valid instance of every link message type, for the round-trip and malformed tests."""

from __future__ import annotations

from datetime import date

from terminald.link import messages as m

ROW = m.AuditRow(
    seq=41,
    at="2026-11-30T08:00:00.123456+00:00",
    terminal="gate-1",
    kind="granted",
    reason=None,
    issuer=bytes.fromhex("1a" * 20),
    serial="340282366920938463463374607431768211456",  # beyond 64 bits
    label="reception desk",
    detail="",
    evidence=m.Evidence(challenge=b"c" * 48, signature=b"s" * 256, certificate=b"\x30" * 1600),
)

EXAMPLES: dict[str, m.Message] = {
    "error": m.Error(id=9, code="bad_message", reason="status: unknown field(s) 'x'"),
    "ack": m.Ack(id=10, detail="restarting"),
    "install.result": m.InstallResult(
        id=11, kind="config", installed=False, version=None, code="invalid", reason="a\nb"
    ),
    "hello": m.Hello(id=1, protocol=1, software="terminald-host 0.9"),
    "hello.reply": m.HelloReply(
        id=1,
        terminal="gate-1",
        software="terminald 0.9.0",
        protocol=1,
        revocation_version=12,
        revocation_issued=1_795_000_000,
        enrolment_version=0,
        config_version=3,
        config_digest=bytes(range(32)),
        capabilities=("bulk", "broadcast"),
    ),
    "status": m.Status(id=2),
    "status.reply": m.StatusReply(
        id=2,
        mode="lockdown",
        door="open",
        reader="problem",
        reader_problem="no reader",
        alarms=("held_open", "tamper"),
        clock=1_795_000_000.25,
        trusted_time=1_794_999_000,
        clock_problem=None,
        revocation="grace",
        revocation_version=None,
        revocation_valid_until=1_795_600_000,
        link=(("crc_errors", 3), ("retransmits", 2**40)),
    ),
    "time.nonce": m.TimeNonce(id=3),
    "time.nonce.reply": m.TimeNonceReply(id=3, nonce=bytes(16), expires_s=60.0),
    "time": m.TimeSet(id=4, object=b"\x89" + bytes(200), force=True),
    "time.reply": m.TimeReply(
        id=4, applied=True, clock_set=False, offset=-12.5, code=None, reason="applied"
    ),
    "mode": m.SetMode(id=5, mode="emergency_open"),
    "mode.reply": m.ModeReply(id=5, mode="emergency_open"),
    "test": m.Test(id=6, output="buzzer", duration_ms=500),
    "test.result": m.TestResult(id=6, output="buzzer", done=True, detail=""),
    "restart": m.Restart(id=7),
    "audit.pull": m.AuditPull(id=8, cursor=40, max_rows=256),
    "audit.rows": m.AuditRows(
        id=8,
        rows=(
            ROW,
            m.AuditRow(seq=45, at="2026-11-30T08:01:00+09:00", terminal="gate-1", kind="gap"),
        ),
        next=45,
        more=True,
        gap=m.Gap(first=42, last=44),
    ),
    "audit.ack": m.AuditAck(id=12, cursor=45),
    "event": m.Event(
        id=2**32 - 1,
        row=m.AuditRow(
            seq=46,
            at=ROW.at,
            terminal="t",
            kind="granted",
            subject="E1001",
            attrs=(("passback", "entry"), ("product", "A")),
        ),
    ),
    "age.query": m.AgeQuery(
        id=13,
        issuer=bytes.fromhex("1a" * 20),
        serial=340282366920938463463374607431768211456,
        age=20,
        date=date(2026, 11, 30),
    ),
    "age.answer": m.AgeReply(id=13, certificate="valid", over=True),
    "presence": m.PresenceRelay(
        id=14, subject="E1001", direction="exit", at=1_795_000_000_123_456, terminal="gate-out"
    ),
    "partners": m.Partners(id=15, seen=(("gate-in", 2.5), ("gate-out", 0.0))),
}
