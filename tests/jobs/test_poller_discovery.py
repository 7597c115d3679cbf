"""Discovery and wake-ups while running: a poller with `discover` takes over the jobs a dead process left
(when their leases expire) and those a clean stop freed (at once, told by a job event), and a job event for
a job it drives — a provider callback that reached another process — makes it poll that job at once."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.domain.models import JobOrigin, JobState, ProviderName
from bot.jobs.callbacks import CallbackServer, callback_key
from bot.providers.base import ProviderState, ProviderStatus
from bot.storage import open_stores
from bot.storage.jobs import LocalJobEvents
from tests.jobs.conftest import VIDEO_URL, RecordingNotifier
from tests.jobs.test_poller_ownership import make_poller, stored_job

QUEUED = ProviderStatus(ProviderState.QUEUED, queue_position=2)
DONE = ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)


async def queued_job(store, catalogue, provider, *, owner: str | None = None, lease_until: float = 0.0):
    """A job the provider has queued, leased to `owner` until `lease_until` (a process that dies then)."""
    job = await stored_job(store, catalogue)
    receipt = await provider.submit(None)
    job = await store.transition(
        job.id, JobState.QUEUED, provider_job_id=receipt.provider_job_id, next_poll_at=time.time()
    )
    if owner is not None:
        assert await store.claim([job.id], owner, until=lease_until) == [job.id]
    return job


async def test_a_dead_process_s_jobs_are_taken_over_when_their_leases_expire(
    db_path, provider, catalogue, http
):
    stores = await open_stores(db_path)
    provider.script = [DONE]
    notifier = RecordingNotifier()
    poller = make_poller(
        stores.jobs, provider, catalogue, notifier, http, lease_s=0.6, discover=JobOrigin.DISCORD
    )
    try:
        dies_at = time.time() + 0.8
        before = [await queued_job(stores.jobs, catalogue, provider, owner="dead", lease_until=dies_at)]
        assert await poller.start() == 0  # the lease is live: not this process's job yet
        # Jobs this process never saw at its start: made by the other process while both ran.
        after = [
            await queued_job(stores.jobs, catalogue, provider, owner="dead", lease_until=dies_at)
            for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        assert notifier.events == [] and not provider.status_calls  # never touched while the lease lived
        jobs = before + after
        await asyncio.wait_for(asyncio.gather(*(notifier.ended(job.id) for job in jobs)), 10)
        assert sorted(notifier.delivered) == sorted(job.id for job in jobs)
        assert all(provider.status_calls[job.provider_job_id] == 1 for job in jobs)
        assert time.time() >= dies_at
    finally:
        await poller.stop()
        await stores.close()


async def test_a_clean_stop_hands_its_jobs_to_another_process_at_once(db_path, provider, catalogue, http):
    # Discovery rounds are 20 s apart here: only the stopping process's event can make this quick.
    first_stores, second_stores = await open_stores(db_path), await open_stores(db_path)
    events = LocalJobEvents()  # what LISTEN/NOTIFY carries between processes
    provider.script = [QUEUED]
    first_notifier, second_notifier = RecordingNotifier(), RecordingNotifier()
    options = {"lease_s": 60, "discover": JobOrigin.DISCORD, "events": events}
    first = make_poller(first_stores.jobs, provider, catalogue, first_notifier, http, **options)
    second = make_poller(second_stores.jobs, provider, catalogue, second_notifier, http, **options)
    try:
        jobs = [await queued_job(first_stores.jobs, catalogue, provider) for _ in range(3)]
        assert await first.start() == 3
        assert await second.start() == 0
        await provider.wait_until(lambda: all(provider.status_calls[j.provider_job_id] >= 1 for j in jobs))
        for job in jobs:
            provider.scripts[job.provider_job_id] = [DONE]
        started = time.monotonic()
        await first.stop()
        await asyncio.wait_for(asyncio.gather(*(second_notifier.ended(j.id) for j in jobs)), 5)
        assert time.monotonic() - started < 5
        assert sorted(second_notifier.delivered) == sorted(j.id for j in jobs)
        assert first_notifier.delivered == {}
    finally:
        await second.stop()
        await first_stores.close()
        await second_stores.close()


async def test_a_job_a_poller_does_not_accept_is_handed_back(db_path, provider, catalogue, http):
    stores = await open_stores(db_path)
    notifier = RecordingNotifier()
    poller = make_poller(
        stores.jobs,
        provider,
        catalogue,
        notifier,
        http,
        lease_s=60,
        discover=JobOrigin.DISCORD,
        job_filter=lambda job: job.id % 2 == 0,
    )
    try:
        jobs = [await queued_job(stores.jobs, catalogue, provider) for _ in range(4)]
        await poller.start()
        for job in jobs:
            row = await stores.jobs.get(job.id)
            assert row.lease_owner == (poller.owner if job.id % 2 == 0 else None)
    finally:
        await poller.stop()
        await stores.close()


async def test_a_callback_at_another_process_wakes_the_job_s_owner(db_path, provider, catalogue, http):
    # The owner polls every 60 s; a callback reaching the other process makes it look within a second.
    owner_stores, other_stores = await open_stores(db_path), await open_stores(db_path)
    events = LocalJobEvents()
    provider.script = [QUEUED]
    options = {"poll_interval_s": 60.0, "lease_s": 60, "discover": JobOrigin.DISCORD, "events": events}
    owner = make_poller(owner_stores.jobs, provider, catalogue, RecordingNotifier(), http, **options)
    other = make_poller(other_stores.jobs, provider, catalogue, RecordingNotifier(), http, **options)
    job = await queued_job(owner_stores.jobs, catalogue, provider)
    callbacks = CallbackServer(
        public_url="https://bot.example/callbacks/ark",
        key=callback_key("ark-secret"),
        provider=ProviderName.RUNCOMFY,
        find_job=other_stores.jobs.find_by_provider_job,
        target=other,
        events=events,
        owner=other.owner,
    )
    app = web.Application()
    callbacks.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        assert await owner.start() == 1
        assert await other.start() == 0
        await provider.wait_until(lambda: provider.status_calls[job.provider_job_id] == 1)
        response = await client.post(
            f"/callbacks/ark?key={callback_key('ark-secret')}", json={"id": job.provider_job_id}
        )
        assert response.status == 200
        await provider.wait_until(lambda: provider.status_calls[job.provider_job_id] == 2, timeout=2)
        assert (await owner_stores.jobs.get(job.id)).lease_owner == owner.owner  # polled by its owner
    finally:
        await client.close()
        await other.stop()
        await owner.stop()
        await owner_stores.close()
        await other_stores.close()


async def test_a_job_nudged_at_another_process_is_looked_at_by_its_owner_at_once(
    db_path, provider, catalogue, http
):
    # A member cancels on the process that does not drive the job: its owner must see the change now,
    # not at its next poll a minute later.
    owner_stores, other_stores = await open_stores(db_path), await open_stores(db_path)
    events = LocalJobEvents()
    provider.script = [QUEUED]
    options = {"poll_interval_s": 60.0, "lease_s": 60, "discover": JobOrigin.DISCORD, "events": events}
    owner = make_poller(owner_stores.jobs, provider, catalogue, RecordingNotifier(), http, **options)
    other = make_poller(other_stores.jobs, provider, catalogue, RecordingNotifier(), http, **options)
    job = await queued_job(owner_stores.jobs, catalogue, provider)
    try:
        assert await owner.start() == 1
        assert await other.start() == 0
        await provider.wait_until(lambda: provider.status_calls[job.provider_job_id] == 1)
        other.poll_now(job.id)
        await provider.wait_until(lambda: provider.status_calls[job.provider_job_id] == 2, timeout=2)
        assert (await owner_stores.jobs.get(job.id)).lease_owner == owner.owner
    finally:
        await other.stop()
        await owner.stop()
        await owner_stores.close()
        await other_stores.close()
