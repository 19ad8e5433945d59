"""Configuration once: one reader, typed settings per process kind, generated README tables."""

from __future__ import annotations

from pathlib import Path

from shillings_app.config import AppConfig
from shillings_app.hooks.config import HooksConfig
from shillings_proto import configdoc
from shillings_proto.envconfig import settings_of
from shillings_web.config import WebConfig

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_are_the_generated_ones():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert configdoc.render(text) == text, "run make config-docs"
    for config in (AppConfig, WebConfig):
        for _, s in settings_of(config):
            assert f"| `{s.env}` |" in text


def test_render_replaces_a_stale_table():
    stale = "x\n<!-- settings:app -->\n| old |\n<!-- /settings:app -->\n"
    stale += "<!-- settings:web -->\n<!-- /settings:web -->\n"
    stale += "<!-- settings:hooks -->\n<!-- /settings:hooks -->\n"
    new = configdoc.render(stale)
    assert "| old |" not in new
    assert AppConfig.table() in new and WebConfig.table() in new
    assert HooksConfig.table() in new


def test_every_variable_is_declared_once_per_kind():
    for config in (AppConfig, WebConfig, HooksConfig):
        names = [s.env for _, s in settings_of(config)]
        assert len(names) == len(set(names))
        assert all(name.startswith("SHILLINGS_") for name in names)


def test_an_empty_var_means_the_default_for_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"SHILLINGS_VAR": "", "SHILLINGS_JWT_SECRET": "x" * 32}
    app = AppConfig.from_env(env)
    web = WebConfig.from_env(env)
    assert app.mysql_dsn.endswith(f"unix_socket={tmp_path}/var/run/mysqld.sock")
    assert web.redis.unix_socket == f"{tmp_path}/var/run/redis.sock"


def test_both_read_the_log_level_from_the_environment(tmp_path):
    env = {"SHILLINGS_VAR": str(tmp_path), "SHILLINGS_LOG_LEVEL": "WARN"}
    assert AppConfig.from_env(env).log_level == "warn"
    assert WebConfig.from_env(env).log_level == "warn"
    assert WebConfig.from_env({"SHILLINGS_VAR": str(tmp_path)}).log_level == "info"
