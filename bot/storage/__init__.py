"""Storage backends for the job layer's store protocols (`bot.jobs.ports`): SQLite, the embedded default
for one process, and PostgreSQL, which several processes can share."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.ports import Stores
from bot.storage.database import SqliteDatabase
from bot.storage.jobs import LocalJobEvents, SqliteJobStore
from bot.storage.postgres import open_postgres_stores
from bot.storage.postgres.database import describe_url
from bot.storage.quota import SqliteQuotaStore
from bot.storage.state import SqliteStateStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_PREFIX = "sqlite:///"


def is_postgres_url(database_url: str | None) -> bool:
    """Whether DATABASE_URL names a PostgreSQL database."""
    return database_url is not None and database_url.startswith(_POSTGRES_SCHEMES)


def sqlite_path(database_path: Path | str, database_url: str | None = None) -> Path | None:
    """The SQLite file in use: `sqlite:///path`'s path, else DATABASE_PATH; None when it is PostgreSQL.

    As in SQLAlchemy's URLs, `sqlite:///data/bot.sqlite3` is relative, `sqlite:////srv/bot.sqlite3`
    absolute.
    """
    if database_url is None:
        return Path(database_path)
    if is_postgres_url(database_url):
        return None
    if database_url.startswith(_SQLITE_PREFIX) and database_url.removeprefix(_SQLITE_PREFIX):
        return Path(database_url.removeprefix(_SQLITE_PREFIX))
    raise ValueError("DATABASE_URL must start with postgresql:// or be sqlite:///path")


def describe_database(database_path: Path | str, database_url: str | None = None) -> str:
    """The database in use, as logs may show it: the SQLite file's path, or PostgreSQL's host, port and
    database (never a password)."""
    path = sqlite_path(database_path, database_url)
    if path is None:
        assert database_url is not None
        return f"PostgreSQL {describe_url(database_url)}"
    return str(path.resolve())


async def open_stores(database_path: Path | str, *, database_url: str | None = None) -> Stores:
    """Open the stores of the database that `database_url` names, else the SQLite file `database_path`.

    SQLite: the file is created and migrated as needed, and every store shares the one writer, so the
    process never trips over its own write lock. PostgreSQL: one pool, migrated as needed.
    """
    path = sqlite_path(database_path, database_url)
    if path is None:
        assert database_url is not None
        return await open_postgres_stores(database_url)
    db = await SqliteDatabase.open(path)
    return Stores(
        jobs=SqliteJobStore(db),
        quota=SqliteQuotaStore(db),
        state=SqliteStateStore(db),
        events=LocalJobEvents(),
        close=db.close,
    )
