"""The stack creates the webhook key before its programs start, like the JWT secret."""

from __future__ import annotations

import base64
import stat

import pytest

from shillings_stack.config import StackConfig, StackError
from shillings_stack.lifecycle import ensure_webhook_key
from tests.stack.helpers import clean_env


def test_stack_creates_the_key_once(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SHILLINGS_WEBHOOK_KEY", raising=False)
    monkeypatch.delenv("SHILLINGS_WEBHOOK_KEY_FILE", raising=False)
    cfg = StackConfig.from_env(clean_env(SHILLINGS_VAR=str(tmp_path)))
    ensure_webhook_key(cfg)
    key_file = tmp_path / "webhook.key"
    key = key_file.read_text()
    assert len(base64.b64decode(key)) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ensure_webhook_key(cfg)
    assert key_file.read_text() == key


def test_stack_refuses_a_bad_key(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SHILLINGS_WEBHOOK_KEY", "too-short")
    cfg = StackConfig.from_env(clean_env(SHILLINGS_VAR=str(tmp_path)))
    with pytest.raises(StackError, match="SHILLINGS_WEBHOOK_KEY: the webhook key must be base64"):
        ensure_webhook_key(cfg)
    assert not (tmp_path / "webhook.key").exists()
