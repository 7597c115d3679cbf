"""The store contract suites run against every backend: `backend` is SQLite, then PostgreSQL.

A test opens "processes" with `await backend.open(clock)`: each has its own connections (SQLite: a writer
and a reader on the test's file; PostgreSQL: a pool on the test's fresh database) and its three stores, as a
bot process would. Everything a test opened is closed after it.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.jobs.ports import ReservationState
from bot.storage.database import SqliteDatabase
from bot.storage.jobs import SqliteJobStore
from bot.storage.jobs import _settle as sqlite_settle
from bot.storage.postgres import PostgresDatabase, PostgresJobStore, PostgresQuotaStore, PostgresStateStore
from bot.storage.postgres.jobs import settle as postgres_settle
from bot.storage.quota import SqliteQuotaStore
from bot.storage.state import SqliteStateStore
from tests.postgres import fresh_database, postgres_server  # noqa: F401 (a fixture)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass
class Process:
    """One process's connections to the test's database, and its stores."""

    kind: str
    db: SqliteDatabase | PostgresDatabase
    jobs: Any
    quota: Any
    state: Any

    async def execute(self, sql: str, *params: Any) -> None:
        """Run one raw write, written with `?` placeholders (turned into $1, $2… for PostgreSQL)."""
        if isinstance(self.db, SqliteDatabase):
            await self.db.write(sql, params)
        else:
            counter = iter(range(1, len(params) + 1))
            await self.db.execute(re.sub(r"\?", lambda _: f"${next(counter)}", sql), *params)

    async def settle(self, job_id: int, to: ReservationState, at: float) -> None:
        """Settle a reservation directly, as an ending's transaction does, skipping the state guard."""
        if isinstance(self.db, SqliteDatabase):
            async with self.db.transaction() as conn:
                await sqlite_settle(conn, job_id, to, at)
        else:
            async with self.db.transaction() as conn:
                await postgres_settle(conn, job_id, to, at)

    async def close(self) -> None:
        """Close this process's connections (what a crash or a stop does to them)."""
        await self.db.close()


@dataclass
class Backend:
    """Opens processes on the test's one database."""

    kind: str
    _open_db: Callable[[], Any]
    _opened: list[Process] = field(default_factory=list)

    async def open(self, clock: Callable[[], float] = time.time) -> Process:
        """A new process on the test's database, its stores reading `clock`."""
        db = await self._open_db()
        if isinstance(db, SqliteDatabase):
            process = Process(
                self.kind,
                db,
                SqliteJobStore(db, clock=clock),
                SqliteQuotaStore(db, clock=clock),
                SqliteStateStore(db, clock=clock),
            )
        else:
            process = Process(
                self.kind,
                db,
                PostgresJobStore(db, clock=clock),
                PostgresQuotaStore(db, clock=clock),
                PostgresStateStore(db, clock=clock),
            )
        self._opened.append(process)
        return process

    async def close_all(self) -> None:
        for process in self._opened:
            await process.close()  # closing twice is harmless for both backends


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Backend]:
    """SQLite on a file of the test's own, or PostgreSQL on a fresh database of the test's own."""
    if request.param == "sqlite":
        path = tmp_path / "bot.sqlite3"
        opened = Backend("sqlite", lambda: SqliteDatabase.open(path))
        yield opened
        await opened.close_all()
        return
    server = request.getfixturevalue("postgres_server")
    async with fresh_database(server) as url:
        opened = Backend("postgres", lambda: PostgresDatabase.open(url, max_size=20))
        try:
            yield opened
        finally:
            await opened.close_all()
