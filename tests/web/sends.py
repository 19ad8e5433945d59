"""Recording what a transport hands to its socket, one entry per send."""

from __future__ import annotations

from typing import Any


def recording_sends(transport: Any) -> list[bytes]:
    """The data of each ``writeSomeData`` (each send) of ``transport`` from now on."""
    sent: list[bytes] = []
    original = transport.writeSomeData

    def record(data: bytes) -> object:
        sent.append(bytes(data))
        return original(data)

    transport.writeSomeData = record
    return sent
