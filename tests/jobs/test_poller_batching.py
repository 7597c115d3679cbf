"""JobPoller with a provider that reports many jobs in one call: the jobs due together share one call, and
each still goes through its own states, back-offs, fallbacks and deliveries, never in two calls at once."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from bot.domain.catalogue import ModelSpec
from bot.domain.models import JobState, ProviderName
from bot.jobs.download import AddressPolicy
from bot.jobs.poller import JobPoller
from bot.jobs.schedule import failure_delay
from bot.providers.base import ProviderState, ProviderStatus, batch_status_provider
from bot.providers.errors import (
    ProviderError,
    ProviderNotFoundError,
    ProviderRateLimitError,
    ProviderServerError,
)
from tests.jobs.conftest import VIDEO_URL, ScriptedProvider
from tests.jobs.test_poller import queued_job

POLL_INTERVAL_S = 0.01


class BatchingProvider(ScriptedProvider):
    """A scripted provider that also answers `statuses` (one "list call" for many jobs), and records who is in
    which call, so that a job found in two calls at once is caught."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.max_status_batch = batch
        self.list_calls: list[tuple[str, ...]] = []
        self.list_times: list[float] = []
        self.list_errors: list[ProviderError] = []
        self.missing: set[str] = set()  # ids the list answer leaves out
        # When set, list calls from the `gate_from_call`-th on wait for the event.
        self.list_gate: asyncio.Event | None = None
        self.gate_from_call = 1
        self.busy: set[str] = set()  # ids inside a provider call right now
        self.overlaps: list[str] = []

    def _enter(self, ids: Sequence[str]) -> None:
        for provider_job_id in ids:
            if provider_job_id in self.busy:
                self.overlaps.append(provider_job_id)
            self.busy.add(provider_job_id)

    def _leave(self, ids: Sequence[str]) -> None:
        self.busy.difference_update(ids)

    def polls(self, provider_job_id: str) -> int:
        """How many times the job was asked about, alone or in a list."""
        listed = sum(call.count(provider_job_id) for call in self.list_calls)
        return listed + self.status_calls.get(provider_job_id, 0)

    async def status(self, provider_job_id: str, spec: ModelSpec) -> ProviderStatus:
        self._enter([provider_job_id])
        try:
            return await super().status(provider_job_id, spec)
        finally:
            self._leave([provider_job_id])

    async def statuses(
        self, provider_job_ids: Sequence[str], spec_for: Mapping[str, ModelSpec]
    ) -> dict[str, ProviderStatus]:
        ids = list(provider_job_ids)
        assert 1 < len(ids) <= self.max_status_batch
        assert set(spec_for) == set(ids)
        self._enter(ids)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.list_calls.append(tuple(ids))
            self.list_times.append(time.time())
            await self._announce()
            if self.list_gate is not None and len(self.list_calls) >= self.gate_from_call:
                await self.list_gate.wait()
            if self.list_errors:
                raise self.list_errors.pop(0)
            found: dict[str, ProviderStatus] = {}
            for provider_job_id in ids:
                if provider_job_id in self.missing:
                    continue
                script = self.scripts.setdefault(provider_job_id, list(self.script))
                step = script.pop(0) if len(script) > 1 else script[0]
                assert isinstance(step, ProviderStatus), "a list answer holds statuses, not errors"
                found[provider_job_id] = step
            return found
        finally:
            self.in_flight -= 1
            self._leave(ids)
            await self._announce()


def make_poller(store, provider, catalogue, notifier, http, **kwargs):
    options = {
        "poll_interval_s": POLL_INTERVAL_S,
        "max_concurrency": 4,
        "download_policy": AddressPolicy.UNCHECKED,
    }
    options.update(kwargs)
    return JobPoller(store, {ProviderName.RUNCOMFY: provider}, catalogue, notifier, http, **options)


async def queued_jobs(store, catalogue, provider, count: int) -> list:
    return [await queued_job(store, catalogue, provider) for _ in range(count)]


async def wait_all_ended(notifier, jobs, timeout: float = 10.0) -> None:
    await asyncio.wait_for(asyncio.gather(*(notifier.ended(job.id) for job in jobs)), timeout)


