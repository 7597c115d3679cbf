"""The PostgreSQL job store: the SQLite store's contract, for several processes on one database.

Every state change is one guarded UPDATE whose WHERE clause checks the expected states and, for a process
driving the job, its lease: the check and the write are one statement, so no other process can slip in
between. `claim` locks the candidate rows with FOR UPDATE SKIP LOCKED, so two processes claiming at once
never take one job twice and never wait on each other. An ending settles the job's reservation in the same
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from bot.domain.models import Job, JobOrigin, JobState, ProviderName
from bot.jobs.ledger import settlement_for
from bot.jobs.ports import GenerationKey, NewJob, ReservationState
from bot.storage.postgres.database import PgConnection, PostgresDatabase
from bot.storage.rows import (
    ACTIVE_STATES_SQL,
    FINAL_STATES_SQL,
    NEW_JOB_COLUMNS,
    check_updatable,
    new_job_values,
    row_to_job,
    to_column,
    transition_values,
)

_INSERT_JOB_SQL = (
    f"INSERT INTO jobs ({', '.join(NEW_JOB_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(NEW_JOB_COLUMNS) + 1))}) RETURNING *"
)

#: Generation times of one key, newest first. The state list and the key's expressions are written exactly
#: as in migration 8's partial expression indexes, which the planner matches only when the query repeats
#: them. `{guild}` is empty, or a `guild_id = $6` term (then the by-guild index serves).
GENERATION_TIMES_SQL = """
    SELECT finished_at - submitted_at FROM jobs
    WHERE state IN ('succeeded', 'delivering', 'delivered')
      AND provider = $1 AND model = $2
      AND (request_json ->> 'resolution') = $3
      AND (request_json ->> 'duration_s') = $4
      AND (COALESCE(request_json ->> 'service_tier', 'default')) = $5
      {guild}
      AND finished_at > submitted_at
    ORDER BY finished_at DESC, id DESC
    LIMIT {limit}
