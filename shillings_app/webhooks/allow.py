"""Which networks webhook URLs may target (``SHILLINGS_WEBHOOK_ALLOW``), checked on the
addresses a host name resolves to, at registration and again at each send: a webhook URL
must not become an open proxy into the operator's own network (SSRF)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from shillings_app.webhooks.resolver import Resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PUBLIC = "public"


class AllowError(ValueError):
    """``SHILLINGS_WEBHOOK_ALLOW`` is malformed."""


class NotPermitted(ValueError):
    """A webhook host resolves to no address, or to one the allow list refuses; the message
    says which."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped ``::ffff:a.b.c.d`` or 6to4
    ``2002:aabb:ccdd::``), which is where a connection to it really goes."""
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour
    return None


def is_public(ip: IPAddress) -> bool:
    """Globally routable: not loopback, private, link-local, IPv6 site-local (``fec0::/10``,
    which ``is_global`` lets through), shared (CGNAT), multicast, reserved or unspecified,
    and neither is the IPv4 address it embeds."""
    inner = embedded_ipv4(ip)
    if inner is not None and not is_public(inner):
        return False
    return ip.is_global and not (
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_private
    )


@dataclass(frozen=True)
class Allow:
    """The permitted targets: every public address (``public``) and/or these networks."""

    public: bool
    networks: tuple[IPNetwork, ...]

    def permits(self, ip: IPAddress) -> bool:
        """True if a webhook may be sent to ``ip``; an IPv4-mapped IPv6 address is judged as
        the IPv4 address it maps."""
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.public and is_public(ip):
            return True
        return any(ip in net for net in self.networks)

    def __str__(self) -> str:
        return ",".join(([PUBLIC] if self.public else []) + [str(n) for n in self.networks])


def parse_allow(text: str) -> Allow:
    """``public`` and/or CIDRs (``10.0.0.0/8``, ``::1/128``, a bare address), comma-separated;
    ``AllowError`` naming the bad item."""
    public = False
    networks: list[IPNetwork] = []
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise AllowError("SHILLINGS_WEBHOOK_ALLOW is empty: give `public` or CIDRs")
    for item in items:
        if item.lower() == PUBLIC:
            public = True
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as e:
            raise AllowError(
                f"SHILLINGS_WEBHOOK_ALLOW: {item!r} is neither `public` nor a CIDR ({e})"
            ) from None
    return Allow(public, tuple(networks))


async def resolve(host: str, resolver: Resolver) -> list[IPAddress]:
    """The addresses ``host`` (a name or an address literal) resolves to, in order, without
    duplicates; names are resolved by ``resolver`` (its own threads). ``NotPermitted`` when
    it does not resolve; ``ResolverBusy`` when too many resolutions are in progress."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    try:
        infos = await resolver.getaddrinfo(host)
    except (OSError, UnicodeError) as e:
        raise NotPermitted(f"host {host!r} does not resolve ({e})") from None
    found: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    return list(found)


async def permitted_addresses(host: str, allow: Allow, resolver: Resolver) -> list[IPAddress]:
    """``resolve(host)`` if the allow list permits every address it resolves to (a name with
    one refused address is refused: the client picks among them); else ``NotPermitted``."""
    addresses = await resolve(host, resolver)
    if not addresses:
        raise NotPermitted(f"host {host!r} does not resolve")
    if not all(allow.permits(ip) for ip in addresses):
        # The message reaches the user: the addresses are not in it, or registration would
        # tell anyone what the operator's internal names resolve to.
        raise NotPermitted(
            f"host {host!r} resolves to an address outside the networks webhooks may target"
            f" ({allow})"
        )
    return addresses
