"""The callback endpoint wakes a job only for a caller that knows the key, and never trusts the body.

It is served by the bot's shared HTTP listener, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.domain.models import Job, JobState, ProviderName
from bot.jobs.callbacks import (
    MAX_BODY_BYTES,
    CallbackServer,
    callback_key,
    callback_url_with_key,
)
from bot.listener import HealthChecks, HttpListener

KEY = callback_key("ark-secret")


class Poller:
    def __init__(self) -> None:
        self.woken: list[int] = []

    def poll_now(self, job_id: int) -> None:
        self.woken.append(job_id)


class Jobs:
    """A stand-in for JobStore.find_by_provider_job with two jobs, one still active."""

    def __init__(self, states: dict[str, JobState]) -> None:
        self.states = states
        self.lookups: list[tuple[ProviderName, str]] = []

    async def find(self, provider: ProviderName, task_id: str) -> Job | None:
        self.lookups.append((provider, task_id))
        state = self.states.get(task_id)
        if state is None:
            return None
        return _job(len(self.lookups), state)


def _job(job_id: int, state: JobState) -> Job:
    from bot.domain.catalogue import RequestedOptions, default_catalogue
    from bot.domain.models import JobOrigin, Requester

    request = default_catalogue().validate(None, RequestedOptions(prompt="x"))
    return Job(
        id=job_id,
        state=state,
        provider=ProviderName.ARK,
        request=request,
        requester=Requester(origin=JobOrigin.DISCORD),
        created_at=0,
        updated_at=0,
        deadline_at=1,
    )


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[CallbackServer, Poller, Jobs, str]]:
    poller = Poller()
    jobs = Jobs({"cgt-running": JobState.RUNNING, "cgt-done": JobState.DELIVERED})
    server = CallbackServer(
        public_url="https://bot.example.com/hooks/ark",
        key=KEY,
        provider=ProviderName.ARK,
        find_job=jobs.find,
        target=poller,
    )
    listener = HttpListener(
        host="127.0.0.1",
        port=0,
        checks=HealthChecks(discord_connected=lambda: True, database_ping=lambda: asyncio.sleep(0)),
        callbacks=server,
    )
    await listener.start()
    try:
        yield server, poller, jobs, f"http://127.0.0.1:{listener.port}/hooks/ark"
    finally:
        await listener.stop()


async def test_a_callback_with_the_key_wakes_its_job(endpoint):
    server, poller, jobs, url = endpoint
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, params={"key": KEY}, json={"id": "cgt-running", "status": "succeeded"}
        )
    assert response.status_code == 200
    assert poller.woken == [1]
    assert jobs.lookups == [(ProviderName.ARK, "cgt-running")]
    assert server.woken == 1


async def test_without_the_key_nothing_is_looked_up(endpoint):
    _, poller, jobs, url = endpoint
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, json={"id": "cgt-running"})
        wrong = await http.post(url, params={"key": "0" * 32}, json={"id": "cgt-running"})
    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert poller.woken == []
    assert jobs.lookups == []


async def test_unknown_and_finished_tasks_get_the_same_answer_and_wake_nothing(endpoint):
    _, poller, _, url = endpoint
    async with httpx.AsyncClient() as http:
        unknown = await http.post(url, params={"key": KEY}, json={"id": "cgt-nobody"})
        finished = await http.post(url, params={"key": KEY}, json={"id": "cgt-done"})
    assert (
        (unknown.status_code, unknown.json())
        == (finished.status_code, finished.json())
        == (200, {"ok": True})
    )
    assert poller.woken == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b'["cgt-running"]', 400),
        (b'{"status": "succeeded"}', 400),
        (b'{"id": 42}', 400),
        (b'{"id": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}', 413),
    ],
)
async def test_malformed_or_oversized_bodies_are_refused(endpoint, body, status):
    _, poller, _, url = endpoint
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, params={"key": KEY}, content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == status
    assert poller.woken == []


async def test_only_post_on_the_configured_path_is_served(endpoint):
    _, poller, _, url = endpoint
    async with httpx.AsyncClient() as http:
        other_path = await http.post(
            url.replace("/hooks/ark", "/other"), params={"key": KEY}, json={"id": "x"}
        )
        get = await http.get(url, params={"key": KEY})
    assert other_path.status_code == 404
    assert get.status_code == 405
    assert poller.woken == []


def test_the_key_is_stable_and_not_the_api_key():
    assert callback_key("ark-secret") == KEY
    assert callback_key("another") != KEY
    assert "ark-secret" not in KEY


def test_the_key_is_added_to_the_public_url_keeping_its_query():
    assert callback_url_with_key("https://bot.example.com/cb", "abc") == "https://bot.example.com/cb?key=abc"
    assert (
        callback_url_with_key("https://bot.example.com/cb?source=ark&key=old", "abc")
        == "https://bot.example.com/cb?source=ark&key=abc"
    )
