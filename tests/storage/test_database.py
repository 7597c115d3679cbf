"""Opening the database: WAL, numbered migrations recorded in the database, refusal of newer schemas."""

from __future__ import annotations

import pytest

from bot.storage.database import open_database
from bot.storage.errors import MigrationError
from bot.storage.migrations import MIGRATIONS, Migration, current_version, migrate


async def test_a_new_database_is_created_in_wal_mode_at_the_latest_version(tmp_path):
    path = tmp_path / "nested" / "bot.sqlite3"
    conn = await open_database(path)
    try:
        assert path.exists()
        async with conn.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"
        assert await current_version(conn) == max(m.version for m in MIGRATIONS)
        async with conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'"
        ) as c:
            indexes = {row[0] for row in await c.fetchall()}
        assert {"jobs_active_due", "jobs_by_user", "jobs_by_guild", "jobs_by_provider_job"} <= indexes
    finally:
        await conn.close()


async def test_reopening_applies_nothing_twice(tmp_path):
    path = tmp_path / "bot.sqlite3"
    await (await open_database(path)).close()
    conn = await open_database(path)
    try:
        async with conn.execute("SELECT COUNT(*) FROM schema_migrations") as cursor:
            assert (await cursor.fetchone())[0] == len(MIGRATIONS)
    finally:
        await conn.close()


async def test_a_new_migration_is_applied_on_top_and_recorded(tmp_path):
    conn = await open_database(tmp_path / "bot.sqlite3")
    try:
        extra = (*MIGRATIONS, Migration(99, "notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY)"))
        assert await migrate(conn, extra) == 99
        async with conn.execute("SELECT name FROM schema_migrations WHERE version = 99") as cursor:
            assert (await cursor.fetchone())[0] == "notes"
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_the_schema_at_the_last_good_version(tmp_path):
    conn = await open_database(tmp_path / "bot.sqlite3")
    try:
        before = await current_version(conn)
        broken = (
            *MIGRATIONS,
            Migration(50, "half", "CREATE TABLE half (id INTEGER); CREATE TABLE half (id INTEGER)"),
        )
        with pytest.raises(Exception, match="already exists"):
            await migrate(conn, broken)
        assert await current_version(conn) == before
        async with conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'") as cursor:
            assert (await cursor.fetchone())[0] == 0
    finally:
        await conn.close()


async def test_a_database_from_newer_code_is_refused_with_advice(tmp_path):
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path)
    await conn.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (1000, 'future', 0)")
    await conn.close()
    with pytest.raises(MigrationError, match="schema version 1000, newer than this code knows"):
        await open_database(path)
