"""``shillings-web``: run one web process in the foreground, logging to stdout (or a file)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
)

from shillings_proto.envconfig import LOG_LEVELS
from shillings_proto.logfile import log_stream
from shillings_proto.services import run
from shillings_web.config import ConfigError, WebConfig
from shillings_web.logs import REQUEST_NAMESPACE, BatchedTextObserver
from shillings_web.service import WebService, web_service


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shillings-web",
        description="Run one Shillings web process (REST API) in the foreground.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--listen",
        metavar="ENDPOINT",
        help="Twisted server endpoint string (default: $SHILLINGS_WEB_LISTEN "
        "or tcp:8081:interface=127.0.0.1)",
    )
    where.add_argument(
        "--port", type=int, metavar="N", help="listen on 127.0.0.1:N (shortcut for --listen)"
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="lowest level logged (default: $SHILLINGS_LOG_LEVEL or info)",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help="write the log to PATH (rotated by size) instead of stdout",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = WebConfig.from_env()
    except (ConfigError, OSError) as e:
        print(f"shillings-web: {e}", file=sys.stderr)
        return 2
    if args.port is not None and not 0 < args.port < 65536:
        print("shillings-web: --port must be 1-65535", file=sys.stderr)
        return 2
    listen = args.listen or (
        f"tcp:{args.port}:interface=127.0.0.1" if args.port is not None else config.listen
    )

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    from twisted.internet import reactor as default_reactor

    reactor: Any = default_reactor

    levels = LogLevelFilterPredicate(
        defaultLogLevel=LogLevel.levelWithName(args.log_level or config.log_level)
    )
    # Redis reconnection attempts are logged by the cache when the outage starts and ends.
    levels.setLogLevelForNamespace("twisted.application._client_service", LogLevel.warn)
    output = BatchedTextObserver(log_stream(args.log_file), reactor)
    observer: Any = FilteringLogObserver(output, [levels])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)

    service = web_service(config, reactor, listen)
    server = cast(WebService, service.getServiceNamed("web process")).server
    if LogLevel.info < levels.logLevelForNamespace(REQUEST_NAMESPACE):
        server.site.request_log = lambda line, when: None  # request lines filtered out
    else:
        server.site.request_log = output.request_line
    try:
        run(service, reactor)
    finally:
        output.stop()
    child = service.getServiceNamed("web process")
    return 1 if isinstance(child, WebService) and child.failed else 0


if __name__ == "__main__":
    sys.exit(main())
