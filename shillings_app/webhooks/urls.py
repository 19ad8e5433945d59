"""The rules of a webhook URL: ``http`` or ``https``, ASCII, at most 2,048 characters, a host
whose every address the allow list permits (checked at registration and again at each
send)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from shillings_app.webhooks.allow import Allow, IPAddress, NotPermitted, permitted_addresses
from shillings_app.webhooks.resolver import Resolver

MAX_URL = 2048
SCHEMES = ("http", "https")
_BRACKETED = re.compile(r"\[[^\]]*\](:[0-9]*)?")
"""A netloc with an IPv6 literal: nothing but an optional port after its "]" (urlsplit
ignores such text; other clients may not)."""


class BadUrl(ValueError):
    """A webhook URL the rules refuse; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a webhook URL leads: its host and port, and the addresses it resolved to (all
    permitted)."""

    url: str
    host: str
    port: int
    addresses: list[IPAddress]


def parse_url(url: str) -> tuple[str, int]:
    """The host and port of ``url`` if its form is acceptable; else ``BadUrl``."""
    if not url:
        raise BadUrl("url is required")
    if len(url) > MAX_URL:
        raise BadUrl(f"url must be at most {MAX_URL} characters")
    if not url.isascii():
        raise BadUrl("url must be ASCII: percent-encode other characters, an IDN host in punycode")
    if not url.isprintable() or any(c.isspace() for c in url):
        raise BadUrl("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as e:  # brackets: unbalanced, or around an IPv4 address
        raise BadUrl(f"url is malformed ({e})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise BadUrl("url must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise BadUrl("url must not carry a user name or password")
    if "[" in parts.netloc and not _BRACKETED.fullmatch(parts.netloc):
        raise BadUrl("url is malformed (text after the bracketed IPv6 address)")
    try:
        port = parts.port
    except ValueError:
        raise BadUrl("url has an invalid port") from None
    if port == 0 or parts.netloc.endswith(":"):
        raise BadUrl("url has an invalid port")
    host = parts.hostname
    if not host:
        raise BadUrl("url has no host")
    if "%" in host:
        raise BadUrl("url host must not carry a zone id or percent-encoding")
    return host, port or (443 if parts.scheme.lower() == "https" else 80)


async def target(url: str, allow: Allow, resolver: Resolver) -> Target:
    """``url`` checked and its host resolved: ``BadUrl`` for a malformed URL, a host that
    does not resolve, or one that resolves to an address outside ``allow``."""
    host, port = parse_url(url)
    try:
        addresses = await permitted_addresses(host, allow, resolver)
    except NotPermitted as e:
        raise BadUrl(str(e)) from None
    return Target(url, host, port, addresses)
