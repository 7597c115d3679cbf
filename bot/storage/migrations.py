"""Numbered schema migrations, applied in order and recorded in the database itself.

Never edit a migration that has shipped: add a new one. Each runs in its own transaction together with the
row that records it, so a crash leaves the schema at a known version.
"""

from __future__ import annotations

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


def _statements(sql: str) -> list[str]:
    # executescript() would COMMIT our transaction first, so split the script ourselves; no migration
    # uses a ';' inside a string literal or trigger body.
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
