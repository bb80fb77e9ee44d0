"""``terminald doctor``: what is wrong with this terminal's setup, and how to fix it.

An installer or a technician runs it on the Pi, possibly while the daemon runs. So every
check here only looks: it lists PC/SC readers but never connects to one (the daemon holds
the card exclusively), it reads the board's pin map but never claims a GPIO pin, it opens
the serial port and closes it without changing its settings, and it reads the revocation
state from a private copy (the store's own loader clears a writer's stray temporaries,
which could be the running daemon's write in progress).

Each check is a function returning :class:`Finding` objects. What a check learns from the
machine (the clock, pcscd, ``/dev``, the disk, imports) comes through an
:class:`Environment`, so tests inject their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from terminald.config import Config, ConfigError, load_config
from terminald.config_files import check_files

if TYPE_CHECKING:
    from terminald.store.revocation_store import RevocationStoreConfig, StoreStatus

from terminald.daemon.doctor_enrolment import check_enrolment
from terminald.daemon.doctor_env import (
    ANCHOR_WARN,
    MIN_FREE_BYTES,
    REVOCATION_WARN,
    Environment,
    Finding,
    PcscUnreachable,
    Report,
    Status,
    iso,
)
from terminald.daemon.doctor_hardware import (
    check_gpio,
    check_pcsc,
    check_serial,
)
from terminald.daemon.doctor_link import check_link_key
from terminald.daemon.doctor_time import check_clock, check_trusted_time

# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ConfigResult:
    config: Config | None
    findings: list[Finding]
    unreadable: bool = False


def check_config(path: Path) -> ConfigResult:
    """The file loads (``load_config``) and what it names opens (``check_files``)."""
    fix_edit = f"edit {path}, then run `terminald check-config {path}`"
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return ConfigResult(
            None,
            [
                Finding(
                    "config",
                    "fail",
                    f"cannot read {path}: {exc.strerror or exc}",
                    "give the right file with --config FILE, or install one: "
                    "`sudo cp systemd/terminald.toml.example /etc/terminald/terminald.toml`",
                )
            ],
            unreadable=True,
        )
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return ConfigResult(
            None,
            [Finding("config", "fail", f"{path} is not valid TOML: {exc}", fix_edit)],
            unreadable=True,
        )
    try:
        config = load_config(path)
    except ConfigError as exc:
        message = f"{path}: {len(exc.messages)} problem(s); the checks that need it are skipped"
        return ConfigResult(
            None, [Finding("config", "fail", message, fix_edit, tuple(exc.messages))]
        )
    problems = check_files(config)
    if problems:
        finding = Finding(
            "config",
            "fail",
            f"{path} loads, but {len(problems)} file(s) it names are unusable",
            fix_edit,
            tuple(problems),
        )
    else:
        finding = Finding("config", "ok", f"{path} loads and the files it names open")
    return ConfigResult(config, [finding])


# --------------------------------------------------------------------------- trust


def check_trust(config: Config, env: Environment) -> Finding:
    """The anchors load; at least one is valid now; say when one expires within a year."""
    from terminald.config_files import trust_store

    try:
        anchors = trust_store(config).anchors()
    except ConfigError as exc:
        return Finding(
            "trust",
            "fail",
            "the trust anchors do not load",
            "fix trust.anchors: each file must be a self-signed CA certificate (PEM or DER)",
            tuple(exc.messages),
        )
    now = env.now()
    details = []
    valid = []
    soon = []
    for anchor in anchors:
        cert = anchor.certificate
        not_after = cert.not_valid_after_utc
        if anchor.valid_at(now):
            valid.append(anchor)
            state = "valid"
            if not_after - now < ANCHOR_WARN:
                soon.append(anchor)
                state = f"expires in {(not_after - now).days} days"
        elif now < cert.not_valid_before_utc:
            state = "not yet valid"
        else:
            state = "expired"
        details.append(
            f"{cert.subject.rfc4514_string()} (key {anchor.key_id.hex()[:16]}…, "
            f"{anchor.source}): not after {iso(not_after)}, {state}"
        )
    counted = f"{len(anchors)} anchor(s), {len(valid)} valid now"
    if not valid:
        return Finding(
            "trust",
            "fail",
            f"{counted}: every card will be refused",
            "add the current J-LIS root (https://www.jpki.go.jp/ca/index.html) to "
            "trust.anchors, or set trust.include_builtin = true",
            tuple(details),
        )
    if soon:
        return Finding(
            "trust",
            "warn",
            f"{counted}; {len(soon)} expire(s) within 365 days",
            "get the next J-LIS root generation and add it to trust.anchors before then",
            tuple(details),
        )
    return Finding("trust", "ok", counted, "", tuple(details))


# --------------------------------------------------------------------------- revocation


def check_revocation(config: Config, env: Environment) -> Finding:
    """What the daemon's revocation store would report now, read from a private copy."""
    finding = _read_revocation(config, env)
    return finding if isinstance(finding, Finding) else _judge_revocation(config, env, finding)


