"""App server configuration from environment variables."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from shillings_app.config import DEFAULT_LISTEN, AppConfig, ConfigError
from shillings_app.webhooks.allow import parse_allow


def test_defaults_generate_a_private_secret_under_var(tmp_path):
    config = AppConfig.from_env({"SHILLINGS_VAR": str(tmp_path)})
    assert config.listen == DEFAULT_LISTEN
    assert config.mysql_dsn == (
        f"mysql://root@localhost/shillings?unix_socket={tmp_path}/run/mysqld.sock"
    )
    assert (config.token_ttl, config.bcrypt_cost, config.app_secret) == (3600, 12, None)
    assert (config.db_pool_min, config.db_pool_max) == (3, 10)
    secret_file = tmp_path / "jwt_secret"
    assert secret_file.read_text().strip() == config.jwt_secret
    assert len(config.jwt_secret) == 64
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    again = AppConfig.from_env({"SHILLINGS_VAR": str(tmp_path)})
    assert again.jwt_secret == config.jwt_secret
    assert config.webhook_allow == parse_allow("public")
    key_file = tmp_path / "webhook.key"
    assert base64.b64decode(key_file.read_text()) == config.webhook_key
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert again.webhook_key == config.webhook_key


def test_webhook_key_file(tmp_path):
    key_file = tmp_path / "elsewhere.key"
    key_file.write_text(base64.b64encode(bytes(range(32))).decode())
    env = {"SHILLINGS_VAR": str(tmp_path), "SHILLINGS_WEBHOOK_KEY_FILE": str(key_file)}
    assert AppConfig.from_env(env).webhook_key == bytes(range(32))
    key_file.write_text("not a key")
    with pytest.raises(ConfigError, match=f"{key_file}: the webhook key must be base64"):
        AppConfig.from_env(env)


def test_every_variable_is_read(tmp_path):
    env = {
        "SHILLINGS_VAR": str(tmp_path),
        "SHILLINGS_APP_LISTEN": "unix:/tmp/app.sock",
        "SHILLINGS_MYSQL_DSN": "mysql://u:p@db:3306/shl",
        "SHILLINGS_JWT_SECRET": "from-the-environment-0123456789abcdef",
        "SHILLINGS_LOG_LEVEL": "warn",
        "SHILLINGS_TOKEN_TTL": "60",
        "SHILLINGS_BCRYPT_COST": "4",
        "SHILLINGS_APP_SECRET": "handshake",
        "SHILLINGS_DB_POOL_MIN": "2",
        "SHILLINGS_DB_POOL_MAX": "4",
        "SHILLINGS_APP_IDLE_TIMEOUT": "5",
        "SHILLINGS_WEBHOOK_KEY": base64.b64encode(bytes(32)).decode(),
        "SHILLINGS_WEBHOOK_ALLOW": "10.0.0.0/8,public",
    }
    config = AppConfig.from_env(env)
    assert config == AppConfig(
        listen="unix:/tmp/app.sock",
        mysql_dsn="mysql://u:p@db:3306/shl",
        jwt_secret="from-the-environment-0123456789abcdef",
        token_ttl=60,
        bcrypt_cost=4,
        app_secret="handshake",
        db_pool_min=2,
        db_pool_max=4,
        idle_timeout=5.0,
        log_level="warn",
        webhook_key=bytes(32),
        webhook_allow=parse_allow("10.0.0.0/8,public"),
    )
    assert not (tmp_path / "jwt_secret").exists()
    assert not (tmp_path / "webhook.key").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHILLINGS_TOKEN_TTL", "soon"),
        ("SHILLINGS_BCRYPT_COST", "3"),
        ("SHILLINGS_DB_POOL_MAX", "1"),
        ("SHILLINGS_MYSQL_DSN", "redis://x"),
        ("SHILLINGS_LOG_LEVEL", "loud"),
        ("SHILLINGS_JWT_SECRET", "short-secret"),
        ("SHILLINGS_APP_LISTEN", "tcp:7070"),
        ("SHILLINGS_APP_LISTEN", "tcp:7070:interface=0.0.0.0"),
        ("SHILLINGS_WEBHOOK_KEY", base64.b64encode(bytes(16)).decode()),
        ("SHILLINGS_WEBHOOK_ALLOW", "10.0.0.0/33"),
    ],
)
def test_bad_values_are_config_errors(tmp_path, name, value):
    env = {"SHILLINGS_VAR": str(tmp_path), "SHILLINGS_JWT_SECRET": "x" * 32, name: value}
    if name == "SHILLINGS_DB_POOL_MAX":
        env["SHILLINGS_DB_POOL_MIN"] = "2"
    with pytest.raises(ConfigError):
        AppConfig.from_env(env)


@pytest.mark.parametrize(
    "listen",
    ["tcp:7070:interface=127.0.0.1", "tcp6:7070:interface=\\:\\:1", "unix:/tmp/a.sock"],
)
def test_private_listen_needs_no_shared_secret(tmp_path, listen):
    env = {"SHILLINGS_VAR": str(tmp_path), "SHILLINGS_APP_LISTEN": listen}
    assert AppConfig.from_env(env).app_secret is None


def test_public_listen_with_a_shared_secret_is_accepted(tmp_path):
    env = {
        "SHILLINGS_VAR": str(tmp_path),
        "SHILLINGS_APP_LISTEN": "tcp:7070:interface=0.0.0.0",
        "SHILLINGS_APP_SECRET": "handshake",
    }
    assert AppConfig.from_env(env).listen == "tcp:7070:interface=0.0.0.0"


@pytest.mark.parametrize("content", ["", "\n", "too-short\n"])
def test_an_unusable_secret_file_is_a_config_error(tmp_path, content):
    (tmp_path / "jwt_secret").write_text(content)
    with pytest.raises(ConfigError, match="at least 32"):
        AppConfig.from_env({"SHILLINGS_VAR": str(tmp_path)})
