"""Run the whole Shillings stack under one supervisord.

    stack.py render    write var/etc/programs.conf and var/etc/nginx.conf from the environment
    stack.py run       render, then supervisord in the foreground (Ctrl-C stops everything)
    stack.py start     render, start supervisord in the background, wait until /healthz is 200
    stack.py stop      shut supervisord and every program down; leave no process behind
    stack.py status    supervisorctl status, plus the /healthz answer
    stack.py restart   rolling restart: app servers one at a time, web processes via nginx
    stack.py scale     apply WEB_PROCS / APP_PROCS to the running stack while it serves
    stack.py ctl ARGS  supervisorctl -c <the config in use> ARGS
    stack.py nginx     render nginx.conf only and exec nginx in the foreground (docker-compose)

Every setting comes from the environment (see ``StackConfig``); the Makefile passes
``WEB_PROCS``, ``APP_PROCS``, ``SHILLINGS_HTTP_PORT``, ``SHILLINGS_VAR`` and friends through.
Stdlib only, plus ``supervisor`` and ``shillings_proto`` from the project's venv.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import xmlrpc.client

from shillings_stack.config import VENV_BIN, StackConfig, StackError
from shillings_stack.health import cmd_status
from shillings_stack.lifecycle import (
    cmd_nginx,
    cmd_render,
    cmd_restart,
    cmd_run,
    cmd_start,
    cmd_stop,
    exclusive,
)
from shillings_stack.scale import cmd_scale
from shillings_stack.supervisor import running_config, supervisord_env, supervisord_pid


def cmd_ctl(cfg: StackConfig, args: list[str]) -> int:
    """Exec supervisorctl on the config in use."""
    ctl = str(VENV_BIN / "supervisorctl")
    os.execve(ctl, [ctl, "-c", str(cfg.conf), *args], supervisord_env(cfg))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=["render", "run", "start", "stop", "status", "restart", "scale", "ctl", "nginx"],
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="supervisorctl arguments (ctl)")
    args = parser.parse_args(argv)
    try:
        cfg = StackConfig.from_env()
        if args.command in ("status", "restart", "scale"):
            cfg = running_config(cfg)
        if args.command == "ctl":
            return cmd_ctl(cfg, args.args)
        if args.command in ("restart", "scale"):
            if not supervisord_pid(cfg):
                raise StackError(f"the stack is not running (var: {cfg.var}); `make start` first")
            with exclusive(cfg):
                return cmd_restart(cfg) if args.command == "restart" else cmd_scale(cfg)
        commands = {
            "render": cmd_render,
            "run": cmd_run,
            "start": cmd_start,
            "stop": cmd_stop,
            "status": cmd_status,
            "nginx": cmd_nginx,
        }
        return commands[args.command](cfg)
    except StackError as e:
        print(f"shillings: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"shillings: {e}", file=sys.stderr)
        return 1
    except xmlrpc.client.Fault as e:
        print(f"shillings: supervisord refused: {e.faultString}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
