"""What scripts/cluster.py renders: the cluster's shape and ports (``ClusterConfig``), each
Galera node's defaults file, each sentinel's configuration, and the supervisord programs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shillings_stack.config import ROOT, VENV_BIN, StackConfig, env_int, find_binary
from shillings_stack.render import _env_line
from shillings_stack.render import render_programs as render_stack_programs

NODES = (1, 2, 3)
APPS = (0, 1)
REDIS = (1, 2)
SENTINELS = (1, 2, 3)
HOOKS_NODE = 3
"""The Galera node every webhook delivery worker works against (no app server does): their
FOR UPDATE SKIP LOCKED claims are row locks of one node, so workers on two nodes racing for a
delivery would meet only at certification (docker-compose.cluster.yml does the same)."""
MASTER_NAME = "shillings"
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
PACKAGES = {
    "galera-4": GALERA_PROVIDER,
    "mariadb-backup": "/usr/bin/mariabackup",
    "socat": "/usr/bin/socat",  # the mariabackup SST script streams through it
}


@dataclass(frozen=True)
class ClusterConfig:
    """The cluster's shape and ports, read from environment variables in one place."""

    var: Path
    port_base: int = 13300
    http_port: int = 8090
    web_procs: int = 2
    hooks_procs: int = 2
    buffer_pool: str = "32M"
    start_timeout: float = 240.0

    @classmethod
    def from_env(cls) -> ClusterConfig:
        env = os.environ
        var = Path(os.path.abspath(env.get("SHILLINGS_VAR") or ROOT / "var-cluster"))
        return cls(
            var=var,
            port_base=env_int(env, "SHILLINGS_CLUSTER_PORT_BASE", 13300, 1024, 65400),
            http_port=env_int(env, "SHILLINGS_HTTP_PORT", 8090, 1, 65535),
            web_procs=env_int(env, "WEB_PROCS", 2, 1, 16),
            hooks_procs=env_int(env, "HOOKS_PROCS", 2, 0, 9),
            start_timeout=float(env_int(env, "SHILLINGS_START_TIMEOUT", 240, 30, 3600)),
        )

    def mysql_port(self, n: int) -> int:
        return self.port_base + 10 + n

    def galera_port(self, n: int) -> int:
        return self.port_base + 20 + n

    def ist_port(self, n: int) -> int:
        return self.port_base + 30 + n

    def sst_port(self, n: int) -> int:
        return self.port_base + 40 + n

    def app_port(self, n: int) -> int:
        return self.port_base + 50 + n

    def redis_port(self, n: int) -> int:
        """Redis node ``n`` (1: the first primary, 2: its replica)."""
        return self.port_base + 59 + n

    def sentinel_port(self, n: int) -> int:
        return self.port_base + 70 + n

    def hooks_metrics_port(self, n: int) -> int:
        """Where delivery worker ``n`` serves its metrics (``GET /metrics``)."""
        return self.port_base + 80 + n

    @property
    def hooks_programs(self) -> list[str]:
        """The delivery workers' supervisord names (``hooks:hooks_00``, ...)."""
        return [f"hooks:hooks_{n:02d}" for n in range(self.hooks_procs)]

    @property
    def sentinels(self) -> str:
        """SHILLINGS_REDIS_SENTINELS of the web processes."""
        return ",".join(f"127.0.0.1:{self.sentinel_port(n)}" for n in SENTINELS)

    def app_node(self, n: int) -> int:
        """The Galera node app server ``n`` works against (each its own)."""
        return NODES[n % len(NODES)]

    def node_dir(self, n: int) -> Path:
        return self.var / "galera" / f"node{n}"

    def dsn(self, n: int) -> str:
        return f"mysql://root@127.0.0.1:{self.mysql_port(n)}/shillings"

    @property
    def tls_dir(self) -> Path:
        """The deployment's CA and certificates (scripts/certs.py)."""
        return self.var / "tls"

    def app_client(self, n: int) -> str:
        """How web processes reach app server ``n``: TLS with the web's client certificate,
        checking the app server's certificate (name app-N) against the private CA."""
        tls = self.tls_dir
        return (
            f"ssl:host=127.0.0.1:port={self.app_port(n)}:caCertsDir={tls / 'ca'}"
            f":certKey={tls / 'web.pem'}:privateKey={tls / 'web.key'}:hostname=app-{n}"
        )

    def stack(self) -> StackConfig:
        """The part scripts/stack.py renders: web processes and nginx (the cluster renders
        its own Redis, app servers and delivery workers)."""
        apps = ",".join(self.app_client(n) for n in APPS)
        return StackConfig(
            var=self.var,
            web_procs=self.web_procs,
            app_procs=0,
            hooks_procs=0,
            http_port=self.http_port,
            access_log=str(self.var / "log" / "nginx-access.log"),
            mysql_dsn=self.dsn(1),
            redis_url=f"redis://127.0.0.1:{self.redis_port(1)}",
            app_servers=apps,
            start_timeout=self.start_timeout,
            metrics_port_base=0,  # no Prometheus listeners: they would take fixed ports
        )


