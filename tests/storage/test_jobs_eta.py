"""JobStore's history queries for "when will it be ready": generation times per key, and queue positions."""

from __future__ import annotations

import dataclasses

import pytest

from bot.domain.models import (
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
)
from bot.jobs.ports import GENERATED_STATES, GenerationKey
from bot.storage.database import open_database
from bot.storage.jobs import _GENERATION_TIMES_SQL, JobStore, NewJob
from bot.storage.postgres import PostgresDatabase, PostgresJobStore
from bot.storage.postgres.jobs import GENERATION_TIMES_SQL as PG_GENERATION_TIMES_SQL
from tests.postgres import fresh_database

REQUEST = VideoRequest(
    model="seedance-1.5-pro",
    prompt="waves roll in",
    resolution=Resolution.P720,
    ratio=Ratio.R16_9,
    duration_s=5,
)
KEY = GenerationKey(ProviderName.RUNCOMFY, "seedance-1.5-pro", Resolution.P720, 5, ServiceTier.DEFAULT)


@pytest.fixture
async def store(backend):
    return (await backend.open()).jobs


@pytest.fixture
async def conn(tmp_path):
    """A SQLite connection, for the query-plan tests (SQLite's planner only)."""
    conn = await open_database(tmp_path / "jobs.sqlite3")
    yield conn
    await conn.close()


@pytest.fixture
def sqlite_store(conn):
    return JobStore(conn)


@pytest.fixture
async def pg_process(postgres_server):
    """A PostgreSQL process on a fresh database, for the query-plan tests (PostgreSQL's planner only)."""
    async with fresh_database(postgres_server) as url:
        db = await PostgresDatabase.open(url)
        try:
            yield db, PostgresJobStore(db)
        finally:
            await db.close()


def new_job(
    *,
    guild_id: int | None = 1,
    provider: ProviderName = ProviderName.RUNCOMFY,
    origin: JobOrigin = JobOrigin.DISCORD,
    **request_changes,
) -> NewJob:
    return NewJob(
        provider=provider,
        request=dataclasses.replace(REQUEST, **request_changes),
        requester=Requester(origin=origin, user_id=7, guild_id=guild_id, channel_id=3),
        deadline_at=1e10,
    )


async def finished(
    store,
    *,
    took: float,
    finished_at: float,
    state: JobState = JobState.DELIVERED,
    submitted: bool = True,
    **job_options,
) -> int:
    """A job that was submitted, made its video (or not, by `state`), and ended at `finished_at`."""
    job = await store.create(new_job(**job_options))
    await store.transition(
        job.id,
        JobState.QUEUED,
        provider_job_id=f"p{job.id}",
        submitted_at=finished_at - took if submitted else None,
    )
    if state in (JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT):
        await store.transition(job.id, state, finished_at=finished_at)
        return job.id
    await store.transition(job.id, JobState.SUCCEEDED)
    if state is JobState.DELIVERED:
        await store.transition(job.id, JobState.DELIVERED, finished_at=finished_at)
    return job.id


async def queued(store, *, submitted_at: float | None, provider=ProviderName.RUNCOMFY, guild_id=1):
    job = await store.create(new_job(provider=provider, guild_id=guild_id))
    if submitted_at is None:
        return job
    return await store.transition(
        job.id, JobState.QUEUED, provider_job_id=f"p{job.id}", submitted_at=submitted_at
    )


async def test_generation_times_run_from_submit_to_finish_newest_first_within_the_limit(store):
    for took, finished_at in ((100.0, 5_000.0), (130.0, 7_000.0), (90.0, 6_000.0)):
        await finished(store, took=took, finished_at=finished_at)
    assert await store.generation_times(KEY) == [130.0, 90.0, 100.0]
    assert await store.generation_times(KEY, limit=2) == [130.0, 90.0]


async def test_only_jobs_of_the_same_provider_model_resolution_duration_and_tier_count(store):
    await finished(store, took=100.0, finished_at=5_000.0)
    await finished(store, took=101.0, finished_at=5_001.0, service_tier=ServiceTier.DEFAULT)
    # Each differs from KEY in one thing.
    await finished(store, took=900.0, finished_at=5_002.0, provider=ProviderName.NOVITA)
    await finished(store, took=901.0, finished_at=5_003.0, model="seedance-1.0-lite")
    await finished(store, took=902.0, finished_at=5_004.0, resolution=Resolution.P1080)
    await finished(store, took=903.0, finished_at=5_005.0, duration_s=10)
    await finished(store, took=3_600.0, finished_at=5_006.0, service_tier=ServiceTier.FLEX)
    # No tier and the default tier are the same queue.
    assert await store.generation_times(KEY) == [101.0, 100.0]
    flex = dataclasses.replace(KEY, tier=ServiceTier.FLEX)
    assert await store.generation_times(flex) == [3_600.0]
    assert await store.generation_times(dataclasses.replace(KEY, duration_s=10)) == [903.0]


