"""The SQLite job store: every job's row, and state changes as single guarded UPDATEs.

A transition names the states it may start from; the UPDATE's WHERE clause checks that the row is still in
one of them (and, for a process driving the job, that it still holds the job's lease). Two workers, or a
replay after a crash, therefore cannot apply the same change twice: the loser gets None back and must re-read
the row. A transition that ends a job settles its quota reservation in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import aiosqlite

from bot.domain.models import (
    FINAL_STATES,
    Derivation,
    ImageInfo,
    Job,
    JobOrigin,
    JobState,
    Lineage,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
    sources_of,
)
from bot.jobs.ledger import settlement_for
from bot.jobs.ports import GenerationKey, NewJob, ReservationState
from bot.storage.database import SqliteDatabase

__all__ = ["UPDATABLE_FIELDS", "JobStore", "NewJob", "SqliteJobStore", "insert_job"]

#: Columns a transition may set besides `state`. Anything else is a programming error.
UPDATABLE_FIELDS = frozenset(
    {
        "provider_job_id",
        "submitted_at",
        "finished_at",
        "next_poll_at",
        "poll_failures",
        "queue_position",
        "progress_percent",
        "video_url",
        "last_frame_url",
        "video_bytes",
        "cost_usd",
        "usage_tokens",
        "error_code",
        "error_message",
        "status_message_id",
        "thread_id",
        "delivery_ref",
        "submit_started_at",
        "announced_at",
        "reply_handle",
        "lease_owner",
        "lease_expires_at",
    }
)

_ACTIVE_STATES_SQL = ", ".join(f"'{state.value}'" for state in JobState if not state.is_final)


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
        return _row_to_job(row) if row else None

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
        sources = sources_of(to) if expected is None else frozenset(expected)
        illegal = sources - sources_of(to)
        if illegal:
            raise ValueError(f"{', '.join(sorted(illegal))} → {to} is not an allowed transition")
        if not sources:
            raise ValueError(f"no state may move to {to}")
        now = self._clock()
        values: dict[str, Any] = dict(fields)
        if to in FINAL_STATES:
            values.setdefault("finished_at", now)
            values["next_poll_at"] = None
        if to is JobState.DELIVERED:
            values.setdefault("announced_at", now)
        settlement = settlement_for(to)
        update = _guarded_update(job_id, sources, {"state": to.value, **values}, now, owner)
        if settlement is None:
            row = await self._db.write(*update)
            return _row_to_job(row) if row else None
        async with self._db.transaction() as conn:
            async with conn.execute(*update) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await _settle(conn, job_id, settlement, now)
        return _row_to_job(row) if row else None

    async def annotate(self, job_id: int, *, owner: str | None = None, **fields: Any) -> Job | None:
        """Set fields without changing state (status message ids, a rescheduled poll); None if final."""
        active = frozenset(state for state in JobState if not state.is_final)
        row = await self._db.write(*_guarded_update(job_id, active, fields, self._clock(), owner))
        return _row_to_job(row) if row else None

    async def mark_removed(self, job_id: int) -> Job | None:
        """Record that a delivered job's video post was deleted; None when the job is not delivered."""
        now = self._clock()
        sql = "UPDATE jobs SET removed_at = ?, updated_at = ? WHERE id = ? AND state = ? RETURNING *"
        row = await self._db.write(sql, [now, now, job_id, JobState.DELIVERED.value])
        return _row_to_job(row) if row else None

    async def mark_announced(self, job_id: int, *, owner: str | None = None) -> Job | None:
        """Record that a final job's outcome reached its requester; None when already recorded."""
        sql = (
            f"UPDATE jobs SET announced_at = ?, updated_at = ? "
            f"WHERE id = ? AND announced_at IS NULL AND state IN ({_FINAL_STATES_SQL})"
        )
        now = self._clock()
        params: list[Any] = [now, now, job_id]
        if owner is not None:
            sql += " AND lease_owner = ?"
            params.append(owner)
        row = await self._db.write(sql + " RETURNING *", params)
        return _row_to_job(row) if row else None

    async def set_status_message(self, job_id: int, status_message_id: int) -> None:
        """Record the job's status card, in any state (a card found again after a crash)."""
        await self._db.write(
            "UPDATE jobs SET status_message_id = ?, updated_at = ? WHERE id = ?",
            (status_message_id, self._clock(), job_id),
        )

    async def mark_card_final(self, job_id: int) -> None:
        """Record that the job's status card shows its final state."""
        await self._db.write(
            f"UPDATE jobs SET card_final_at = ? WHERE id = ? AND state IN ({_FINAL_STATES_SQL})",
            (self._clock(), job_id),
        )

    async def stale_cards(self, origin: JobOrigin, *, finished_since: float) -> list[Job]:
        """Final jobs since `finished_since` whose status card may not show their end yet."""
        rows = await self._db.fetch_all(
            f"""
            SELECT * FROM jobs
            WHERE card_final_at IS NULL AND status_message_id IS NOT NULL AND finished_at >= ?
              AND origin = ? AND state IN ({_FINAL_STATES_SQL})
            ORDER BY finished_at
            """,
            (finished_since, origin.value),
        )
        return [_row_to_job(row) for row in rows]

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

    async def renew_leases(self, owner: str, *, until: float) -> int:
        """Extend every lease `owner` holds to `until`; return how many."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ?", (until, owner)
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
        return [_row_to_job(row) for row in await self._db.fetch_all(sql, params)]

    async def active_jobs(self, origin: JobOrigin | None = None, *, guild_id: int | None = None) -> list[Job]:
        """Every job that is not final, soonest due first (with `guild_id`, only that server's)."""
        sql = f"SELECT * FROM jobs WHERE state IN ({_ACTIVE_STATES_SQL})"
        params: list[Any] = []
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin.value)
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        return [_row_to_job(row) for row in await self._db.fetch_all(sql, params)]

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
        return [_row_to_job(row) for row in await self._db.fetch_all(sql, params)]

    async def find_by_reply_handle(self, reply_handle: str) -> Job | None:
        """The job created for the request with that reply handle, if one was (a rare look-up: no index)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE reply_handle = ? ORDER BY id DESC LIMIT 1", (reply_handle,)
        )
        return _row_to_job(row) if row else None

    async def find_by_provider_job(self, provider: ProviderName, provider_job_id: str) -> Job | None:
        """The job a provider knows by `provider_job_id` (for callbacks)."""
        row = await self._db.fetch_one(
            "SELECT * FROM jobs WHERE provider = ? AND provider_job_id = ?",
            (provider.value, provider_job_id),
        )
        return _row_to_job(row) if row else None

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


#: The name the rest of the code used before the store became a protocol; tests and benchmarks use it.
JobStore = SqliteJobStore

_FINAL_STATES_SQL = ", ".join(f"'{state.value}'" for state in FINAL_STATES)

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
    unknown = set(fields) - UPDATABLE_FIELDS - {"state"}
    if unknown:
        raise ValueError(f"cannot update job columns {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    placeholders = ", ".join("?" for _ in sources)
    sql = (
        f"UPDATE jobs SET {assignments}{', ' if assignments else ''}updated_at = ? "
        f"WHERE id = ? AND state IN ({placeholders})"
    )
    params = [_to_column(value) for value in fields.values()]
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
    async with conn.execute(
        """
        INSERT INTO jobs (state, provider, model, request_json, origin, user_id, guild_id, channel_id,
                          first_frame_json, last_frame_json, status_message_id, thread_id,
                          upload_limit_bytes, credits, created_at, updated_at, deadline_at,
                          lease_owner, lease_expires_at, reply_handle, parent_job_id, derivation)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        RETURNING *
        """,
        (
            JobState.PENDING.value,
            new.provider.value,
            new.request.model,
            json.dumps(_request_to_json(new.request)),
            new.requester.origin.value,
            new.requester.user_id,
            new.requester.guild_id,
            new.requester.channel_id,
            _image_to_json(new.first_frame),
            _image_to_json(new.last_frame),
            new.status_message_id,
            new.thread_id,
            new.upload_limit_bytes,
            new.credits,
            now,
            now,
            new.deadline_at,
            new.lease_owner,
            new.lease_expires_at,
            new.reply_handle,
            new.lineage.parent_job_id if new.lineage else None,
            new.lineage.derivation.value if new.lineage else None,
        ),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None  # RETURNING always yields the inserted row
    return _row_to_job(row)


def _to_column(value: Any) -> Any:
    return value.value if isinstance(value, JobState) else value


def _request_to_json(request: VideoRequest) -> dict[str, Any]:
    data = asdict(request)
    data["resolution"] = request.resolution.value
    data["ratio"] = request.ratio.value
    data["service_tier"] = request.service_tier.value if request.service_tier else None
    return data


def _request_from_json(raw: str) -> VideoRequest:
    data = json.loads(raw)
    return VideoRequest(
        model=data["model"],
        prompt=data["prompt"],
        resolution=Resolution(data["resolution"]),
        ratio=Ratio(data["ratio"]),
        duration_s=int(data["duration_s"]),
        generate_audio=data.get("generate_audio"),
        camera_fixed=data.get("camera_fixed"),
        seed=data.get("seed"),
        watermark=data.get("watermark"),
        service_tier=ServiceTier(data["service_tier"]) if data.get("service_tier") else None,
        expires_after_s=data.get("expires_after_s"),
        return_last_frame=data.get("return_last_frame"),
        reference_images=int(data.get("reference_images", 0)),
        reference_videos=int(data.get("reference_videos", 0)),
        reference_audios=int(data.get("reference_audios", 0)),
        # Rows stored before web search existed have no key: not asked.
        web_search=data.get("web_search"),
    )


def _image_to_json(info: ImageInfo | None) -> str | None:
    return None if info is None else json.dumps(asdict(info))


def _image_from_json(raw: str | None) -> ImageInfo | None:
    if raw is None:
        return None
    data = json.loads(raw)
    data["notes"] = tuple(data.get("notes", ()))
    return ImageInfo(**data)


def _row_to_job(row: aiosqlite.Row) -> Job:
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        provider=ProviderName(row["provider"]),
        request=_request_from_json(row["request_json"]),
        requester=Requester(
            origin=JobOrigin(row["origin"]),
            user_id=row["user_id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deadline_at=row["deadline_at"],
        first_frame=_image_from_json(row["first_frame_json"]),
        last_frame=_image_from_json(row["last_frame_json"]),
        provider_job_id=row["provider_job_id"],
        submitted_at=row["submitted_at"],
        finished_at=row["finished_at"],
        next_poll_at=row["next_poll_at"],
        poll_failures=row["poll_failures"],
        queue_position=row["queue_position"],
        progress_percent=row["progress_percent"],
        video_url=row["video_url"],
        last_frame_url=row["last_frame_url"],
        video_bytes=row["video_bytes"],
        cost_usd=row["cost_usd"],
        error_code=row["error_code"],
        error_message=row["error_message"],
        status_message_id=row["status_message_id"],
        thread_id=row["thread_id"],
        delivery_ref=row["delivery_ref"],
        upload_limit_bytes=row["upload_limit_bytes"],
        credits=row["credits"],
        usage_tokens=row["usage_tokens"],
        lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"],
        submit_started_at=row["submit_started_at"],
        announced_at=row["announced_at"],
        reply_handle=row["reply_handle"],
        card_final_at=row["card_final_at"],
        lineage=(
            Lineage(row["parent_job_id"], Derivation(row["derivation"]))
            if row["parent_job_id"] is not None and row["derivation"] is not None
            else None
        ),
        removed_at=row["removed_at"],
    )
