"""A group-commit batch's answers go out in one write per connection."""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.tcp import Connection

from shillings_proto import pb
from shillings_proto.eager import eager
from shillings_proto.framing import ShillingsServerProtocol, answers_gathered


def _server() -> tuple[ShillingsServerProtocol, list[bytes], socket.socket]:
    """A server protocol on an eager transport over a socket pair; its sends recorded."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    protocol = ShillingsServerProtocol()
    transport = Connection(ours, protocol, reactor)
    transport.connected = True
    eager(transport)
    sent: list[bytes] = []

    def record(data: bytes) -> int:
        sent.append(bytes(data))
        return len(data)

    transport.writeSomeData = record  # type: ignore[method-assign]
    protocol.makeConnection(transport)
    return protocol, sent, theirs


def _answer(protocol: ShillingsServerProtocol, request_id: int) -> None:
    request = pb.Request(request_id=request_id, command=pb.TPU)
    protocol._send(pb.Response(status=pb.Status(code=200)), request)


def test_answers_gathered_go_out_in_one_write() -> None:
    protocol, sent, peer = _server()
    try:
        with answers_gathered():
            for request_id in (1, 2, 3):
                _answer(protocol, request_id)
            assert sent == []
        assert len(sent) == 1
        _answer(protocol, 4)
        assert len(sent) == 2
        frames, data = [], sent[0]
        while data:
            size = int.from_bytes(data[:4], "big")
            frames.append(pb.Response.FromString(data[4 : 4 + size]).request_id)
            data = data[4 + size :]
        assert frames == [1, 2, 3]
    finally:
        protocol.transport.socket.close()
        peer.close()
