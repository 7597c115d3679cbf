"""The bot's small key-value facts (`bot_state`) in PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.storage.postgres.database import PostgresDatabase


class PostgresStateStore:
    """Strings by key, in the `bot_state` table (keys ordered byte-wise, as in SQLite)."""

    def __init__(self, db: PostgresDatabase, *, clock: Callable[[], float] = time.time) -> None:
        """Use `db`, the process's pool."""
        self._db = db
        self._clock = clock

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""
        row = await self._db.fetch_one("SELECT value FROM bot_state WHERE key = $1", key)
        return str(row[0]) if row else None

    async def delete(self, key: str) -> None:
        """Forget `key` (nothing happens when it is not there)."""
        await self._db.execute("DELETE FROM bot_state WHERE key = $1", key)

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) whose key starts with `prefix`."""
        # A range on the "C"-collated primary key, not LIKE: the prefix may hold '%' or '_'.
        rows = await self._db.fetch_all(
            "SELECT key, value FROM bot_state WHERE key >= $1 AND key < $2 ORDER BY key",
            prefix,
            prefix + "\U0010ffff",
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def put(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing what was there."""
        await self._db.execute(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            key,
            value,
            self._clock(),
        )

    async def put_if_absent(self, key: str, value: str) -> bool:
        """Store `value` under `key` only if nothing is there; True when this call stored it."""
        # The primary key decides between processes; RETURNING yields a row only for the one that inserted.
        row = await self._db.fetch_one(
            "INSERT INTO bot_state (key, value, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (key) DO NOTHING RETURNING key",
            key,
            value,
            self._clock(),
        )
        return row is not None