"""


class PostgresJobStore:
    """Jobs in PostgreSQL. Safe to use from many coroutines and many processes at once."""

    def __init__(self, db: PostgresDatabase, *, clock: Callable[[], float] = time.time) -> None:
        """Use `db`, the process's pool."""
        self._db = db
        self._clock = clock

    async def create(self, new: NewJob) -> Job:
        """Insert a job in state PENDING and return it."""
        async with self._db.transaction() as conn:
            return await insert_job(conn, new, self._clock())

    async def get(self, job_id: int) -> Job | None:
        """The job with that id, or None."""
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE id = $1", job_id)
        return row_to_job(row) if row else None

    async def transition(
        self,
        job_id: int,
        to: JobState,
        *,
        expected: Collection[JobState] | None = None,
        owner: str | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to `to` if it is still in one of `expected` (see `bot.jobs.ports.JobStore`)."""
        now = self._clock()
        sources, values = transition_values(to, expected, fields, now)
        settlement = settlement_for(to)
        sql, params = _guarded_update(job_id, sources, values, now, owner)
        if settlement is None:
            row = await self._db.fetch_one(sql, *params)
            return row_to_job(row) if row else None
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(sql, *params)
            if row is not None:
                await settle(conn, job_id, settlement, now)
        return row_to_job(row) if row else None

    async def annotate(self, job_id: int, *, owner: str | None = None, **fields: Any) -> Job | None:
        """Set fields without changing state (status message ids, a rescheduled poll); None if final."""
        active = frozenset(state for state in JobState if not state.is_final)
        sql, params = _guarded_update(job_id, active, fields, self._clock(), owner)
        row = await self._db.fetch_one(sql, *params)
        return row_to_job(row) if row else None

    async def mark_removed(self, job_id: int) -> Job | None:
        """Record that a delivered job's video post was deleted; None when the job is not delivered."""
        now = self._clock()
        row = await self._db.fetch_one(
            "UPDATE jobs SET removed_at = $1, updated_at = $1 WHERE id = $2 AND state = $3 RETURNING *",
            now,
            job_id,
            JobState.DELIVERED.value,
        )
        return row_to_job(row) if row else None

    async def mark_announced(self, job_id: int, *, owner: str | None = None) -> Job | None:
        """Record that a final job's outcome reached its requester; None when already recorded."""
        sql = (
            "UPDATE jobs SET announced_at = $1, updated_at = $1 "
            f"WHERE id = $2 AND announced_at IS NULL AND state IN ({FINAL_STATES_SQL})"
        )
        params: list[Any] = [self._clock(), job_id]
        if owner is not None:
            sql += " AND lease_owner = $3"
            params.append(owner)
        row = await self._db.fetch_one(sql + " RETURNING *", *params)
        return row_to_job(row) if row else None

    async def set_status_message(self, job_id: int, status_message_id: int) -> None:
        """Record the job's status card, in any state (a card found again after a crash)."""
        await self._db.execute(
            "UPDATE jobs SET status_message_id = $1, updated_at = $2 WHERE id = $3",
            status_message_id,
            self._clock(),
            job_id,
        )

    async def mark_card_final(self, job_id: int) -> None:
        """Record that the job's status card shows its final state."""
        await self._db.execute(
            f"UPDATE jobs SET card_final_at = $1 WHERE id = $2 AND state IN ({FINAL_STATES_SQL})",
            self._clock(),
            job_id,
        )

    async def stale_cards(self, origin: JobOrigin, *, finished_since: float) -> list[Job]:
        """Final jobs since `finished_since` whose status card may not show their end yet."""
        rows = await self._db.fetch_all(
            f"""
            SELECT * FROM jobs
            WHERE card_final_at IS NULL AND status_message_id IS NOT NULL AND finished_at >= $1
              AND origin = $2 AND state IN ({FINAL_STATES_SQL})
            ORDER BY finished_at
            """,
            finished_since,
            origin.value,
        )
        return [row_to_job(row) for row in rows]

    async def claim(
        self, job_ids: Sequence[int], owner: str, *, until: float, take_over: bool = False
    ) -> list[int]:
        """Take the lease of each open job that is free, expired or already `owner`'s; return their ids.

        The candidates are locked FOR UPDATE SKIP LOCKED: a row another process is claiming right now is
        skipped (it is being taken), never waited for; a row it claimed and committed is re-checked against
        the lease condition before this process may take it. `take_over` takes live leases too.
        """
        if not job_ids:
            return []
        rows = await self._db.fetch_all(
            """
            WITH free AS (
                SELECT id FROM jobs
                WHERE id = ANY($1::bigint[]) AND announced_at IS NULL
                  AND ($2::boolean OR lease_owner IS NULL OR lease_owner = $3 OR lease_expires_at <= $4)
                ORDER BY id
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs SET lease_owner = $3, lease_expires_at = $5
            FROM free WHERE jobs.id = free.id
            RETURNING jobs.id
            """,
            list(job_ids),
            take_over,
            owner,
            self._clock(),
            until,
        )
        return sorted(row[0] for row in rows)

    async def claim_due(
        self, owner: str, *, until: float, limit: int, origin: JobOrigin | None = None
    ) -> list[Job]:
        """Lease to `owner` up to `limit` open jobs (of `origin`) whose lease is free or expired, soonest due
        first; return them as leased.

        The candidates are locked FOR UPDATE SKIP LOCKED in the UPDATE's own statement: two processes
        claiming at once take disjoint jobs and never wait on each other, and a row another process leased
        and committed meanwhile is re-checked against the lease condition (READ COMMITTED re-reads a locked
        row's newest version) before it can be taken, so a live lease is never stolen.
        """
        rows = await self._db.fetch_all(
            """
            WITH due AS (
                SELECT id FROM jobs
                WHERE announced_at IS NULL AND ($1::text IS NULL OR origin = $1::text)
                  AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= $2)
                ORDER BY COALESCE(next_poll_at, 0), id
                LIMIT $3
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs SET lease_owner = $4, lease_expires_at = $5
            FROM due WHERE jobs.id = due.id
            RETURNING jobs.*
            """,
            origin.value if origin is not None else None,
            self._clock(),
            limit,
            owner,
            until,
        )
        return sorted((row_to_job(row) for row in rows), key=lambda job: (job.next_poll_at or 0, job.id))

    async def claim_stale_cards(
        self, origin: JobOrigin, owner: str, *, finished_since: float, until: float
    ) -> list[Job]:
        """Lease to `owner` the jobs `stale_cards` would list whose lease is free or expired."""
        rows = await self._db.fetch_all(
            f"""
            WITH stale AS (
                SELECT id FROM jobs
                WHERE card_final_at IS NULL AND status_message_id IS NOT NULL AND finished_at >= $1
                  AND origin = $2 AND state IN ({FINAL_STATES_SQL})
                  AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= $3)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs SET lease_owner = $4, lease_expires_at = $5
            FROM stale WHERE jobs.id = stale.id
            RETURNING jobs.*
            """,
            finished_since,
            origin.value,
            self._clock(),
            owner,
            until,
        )
        return sorted((row_to_job(row) for row in rows), key=lambda job: (job.finished_at or 0, job.id))

    async def renew_leases(self, owner: str, *, until: float) -> int:
        """Extend every lease `owner` holds to `until`; return how many."""
        return await self._db.execute(
            # An announced ending needs nobody: its lease lapses instead of being renewed forever.
            "UPDATE jobs SET lease_expires_at = $1 WHERE lease_owner = $2 AND announced_at IS NULL",
            until,
            owner,
        )

    async def release_leases(self, owner: str, job_ids: Sequence[int] | None = None) -> int:
        """Give up `owner`'s leases (all, or those of `job_ids`), so another process may take the jobs."""
        sql = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1"
        if job_ids is None:
            return await self._db.execute(sql, owner)
        if not job_ids:
            return 0
        return await self._db.execute(sql + " AND id = ANY($2::bigint[])", owner, list(job_ids))

    async def open_jobs(self, origin: JobOrigin | None = None) -> list[Job]:
        """Every job that still needs work: not final, or final and not yet announced; soonest due first."""
        sql = "SELECT * FROM jobs WHERE announced_at IS NULL"
        params: list[Any] = []
        if origin is not None:
            params.append(origin.value)
            sql += f" AND origin = ${len(params)}"
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        return [row_to_job(row) for row in await self._db.fetch_all(sql, *params)]

    async def active_jobs(self, origin: JobOrigin | None = None, *, guild_id: int | None = None) -> list[Job]:
        """Every job that is not final, soonest due first (with `guild_id`, only that server's)."""
        sql = f"SELECT * FROM jobs WHERE state IN ({ACTIVE_STATES_SQL})"
        params: list[Any] = []
        if origin is not None:
            params.append(origin.value)
            sql += f" AND origin = ${len(params)}"
        if guild_id is not None:
            params.append(guild_id)
            sql += f" AND guild_id = ${len(params)}"
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        return [row_to_job(row) for row in await self._db.fetch_all(sql, *params)]

    async def jobs_for_user(
        self,
        user_id: int,
        *,
        guild_id: int | None = None,
        limit: int = 10,
        offset: int = 0,
        states: Collection[JobState] | None = None,
    ) -> list[Job]:
        """A member's most recent jobs, newest first, optionally in one server or some states only."""
        sql = "SELECT * FROM jobs WHERE user_id = $1"
        params: list[Any] = [user_id]
        if guild_id is not None:
            params.append(guild_id)
            sql += f" AND guild_id = ${len(params)}"
        if states is not None:
            params.append([state.value for state in states])
            sql += f" AND state = ANY(${len(params)}::text[])"
        params += [limit, offset]
        sql += f" ORDER BY created_at DESC, id DESC LIMIT ${len(params) - 1} OFFSET ${len(params)}"
        return [row_to_job(row) for row in await self._db.fetch_all(sql, *params)]

    async def find_by_reply_handle(self, reply_handle: str) -> Job | None:
        """The job created for the request with that reply handle, if one was (a rare look-up: no index)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE reply_handle = $1 ORDER BY id DESC LIMIT 1", reply_handle
        )
        return row_to_job(row) if row else None

    async def find_by_provider_job(self, provider: ProviderName, provider_job_id: str) -> Job | None:
        """The job a provider knows by `provider_job_id` (for callbacks)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE provider = $1 AND provider_job_id = $2", provider.value, provider_job_id
        )
        return row_to_job(row) if row else None

    async def generation_times(
        self, key: GenerationKey, *, guild_id: int | None = None, limit: int = 50
    ) -> list[float]:
        """Seconds from submit to finish of the newest `limit` jobs of `key` with a video, newest first.

        With `guild_id`, that server's jobs only. Read from migration 8's expression indexes.
        """
        # The JSON text of the duration, as `->>` returns it (the request stores an int).
        params: list[Any] = [
            key.provider.value,
            key.model,
            key.resolution.value,
            str(key.duration_s),
            key.tier.value,
        ]
        guild = ""
        if guild_id is not None:
            guild = "AND guild_id = $6"
            params.append(guild_id)
        sql = GENERATION_TIMES_SQL.format(guild=guild, limit=int(limit))
        return [float(row[0]) for row in await self._db.fetch_all(sql, *params)]

    async def queued_ahead(self, job: Job) -> int:
        """How many of the bot's jobs at `job`'s provider are QUEUED and were submitted before `job`."""
        sql = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = $1 AND id != $2"
        params: list[Any] = [job.provider.value, job.id]
        if job.submitted_at is not None:
            sql += " AND (submitted_at, id) < ($3, $2)"
            params.append(job.submitted_at)
        row = await self._db.fetch_one(sql, *params)
        return int(row[0]) if row else 0


