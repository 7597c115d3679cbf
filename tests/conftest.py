"""Checks every test run makes: no end-to-end test may log the Discord token or a provider key."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence

import pytest

#: Fixtures whose presence makes a test an end-to-end one (the real bot against the doubles).
_E2E_FIXTURES = ("harness", "discord", "runcomfy", "novita", "ark")
#: The bot's own loggers and those of the libraries that carry the token and keys (not PIL, aiosqlite...).
_SCANNED_AT_DEBUG = ("bot", "cogs", "discord", "httpx", "httpcore", "aiohttp")


class LogRecorder(logging.Handler):
    """Keeps every record the process logs while it is attached to the root logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def secrets_in_logs(records: Iterable[logging.LogRecord], secrets: Iterable[str]) -> list[str]:
    """One line per record that contains one of `secrets` (message, arguments or traceback), secret masked."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    wanted = [secret for secret in secrets if secret]
    leaks = []
    for record in records:
        text = formatter.format(record)  # the message with its arguments, and any traceback
        for secret in wanted:
            if secret in text:
                masked = secret[:3] + "…"
                shown = text.replace(secret, masked)[:200]
                leaks.append(f"{record.name} {record.levelname}: logged {masked!r} in {shown!r}")
    return leaks


def e2e_secrets(funcargs: dict[str, object]) -> list[str]:
    """The Discord token and provider keys the e2e harness gave the bot under test."""
    from tests.e2e.conftest import ARK_KEY, NOVITA_KEY, RUNCOMFY_KEY

    secrets = [RUNCOMFY_KEY, NOVITA_KEY, ARK_KEY]
    discord = funcargs.get("discord")
    token = getattr(discord, "token", None)
    if isinstance(token, str):
        secrets.append(token)
    return secrets


def _is_e2e(item: pytest.Item, names: Sequence[str]) -> bool:
    return "e2e" in item.path.parts or any(name in names for name in _E2E_FIXTURES)


@pytest.fixture(autouse=True)
def no_secrets_in_logs(request: pytest.FixtureRequest) -> Iterator[LogRecorder | None]:
    """Fail an end-to-end test whose logs (setup, call and teardown) contain the token or a provider key.

    The loggers that handle the token and keys are opened to DEBUG for the test, so a leak in a debug line
    is caught too; every other logger's records reach the check at its usual level.
    """
    if not _is_e2e(request.node, request.fixturenames):
        yield None
        return
    recorder = LogRecorder()
    root = logging.getLogger()
    opened = [logging.getLogger(name) for name in _SCANNED_AT_DEBUG]
    previous = [logger.level for logger in opened]
    for logger in opened:
        logger.setLevel(logging.DEBUG)
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        for logger, level in zip(opened, previous, strict=True):
            logger.setLevel(level)
    if request.node.get_closest_marker("leaks_secret_on_purpose"):
        return
    funcargs = getattr(request.node, "funcargs", {})
    leaks = secrets_in_logs(recorder.records, e2e_secrets(funcargs))
    if leaks:
        pytest.fail("secrets in the logs:\n" + "\n".join(leaks[:10]), pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leaks_secret_on_purpose: the test logs a secret to prove no_secrets_in_logs sees it"
    )
    # Here, not in tests/storage/conftest.py: a sub-directory's conftest is read after collection starts
    # (on a clean run, too late for its own modules' marks).
    config.addinivalue_line("markers", "postgres: the test needs a PostgreSQL server (tests/postgres.py)")
