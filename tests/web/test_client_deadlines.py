"""The protocol client's request timeouts (``ShillingsClientProtocol``): one timer per
connection, on a ``task.Clock``, fails each unanswered request at its own deadline."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from shillings_proto import pb
from shillings_proto.framing import RequestTimeoutError, ShillingsClientProtocol


def _client() -> tuple[ShillingsClientProtocol, Clock]:
    clock = Clock()
    client = ShillingsClientProtocol(clock)
    client.makeConnection(StringTransport())
    return client, clock


def _answer(client: ShillingsClientProtocol, request_id: int) -> None:
    response = pb.Response(request_id=request_id, status=pb.Status(code=200))
    client.stringReceived(response.SerializeToString())


def _outcomes(ds: list) -> list[str]:
    seen: list[str] = []
    for d in ds:
        d.addCallbacks(
            lambda r, seen=seen: seen.append(f"answered {r.request_id}"),
            lambda f, seen=seen: seen.append(f"timed out ({f.trap(RequestTimeoutError).__name__})"),
        )
    return seen


def _health() -> pb.Request:
    return pb.Request(command=pb.HLT, health=pb.HealthRequest())


def test_each_request_times_out_at_its_own_deadline_with_one_timer():
    client, clock = _client()
    first = client.call(_health(), timeout=5.0)  # request 1, deadline 5
    clock.advance(1.0)
    second = client.call(_health(), timeout=5.0)  # request 2, deadline 6
    third = client.call(_health(), timeout=2.0)  # request 3, deadline 3: earlier
    assert len(clock.getDelayedCalls()) == 1
    seen = _outcomes([first, second, third])
    clock.advance(1.99)
    assert seen == []
    clock.advance(0.01)  # t = 3
    assert seen == ["timed out (RequestTimeoutError)"] and client.in_flight == 2
    _answer(client, 1)
    assert seen[-1] == "answered 1"
    clock.advance(2.99)  # t = 5.99: request 1's deadline passed, but it was answered
    assert len(seen) == 2 and client.in_flight == 1
    clock.advance(0.01)  # t = 6
    assert seen[-1] == "timed out (RequestTimeoutError)" and client.in_flight == 0
    assert clock.getDelayedCalls() == []  # nothing waits: no timer left


def test_answered_requests_leave_no_failure_behind():
    client, clock = _client()
    calls = [client.call(_health(), timeout=1.0) for _ in range(50)]
    seen = _outcomes(calls)
    for request_id in range(1, 51):
        _answer(client, request_id)
    clock.advance(10.0)
    assert seen == [f"answered {n}" for n in range(1, 51)]
    assert clock.getDelayedCalls() == [] and client._deadlines == []


def test_a_lost_connection_cancels_the_timer():
    client, clock = _client()
    lost = client.call(_health(), timeout=1.0)
    lost.addErrback(lambda f: None)
    client.connectionLost(None)
    assert clock.getDelayedCalls() == []
