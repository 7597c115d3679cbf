"""Discovery and wake-ups across processes: `claim_due` and `claim_stale_cards` on both backends (two owners
never get one job; a live lease is never taken), and job events (in process; LISTEN/NOTIFY on PostgreSQL,
reconnecting when its connection is lost)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import pytest

from bot.domain.models import JobOrigin, JobState, ProviderName, Requester
from bot.jobs.ports import NewJob
from bot.storage.jobs import LocalJobEvents
from bot.storage.postgres import PostgresDatabase, PostgresJobEvents
from tests.postgres import fresh_database
from tests.storage.test_jobs import REQUEST, FakeClock


def new_job(origin: JobOrigin = JobOrigin.DISCORD) -> NewJob:
    return NewJob(
        provider=ProviderName.RUNCOMFY,
        request=REQUEST,
        requester=Requester(origin=origin, user_id=7, guild_id=1, channel_id=3),
        deadline_at=5_000.0,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_claim_due_takes_free_and_expired_open_jobs_of_the_origin_soonest_due_first(backend, clock):
    store = (await backend.open(clock)).jobs
    free, expired, live, announced, later = [(await store.create(new_job())).id for _ in range(5)]
    cli = (await store.create(new_job(JobOrigin.CLI))).id
    await store.annotate(free, next_poll_at=1_020.0)
    await store.annotate(expired, next_poll_at=1_010.0)
    await store.annotate(later, next_poll_at=1_500.0)
    assert await store.claim([live], "other", until=1_100.0) == [live]
    assert await store.claim([expired], "dead", until=1_030.0) == [expired]
    await store.transition(announced, JobState.FAILED)
    await store.mark_announced(announced)
    clock.now = 1_050.0  # "dead"'s lease is over; "other"'s is not

    taken = await store.claim_due("me", until=1_200.0, limit=2, origin=JobOrigin.DISCORD)
    assert [job.id for job in taken] == [expired, free]  # soonest due first, at most `limit`
    assert all(job.lease_owner == "me" and job.lease_expires_at == 1_200.0 for job in taken)
    rest = await store.claim_due("me", until=1_200.0, limit=10, origin=JobOrigin.DISCORD)
    assert [job.id for job in rest] == [later]  # never the live lease, the announced job or the CLI's
    assert await store.claim_due("me", until=1_200.0, limit=10, origin=JobOrigin.DISCORD) == []
    assert (await store.get(live)).lease_owner == "other"
    assert [job.id for job in await store.claim_due("me", until=1_200.0, limit=10)] == [cli]


async def test_a_job_freed_by_a_release_is_claimable_at_once(backend, clock):
    store = (await backend.open(clock)).jobs
    job = await store.create(new_job())
    await store.claim([job.id], "stopping", until=1_100.0)
    assert await store.claim_due("me", until=1_100.0, limit=10) == []
    await store.release_leases("stopping")
    assert [claimed.id for claimed in await store.claim_due("me", until=1_100.0, limit=10)] == [job.id]


async def test_owners_claiming_at_once_from_several_processes_never_share_a_job(backend):
    first = await backend.open()
    processes = [first, *[await backend.open() for _ in range(2)]]
    ids = [(await first.jobs.create(new_job())).id for _ in range(120)]
    far = 10_000_000_000.0

    async def claimer(store, owner: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_due(owner, until=far, limit=7):
            got += [job.id for job in batch]
        return got

    results = await asyncio.gather(
        *(
            claimer(process.jobs, f"owner-{n}-{k}")
            for n, process in enumerate(processes)
            for k in range(3)  # several claimers per process too (a pool's connections)
        )
    )
    every = [job_id for got in results for job_id in got]
    assert sorted(every) == sorted(ids)  # each job once: none twice, none missed
    owners = {job_id: n for n, got in enumerate(results) for job_id in got}
    for job_id in ids[::13]:
        row = await first.jobs.get(job_id)
        assert row.lease_owner.endswith(str(owners[job_id] % 3)) and row.lease_owner.startswith("owner-")


async def test_claim_due_never_takes_a_lease_renewed_meanwhile(backend, clock):
    # The holder renews while others try to claim: every claim in between finds the lease live.
    store = (await backend.open(clock)).jobs
    others = [(await backend.open(clock)).jobs for _ in range(2)]
    held = [(await store.create(new_job())).id for _ in range(30)]
    await store.claim(held, "holder", until=1_010.0)

    async def renew() -> None:
        for step in range(20):
            clock.now = 1_000.0 + step
            await store.renew_leases("holder", until=clock.now + 10)
            await asyncio.sleep(0)

    async def grab(other) -> list[int]:
        got: list[int] = []
        for _ in range(20):
            got += [job.id for job in await other.claim_due("thief", until=2_000.0, limit=50)]
            await asyncio.sleep(0)
        return got

    results = await asyncio.gather(renew(), *(grab(other) for other in others))
    assert results[1:] == [[], []]
    assert {(await store.get(job_id)).lease_owner for job_id in held} == {"holder"}


async def test_claim_stale_cards_leases_each_stale_card_to_one_process(backend, clock):
    store = (await backend.open(clock)).jobs
    free, expired, live, painted = [(await store.create(new_job())).id for _ in range(4)]
    for job_id in (free, expired, live, painted):
        await store.set_status_message(job_id, 900 + job_id)
        await store.transition(job_id, JobState.FAILED)  # ended, not yet announced: claim() takes it
    await store.mark_card_final(painted)
    assert await store.claim([expired], "dead", until=1_010.0) == [expired]
    assert await store.claim([live], "other", until=1_100.0) == [live]
    clock.now = 1_050.0  # "dead"'s lease is over; "other"'s is not

    taken = await store.claim_stale_cards(JobOrigin.DISCORD, "me", finished_since=0, until=1_200.0)
    assert sorted(job.id for job in taken) == sorted([free, expired])
    assert all(job.lease_owner == "me" and job.lease_expires_at == 1_200.0 for job in taken)
    assert await store.claim_stale_cards(JobOrigin.DISCORD, "third", finished_since=0, until=1_200.0) == []
    assert await store.claim_stale_cards(JobOrigin.CLI, "me", finished_since=0, until=1_200.0) == []
    assert (await store.get(live)).lease_owner == "other"


# ---------------------------------------------------------------------------------------- job events


async def test_local_events_reach_every_subscriber_after_publish_returns():
    events = LocalJobEvents()
    seen: list[tuple[str, int | None]] = []
    unsubscribe = events.subscribe(lambda job_id: seen.append(("a", job_id)))
    events.subscribe(lambda job_id: seen.append(("b", job_id)))
    await events.publish(7)
    assert seen == []  # never inside publish: a listener may schedule work on the loop
    await asyncio.sleep(0)
    assert seen == [("a", 7), ("b", 7)]
    unsubscribe()
    await events.publish(None)
    await asyncio.sleep(0)
    assert seen[2:] == [("b", None)]


async def _next(queue: asyncio.Queue[int | None], timeout: float = 5.0) -> int | None:
    return await asyncio.wait_for(queue.get(), timeout)


@pytest.mark.postgres
async def test_postgres_events_cross_processes_and_survive_a_lost_connection(postgres_server):
    async with fresh_database(postgres_server) as url, contextlib.AsyncExitStack() as stack:
        dbs = [await PostgresDatabase.open(url, max_size=2) for _ in range(2)]
        for db in dbs:
            stack.push_async_callback(db.close)
        sender, receiver = PostgresJobEvents(dbs[0], url), PostgresJobEvents(dbs[1], url)
        stack.push_async_callback(sender.close)
        stack.push_async_callback(receiver.close)
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        receiver.subscribe(queue.put_nowait)
        await asyncio.wait_for(receiver.listening.wait(), 10)
        assert await _next(queue) is None  # listening began: "look for work" once

        await sender.publish(41)
        await sender.publish(None)
        assert [await _next(queue), await _next(queue)] == [41, None]

        # The server drops the listening connection: the receiver reconnects, says "look for work" (what
        # was published meanwhile is lost), and hears events again.
        admin = await asyncpg.connect(url)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed == 1
        assert await _next(queue, timeout=15) is None
        await asyncio.wait_for(receiver.listening.wait(), 10)
        await sender.publish(42)
        assert await _next(queue) == 42
