"""The PostgreSQL quota store: the SQLite store's contract, exact across processes.

An admission counts usage, asks the policy and writes the job with its reservation in one transaction that
first takes the server's advisory lock (`pg_advisory_xact_lock`), so admissions to one server are serialised
across every process and pool: fifty members pressing the button at once on different processes can never
overspend. Each statement after the lock reads a fresh snapshot (READ COMMITTED), so it sees every
admission committed before. Rule and limit updates are read-modify-write under a lock of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from bot.domain.models import Job
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
from bot.storage.postgres.database import PgConnection, PostgresDatabase, lock_key
from bot.storage.postgres.jobs import insert_job
from bot.storage.rows import (
    FINAL_STATES_SQL,
    limits_from_json,
    limits_to_json,
    quota_config,
    reservation_row,
    rules_from_json,
    rules_to_json,
    usage_row,
    usage_windows,
)

_UPSERT_LIMITS = """
    INSERT INTO quota_limits (guild_id, scope, target_id, limits_json, updated_at, updated_by)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (guild_id, scope, target_id) DO UPDATE SET
        limits_json = excluded.limits_json,
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
"""
_UPSERT_RULES = """
    INSERT INTO quota_rules (guild_id, rules_json, updated_at, updated_by) VALUES ($1, $2, $3, $4)
    ON CONFLICT (guild_id) DO UPDATE SET
        rules_json = excluded.rules_json,
        updated_at = excluded.updated_at,
        updated_by = excluded.updated_by
"""


class PostgresQuotaStore:
    """Quota configuration, usage and admissions in PostgreSQL."""

    def __init__(self, db: PostgresDatabase, *, clock: Callable[[], float] = time.time) -> None:
        """Use `db`, the process's pool."""
        self._db = db
        self._clock = clock

    async def config(self, guild_id: int) -> GuildQuotaConfig:
        """Every limit and rule set for the server; ServerRules() when no rules were set."""
        limit_rows = await self._db.fetch_all(
            "SELECT scope, target_id, limits_json FROM quota_limits WHERE guild_id = $1", guild_id
        )
        rules_row = await self._db.fetch_one(
            "SELECT rules_json FROM quota_rules WHERE guild_id = $1", guild_id
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
        scope = LimitScope(scope)
        if scope is LimitScope.SERVER and target_id != 0:
            raise ValueError("the server default's target_id must be 0")
        if limits is None:
            await self._db.execute(
                "DELETE FROM quota_limits WHERE guild_id = $1 AND scope = $2 AND target_id = $3",
                guild_id,
                scope.value,
                target_id,
            )
            return
        await self._db.execute(
            _UPSERT_LIMITS, guild_id, scope.value, target_id, limits_to_json(limits), self._clock(), by
        )

    async def set_rules(self, guild_id: int, rules: ServerRules, *, by: int | None) -> None:
        """Replace the server's rules."""
        await self._db.execute(_UPSERT_RULES, guild_id, rules_to_json(rules), self._clock(), by)

    async def update_rules(
        self, guild_id: int, change: Callable[[ServerRules], ServerRules], *, by: int | None
    ) -> ServerRules:
        """Apply `change` to the server's current rules and store the result; return it.

        One transaction holding the server's rules lock (an advisory lock: the row may not exist yet), so
        two moderators on two processes both keep their change. `change` must be a pure function.
        """
        async with self._db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("rules", guild_id))
            row = await conn.fetchrow("SELECT rules_json FROM quota_rules WHERE guild_id = $1", guild_id)
            updated = change(rules_from_json(row["rules_json"]) if row else ServerRules())
            await conn.execute(_UPSERT_RULES, guild_id, rules_to_json(updated), self._clock(), by)
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
        """Apply `change` to the limits set at that level (MemberLimits() when none) and store the result;
        return it. Atomic like `update_rules`."""
        scope = LimitScope(scope)
        if scope is LimitScope.SERVER and target_id != 0:
            raise ValueError("the server default's target_id must be 0")
        async with self._db.transaction() as conn:
            key = lock_key("limits", guild_id, scope.value, target_id)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
            row = await conn.fetchrow(
                "SELECT limits_json FROM quota_limits WHERE guild_id = $1 AND scope = $2 AND target_id = $3",
                guild_id,
                scope.value,
                target_id,
            )
            updated = change(limits_from_json(row["limits_json"]) if row else MemberLimits())
            await conn.execute(
                _UPSERT_LIMITS, guild_id, scope.value, target_id, limits_to_json(updated), self._clock(), by
            )
        return updated

    async def usage(self, guild_id: int, user_id: int, *, now: float | None = None) -> Usage:
        """The member's and the server's usage at `now` (default: the clock), outside any admission."""
        async with self._db.transaction() as conn:
            return await _usage(conn, guild_id, user_id, self._clock() if now is None else now)

    async def admit(self, new: NewJob, *, credits: int, decide: Callable[[Usage], Refusal | None]) -> Job:
        """Create the job (PENDING, `credits`) with its reservation if `decide` accepts the current usage.

        One transaction under the server's admission lock. Raises QuotaRefusedError (and creates nothing)
        when `decide` refuses.
        """
        guild_id, user_id = new.requester.guild_id, new.requester.user_id
        async with self._db.transaction() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key("admit", guild_id))
            # Read the clock under the lock, so `now` is never older than any counted reservation.
            now = self._clock()
            refusal = decide(await _usage(conn, guild_id, user_id, now))
            if refusal is not None:
                raise QuotaRefusedError(refusal)
            job = await insert_job(conn, replace(new, credits=credits), now)
            await conn.execute(
                """
                INSERT INTO reservations (job_id, guild_id, user_id, model, credits, state, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                """,
                job.id,
                guild_id,
                user_id,
                job.model,
                credits,
                ReservationState.RESERVED.value,
                now,
            )
        return job

    async def usage_report(self, guild_id: int, *, since: float, until: float) -> list[UsageRow]:
        """Per member and model, the jobs admitted in [since, until) and where their credits stand."""
        # SUM of a BIGINT is NUMERIC in PostgreSQL: cast back so the figures stay ints.
        rows = await self._db.fetch_all(
            """
            SELECT r.user_id, r.model, COUNT(*) AS jobs,
                   SUM(CASE WHEN r.state = $1 THEN r.credits ELSE 0 END)::bigint AS committed,
                   SUM(CASE WHEN r.state = $2 THEN r.credits ELSE 0 END)::bigint AS reserved,
                   SUM(CASE WHEN r.state = $3 THEN r.credits ELSE 0 END)::bigint AS released,
                   SUM(j.cost_usd) AS cost_usd,
                   SUM(j.usage_tokens)::bigint AS usage_tokens
            FROM reservations AS r JOIN jobs AS j ON j.id = r.job_id
            WHERE r.guild_id = $4 AND r.created_at >= $5 AND r.created_at < $6
            GROUP BY r.user_id, r.model
            ORDER BY r.user_id, r.model COLLATE "C"
            """,
            ReservationState.COMMITTED.value,
            ReservationState.RESERVED.value,
            ReservationState.RELEASED.value,
            guild_id,
            since,
            until,
        )
        return [usage_row(row) for row in rows]

    async def reservation(self, job_id: int) -> ReservationRow | None:
        """The job's reservation, or None when no quota admitted it."""
        row = await self._db.fetch_one("SELECT * FROM reservations WHERE job_id = $1", job_id)
        if row is None:
            return None
        return reservation_row(row)