def render_node_cnf(cfg: ClusterConfig, n: int) -> str:
    """The defaults file of Galera node ``n`` (see docs/ARCHITECTURE.md, "Galera")."""
    d = cfg.node_dir(n)
    members = ",".join(f"127.0.0.1:{cfg.galera_port(i)}" for i in NODES)
    provider = (
        f"base_port={cfg.galera_port(n)};gmcast.listen_addr=tcp://127.0.0.1:{cfg.galera_port(n)};"
        f"ist.recv_addr=127.0.0.1:{cfg.ist_port(n)};gcache.size=64M"
    )
    return f"""# Rendered by scripts/cluster.py; do not edit.
[mysqld]
datadir = {d / "data"}
tmpdir = {d / "tmp"}
socket = {cfg.var / "run" / f"galera_{n}.sock"}
pid-file = {cfg.var / "run" / f"galera_{n}.pid"}
port = {cfg.mysql_port(n)}
bind-address = 127.0.0.1
skip-name-resolve
performance_schema = OFF
innodb_buffer_pool_size = {cfg.buffer_pool}
innodb_log_file_size = 48M
max_connections = 100
default_storage_engine = InnoDB
binlog_format = ROW
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = {GALERA_PROVIDER}
wsrep_cluster_name = shillings
wsrep_cluster_address = gcomm://{members}
wsrep_node_name = node{n}
wsrep_node_address = 127.0.0.1
wsrep_node_incoming_address = 127.0.0.1:{cfg.mysql_port(n)}
wsrep_provider_options = "{provider}"
wsrep_sst_method = mariabackup
wsrep_sst_auth = root:
wsrep_sst_receive_address = 127.0.0.1:{cfg.sst_port(n)}
wsrep_slave_threads = 2

[sst]
sst-log-archive-dir = {d / "sst-logs"}

[mariabackup]
socket = {cfg.var / "run" / f"galera_{n}.sock"}
"""


def render_sentinel_conf(cfg: ClusterConfig, n: int) -> str:
    """Sentinel ``n``'s configuration, written afresh on every start (sentinels rewrite it)."""
    return f"""# Rendered by scripts/cluster.py on start; the sentinel rewrites it while it runs.
port {cfg.sentinel_port(n)}
bind 127.0.0.1
daemonize no
logfile ""
dir {cfg.var / "redis" / f"sentinel{n}"}
sentinel monitor {MASTER_NAME} 127.0.0.1 {cfg.redis_port(1)} 2
sentinel down-after-milliseconds {MASTER_NAME} 2000
sentinel failover-timeout {MASTER_NAME} 10000
sentinel parallel-syncs {MASTER_NAME} 1
"""


