"""The stores of one process share one SQLite writer: a burst of admissions and job updates never meets
"database is locked", and leases keep two processes from driving one job."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from bot.domain.models import JobOrigin, JobState, ProviderName, Ratio, Requester, Resolution, VideoRequest
from bot.domain.quota import Refusal, Usage
from bot.jobs.ports import NewJob, ReservationState
from bot.storage import open_stores

REQUEST = VideoRequest(
    model="seedance-1.5-pro", prompt="waves", resolution=Resolution.P480, ratio=Ratio.R16_9, duration_s=5
)


def new_job(user_id: int, *, owner: str | None = None, until: float | None = None) -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=REQUEST,
        requester=Requester(origin=JobOrigin.DISCORD, user_id=user_id, guild_id=1, channel_id=2),
        deadline_at=10**10,
        lease_owner=owner,
        lease_expires_at=until,
    )


def accept(usage: Usage) -> Refusal | None:
    return None


@pytest.fixture
async def stores(tmp_path):
    opened = await open_stores(tmp_path / "bot.sqlite3")
    yield opened
    await opened.close()


async def test_a_burst_of_admissions_and_job_updates_never_meets_a_locked_database(stores, caplog):
    # The shape that failed before: many members admitted (write transactions) while pollers read and move
    # other jobs (reads interleaved with writes) on the same process.
    caplog.set_level(logging.WARNING)
    settled = [await stores.quota.admit(new_job(user_id=n), credits=1, decide=accept) for n in range(50)]

    async def poller(jobs: list[int]) -> int:
        moved = 0
        for job_id in jobs:
            job = await stores.jobs.get(job_id)
            assert job is not None
            for to in (JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED):
                extra = {"provider_job_id": f"req-{job_id}"} if to is JobState.QUEUED else {}
                if await stores.jobs.transition(job_id, to, **extra) is not None:
                    moved += 1
                await stores.jobs.get(job_id)
        return moved

    async def member(n: int) -> int:
        await stores.quota.usage(1, 1000 + n)
        job = await stores.quota.admit(new_job(user_id=1000 + n), credits=2, decide=accept)
        return job.id

    ids = [job.id for job in settled]
    results = await asyncio.gather(
        *(member(n) for n in range(2000)),
        *(poller(ids[k::8]) for k in range(8)),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert not [r for r in caplog.records if "locked" in r.getMessage()]
    assert sum(results[2000:]) == 50 * 3  # type: ignore[arg-type]
    assert len(set(results[:2000])) == 2000


async def test_ending_a_job_settles_its_credits_in_the_same_write_once(stores):
    job = await stores.quota.admit(new_job(7), credits=4, decide=accept)
    await stores.jobs.transition(job.id, JobState.QUEUED, provider_job_id="r")
    await stores.jobs.transition(job.id, JobState.SUCCEEDED, video_url="https://v")
    await stores.jobs.transition(job.id, JobState.DELIVERING)
    assert (await stores.quota.reservation(job.id)).state is ReservationState.RESERVED
    delivered = await stores.jobs.transition(job.id, JobState.DELIVERED, delivery_ref="m1")
    assert delivered is not None and delivered.announced_at is not None  # the video is the announcement
    assert (await stores.quota.reservation(job.id)).state is ReservationState.COMMITTED
    assert await stores.jobs.transition(job.id, JobState.FAILED) is None
    assert (await stores.quota.reservation(job.id)).state is ReservationState.COMMITTED


async def test_a_failed_ending_is_open_until_announced_and_announced_once(stores):
    job = await stores.quota.admit(new_job(7), credits=4, decide=accept)
    failed = await stores.jobs.transition(job.id, JobState.FAILED, error_code="x")
    assert failed is not None and failed.announced_at is None
    assert [j.id for j in await stores.jobs.open_jobs()] == [job.id]
    assert (await stores.quota.reservation(job.id)).state is ReservationState.RELEASED
    assert await stores.jobs.mark_announced(job.id) is not None
    assert await stores.jobs.mark_announced(job.id) is None
    assert await stores.jobs.open_jobs() == []


async def test_a_live_lease_keeps_other_owners_out_until_it_expires_or_is_released(stores):
    job = await stores.jobs.create(new_job(7, owner="a", until=100.0))
    # "b" cannot take it while it is live (the store's clock is real time: 100.0 is long past, so renew).
    await stores.jobs.renew_leases("a", until=10**10)
    assert await stores.jobs.claim([job.id], "b", until=10**10) == []
    # Transitions on behalf of a process that does not hold the lease are refused.
    assert await stores.jobs.transition(job.id, JobState.QUEUED, owner="b", provider_job_id="r") is None
    assert await stores.jobs.annotate(job.id, owner="b", queue_position=3) is None
    queued = await stores.jobs.transition(job.id, JobState.QUEUED, owner="a", provider_job_id="r")
    assert queued is not None
    # An operator taking the job over by hand, or the owner letting go, moves it.
    assert await stores.jobs.claim([job.id], "c", until=10**10, take_over=True) == [job.id]
    assert (await stores.jobs.get(job.id)).lease_owner == "c"
    assert await stores.jobs.release_leases("c") == 1
    assert await stores.jobs.claim([job.id], "b", until=10**10) == [job.id]
    assert (await stores.jobs.get(job.id)).lease_owner == "b"


async def test_an_expired_lease_is_taken_over(stores):
    job = await stores.jobs.create(new_job(7, owner="dead", until=1.0))
    assert await stores.jobs.claim([job.id], "alive", until=10**10) == [job.id]
    assert (await stores.jobs.get(job.id)).lease_owner == "alive"
    assert await stores.jobs.renew_leases("dead", until=10**10) == 0


async def test_a_second_writer_connection_on_the_file_waits_instead_of_failing(stores, tmp_path):
    # Another process (a CLI run) writing the same file: busy_timeout makes it wait for the writer.
    other = await open_stores(tmp_path / "bot.sqlite3")
    try:
        results = await asyncio.gather(
            *(stores.quota.admit(new_job(n), credits=1, decide=accept) for n in range(100)),
            *(other.quota.admit(new_job(500 + n), credits=1, decide=accept) for n in range(100)),
            return_exceptions=True,
        )
    finally:
        await other.close()
    assert not [r for r in results if isinstance(r, sqlite3.OperationalError | BaseException)]
