"""The bot's one HTTP listener: `GET /healthz`, `GET /metrics`, and the provider callback endpoint.

Always on (HTTP_LISTEN_HOST:HTTP_LISTEN_PORT, loopback by default; the Docker image listens on 0.0.0.0 so
its health check and a proxy can reach it). One aiohttp application and one site serve everything, so the
callback endpoint and the health check never compete for a port.

`/healthz` answers 200 with a small JSON status when Discord is connected and the database answers, 503 with
the same JSON otherwise: what a container health check or a load balancer needs, and nothing about jobs.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from bot import metrics
from bot.jobs.callbacks import MAX_BODY_BYTES, CallbackServer

log = logging.getLogger(__name__)

#: A database that takes longer than this to answer one tiny query is not healthy.
DATABASE_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True)
class Health:
    """What `/healthz` reports."""

    discord_connected: bool
    database_ok: bool

    @property
    def ok(self) -> bool:
        """Healthy: Discord connected and the database answering."""
        return self.discord_connected and self.database_ok

    def as_json(self) -> dict[str, object]:
        """The JSON body of `/healthz`."""
        return {
            "status": "ok" if self.ok else "unavailable",
            "discord": "connected" if self.discord_connected else "disconnected",
            "database": "ok" if self.database_ok else "unavailable",
        }


@dataclass(frozen=True)
class HealthChecks:
    """How to tell that the bot is healthy: both probes are called at each `/healthz` request."""

    #: Whether the Discord gateway connection is up (and the bot ready).
    discord_connected: Callable[[], bool]
    #: One tiny query; raising (or taking longer than DATABASE_TIMEOUT_S) means the database is down.
    database_ping: Callable[[], Awaitable[object]]


class HttpListener:
    """Serves `/healthz`, `/metrics` and, when given, the provider callbacks on one host and port."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        checks: HealthChecks,
        refresh_metrics: Callable[[], Awaitable[None]] | None = None,
        callbacks: CallbackServer | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._checks = checks
        self._refresh_metrics = refresh_metrics
        self._callbacks = callbacks
        self._runner: web.AppRunner | None = None

    @property
    def host(self) -> str:
        """The configured host."""
        return self._host

    @property
    def port(self) -> int:
        """The port the listener is bound to (the real one when started with port 0)."""
        if self._runner is None:
            raise RuntimeError("the HTTP listener is not running")
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("the HTTP listener has no TCP address")

    async def start(self) -> None:
        """Start listening; raises OSError when the address is taken."""
        # The callback body cap is the largest any route needs: health and metrics are bodiless GETs.
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        if self._callbacks is not None:
            self._callbacks.add_routes(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("HTTP listener on %s:%d (/healthz, /metrics)", self._host, self.port)
        if self._callbacks is not None:
            log.info("provider callbacks served at %s:%d%s", self._host, self.port, self._callbacks.path)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self) -> Health:
        """Check Discord and the database now."""
        return Health(discord_connected=self._checks.discord_connected(), database_ok=await self._ping())

    async def _ping(self) -> bool:
        try:
            await asyncio.wait_for(self._checks.database_ping(), DATABASE_TIMEOUT_S)
        except (sqlite3.Error, ValueError, OSError, TimeoutError) as error:
            # aiosqlite raises ValueError on a closed connection; sqlite3.Error covers locked or broken files.
            log.warning("health check: the database does not answer: %s", error)
            return False
        return True

    async def _healthz(self, _request: web.Request) -> web.Response:
        health = await self.health()
        return web.json_response(health.as_json(), status=200 if health.ok else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self._refresh_metrics is not None:
            try:
                await self._refresh_metrics()
            except (sqlite3.Error, ValueError, OSError) as error:
                # The other metrics are still worth serving; the state gauge keeps its last values.
                log.warning("metrics: could not read job states: %s", error)
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})
