"""A real PostgreSQL server for the tests, and a fresh database for each test that asks for one.

`SEEDANCE_TEST_POSTGRES_URL` (a superuser's URL) points the tests at a server you run. Otherwise the
session starts its own throwaway cluster from the binaries under /usr/lib/postgresql/*/bin (Debian's
`postgresql` package) on a free loopback port, and stops it at the end. As root, initdb refuses to run, so the
cluster runs as the `postgres` system user. Without either, the tests that need PostgreSQL are skipped with
the reason, unless `SEEDANCE_REQUIRE_POSTGRES=1` (set by .ci/run), which makes that a failure.

Each test's database is a copy of one migrated template (CREATE DATABASE … TEMPLATE), which takes
milliseconds, so every test starts from the current schema and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.storage.postgres import PostgresDatabase

URL_VARIABLE = "SEEDANCE_TEST_POSTGRES_URL"
REQUIRE_VARIABLE = "SEEDANCE_REQUIRE_POSTGRES"
_BINARIES_GLOB = "/usr/lib/postgresql/*/bin"
_TEMPLATE = f"seedance_template_{os.getpid()}"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class PostgresServer:
    """A running server and the migrated template each test's database is copied from."""

    admin_url: str  # a superuser, on the maintenance database
    template: str

    def url(self, database: str) -> str:
        """The same server and user, on `database`."""
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{database}"))


def find_binaries() -> Path | None:
    """The newest PostgreSQL's bin directory that has initdb and pg_ctl, or None."""
    candidates = sorted(
        (Path(p) for p in glob.glob(_BINARIES_GLOB)),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def unavailable(reason: str) -> None:
    """Skip the test for `reason`, or fail it when the run requires PostgreSQL (CI)."""
    if os.environ.get(REQUIRE_VARIABLE) == "1":
        pytest.fail(f"PostgreSQL is required ({REQUIRE_VARIABLE}=1) but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason}; set {URL_VARIABLE} or install Debian's postgresql package")


class LocalCluster:
    """A throwaway cluster in a temporary directory, listening on loopback only, trusting local users."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="seedance-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        # initdb will not run as root: run the server as the `postgres` system user, owning the directory.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def admin_url(self) -> str:
        """The superuser `postgres` on the maintenance database, over TCP on loopback."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """initdb and start the server; wait until it accepts connections."""
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            # A throwaway cluster: durability buys nothing and costs time.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self) -> str:
        """The end of the server's log (for a failure's message)."""
        try:
            return (self.root / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            [*self._as, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"{self.log_tail()}"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_async(coroutine_factory) -> None:  # type: ignore[no-untyped-def]
    """Run a coroutine to completion on a loop of its own, in a thread (callers may be inside a loop)."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine_factory())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


async def _make_template(admin_url: str, template: str, url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{template}"')
    finally:
        await conn.close()
    db = await PostgresDatabase.open(url, max_size=1)
    await db.close()


async def _drop(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (yours, by URL, or a cluster of its own) with a migrated template."""
    cluster: LocalCluster | None = None
    admin_url = os.environ.get(URL_VARIABLE)
    if not admin_url:
        binaries = find_binaries()
        if binaries is None:
            unavailable(f"{URL_VARIABLE} is not set and no initdb/pg_ctl under {_BINARIES_GLOB}")
        assert binaries is not None
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            unavailable("running as root without runuser to start PostgreSQL as the postgres user")
        cluster = LocalCluster(binaries)
        try:
            cluster.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as error:
            cluster.stop()
            unavailable(f"the local cluster did not start: {error}")
        admin_url = cluster.admin_url
    server = PostgresServer(admin_url=admin_url, template=_TEMPLATE)
    try:
        _run_async(lambda: _make_template(admin_url, _TEMPLATE, server.url(_TEMPLATE)))
        yield server
    finally:
        with contextlib.suppress(Exception):
            _run_async(lambda: _drop(admin_url, _TEMPLATE))
        if cluster is not None:
            cluster.stop()


@contextlib.asynccontextmanager
async def fresh_database(server: PostgresServer, *, migrated: bool = True) -> AsyncIterator[str]:
    """A new database copied from the migrated template (or empty), dropped afterwards; yields its URL."""
    name = f"seedance_test_{os.getpid()}_{next(_numbers)}"
    template = server.template if migrated else "template0"
    conn = await asyncpg.connect(server.admin_url)
    try:
        # PostgreSQL 15+ logs a copy to WAL block by block by default; copying the files is faster here.
        strategy = " STRATEGY FILE_COPY" if conn.get_server_version().major >= 15 else ""
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
    finally:
        await conn.close()
    try:
        yield server.url(name)
    finally:
        await _drop(server.admin_url, name)