def _read_revocation(config: Config, env: Environment) -> Finding | StoreStatus:
    """A finding when there is nothing to judge; else the status of a verified copy."""
    from terminald.config_files import revocation_store_config
    from terminald.files import read_limited
    from terminald.store.revocation_store import MAX_STATE_SIZE

    section = config.revocation
    try:
        store_config = revocation_store_config(config)
    except ConfigError as exc:
        return Finding(
            "revocation",
            "fail",
            "the back-office keys do not load",
            "fix revocation.backoffice_keys: PEM Ed25519 public keys",
            tuple(exc.messages),
        )
    if store_config is None:
        return Finding(
            "revocation",
            "warn",
            "revocation is NOT checked (revocation.required = false, no back-office key)",
            "on a real terminal, list the back office's key in revocation.backoffice_keys",
        )
    apply_fix = (
        "have the back office push a bundle, or run `terminald revocation apply BUNDLE "
        f"--revocation-state {section.state_path} --backoffice-key PUB`"
    )
    bad: Status = "fail" if section.required else "warn"
    path = section.state_path
    try:
        data = read_limited(path, MAX_STATE_SIZE)  # hook (robust-input): no FIFO, no 3 GiB
    except FileNotFoundError:
        consequence = "every card is refused" if section.required else "verdicts say so"
        return Finding(
            "revocation", bad, f"no revocation data yet ({path}): {consequence}", apply_fix
        )
    except OSError as exc:
        return Finding(
            "revocation",
            bad,
            f"cannot read {path}: {exc.strerror or exc}",
            f"make {path} readable by the daemon's user",
        )
    return _status_of_copy(data, store_config, env.now())


def _judge_revocation(config: Config, env: Environment, status: StoreStatus) -> Finding:
    section, path, now = config.revocation, config.revocation.state_path, env.now()
    apply_fix = (
        "have the back office push a bundle, or run `terminald revocation apply BUNDLE "
        f"--revocation-state {section.state_path} --backoffice-key PUB`"
    )
    bad: Status = "fail" if section.required else "warn"
    if not status.available:
        problem = status.problem
        return Finding("revocation", bad, f"{path} is unusable: {problem}", apply_fix)
    from terminald.revocation.freshness import Freshness

    assert status.valid_until is not None
    summary = (
        f"version {status.version}, valid until {iso(status.valid_until)} "
        f"({status.revoked} revoked, {status.hold} on hold)"
    )
    grace = timedelta(hours=section.grace_hours)
    if status.freshness is Freshness.STALE:
        return Finding(
            "revocation",
            bad,
            f"{summary}: stale beyond the grace of {section.grace_hours:g} h",
            apply_fix,
        )
    if status.freshness is Freshness.GRACE:
        return Finding(
            "revocation",
            "warn",
            f"{summary}: expired, admitting within the grace until "
            f"{iso(status.valid_until + grace)}",
            apply_fix,
        )
    if status.valid_until - now < REVOCATION_WARN:
        return Finding(
            "revocation", "warn", f"{summary}: expires within 24 h", "check the back-office feed"
        )
    return Finding("revocation", "ok", summary)


