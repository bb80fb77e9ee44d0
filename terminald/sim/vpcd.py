"""The virtual card on the wire: the vsmartcard vpcd protocol, so the real pcscd sees it.

Protocol (shared/reference/pcsc-in-ci.md §3): the card connects to vpcd's TCP listener
(``Virtual PCD 00 00`` on 35963, ``00 01`` on 35964). Each message both ways is a 2-byte
big-endian length and a payload. A 1-byte payload from vpcd is a control code: ``00`` power
off, ``01`` power on, ``02`` reset (no reply to any of these), ``04`` ATR request (reply
the ATR). Anything longer is a command APDU; the reply is the response APDU. Closing the
socket is card removal; connecting again is insertion.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from terminald.sim.card import VirtualJpkiCard

logger = logging.getLogger(__name__)

DEFAULT_PORT = 35963
_POWER_OFF, _POWER_ON, _RESET, _GET_ATR = 0x00, 0x01, 0x02, 0x04
_CONNECT_TIMEOUT = 1.0
# Longer than pcscd's ~400 ms presence poll (pcsc-in-ci.md §4), so the removal is seen.
SWAP_GAP = 0.6
# Reconnect quickly after a pcscd restart, without spinning while it is down.
_BACKOFF_MIN, _BACKOFF_MAX = 0.02, 0.25


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        # Bookworm's vpcd sends length and payload in two writes without TCP_NODELAY; with
        # delayed ACK that costs 44 ms per APDU. Linux clears QUICKACK after use, so set it
        # before every recv (pcsc-in-ci.md pitfall 1).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        chunks += chunk
    return chunks


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    # One write for length and payload: two would meet the peer's delayed ACK.
    sock.sendall(struct.pack(">H", len(payload)) + payload)


class VpcdCard:
    """A :class:`VirtualJpkiCard` in a vpcd slot, served by a daemon thread.

    The slot starts inserted (pass ``inserted=False`` to start empty); call :meth:`start`.
    It reconnects in a loop with a short backoff whenever vpcd goes away (pcscd restart).
    ``realtime=True`` sleeps for the profile's timing model before each response.
    ``on_connection(True/False)`` is called from the thread when the link to vpcd comes up
    or goes down.
    """

    def __init__(
        self,
        card: VirtualJpkiCard,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        realtime: bool = False,
        inserted: bool = True,
        on_connection: Callable[[bool], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._card = card
        self._realtime = realtime
        self._on_connection = on_connection
        self._cond = threading.Condition()
        self._inserted = inserted
        self._stopping = False
        self._sock: socket.socket | None = None
        self._connected = False
        self._thread: threading.Thread | None = None

    # -- control (any thread) -------------------------------------------------------------

    @property
    def card(self) -> VirtualJpkiCard:
        return self._card

    @property
    def connected(self) -> bool:
        """True while a TCP link to vpcd is up (pcscd notices the card within ~0.5 s)."""
        return self._connected

    @property
    def inserted(self) -> bool:
        return self._inserted

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"vpcd-card-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Remove the card and end the thread."""
        with self._cond:
            self._stopping = True
            self._inserted = False
            self._shutdown_socket()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def insert(self) -> None:
        with self._cond:
            self._inserted = True
            self._cond.notify_all()

    def remove(self, timeout: float = 2.0) -> None:
        """Take the card out: close the link and stay out until :meth:`insert`.

        pcscd notices within its ~400 ms presence poll; wait for it to report the reader
        empty before inserting again if pcscd must see the removal.
        """
        with self._cond:
            self._inserted = False
            self._shutdown_socket()
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._connected, timeout)

    def swap(self, card: VirtualJpkiCard, out_for: float = SWAP_GAP) -> None:
        """Put another card in the slot.

        If a card is inserted it is removed first and the slot stays empty for ``out_for``
        seconds: pcscd polls presence every ~400 ms, so a faster swap may go unnoticed and
        pcscd would go on using the old card's handle (no hand swaps cards that fast).
        """
        was_inserted = self._inserted
        if was_inserted:
            self.remove()
        with self._cond:
            self._card = card
        if was_inserted:
            time.sleep(out_for)
            self.insert()

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected, timeout)

    def wait_disconnected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._connected, timeout)

    def __enter__(self) -> VpcdCard:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _shutdown_socket(self) -> None:
        # shutdown() wakes the thread blocked in recv(); close() from here would not.
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._inserted)
                if self._stopping:
                    return
            try:
                sock = socket.create_connection((self.host, self.port), _CONNECT_TIMEOUT)
            except OSError:
                with self._cond:  # pcscd not (yet) listening: wait, but wake on stop()
                    self._cond.wait_for(lambda: self._stopping, backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_MIN
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._stopping or not self._inserted:
                    sock.close()
                    continue
                self._sock = sock
                self._connected = True
                self._cond.notify_all()
            logger.info("virtual card connected to vpcd %s:%d", self.host, self.port)
            self._notify(True)
            try:
                self._serve(sock)
            except OSError as exc:  # ConnectionError included: removal or pcscd gone
                logger.debug("vpcd link ended: %s", exc)
            except Exception:
                # A bug in the card or a listener must not kill the slot for good.
                logger.exception("virtual card failed; dropping the vpcd link")
            finally:
                self._disconnected(sock)

    def _disconnected(self, sock: socket.socket) -> None:
        sock.close()
        card = self._card
        if card.powered:
            card.power_off()  # out of the field (or the reader is gone): no power
        with self._cond:
            self._sock = None
            self._connected = False
            self._cond.notify_all()
        logger.info("virtual card disconnected from vpcd %s:%d", self.host, self.port)
        self._notify(False)

    def _notify(self, up: bool) -> None:
        if self._on_connection is not None:
            self._on_connection(up)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            (length,) = struct.unpack(">H", _recv_exact(sock, 2))
            message = _recv_exact(sock, length)
            card = self._card
            if len(message) == 1:
                self._control(sock, card, message[0])
            elif message:
                if not card.powered:
                    # vpcd powers the card before an APDU; if one arrives anyway, answer as a
                    # card freshly powered rather than drop the link.
                    logger.warning("APDU before power-on; powering the virtual card")
                    card.power_on()
                response = card.process(message)
                if self._realtime:
                    time.sleep(card.delay_for(message, response))
                _send_frame(sock, response)

    @staticmethod
    def _control(sock: socket.socket, card: VirtualJpkiCard, code: int) -> None:
        if code == _GET_ATR:  # polled every ~400 ms: not logged
            _send_frame(sock, card.atr)
        elif code == _POWER_ON:
            card.power_on()
        elif code == _POWER_OFF:
            card.power_off()
        elif code == _RESET:
            card.reset()
        else:
            logger.warning("unknown vpcd control byte %02X", code)
