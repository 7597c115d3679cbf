"""The database and what SQLite writes next to it are readable by the bot's user only."""

from __future__ import annotations

import os
import stat

import pytest

from bot.storage.database import SqliteDatabase

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    # The mode must not depend on a strict umask: with 022 SQLite alone would make 0644 files.
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def test_a_new_database_and_the_directories_made_for_it_are_owner_only(tmp_path, open_umask):
    path = tmp_path / "data" / "nested" / "bot.sqlite3"
    database = await SqliteDatabase.open(path)
    try:
        await database.write("INSERT INTO bot_state (key, value, updated_at) VALUES ('probe', '1', 0)")
        companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in companions)  # WAL mode with an open connection
        assert mode(path) == 0o600
        for companion in companions:
            assert mode(companion) == 0o600, companion.name
        assert mode(tmp_path / "data") == 0o700
        assert mode(tmp_path / "data" / "nested") == 0o700
    finally:
        await database.close()


async def test_an_existing_directory_is_left_as_the_user_made_it(tmp_path, open_umask):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    database = await SqliteDatabase.open(shared / "bot.sqlite3")
    await database.close()
    assert mode(shared) == 0o755
    assert mode(shared / "bot.sqlite3") == 0o600


async def test_a_database_left_world_readable_by_an_older_version_is_tightened(tmp_path, open_umask):
    path = tmp_path / "bot.sqlite3"
    database = await SqliteDatabase.open(path)
    await database.close()
    for name in ("bot.sqlite3", "bot.sqlite3-wal", "bot.sqlite3-shm"):
        if (tmp_path / name).exists():
            (tmp_path / name).chmod(0o644)

    database = await SqliteDatabase.open(path)
    try:
        for name in ("bot.sqlite3", "bot.sqlite3-wal", "bot.sqlite3-shm"):
            if (tmp_path / name).exists():
                assert mode(tmp_path / name) == 0o600, name
    finally:
        await database.close()
