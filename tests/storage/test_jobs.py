"""JobStore: rows in, typed jobs out, and state changes that cannot be applied twice."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from bot.domain.models import (
    ImageInfo,
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    VideoRequest,
)
from bot.jobs.ports import NewJob

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="waves roll in",
    resolution=Resolution.P720,
    ratio=Ratio.R16_9,
    duration_s=6,
    generate_audio=False,
    camera_fixed=True,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clock():
    return FakeClock()


@pytest.fixture
async def store(backend, clock):
    return (await backend.open(clock)).jobs


def new_job(user_id: int = 7, guild_id: int | None = 1) -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=REQUEST,
        requester=Requester(origin=JobOrigin.DISCORD, user_id=user_id, guild_id=guild_id, channel_id=3),
        deadline_at=5_000.0,
        first_frame=ImageInfo(
            format="PNG",
            width=640,
            height=480,
            size_bytes=1234,
            mode="RGB",
            frames=3,
            notes=("animated PNG with 3 frames: the first frame is used",),
        ),
    )


async def test_a_created_job_round_trips_every_field(store):
    job = await store.create(new_job())
    assert job.state is JobState.PENDING
    assert job.request == REQUEST
    assert job.requester.user_id == 7
    assert job.first_frame is not None and job.first_frame.notes == (
        "animated PNG with 3 frames: the first frame is used",
    )
    assert (job.created_at, job.deadline_at) == (1_000.0, 5_000.0)
    assert await store.get(job.id) == job


async def test_a_transition_applies_once_and_the_second_attempt_gets_none(store, clock):
    job = await store.create(new_job())
    clock.now = 1_010.0
    queued = await store.transition(job.id, JobState.QUEUED, provider_job_id="req-1", queue_position=4)
    assert queued is not None
    assert (queued.state, queued.provider_job_id, queued.queue_position, queued.updated_at) == (
        JobState.QUEUED,
        "req-1",
        4,
        1_010.0,
    )
    # A replay (the same change from PENDING) finds the row already moved.
    assert await store.transition(job.id, JobState.QUEUED, expected=(JobState.PENDING,)) is None


async def test_concurrent_competing_transitions_have_exactly_one_winner(store):
    job = await store.create(new_job())
    await store.transition(job.id, JobState.QUEUED, provider_job_id="req-1")
    results = await asyncio.gather(
        *(store.transition(job.id, JobState.CANCELLED, expected=(JobState.QUEUED,)) for _ in range(5)),
        *(store.transition(job.id, JobState.SUCCEEDED, expected=(JobState.QUEUED,)) for _ in range(5)),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await store.get(job.id)).state is winners[0].state


async def test_entering_a_final_state_stamps_finished_and_stops_polling(store, clock):
    job = await store.create(new_job())
    await store.transition(job.id, JobState.QUEUED, provider_job_id="r", next_poll_at=1_003.0)
    clock.now = 1_100.0
    failed = await store.transition(job.id, JobState.FAILED, error_code="x", error_message="broke")
    assert failed is not None
    assert (failed.finished_at, failed.next_poll_at, failed.error_message) == (1_100.0, None, "broke")
    # A final job accepts nothing more, not even annotations.
    assert await store.annotate(job.id, status_message_id=5) is None
    assert await store.transition(job.id, JobState.DELIVERED, expected=(JobState.SUCCEEDED,)) is None


@pytest.mark.parametrize(
    ("expected", "to"),
    [
        ((JobState.DELIVERED,), JobState.QUEUED),
        ((JobState.PENDING,), JobState.DELIVERED),
        ((JobState.QUEUED,), JobState.UNKNOWN),
    ],
)
async def test_transitions_outside_the_state_machine_are_programming_errors(store, expected, to):
    job = await store.create(new_job())
    with pytest.raises(ValueError, match="not an allowed transition"):
        await store.transition(job.id, to, expected=expected)


async def test_only_known_columns_can_be_written(store):
    job = await store.create(new_job())
    with pytest.raises(ValueError, match="cannot update job columns"):
        await store.annotate(job.id, state_of_mind="calm")


async def test_active_jobs_are_the_non_final_ones_soonest_due_first(store):
    a = await store.create(new_job())
    b = await store.create(new_job())
    c = await store.create(new_job())
    await store.transition(a.id, JobState.QUEUED, provider_job_id="a", next_poll_at=2_000.0)
    await store.transition(b.id, JobState.QUEUED, provider_job_id="b", next_poll_at=1_500.0)
    await store.transition(c.id, JobState.FAILED)
    assert [job.id for job in await store.active_jobs()] == [b.id, a.id]
    assert await store.active_jobs(JobOrigin.CLI) == []


async def test_a_members_jobs_newest_first_and_per_server(store, clock):
    ids = []
    for guild in (1, 2, 1):
        clock.now += 1
        ids.append((await store.create(new_job(user_id=7, guild_id=guild))).id)
    await store.create(new_job(user_id=8))
    assert [j.id for j in await store.jobs_for_user(7)] == ids[::-1]
    assert [j.id for j in await store.jobs_for_user(7, guild_id=1)] == [ids[2], ids[0]]
    assert [j.id for j in await store.jobs_for_user(7, limit=1)] == [ids[2]]


async def test_find_by_provider_job(store):
    job = await store.create(new_job())
    await store.transition(job.id, JobState.QUEUED, provider_job_id="req-77")
    found = await store.find_by_provider_job(ProviderName.RUNCOMFY, "req-77")
    assert found is not None and found.id == job.id
    assert await store.find_by_provider_job(ProviderName.NOVITA, "req-77") is None


async def test_jobs_survive_reopening_the_database(backend):
    first = await backend.open()
    job = await first.jobs.create(new_job())
    await first.close()
    again = await (await backend.open()).jobs.get(job.id)
    assert again is not None and again.request == REQUEST


@pytest.mark.parametrize("web_search", [True, False, None])
async def test_a_seedance_2_request_round_trips_its_web_search_choice(store, web_search):
    request = VideoRequest(
        model="seedance-2.0-pro",
        prompt="the weather in Lyon today, as a street scene",
        resolution=Resolution.P720,
        ratio=Ratio.ADAPTIVE,
        duration_s=15,
        generate_audio=True,
        seed=42,
        reference_images=2,
        web_search=web_search,
    )
    job = await store.create(dataclasses.replace(new_job(), request=request))
    again = await store.get(job.id)
    assert again is not None and again.request == request
    assert again.request.web_search is web_search


async def test_a_request_stored_before_web_search_existed_loads_as_not_asked(backend):
    process = await backend.open()
    store = process.jobs
    job = await store.create(new_job())
    # The request JSON exactly as the serialiser wrote it before the field existed.
    old = {
        "model": "seedance-1.5-pro",
        "prompt": "waves roll in",
        "resolution": "720p",
        "ratio": "16:9",
        "duration_s": 6,
        "generate_audio": False,
        "camera_fixed": True,
        "seed": None,
        "watermark": None,
        "service_tier": None,
        "expires_after_s": None,
        "return_last_frame": None,
        "reference_images": 0,
        "reference_videos": 0,
        "reference_audios": 0,
    }
    await process.execute("UPDATE jobs SET request_json = ? WHERE id = ?", json.dumps(old), job.id)
    loaded = await store.get(job.id)
    assert loaded is not None
    assert loaded.request == REQUEST
    assert loaded.request.web_search is None


async def test_a_servers_active_jobs_only(store):
    here = await store.create(new_job(guild_id=1))
    elsewhere = await store.create(new_job(guild_id=2))
    for job in (here, elsewhere):
        await store.transition(job.id, JobState.QUEUED, provider_job_id=f"p{job.id}")
    assert [job.id for job in await store.active_jobs(guild_id=1)] == [here.id]


async def test_claims_take_free_expired_and_own_leases_but_not_live_ones(store, clock):
    free, own, live, expired, announced = [(await store.create(new_job())).id for _ in range(5)]
    assert await store.claim([own], "me", until=1_050.0) == [own]
    assert await store.claim([live, expired], "other", until=1_100.0) == [live, expired]
    await store.transition(announced, JobState.FAILED)
    await store.mark_announced(announced)
    clock.now = 1_060.0
    await store.renew_leases("other", until=1_100.0)
    await store.release_leases("other", [expired])
    await store.claim([expired], "other", until=1_000.0)  # expires before now
    ids = [free, own, live, expired, announced]
    assert await store.claim(ids, "me", until=1_200.0) == [free, own, expired]
    assert await store.claim([live], "me", until=1_200.0, take_over=True) == [live]
    assert await store.claim([], "me", until=1_200.0) == []


async def test_a_job_whose_ending_was_announced_is_no_longer_renewed(store, clock):
    running, ended = [(await store.create(new_job())).id for _ in range(2)]
    await store.claim([running, ended], "me", until=1_030.0)
    await store.transition(ended, JobState.FAILED, owner="me")
    assert await store.renew_leases("me", until=1_090.0) == 2  # its ending still has to be told
    await store.mark_announced(ended, owner="me")
    # A long-running process must not renew every job it ever finished, every few seconds, for good.
    assert await store.renew_leases("me", until=1_120.0) == 1
    assert (await store.get(running)).lease_expires_at == 1_120.0


async def test_owner_guarded_changes_apply_only_while_the_owner_holds_the_lease(store, clock):
    job = await store.create(new_job())
    await store.claim([job.id], "a", until=1_030.0)
    assert await store.annotate(job.id, owner="b", queue_position=1) is None
    assert await store.transition(job.id, JobState.QUEUED, owner="b", provider_job_id="x") is None
    queued = await store.transition(job.id, JobState.QUEUED, owner="a", provider_job_id="x")
    assert queued is not None and queued.lease_owner == "a"
    assert await store.renew_leases("a", until=1_090.0) == 1
    assert (await store.get(job.id)).lease_expires_at == 1_090.0
    assert await store.release_leases("a") == 1
    assert await store.release_leases("a", []) == 0
    assert await store.annotate(job.id, owner="a", queue_position=1) is None
