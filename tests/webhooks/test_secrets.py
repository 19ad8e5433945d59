"""Webhook secrets: the Standard Webhooks format, sealing round trip, refusals."""

from __future__ import annotations

import base64
import os
from datetime import UTC

import pytest

from shillings_app.webhooks.secrets import (
    SealError,
    WebhookKeyError,
    load_key,
    load_or_create_key,
    new_secret,
    seal,
    unseal,
)

KEY = bytes(range(32))


def test_new_secret_is_whsec_base64_of_24_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :], validate=True)) == 24
    assert new_secret() != secret


def test_seal_round_trip_with_random_nonce() -> None:
    secret = new_secret()
    sealed = seal(secret, KEY, "wh_1")
    assert secret.encode() not in sealed
    assert unseal(sealed, KEY, "wh_1") == secret
    assert seal(secret, KEY, "wh_1")[:12] != sealed[:12]


@pytest.mark.parametrize(
    ("key", "webhook_id"),
    [(bytes(32), "wh_1"), (KEY, "wh_2")],
    ids=["wrong key", "another webhook's row"],
)
def test_unseal_refuses_wrong_key_or_aad(key: bytes, webhook_id: str) -> None:
    sealed = seal("whsec_abc", KEY, "wh_1")
    with pytest.raises(SealError):
        unseal(sealed, key, webhook_id)


def test_unseal_refuses_altered_bytes() -> None:
    sealed = bytearray(seal("whsec_abc", KEY, "wh_1"))
    sealed[-1] ^= 1
    with pytest.raises(SealError):
        unseal(bytes(sealed), KEY, "wh_1")
    with pytest.raises(SealError):
        unseal(b"short", KEY, "wh_1")


def test_load_key(tmp_path) -> None:
    path = tmp_path / "webhook.key"
    path.write_text(base64.b64encode(KEY).decode() + "\n")
    assert load_key(str(path)) == KEY


@pytest.mark.parametrize(
    "content",
    [b"", b"not base64!", base64.b64encode(os.urandom(16)), base64.b64encode(os.urandom(33))],
    ids=["empty", "not base64", "16 bytes", "33 bytes"],
)
def test_load_key_refuses_anything_else(tmp_path, content: bytes) -> None:
    path = tmp_path / "webhook.key"
    path.write_bytes(content)
    with pytest.raises(WebhookKeyError, match="base64 of 32 bytes"):
        load_key(str(path))


def test_load_key_missing_file(tmp_path) -> None:
    with pytest.raises(WebhookKeyError, match="cannot read"):
        load_key(str(tmp_path / "absent"))


def test_standard_webhooks_accepts_the_secret() -> None:
    from datetime import datetime

    from standardwebhooks import Webhook

    hook = Webhook(new_secret())
    at = datetime.now(UTC)
    signature = hook.sign("msg_1", at, '{"a":1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }
    assert hook.verify('{"a":1}', headers) == {"a": 1}


def test_load_or_create_key(tmp_path) -> None:
    path = tmp_path / "sub" / "webhook.key"
    key = load_or_create_key(str(path))
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(str(path)) == key
    assert not list(path.parent.glob("*.tmp"))
