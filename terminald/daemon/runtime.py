"""What a configuration turns into at run time: everything but the hardware.

Built at start, again on SIGHUP, and by ``terminald check-config``: one validation for
all three, so a file check-config passes is one the daemon starts with. Building reads
every file the configuration names (trust anchors, back-office keys, the revocation
store's keys, the enrolled cards) and checks the state directories;
any problem raises ConfigError with one message per problem, and the daemon keeps
the runtime it had.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminald.config import Config, ConfigError
from terminald.config_files import check_directories, revocation_store_config, trust_store
from terminald.core.auth import Authenticator
from terminald.core.door import DoorSettings
from terminald.core.policy import Policy
from terminald.core.terminal import Mode, TerminalSettings
from terminald.daemon.live_revocation import signed_floor
from terminald.daemon.policy_wiring import PolicyShared, build_policy
from terminald.enrolment.model import Enrolment
from terminald.store.enrolment_db import EnrolmentStore
from terminald.store.revocation_store import RevocationStore
from terminald.store.trusted_time import TrustedTimeFile


@dataclass(frozen=True)
class Runtime:
    config: Config
    authenticator: Authenticator
    terminal: TerminalSettings
    mode: Mode
    policy: Policy
    revocation: RevocationStore | None
    # Who is enrolled (the signed set's store, the old file in memory, or None for
    # any_card), and the signed set's store itself, which a reload keeps.
    enrolment: Enrolment | None = None
    enrolment_store: EnrolmentStore | None = None
    shared: PolicyShared | None = None


def terminal_settings(config: Config) -> TerminalSettings:
    door = DoorSettings(
        open_ms=config.relay.open_ms,
        held_open_s=config.door.held_open_s,
        contact_wired=config.door.contact,
        rex_wired=config.door.rex,
        tamper_wired=config.door.tamper,
        tamper_blocks_grants=config.door.tamper_blocks_grants,
    )
    return TerminalSettings(
        pin_timeout_s=config.card.pin_timeout_s,
        door=door,
        purpose=config.terminal.purpose,
        vend_enable_s=config.vending.enable_s,
        vend_complete_wired=config.vending.complete_input,
    )


def build_runtime(
    config: Config,
    *,
    reader_supports_extended: bool,
    trusted_time: TrustedTimeFile | None = None,
    previous: Runtime | None = None,
    check_only: bool = False,
    shared: PolicyShared | None = None,
) -> Runtime:
    """Each runtime starts with an empty certificate cache: a reload may have removed
    a trust anchor, and a cached certificate must not outlive the root that vouched
    for it. ``trusted_time`` (the persisted newest signed time) joins the revocation
    data's issue time as the floor the clock may not fall below.

    The revocation store of ``previous`` (the running runtime, on a reload) is kept
    when its configuration did not change: it follows its file by itself (live pickup),
    and loading a large set again would only cost time. ``check_only`` (check-config)
    validates the store's configuration but opens no store: opening one clears a
    writer's stray temporaries and raises the rollback mark, which only the daemon and
    installers may do."""

    errors = check_directories(config)
    trust = None
    try:
        trust = trust_store(config)
    except ConfigError as exc:
        errors += exc.messages
    revocation = None
    try:
        store_config = revocation_store_config(config)
        running = previous.revocation if previous is not None else None
        if store_config is not None and running is not None and running.config == store_config:
            revocation = running
        elif check_only:
            revocation = None
        else:
            revocation = RevocationStore(store_config) if store_config else None
    except ConfigError as exc:
        errors += exc.messages
    # What outlives a reload (anti-passback, attendance, the age service) comes from the
    # running runtime; a first build starts it.
    shared = shared or (previous.shared if previous is not None else None) or PolicyShared()
    parts, problems = build_policy(
        config,
        shared,
        previous.enrolment_store if previous is not None else None,
        check_only=check_only,
    )
    errors += problems
    if errors or trust is None or parts is None:
        raise ConfigError(errors)
    try:
        settings = config.auth_settings(reader_supports_extended=reader_supports_extended)
    except ValueError as exc:
        raise ConfigError([f"terminal: {exc}"]) from exc
    authenticator = Authenticator(
        trust,
        settings,
        revocation=revocation,
        access=parts.policy.decide,
        trusted_time=lambda: signed_floor(trusted_time, revocation),
    )
    return Runtime(
        config,
        authenticator,
        terminal_settings(config),
        Mode(config.terminal.mode),
        parts.policy,
        revocation,
        parts.enrolment,
        parts.store,
        shared,
    )
