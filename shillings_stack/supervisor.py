"""Talking to this stack's supervisord: is it running, its XML-RPC interface, supervisorctl,
and the running stack's shape."""

from __future__ import annotations

import itertools
import os
import subprocess
import xmlrpc.client
from pathlib import Path
from typing import Any

from shillings_stack.config import VENV_BIN, StackConfig
from shillings_stack.processes import alive, proc_cmdline


def _supervisord_conf_of(pid: int) -> Path | None:
    """The config file a live supervisord runs with (its ``-c``, relative to its cwd)."""
    args = [a.decode(errors="replace") for a in proc_cmdline(pid).split(b"\0")]
    program = next((i for i, a in enumerate(args) if Path(a).name == "supervisord"), None)
    if program is None:
        return None
    conf = "supervisord.conf"  # without -c: found in its working directory (first choice)
    for flag, value in itertools.pairwise(args[program:]):
        if flag in ("-c", "--configuration"):
            conf = value
            break
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"), conf).resolve()
    except OSError:
        return None


def supervisord_pid(cfg: StackConfig) -> int | None:
    """The pid of this stack's supervisord, if it runs. A pid file left by an unclean stop
    may name a pid the system has since given to another process: the process must be a
    supervisord running with this stack's config to count."""
    try:
        pid = int(cfg.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if alive(pid) and _supervisord_conf_of(pid) == cfg.conf.resolve():
        return pid
    return None


def rpc(cfg: StackConfig, namespace: str = "supervisor") -> Any:
    """An XML-RPC proxy to this stack's supervisord over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{cfg.supervisor_socket}")
    return getattr(xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport), namespace)


def process_infos(cfg: StackConfig) -> list[dict[str, Any]]:
    """supervisord's getAllProcessInfo (empty when it does not answer)."""
    try:
        infos: list[dict[str, Any]] = rpc(cfg).getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return []
    return infos


def supervisord_env(cfg: StackConfig) -> dict[str, str]:
    """The environment to run supervisord and supervisorctl with."""
    env = dict(os.environ)
    env["SHILLINGS_VAR"] = str(cfg.var)
    return env


def print_status(cfg: StackConfig) -> None:
    """supervisorctl status, printed."""
    subprocess.run(
        [str(VENV_BIN / "supervisorctl"), "-c", str(cfg.conf), "status"],
        env=supervisord_env(cfg),
        check=False,
    )


def running_config(cfg: StackConfig) -> StackConfig:
    """The configuration of the running stack: the environment its supervisord was started
    with (ports, addresses, ...) and the sizes of its live program groups, which `scale`
    changes. ``cfg`` itself when supervisord does not run."""
    pid = supervisord_pid(cfg)
    if pid is None:
        return cfg
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return cfg
    env = dict(i.decode(errors="replace").split("=", 1) for i in raw.split(b"\0") if b"=" in i)
    env["SHILLINGS_VAR"] = str(cfg.var)
    groups = [i["group"] for i in process_infos(cfg)]
    if groups:
        env["WEB_PROCS"] = str(groups.count("web"))
        env["APP_PROCS"] = str(groups.count("app"))
        env["HOOKS_PROCS"] = str(groups.count("hooks"))
    return StackConfig.from_env(env)


def stop_program(cfg: StackConfig, name: str) -> None:
    """Stop program ``name`` (waiting until it has exited); already stopped is fine."""
    from supervisor.xmlrpc import Faults

    try:
        rpc(cfg).stopProcess(name, True)
    except xmlrpc.client.Fault as e:
        if e.faultCode != Faults.NOT_RUNNING:
            raise


def web_program(n: int) -> str:
    """supervisord's name of web process ``n``."""
    return f"web:web_{n:02d}"


def app_program(n: int) -> str:
    """supervisord's name of app server ``n``."""
    return f"app:app_{n:02d}"


def hooks_program(n: int) -> str:
    """supervisord's name of webhook delivery worker ``n``."""
    return f"hooks:hooks_{n:02d}"