def _guarded_update(
    job_id: int,
    sources: Collection[JobState],
    fields: Mapping[str, Any],
    now: float,
    owner: str | None,
) -> tuple[str, list[Any]]:
    check_updatable(fields)
    params: list[Any] = [to_column(value) for value in fields.values()]
    assignments = "".join(f"{name} = ${i}, " for i, name in enumerate(fields, start=1))
    params += [now, job_id, [state.value for state in sources]]
    n = len(params)
    sql = (
        f"UPDATE jobs SET {assignments}updated_at = ${n - 2} "
        f"WHERE id = ${n - 1} AND state = ANY(${n}::text[])"
    )
    if owner is not None:
        params.append(owner)
        sql += f" AND lease_owner = ${n + 1}"
    return sql + " RETURNING *", params


async def settle(conn: PgConnection, job_id: int, to: ReservationState, now: float) -> None:
    """Move the job's reservation to `to`, only while it is still `reserved` (settling happens once)."""
    await conn.execute(
        "UPDATE reservations SET state = $1, settled_at = $2 WHERE job_id = $3 AND state = $4",
        to.value,
        now,
        job_id,
        ReservationState.RESERVED.value,
    )


async def insert_job(conn: PgConnection, new: NewJob, now: float) -> Job:
    """Insert `new` in state PENDING on `conn` (inside the caller's transaction) and return it."""
    row = await conn.fetchrow(_INSERT_JOB_SQL, *new_job_values(new, now))
    assert row is not None  # RETURNING always yields the inserted row
    return row_to_job(row)
