"""Numbered schema migrations, applied in order and recorded in the database itself.

Never edit a migration that has shipped: add a new one. Each runs in its own transaction together with the
row that records it, so a crash leaves the schema at a known version.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import aiosqlite

from bot.storage.errors import MigrationError


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs",
        """
        CREATE TABLE jobs (
            id                INTEGER PRIMARY KEY AUTOINCREMENT,
            state             TEXT    NOT NULL,
            provider          TEXT    NOT NULL,
            model             TEXT    NOT NULL,
            request_json      TEXT    NOT NULL,
            origin            TEXT    NOT NULL,
            user_id           INTEGER,
            guild_id          INTEGER,
            channel_id        INTEGER,
            first_frame_json  TEXT,
            last_frame_json   TEXT,
            provider_job_id   TEXT,
            created_at        REAL    NOT NULL,
            updated_at        REAL    NOT NULL,
            deadline_at       REAL    NOT NULL,
            submitted_at      REAL,
            finished_at       REAL,
            next_poll_at      REAL,
            poll_failures     INTEGER NOT NULL DEFAULT 0,
            queue_position    INTEGER,
            progress_percent  REAL,
            video_url         TEXT,
            video_bytes       INTEGER,
            cost_usd          REAL,
            error_code        TEXT,
            error_message     TEXT,
            status_message_id INTEGER,
            thread_id         INTEGER,
            delivery_ref      TEXT
        );
        -- The poller resumes and schedules only jobs that are not final.
        CREATE INDEX jobs_active_due ON jobs (next_poll_at)
            WHERE state IN ('pending', 'queued', 'running', 'succeeded');
        -- /jobs and autocomplete: a member's recent jobs.
        CREATE INDEX jobs_by_user ON jobs (user_id, created_at DESC);
        -- Moderators' view of a server's jobs.
        CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at DESC);
        -- Callbacks and support look-ups by the provider's id.
        CREATE UNIQUE INDEX jobs_by_provider_job ON jobs (provider, provider_job_id)
            WHERE provider_job_id IS NOT NULL;
        """,
    ),
    Migration(
        2,
        "bot_state",
        """
        -- Small facts the bot remembers across restarts (the hash of the last synced command set).
        CREATE TABLE bot_state (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        -- The per-file upload limit Discord stated when the job was requested (boosts change it).
        ALTER TABLE jobs ADD COLUMN upload_limit_bytes INTEGER;
        """,
    ),
    Migration(
        3,
        "quotas",
        """
        -- What moderators set: limits for the server default (target_id 0), a role or a member.
        CREATE TABLE quota_limits (
            guild_id    INTEGER NOT NULL,
            scope       TEXT    NOT NULL CHECK (scope IN ('server', 'role', 'member')),
            target_id   INTEGER NOT NULL,
            limits_json TEXT    NOT NULL,
            updated_at  REAL,
            updated_by  INTEGER,
            PRIMARY KEY (guild_id, scope, target_id)
        );
        -- Server-wide rules: the server's own budget, channels, bans, banned words.
        CREATE TABLE quota_rules (
            guild_id   INTEGER PRIMARY KEY,
            rules_json TEXT NOT NULL,
            updated_at REAL,
            updated_by INTEGER
        );
        -- One row per job that a quota admitted: reserved with the job, then committed or released.
        CREATE TABLE reservations (
            job_id     INTEGER PRIMARY KEY REFERENCES jobs (id),
            guild_id   INTEGER,
            user_id    INTEGER,
            model      TEXT,
            credits    INTEGER NOT NULL,
            state      TEXT    NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
            created_at REAL    NOT NULL,
            settled_at REAL
        );
        -- The server's day and month totals.
        CREATE INDEX reservations_by_guild ON reservations (guild_id, created_at);
        -- A member's day and 30-day totals.
        CREATE INDEX reservations_by_member ON reservations (guild_id, user_id, created_at);
        -- The quota's price of the job, and the provider's own usage figure when it reports one.
        ALTER TABLE jobs ADD COLUMN credits INTEGER;
        ALTER TABLE jobs ADD COLUMN usage_tokens INTEGER;
        -- A reservation is settled by the very statement that ends its job, so no crash can fall between
        -- the two; the `state = 'reserved'` guard makes settling happen exactly once.
        CREATE TRIGGER reservations_commit_on_delivery
        AFTER UPDATE OF state ON jobs
        WHEN NEW.state = 'delivered'
        BEGIN
            UPDATE reservations SET state = 'committed', settled_at = NEW.updated_at
            WHERE job_id = NEW.id AND state = 'reserved';
        END;
        CREATE TRIGGER reservations_release_on_failure
        AFTER UPDATE OF state ON jobs
        WHEN NEW.state IN ('failed', 'cancelled', 'expired', 'timed_out', 'unknown')
        BEGIN
            UPDATE reservations SET state = 'released', settled_at = NEW.updated_at
            WHERE job_id = NEW.id AND state = 'reserved';
        END;
        """,
    ),
    Migration(
        4,
        "last_frame_url",
        """
        -- ModelArk can send back the video's last frame as an image; the bot posts it with the video.
        ALTER TABLE jobs ADD COLUMN last_frame_url TEXT;
        """,
    ),
    Migration(
        5,
        "leases_announcements_settlement_in_code",
        """
        -- The process driving a job holds its lease until it expires (renewed while it works).
        ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
        ALTER TABLE jobs ADD COLUMN lease_expires_at REAL;
        -- Set just before the paid submit: a PENDING job without it was never sent.
        ALTER TABLE jobs ADD COLUMN submit_started_at REAL;
        -- When the outcome reached the requester; NULL while the job still needs work (an outbox).
        ALTER TABLE jobs ADD COLUMN announced_at REAL;
        -- The front end's handle to answer the requester privately (an interaction token, 15 minutes).
        ALTER TABLE jobs ADD COLUMN reply_handle TEXT;
        -- A job left PENDING by an older version may have been sent: never treat it as unsent.
        UPDATE jobs SET submit_started_at = created_at WHERE state = 'pending';
        -- Jobs that ended before this version were announced by the code of their time.
        UPDATE jobs SET announced_at = COALESCE(finished_at, updated_at)
            WHERE state IN ('delivered', 'failed', 'cancelled', 'expired', 'timed_out', 'unknown');
        -- Settlement is the job layer's code now, in the same transaction as the state change.
        DROP TRIGGER reservations_commit_on_delivery;
        DROP TRIGGER reservations_release_on_failure;
        -- What the poller resumes: every job not yet announced (active, or ended but not told), by due time.
        DROP INDEX jobs_active_due;
        CREATE INDEX jobs_active_due ON jobs (next_poll_at) WHERE announced_at IS NULL;
        -- Renewing or releasing one process's leases.
        CREATE INDEX jobs_by_lease_owner ON jobs (lease_owner) WHERE lease_owner IS NOT NULL;
        """,
    ),
    Migration(
        6,
        "card_final_at",
        """
        -- When the status card last showed the job's final state. A crash between the ending and that edit
        -- leaves it NULL, and the next start repaints the card.
        ALTER TABLE jobs ADD COLUMN card_final_at REAL;
        UPDATE jobs SET card_final_at = COALESCE(finished_at, updated_at)
            WHERE state IN ('delivered', 'failed', 'cancelled', 'expired', 'timed_out', 'unknown');
        CREATE INDEX jobs_stale_cards ON jobs (finished_at)
            WHERE card_final_at IS NULL AND status_message_id IS NOT NULL;
        """,
    ),
    Migration(
        7,
        "lineage_and_removal",
        """
        -- A job made from an earlier one with a button (re-roll, extend, variation), and when a video's post
        -- was deleted by its requester or a moderator.
        ALTER TABLE jobs ADD COLUMN parent_job_id INTEGER REFERENCES jobs (id);
        ALTER TABLE jobs ADD COLUMN derivation TEXT;
        ALTER TABLE jobs ADD COLUMN removed_at REAL;
        """,
    ),
    Migration(
        8,
        "eta_indexes",
        """
        -- "When will it be ready": the newest generation times of jobs like this one (same provider, model,
        -- resolution, duration and tier) whose video was made, for all servers, then per server. The key's
        -- expressions must stay exactly as SqliteJobStore.generation_times writes them, or SQLite will not
        -- match them with the index.
        CREATE INDEX jobs_generation_times ON jobs (
            provider, model, json_extract(request_json, '$.resolution'),
            json_extract(request_json, '$.duration_s'),
            COALESCE(json_extract(request_json, '$.service_tier'), 'default'), finished_at
        ) WHERE state IN ('succeeded', 'delivering', 'delivered');
        CREATE INDEX jobs_generation_times_by_guild ON jobs (
            guild_id, provider, model, json_extract(request_json, '$.resolution'),
            json_extract(request_json, '$.duration_s'),
            COALESCE(json_extract(request_json, '$.service_tier'), 'default'), finished_at
        ) WHERE state IN ('succeeded', 'delivering', 'delivered');
        -- A queue position when the provider reports none: the bot's queued jobs per provider, by submit
        -- time (`state` is a column too, so that the count reads the index alone).
        CREATE INDEX jobs_queued_by_provider ON jobs (provider, state, submitted_at) WHERE state = 'queued';
        """,
    ),
)


async def current_version(conn: aiosqlite.Connection) -> int:
    """The highest migration applied, 0 for a new database."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Apply every migration newer than the database; return the resulting version."""
    version = await current_version(conn)
    newest = max((m.version for m in migrations), default=0)
    if version > newest:
        raise MigrationError(
            f"The database is at schema version {version}, newer than this code knows ({newest}). "
            "Upgrade the bot, or point DATABASE_PATH at another file."
        )
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version <= version:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Another connection (the quota store, a second process) may have migrated since we looked.
            if await _applied(conn, migration.version):
                await conn.execute("COMMIT")
                version = migration.version
                continue
            for statement in _statements(migration.sql):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
        version = migration.version
    return version


async def _applied(conn: aiosqlite.Connection, version: int) -> bool:
    async with conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)) as cursor:
        return await cursor.fetchone() is not None


def _statements(sql: str) -> list[str]:
    # executescript() would COMMIT our transaction first, so split the script ourselves on ';'. A trigger's
    # BEGIN … END body holds ';' of its own, so a CREATE TRIGGER runs on until a line that is exactly `END;`.
    # No migration uses a ';' inside a string literal.
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements: list[str] = []
    trigger_pieces: list[str] = []
    for piece in "\n".join(lines).split(";"):
        if not trigger_pieces and not _TRIGGER_START.match(piece):
            if piece.strip():
                statements.append(piece.strip())
            continue
        trigger_pieces.append(piece)
        if piece.strip() and piece.rstrip().splitlines()[-1].strip().upper() == "END":
            statements.append(";".join(trigger_pieces).strip())
            trigger_pieces = []
    if trigger_pieces:
        raise MigrationError("A CREATE TRIGGER in a migration has no line that is exactly `END;`.")
    return statements


_TRIGGER_START = re.compile(r"\s*CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\b", re.IGNORECASE)
