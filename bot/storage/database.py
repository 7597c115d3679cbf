"""Opening the SQLite database the way the bot needs it."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from bot.storage.migrations import migrate


async def open_database(path: Path | str) -> aiosqlite.Connection:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the current schema.

    The connection runs in autocommit mode: each statement is its own transaction unless a caller opens one
    with BEGIN IMMEDIATE. `":memory:"` opens a private in-memory database (tests).
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        # WAL lets readers (a second CLI process, a backup) work while the bot writes.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA busy_timeout = 5000")
        await migrate(conn)
    except BaseException:
        await conn.close()
        raise
    return conn