def test_only_providers_with_the_capability_and_real_batches_are_batched() -> None:
    assert batch_status_provider(ScriptedProvider()) is None
    batching = BatchingProvider(batch=8)
    assert batch_status_provider(batching) is batching
    batching.max_status_batch = 1  # a "batch" of one saves nothing
    assert batch_status_provider(batching) is None


async def test_fifty_due_jobs_are_polled_in_ceil_n_over_batch_calls_and_each_reaches_its_own_state(
    store, catalogue, notifier, http
):
    provider = BatchingProvider(batch=8)
    jobs = await queued_jobs(store, catalogue, provider, 50)
    outcomes = [
        ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL, cost_usd=0.1),
        ProviderStatus(ProviderState.FAILED, error_code="E{}", error_message="flagged"),
        ProviderStatus(ProviderState.CANCELLED),
        ProviderStatus(ProviderState.EXPIRED),
    ]
    expected: dict[int, tuple[JobState, str | None]] = {}
    for number, job in enumerate(jobs):
        outcome = outcomes[number % 4]
        if outcome.state is ProviderState.FAILED:
            outcome = ProviderStatus(ProviderState.FAILED, error_code=f"E{number}", error_message="flagged")
        provider.scripts[job.provider_job_id] = [outcome]
        expected[job.id] = {
            ProviderState.SUCCEEDED: (JobState.DELIVERED, None),
            ProviderState.FAILED: (JobState.FAILED, f"E{number}"),
            ProviderState.CANCELLED: (JobState.CANCELLED, "cancelled"),
            ProviderState.EXPIRED: (JobState.EXPIRED, "expired"),
        }[outcome.state]
    poller = make_poller(store, provider, catalogue, notifier, http, max_concurrency=3)
    assert await poller.start() == 50  # all 50 are due at once
    try:
        await wait_all_ended(notifier, jobs)
    finally:
        await poller.stop()

    assert len(provider.list_calls) == math.ceil(50 / 8)
    assert sorted(len(call) for call in provider.list_calls) == [2, 8, 8, 8, 8, 8, 8]
    listed = Counter(pid for call in provider.list_calls for pid in call)
    assert listed == Counter(job.provider_job_id for job in jobs)  # each job asked about exactly once
    assert dict(provider.status_calls) == {}  # and never alone
    assert provider.max_in_flight <= 3
    assert provider.overlaps == []
    for job in jobs:
        final = await store.get(job.id)
        assert (final.state, final.error_code) == expected[job.id], job.id
        assert final.announced_at is not None
    delivered = [job for job in jobs if expected[job.id][0] is JobState.DELIVERED]
    assert sorted(notifier.delivered) == sorted(job.id for job in delivered)
    # A job that finished in a batch is delivered by a step of its own, exactly as a single poll would.
    first = delivered[0].id
    assert [(kind, state) for kind, job_id, state in notifier.events if job_id == first] == [
        ("progress", JobState.SUCCEEDED),
        ("delivered", JobState.DELIVERING),
        ("video_delivered", JobState.DELIVERED),
    ]


async def test_a_job_missing_from_the_list_answer_falls_back_to_a_single_status_call(
    store, catalogue, notifier, http
):
    provider = BatchingProvider(batch=8)
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    lost, alone, *others = jobs = await queued_jobs(store, catalogue, provider, 4)
    provider.missing = {lost.provider_job_id, alone.provider_job_id}
    provider.scripts[lost.provider_job_id] = [ProviderNotFoundError("no such task", status_code=404)]
    poller = make_poller(store, provider, catalogue, notifier, http)
    await poller.start()
    try:
        await wait_all_ended(notifier, jobs)
    finally:
        await poller.stop()

    assert provider.list_calls == [tuple(job.provider_job_id for job in jobs)]
    # Only the two the list left out were asked for alone; the single call tells "lost" from "not listed".
    assert dict(provider.status_calls) == {lost.provider_job_id: 1, alone.provider_job_id: 1}
    final = await store.get(lost.id)
    assert (final.state, final.error_code) == (JobState.FAILED, "provider_lost_job")
    for job in (alone, *others):
        assert (await store.get(job.id)).state is JobState.DELIVERED
    assert provider.overlaps == []


