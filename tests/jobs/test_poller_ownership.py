"""The poller's promises where they break: a kill between a post and its record, endings told once, a request
interrupted before it was sent, two processes on one database, a video that cannot be saved here."""

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
from bot.storage.jobs import JobStore, NewJob
from tests.jobs.conftest import VIDEO_BYTES, VIDEO_URL, RecordingNotifier

REQUESTER = Requester(origin=JobOrigin.DISCORD, user_id=42, guild_id=1, channel_id=2)


def make_poller(store, provider, catalogue, notifier, http, **kwargs):
    options = {"poll_interval_s": 0.01, "max_concurrency": 4, "download_policy": AddressPolicy.UNCHECKED}
    options.update(kwargs)
    return JobPoller(store, {ProviderName.RUNCOMFY: provider}, catalogue, notifier, http, **options)


async def stored_job(store, catalogue, **fields):
    request = catalogue.validate(None, RequestedOptions(prompt="go"))
    job = await store.create(
        NewJob(
            provider=ProviderName.RUNCOMFY,
            request=request,
            requester=REQUESTER,
            deadline_at=time.time() + 600,
        )
    )
    return job


async def succeeded_job(store, catalogue, provider, *, delivering: bool = False):
    job = await stored_job(store, catalogue)
    receipt = await provider.submit(None)
    await store.transition(job.id, JobState.QUEUED, provider_job_id=receipt.provider_job_id)
    job = await store.transition(job.id, JobState.SUCCEEDED, video_url=VIDEO_URL, next_poll_at=time.time())
    if delivering:
        job = await store.transition(job.id, JobState.DELIVERING)
    return job


class PostsThenLosesTheAnswer(RecordingNotifier):
    """Discord accepted the upload, but the answer never came back (a dropped connection, a kill)."""

    async def deliver_video(self, job, video):
        self.delivered[job.id] = video.path.read_bytes()
        self.events.append(("posted", job.id, job.state))
        raise DeliveryError("the connection dropped after the upload", permanent=False)


async def test_a_post_whose_answer_was_lost_is_adopted_not_posted_again(store, provider, catalogue, http):
    notifier = PostsThenLosesTheAnswer()
    job = await succeeded_job(store, catalogue, provider)
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    try:
        await store_state(store, job.id, JobState.DELIVERED)
    finally:
        await poller.stop()
    kinds = [kind for kind, _, _ in notifier.events]
    assert kinds.count("posted") == 1
    assert kinds[-2:] == ["find_delivery", "video_delivered"]
    final = await store.get(job.id)
    assert final.delivery_ref == f"message-{job.id}"


async def test_a_job_found_delivering_after_a_crash_with_its_video_posted_is_only_recorded(
    store, provider, catalogue, notifier, http, video_server
):
    job = await succeeded_job(store, catalogue, provider, delivering=True)
    notifier.delivered[job.id] = VIDEO_BYTES  # the dead process's post
    poller = make_poller(store, provider, catalogue, notifier, http)
    assert await poller.start() == 1
    try:
        await store_state(store, job.id, JobState.DELIVERED)
    finally:
        await poller.stop()
    assert [kind for kind, _, _ in notifier.events] == ["find_delivery", "video_delivered"]
    assert video_server[0] == []  # not even downloaded again


async def test_a_job_found_delivering_without_a_post_is_posted_once(
    store, provider, catalogue, notifier, http
):
    job = await succeeded_job(store, catalogue, provider, delivering=True)
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    try:
        await asyncio.wait_for(notifier.ended(job.id), 10)
        await store_state(store, job.id, JobState.DELIVERED)
    finally:
        await poller.stop()
    assert [kind for kind, _, _ in notifier.events][:2] == ["find_delivery", "delivered"]
    assert notifier.delivered[job.id] == VIDEO_BYTES


async def test_an_ending_is_told_again_until_it_gets_through_and_then_never_again(
    store, provider, catalogue, http
):
    class FlakyEndings(RecordingNotifier):
        failures = 2

        async def job_ended(self, job):
            if self.failures:
                self.failures -= 1
                self.events.append(("ending_failed", job.id, job.state))
                raise DeliveryError("Discord is down", permanent=False)
            await super().job_ended(job)

    notifier = FlakyEndings()
    provider.script = [ProviderStatus(ProviderState.FAILED, error_code="E1", error_message="no")]
    job = await stored_job(store, catalogue)
    receipt = await provider.submit(None)
    job = await store.transition(job.id, JobState.QUEUED, provider_job_id=receipt.provider_job_id)
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    try:
        poller.track(job)
        await asyncio.wait_for(notifier.ended(job.id), 10)
        await until(lambda: store.get(job.id), lambda j: j.announced_at is not None)
    finally:
        await poller.stop()
    assert [kind for kind, _, _ in notifier.events] == ["ending_failed", "ending_failed", "ended"]

    # A later start finds nothing left to say.
    again = RecordingNotifier()
    second = make_poller(store, provider, catalogue, again, http)
    assert await second.start() == 0
    await second.stop()
    assert again.events == []


