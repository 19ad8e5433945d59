"""The README's curl walk-through is run in order by new users: each example must be sent
by the user the contract lets do it (SPEC §6), or it answers an error the reader cannot
explain."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _walkthrough() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```sh\n")[1:]]
    return next(b for b in blocks if "/v1/signup" in b)


def _jars(sh: str) -> dict[str, str]:
    """Each cookie jar the walk-through fills (``-c JAR``) and the email logged in to it."""
    logins = re.findall(r"-c (\S+) -X POST \$B/v1/login .*?\n.*?\"email\":\"([^\"]+)\"", sh)
    return {jar: email for jar, email in logins}


def _sent_with(sh: str, route: str) -> str:
    """The jar (``-b JAR``) of the example POSTing to ``route``."""
    match = re.search(rf"-b (\S+) -X POST \$B{re.escape(route)}\b", sh)
    assert match, f"no example of POST {route}"
    return match.group(1)


def test_the_refund_example_is_sent_by_the_payments_receiver():
    sh = _walkthrough()
    jars = _jars(sh)
    receiver = re.search(r"/v1/pay .*\n.*\"receiver_email\":\"([^\"]+)\"", sh)
    assert receiver, "no pay example"
    assert jars[_sent_with(sh, "/v1/refunds")] == receiver.group(1)


def test_captures_and_voids_are_sent_by_the_holds_receiver():
    sh = _walkthrough()
    jars = _jars(sh)
    receiver = re.search(r"/v1/holds -H.*\n.*\"receiver_email\":\"([^\"]+)\"", sh)
    assert receiver, "no hold example"
    for route in ("/v1/holds/5b0c…/capture", "/v1/holds/5b0c…/void"):
        assert jars[_sent_with(sh, route)] == receiver.group(1)
