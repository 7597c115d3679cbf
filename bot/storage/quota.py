"""The SQLite quota store: moderators' limits and rules, usage figures, and admissions that reserve credits.

A job's credits go through reserve → commit → release, each exactly once:

- reserve: `admit` counts usage, asks the caller's policy, and inserts the job together with a `reserved`
  reservation in one transaction, so concurrent submissions cannot both take the last credits;
- commit / release: the job store settles the reservation in the transaction that ends the job (the rule is
  `bot.jobs.ledger.settlement_for`), touching only a reservation still `reserved`.

Writes go through the process's one writer (`SqliteDatabase`), shared with the job store: admissions are
BEGIN IMMEDIATE transactions that hold no network call, so a burst of members never meets "database is
locked".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Literal

import aiosqlite

from bot.domain.models import FINAL_STATES, Job
from bot.domain.quota import HOUR_S, MemberLimits, Refusal, ServerRules, Usage
from bot.jobs.ports import (
    GuildQuotaConfig,
    LimitScope,
    NewJob,
    QuotaRefusedError,
    ReservationRow,
    ReservationState,
    UsageRow,
)
from bot.storage.database import SqliteDatabase
from bot.storage.jobs import insert_job
from bot.storage.rows import (
    limits_from_json,
    limits_to_json,
    quota_config,
    reservation_row,
    rules_from_json,
    rules_to_json,
    usage_row,
    usage_windows,
)

__all__ = [
    "GuildQuotaConfig",
    "LimitScope",
    "QuotaRefusedError",
    "QuotaStore",
    "ReservationRow",
    "ReservationState",
    "SqliteQuotaStore",
    "UsageRow",
    "limits_from_json",
    "limits_to_json",
    "rules_from_json",
    "rules_to_json",
]

_FINAL_STATE_VALUES = tuple(sorted(state.value for state in FINAL_STATES))
_FINAL_STATES_PLACEHOLDERS = ", ".join("?" for _ in _FINAL_STATE_VALUES)

_UPSERT_LIMITS = """
    INSERT INTO quota_limits (guild_id, scope, target_id, limits_json, updated_at, updated_by)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (guild_id, scope, target_id) DO UPDATE SET
        limits_json = excluded.limits_json,
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
"""
_UPSERT_RULES = """
    INSERT INTO quota_rules (guild_id, rules_json, updated_at, updated_by) VALUES (?, ?, ?, ?)
    ON CONFLICT (guild_id) DO UPDATE SET
        rules_json = excluded.rules_json,
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
"""


class SqliteQuotaStore:
    """Quota configuration, usage and admissions in SQLite."""

    def __init__(
        self, db: SqliteDatabase | aiosqlite.Connection, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Use `db`: the process's shared database (or a connection of its own)."""
        self._db = SqliteDatabase.wrap(db)
        self._clock = clock

    @classmethod
    async def open(cls, path: Path | str, *, clock: Callable[[], float] = time.time) -> SqliteQuotaStore:
        """Open a database of its own at `path` (migrating it if needed); `close` closes it."""
        return cls(await SqliteDatabase.open(path), clock=clock)

    async def close(self) -> None:
        """Close the database this store opened with `open`."""
        await self._db.close()

    async def config(self, guild_id: int) -> GuildQuotaConfig:
        """Every limit and rule set for the server; ServerRules() when no rules were set."""
        limit_rows = await self._db.fetch_all(
            "SELECT scope, target_id, limits_json FROM quota_limits WHERE guild_id = ?", (guild_id,)
        )
        rules_row = await self._db.fetch_one(
            "SELECT rules_json FROM quota_rules WHERE guild_id = ?", (guild_id,)
        )
        return quota_config(limit_rows, rules_row["rules_json"] if rules_row else None)

    async def set_limits(
        self,
        guild_id: int,
        scope: LimitScope | Literal["server", "role", "member"],
        target_id: int,
        limits: MemberLimits | None,
        *,
        by: int | None,
    ) -> None:
        """Set the limits of the server default (target_id 0), a role or a member; None resets them."""
        scope = LimitScope(scope)  # a plain string from a command becomes the enum
        if scope is LimitScope.SERVER and target_id != 0:
            raise ValueError("the server default's target_id must be 0")
        if limits is None:
            await self._db.write(
                "DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ?",
                (guild_id, scope.value, target_id),
            )
            return
        await self._db.write(
            _UPSERT_LIMITS, (guild_id, scope.value, target_id, limits_to_json(limits), self._clock(), by)
        )

    async def set_rules(self, guild_id: int, rules: ServerRules, *, by: int | None) -> None:
        """Replace the server's rules."""
        await self._db.write(_UPSERT_RULES, (guild_id, rules_to_json(rules), self._clock(), by))

    async def update_rules(
        self, guild_id: int, change: Callable[[ServerRules], ServerRules], *, by: int | None
    ) -> ServerRules:
        """Apply `change` to the server's current rules and store the result; return it.

        Read and write are one BEGIN IMMEDIATE transaction, so two moderators changing different rules at the
        same moment (a banned word here, a channel there; in one process or two) both keep their change,
        where reading with `config` and writing with `set_rules` would let the later write drop the other's.
        `change` runs inside the transaction: keep it a pure function of the rules.
        """
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT rules_json FROM quota_rules WHERE guild_id = ?", (guild_id,)
            ) as cursor:
                row = await cursor.fetchone()
            updated = change(rules_from_json(row["rules_json"]) if row else ServerRules())
            await conn.execute(_UPSERT_RULES, (guild_id, rules_to_json(updated), self._clock(), by))
        return updated

    async def update_limits(
        self,
        guild_id: int,
        scope: LimitScope | Literal["server", "role", "member"],
        target_id: int,
        change: Callable[[MemberLimits], MemberLimits],
        *,
        by: int | None,
    ) -> MemberLimits:
        """Apply `change` to the limits set for the server default, a role or a member (MemberLimits() when
        none are set) and store the result; return it. Atomic like `update_rules`.
        """
        scope = LimitScope(scope)
        if scope is LimitScope.SERVER and target_id != 0:
            raise ValueError("the server default's target_id must be 0")
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT limits_json FROM quota_limits WHERE guild_id = ? AND scope = ? AND target_id = ?",
                (guild_id, scope.value, target_id),
            ) as cursor:
                row = await cursor.fetchone()
            updated = change(limits_from_json(row["limits_json"]) if row else MemberLimits())
            await conn.execute(
                _UPSERT_LIMITS,
                (guild_id, scope.value, target_id, limits_to_json(updated), self._clock(), by),
            )
        return updated

    async def usage(self, guild_id: int, user_id: int, *, now: float | None = None) -> Usage:
        """The member's and the server's usage at `now` (default: the clock), outside any admission.

        For display and for an early check before the image work; only `admit` decides for real.
        """
        async with self._db.reading() as conn:
            return await _usage(conn, guild_id, user_id, self._clock() if now is None else now)

    async def admit(self, new: NewJob, *, credits: int, decide: Callable[[Usage], Refusal | None]) -> Job:
        """Create the job (PENDING, `credits`) with its reservation if `decide` accepts the current usage.

        One transaction: count the usage of the member in the job's server, ask `decide`, insert the job and
        a `reserved` reservation. Raises QuotaRefusedError (and creates nothing) when `decide` refuses.
        """
        guild_id, user_id = new.requester.guild_id, new.requester.user_id
        async with self._db.transaction() as conn:
            # Read the clock under the write lock, so `now` is never older than any counted reservation.
            now = self._clock()
            refusal = decide(await _usage(conn, guild_id, user_id, now))
            if refusal is not None:
                raise QuotaRefusedError(refusal)
            job = await insert_job(conn, replace(new, credits=credits), now)
            await conn.execute(
                """
                INSERT INTO reservations (job_id, guild_id, user_id, model, credits, state, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                (job.id, guild_id, user_id, job.model, credits, ReservationState.RESERVED.value, now),
            )
        return job

    async def usage_report(self, guild_id: int, *, since: float, until: float) -> list[UsageRow]:
        """Per member and model, the jobs admitted in [since, until) and where their credits stand."""
        rows = await self._db.fetch_all(
            """
                SELECT r.user_id, r.model, COUNT(*) AS jobs,
                       SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END) AS committed,
                       SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END) AS reserved,
                       SUM(CASE WHEN r.state = ? THEN r.credits ELSE 0 END) AS released,
                       SUM(j.cost_usd) AS cost_usd,
                       SUM(j.usage_tokens) AS usage_tokens
                FROM reservations AS r JOIN jobs AS j ON j.id = r.job_id
                WHERE r.guild_id = ? AND r.created_at >= ? AND r.created_at < ?
                GROUP BY r.user_id, r.model
                ORDER BY r.user_id, r.model
                """,
            (
                ReservationState.COMMITTED.value,
                ReservationState.RESERVED.value,
                ReservationState.RELEASED.value,
                guild_id,
                since,
                until,
            ),
        )
        return [usage_row(row) for row in rows]

    async def reservation(self, job_id: int) -> ReservationRow | None:
        """The job's reservation, or None when no quota admitted it."""
        row = await self._db.fetch_one("SELECT * FROM reservations WHERE job_id = ?", (job_id,))
        if row is None:
            return None
        return reservation_row(row)


