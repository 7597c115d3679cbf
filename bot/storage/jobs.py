"""The job store: every job's row, and state changes as single guarded UPDATEs.

A transition names the states it may start from; the UPDATE's WHERE clause checks that the row is still in
one of them. Two workers, or a replay after a crash, therefore cannot apply the same change twice: the loser
gets None back and must re-read the row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import aiosqlite

from bot.domain.models import (
    FINAL_STATES,
    ImageInfo,
    Job,
    JobOrigin,
    JobState,
    ProviderName,
    Ratio,
    Requester,
    Resolution,
    ServiceTier,
    VideoRequest,
    sources_of,
)

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
    }
)

_ACTIVE_STATES_SQL = ", ".join(f"'{state.value}'" for state in JobState if not state.is_final)


@dataclass(frozen=True)
class NewJob:
    """What is known of a job before the provider has seen it."""

    provider: ProviderName
    request: VideoRequest
    requester: Requester
    deadline_at: float
    first_frame: ImageInfo | None = None
    last_frame: ImageInfo | None = None
    status_message_id: int | None = None
    thread_id: int | None = None
    upload_limit_bytes: int | None = None
    credits: int | None = None  # the quota's price of the job, when a quota applies


class JobStore:
    """Jobs in SQLite. All methods are safe to call concurrently from one event loop."""

    def __init__(self, conn: aiosqlite.Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock

    async def create(self, new: NewJob) -> Job:
        """Insert a job in state PENDING and return it."""
        return await insert_job(self._conn, new, self._clock())

    async def get(self, job_id: int) -> Job | None:
        """The job with that id, or None."""
        async with self._conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return _row_to_job(row) if row else None

    async def transition(
        self,
        job_id: int,
        to: JobState,
        *,
        expected: Collection[JobState] | None = None,
        **fields: Any,
    ) -> Job | None:
        """Move a job to `to` if it is still in one of `expected` (default: every allowed source state).

        Returns the updated job, or None when the job was not in an expected state (someone else moved it
        first). Entering a final state stamps `finished_at` and clears `next_poll_at`.
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
        return await self._guarded_update(job_id, sources, {"state": to.value, **values}, now)

    async def annotate(self, job_id: int, **fields: Any) -> Job | None:
        """Set fields without changing state (status message ids, a rescheduled poll); None if final."""
        active = frozenset(state for state in JobState if not state.is_final)
        return await self._guarded_update(job_id, active, fields, self._clock())

    async def active_jobs(self, origin: JobOrigin | None = None, *, guild_id: int | None = None) -> list[Job]:
        """Every job that is not final, soonest due first: what the poller resumes after a restart.

        With `guild_id`, only that server's (what its moderators see).
        """
        sql = f"SELECT * FROM jobs WHERE state IN ({_ACTIVE_STATES_SQL})"
        params: list[Any] = []
        if origin is not None:
            sql += " AND origin = ?"
            params.append(origin.value)
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        sql += " ORDER BY COALESCE(next_poll_at, 0), id"
        async with self._conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [_row_to_job(row) for row in rows]

    async def jobs_for_user(self, user_id: int, *, guild_id: int | None = None, limit: int = 10) -> list[Job]:
        """A member's most recent jobs, newest first, optionally in one server only."""
        sql = "SELECT * FROM jobs WHERE user_id = ?"
        params: list[Any] = [user_id]
        if guild_id is not None:
            sql += " AND guild_id = ?"
            params.append(guild_id)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        async with self._conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [_row_to_job(row) for row in rows]

    async def find_by_provider_job(self, provider: ProviderName, provider_job_id: str) -> Job | None:
        """The job a provider knows by `provider_job_id` (for callbacks)."""
        async with self._conn.execute(
            "SELECT * FROM jobs WHERE provider = ? AND provider_job_id = ?",
            (provider.value, provider_job_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _row_to_job(row) if row else None

    async def _guarded_update(
        self, job_id: int, sources: Collection[JobState], fields: Mapping[str, Any], now: float
    ) -> Job | None:
        unknown = set(fields) - UPDATABLE_FIELDS - {"state"}
        if unknown:
            raise ValueError(f"cannot update job columns {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        placeholders = ", ".join("?" for _ in sources)
        sql = (
            f"UPDATE jobs SET {assignments}{', ' if assignments else ''}updated_at = ? "
            f"WHERE id = ? AND state IN ({placeholders}) RETURNING *"
        )
        params = [_to_column(value) for value in fields.values()]
        params += [now, job_id, *(state.value for state in sources)]
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return _row_to_job(row) if row else None


async def insert_job(conn: aiosqlite.Connection, new: NewJob, now: float) -> Job:
    """Insert `new` in state PENDING on `conn` and return it.

    A module function rather than a JobStore method so that the QuotaStore can insert the job inside its own
    transaction, on its own connection, together with the job's quota reservation.
    """
    async with conn.execute(
        """
        INSERT INTO jobs (state, provider, model, request_json, origin, user_id, guild_id, channel_id,
                          first_frame_json, last_frame_json, status_message_id, thread_id,
                          upload_limit_bytes, credits, created_at, updated_at, deadline_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
    )
