"""SHILLINGS_WEBHOOK_ALLOW: public addresses, CIDR lists, mapped addresses, malformed lists,
and resolution of names."""

from __future__ import annotations

import ipaddress

import pytest
import pytest_twisted
from twisted.internet import reactor

from shillings_app.webhooks.allow import (
    AllowError,
    NotPermitted,
    parse_allow,
    permitted_addresses,
    resolve,
)
from shillings_app.webhooks.resolver import Resolver

RESOLVER = Resolver(reactor)

PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "::1",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "fc00::1",
    "169.254.169.254",  # link-local (cloud metadata)
    "fe80::1",
    "fec0::1",  # site-local (deprecated, still routed inside some networks)
    "100.64.0.1",  # shared address space (CGNAT)
    "224.0.0.1",  # multicast
    "ff02::1",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # unspecified
    "::",
    "::ffff:127.0.0.1",  # IPv4-mapped forms of the above
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_permits_global_addresses(address: str) -> None:
    assert parse_allow("public").permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_public_refuses_internal_addresses(address: str) -> None:
    assert not parse_allow("public").permits(ipaddress.ip_address(address))


def test_cidr_list() -> None:
    allow = parse_allow(" 127.0.0.0/8 , 10.9.0.0/16,::1/128")
    permitted = ["127.0.0.1", "127.255.0.9", "10.9.200.1", "::1", "::ffff:127.0.0.1"]
    refused = ["8.8.8.8", "10.8.0.1", "::2", "192.168.0.1"]
    assert all(allow.permits(ipaddress.ip_address(a)) for a in permitted)
    assert not any(allow.permits(ipaddress.ip_address(a)) for a in refused)


def test_public_with_extra_network() -> None:
    allow = parse_allow("public,10.9.0.0/16")
    assert allow.permits(ipaddress.ip_address("8.8.8.8"))
    assert allow.permits(ipaddress.ip_address("10.9.0.1"))
    assert not allow.permits(ipaddress.ip_address("10.8.0.1"))
    assert str(allow) == "public,10.9.0.0/16"


def test_ipv6_network_does_not_let_mapped_ipv4_through() -> None:
    allow = parse_allow("::/0")
    assert allow.permits(ipaddress.ip_address("2606:4700::1"))
    assert not allow.permits(ipaddress.ip_address("::ffff:10.0.0.1"))


@pytest.mark.parametrize(
    "text", ["", " , ", "10.0.0.0/33", "10.0.0.1/8", "everything", "public;10.0.0.0/8"]
)
def test_malformed_lists_are_refused(text: str) -> None:
    with pytest.raises(AllowError, match="SHILLINGS_WEBHOOK_ALLOW"):
        parse_allow(text)


@pytest_twisted.ensureDeferred
async def test_resolve_literals_and_names() -> None:
    assert await resolve("127.0.0.1", RESOLVER) == [ipaddress.ip_address("127.0.0.1")]
    assert await resolve("[::1]", RESOLVER) == [ipaddress.ip_address("::1")]
    assert ipaddress.ip_address("127.0.0.1") in await resolve("localhost", RESOLVER)
    with pytest.raises(NotPermitted, match="does not resolve"):
        await resolve("no-such-host.invalid", RESOLVER)


@pytest_twisted.ensureDeferred
async def test_permitted_addresses_checks_every_resolved_address() -> None:
    loopback = parse_allow("127.0.0.0/8,::1/128")
    assert await permitted_addresses("localhost", loopback, RESOLVER)
    with pytest.raises(NotPermitted, match=r"outside the networks webhooks may target \(public\)"):
        await permitted_addresses("localhost", parse_allow("public"), RESOLVER)


@pytest_twisted.ensureDeferred
async def test_refusal_does_not_tell_what_a_name_resolves_to() -> None:
    """The message goes back to the user: naming the refused addresses would make webhook
    registration an oracle for the operator's internal DNS (``db.internal`` -> 10.x)."""
    with pytest.raises(NotPermitted) as refused:
        await permitted_addresses("localhost", parse_allow("public"), RESOLVER)
    assert "127.0.0.1" not in str(refused.value) and "::1" not in str(refused.value)
    assert "host 'localhost' resolves to an address outside" in str(refused.value)
