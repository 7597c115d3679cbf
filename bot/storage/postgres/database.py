"""The PostgreSQL connection pool every store of a process shares, and its transactions.

Unlike SQLite, PostgreSQL serves many writers at once, so there is no process-wide writer lock: each write
is one statement (autocommit) or one short transaction on a pooled connection, and what must be serialised
across processes (an admission, a migration) takes a row or advisory lock inside its transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import TypeAlias
from urllib.parse import urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.storage.errors import StorageError
from bot.storage.postgres.migrations import migrate

#: A connection taken from the pool (what a transaction's body works on).
PgConnection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # generic for type checkers only

#: How long connecting may take before the bot says the database is unreachable.
CONNECT_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached or refused the connection (address, credentials, database name)."""


def describe_url(url: str) -> str:
    """`host:port/database` of a PostgreSQL URL: what logs and errors may show (never the password)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(an unreadable DATABASE_URL)"
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{database}"


def lock_key(*parts: object) -> int:
    """A stable signed 64-bit advisory-lock key for `parts` (the same in every process and version).

    Python's hash() differs between processes, so the key is a digest. Two names may collide: that only
    serialises two unrelated things, never lets two related ones run at once.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database; shared by every store of a process."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], where: str) -> None:
        """Use `pool` (opened and migrated by `open`); `where` is its password-free description."""
        self._pool = pool
        self.where = where

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10) -> PostgresDatabase:
        """Connect a pool to the database at `url` and migrate it to the current schema.

        Raises DatabaseUnavailableError (naming host and database, never the password) when it cannot
        connect, MigrationError when the schema is newer than this code.
        """
        where = describe_url(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as error:
            raise DatabaseUnavailableError(
                f"cannot connect to PostgreSQL at {where}: {_without_secrets(str(error), url)}"
            ) from None
        try:
            async with pool.acquire() as conn:
                version = await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        log.info("PostgreSQL at %s, schema version %d", where, version)
        return cls(pool, where)

    async def close(self) -> None:
        """Close every connection of the pool (waiting for the ones in use to be released)."""
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """A pooled connection inside a transaction, committed on success and rolled back on any exception.

        Keep the body short and free of network calls: its locks hold other processes back meanwhile.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    async def execute(self, sql: str, *args: object) -> int:
        """Run one writing statement as its own transaction; return how many rows it touched."""
        status = await self._pool.execute(sql, *args)
        return rows_touched(status)

    async def fetch_all(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """Every row of a query (or of a writing statement's RETURNING)."""
        return await self._pool.fetch(sql, *args)

    async def fetch_one(self, sql: str, *args: object) -> asyncpg.Record | None:
        """The first row of a query (or of a writing statement's RETURNING), or None."""
        return await self._pool.fetchrow(sql, *args)


def rows_touched(status: str) -> int:
    """The row count at the end of a command status such as "UPDATE 3" (0 when it has none)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _without_secrets(message: str, url: str) -> str:
    # The driver's messages do not quote the URL today; make sure a future one cannot leak the password.
    try:
        password = urlsplit(url).password
    except ValueError:
        return "the URL is malformed"
    return message.replace(password, "***") if password else message