def _section(
    name: str, command: str, env: dict[str, str], priority: int, log: Path, own_log: bool = False
) -> str:
    """A program started by `start` (not by supervisord). With ``own_log`` (app servers and
    delivery workers) the process writes ``<name>.log`` itself (``--log-file``, as in
    shillings_stack.render); supervisord keeps only what else reaches its stdout or stderr
    (a start-up error, a crash) in ``<name>.stdout.log``."""
    logfile = log / f"{name}.log"
    if own_log:
        command = f"{command} --log-file {logfile}"
        logfile = log / f"{name}.stdout.log"
    return f"""
[program:{name}]
command = {command}
directory = {ROOT}
environment = {_env_line(env)}
priority = {priority}
autostart = false
autorestart = true
startsecs = 1
startretries = 10
stopsignal = TERM
stopwaitsecs = 60
redirect_stderr = true
stopasgroup = true
killasgroup = true
stdout_logfile = {logfile}
stdout_logfile_maxbytes = 20MB
stdout_logfile_backups = 3"""


def render_programs(cfg: ClusterConfig) -> str:
    """stack.py's web and nginx sections, plus the Galera nodes, Redis nodes, sentinels, app
    servers and delivery workers (started in order by `start`, not by supervisord)."""
    log = cfg.var / "log"
    parts = [render_stack_programs(cfg.stack())]
    script = ROOT / "scripts" / "galera_node.sh"
    for n in NODES:
        parts.append(
            _section(f"galera_{n}", f"{script} {cfg.node_dir(n)}", {"HOME": str(cfg.var)}, 10, log)
        )
    sentinel_ports = " ".join(str(cfg.sentinel_port(i)) for i in SENTINELS)
    for n in REDIS:
        node = cfg.var / "redis" / f"node{n}"
        command = f"{ROOT / 'scripts' / 'redis_node.sh'} {cfg.redis_port(n)} {node}"
        command += f" {cfg.redis_port(1)} {sentinel_ports}"
        parts.append(_section(f"redis_{n}", command, {}, 5, log))
    for n in SENTINELS:
        conf = cfg.var / "redis" / f"sentinel{n}" / "sentinel.conf"
        command = f"{find_binary('redis-server')} {conf} --sentinel"
        parts.append(_section(f"sentinel_{n}", command, {}, 6, log))
    for n in APPS:
        env = {
            "SHILLINGS_VAR": str(cfg.var),
            "SHILLINGS_APP_LISTEN": f"tcp:{cfg.app_port(n)}:interface=127.0.0.1",
            "SHILLINGS_APP_TLS_CERT": str(cfg.tls_dir / f"app-{n}.pem"),
            "SHILLINGS_APP_TLS_KEY": str(cfg.tls_dir / f"app-{n}.key"),
            "SHILLINGS_APP_TLS_CA": str(cfg.tls_dir / "ca" / "ca.pem"),
            "SHILLINGS_MYSQL_DSN": cfg.dsn(cfg.app_node(n)),
            "SHILLINGS_DB_SYNC_WAIT": "1",
        }
        command = f"{VENV_BIN / 'shillings-app'} serve"
        parts.append(_section(f"app_{n:02d}", command, env, 20, log, own_log=True))
    parts.append(f"\n[group:app]\nprograms = {','.join(f'app_{n:02d}' for n in APPS)}\n")
    for n in range(cfg.hooks_procs):
        env = {
            "SHILLINGS_VAR": str(cfg.var),
            "SHILLINGS_MYSQL_DSN": cfg.dsn(HOOKS_NODE),
            "SHILLINGS_DB_SYNC_WAIT": "1",
            "SHILLINGS_METRICS_LISTEN": f"tcp:{cfg.hooks_metrics_port(n)}:interface=127.0.0.1",
        }
        command = f"{VENV_BIN / 'shillings-app'} hooks"
        parts.append(_section(f"hooks_{n:02d}", command, env, 25, log, own_log=True))
    if cfg.hooks_procs:
        names = ",".join(p.split(":")[1] for p in cfg.hooks_programs)
        parts.append(f"\n[group:hooks]\nprograms = {names}\n")
    return "\n".join(parts)
