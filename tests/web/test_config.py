"""Web configuration from the environment."""

import os

import pytest

from shillings_web.config import ConfigError, WebConfig, parse_redis_url


def test_defaults(tmp_path):
    config = WebConfig.from_env({"SHILLINGS_VAR": str(tmp_path)})
    assert config.listen == "tcp:8081:interface=127.0.0.1"
    assert config.app_servers == ("tcp:127.0.0.1:7070",)
    assert config.redis.unix_socket == f"{tmp_path}/run/redis.sock"
    assert config.app_connections == 2
    assert config.request_timeout == 5.0
    assert config.login_max_failures == 10
    assert config.login_window == 900
    assert (config.signup_max, config.signup_window) == (10, 3600)
    assert config.device_cookie_max_age == 30 * 86400
    assert config.cookie_secure is False
    assert config.trust_proxy is False
    assert config.app_secret is None
    # The secret was generated into var/ (mode 0600) and is read back the same.
    assert os.stat(tmp_path / "jwt_secret").st_mode & 0o777 == 0o600
    assert WebConfig.from_env({"SHILLINGS_VAR": str(tmp_path)}).jwt_secret == config.jwt_secret


def test_overrides(tmp_path):
    config = WebConfig.from_env(
        {
            "SHILLINGS_VAR": str(tmp_path),
            "SHILLINGS_WEB_LISTEN": "tcp:9000",
            "SHILLINGS_APP_SERVERS": "tcp:10.0.0.1:7070, unix:/tmp/app.sock",
            "SHILLINGS_APP_CONNECTIONS": "4",
            "SHILLINGS_REDIS_URL": "redis://:pw@redis.local:6380/3",
            "SHILLINGS_JWT_SECRET": "x" * 40,
            "SHILLINGS_COOKIE_SECURE": "1",
            "SHILLINGS_REQUEST_TIMEOUT": "0.5",
            "SHILLINGS_LOGIN_MAX_FAILURES": "3",
            "SHILLINGS_LOGIN_WINDOW": "60",
            "SHILLINGS_DEVICE_COOKIE_MAX_AGE": "600",
            "SHILLINGS_SIGNUP_MAX": "50",
            "SHILLINGS_SIGNUP_WINDOW": "120",
            "SHILLINGS_APP_SECRET": "hello",
            "SHILLINGS_TRUST_PROXY": "1",
        }
    )
    assert config.app_servers == ("tcp:10.0.0.1:7070", "unix:/tmp/app.sock")
    assert (config.redis.host, config.redis.port, config.redis.db) == ("redis.local", 6380, 3)
    assert config.redis.password == "pw"
    assert config.jwt_secret == "x" * 40
    assert config.cookie_secure and config.trust_proxy
    assert config.request_timeout == 0.5
    assert (config.login_max_failures, config.login_window) == (3, 60)
    assert config.device_cookie_max_age == 600
    assert (config.signup_max, config.signup_window) == (50, 120)
    assert config.app_secret == "hello"
    assert not (tmp_path / "jwt_secret").exists()


def test_redis_url_forms():
    assert parse_redis_url("unix:///run/r.sock").unix_socket == "/run/r.sock"
    assert parse_redis_url("unix:///run/r.sock?db=2").db == 2
    assert parse_redis_url("redis://localhost").port == 6379
    for bad in ("http://x", "unix://", "redis://h:notaport/0", "redis://h/x"):
        with pytest.raises(ConfigError):
            parse_redis_url(bad)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SHILLINGS_APP_CONNECTIONS", "0"),
        ("SHILLINGS_REQUEST_TIMEOUT", "-1"),
        ("SHILLINGS_REQUEST_TIMEOUT", "soon"),
        ("SHILLINGS_COOKIE_SECURE", "maybe"),
        ("SHILLINGS_APP_SERVERS", " , "),
    ],
)
def test_bad_values(tmp_path, name, value):
    with pytest.raises(ConfigError):
        WebConfig.from_env({"SHILLINGS_VAR": str(tmp_path), name: value})
