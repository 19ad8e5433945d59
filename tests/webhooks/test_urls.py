"""The form of a webhook URL (``parse_url``): what a sloppy or hostile URL cannot slip past,
and what it may not turn into (an unexpected error instead of ``BadUrl``)."""

from __future__ import annotations

import pytest

from shillings_app.webhooks.urls import BadUrl, parse_url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[127.0.0.1]/hook", "malformed"),  # urlsplit: IPv4 address in brackets
        ("http://[8.8.8.8]/hook", "malformed"),
        ("http://[/hook", "malformed"),  # urlsplit: Invalid IPv6 URL
        ("http://[::1/hook", "malformed"),
        ("http://a]b/hook", "malformed"),
        ("http://[2606:4700:4700::1111]127.0.0.1/hook", "malformed"),  # junk after "]"
        ("http://[fe80::1%25eth0]/hook", "zone"),
        ("http://[2606:4700:4700::1111%25lo]/hook", "zone"),
        ("http://8.8.8.8%2e/hook", "zone"),
        ("http://8.8.8.8:0/hook", "invalid port"),
        ("http://8.8.8.8:/hook", "invalid port"),
    ],
)
def test_refused(url: str, why: str) -> None:
    with pytest.raises(BadUrl, match=why):
        parse_url(url)


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("http://8.8.8.8/hook", ("8.8.8.8", 80)),
        ("HTTPS://Example.COM/hook", ("example.com", 443)),
        ("http://[2606:4700:4700::1111]:8443/hook", ("2606:4700:4700::1111", 8443)),
        ("https://8.8.8.8:65535", ("8.8.8.8", 65535)),
    ],
)
def test_accepted(url: str, where: tuple[str, int]) -> None:
    assert parse_url(url) == where