async def test_only_jobs_that_made_their_video_and_have_both_times_count(store):
    await finished(store, took=100.0, finished_at=5_000.0)
    for state in (JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT):
        await finished(store, took=50.0, finished_at=5_100.0, state=state)
    # Made its video but not posted yet: no finished_at, so no time to learn from (yet).
    await finished(store, took=70.0, finished_at=5_200.0, state=JobState.SUCCEEDED)
    await finished(store, took=80.0, finished_at=5_300.0, submitted=False)
    assert await store.generation_times(KEY) == [100.0]


async def test_a_server_sees_its_own_jobs_and_no_server_means_every_job(store):
    await finished(store, took=100.0, finished_at=5_000.0, guild_id=1)
    await finished(store, took=200.0, finished_at=5_001.0, guild_id=2)
    await finished(store, took=300.0, finished_at=5_002.0, guild_id=None, origin=JobOrigin.CLI)
    assert await store.generation_times(KEY, guild_id=1) == [100.0]
    assert await store.generation_times(KEY, guild_id=2) == [200.0]
    assert await store.generation_times(KEY) == [300.0, 200.0, 100.0]


def test_the_query_names_the_generated_states_as_the_protocol_does():
    # The SQL spells the states out (the partial indexes must match it word for word); keep them in step.
    assert "state IN ('succeeded', 'delivering', 'delivered')" in _GENERATION_TIMES_SQL
    assert {state.value for state in GENERATED_STATES} == {"succeeded", "delivering", "delivered"}


async def _plan(conn, sql: str, params) -> str:
    async with conn.execute(f"EXPLAIN QUERY PLAN {sql}", params) as cursor:
        return " | ".join(row[3] for row in await cursor.fetchall())


@pytest.mark.parametrize(
    ("guild", "index"),
    [("", "jobs_generation_times"), ("AND guild_id = ?", "jobs_generation_times_by_guild")],
)
async def test_generation_times_read_an_index_in_order_without_sorting(conn, sqlite_store, guild, index):
    for guild_id in (1, 2):
        await finished(sqlite_store, took=100.0, finished_at=5_000.0 + guild_id, guild_id=guild_id)
    params = ["runcomfy", "seedance-1.5-pro", "720p", 5, "default", *([1] if guild else []), 50]
    plan = await _plan(conn, _GENERATION_TIMES_SQL.format(guild=guild), params)
    assert f"USING INDEX {index} (" in plan
    assert "TEMP B-TREE" not in plan  # newest first straight from the index: reads `limit` entries at most


async def test_queued_ahead_counts_the_providers_queued_jobs_submitted_earlier(store):
    first = await queued(store, submitted_at=1_000.0)
    second = await queued(store, submitted_at=1_010.0)
    same_time = await queued(store, submitted_at=1_010.0)  # a later id at the same instant: behind `second`
    await queued(store, submitted_at=1_005.0, provider=ProviderName.NOVITA)  # another provider's queue
    await queued(store, submitted_at=1_001.0, guild_id=99)  # another server: the same account's queue
    running = await queued(store, submitted_at=1_002.0)
    await store.transition(running.id, JobState.RUNNING)
    assert await store.queued_ahead(first) == 0
    assert await store.queued_ahead(second) == 2  # first, and the other server's
    assert await store.queued_ahead(same_time) == 3
    # Not submitted yet: behind every queued job of its provider.
    assert await store.queued_ahead(await queued(store, submitted_at=None)) == 4


async def test_queued_ahead_counts_on_the_queued_jobs_index(conn):
    sql = (
        "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = ? AND id != ? "
        "AND (submitted_at, id) < (?, ?)"
    )
    plan = await _plan(conn, sql, ["runcomfy", 1, 1_000.0, 1])
    # Covering: the count reads the index alone (`state` is a column of it so that SQLite sees that).
    assert "USING COVERING INDEX jobs_queued_by_provider (provider=? AND state=? AND submitted_at<?)" in plan


async def _pg_plan(db, sql: str, params) -> str:
    async with db.transaction() as conn:
        # A handful of rows: without this the planner would rightly scan the table instead.
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(f"EXPLAIN {sql}", *params)
    return " | ".join(row[0] for row in rows)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("guild", "index"),
    [("", "jobs_generation_times"), ("AND guild_id = $6", "jobs_generation_times_by_guild")],
)
async def test_postgres_generation_times_read_an_index_in_order_without_sorting(pg_process, guild, index):
    db, store = pg_process
    for guild_id in (1, 2):
        await finished(store, took=100.0, finished_at=5_000.0 + guild_id, guild_id=guild_id)
    params = ["runcomfy", "seedance-1.5-pro", "720p", "5", "default", *([1] if guild else [])]
    plan = await _pg_plan(db, PG_GENERATION_TIMES_SQL.format(guild=guild, limit=50), params)
    assert f"Index Scan Backward using {index} on jobs" in plan
    assert "Sort" not in plan
    assert await store.generation_times(KEY, guild_id=1 if guild else None) == [100.0] * (1 if guild else 2)
