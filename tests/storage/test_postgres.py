"""PostgreSQL only: several processes (pools) on one database — migrations applied once, admissions that
never overspend, claims that never overlap and never wait — and the URL kept out of errors."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from bot.domain.models import JobOrigin, JobState, ProviderName, Ratio, Requester, Resolution, VideoRequest
from bot.domain.quota import LimitName, Refusal, Usage
from bot.jobs.ports import NewJob
from bot.storage.errors import MigrationError
from bot.storage.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from bot.storage.postgres import (
    DatabaseUnavailableError,
    PostgresDatabase,
    PostgresJobStore,
    PostgresQuotaStore,
    describe_url,
)
from bot.storage.postgres.migrations import MIGRATIONS, migrate
from bot.storage.quota import QuotaRefusedError
from tests.postgres import fresh_database

pytestmark = pytest.mark.postgres

GUILD = 1
MEMBER = 7


def new_job(user_id: int = MEMBER, guild_id: int = GUILD) -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=VideoRequest(
            model="seedance-1.5-pro",
            prompt="waves roll in",
            resolution=Resolution.P720,
            ratio=Ratio.R16_9,
            duration_s=5,
        ),
        requester=Requester(origin=JobOrigin.DISCORD, user_id=user_id, guild_id=guild_id, channel_id=3),
        deadline_at=10**10,
    )


@pytest.fixture
async def database_url(postgres_server):
    async with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
async def two_pools(database_url):
    """Two pools on one database, as two bot processes (on two machines) would have."""
    first = await PostgresDatabase.open(database_url, max_size=10)
    second = await PostgresDatabase.open(database_url, max_size=10)
    yield first, second
    await first.close()
    await second.close()


def test_both_backends_have_the_same_numbered_migrations():
    assert [(m.version, m.name) for m in MIGRATIONS] == [(m.version, m.name) for m in SQLITE_MIGRATIONS]


async def test_processes_starting_at_once_on_an_empty_database_migrate_it_once(postgres_server):
    async with fresh_database(postgres_server, migrated=False) as url:
        pools = await asyncio.gather(*(PostgresDatabase.open(url, max_size=2) for _ in range(4)))
        try:
            rows = await pools[0].fetch_all("SELECT version FROM schema_migrations ORDER BY version")
            assert [row[0] for row in rows] == [m.version for m in SQLITE_MIGRATIONS]
        finally:
            for pool in pools:
                await pool.close()


async def test_a_database_newer_than_the_code_is_refused(database_url):
    db = await PostgresDatabase.open(database_url, max_size=1)
    try:
        await db.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    finally:
        await db.close()
    with pytest.raises(MigrationError, match="schema version 99"):
        await PostgresDatabase.open(database_url, max_size=1)


async def test_migrate_on_a_current_database_changes_nothing(database_url):
    conn = await asyncpg.connect(database_url)
    try:
        assert await migrate(conn) == max(m.version for m in MIGRATIONS)
        assert await conn.fetchval("SELECT COUNT(*) FROM schema_migrations") == len(MIGRATIONS)
    finally:
        await conn.close()


async def test_discord_snowflakes_fit_every_id_column(database_url):
    db = await PostgresDatabase.open(database_url, max_size=2)
    try:
        snowflake = 1_234_567_890_123_456_789  # beyond 32 bits, as every Discord id
        quota = PostgresQuotaStore(db)
        job = await quota.admit(
            new_job(user_id=snowflake, guild_id=snowflake), credits=1, decide=lambda usage: None
        )
        again = await PostgresJobStore(db).get(job.id)
        assert again is not None and (again.requester.user_id, again.requester.guild_id) == (snowflake,) * 2
        assert (await quota.usage(snowflake, snowflake)).member_credits_today == 1
    finally:
        await db.close()


async def test_fifty_admissions_from_two_pools_against_a_limit_of_ten_admit_exactly_ten(two_pools):
    limit = 10

    def decide(usage: Usage) -> Refusal | None:
        if usage.member_credits_today + 1 > limit:
            return Refusal(LimitName.MEMBER_DAY, "over")
        return None

    stores = [PostgresQuotaStore(db) for db in two_pools]
    results = await asyncio.gather(
        *(stores[i % 2].admit(new_job(), credits=1, decide=decide) for i in range(50)), return_exceptions=True
    )
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, QuotaRefusedError)]
    assert unexpected == []
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == limit
    # Both processes admitted some: the lock really was contended across pools.
    assert (await stores[1].usage(GUILD, MEMBER)).member_credits_today == limit
    rows = await two_pools[0].fetch_all("SELECT COUNT(*) FROM reservations")
    assert rows[0][0] == limit


async def test_two_pools_claiming_the_same_hundred_jobs_get_disjoint_sets_covering_all(two_pools):
    first, second = (PostgresJobStore(db) for db in two_pools)
    ids = [(await first.create(new_job())).id for _ in range(100)]

    async def claims(store: PostgresJobStore, owner: str) -> list[int]:
        # Several overlapping claims at once per process, each over the whole set in its own order.
        batches = []
        for seed in range(5):
            order = ids[:]
            random.Random(f"{owner}{seed}").shuffle(order)
            batches.append(store.claim(order, owner, until=10**10))
        return [job_id for batch in await asyncio.gather(*batches) for job_id in batch]

    a, b = await asyncio.gather(claims(first, "process-a"), claims(second, "process-b"))
    # A process may re-claim its own job (that is a renewal), so compare sets.
    assert set(a).isdisjoint(b)
    assert set(a) | set(b) == set(ids)
    for job_id in ids:
        job = await first.get(job_id)
        assert job is not None
        assert job.lease_owner == ("process-a" if job_id in set(a) else "process-b")


async def test_a_claim_skips_a_job_another_process_has_locked_instead_of_waiting(two_pools):
    first, second = (PostgresJobStore(db) for db in two_pools)
    locked, free = (await first.create(new_job())).id, (await first.create(new_job())).id
    async with two_pools[0].transaction() as conn:
        # Another process in the middle of claiming (or changing) this job holds its row lock.
        await conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", locked)
        claimed = await asyncio.wait_for(second.claim([locked, free], "process-b", until=10**10), 10)
    assert claimed == [free]
    assert await second.claim([locked], "process-b", until=10**10) == [locked]


async def test_an_owner_guarded_change_fails_once_another_process_took_the_expired_lease(two_pools):
    clock = [1_000.0]
    first = PostgresJobStore(two_pools[0], clock=lambda: clock[0])
    second = PostgresJobStore(two_pools[1], clock=lambda: clock[0])
    job = await first.create(new_job())
    assert await first.claim([job.id], "a", until=1_030.0) == [job.id]
    assert await second.claim([job.id], "b", until=1_060.0) == []  # live lease
    clock[0] = 1_031.0
    assert await second.claim([job.id], "b", until=1_061.0) == [job.id]  # expired: taken over
    assert await first.annotate(job.id, owner="a", queue_position=3) is None
    assert await first.transition(job.id, JobState.QUEUED, owner="a", provider_job_id="x") is None
    moved = await second.transition(job.id, JobState.QUEUED, owner="b", provider_job_id="x")
    assert moved is not None and moved.lease_owner == "b"


async def test_an_unreachable_server_is_named_without_the_password():
    url = "postgresql://bot:s3cret-pass@127.0.0.1:1/seedance"
    with pytest.raises(DatabaseUnavailableError) as caught:
        await PostgresDatabase.open(url)
    assert "127.0.0.1:1/seedance" in str(caught.value)
    assert "s3cret-pass" not in str(caught.value)
    assert describe_url(url) == "127.0.0.1:1/seedance"
