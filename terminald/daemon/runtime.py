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
from terminald.core.access import AccessPolicy, AnyCard
from terminald.core.auth import Authenticator
from terminald.core.door import DoorSettings
from terminald.core.terminal import Mode, TerminalSettings
from terminald.daemon.live_revocation import signed_floor
from terminald.store.enrolled import EnrolledFileError, load_enrolled
from terminald.store.revocation_store import RevocationStore
from terminald.store.trusted_time import TrustedTimeFile


@dataclass(frozen=True)
class Runtime:
    config: Config
    authenticator: Authenticator
    terminal: TerminalSettings
    mode: Mode
    access: AccessPolicy
    revocation: RevocationStore | None


def terminal_settings(config: Config) -> TerminalSettings:
    door = DoorSettings(
        open_ms=config.relay.open_ms,
        held_open_s=config.door.held_open_s,
        contact_wired=config.door.contact,
        rex_wired=config.door.rex,
        tamper_wired=config.door.tamper,
        tamper_blocks_grants=config.door.tamper_blocks_grants,
    )
    return TerminalSettings(pin_timeout_s=config.card.pin_timeout_s, door=door)


def build_runtime(
    config: Config,
    *,
    reader_supports_extended: bool,
    trusted_time: TrustedTimeFile | None = None,
    previous: Runtime | None = None,
    check_only: bool = False,
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
    access: AccessPolicy = AnyCard()
    if config.access.policy == "enrolled":
        try:
            access = load_enrolled(config.access.enrolled)
        except EnrolledFileError as exc:
            errors.append(f"access.enrolled: {exc}")
    if errors or trust is None:
        raise ConfigError(errors)
    try:
        settings = config.auth_settings(reader_supports_extended=reader_supports_extended)
    except ValueError as exc:
        raise ConfigError([f"terminal: {exc}"]) from exc
    authenticator = Authenticator(
        trust,
        settings,
        revocation=revocation,
        access=access.refusal,
        trusted_time=lambda: signed_floor(trusted_time, revocation),
    )
    return Runtime(
        config,
        authenticator,
        terminal_settings(config),
        Mode(config.terminal.mode),
        access,
        revocation,
    )