#: Longer than it takes to record a batch's failures, so that its jobs are rescheduled before they fall due
#: and come back as one batch again (with shorter intervals they trickle back one by one, as singles).
BACK_OFF_INTERVAL_S = 0.25


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (
            ProviderServerError("502 Bad Gateway", status_code=502),
            failure_delay(BACK_OFF_INTERVAL_S, 1, None),
        ),
        (ProviderRateLimitError("slow down", status_code=429, retry_after_s=0.5), 0.5),
        # A 404 of the list call says nothing about any one job: no job may end as lost.
        (
            ProviderNotFoundError("no such endpoint", status_code=404),
            failure_delay(BACK_OFF_INTERVAL_S, 1, None),
        ),
    ],
    ids=["server-error", "rate-limited", "not-found"],
)
async def test_a_failed_list_call_backs_off_every_job_in_it_and_they_recover(
    store, catalogue, notifier, http, error, delay
):
    provider = BatchingProvider(batch=8)
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    provider.list_errors = [error]
    provider.list_gate = asyncio.Event()
    provider.gate_from_call = 2  # hold the second call, to look at the rows between the two
    jobs = await queued_jobs(store, catalogue, provider, 5)
    poller = make_poller(store, provider, catalogue, notifier, http, poll_interval_s=BACK_OFF_INTERVAL_S)
    started = time.time()
    await poller.start()
    try:
        await provider.wait_until(lambda: len(provider.list_calls) >= 2)
        rows = [await store.get(job.id) for job in jobs]
        assert [row.poll_failures for row in rows] == [1] * 5
        assert all(row.state is JobState.QUEUED for row in rows)
        # All five backed off by the same delay from the step's start (after `started`, before the call)...
        [due] = {row.next_poll_at for row in rows}
        assert started + delay <= due <= provider.list_times[0] + delay
        # ...so they came back together, not before they were due, in one call again.
        assert provider.list_times[1] >= due
        assert sorted(provider.list_calls[1]) == sorted(job.provider_job_id for job in jobs)
        provider.list_gate.set()
        await wait_all_ended(notifier, jobs)
    finally:
        await poller.stop()

    assert len(provider.list_calls) == 2
    assert dict(provider.status_calls) == {}  # no fallback to one call per job after a failed list
    for job in jobs:
        final = await store.get(job.id)
        assert (final.state, final.poll_failures) == (JobState.DELIVERED, 0)


async def test_a_batch_takes_one_slot_of_max_concurrency(store, catalogue, notifier, http):
    provider = BatchingProvider(batch=4)
    provider.script = [ProviderStatus(ProviderState.SUCCEEDED, video_url=VIDEO_URL)]
    provider.list_gate = asyncio.Event()
    jobs = await queued_jobs(store, catalogue, provider, 20)
    poller = make_poller(store, provider, catalogue, notifier, http, max_concurrency=2)
    await poller.start()
    try:
        await provider.wait_until(lambda: provider.in_flight == 2)
        assert [len(call) for call in provider.list_calls] == [4, 4]  # two slots: two full batches
        provider.list_gate.set()
        await wait_all_ended(notifier, jobs)
    finally:
        await poller.stop()
    assert [len(call) for call in provider.list_calls] == [4] * 5
    assert provider.max_in_flight == 2
    assert sorted(notifier.delivered) == sorted(job.id for job in jobs)


async def test_a_batch_being_filled_counts_as_a_slot_before_it_starts(store, catalogue, notifier, http):
    provider = BatchingProvider(batch=4)
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=1)]
    provider.gate = asyncio.Event()  # single calls wait for it
    provider.list_gate = provider.gate
    poller = make_poller(store, provider, catalogue, notifier, http, max_concurrency=2, poll_interval_s=60.0)
    await poller.start()
    try:
        # One slot is taken by a single poll of a job the poller knew nothing about (so it is not batched).
        busy = await queued_job(store, catalogue, provider)
        poller.poll_now(busy.id)
        await provider.wait_until(lambda: provider.in_flight == 1)
        first, second, unknown = await queued_jobs(store, catalogue, provider, 3)
        # Due in one pass: two batchable jobs (one batch, the last free slot), then one that is not.
        poller.track(first)
        poller.track(second)
        poller.poll_now(unknown.id)
        await provider.wait_until(lambda: len(provider.list_calls) == 1)
        assert provider.in_flight == 2  # the single and the batch: the unknown job waits for a slot
        assert sorted(provider.list_calls[0]) == sorted([first.provider_job_id, second.provider_job_id])
        provider.gate.set()
        await provider.wait_until(lambda: provider.status_calls[unknown.provider_job_id] == 1)
    finally:
        await poller.stop()
    assert provider.max_in_flight == 2
    assert provider.overlaps == []