def _equals(column: str, value: int | None, params: list[Any]) -> str:
    # SQLite's `IS` matches NULL with NULL (a DM has no server); PostgreSQL's IS NOT DISTINCT FROM would
    # too, but cannot use an index, so NULL gets its own term and a value a plain `=`.
    if value is None:
        return f"{column} IS NULL"
    params.append(value)
    return f"{column} = ${len(params)}"


async def _usage(conn: PgConnection, guild_id: int | None, user_id: int | None, now: float) -> Usage:
    day_start, window_start, month_start = usage_windows(now)
    params: list[Any] = [day_start, window_start, month_start, now - HOUR_S]
    member = _equals("user_id", user_id, params)
    guild = _equals("guild_id", guild_id, params)
    params += [ReservationState.RESERVED.value, ReservationState.COMMITTED.value]
    n = len(params)
    # No upper bound at `now`: a clock stepped back must not hide the credits just reserved.
    credits = await conn.fetchrow(
        f"""
        SELECT
            SUM(CASE WHEN {member} AND created_at >= $1 THEN credits ELSE 0 END),
            SUM(CASE WHEN {member} AND created_at > $2 THEN credits ELSE 0 END),
            MIN(CASE WHEN {member} AND created_at > $2 THEN created_at END),
            SUM(CASE WHEN created_at >= $1 THEN credits ELSE 0 END),
            SUM(CASE WHEN created_at >= $3 THEN credits ELSE 0 END),
            COUNT(CASE WHEN {member} AND created_at > $4 THEN 1 END),
            MIN(CASE WHEN {member} AND created_at > $4 THEN created_at END)
        FROM reservations
        WHERE {guild} AND state IN (${n - 1}, ${n}) AND created_at >= LEAST($1, $2, $3)
        """,
        *params,
    )
    job_params: list[Any] = []
    job_member = _equals("user_id", user_id, job_params)
    job_guild = _equals("guild_id", guild_id, job_params)
    jobs = await conn.fetchrow(
        f"""
        SELECT COUNT(CASE WHEN state NOT IN ({FINAL_STATES_SQL}) THEN 1 END), MAX(created_at)
        FROM jobs WHERE {job_member} AND {job_guild}
        """,
        *job_params,
    )
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
