"""The SQLite job store: every job's row, and state changes as single guarded UPDATEs.

A transition names the states it may start from; the UPDATE's WHERE clause checks that the row is still in
one of them (and, for a process driving the job, that it still holds the job's lease). Two workers, or a
replay after a crash, therefore cannot apply the same change twice: the loser gets None back and must re-read
the row. A transition that ends a job settles its quota reservation in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import aiosqlite

from bot.domain.models import (
    Job,
    JobOrigin,
    JobState,
    ProviderName,
)
from bot.jobs.ledger import settlement_for
from bot.jobs.ports import GenerationKey, JobEventListener, NewJob, ReservationState
from bot.storage.database import SqliteDatabase
from bot.storage.rows import (
    ACTIVE_STATES_SQL,
    FINAL_STATES_SQL,
    NEW_JOB_COLUMNS,
    UPDATABLE_FIELDS,
    check_updatable,
    new_job_values,
    row_to_job,
    to_column,
    transition_values,
)

__all__ = ["UPDATABLE_FIELDS", "JobStore", "LocalJobEvents", "NewJob", "SqliteJobStore", "insert_job"]


class SqliteJobStore:
    """Jobs in SQLite. All methods are safe to call concurrently from one event loop."""

    def __init__(
        self, db: SqliteDatabase | aiosqlite.Connection, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Use `db`: the process's shared database (or, in tests, a connection of its own)."""
        self._db = SqliteDatabase.wrap(db)
        self._clock = clock

    async def create(self, new: NewJob) -> Job:
        """Insert a job in state PENDING and return it."""
        async with self._db.transaction() as conn:
            return await insert_job(conn, new, self._clock())

    async def get(self, job_id: int) -> Job | None:
        """The job with that id, or None."""
        row = await self._db.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
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
        """Move a job to `to` if it is still in one of `expected` (default: every allowed source state).

        With `owner`, only while that owner holds the job's lease. Returns the updated job, or None when the
        job was not in an expected state (someone else moved it first). Entering a final state stamps
        `finished_at`, clears `next_poll_at`, and settles the job's reservation in the same transaction;
        entering DELIVERED also records the outcome as announced (the video is the announcement).
        """
        now = self._clock()
        sources, values = transition_values(to, expected, fields, now)
        settlement = settlement_for(to)
        update = _guarded_update(job_id, sources, values, now, owner)
        if settlement is None:
            row = await self._db.write(*update)
            return row_to_job(row) if row else None
        async with self._db.transaction() as conn:
            async with conn.execute(*update) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await _settle(conn, job_id, settlement, now)
        return row_to_job(row) if row else None

    async def annotate(self, job_id: int, *, owner: str | None = None, **fields: Any) -> Job | None:
        """Set fields without changing state (status message ids, a rescheduled poll); None if final."""
        active = frozenset(state for state in JobState if not state.is_final)
        row = await self._db.write(*_guarded_update(job_id, active, fields, self._clock(), owner))
        return row_to_job(row) if row else None

    async def mark_removed(self, job_id: int) -> Job | None:
        """Record that a delivered job's video post was deleted; None when the job is not delivered."""
        now = self._clock()
        sql = "UPDATE jobs SET removed_at = ?, updated_at = ? WHERE id = ? AND state = ? RETURNING *"
        row = await self._db.write(sql, [now, now, job_id, JobState.DELIVERED.value])
        return row_to_job(row) if row else None

    async def mark_announced(self, job_id: int, *, owner: str | None = None) -> Job | None:
        """Record that a final job's outcome reached its requester; None when already recorded."""
        sql = (
            f"UPDATE jobs SET announced_at = ?, updated_at = ? "
            f"WHERE id = ? AND announced_at IS NULL AND state IN ({FINAL_STATES_SQL})"
        )
        now = self._clock()
        params: list[Any] = [now, now, job_id]
        if owner is not None:
            sql += " AND lease_owner = ?"
            params.append(owner)
        row = await self._db.write(sql + " RETURNING *", params)
        return row_to_job(row) if row else None

    async def set_status_message(self, job_id: int, status_message_id: int) -> None:
        """Record the job's status card, in any state (a card found again after a crash)."""
        await self._db.write(
            "UPDATE jobs SET status_message_id = ?, updated_at = ? WHERE id = ?",
            (status_message_id, self._clock(), job_id),
        )

    async def mark_card_final(self, job_id: int) -> None:
        """Record that the job's status card shows its final state."""
        await self._db.write(
            f"UPDATE jobs SET card_final_at = ? WHERE id = ? AND state IN ({FINAL_STATES_SQL})",
            (self._clock(), job_id),
        )

    async def stale_cards(self, origin: JobOrigin, *, finished_since: float) -> list[Job]:
        """Final jobs since `finished_since` whose status card may not show their end yet."""
        rows = await self._db.fetch_all(
            f"""
            SELECT * FROM jobs
            WHERE card_final_at IS NULL AND status_message_id IS NOT NULL AND finished_at >= ?
              AND origin = ? AND state IN ({FINAL_STATES_SQL})
            ORDER BY finished_at
            """,
            (finished_since, origin.value),
        )
        return [row_to_job(row) for row in rows]

    async def claim(
        self, job_ids: Sequence[int], owner: str, *, until: float, take_over: bool = False
    ) -> list[int]:
        """Take the lease of each open job that is free, expired or already `owner`'s; return their ids.

        `take_over` takes live leases too: for an operator who says "this job is mine now" (`wait`).
        """
        if not job_ids:
            return []
        claimed: list[int] = []
        now = self._clock()
        # Chunks keep each statement under SQLite's parameter limit and each write short.
        for start in range(0, len(job_ids), 500):
            chunk = list(job_ids[start : start + 500])
            placeholders = ", ".join("?" for _ in chunk)
            async with (
                self._db.transaction() as conn,
                conn.execute(
                    f"""
                    UPDATE jobs SET lease_owner = ?, lease_expires_at = ?
                    WHERE id IN ({placeholders}) AND announced_at IS NULL
                      AND (? OR lease_owner IS NULL OR lease_owner = ? OR lease_expires_at <= ?)
                    RETURNING id
                    """,
                    (owner, until, *chunk, take_over, owner, now),
                ) as cursor,
            ):
                claimed += [row[0] for row in await cursor.fetchall()]
        return claimed

    async def claim_due(
        self, owner: str, *, until: float, limit: int, origin: JobOrigin | None = None
    ) -> list[Job]:
        """Lease to `owner` up to `limit` open jobs (of `origin`) whose lease is free or expired, soonest due
        first; return them as leased.

        One UPDATE … RETURNING through the process's one writer: SQLite runs it whole, so nothing can claim
        in between (and only one process uses a SQLite file).
        """
        now = self._clock()
        origin_value = origin.value if origin is not None else None
        async with (
            self._db.transaction() as conn,
            conn.execute(
                """
                UPDATE jobs SET lease_owner = ?, lease_expires_at = ?
                WHERE id IN (
                    SELECT id FROM jobs
                    WHERE announced_at IS NULL AND (? IS NULL OR origin = ?)
                      AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?)
                    ORDER BY COALESCE(next_poll_at, 0), id
                    LIMIT ?
                )
                RETURNING *
                """,
                (owner, until, origin_value, origin_value, now, limit),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        # RETURNING's order is not defined: give them back soonest due first, as selected.
        return sorted((row_to_job(row) for row in rows), key=lambda job: (job.next_poll_at or 0, job.id))

    async def claim_stale_cards(
        self, origin: JobOrigin, owner: str, *, finished_since: float, until: float
    ) -> list[Job]:
        """Lease to `owner` the jobs `stale_cards` would list whose lease is free or expired."""
        now = self._clock()
        async with (
            self._db.transaction() as conn,
            conn.execute(
                f"""
                UPDATE jobs SET lease_owner = ?, lease_expires_at = ?
                WHERE card_final_at IS NULL AND status_message_id IS NOT NULL AND finished_at >= ?
                  AND origin = ? AND state IN ({FINAL_STATES_SQL})
                  AND (lease_owner IS NULL OR lease_expires_at IS NULL OR lease_expires_at <= ?)
                RETURNING *
                """,
                (owner, until, finished_since, origin.value, now),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return sorted((row_to_job(row) for row in rows), key=lambda job: (job.finished_at or 0, job.id))

    async def renew_leases(self, owner: str, *, until: float) -> int:
        """Extend every lease `owner` holds to `until`; return how many."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                # An announced ending needs nobody: its lease lapses instead of being renewed forever.
                "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND announced_at IS NULL",
                (until, owner),
            )
            return cursor.rowcount

    async def release_leases(self, owner: str, job_ids: Sequence[int] | None = None) -> int:
        """Give up `owner`'s leases (all, or those of `job_ids`), so another process may take the jobs."""
        sql = "UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?"
        params: list[Any] = [owner]
        if job_ids is not None:
            if not job_ids:
                return 0
            sql += f" AND id IN ({', '.join('?' for _ in job_ids)})"
            params += list(job_ids)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def open_jobs(self, origin: JobOrigin | None = None) -> list[Job]:
        """Every job that still needs work: not final, or final and not yet announced; soonest due first."""
        sql = "SELECT * FROM jobs WHERE announced_at IS NULL"
        params: list[Any] = []
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin.value)
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        return [row_to_job(row) for row in await self._db.fetch_all(sql, params)]

    async def active_jobs(self, origin: JobOrigin | None = None, *, guild_id: int | None = None) -> list[Job]:
        """Every job that is not final, soonest due first (with `guild_id`, only that server's)."""
        sql = f"SELECT * FROM jobs WHERE state IN ({ACTIVE_STATES_SQL})"
        params: list[Any] = []
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin.value)
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        return [row_to_job(row) for row in await self._db.fetch_all(sql, params)]

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
        sql = "SELECT * FROM jobs WHERE user_id = ?"
        params: list[Any] = [user_id]
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        if states is not None:
            sql += f" AND state IN ({', '.join('?' for _ in states)})"
            params += [state.value for state in states]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [row_to_job(row) for row in await self._db.fetch_all(sql, params)]

    async def find_by_reply_handle(self, reply_handle: str) -> Job | None:
        """The job created for the request with that reply handle, if one was (a rare look-up: no index)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE reply_handle = ? ORDER BY id DESC LIMIT 1", (reply_handle,)
        )
        return row_to_job(row) if row else None

    async def find_by_provider_job(self, provider: ProviderName, provider_job_id: str) -> Job | None:
        """The job a provider knows by `provider_job_id` (for callbacks)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE provider = ? AND provider_job_id = ?",
            (provider.value, provider_job_id),
        )
        return row_to_job(row) if row else None

    async def generation_times(
        self, key: GenerationKey, *, guild_id: int | None = None, limit: int = 50
    ) -> list[float]:
        """Seconds from submit to finish of the newest `limit` jobs of `key` with a video, newest first.

        With `guild_id`, that server's jobs only. Each query reads at most `limit` entries of an index of
        migration 8 (jobs_generation_times, or jobs_generation_times_by_guild), newest first.
        """
        params: list[Any] = [
            key.provider.value,
            key.model,
            key.resolution.value,
            key.duration_s,
            key.tier.value,
        ]
        guild = ""
        if guild_id is not None:
            guild = "AND guild_id = ?"
            params.append(guild_id)
        params.append(limit)
        rows = await self._db.fetch_all(_GENERATION_TIMES_SQL.format(guild=guild), params)
        return [float(row[0]) for row in rows]

    async def queued_ahead(self, job: Job) -> int:
        """How many of the bot's jobs at `job`'s provider are QUEUED and were submitted before `job`.

        Earlier `submitted_at` first, then smaller id; a job not yet submitted is behind every queued job.
        Counted on the partial index jobs_queued_by_provider (migration 8), which holds queued jobs only.
        """
        sql = "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = ? AND id != ?"
        params: list[Any] = [job.provider.value, job.id]
        if job.submitted_at is not None:
            sql += " AND (submitted_at, id) < (?, ?)"
            params += [job.submitted_at, job.id]
        row = await self._db.fetch_one(sql, params)
        return int(row[0]) if row else 0


class LocalJobEvents:
    """Job events within one process (SQLite: no other process shares the file): listeners are called soon,
    on the event loop, never inside `publish`."""

    def __init__(self) -> None:
        self._listeners: list[JobEventListener] = []

    async def publish(self, job_id: int | None = None) -> None:
        """Call every listener with `job_id` on the next turn of the event loop."""
        loop = asyncio.get_running_loop()
        for listener in list(self._listeners):
            loop.call_soon(listener, job_id)

    def subscribe(self, listener: JobEventListener) -> Callable[[], None]:
        """Call `listener` for every event from now on; return what unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe


#: The name the rest of the code used before the store became a protocol; tests and benchmarks use it.
JobStore = SqliteJobStore

#: Generation times of one key, newest first. The state list and the key's expressions are written exactly
#: as in migration 8's partial indexes: SQLite uses an index on expressions, or a partial index, only when
#: the query repeats them. `{guild}` is empty, or a `guild_id = ?` term (then the by-guild index serves).
#: `finished_at > submitted_at` also drops rows whose clocks disagree (two hosts) or that lack either time.
_GENERATION_TIMES_SQL = """
    SELECT finished_at - submitted_at FROM jobs
    WHERE state IN ('succeeded', 'delivering', 'delivered')
      AND provider = ? AND model = ?
      AND json_extract(request_json, '$.resolution') = ?
      AND json_extract(request_json, '$.duration_s') = ?
      AND COALESCE(json_extract(request_json, '$.service_tier'), 'default') = ?
      {guild}
      AND finished_at > submitted_at
    ORDER BY finished_at DESC, id DESC
    LIMIT ?
"""


def _guarded_update(
    job_id: int,
    sources: Collection[JobState],
    fields: Mapping[str, Any],
    now: float,
    owner: str | None,
) -> tuple[str, list[Any]]:
    check_updatable(fields)
    assignments = ", ".join(f"{name} = ?" for name in fields)
    placeholders = ", ".join("?" for _ in sources)
    sql = (
        f"UPDATE jobs SET {assignments}{', ' if assignments else ''}updated_at = ? "
        f"WHERE id = ? AND state IN ({placeholders})"
    )
    params = [to_column(value) for value in fields.values()]
    params += [now, job_id, *(state.value for state in sources)]
    if owner is not None:
        sql += " AND lease_owner = ?"
        params.append(owner)
    return sql + " RETURNING *", params


async def _settle(conn: aiosqlite.Connection, job_id: int, to: ReservationState, now: float) -> None:
    # Only a reservation still `reserved` moves: settling happens once, whatever replays.
    await conn.execute(
        "UPDATE reservations SET state = ?, settled_at = ? WHERE job_id = ? AND state = ?",
        (to.value, now, job_id, ReservationState.RESERVED.value),
    )


async def insert_job(conn: aiosqlite.Connection, new: NewJob, now: float) -> Job:
    """Insert `new` in state PENDING on `conn` (inside the caller's transaction) and return it.

    A module function so that the quota store can insert the job in its admission transaction, together
    with the job's quota reservation.
    """
    columns = ", ".join(NEW_JOB_COLUMNS)
    placeholders = ", ".join("?" for _ in NEW_JOB_COLUMNS)
    async with conn.execute(
        f"INSERT INTO jobs ({columns}) VALUES ({placeholders}) RETURNING *", new_job_values(new, now)
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None  # RETURNING always yields the inserted row
    return row_to_job(row)
