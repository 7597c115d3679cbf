"""The metrics the bot exports: bounded labels, the job-state gauge, provider and Discord request counts.

Counters only grow and the registry lives as long as the process, so every test compares a sample before
and after what it does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot import metrics
from bot.domain.catalogue import RequestedOptions, default_catalogue
from bot.domain.models import Job, JobOrigin, JobState, ProviderName, Requester
from bot.providers.errors import ProviderError, ProviderTransportError
from bot.providers.http import JsonApi, error_type_for_status


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def job(job_id: int = 1, state: JobState = JobState.QUEUED, credits: int | None = None) -> Job:
    request = default_catalogue().validate(None, RequestedOptions(prompt="x"))
    return Job(
        id=job_id,
        state=state,
        provider=ProviderName.RUNCOMFY,
        request=request,
        requester=Requester(origin=JobOrigin.DISCORD),
        created_at=0,
        updated_at=0,
        deadline_at=1,
        credits=credits,
    )


def test_status_classes_and_route_kinds_are_closed_sets():
    assert [metrics.status_class(code) for code in (200, 204, 404, 429, 503, None)] == [
        "2xx",
        "2xx",
        "4xx",
        "4xx",
        "5xx",
        "transport",
    ]
    assert [metrics.route_kind(m) for m in ("post", "GET", "DELETE", "PATCH")] == [
        "submit",
        "status",
        "cancel",
        "other",
    ]


class Active:
    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = jobs

    async def active_jobs(self) -> list[Job]:
        return self.jobs


async def test_the_state_gauge_follows_the_database_and_drops_to_zero():
    await metrics.refresh_job_states(
        Active([job(1, JobState.QUEUED), job(2, JobState.QUEUED), job(3, JobState.RUNNING)])
    )
    assert sample("seedance_jobs", state="queued") == 2
    assert sample("seedance_jobs", state="running") == 1
    assert sample("seedance_jobs", state="delivering") == 0

    await metrics.refresh_job_states(Active([job(3, JobState.RUNNING)]))
    assert sample("seedance_jobs", state="queued") == 0  # the jobs ended: no stale count is left behind


def test_a_delivered_job_spends_its_credits_and_a_failed_one_does_not():
    base = job(credits=4)
    labels = {"model": base.model, "provider": "runcomfy"}
    spent = sample("seedance_credits_spent_total")
    delivered = sample("seedance_jobs_finished_total", outcome="delivered", **labels)
    failed = sample("seedance_jobs_finished_total", outcome="failed", **labels)

    metrics.job_finished(replace(base, state=JobState.DELIVERED))
    metrics.job_finished(replace(base, state=JobState.FAILED))

    assert sample("seedance_credits_spent_total") == spent + 4
    assert sample("seedance_jobs_finished_total", outcome="delivered", **labels) == delivered + 1
    assert sample("seedance_jobs_finished_total", outcome="failed", **labels) == failed + 1


def test_the_exposition_parses_and_carries_no_job_or_guild_ids():
    metrics.job_started(job(987654))
    metrics.poll_lag(0.2)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert {"seedance_jobs_started", "seedance_poll_lag_seconds", "seedance_provider_requests"} <= set(
        families
    )
    for family in families.values():
        for s in family.samples:
            assert set(s.labels) <= {
                "state",
                "model",
                "provider",
                "outcome",
                "route",
                "status_class",
                "method",
                "le",
            }
            assert "987654" not in s.labels.values()


def _parse(status_code, payload, *, request_id, retry_after_s, redact) -> ProviderError | None:
    if status_code < 400:
        return None
    return error_type_for_status(status_code)(f"HTTP {status_code}", status_code=status_code)


def api(handler) -> JsonApi:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return JsonApi(
        client,
        base_url="https://api.example",
        api_key=SecretStr("k"),
        provider_label="Novita",
        error_parser=_parse,
    )


async def test_every_provider_exchange_is_counted_by_route_kind_and_status_class():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(503, json={})
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"status": "running"})

    before = {
        key: sample("seedance_provider_requests_total", provider="novita", route=route, status_class=cls)
        for key, (route, cls) in {
            "ok": ("status", "2xx"),
            "5xx": ("submit", "5xx"),
            "down": ("status", "transport"),
        }.items()
    }
    latency_before = sample("seedance_provider_request_seconds_count", provider="novita", route="status")
    client = api(handler)

    await client.exchange("GET", "/task")
    with pytest.raises(ProviderError):
        await client.exchange("POST", "/submit", json_body={})
    with pytest.raises(ProviderTransportError):
        await client.exchange("GET", "/down")

    after = {
        "ok": sample(
            "seedance_provider_requests_total", provider="novita", route="status", status_class="2xx"
        ),
        "5xx": sample(
            "seedance_provider_requests_total", provider="novita", route="submit", status_class="5xx"
        ),
        "down": sample(
            "seedance_provider_requests_total", provider="novita", route="status", status_class="transport"
        ),
    }
    assert {key: after[key] - before[key] for key in after} == {"ok": 1, "5xx": 1, "down": 1}
    assert (
        sample("seedance_provider_request_seconds_count", provider="novita", route="status")
        == latency_before + 2
    )


@pytest.fixture
async def rate_limiting_server() -> AsyncIterator[str]:
    async def limited(_request: web.Request) -> web.Response:
        return web.json_response({"message": "You are being rate limited.", "retry_after": 0.01}, status=429)

    async def fine(_request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/limited", limited)
    app.router.add_get("/fine", fine)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_discord_trace_counts_requests_and_429s(rate_limiting_server):
    limited = sample("seedance_discord_rate_limited_total")
    posts = sample("seedance_discord_requests_total", method="POST", status_class="4xx")
    gets = sample("seedance_discord_requests_total", method="GET", status_class="2xx")

    async with aiohttp.ClientSession(trace_configs=[metrics.discord_trace()]) as session:
        for _ in range(2):
            async with session.post(f"{rate_limiting_server}/limited") as response:
                assert response.status == 429
        async with session.get(f"{rate_limiting_server}/fine") as response:
            assert response.status == 200

    assert sample("seedance_discord_rate_limited_total") == limited + 2
    assert sample("seedance_discord_requests_total", method="POST", status_class="4xx") == posts + 2
    assert sample("seedance_discord_requests_total", method="GET", status_class="2xx") == gets + 1
