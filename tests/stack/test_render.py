"""The configuration scripts/stack.py renders, checked by supervisord's and nginx's own parsers."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ClientOptions, ServerOptions

from shillings_stack.config import StackConfig, StackError, find_binary
from shillings_stack.render import render
from tests.stack.helpers import ROOT, clean_env

pytestmark = pytest.mark.stack


@pytest.fixture
def var() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shl-render-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(var: Path, **env: str) -> Any:
    return StackConfig.from_env(clean_env(SHILLINGS_VAR=str(var), **env))


def _programs(conf: Path) -> dict[str, list[Any]]:
    """Group name -> process configs, as supervisord itself reads ``conf``."""
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    assert options.parse_warnings == []
    return {group.name: group.process_configs for group in options.process_group_configs}


def test_programs_follow_process_counts(var: Path) -> None:
    cfg = _config(var, WEB_PROCS="3", APP_PROCS="2", HOOKS_PROCS="3")
    conf = render(cfg)
    assert conf == var / "etc" / "supervisord.conf"
    groups = _programs(conf)
    assert set(groups) == {"mariadb", "redis", "app", "hooks", "web", "nginx"}
    hooks = groups["hooks"]
    assert [p.name for p in hooks] == ["hooks_00", "hooks_01", "hooks_02"]
    assert all("/shillings-app hooks --log-file " in p.command for p in hooks)

    app = groups["app"]
    assert [p.name for p in app] == ["app_00", "app_01"]
    assert [p.environment["SHILLINGS_APP_LISTEN"] for p in app] == [
        f"unix:{var}/run/app_00.sock:mode=600",
        f"unix:{var}/run/app_01.sock:mode=600",
    ]
    web = groups["web"]
    assert [p.name for p in web] == ["web_00", "web_01", "web_02"]
    listens = {p.environment["SHILLINGS_WEB_LISTEN"] for p in web}
    assert len(listens) == 3
    for process in web:
        assert process.environment["SHILLINGS_APP_SERVERS"] == (
            f"unix:{var}/run/app_00.sock,unix:{var}/run/app_01.sock"
        )
        assert process.environment["SHILLINGS_TRUST_PROXY"] == "1"
        assert process.environment["SHILLINGS_VAR"] == str(var)
    # Web and app processes write their log files themselves, not through supervisord's
    # pipes, which keep only what else they print.
    for process in [*web, *groups["app"], *hooks]:
        assert process.command.endswith(f" --log-file {var}/log/{process.name}.log")
        assert process.stdout_logfile == f"{var}/log/{process.name}.stdout.log"

    # MariaDB and Redis start first; every program stops with its whole process group.
    priority = {name: processes[0].priority for name, processes in groups.items()}
    assert priority["mariadb"] < priority["app"] < priority["web"] < priority["nginx"]
    assert priority["mariadb"] < priority["app"] < priority["hooks"]
    assert priority["redis"] < priority["web"]
    for processes in groups.values():
        for process in processes:
            assert process.stopasgroup and process.killasgroup
            assert str(process.stdout_logfile).startswith(f"{var}/log/")
            assert process.environment["SHILLINGS_STACK_DIR"] == str(var)

    nginx = (var / "etc" / "nginx.conf").read_text()
    servers = re.findall(r"^\s*server (\S+) max_fails=0;$", nginx, re.MULTILINE)
    assert servers == [f"unix:{var}/run/web_0{n}.sock" for n in range(3)]


def test_nginx_config_passes_nginx_own_check(var: Path) -> None:
    cfg = _config(var, SHILLINGS_HTTP_PORT="18181")
    render(cfg)
    nginx_conf = var / "etc" / "nginx.conf"
    nginx = find_binary("nginx")
    checked = subprocess.run(
        [nginx, "-t", "-p", f"{var}/nginx", "-c", str(nginx_conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    text = nginx_conf.read_text()
    assert "listen 127.0.0.1:18181;" in text
    assert re.search(r"least_conn;", text) and re.search(r"keepalive \d+;", text)
    assert 'proxy_set_header Connection "";' in text and "proxy_http_version 1.1;" in text
    assert "proxy_next_upstream error timeout http_502 http_503;" in text
    assert "non_idempotent" not in text.split("proxy_next_upstream ", 1)[1].split(";")[0]
    assert "client_max_body_size 64k;" in text
    # nothing outside var/: pid, temp paths, logs
    for line in text.splitlines():
        if re.match(r"\s*(pid|\w+_temp_path|access_log)\s", line) and " off;" not in line:
            assert f" {var}/" in line, line


def test_repository_config_is_the_default_var_one() -> None:
    """The committed supervisord.conf is what operators point supervisorctl at."""
    cfg = StackConfig.from_env(clean_env())
    assert cfg.var == ROOT / "var"
    assert cfg.conf == ROOT / "supervisord.conf"
    options = ClientOptions()
    options.realize(args=["-c", str(ROOT / "supervisord.conf")])
    assert options.serverurl == f"unix://{ROOT}/var/run/supervisor.sock"
    for line in (ROOT / "supervisord.conf").read_text().splitlines():
        if re.match(r"(file|logfile|pidfile|childlogdir|serverurl) =", line):
            assert "%(here)s/var/" in line, line


def test_rendered_copy_only_moves_var(var: Path) -> None:
    cfg = _config(var)
    render(cfg)
    options = ClientOptions()
    options.realize(args=["-c", str(cfg.conf)])
    assert options.serverurl == f"unix://{var}/run/supervisor.sock"
    server = ServerOptions()
    server.realize(args=["-c", str(cfg.conf)])
    assert server.pidfile == f"{var}/run/supervisord.pid"
    assert server.logfile == f"{var}/log/supervisord.log"
    assert server.server_configs[0]["file"] == f"{var}/run/supervisor.sock"


def test_external_services_replace_the_embedded_ones(var: Path) -> None:
    cfg = _config(
        var,
        SHILLINGS_MYSQL_DSN="mysql://u:p@db.internal:3306/shillings",
        SHILLINGS_REDIS_URL="redis://cache.internal:6379/0",
        SHILLINGS_APP_SERVERS="tcp:app1.internal:7070,tcp:app2.internal:7070",
    )
    groups = _programs(render(cfg))
    assert set(groups) == {"hooks", "web", "nginx"}  # delivery workers use the database
    assert groups["web"][0].environment["SHILLINGS_APP_SERVERS"] == (
        "tcp:app1.internal:7070,tcp:app2.internal:7070"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WEB_PROCS": "0"}, "WEB_PROCS"),
        ({"APP_PROCS": "two"}, "APP_PROCS"),
        ({"APP_PROCS": "0"}, "SHILLINGS_APP_SERVERS"),
        ({"SHILLINGS_HTTP_PORT": "70000"}, "SHILLINGS_HTTP_PORT"),
        ({"SHILLINGS_WEB_SERVERS": "web:8081;evil"}, "SHILLINGS_WEB_SERVERS"),
    ],
)
def test_bad_settings_are_refused(var: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(StackError, match=message):
        _config(var, **env)


def test_socket_paths_must_fit(var: Path) -> None:
    deep = var / ("d" * 90)
    with pytest.raises(StackError, match="socket path too long"):
        render(_config(deep))
