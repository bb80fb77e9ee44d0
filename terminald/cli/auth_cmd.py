"""``terminald auth``: one authentication of the card on a PC/SC reader."""

from __future__ import annotations

import argparse
import getpass
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from terminald.cli.common import CliError, Groups, Subparsers, print_json
from terminald.cli.revocation_store_opts import add_store_arguments, open_store
from terminald.cli.trust import add_trust_argument, load_trust
from terminald.core.trusted_time import newest

if TYPE_CHECKING:
    from terminald.backends.pcsc import PcscReader
    from terminald.backends.reader_profiles import ReaderProfiles
    from terminald.core.auth import PinRequest
    from terminald.daemon.transaction import Transaction

EXIT_OK = 0
EXIT_REFUSED = 1
# A whole transaction takes 1-3 s on a real card over NFC (docs/benchmarks.md); this
# leaves room for slow readers and still ends a session with a card that went silent.
DEFAULT_TIMEOUT = 20.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds, got {text}")
    return value


def register(commands: Subparsers, groups: Groups) -> None:
    auth = commands.add_parser(
        "auth",
        help="authenticate the card on a reader once and print the verdict",
        description="Wait for a My Number Card, verify its user-authentication certificate, "
        "ask for the PIN (unless too few tries are left), have the card sign a fresh "
        "challenge and print the verdict. The card's part is bounded by --timeout: a card "
        "that stops answering ends in card_error, and the card is let go. "
        "Exit status 0 = ok, 1 = refused (a verdict other than ok, no card in time, or "
        "the card did not answer in time), 2 = usage error (e.g. no such reader: the "
        "readers present are listed).",
    )
    auth.add_argument(
        "--reader",
        metavar="NAME",
        help="PC/SC reader name or prefix (default: every reader, the first card seen); "
        "when none matches, the readers present are listed",
    )
    add_trust_argument(auth)
    add_store_arguments(auth, required=False)
    auth.add_argument(
        "--pin-stdin", action="store_true", help="read the PIN from the first line of stdin"
    )
    auth.add_argument("--json", action="store_true", help="print one JSON object")
    auth.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a card (default 30)",
    )
    auth.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="how long the card may take, all its answers together, once it is on the "
        f"reader (the PIN typing does not count; default {DEFAULT_TIMEOUT:g})",
    )
    auth.add_argument(
        "--pin-floor",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="refuse before VERIFY when tries left <= this "
        "(default 1: never use a person's last try)",
    )
    auth.add_argument(
        "--extended-reads", action="store_true", help="read the certificate with one extended APDU"
    )
    auth.add_argument(
        "--terminal-id",
        default=socket.gethostname(),
        help="bound into the challenge (default: hostname)",
    )
    auth.add_argument("--purpose", default="gate", help="bound into the challenge (default: gate)")
    auth.set_defaults(func=run)


def _read_pin(args: argparse.Namespace, request: PinRequest) -> str | None:
    if args.pin_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None
    try:
        return getpass.getpass(f"PIN ({request.tries_left} tries left): ")
    except (EOFError, KeyboardInterrupt):
        return None


class _Bounded:
    """One transaction on a worker thread, with the card's time bounded.

    The card calls run on the worker; the PIN is read here, on the main thread (getpass,
    Ctrl-C), and its typing is not charged to the card. When the card's time runs out
    the worker is abandoned where it waits (a PC/SC call cannot be interrupted from
    outside, and pcsc-lite holds the context's lock while it waits): the command ends,
    and when its process exits pcscd drops its connection and releases the card.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._pins: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def pin_source(self, request: PinRequest) -> str | None:  # on the worker
        self._events.put(("pin", request))
        return self._pins.get()

    def run(
        self,
        work: Callable[[Callable[[PinRequest], str | None]], Transaction],
        read_pin: Callable[[PinRequest], str | None],
    ) -> Transaction | None:
        """The transaction, or None when the card did not finish within the timeout."""

        def worker() -> None:
            try:
                self._events.put(("done", work(self.pin_source)))
            except BaseException as exc:  # handed to the main thread, raised there
                self._events.put(("error", exc))

        threading.Thread(target=worker, name="auth-card", daemon=True).start()
        left = self.timeout
        while True:
            started = time.monotonic()
            try:
                kind, payload = self._events.get(timeout=max(0.0, left))
            except queue.Empty:
                return None
            left -= time.monotonic() - started
            if kind == "pin":
                self._pins.put(read_pin(payload))
            elif kind == "done":
                return cast("Transaction", payload)
            else:
                raise payload


def _as_json(tx: Transaction, reader: str) -> dict[str, Any]:
    from terminald.core.reasons import DESCRIPTIONS

    result, identity = tx.result, tx.result.identity
    return {
        "verdict": result.reason.value,
        "detail": result.detail or DESCRIPTIONS[result.reason],
        "reader": reader,
        "serial": identity.serial if identity else None,
        "issuer_key_id": identity.issuer_key_id.hex()
        if identity and identity.issuer_key_id
        else None,
        "not_after": identity.not_after.isoformat() if identity and identity.not_after else None,
        "cached": identity.cached if identity else False,
        "pin_tries_left": result.pin_tries_left,
        "revocation": result.revocation,
        "apdus": tx.apdus,
        "bytes_sent": tx.bytes_sent,
        "bytes_received": tx.bytes_received,
        "elapsed_ms": round(tx.elapsed_ms, 3),
    }


def reader_profiles() -> ReaderProfiles | None:
    """hw/readers.toml, for each reader's max_response; unusable: none, with a warning."""
    from terminald.backends.reader_profiles import ReaderProfileError, load_reader_profiles

    try:
        return load_reader_profiles()
    except ReaderProfileError as exc:
        print(f"warning: {exc}; no reader limits applied", file=sys.stderr)
        return None


