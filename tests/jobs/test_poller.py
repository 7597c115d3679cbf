"""JobPoller drives stored jobs to an end: delivery, failure, timeout, restart, bounded concurrency."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.domain.catalogue import RequestedOptions
from bot.domain.models import JobOrigin, JobState, ProviderName, Requester
from bot.jobs.download import AddressPolicy
from bot.jobs.errors import DeliveryError
from bot.jobs.poller import JobPoller
from bot.providers.base import ProviderState, ProviderStatus
from bot.providers.errors import ProviderNotFoundError, ProviderRateLimitError, ProviderServerError
from bot.storage.database import open_database
from bot.storage.jobs import JobStore, NewJob
from tests.jobs.conftest import VIDEO_BYTES, VIDEO_URL

REQUESTER = Requester(origin=JobOrigin.DISCORD, user_id=42, guild_id=1, channel_id=2)


def make_poller(store, provider, catalogue, notifier, http, **kwargs):
    options = {"poll_interval_s": 0.01, "max_concurrency": 4, "download_policy": AddressPolicy.UNCHECKED}
    options.update(kwargs)
    return JobPoller(store, {ProviderName.RUNCOMFY: provider}, catalogue, notifier, http, **options)


async def queued_job(
    store, catalogue, provider, *, deadline_in: float = 60.0, created_at: float | None = None
):
    """A job as JobService leaves it: stored, submitted, QUEUED."""
    request = catalogue.validate(None, RequestedOptions(prompt="go"))
    clock_store = JobStore(store._db, clock=(lambda: created_at)) if created_at is not None else store
    job = await clock_store.create(
        NewJob(
            provider=ProviderName.RUNCOMFY,
            request=request,
            requester=REQUESTER,
            deadline_at=(created_at or time.time()) + deadline_in,
        )
    )
    receipt = await provider.submit(None)
    return await store.transition(
        job.id,
        JobState.QUEUED,
        provider_job_id=receipt.provider_job_id,
        submitted_at=time.time(),
        next_poll_at=time.time(),
    )


async def run_until_ended(poller, notifier, job, timeout: float = 10.0):
    poller.track(job)
    return await asyncio.wait_for(notifier.ended(job.id), timeout)


async def test_a_job_is_polled_to_success_and_its_video_delivered_once(
    store, provider, catalogue, notifier, http, video_server, tmp_path
):
    poller = make_poller(store, provider, catalogue, notifier, http, download_dir=tmp_path)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    final = await store.get(job.id)
    assert final.state is JobState.DELIVERED
    assert (final.delivery_ref, final.video_bytes, final.cost_usd, final.video_url) == (
        f"message-{job.id}",
        len(VIDEO_BYTES),
        0.12,
        VIDEO_URL,
    )
    assert notifier.delivered[job.id] == VIDEO_BYTES
    kinds = [(kind, state) for kind, _, state in notifier.events]
    assert kinds == [
        ("progress", JobState.QUEUED),
        ("progress", JobState.RUNNING),
        ("progress", JobState.SUCCEEDED),
        # DELIVERING is recorded before the post, DELIVERED right after it, and only then the cosmetics.
        ("delivered", JobState.DELIVERING),
        ("video_delivered", JobState.DELIVERED),
    ]
    assert video_server[0] == [VIDEO_URL]
    assert list(tmp_path.glob("seedance-*")) == []  # the temporary file is gone


@pytest.mark.parametrize(
    ("status", "state", "code", "message"),
    [
        (
            ProviderStatus(ProviderState.FAILED, error_code="E1", error_message="face detected"),
            JobState.FAILED,
            "E1",
            "face detected",
        ),
        (
            ProviderStatus(ProviderState.CANCELLED),
            JobState.CANCELLED,
            "cancelled",
            "cancelled at the video service",
        ),
        (ProviderStatus(ProviderState.EXPIRED), JobState.EXPIRED, "expired", "waited too long"),
        (
            ProviderStatus(ProviderState.SUCCEEDED, video_url=None),
            JobState.FAILED,
            "no_output",
            "gave no video",
        ),
        (
            ProviderNotFoundError("gone", status_code=404),
            JobState.FAILED,
            "provider_lost_job",
            "no longer knows",
        ),
    ],
)
async def test_every_terminal_outcome_ends_the_job_with_a_reason(
    store, provider, catalogue, notifier, http, status, state, code, message
):
    provider.script = [status]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        ended = await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert ended.state is state
    assert ended.error_code == code
    assert message in ended.error_message
    assert notifier.delivered == {}


async def test_a_job_past_its_deadline_times_out_and_is_cancelled_at_the_provider(
    store, provider, catalogue, notifier, http
):
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=9)]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    job = await queued_job(store, catalogue, provider, deadline_in=0.3)
    try:
        ended = await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert ended.state is JobState.TIMED_OUT
    assert "limit" in ended.error_message
    assert provider.cancelled == [job.provider_job_id]


async def test_provider_errors_while_polling_back_off_and_recover(store, provider, catalogue, notifier, http):
    provider.script = [
        ProviderServerError("502", status_code=502),
        ProviderRateLimitError("slow down", status_code=429, retry_after_s=0.05),
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL),
    ]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        ended = await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert ended.state is JobState.DELIVERING  # handed to the notifier, then recorded as delivered
    assert (await store.get(job.id)).state is JobState.DELIVERED
    assert provider.status_calls[job.provider_job_id] == 3


async def test_a_new_process_resumes_a_job_and_delivers_it_exactly_once(
    db_path, provider, catalogue, notifier, http
):
    # First process: submits, sees the job queued, then stops (crash or restart) before it ends.
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=3)]
    conn = await open_database(db_path)
    store = JobStore(conn)
    first = make_poller(store, provider, catalogue, notifier, http)
    await first.start()
    job = await queued_job(store, catalogue, provider)
    first.track(job)
    await provider.wait_until(lambda: provider.status_calls[job.provider_job_id] > 0)
    await first.stop()
    await conn.close()
    assert [kind for kind, _, _ in notifier.events] == ["progress"]  # it saw "queued", nothing more

    # Second process: a fresh connection and poller find the job in the store and finish it.
    provider.scripts[job.provider_job_id] = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    conn = await open_database(db_path)
    try:
        store = JobStore(conn)
        second = make_poller(store, provider, catalogue, notifier, http)
        assert await second.start() == 1
        try:
            await asyncio.wait_for(notifier.ended(job.id), 10)
        finally:
            await second.stop()
        assert (await store.get(job.id)).state is JobState.DELIVERED
    finally:
        await conn.close()
    assert [kind for kind, _, _ in notifier.events].count("delivered") == 1


async def test_a_job_left_pending_by_a_dead_process_becomes_unknown_and_is_never_resent(
    store, provider, catalogue, notifier, http
):
    request = catalogue.validate(None, RequestedOptions(prompt="go"))
    old = JobStore(store._db, clock=lambda: time.time() - 3600)
    job = await old.create(
        NewJob(
            provider=ProviderName.RUNCOMFY,
            request=request,
            requester=REQUESTER,
            deadline_at=time.time() + 3600,
        )
    )
    await old.annotate(job.id, submit_started_at=time.time() - 3600)  # it was being sent when it died
    poller = make_poller(store, provider, catalogue, notifier, http)
    assert await poller.start() == 1
    try:
        ended = await asyncio.wait_for(notifier.ended(job.id), 10)
    finally:
        await poller.stop()
    assert ended.state is JobState.UNKNOWN
    assert "not charged twice" in ended.error_message
    assert provider.submissions == []


async def test_no_more_than_max_concurrency_jobs_are_polled_at_once(
    store, provider, catalogue, notifier, http
):
    provider.gate = asyncio.Event()
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    poller = make_poller(store, provider, catalogue, notifier, http, max_concurrency=3)
    await poller.start()
    jobs = [await queued_job(store, catalogue, provider) for _ in range(12)]
    try:
        for job in jobs:
            poller.track(job)
        await provider.wait_until(lambda: provider.in_flight >= 3)
        provider.gate.set()
        await asyncio.wait_for(asyncio.gather(*(notifier.ended(job.id) for job in jobs)), 10)
    finally:
        await poller.stop()
    assert provider.max_in_flight == 3
    assert sorted(notifier.delivered) == sorted(job.id for job in jobs)


async def test_a_refused_delivery_is_retried_and_posted_once(store, provider, catalogue, notifier, http):
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    notifier.failures_before_delivery = [DeliveryError("Discord is having a moment", permanent=False)]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert [kind for kind, _, _ in notifier.events].count("delivered") == 1
    assert (await store.get(job.id)).state is JobState.DELIVERED


async def test_a_permanently_refused_delivery_fails_the_job_with_the_reason(
    store, provider, catalogue, notifier, http
):
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    notifier.failures_before_delivery = [DeliveryError("the channel was deleted", permanent=True)]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        ended = await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert ended.state is JobState.FAILED
    assert ended.error_code == "delivery_failed"
    assert "the channel was deleted" in ended.error_message


@pytest.mark.parametrize(
    ("max_video_bytes", "response_status", "message"),
    [(100, 200, "over the bot's limit"), (10_000_000, 404, "no longer at the provider")],
)
async def test_a_video_that_cannot_be_fetched_fails_clearly(
    store, provider, catalogue, notifier, http, video_server, max_video_bytes, response_status, message
):
    import httpx

    _, responses, _ = video_server
    if response_status != 200:
        responses[VIDEO_URL] = httpx.Response(response_status)
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    poller = make_poller(store, provider, catalogue, notifier, http, max_video_bytes=max_video_bytes)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        ended = await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    assert ended.state is JobState.FAILED
    assert ended.error_code == "download_failed"
    assert message in ended.error_message
    assert notifier.delivered == {}


async def test_a_poll_asked_for_during_a_running_step_happens_right_after_it_without_blocking_others(
    store, provider, catalogue, notifier, http
):
    provider.gate = asyncio.Event()
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=2)]
    poller = make_poller(store, provider, catalogue, notifier, http, poll_interval_s=60.0)
    await poller.start()
    busy = await queued_job(store, catalogue, provider)
    other = await queued_job(store, catalogue, provider)
    try:
        poller.track(busy)
        await provider.wait_until(lambda: provider.in_flight == 1)
        poller.poll_now(busy.id)  # a callback arrives while the step is still waiting on the provider
        poller.track(other)
        # The other job is not held up behind the busy one: it reaches the provider too.
        await provider.wait_until(lambda: provider.in_flight == 2)
        provider.gate.set()
        # With a 60 s interval, only the remembered "look again" explains a second poll of the busy job.
        await provider.wait_until(lambda: provider.status_calls[busy.provider_job_id] >= 2)
    finally:
        await poller.stop()


LAST_FRAME_URL = "https://files.test/out/last.png"


@pytest.mark.parametrize("served", [True, False])
async def test_a_returned_last_frame_goes_with_the_video_and_its_absence_does_not_stop_it(
    store, provider, catalogue, notifier, http, video_server, tmp_path, served
):
    import httpx

    _, responses, _ = video_server
    if served:
        responses[LAST_FRAME_URL] = httpx.Response(200, content=b"\x89PNG last frame")
    provider.script = [
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL, last_frame_url=LAST_FRAME_URL),
    ]
    poller = make_poller(store, provider, catalogue, notifier, http, download_dir=tmp_path)
    await poller.start()
    job = await queued_job(store, catalogue, provider)
    try:
        await run_until_ended(poller, notifier, job)
    finally:
        await poller.stop()
    final = await store.get(job.id)
    assert final.state is JobState.DELIVERED
    assert final.last_frame_url == LAST_FRAME_URL
    assert notifier.delivered[job.id] == VIDEO_BYTES
    assert notifier.last_frames[job.id] == (b"\x89PNG last frame" if served else None)
