"""Webhook signing secrets: made in the Standard Webhooks ``whsec_`` format and stored sealed
with AES-256-GCM under a key that lives in a file, not in the database, so that a dump of
the database alone cannot sign a delivery."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shillings_proto.envconfig import var_dir
from shillings_proto.secrets import write_once

KEY_VARIABLE = "SHILLINGS_WEBHOOK_KEY"

PREFIX = "whsec_"
SECRET_BYTES = 24
KEY_BYTES = 32
NONCE_BYTES = 12


class WebhookKeyError(ValueError):
    """The webhook key file is missing or does not hold base64 of 32 bytes."""


class SealError(ValueError):
    """A sealed secret cannot be opened with this key for this webhook (wrong key, another
    webhook's row, or altered bytes)."""


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def seal(secret: str, key: bytes, webhook_id: str) -> bytes:
    """``secret`` encrypted under ``key``: a random 12-byte nonce followed by the AES-GCM
    ciphertext and tag, bound to ``webhook_id`` (associated data) so a sealed secret copied to
    another webhook's row does not open there."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode("utf-8"), webhook_id.encode("utf-8"))


def unseal(sealed: bytes, key: bytes, webhook_id: str) -> str:
    """The secret ``seal`` sealed for ``webhook_id``; ``SealError`` if it does not open."""
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        plain = AESGCM(key).decrypt(nonce, ciphertext, webhook_id.encode("utf-8"))
    except (InvalidTag, ValueError) as e:
        raise SealError(f"the secret of webhook {webhook_id} does not open with this key") from e
    return plain.decode("utf-8")


def decode_key(text: str | bytes, source: str) -> bytes:
    """The 32-byte key that ``text`` holds in base64 (surrounding whitespace ignored);
    ``WebhookKeyError`` naming ``source`` (a variable or a file) for anything else."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise WebhookKeyError(
            f"{source}: the webhook key must be base64 of {KEY_BYTES} bytes;"
            " e.g. `openssl rand -base64 32`"
        )
    return key


def load_key(path: str) -> bytes:
    """The key in the file ``path`` (see ``decode_key``)."""
    try:
        with open(path, "rb") as f:
            return decode_key(f.read(), path)
    except OSError as e:
        raise WebhookKeyError(f"{path}: cannot read the webhook key ({e.strerror})") from e


def configured_key(env: Mapping[str, str]) -> bytes:
    """``SHILLINGS_WEBHOOK_KEY`` (base64), else the key file ``SHILLINGS_WEBHOOK_KEY_FILE``
    (default ``$SHILLINGS_VAR/webhook.key``, created on first run)."""
    if env.get(KEY_VARIABLE):
        return decode_key(env[KEY_VARIABLE], KEY_VARIABLE)
    return load_or_create_key(
        env.get(f"{KEY_VARIABLE}_FILE") or os.path.join(var_dir(env), "webhook.key")
    )


def load_or_create_key(path: str) -> bytes:
    """``load_key(path)``, creating the file first (mode 0600, a random key) if it does not
    exist."""
    if not os.path.exists(path):
        write_once(path, base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii") + "\n")
    return load_key(path)