#: The name the rest of the code used before the store became a protocol; tests use it.
QuotaStore = SqliteQuotaStore


async def _usage(conn: aiosqlite.Connection, guild_id: int | None, user_id: int | None, now: float) -> Usage:
    # `IS` rather than `=` so a job without a server or member (a DM) still compares equal to its peers
    # instead of never matching.
    day_start, window_start, month_start = usage_windows(now)
    # No upper bound at `now`: a clock stepped back must not hide the credits just reserved.
    async with conn.execute(
        """
            SELECT
                SUM(CASE WHEN user_id IS :user AND created_at >= :day THEN credits ELSE 0 END),
                SUM(CASE WHEN user_id IS :user AND created_at > :window THEN credits ELSE 0 END),
                MIN(CASE WHEN user_id IS :user AND created_at > :window THEN created_at END),
                SUM(CASE WHEN created_at >= :day THEN credits ELSE 0 END),
                SUM(CASE WHEN created_at >= :month THEN credits ELSE 0 END),
                SUM(CASE WHEN user_id IS :user AND created_at > :hour THEN 1 ELSE 0 END),
                MIN(CASE WHEN user_id IS :user AND created_at > :hour THEN created_at END)
            FROM reservations
            WHERE guild_id IS :guild AND state IN (:reserved, :committed)
              AND created_at >= MIN(:day, :window, :month)
            """,
        {
            "user": user_id,
            "guild": guild_id,
            "day": day_start,
            "window": window_start,
            "month": month_start,
            "hour": now - HOUR_S,
            "reserved": ReservationState.RESERVED.value,
            "committed": ReservationState.COMMITTED.value,
        },
    ) as cursor:
        credits = await cursor.fetchone()
    # `+guild_id` keeps the planner on jobs_by_user: a member has far fewer jobs than a server.
    async with conn.execute(
        f"""
            SELECT COUNT(CASE WHEN state NOT IN ({_FINAL_STATES_PLACEHOLDERS}) THEN 1 END), MAX(created_at)
            FROM jobs WHERE user_id IS ? AND +guild_id IS ?
            """,
        (*_FINAL_STATE_VALUES, user_id, guild_id),
    ) as cursor:
        jobs = await cursor.fetchone()
    assert credits is not None and jobs is not None  # aggregates always yield one row
    return Usage(
        now=now,
        member_credits_today=credits[0] or 0,
        member_credits_30_days=credits[1] or 0,
        member_30_days_oldest_at=credits[2],
        server_credits_today=credits[3] or 0,
        server_credits_this_month=credits[4] or 0,
        member_videos_last_hour=credits[5] or 0,
        member_hour_oldest_at=credits[6],
        member_active_jobs=jobs[0],
        member_last_submit_at=jobs[1],
    )
