"""Dockerfile and docker-compose.yml, checked as far as possible without a Docker engine:
they parse, what they run exists in the project, and ports and settings agree."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shillings_stack.config import StackConfig
from shillings_stack.render import render_nginx
from tests.stack.helpers import ROOT, clean_env

pytestmark = pytest.mark.stack

OUR_SERVICES = ("app", "hooks", "web", "nginx")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            steps.append((instruction.upper(), args.strip()))
    return steps


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _console_scripts() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in _dockerignore())


def _check_command(argv: list[str]) -> None:
    """A command the image runs from /app: a console script or a script of the repo."""
    program = argv[0]
    assert program.startswith(".venv/bin/"), argv
    name = program.removeprefix(".venv/bin/")
    if name == "python":
        script = argv[1]
        assert (ROOT / script).is_file(), script
        assert not _ignored(script.split("/")[0]), script
        if script == "scripts/stack.py":
            assert argv[2] in {"run", "nginx"}, argv
    else:
        assert name in _console_scripts(), argv


def _endpoint_port(endpoint: str) -> int:
    """The port of a Twisted ``tcp:`` endpoint string (server or client form)."""
    parts = endpoint.split(":")
    assert parts[0] == "tcp", endpoint
    numbers = [p for p in parts[1:] if p.isdigit()]
    return int(numbers[0])


def test_dockerfile_builds_the_whole_stack_image() -> None:
    steps = _dockerfile()
    assert steps[0][0] == "FROM"
    assert steps[0][1] in ("python:3.11-slim-bookworm", "debian:12", "debian:bookworm")
    installs = " ".join(args for op, args in steps if op == "RUN" and "apt-get install" in args)
    for package in ("mariadb-server", "redis-server", "nginx"):
        assert package in installs
    workdir = next(args for op, args in steps if op == "WORKDIR")
    for op, args in steps:
        if op == "COPY":
            *sources, _dest = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source), f"{source} is excluded by .dockerignore"
    env = " ".join(args for op, args in steps if op == "ENV")
    assert "SHILLINGS_HTTP_HOST=0.0.0.0" in env
    port = re.search(r"SHILLINGS_HTTP_PORT=(\d+)", env)
    assert port and ("EXPOSE", port.group(1)) in steps
    var = re.search(r"SHILLINGS_VAR=(\S+)", env)
    assert var and var.group(1) == f"{workdir}/var"
    assert any(op == "VOLUME" and f'"{workdir}/var"' in args for op, args in steps)
    cmd = next(args for op, args in reversed(steps) if op in ("CMD", "ENTRYPOINT"))
    argv = yaml.safe_load(cmd)
    assert "make" not in argv
    _check_command(argv)
    assert argv[1:] == ["scripts/stack.py", "run"]


def test_dockerignore_keeps_local_state_out() -> None:
    for path in (".venv", "var", ".git"):
        assert _ignored(path)
    for path in ("scripts", "nginx", "shillings_app", "supervisord.conf", "pyproject.toml"):
        assert not _ignored(path)


def test_compose_services_and_commands() -> None:
    services = _compose()["services"]
    assert set(services) == {"mysql", "redis", "app", "hooks", "web", "nginx"}
    for name in OUR_SERVICES:
        assert services[name]["build"] == "."
        _check_command(services[name]["command"])
    assert services["web"]["deploy"]["replicas"] >= 2
    assert services["hooks"]["deploy"]["replicas"] >= 2
    for name in ("app", "hooks", "web"):
        assert "ports" not in services[name]


def test_compose_addresses_and_settings_agree() -> None:
    services = _compose()["services"]
    app_env = services["app"]["environment"]
    web_env = services["web"]["environment"]
    nginx_env = services["nginx"]["environment"]

    # web -> app: same port, a service name, and the shared secret on both ends.
    app_port = _endpoint_port(app_env["SHILLINGS_APP_LISTEN"])
    for server in web_env["SHILLINGS_APP_SERVERS"].split(","):
        assert server.split(":")[1] in services
        assert _endpoint_port(server) == app_port
    assert app_env["SHILLINGS_APP_SECRET"] == web_env["SHILLINGS_APP_SECRET"]
    assert app_env["SHILLINGS_JWT_SECRET"] == web_env["SHILLINGS_JWT_SECRET"]
    assert ":?" in app_env["SHILLINGS_APP_SECRET"], "the app secret must be required"

    # nginx -> web: the port the web command listens on.
    listen = services["web"]["command"][services["web"]["command"].index("--listen") + 1]
    for upstream in nginx_env["SHILLINGS_WEB_SERVERS"].split(","):
        host, port = upstream.rsplit(":", 1)
        assert host in services
        assert int(port) == _endpoint_port(listen)
    published = services["nginx"]["ports"][0].rsplit(":", 1)[1]
    assert published == nginx_env["SHILLINGS_HTTP_PORT"]

    dsn = urlsplit(re.sub(r"\$\{[^}]*\}", "secret", app_env["SHILLINGS_MYSQL_DSN"]))
    assert dsn.hostname == "mysql" and dsn.path == "/shillings"
    assert services["mysql"]["environment"]["MARIADB_DATABASE"] == "shillings"
    assert urlsplit(web_env["SHILLINGS_REDIS_URL"]).hostname == "redis"

    # Delivery workers: the app server's database, webhook key and allow list.
    hooks_env = services["hooks"]["environment"]
    for variable in ("SHILLINGS_MYSQL_DSN", "SHILLINGS_WEBHOOK_KEY", "SHILLINGS_WEBHOOK_ALLOW"):
        assert hooks_env[variable] == app_env[variable], variable


def test_compose_env_vars_are_ones_the_code_reads() -> None:
    sources = [
        ROOT / "shillings_app" / "config.py",
        ROOT / "shillings_app" / "hooks" / "config.py",
        ROOT / "shillings_web" / "config.py",
        *sorted((ROOT / "shillings_stack").glob("*.py")),
    ]
    code = "\n".join(path.read_text() for path in sources if path.exists())
    for name in OUR_SERVICES:
        for variable in _compose()["services"][name]["environment"]:
            assert f'"{variable}"' in code, f"{name}: nothing reads {variable}"


def test_compose_nginx_config_renders(tmp_path: Path) -> None:
    nginx_env = _compose()["services"]["nginx"]["environment"]
    cfg = StackConfig.from_env(
        clean_env(SHILLINGS_VAR=str(tmp_path), **{k: str(v) for k, v in nginx_env.items()})
    )
    text = render_nginx(cfg)
    assert "server web:8081 max_fails=0;" in text
    assert "listen 0.0.0.0:8080;" in text


def test_health_checks_ask_each_service_on_its_own_port() -> None:
    """The image's check follows SHILLINGS_HTTP_PORT and every web process (no address in
    it); each compose service of ours overrides it with a check of its own listener."""
    healthcheck = next(args for op, args in _dockerfile() if op == "HEALTHCHECK")
    argv = yaml.safe_load(healthcheck.split("CMD", 1)[1].strip())
    assert argv == [".venv/bin/python", "scripts/healthcheck.py"]
    services = _compose()["services"]
    app_port = _endpoint_port(services["app"]["environment"]["SHILLINGS_APP_LISTEN"])
    web_listen = services["web"]["command"][services["web"]["command"].index("--listen") + 1]
    nginx_port = services["nginx"]["environment"]["SHILLINGS_HTTP_PORT"]
    hooks_metrics = _endpoint_port(services["hooks"]["environment"]["SHILLINGS_METRICS_LISTEN"])
    expected = {
        "app": ["--app", f"127.0.0.1:{app_port}"],
        "web": ["--http", f"http://127.0.0.1:{_endpoint_port(web_listen)}/healthz"],
        "nginx": ["--http", f"http://127.0.0.1:{nginx_port}/healthz"],
        "hooks": ["--http", f"http://127.0.0.1:{hooks_metrics}/metrics"],
    }
    for name, args in expected.items():
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD", name
        _check_command(test[1:])
        assert test[2:] == ["scripts/healthcheck.py", *args], name
    for name in ("mysql", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["app"]["condition"] == "service_healthy"
