"""/healthz and /metrics of the real bot against the doubles, on its one HTTP listener."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.models import JobState
from tests.doubles.runcomfy import Lifecycle
from tests.e2e.conftest import eventually, job_in_state


def base_url(bot) -> str:
    return f"http://127.0.0.1:{bot.listener.port}"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def healthy(client: httpx.AsyncClient) -> httpx.Response | None:
    response = await client.get("/healthz")
    return response if response.status_code == 200 else None


async def test_healthz_is_200_once_ready_and_503_when_the_database_stops_answering(bot, monkeypatch):
    async with httpx.AsyncClient(base_url=base_url(bot)) as client:
        response = await eventually(lambda: healthy(client), timeout=10)
        assert response.json() == {"status": "ok", "discord": "connected", "database": "ok"}

        async def closed(_key: str) -> str | None:
            raise ValueError("no active connection")

        monkeypatch.setattr(bot.runtime.state_store, "get", closed)
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["database"] == "unavailable"


async def test_healthz_is_503_while_discord_is_disconnected(bot, monkeypatch):
    async with httpx.AsyncClient(base_url=base_url(bot)) as client:
        await eventually(lambda: healthy(client), timeout=10)
        # A dropped gateway reconnects within milliseconds against the double: hold the socket "closed".
        monkeypatch.setattr(type(bot.ws), "open", property(lambda _ws: False))
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["discord"] == "disconnected"


async def test_metrics_count_a_job_started_and_delivered_after_animate(harness, bot, discord, runcomfy):
    runcomfy.script(Lifecycle.queued(1).running(1).completes(cost=0.2))
    async with httpx.AsyncClient(base_url=base_url(bot)) as client:
        before = samples((await client.get("/metrics")).text)

        interaction = await harness.animate(image=harness.image(), prompt="waves", duration=4)
        await interaction.wait_original(timeout=20)
        job = await job_in_state(bot, 1, JobState.DELIVERED)

        response = await client.get("/metrics")
        assert response.status_code == 200
        after = samples(response.text)

    model = {("model", job.model), ("provider", "runcomfy")}
    started = ("seedance_jobs_started_total", frozenset(model))
    finished = ("seedance_jobs_finished_total", frozenset({*model, ("outcome", "delivered")}))
    assert after[started] - before.get(started, 0) == 1
    assert after[finished] - before.get(finished, 0) == 1
    submits = (
        "seedance_provider_requests_total",
        frozenset({("provider", "runcomfy"), ("route", "submit"), ("status_class", "2xx")}),
    )
    assert after[submits] - before.get(submits, 0) == 1
    assert after[("seedance_jobs", frozenset({("state", "queued")}))] == 0  # read from the database
    assert after[("seedance_poll_lag_seconds_count", frozenset())] > before.get(
        ("seedance_poll_lag_seconds_count", frozenset()), 0
    )
    assert sum(v for (name, _), v in after.items() if name == "seedance_discord_requests_total") > 0
