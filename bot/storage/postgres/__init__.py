"""The PostgreSQL backend: the same store contract as SQLite, for several processes on one database."""

from __future__ import annotations

from bot.jobs.ports import Stores
from bot.storage.postgres.database import DatabaseUnavailableError, PostgresDatabase, describe_url
from bot.storage.postgres.events import PostgresJobEvents
from bot.storage.postgres.jobs import PostgresJobStore
from bot.storage.postgres.quota import PostgresQuotaStore
from bot.storage.postgres.state import PostgresStateStore

__all__ = [
    "DatabaseUnavailableError",
    "PostgresDatabase",
    "PostgresJobEvents",
    "PostgresJobStore",
    "PostgresQuotaStore",
    "PostgresStateStore",
    "describe_url",
    "open_postgres_stores",
]


async def open_postgres_stores(url: str) -> Stores:
    """Connect a pool to the PostgreSQL database at `url` (migrated as needed) and open its stores."""
    db = await PostgresDatabase.open(url)
    events = PostgresJobEvents(db, url)

    async def close() -> None:
        await events.close()
        await db.close()

    return Stores(
        jobs=PostgresJobStore(db),
        quota=PostgresQuotaStore(db),
        state=PostgresStateStore(db),
        events=events,
        close=close,
    )
