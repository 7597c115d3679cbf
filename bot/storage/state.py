"""A small key-value table for facts the bot keeps across restarts."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiosqlite


class StateStore:
    """Strings by key, in the `bot_state` table."""

    def __init__(self, conn: aiosqlite.Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self._clock = clock

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        async with self._conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def put(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""
        await self._conn.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, value, self._clock()),
        )
