"""The console's serial port through pyserial (the one place the console touches it).

``open_console_port`` gives a port whose ``read`` returns within ``READ_TIMEOUT_S`` (so
the console thread can check for idle sessions and for its stop) and whose ``write``
gives up after ``WRITE_TIMEOUT_S`` (a terminal that stopped reading, e.g. XOFF forever,
must not wedge the thread). pyserial's errors are ``SerialException``, an ``OSError``.
"""

from __future__ import annotations

import fcntl
import struct
import termios
from typing import Any, Final

import serial

READ_TIMEOUT_S: Final = 0.25
WRITE_TIMEOUT_S: Final = 2.0


def open_console_port(path: str, baud: int) -> Any:
    """8N1 at ``baud``, no flow control; a pty path works too (tests). Raises OSError."""
    return serial.Serial(path, baud, timeout=READ_TIMEOUT_S, write_timeout=WRITE_TIMEOUT_S)


def window_size(port: Any) -> tuple[int, int]:
    """(columns, rows) the line reports; (0, 0) when it reports none, as serial lines do."""
    try:
        packed = fcntl.ioctl(port.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
    except (OSError, AttributeError, ValueError):
        return 0, 0
    rows, columns = struct.unpack("HHHH", packed)[:2]
    return columns, rows
