"""Opening the SQLite database the way the bot needs it, and the one writer every store shares.

Why one writer: SQLite allows one writing transaction at a time per file. When two connections both write,
and a coroutine's read on one of them is still open (aiosqlite lets coroutines interleave statements on a
shared connection), that connection cannot upgrade its stale read snapshot to a write and fails at once with
"database is locked" — busy_timeout does not help. So every write in the process goes through one
connection, serialised by one asyncio lock, in short transactions that never wait on the network; reads go
through a second connection that never writes, so in WAL mode they neither block nor are blocked by writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.migrations import migrate

#: How long a statement waits for another process's write lock before failing (several processes on one
#: file, or a backup tool). Within the process the writer lock already orders writes.
BUSY_TIMEOUT_MS = 10_000

#: The database and its -wal/-shm files: this user only (they hold members' prompts and usage).
_PRIVATE_FILE_MODE = 0o600
#: A directory the bot creates for the database.
_PRIVATE_DIR_MODE = 0o700

log = logging.getLogger(__name__)


async def open_database(path: Path | str, *, read_only: bool = False) -> aiosqlite.Connection:
    """Open (creating if needed) the database at `path`, in WAL mode, migrated to the current schema.

    The connection runs in autocommit mode: each statement is its own transaction unless a caller opens one
    with BEGIN IMMEDIATE. `":memory:"` opens a private in-memory database (tests). `read_only` skips the
    migration (the writer did it) and refuses writes on this connection.
    """
    if str(path) != ":memory:" and not read_only:
        await asyncio.to_thread(prepare_private_file, Path(path))
    conn = await aiosqlite.connect(str(path), isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if read_only:
            await conn.execute("PRAGMA query_only = ON")
            return conn
        # WAL lets readers (the reader connection, a second CLI process, a backup) work while the bot writes.
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await migrate(conn)
        if str(path) != ":memory:":
            # WAL mode made the -wal and -shm files; SQLite gives them the database's mode, but ones left
            # by an older version may be readable by others.
            await asyncio.to_thread(_tighten_companions, Path(path))
    except BaseException:
        await conn.close()
        raise
    return conn


def prepare_private_file(path: Path) -> None:
    """Make `path`'s directory and the file itself, readable by this user only, before SQLite opens it.

    The database holds members' prompts, usage and provider job ids. Directories the bot creates are 0700;
    a directory that already exists (the user's choice, /tmp say) is left as it is. The file is created
    0600, and a database file the bot made earlier with a looser mode is tightened to 0600.
    """
    missing = [parent for parent in (path.parent, *path.parent.parents) if not parent.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=_PRIVATE_DIR_MODE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE_MODE)
    except FileExistsError:
        _tighten(path)
    else:
        os.close(fd)


def _tighten_companions(path: Path) -> None:
    for suffix in ("-wal", "-shm", "-journal"):
        _tighten(path.with_name(path.name + suffix))


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~_PRIVATE_FILE_MODE:
            path.chmod(mode & _PRIVATE_FILE_MODE)
    except FileNotFoundError:
        return
    except PermissionError:
        # Someone else's file the bot may still use (a shared deployment): say so, do not fail.
        log.warning("could not make %s readable by this user only", path)


class SqliteDatabase:
    """One writer connection behind a lock, and a reader connection; shared by every store of a process."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection | None = None) -> None:
        """Use `writer` for every write; `reader` (default: the writer itself, under the lock) for reads."""
        self._writer = writer
        self._reader = reader
        self._lock = asyncio.Lock()
        self._owned: list[aiosqlite.Connection] = []

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        """Open the writer (migrating the schema) and, for a file, a separate reader."""
        writer = await open_database(path)
        reader = None if str(path) == ":memory:" else await open_database(path, read_only=True)
        database = cls(writer, reader)
        database._owned = [conn for conn in (writer, reader) if conn is not None]
        return database

    @classmethod
    def wrap(cls, conn: aiosqlite.Connection | SqliteDatabase) -> SqliteDatabase:
        """A database over an already open connection (used for reads and writes alike), or `conn` itself."""
        return conn if isinstance(conn, SqliteDatabase) else cls(conn)

    async def close(self) -> None:
        """Close the connections this object opened (not ones it was handed)."""
        async with self._lock:
            for conn in self._owned:
                await conn.close()
            self._owned = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside BEGIN IMMEDIATE, committed on success and rolled back on any exception.

        Keep the body short and free of network calls: every other write in the process waits for it.
        """
        async with self._lock:
            try:
                # Inside the try: a cancellation during BEGIN still lets the BEGIN run, and must roll back.
                await self._writer.execute("BEGIN IMMEDIATE")
                yield self._writer
                await self._writer.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    async def write(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> aiosqlite.Row | None:
        """Run one writing statement as its own transaction; return its first row (RETURNING), if any."""
        async with self._lock, self._writer.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[aiosqlite.Row]:
        """Every row of a query."""
        async with self.reading() as conn, conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> aiosqlite.Row | None:
        """The first row of a query, or None."""
        async with self.reading() as conn, conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection to run several reads on (never write on it)."""
        if self._reader is not None:
            yield self._reader
            return
        # One connection for both: a read must not run inside another coroutine's transaction.
        async with self._lock:
            yield self._writer

    async def _rollback(self) -> None:
        # Shielded so a cancellation arriving now cannot leave the transaction, and SQLite's write lock, open.
        try:
            await asyncio.shield(self._writer.execute("ROLLBACK"))
        except sqlite3.OperationalError as error:
            # BEGIN or COMMIT itself failed and left no transaction to roll back.
            if "no transaction is active" not in str(error):
                raise
