"""DATABASE_URL chooses the backend: PostgreSQL by URL, SQLite at sqlite:///path, else at DATABASE_PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import ConfigurationError, load_settings
from bot.storage import describe_database, open_stores, sqlite_path
from bot.storage.jobs import SqliteJobStore
from bot.storage.postgres import PostgresJobStore
from tests.postgres import fresh_database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, Path("db/default.sqlite3")),
        ("sqlite:///data/other.sqlite3", Path("data/other.sqlite3")),
        ("sqlite:////srv/bot/bot.sqlite3", Path("/srv/bot/bot.sqlite3")),
        ("postgresql://bot@db:5432/seedance", None),
        ("postgres://bot@db/seedance", None),
    ],
)
def test_the_url_or_the_path_names_the_database(url, expected):
    assert sqlite_path("db/default.sqlite3", url) == expected


@pytest.mark.parametrize("url", ["postgresql://u:p@h/db", "postgres://h/db", "sqlite:///x.sqlite3"])
def test_accepted_urls_are_kept_as_given(url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings().database_url == url


def test_an_empty_url_means_unset(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", " ")
    assert load_settings().database_url is None


@pytest.mark.parametrize(
    "url",
    ["mysql://bot:hunter2-secret@db/seedance", "sqlite:///", "hunter2-secret", "sqlite://hunter2-secret"],
)
def test_a_wrong_scheme_is_one_line_naming_the_setting_without_the_password(url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: ") and "\n" not in message
    assert "postgresql://" in message
    assert "hunter2-secret" not in message


async def test_a_sqlite_url_opens_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stores = await open_stores(tmp_path / "unused.sqlite3", database_url="sqlite:///chosen/bot.sqlite3")
    try:
        assert isinstance(stores.jobs, SqliteJobStore)
        await stores.state.put("k", "v")
    finally:
        await stores.close()
    assert (tmp_path / "chosen" / "bot.sqlite3").is_file()
    assert not (tmp_path / "unused.sqlite3").exists()


@pytest.mark.postgres
async def test_a_postgres_url_opens_postgres_stores(postgres_server, tmp_path):
    async with fresh_database(postgres_server) as url:
        stores = await open_stores(tmp_path / "unused.sqlite3", database_url=url)
        try:
            assert isinstance(stores.jobs, PostgresJobStore)
            await stores.state.put("k", "v")
            assert await stores.state.get("k") == "v"
        finally:
            await stores.close()
    assert not (tmp_path / "unused.sqlite3").exists()


def test_the_ready_line_names_the_database_without_its_password(tmp_path):
    url = "postgresql://seedance:s3cret-pass@db.internal:5433/bots"
    assert describe_database(tmp_path / "unused.sqlite3", url) == "PostgreSQL db.internal:5433/bots"
    assert describe_database(tmp_path / "bot.sqlite3") == str((tmp_path / "bot.sqlite3").resolve())