async def test_no_job_is_ever_in_two_calls_and_a_look_asked_for_mid_batch_follows_it(
    store, catalogue, notifier, http
):
    # A 60 s interval: after the first poll, only the "look again" remembered mid-step explains a second.
    provider = BatchingProvider(batch=4)
    provider.script = [ProviderStatus(ProviderState.QUEUED, queue_position=3)]
    provider.list_gate = asyncio.Event()
    jobs = await queued_jobs(store, catalogue, provider, 6)
    poller = make_poller(store, provider, catalogue, notifier, http, poll_interval_s=60.0)
    await poller.start()
    try:
        await provider.wait_until(lambda: provider.in_flight == 2)  # a batch of 4 and one of 2, both held
        for job in jobs:  # callbacks arrive while every job is inside a held call
            poller.poll_now(job.id)
            poller.poll_now(job.id)
            poller.track(job)
        assert poller.tracked == 6
        # Every job of both batches counts as busy: the wishes were noted for later, none went to the heap
        # (where another step could take the job while its batch still holds it).
        assert set(poller._in_flight) == {job.id for job in jobs}
        assert set(poller._look_again) == {job.id for job in jobs}
        assert poller._due == {}
        provider.list_gate.set()
        await provider.wait_until(lambda: all(provider.polls(job.provider_job_id) >= 2 for job in jobs))
        await provider.wait_until(lambda: provider.in_flight == 0)
    finally:
        await poller.stop()
    assert provider.overlaps == []
    # Exactly one more look each, however many times it was asked for, and nothing more for 60 s.
    assert [provider.polls(job.provider_job_id) for job in jobs] == [2] * 6
    for job in jobs:
        assert (await store.get(job.id)).state is JobState.QUEUED


async def test_jobs_that_are_not_plain_polls_take_the_single_path(store, catalogue, notifier, http):
    provider = BatchingProvider(batch=8)
    provider.script = [ProviderStatus(ProviderState.RUNNING, progress_percent=10.0)]
    polled = await queued_jobs(store, catalogue, provider, 3)
    # Finished at the provider before a crash, not yet delivered: its next step is a delivery, not a poll.
    finished = await queued_job(store, catalogue, provider)
    await store.transition(finished.id, JobState.SUCCEEDED, video_url=VIDEO_URL)
    # Held by another live process: never polled here.
    foreign = await queued_job(store, catalogue, provider)
    assert await store.claim([foreign.id], "another-process", until=time.time() + 60)
    poller = make_poller(store, provider, catalogue, notifier, http, poll_interval_s=60.0)
    assert await poller.start() == 4
    poller.poll_now(foreign.id)  # due now together with the others: its lease check keeps it out
    try:
        await asyncio.wait_for(notifier.ended(finished.id), 10)
        await provider.wait_until(lambda: all(provider.polls(job.provider_job_id) == 1 for job in polled))
        await provider.wait_until(lambda: provider.in_flight == 0)
    finally:
        await poller.stop()
    assert [sorted(call) for call in provider.list_calls] == [sorted(job.provider_job_id for job in polled)]
    assert provider.polls(finished.provider_job_id) == 0
    assert provider.polls(foreign.provider_job_id) == 0
    assert (await store.get(finished.id)).state is JobState.DELIVERED
    assert (await store.get(foreign.id)).lease_owner == "another-process"
    for job in polled:
        row = await store.get(job.id)
        assert (row.state, row.progress_percent) == (JobState.RUNNING, 10.0)
