"""The cluster shape's rendered files and docker-compose.cluster.yml, checked without
starting anything (make test-cluster runs the shape itself)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from tests.stack.helpers import ROOT


def _render_module() -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(
        "cluster_render", ROOT / "scripts" / "cluster_render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cluster_render"] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def test_galera_nodes_have_the_settings_galera_needs(tmp_path: Path) -> None:
    render = _render_module()
    cfg = render.ClusterConfig(var=tmp_path, port_base=20000)
    for n in (1, 2, 3):
        cnf = render.render_node_cnf(cfg, n)
        for setting in (
            "binlog_format = ROW",
            "innodb_autoinc_lock_mode = 2",
            "wsrep_sst_method = mariabackup",
            "bind-address = 127.0.0.1",
            f"port = {20010 + n}",
            "gcomm://127.0.0.1:20021,127.0.0.1:20022,127.0.0.1:20023",
        ):
            assert setting in cnf, (n, setting)


def test_each_app_server_has_its_own_node_and_tls(tmp_path: Path) -> None:
    render = _render_module()
    cfg = render.ClusterConfig(var=tmp_path, port_base=20000)
    programs = render.render_programs(cfg)
    assert 'SHILLINGS_MYSQL_DSN="mysql://root@127.0.0.1:20011/shillings"' in programs
    assert 'SHILLINGS_MYSQL_DSN="mysql://root@127.0.0.1:20012/shillings"' in programs
    assert programs.count("SHILLINGS_APP_TLS_CA=") == 2
    assert programs.count('SHILLINGS_DB_SYNC_WAIT="1"') == 2 + cfg.hooks_procs  # and the workers
    assert "ssl:host=127.0.0.1:port=20050" in programs and "hostname=app-1" in programs
    assert "0.0.0.0" not in programs


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())
    return document


def test_compose_cluster_variant() -> None:
    services = _compose()["services"]
    assert {"galera1", "galera2", "galera3", "redis1", "redis2", "migrate"} <= set(services)
    assert {"sentinel1", "sentinel2", "sentinel3", "app1", "app2", "web", "nginx"} <= set(services)
    assert services["hooks"]["command"][-1] == "hooks"
    assert services["hooks"]["environment"]["SHILLINGS_MYSQL_DSN"].endswith(
        "@galera3:3306/shillings"
    )
    args = services["galera2"]["command"][-1]
    assert "--binlog-format=ROW" in args and "--innodb-autoinc-lock-mode=2" in args
    assert "--wsrep-new-cluster" not in " ".join(services["galera2"]["command"])
    dsns = {
        services[a]["environment"]["SHILLINGS_MYSQL_DSN"].split("@")[1] for a in ("app1", "app2")
    }
    assert dsns == {"galera1:3306/shillings", "galera2:3306/shillings"}
    web = services["web"]["environment"]
    assert web["SHILLINGS_APP_SERVERS"].count("ssl:") == 2
    assert web["SHILLINGS_REDIS_SENTINELS"].count(":26379") == 3
    for app in ("app1", "app2"):
        env = services[app]["environment"]
        assert {"SHILLINGS_APP_TLS_CERT", "SHILLINGS_APP_TLS_KEY", "SHILLINGS_APP_TLS_CA"} <= set(
            env
        )


def test_delivery_workers_run_on_one_node_with_metrics_and_own_logs(tmp_path: Path) -> None:
    render = _render_module()
    cfg = render.ClusterConfig(var=tmp_path, port_base=20000, hooks_procs=2)
    programs = render.render_programs(cfg)
    sections = {block.split("]", 1)[0]: block for block in programs.split("\n[program:")[1:]}
    hooks = [name for name in sections if "hooks" in name]
    assert hooks == ["hooks_00", "hooks_01"]  # the stack's own (node-less) group is not there
    assert "[group:hooks]\nprograms = hooks_00,hooks_01" in programs
    for n, name in enumerate(hooks):
        section = sections[name]
        assert 'SHILLINGS_MYSQL_DSN="mysql://root@127.0.0.1:20013/shillings"' in section
        assert 'SHILLINGS_DB_SYNC_WAIT="1"' in section
        assert f'SHILLINGS_METRICS_LISTEN="tcp:{20080 + n}:interface=127.0.0.1"' in section
        assert "autostart = false" in section  # started by `start` after the migrations
    for name in ("app_00", "app_01", *hooks):
        section = sections[name]
        assert f"--log-file {tmp_path}/log/{name}.log" in section
        assert f"stdout_logfile = {tmp_path}/log/{name}.stdout.log" in section
    none = render.render_programs(render.ClusterConfig(var=tmp_path, hooks_procs=0))
    assert "hooks" not in none