async def test_an_ending_recorded_before_a_crash_is_told_at_the_next_start(
    store, provider, catalogue, notifier, http
):
    job = await stored_job(store, catalogue)
    await store.transition(job.id, JobState.QUEUED, provider_job_id="req-x")
    await store.transition(job.id, JobState.CANCELLED, error_code="cancelled")  # then the process died
    poller = make_poller(store, provider, catalogue, notifier, http)
    assert await poller.start() == 1
    try:
        ended = await asyncio.wait_for(notifier.ended(job.id), 10)
        await until(lambda: store.get(job.id), lambda j: j.announced_at is not None)
    finally:
        await poller.stop()
    assert ended.state is JobState.CANCELLED
    assert provider.status_calls == {}


async def test_a_request_interrupted_before_its_submit_fails_without_charge_and_is_never_sent(
    store, provider, catalogue, notifier, http
):
    job = await stored_job(store, catalogue)  # stored, then the process died before sending it
    poller = make_poller(store, provider, catalogue, notifier, http)
    assert await poller.start() == 1
    try:
        ended = await asyncio.wait_for(notifier.ended(job.id), 10)
    finally:
        await poller.stop()
    assert (ended.state, ended.error_code) == (JobState.FAILED, "interrupted")
    assert "nothing was charged" in ended.error_message
    assert provider.submissions == []


async def test_two_processes_on_one_database_never_both_drive_a_job(db_path, provider, catalogue, http):
    from bot.storage import open_stores

    first_stores, second_stores = await open_stores(db_path), await open_stores(db_path)
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=2)]
    first_notifier, second_notifier = RecordingNotifier(), RecordingNotifier()
    first = make_poller(first_stores.jobs, provider, catalogue, first_notifier, http, lease_s=30)
    second = make_poller(second_stores.jobs, provider, catalogue, second_notifier, http, lease_s=1)
    try:
        jobs = []
        for _ in range(6):
            job = await stored_job(first_stores.jobs, catalogue)
            receipt = await provider.submit(None)
            jobs.append(
                await first_stores.jobs.transition(
                    job.id, JobState.QUEUED, provider_job_id=receipt.provider_job_id, next_poll_at=time.time()
                )
            )
        assert await first.start() == 6
        assert await second.start() == 0  # every lease is live and the first's
        await provider.wait_until(lambda: all(provider.status_calls[j.provider_job_id] >= 3 for j in jobs))
        assert {job_id for _, job_id, _ in second_notifier.events} == set()
        # The first stops and hands its leases back: the second takes the jobs over at its next look.
        provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
        for job in jobs:
            provider.scripts[job.provider_job_id] = list(provider.script)
        await first.stop()
        await asyncio.wait_for(asyncio.gather(*(second_notifier.ended(j.id) for j in jobs)), 60)
        assert sorted(second_notifier.delivered) == sorted(j.id for j in jobs)
        assert first_notifier.delivered == {}
    finally:
        await second.stop()
        await first_stores.close()
        await second_stores.close()


async def test_a_video_that_cannot_be_saved_here_is_held_not_retried(store, provider, catalogue, http):
    class CannotWrite(RecordingNotifier):
        async def deliver_video(self, job, video):
            self.events.append(("held", job.id, job.state))
            self.ended(job.id).set_result(job)
            raise DeliveryError("the file could not be written", permanent=False, hold=True)

    notifier = CannotWrite()
    job = await succeeded_job(store, catalogue, provider)
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    try:
        await asyncio.wait_for(notifier.ended(job.id), 10)
        held = await until(lambda: store.get(job.id), lambda j: j.lease_owner is None)
    finally:
        await poller.stop()
    assert held.state is JobState.DELIVERING  # the video waits at the provider for `wait`
    assert [kind for kind, _, _ in notifier.events].count("held") == 1


async def store_state(store: JobStore, job_id: int, state: JobState):
    return await until(lambda: store.get(job_id), lambda job: job.state is state)


async def until(read, check, timeout: float = 10.0):
    """Re-read until `check` holds (the store has no event to await)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if value is not None and check(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {value}")
        await asyncio.sleep(0.01)
