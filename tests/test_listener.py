"""The bot's HTTP listener: /healthz tells a health check the truth, /metrics serves Prometheus text."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import listener as listener_module
from bot.listener import HealthChecks, HttpListener


class World:
    """What the probes report; tests flip it."""

    def __init__(self) -> None:
        self.connected = True
        self.database: Callable[[], Awaitable[object]] = lambda: asyncio.sleep(0)
        self.refreshes = 0

    async def refresh(self) -> None:
        self.refreshes += 1

    async def ping(self) -> object:
        return await self.database()


@pytest.fixture
async def served() -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    world = World()
    http = HttpListener(
        host="127.0.0.1",
        port=0,
        checks=HealthChecks(discord_connected=lambda: world.connected, database_ping=world.ping),
        refresh_metrics=world.refresh,
    )
    await http.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http.port}") as client:
            yield world, client
    finally:
        await http.stop()


async def test_healthy_when_discord_is_connected_and_the_database_answers(served):
    _world, client = served
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "discord": "connected", "database": "ok"}


async def test_unhealthy_while_discord_is_disconnected(served):
    world, client = served
    world.connected = False
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["discord"] == "disconnected"


@pytest.mark.parametrize(
    "failure", [sqlite3.OperationalError("disk I/O error"), ValueError("no active connection")]
)
async def test_unhealthy_when_the_database_fails(served, failure):
    world, client = served

    async def broken() -> object:
        raise failure

    world.database = broken
    response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "discord": "connected", "database": "unavailable"}


async def test_unhealthy_when_the_database_hangs(served, monkeypatch):
    world, client = served
    monkeypatch.setattr(listener_module, "DATABASE_TIMEOUT_S", 0.05)
    world.database = lambda: asyncio.Event().wait()
    response = await client.get("/healthz")
    assert response.status_code == 503


async def test_metrics_are_prometheus_text_refreshed_at_each_scrape(served):
    world, client = served
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "seedance_jobs_started" in names
    await client.get("/metrics")
    assert world.refreshes == 2


async def test_a_taken_port_is_an_oserror():
    world = World()
    checks = HealthChecks(discord_connected=lambda: True, database_ping=world.refresh)
    first = HttpListener(host="127.0.0.1", port=0, checks=checks)
    await first.start()
    try:
        second = HttpListener(host="127.0.0.1", port=first.port, checks=checks)
        with pytest.raises(OSError):
            await second.start()
    finally:
        await first.stop()