def _status_of_copy(data: bytes, store_config: RevocationStoreConfig, now: datetime) -> StoreStatus:
    """``RevocationStore.status`` over a copy of the state, in a private directory.

    Loading the real path would delete temporaries beside it, and one may be the running
    daemon's write in progress.
    """
    import dataclasses

    from terminald.store.revocation_store import RevocationStore

    with tempfile.TemporaryDirectory(prefix="terminald-doctor-") as tmp:
        copy = Path(tmp) / store_config.state_path.name
        copy.write_bytes(data)
        with _quiet("terminald.store.revocation_store"):
            store = RevocationStore(dataclasses.replace(store_config, state_path=copy))
        status = store.status(now)
        problem = status.problem.replace(str(copy), str(store_config.state_path))
    return dataclasses.replace(status, problem=problem)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The store logs its load errors; the doctor reports them itself, once."""
    logger = logging.getLogger(name)
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


# --------------------------------------------------------------------------- state dir


def check_state_dir(config: Config, env: Environment) -> Finding:
    directory = config.state.dir
    user = env.user()
    fix_create = (
        f"sudo systemd-tmpfiles --create (for /var/lib/terminald), or create {directory} "
        f"owned by the daemon's user with mode 0700"
    )
    try:
        info = directory.stat()
    except FileNotFoundError:
        return Finding("state", "fail", f"{directory} does not exist", fix_create)
    except OSError as exc:
        return Finding("state", "fail", f"{directory}: {exc.strerror or exc}", fix_create)
    if not stat.S_ISDIR(info.st_mode):
        return Finding("state", "fail", f"{directory} is not a directory", fix_create)
    if not env.access(directory, os.W_OK | os.X_OK):
        return Finding(
            "state",
            "fail",
            f"user {user} cannot write in {directory}",
            f"sudo chown terminald: {directory} (and run the doctor as the daemon's user: "
            "`sudo -u terminald terminald doctor`)",
        )
    mode = stat.S_IMODE(info.st_mode)
    free = env.disk_free(directory)
    problems = []
    fixes = []
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f"mode {mode:04o} lets others write the revocation store and audit log")
        fixes.append(f"sudo chmod go-w {directory}")
    if free < MIN_FREE_BYTES:
        problems.append(f"only {free / 1024 / 1024:.1f} MiB free")
        fixes.append("free space on that file system (journal: `journalctl --vacuum-size=50M`)")
    summary = f"{directory}: mode {mode:04o}, {free / 1024 / 1024:.0f} MiB free"
    if problems:
        return Finding("state", "warn", f"{directory}: {'; '.join(problems)}", "; ".join(fixes))
    return Finding("state", "ok", summary)


# --------------------------------------------------------------------------- all


def run_checks(config_path: Path, env: Environment | None = None) -> Report:
    """Every check, in the order a technician would fix things."""
    env = env or Environment()
    loaded = check_config(config_path)
    findings = list(loaded.findings)
    config = loaded.config
    findings += check_pcsc(config, env)
    if config is not None:
        findings += check_gpio(config, env)
        findings.append(check_serial(config, env))
        findings.append(check_link_key(config))
    findings += check_clock(env)
    if config is not None:
        from terminald.core.trusted_time import SignedTime

        findings.append(check_trust(config, env))
        revocation = _read_revocation(config, env)
        signed = None
        if isinstance(revocation, Finding):
            findings.append(revocation)
        else:
            findings.append(_judge_revocation(config, env, revocation))
            if revocation.available and revocation.issued_at is not None:
                label = f"revocation data version {revocation.version}'s issue time"
                signed = SignedTime(revocation.issued_at, label)
        findings.append(check_trusted_time(config, env.now(), signed))
        findings.append(check_enrolment(config, env.now()))
        findings.append(check_state_dir(config, env))
    return Report(config_path, tuple(findings), loaded.unreadable)


LABELS: Final[dict[str, str]] = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}


def format_report(report: Report) -> list[str]:
    """Lines for a terminal: ``OK   pcscd  ...`` / ``FAIL serial ...`` then ``→ fix: ...``."""
    width = max((len(f.check) for f in report.findings), default=0)
    indent = " " * (5 + width + 2)
    lines = []
    for f in report.findings:
        lines.append(f"{LABELS[f.status]:<4} {f.check:<{width}}  {f.message}")
        lines += [f"{indent}- {d}" for d in f.details]
        if f.status != "ok" and f.fix:
            lines.append(f"{indent}→ fix: {f.fix}")
    counts = {s: sum(f.status == s for f in report.findings) for s in LABELS}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s)")
    return lines


__all__ = [
    "Environment",
    "Finding",
    "PcscUnreachable",
    "Report",
    "check_clock",
    "check_config",
    "check_enrolment",
    "check_gpio",
    "check_pcsc",
    "check_revocation",
    "check_serial",
    "check_state_dir",
    "check_trust",
    "format_report",
    "run_checks",
]
