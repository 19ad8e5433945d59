"""Metrics in the stack: every app and web process listens on its own loopback port, the
rendered Prometheus configuration lists them all (and follows `make scale`), and nginx does
not serve them."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from supervisor.options import ServerOptions

from shillings_stack.config import StackConfig, StackError
from shillings_stack.lifecycle import check_port_free
from shillings_stack.render import render
from tests.stack.helpers import (
    ROOT,
    Client,
    MadeStack,
    clean_env,
    free_port,
    free_port_base,
    stack_env,
)

pytestmark = pytest.mark.stack


def _samples(target: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _targets(var: Path) -> dict[str, str]:
    """Process name -> target, as Prometheus reads them from the rendered configuration."""
    config = yaml.safe_load((var / "etc" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    [files] = [sd["files"] for sd in job["file_sd_configs"]]
    groups = [group for name in files for group in json.loads(Path(name).read_text())]
    return {group["labels"]["process"]: target for group in groups for target in group["targets"]}


def test_each_process_gets_its_metrics_port(tmp_path: Path) -> None:
    env = clean_env(SHILLINGS_VAR=str(tmp_path), WEB_PROCS="3", APP_PROCS="2")
    cfg = StackConfig.from_env({**env, "SHILLINGS_METRICS_PORT_BASE": "12300"})
    options = ServerOptions()
    options.realize(args=["-c", str(render(cfg))])
    listens = {
        process.name: process.environment["SHILLINGS_METRICS_LISTEN"]
        for group in options.process_group_configs
        if group.name in ("app", "web", "hooks")
        for process in group.process_configs
    }
    assert listens == {
        "app_00": "tcp:12300:interface=127.0.0.1",
        "app_01": "tcp:12301:interface=127.0.0.1",
        "web_00": "tcp:12400:interface=127.0.0.1",
        "web_01": "tcp:12401:interface=127.0.0.1",
        "web_02": "tcp:12402:interface=127.0.0.1",
        "hooks_00": "tcp:12500:interface=127.0.0.1",
        "hooks_01": "tcp:12501:interface=127.0.0.1",
    }
    assert _targets(tmp_path) == {
        name: "127.0.0.1:" + listen.split(":")[1] for name, listen in listens.items()
    }

    off = render(replace(cfg, metrics_port_base=0))
    options = ServerOptions()
    options.realize(args=["-c", str(off)])
    for group in options.process_group_configs:
        for process in group.process_configs:
            assert "SHILLINGS_METRICS_LISTEN" not in (process.environment or {})
    assert _targets(tmp_path) == {}
    for bad in ("9250", "500", "70000"):
        with pytest.raises(StackError, match="SHILLINGS_METRICS_PORT_BASE"):
            StackConfig.from_env({**env, "SHILLINGS_METRICS_PORT_BASE": bad})


def test_start_refuses_a_taken_metrics_port(tmp_path: Path) -> None:
    """A metrics port held by another process (another stack's) fails the start with the
    variable to change, instead of a listener that retries while the other one answers."""
    base = free_port_base()
    env = clean_env(SHILLINGS_VAR=str(tmp_path), SHILLINGS_HTTP_PORT=str(free_port()))
    cfg = StackConfig.from_env({**env, "SHILLINGS_METRICS_PORT_BASE": str(base)})
    check_port_free(cfg)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 201))  # hooks_01
        taken.listen()
        with pytest.raises(StackError, match=f"{base + 201}.*SHILLINGS_METRICS_PORT_BASE"):
            check_port_free(cfg)
        check_port_free(replace(cfg, metrics_port_base=0))


@pytest.fixture
def running() -> Iterator[MadeStack]:
    var = Path(tempfile.mkdtemp(prefix="shl-met-"))
    port = free_port()
    env = stack_env(var, port, web_procs=2, app_procs=1, SHILLINGS_START_TIMEOUT="60")
    made = MadeStack(var=var, port=port, env=env)
    try:
        started = made.make("start")
        assert started.returncode == 0, started.stdout + started.stderr
        yield made
    finally:
        made.make("stop")
        shutil.rmtree(var, ignore_errors=True)


def test_the_scrape_config_reaches_every_process_and_nginx_hides_them(
    running: MadeStack,
) -> None:
    client = Client(running.port)
    status, body, _ = client.call(
        "POST",
        "/v1/signup",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "phone": "+15551234567",
            "password": "correct horse battery",
        },
    )
    assert status == 201, body
    status, body, _ = client.call(
        "POST", "/v1/login", {"email": "ada@example.com", "password": "correct horse battery"}
    )
    assert status == 200, body
    client.token = body["token"]
    assert client.call("POST", "/v1/topup", {"amount": "12.34"})[0] == 200
    status, body, _ = client.call("GET", "/metrics")
    assert (status, body["status"]["reason"]) == (404, "not_found")
    client.close()

    targets = _targets(running.var)
    assert set(targets) == {"app_00", "hooks_00", "hooks_01", "web_00", "web_01"}
    scraped = {name: _samples(target) for name, target in targets.items()}
    app = scraped["app_00"]
    assert app[("shillings_app_requests_total", frozenset({("command", "TPU"), ("status", "200")}))]
    assert app[("shillings_app_topup_cents_total", frozenset())] == 1234
    assert app[("shillings_app_connections", frozenset())] >= 2  # each web process's
    signups = [
        samples.get(
            (
                "shillings_web_http_requests_total",
                frozenset({("route", "/v1/signup"), ("method", "POST"), ("status", "201")}),
            ),
            0,
        )
        for name, samples in scraped.items()
        if name.startswith("web_")
    ]
    assert sum(signups) == 1
    for name in ("web_00", "web_01"):
        assert scraped[name][("shillings_web_redis_up", frozenset())] == 1

    scaled = replace(running, env={**running.env, "WEB_PROCS": "3"})
    done = scaled.make("scale", timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    targets = _targets(running.var)
    assert set(targets) == {"app_00", "hooks_00", "hooks_01", "web_00", "web_01", "web_02"}
    for target in targets.values():
        assert _samples(target)


def test_compose_services_expose_metrics_only_on_their_network() -> None:
    """Each app, web and hooks service listens for metrics on the port the documented scrape
    configuration looks its replicas up on, and publishes no port but nginx's."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus-compose.yml").read_text())
    [job] = scrape["scrape_configs"]
    looked_up = {name: sd["port"] for sd in job["dns_sd_configs"] for name in sd["names"]}
    assert set(looked_up) == {"app", "web", "hooks"}
    for service, port in looked_up.items():
        config = compose["services"][service]
        listen = config["environment"]["SHILLINGS_METRICS_LISTEN"]
        assert listen == f"tcp:{port}:interface=0.0.0.0"
        assert config["expose"] == [str(port)]
        assert "ports" not in config
    published = [name for name, config in compose["services"].items() if "ports" in config]
    assert published == ["nginx"]
