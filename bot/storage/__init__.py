"""Storage backends for the job layer's store protocols (`bot.jobs.ports`); SQLite is the embedded one."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.ports import Stores
from bot.storage.database import SqliteDatabase
from bot.storage.jobs import SqliteJobStore
from bot.storage.quota import SqliteQuotaStore
from bot.storage.state import SqliteStateStore


async def open_stores(database_path: Path | str) -> Stores:
    """Open the SQLite database at `database_path` (created and migrated as needed) and its stores.

    Every store shares the one writer, so the process never trips over its own write lock.
    """
    db = await SqliteDatabase.open(database_path)
    return Stores(
        jobs=SqliteJobStore(db),
        quota=SqliteQuotaStore(db),
        state=SqliteStateStore(db),
        close=db.close,
    )
