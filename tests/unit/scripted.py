"""A connection that plays back a script of (expected command, response) pairs."""

from __future__ import annotations


class ScriptedConnection:
    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        assert self.script, f"unexpected APDU {apdu.hex()}"
        expected, response = self.script.pop(0)
        assert apdu == expected, f"sent {apdu.hex()}, expected {expected.hex()}"
        self.sent.append(apdu)
        return response[:-2], int.from_bytes(response[-2:], "big")

    def done(self) -> bool:
        return not self.script
