"""A small key-value table for facts the bot keeps across restarts."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiosqlite

from bot.storage.database import SqliteDatabase


class SqliteStateStore:
    """Strings by key, in the `bot_state` table."""

    def __init__(
        self, db: SqliteDatabase | aiosqlite.Connection, *, clock: Callable[[], float] = time.time
    ) -> None:
        """Use `db`, the process's shared database."""
        self._db = SqliteDatabase.wrap(db)
        self._clock = clock

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        row = await self._db.fetch_one("SELECT value FROM bot_state WHERE key = ?", (key,))
        return str(row[0]) if row else None

    async def put(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""
        await self._db.write(
            "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, self._clock()),
        )