def _check_reader(reader: PcscReader, wanted: str | None) -> None:
    """A reader asked for by name must be there now; if not, say which ones are."""
    from terminald.card.errors import CardError

    if wanted is None:
        return  # the first reader, whenever one is plugged in
    try:
        present = reader.list_readers()
    except CardError as exc:
        raise CliError(f"PC/SC service unavailable: {exc}", exit_code=EXIT_REFUSED) from exc
    if not any(name == wanted or name.startswith(wanted) for name in present):
        listed = "; ".join(repr(name) for name in present) if present else "none"
        raise CliError(f"--reader {wanted!r}: no such reader; readers present: {listed}")


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: building the parser (for every command, including
    # relay-safe after a crash) must not pay for cryptography, numpy or pyscard.
    from terminald.backends.pcsc import PcscReader  # the only hardware import
    from terminald.core.auth import Authenticator, AuthResult, AuthSettings, CardIdentity
    from terminald.core.reasons import DESCRIPTIONS, Reason
    from terminald.daemon.transaction import Transaction, run_transaction

    trust = load_trust(args.trust)
    try:
        settings = AuthSettings(
            terminal_id=args.terminal_id,
            purpose=args.purpose,
            pin_floor=args.pin_floor,
            extended_reads=args.extended_reads,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    # Without a store the verdict says revocation "not_checked"; the daemon requires one.
    # With one, its issue time is a signed time the clock may not be behind (as in the
    # daemon, which also keeps the newest such time across restarts).
    store = open_store(args)
    authenticator = Authenticator(
        trust,
        settings,
        revocation=store,
        trusted_time=(lambda: newest(store.signed_time)) if store is not None else None,
    )
    reader = PcscReader(args.reader, reader_profiles())
    _check_reader(reader, args.reader)
    if not args.json:
        print(f"Waiting for a card on {reader.name} ...", flush=True)
    if not reader.wait_for_card(args.wait):
        raise CliError(f"no card on {reader.name} within {args.wait:g} s", exit_code=EXIT_REFUSED)
    name = reader.name  # resolved by the wait: the reader's real name

    shown: list[CardIdentity] = []

    def show(identity: CardIdentity) -> None:
        # The pair, as an enrolled-cards entry wants it (issuer first: the serial alone
        # names no one).
        valid = f", valid until {identity.not_after:%Y-%m-%d}" if identity.not_after else ""
        print(f"Card: {identity.describe()}{valid}", flush=True)
        shown.append(identity)

    def pin_source(request: PinRequest) -> str | None:
        if not args.json:
            show(request.identity)
        return _read_pin(args, request)

    bounded = _Bounded(args.timeout)
    done = bounded.run(lambda pins: run_transaction(reader, authenticator, pins), pin_source)
    if done is None:
        # The worker may still be inside a PC/SC call holding the context: leave it
        # (closing would wait on that call); this process's exit lets the card go.
        tx = Transaction(
            AuthResult(
                Reason.CARD_ERROR,
                f"the card did not answer within {args.timeout:g} s; gave up and let the "
                "card go (take it off the reader)",
            ),
            0,
            0,
            0,
            args.timeout * 1000,
        )
    else:
        tx = done
        reader.close()
    result = tx.result
    if args.json:
        print_json(_as_json(tx, name))
    else:
        detail = result.detail or DESCRIPTIONS[result.reason]
        if result.identity is not None and not shown:  # refused before the PIN
            show(result.identity)
        print(f"Verdict: {result.reason.value} — {detail}")
        if result.pin_tries_left is not None and result.reason is not Reason.OK:
            print(f"PIN tries left: {result.pin_tries_left}")
    return EXIT_OK if result.granted else EXIT_REFUSED
