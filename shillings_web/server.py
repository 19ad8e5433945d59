"""One web process assembled: app-server pool, Redis, the Klein API and its HTTP site."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger

from shillings_proto.metrics import MetricsListener
from shillings_web.app import ShillingsApi
from shillings_web.config import WebConfig
from shillings_web.drain import Drainer
from shillings_web.metrics import WebMetrics
from shillings_web.pool import AppPool
from shillings_web.redisclient import Redis
from shillings_web.site import ShillingsSite

log = Logger()


class WebServer:
    """Starts and stops everything one web process runs."""

    def __init__(self, config: WebConfig, reactor: Any | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.config = config
        self.reactor = reactor
        self.pool = AppPool(
            config.app_servers,
            reactor=reactor,
            connections=config.app_connections,
            timeout=config.request_timeout,
            app_secret=config.app_secret,
        )
        self.redis = Redis(config.redis, reactor, timeout=config.redis_timeout)
        self.api = ShillingsApi(config, self.pool, self.redis, reactor)
        self.drainer = Drainer(self.api.app.resource(), reactor)
        self.metrics = WebMetrics(rule.rule for rule in self.api.app.url_map.iter_rules())
        self.site = ShillingsSite(self.drainer, config.max_body, metrics=self.metrics)
        self.site.noisy = False
        limiters = {"login": self.api.logins.limiter, "signup": self.api.signups}
        self.metrics.watch(self.site, self.pool, self.redis, self.api.cache, limiters)
        self._port: Any = None
        self.metrics_listener = (
            MetricsListener(reactor, config.metrics_listen, self.metrics.registry)
            if config.metrics_listen
            else None
        )

    async def start(self, listen: str | None = None) -> None:
        """Connect to Redis and the app servers (in the background) and start listening."""
        if self.metrics_listener is not None:
            await self.metrics_listener.start()
        self.redis.start()
        self.api.cache.start()
        self.pool.start()
        endpoint = serverFromString(self.reactor, listen or self.config.listen)
        self._port = await endpoint.listen(self.site)
        log.info(
            "web listening on {address}; app servers {servers}; redis {redis}",
            address=self.address,
            servers=",".join(self.config.app_servers),
            redis=self.config.redis.describe(),
        )

    @property
    def address(self) -> str:
        if self._port is None:
            return "-"
        host = self._port.getHost()
        if hasattr(host, "port"):
            return f"{host.host}:{host.port}"
        return str(getattr(host, "name", host))

    @property
    def port(self) -> int:
        assert self._port is not None
        return int(self._port.getHost().port)

    @property
    def metrics_port(self) -> int:
        """The TCP port of the metrics listener (``SHILLINGS_METRICS_LISTEN``; 0: none)."""
        return 0 if self.metrics_listener is None else self.metrics_listener.tcp_port

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let requests in progress finish and close every kept-alive
        connection without losing a request written into it (``drain``), up to ``grace``
        s; then disconnect from the app servers and Redis."""
        if self._port is not None:
            port, self._port = self._port, None
            await port.stopListening()
        grace = self.config.shutdown_grace if grace is None else grace
        left_open = await self.drainer.drain(grace)
        if left_open:
            log.warn("{n} connections still open after {grace}s", n=left_open, grace=grace)
        idle = self.site.wait_idle()
        idle.addTimeout(grace, self.reactor)
        try:
            await idle
        except defer.TimeoutError:
            log.warn(
                "{count} requests still in progress after {grace}s; stopping anyway",
                count=self.site.in_flight,
                grace=grace,
            )
        await self.pool.stop()
        await self.api.cache.settle(grace)
        self.api.cache.stop()
        await self.redis.stop()
        if self.metrics_listener is not None:
            await self.metrics_listener.stop()
        log.info("web stopped")
