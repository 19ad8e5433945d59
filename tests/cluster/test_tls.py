"""Between web processes and app servers the cluster speaks mutual TLS: the app servers'
TCP ports serve nobody without a certificate from the deployment's CA."""

from __future__ import annotations

import socket
import struct

from shillings_proto import pb
from tests.cluster.cluster import Cluster
from tests.stack.helpers import Client


def test_web_processes_reach_the_app_servers_over_tls(cluster: Cluster) -> None:
    client = Client(cluster.port)
    try:
        status, body, _ = client.call("GET", "/healthz")
    finally:
        client.close()
    assert status == 200 and body["checks"]["app"] == "ok", body
    assert "ssl:host=127.0.0.1" in (cluster.var / "etc" / "programs.conf").read_text()


def test_a_plain_tcp_client_gets_no_answer(cluster: Cluster) -> None:
    frame = pb.Request(command=pb.HLT, health=pb.HealthRequest()).SerializeToString()
    for n in (0, 1):
        with socket.create_connection(("127.0.0.1", cluster.port_base + 50 + n), 5) as s:
            s.sendall(struct.pack(">I", len(frame)) + frame)
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        # Nothing, or a TLS alert record (content type 21): never a Shillings frame.
        assert answer == b"" or answer[0] == 21, answer[:20]
